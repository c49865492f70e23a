//! Request counts and latency histograms, labelled by route template, status and model.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Put into a response's extensions by handlers that serve a model, so its latency is also
/// labelled by model.
#[derive(Clone)]
pub(crate) struct ModelLabel(pub String);

pub(crate) async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    // Label by template, never by raw path, to keep the label set bounded.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let status = response.status().as_u16().to_string();
    let model = response
        .extensions()
        .get::<ModelLabel>()
        .map(|m| m.0.clone())
        .unwrap_or_default();
    metrics::counter!("tessera_http_requests_total", "route" => route.clone(), "status" => status, "model" => model.clone()).increment(1);
    metrics::histogram!("tessera_http_request_duration_seconds", "route" => route, "model" => model).record(seconds);
    response
}
