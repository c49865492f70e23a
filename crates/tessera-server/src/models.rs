//! `GET /v1/models` and `GET /v1/models/{id}`: the catalog, what is cached and what is loaded.
//!
//! `{id}` is one path segment. A model loaded from a local folder has the folder's path as its
//! id; send its `/` as `%2F` (OpenAPI clients encode path parameters so already). A single
//! segment keeps the route expressible in OpenAPI and leaves room for `/v1/models/{id}/pull`
//! (and later `/load`, `/unload`) beside it.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

use crate::{ApiError, AppState};

/// OpenAI's list object.
#[derive(Serialize, ToSchema)]
pub(crate) struct ModelList {
    /// Always `list`.
    #[schema(example = "list")]
    object: &'static str,
    /// Every catalog model, every other cached model, and every loaded model.
    data: Vec<ModelObject>,
}

/// OpenAI's model object, plus what tessera knows of it.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "id": "all-minilm-l6-v2-int8", "object": "model", "created": 0, "owned_by": "tessera",
    "task": "embed", "engine": "onnx", "size_bytes": 23_000_000, "cached": true, "loaded": true
}))]
pub(crate) struct ModelObject {
    /// The catalog id, or the path a local model was loaded from.
    id: String,
    /// Always `model`.
    object: &'static str,
    /// Always 0: catalog models have no creation time.
    created: u64,
    /// `tessera` for catalog models, `local` for models loaded from a path.
    owned_by: &'static str,
    /// What the model does: `embed`, `chat`, ...
    task: String,
    /// The engine that runs it (empty when unknown).
    engine: String,
    /// Bytes of all its files.
    size_bytes: u64,
    /// Whether every file is in the cache.
    cached: bool,
    /// Whether it is loaded in this server.
    loaded: bool,
}

fn model_objects(state: &AppState) -> Vec<ModelObject> {
    let loaded = state.manager.loaded();
    let mut objects: Vec<ModelObject> = state
        .manager
        .hub()
        .status()
        .into_iter()
        .map(|status| ModelObject {
            loaded: loaded.contains(&status.id),
            id: status.id,
            object: "model",
            created: 0,
            owned_by: "tessera",
            task: status.task.to_string(),
            engine: status.engine.to_string(),
            size_bytes: status.total_size,
            cached: status.complete,
        })
        .collect();
    // Local paths loaded by name are models too.
    for id in loaded {
        if !objects.iter().any(|o| o.id == id) {
            objects.push(ModelObject {
                id,
                object: "model",
                created: 0,
                owned_by: "local",
                task: "embed".into(),
                engine: String::new(),
                size_bytes: 0,
                cached: true,
                loaded: true,
            });
        }
    }
    objects
}

/// Lists the models: the catalog, other cached models and loaded ones.
#[utoipa::path(
    get,
    path = "/v1/models",
    operation_id = "listModels",
    tag = "models",
    responses(
        (status = 200, description = "Every model", body = ModelList),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn list(State(state): State<AppState>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: model_objects(&state),
    })
}

/// One model by id.
#[utoipa::path(
    get,
    path = "/v1/models/{id}",
    operation_id = "retrieveModel",
    tag = "models",
    params(("id" = String, Path, description = "A catalog id, or a loaded local model's path with `/` sent as `%2F`", example = "all-minilm-l6-v2-int8")),
    responses(
        (status = 200, description = "The model", body = ModelObject),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn retrieve(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ModelObject>, ApiError> {
    model_objects(&state)
        .into_iter()
        .find(|m| m.id == id)
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "model `{id}` is not in the catalog or loaded; see GET /v1/models"
            ))
            .param("model")
        })
}
