//! tessera's HTTP server: OpenAI-compatible routes over the runtime.
//!
//! [`router`] builds the whole app from an [`AppState`] (the model manager, a Prometheus handle
//! and [`ServerConfig`]); [`serve`] runs it on a listener until a shutdown future resolves, letting
//! in-flight requests finish. Handlers only translate the wire format: they parse the request,
//! call the runtime (whose work runs on worker threads, never on the async ones) and shape the
//! reply. Every failure goes through [`ApiError`], which picks the status and writes OpenAI's
//! error object.
#![deny(missing_docs)]

mod embeddings;
mod error;
mod extract;
mod metrics_layer;
mod models;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use metrics_exporter_prometheus::PrometheusHandle;
use tessera_runtime::Runtime;
use tokio::net::TcpListener;

pub use error::ApiError;

/// Limits the server enforces on every request.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The largest request body accepted, in bytes; larger bodies get 413.
    pub body_limit: usize,
    /// How long one request may take before it is answered with 408.
    pub request_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit: 2 * 1024 * 1024,
            request_timeout: Duration::from_secs(120),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Loads models and runs their work.
    pub runtime: Runtime,
    /// Renders `/metrics`; `None` when no recorder was installed.
    pub metrics: Option<PrometheusHandle>,
}

/// The whole application: every route, the body limit, the timeout and request metrics.
pub fn router(state: AppState, config: &ServerConfig) -> Router {
    let api = Router::new()
        .route("/v1/embeddings", post(embeddings::create))
        .route("/v1/models", get(models::list))
        .route("/v1/models/{id}", get(models::retrieve))
        .route("/v1/models/{id}/load", post(models::load))
        .route("/v1/models/{id}/unload", post(models::unload));
    let public = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(render_metrics));
    api.merge(public)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            config.request_timeout,
            time_limit,
        ))
        .layer(axum::middleware::from_fn(metrics_layer::record))
        .layer(DefaultBodyLimit::max(config.body_limit))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves, then stops accepting and lets in-flight
/// requests finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Answers 408 in OpenAI's error shape when a request outlives the limit. Dropping the handler's
/// future drops its reply channel, so the model's worker skips whatever is still queued for it.
async fn time_limit(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => axum::response::IntoResponse::into_response(ApiError::with_status(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request took longer than {} s (see --request-timeout)",
                limit.as_secs_f64()
            ),
        )),
    }
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn render_metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<String, ApiError> {
    state
        .metrics
        .as_ref()
        .map(|handle| handle.render())
        .ok_or_else(|| ApiError::not_found("metrics are not enabled in this server"))
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::not_found(format!(
        "no route for {}; see /v1/models, /v1/embeddings, /health, /metrics",
        uri.path()
    ))
}
