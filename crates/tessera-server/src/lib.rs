//! tessera's HTTP server: OpenAI-compatible routes over the runtime.
//!
//! [`router`] builds the whole app from an [`AppState`] (the model runtime, a Prometheus handle)
//! and a [`ServerConfig`] (limits and the [`AuthConfig`] of API keys); [`serve`] runs it on a
//! listener until a shutdown future resolves, letting in-flight requests finish. The app is made
//! of areas, each a function returning a router, merged in one place ([`router`]): the OpenAI
//! user API, the admin routes, `/metrics` and the public routes, each behind its own key guard.
//! Routes are registered through utoipa-axum, so `/openapi.json` ([`openapi`]) documents exactly
//! what is served.
//!
//! Handlers only translate the wire format: they parse the request, call the runtime (whose work
//! runs on worker threads, never on the async ones) and shape the reply. Every failure goes
//! through [`ApiError`], which picks the status and writes OpenAI's error object; a 500 hides its
//! detail behind the request id that every response carries in `x-request-id`.
//!
//! ```
//! use tessera_server::{ApiKey, AuthConfig, ServerConfig};
//!
//! let config = ServerConfig {
//!     auth: AuthConfig {
//!         user_keys: vec![ApiKey::new("sk-user").unwrap()],
//!         admin_keys: vec![ApiKey::new("sk-admin").unwrap()],
//!         ..AuthConfig::default()
//!     },
//!     ..ServerConfig::default()
//! };
//! // Keys never show in logs.
//! assert!(!format!("{config:?}").contains("sk-user"));
//! // Every route is in the OpenAPI document.
//! assert!(tessera_server::openapi().paths.paths.contains_key("/v1/models/{id}/pull"));
//! ```
#![deny(missing_docs)]

mod admin;
mod audio;
mod auth;
mod embeddings;
mod error;
mod extract;
mod llm;
mod metrics_layer;
mod models;
mod openapi;
mod realtime;
mod request_id;
mod vision;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::header;
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use tessera_runtime::Runtime;
use tokio::net::TcpListener;
use utoipa::{Modify as _, OpenApi as _, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Access, guard, require};

pub use auth::{ApiKey, AuthConfig, InvalidKey, KeyFileError, read_key_file};
pub use error::{ApiError, ErrorObject, ErrorResponse};
pub use realtime::Realtime;

/// What the server enforces on every request.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The largest request body accepted, in bytes; larger bodies get 413.
    pub body_limit: usize,
    /// The largest upload (audio, images) accepted by the routes that take files, in bytes.
    pub upload_limit: usize,
    /// How long one request may take before it is answered with 504.
    pub request_timeout: Duration,
    /// The API keys, by role; the default has none and leaves every route open.
    pub auth: AuthConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit: 2 * 1024 * 1024,
            upload_limit: 64 * 1024 * 1024,
            request_timeout: Duration::from_secs(120),
            auth: AuthConfig::default(),
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
    /// The models and session cap of `/v1/realtime`.
    pub realtime: Realtime,
}

/// The whole application: every area behind its key guard, `/openapi.json`, and around all of
/// it the timeout, request metrics, the body limit and request ids (outermost, so every answer
/// carries one).
pub fn router(state: AppState, config: &ServerConfig) -> Router {
    let (routes, document) =
        areas(&Arc::new(config.auth.clone()), config.upload_limit).split_for_parts();
    let document = Bytes::from(
        document
            .to_json()
            .expect("bug: the OpenAPI document must serialize to JSON"),
    );
    routes
        .route(
            "/openapi.json",
            get(move || async move { ([(header::CONTENT_TYPE, "application/json")], document) }),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(config.request_timeout, time_limit))
        .layer(from_fn(metrics_layer::record))
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(from_fn(request_id::assign))
        .with_state(state)
}

/// The OpenAPI document of every route, as `/openapi.json` serves it.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let defaults = ServerConfig::default();
    areas(&Arc::new(defaults.auth), defaults.upload_limit).into_openapi()
}

/// The areas, each behind its guard, merged in one place.
fn areas(auth: &Arc<AuthConfig>, upload_limit: usize) -> OpenApiRouter<AppState> {
    let mut areas = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(user_api().route_layer(from_fn_with_state(guard(auth, Access::User), require)))
        .merge(
            uploads()
                .layer(DefaultBodyLimit::max(upload_limit))
                .route_layer(from_fn_with_state(guard(auth, Access::User), require)),
        )
        .merge(admin::routes().route_layer(from_fn_with_state(guard(auth, Access::Admin), require)))
        .merge(
            metrics_routes().route_layer(from_fn_with_state(guard(auth, Access::Metrics), require)),
        )
        .merge(public());
    openapi::RequestIdHeader.modify(areas.get_openapi_mut());
    areas
}

/// The OpenAI routes: open, or behind user (and admin) keys.
fn user_api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(embeddings::create))
        .routes(routes!(audio::speech))
        .routes(routes!(llm::chat::create))
        .routes(routes!(llm::completions::create))
        .routes(routes!(llm::tokenize::tokenize))
        .routes(routes!(llm::tokenize::detokenize))
        .routes(routes!(models::list))
        .routes(routes!(models::retrieve))
        .routes(routes!(realtime::connect))
}

/// The OpenAI routes that take files (multipart uploads), with their own, larger body limit.
fn uploads() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(audio::vad))
        .routes(routes!(audio::transcriptions))
        .routes(routes!(audio::translations))
        .routes(routes!(vision::segment))
        .routes(routes!(vision::detect))
        .routes(routes!(vision::pose))
        .routes(routes!(vision::classify))
        .routes(routes!(vision::ocr))
}

/// `/metrics`: open, or behind the metrics (and admin) keys.
fn metrics_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(render_metrics))
}

/// Always open.
fn public() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health))
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

/// Answers 504 in OpenAI's error shape when a request outlives the limit. Dropping the handler's
/// future drops its reply channel, so the model's worker skips whatever is still queued for it.
async fn time_limit(
    axum::extract::State(limit): axum::extract::State<Duration>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!("tessera_requests_refused_total", "reason" => "deadline")
                .increment(1);
            axum::response::IntoResponse::into_response(ApiError::timeout(limit))
        }
    }
}

/// The answer of `/health`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"status": "ok"}))]
struct Health {
    /// Always `ok` while the server answers.
    status: &'static str,
}

/// Whether the server answers; never needs a key.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = "server",
    responses((status = 200, description = "The server is up", body = Health)),
    security(())
)]
async fn health() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// Prometheus metrics: request counts and latencies by route, model and status, batch sizes,
/// model load times.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "server",
    responses(
        (status = 200, description = "Prometheus text exposition format", body = String, content_type = "text/plain"),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
    ),
    security((), ("bearer" = []))
)]
async fn render_metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> Result<String, ApiError> {
    state
        .metrics
        .as_ref()
        .map(|handle| handle.render())
        .ok_or_else(|| ApiError::not_found("metrics are not enabled in this server"))
}

async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::method_not_allowed(format!(
        "{} does not take {method}; the `Allow` header lists what it takes",
        uri.path()
    ))
}

async fn not_found(uri: axum::http::Uri) -> ApiError {
    let path = uri.path();
    let hint = if path.starts_with("/v1/models/") {
        "; a model id that holds `/` is sent with `%2F` in its place"
    } else {
        ""
    };
    ApiError::not_found(format!(
        "no route for {path}{hint}; see /openapi.json for every route"
    ))
}
