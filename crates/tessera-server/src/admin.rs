//! Admin routes: those that change what the server holds. Whenever the server has keys they need
//! an admin key ([`crate::auth`]); the guard is applied to this whole area in [`crate::router`].
//!
//! `POST /v1/models/{id}/pull`, `/load` and `/unload`.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::{ApiError, AppState};

/// Every admin route, registered with its OpenAPI entry.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(pull))
        .routes(routes!(crate::models::load))
        .routes(routes!(crate::models::unload))
}

/// A model now in the cache.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "all-minilm-l6-v2-int8", "object": "model", "cached": true}))]
pub(crate) struct PulledModel {
    /// The catalog id.
    id: String,
    /// Always `model`.
    object: &'static str,
    /// Always true: every file is present and verified.
    cached: bool,
}

/// Pulls a catalog model into the cache: fetches what is missing and verifies every file.
/// Does nothing more when the model is already cached. A pull that outlives `--request-timeout`
/// answers 504 but carries on; call again to see it finish.
#[utoipa::path(
    post,
    path = "/v1/models/{id}/pull",
    operation_id = "pullModel",
    tag = "admin",
    params(("id" = String, Path, description = "A catalog id (see GET /v1/models)", example = "all-minilm-l6-v2-int8")),
    responses(
        (status = 200, description = "The model is cached", body = PulledModel),
        (status = 400, response = crate::openapi::BadRequest),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 500, response = crate::openapi::InternalError),
        (status = 502, response = crate::openapi::BadGateway),
        (status = 503, response = crate::openapi::Overloaded),
        (status = 504, response = crate::openapi::Timeout),
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn pull(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<PulledModel>, ApiError> {
    let runtime = state.runtime.clone();
    let model = id.clone();
    // Fetching and hashing are blocking work.
    tokio::task::spawn_blocking(move || runtime.hub().pull(&model)).await??;
    Ok(Json(PulledModel {
        id,
        object: "model",
        cached: true,
    }))
}
