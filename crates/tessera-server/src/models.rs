//! `GET /v1/models`, `GET /v1/models/{id}`: the catalog, the operator's model folders, and what
//! the runtime holds, with each model's state. `POST /v1/models/{id}/load` and `/unload` for
//! operators.

use std::time::UNIX_EPOCH;

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use tessera_runtime::{LoadState, ModelStatus};

use crate::{ApiError, AppState};

#[derive(Serialize)]
pub(crate) struct ModelList {
    object: &'static str,
    data: Vec<ModelObject>,
}

/// OpenAI's model object, plus what tessera knows of it.
#[derive(Serialize)]
pub(crate) struct ModelObject {
    id: String,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
    task: Option<String>,
    engine: Option<String>,
    size_bytes: Option<u64>,
    cached: bool,
    /// `unloaded`, `loading`, `ready` or `failed`.
    state: &'static str,
    loaded: bool,
    resident_bytes: Option<u64>,
    /// Unix seconds of the last request, if any.
    last_used: Option<u64>,
    queue_depth: usize,
    in_flight: usize,
    device: Option<String>,
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

pub(crate) async fn list(State(state): State<AppState>) -> Json<ModelList> {
    Json(ModelList {
        object: "list",
        data: model_objects(&state),
    })
}

pub(crate) async fn retrieve(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ModelObject>, ApiError> {
    find(&state, &id).map(Json)
}

/// Loads a model now (operators; needs the admin key when keys are set).
pub(crate) async fn load(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ModelObject>, ApiError> {
    state.runtime.load(&id).await?;
    find(&state, &id).map(Json)
}

/// Unloads a model now; requests running on it finish first.
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
