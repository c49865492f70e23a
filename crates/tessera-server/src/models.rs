//! `GET /v1/models` and `GET /v1/models/{id}`: the catalog, what is cached and what is loaded.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;

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
    task: String,
    engine: String,
    size_bytes: u64,
    cached: bool,
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
