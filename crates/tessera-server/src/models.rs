//! `GET /v1/models`, `GET /v1/models/{id}`: the catalog, the operator's model folders, and what
//! the runtime holds, with each model's state. `POST /v1/models/{id}/load` and `/unload` for
//! operators (registered in the admin area).
//!
//! `{id}` is one path segment: a model id holding `/` is sent with `%2F` in its place (OpenAPI
//! clients encode path parameters so already). A single segment keeps the routes expressible in
//! OpenAPI and leaves room for `/load`, `/unload` and `/pull` beside it.

use std::time::UNIX_EPOCH;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use tessera_runtime::{LoadState, ModelStatus};
use utoipa::ToSchema;

use crate::{ApiError, AppState};

/// OpenAI's list object.
#[derive(Serialize, ToSchema)]
pub(crate) struct ModelList {
    /// Always `list`.
    #[schema(example = "list")]
    object: &'static str,
    /// Catalog models, models under the server's model folders, and anything else loaded.
    data: Vec<ModelObject>,
}

/// OpenAI's model object, plus what tessera knows of it and its runtime state.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "id": "all-minilm-l6-v2-int8", "object": "model", "created": 0, "owned_by": "tessera",
    "task": "embed", "engine": "onnx", "size_bytes": 23_395_478, "cached": true,
    "state": "ready", "loaded": true, "resident_bytes": 120_000_000, "last_used": 1_795_000_000,
    "queue_depth": 0, "in_flight": 0, "device": "cpu", "pinned": false, "error": null
}))]
pub(crate) struct ModelObject {
    /// The catalog id, or the name of a model under a model folder.
    id: String,
    /// Always `model`.
    object: &'static str,
    /// Always 0: models have no creation time here.
    created: u64,
    /// `tessera` for catalog models, `local` for the operator's.
    owned_by: &'static str,
    /// What the model does (`embed`, `chat`, …), once known.
    task: Option<String>,
    /// The engine that runs it, once known.
    engine: Option<String>,
    /// Bytes of all its files, for catalog models.
    size_bytes: Option<u64>,
    /// Whether every file is on this machine.
    cached: bool,
    /// `unloaded`, `loading`, `ready` or `failed`.
    #[schema(value_type = String, example = "ready")]
    state: &'static str,
    /// Whether it is in memory and serving.
    loaded: bool,
    /// Bytes it holds, measured at load, while loaded.
    resident_bytes: Option<u64>,
    /// Unix seconds of the last request, if any.
    last_used: Option<u64>,
    /// Jobs waiting in its queue.
    queue_depth: usize,
    /// Requests using it now.
    in_flight: usize,
    /// Where it runs, while loaded: `cpu`, `cuda`, …
    device: Option<String>,
    /// Whether it is never unloaded.
    pinned: bool,
    /// Why the last load failed, while the model cools down.
    error: Option<String>,
}

impl ModelObject {
    fn unloaded(id: String, owned_by: &'static str) -> ModelObject {
        ModelObject {
            id,
            object: "model",
            created: 0,
            owned_by,
            task: None,
            engine: None,
            size_bytes: None,
            cached: false,
            state: LoadState::Unloaded.as_str(),
            loaded: false,
            resident_bytes: None,
            last_used: None,
            queue_depth: 0,
            in_flight: 0,
            device: None,
            pinned: false,
            error: None,
        }
    }

    fn apply(&mut self, status: &ModelStatus) {
        if let Some(task) = status.task {
            self.task = Some(task.to_string());
        }
        if let Some(engine) = status.engine {
            self.engine = Some(engine.to_string());
        }
        self.state = status.state.as_str();
        self.loaded = status.state == LoadState::Ready;
        self.resident_bytes = status.resident_bytes;
        self.last_used = status
            .last_used
            .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        self.queue_depth = status.queue_depth;
        self.in_flight = status.in_flight;
        self.device = status.device.map(|d| d.to_string());
        self.pinned = status.pinned;
        self.error = status.error.clone();
        if status.local {
            self.cached = true;
        }
    }
}

/// Catalog models, then models under the operator's folders, then anything else the runtime
/// holds, each with its runtime state. Never waits for a load.
fn model_objects(state: &AppState) -> Vec<ModelObject> {
    let runtime = &state.runtime;
    let statuses = runtime.models();
    let mut objects: Vec<ModelObject> = runtime
        .hub()
        .status()
        .into_iter()
        .map(|cached| {
            let mut object = ModelObject::unloaded(cached.id, "tessera");
            object.task = Some(cached.task.to_string());
            object.engine = Some(cached.engine.to_string());
            object.size_bytes = Some(cached.total_size);
            object.cached = cached.complete;
            object
        })
        .collect();
    for name in runtime
        .hub()
        .model_dir_entries(&runtime.config().model_dirs)
    {
        if !objects.iter().any(|o| o.id == name) {
            let mut object = ModelObject::unloaded(name, "local");
            object.cached = true;
            objects.push(object);
        }
    }
    for status in &statuses {
        match objects.iter_mut().find(|o| o.id == status.id) {
            Some(object) => object.apply(status),
            None => {
                let mut object = ModelObject::unloaded(status.id.clone(), "local");
                object.apply(status);
                objects.push(object);
            }
        }
    }
    objects
}

/// Lists the models with their state; never waits for a load.
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
    params(("id" = String, Path, description = "A catalog id, or a model folder's name with `/` sent as `%2F`", example = "all-minilm-l6-v2-int8")),
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
    find(&state, &id).map(Json)
}

/// Loads a model now, fetching it first if needed; answers once it is ready.
#[utoipa::path(
    post,
    path = "/v1/models/{id}/load",
    operation_id = "loadModel",
    tag = "admin",
    params(("id" = String, Path, description = "A catalog id, or a model folder's name with `/` sent as `%2F`", example = "all-minilm-l6-v2-int8")),
    responses(
        (status = 200, description = "The model, ready", body = ModelObject),
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
pub(crate) async fn load(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ModelObject>, ApiError> {
    state.runtime.load(&id).await?;
    find(&state, &id).map(Json)
}

/// Unloads a model now; requests running on it finish first. Unloading a model that is not
/// loaded does nothing.
#[utoipa::path(
    post,
    path = "/v1/models/{id}/unload",
    operation_id = "unloadModel",
    tag = "admin",
    params(("id" = String, Path, description = "A catalog id, or a model folder's name with `/` sent as `%2F`", example = "all-minilm-l6-v2-int8")),
    responses(
        (status = 200, description = "The model, unloaded", body = ModelObject),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 404, response = crate::openapi::NotFound),
        (status = 503, response = crate::openapi::Overloaded),
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn unload(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ModelObject>, ApiError> {
    state.runtime.unload(&id).await?;
    find(&state, &id).map(Json)
}

fn find(state: &AppState, id: &str) -> Result<ModelObject, ApiError> {
    model_objects(state)
        .into_iter()
        .find(|m| m.id == id)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "model `{id}` is not in the catalog, the server's model folders or loaded; see GET /v1/models"
            ))
            .param("model")
        })
}
