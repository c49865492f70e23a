//! The model manager: resolve a name, load on first use, hand out handles.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tessera_core::{EngineKind, Task};
use tessera_engines::onnx::SessionConfig;
use tessera_hub::{Hub, LocalModel};
use tessera_tasks::embed::{EmbedderSpec, TextTokenizer, load_embedder};

use crate::RuntimeError;
use crate::batcher::{BatchConfig, Batcher};
use crate::embedding::EmbeddingHandle;

/// How models are run.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// ONNX Runtime session options and the device (also used by candle).
    pub session: SessionConfig,
    /// How each model's worker forms batches.
    pub batch: BatchConfig,
}

/// Resolves model names and keeps loaded models. Shared behind an `Arc`; every method takes `&self`.
pub struct ModelManager {
    hub: Hub,
    config: RuntimeConfig,
    // One slot per model name; its mutex makes concurrent first uses wait for a single load.
    slots: Mutex<HashMap<String, Arc<Mutex<Option<EmbeddingHandle>>>>>,
}

impl ModelManager {
    /// A manager that finds models through `hub` and runs them as `config` says.
    pub fn new(hub: Hub, config: RuntimeConfig) -> Self {
        ModelManager {
            hub,
            config,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// The hub models come from.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The ids of the models loaded now.
    pub fn loaded(&self) -> Vec<String> {
        let slots = match self.slots.lock() {
            Ok(slots) => slots,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut ids: Vec<String> = slots
            .iter()
            .filter(|(_, slot)| slot.lock().map(|s| s.is_some()).unwrap_or(false))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The embedding model `name` (a catalog id or a local path), loading it on first use.
    /// Blocking: it may download and load weights. Async callers run it on a blocking thread.
    pub fn embedder(&self, name: &str) -> Result<EmbeddingHandle, RuntimeError> {
        let slot = {
            let mut slots = self
                .slots
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            slots.entry(name.to_string()).or_default().clone()
        };
        let mut slot = slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(handle) = slot.as_ref() {
            return Ok(handle.clone());
        }
        let handle = self.load_embedder(name)?;
        *slot = Some(handle.clone());
        Ok(handle)
    }

    fn load_embedder(&self, name: &str) -> Result<EmbeddingHandle, RuntimeError> {
        // Refuse from the catalog entry before downloading anything.
        let known_task = self.hub.catalog().get(name).map(|entry| entry.task);
        let wrong_task = |actual| RuntimeError::WrongTask {
            model: name.to_string(),
            actual,
            expected: Task::Embed,
        };
        if let Some(task) = known_task.filter(|&t| t != Task::Embed) {
            return Err(wrong_task(task));
        }
        let model = self.hub.resolve(name)?;
        if model.task != Task::Embed {
            return Err(wrong_task(model.task));
        }
        let started = Instant::now();
        let load_error = |reason| RuntimeError::Load {
            model: name.to_string(),
            reason,
        };
        let settings = EmbeddingSettings::from_model(&model);
        let tokenizer =
            TextTokenizer::from_file(&model.file("tokenizer.json")?, settings.max_tokens)
                .map_err(load_error)?;
        let spec = EmbedderSpec {
            engine: model.engine,
            weights: weights_file(&model)?,
            config: model.file("config.json").ok(),
            session: self.config.session.clone(),
        };
        let embedder = load_embedder(&spec).map_err(load_error)?;
        let dimensions = embedder.dimensions();
        let batcher = Batcher::spawn(name, embedder, self.config.batch).map_err(|e| {
            RuntimeError::Inference {
                model: name.to_string(),
                message: format!("could not start the worker thread: {e}"),
            }
        })?;
        let seconds = started.elapsed().as_secs_f64();
        metrics::histogram!("tessera_model_load_seconds", "model" => name.to_string())
            .record(seconds);
        tracing::info!(model = name, engine = %model.engine, dimensions, seconds, "model loaded");
        Ok(EmbeddingHandle {
            id: Arc::from(name),
            tokenizer: Arc::new(tokenizer),
            batcher,
            dimensions,
            normalize: settings.normalize,
        })
    }
}

/// The embedding options a catalog entry (or their defaults, for a local folder) gives.
struct EmbeddingSettings {
    max_tokens: usize,
    normalize: bool,
}

impl EmbeddingSettings {
    fn from_model(model: &LocalModel) -> Self {
        let max_tokens = model
            .options
            .get("max_tokens")
            .and_then(|v| v.as_u64())
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or(512);
        let normalize = model
            .options
            .get("normalize")
            .and_then(|v| v.as_bool())
            .unwrap_or(true);
        EmbeddingSettings {
            max_tokens,
            normalize,
        }
    }
}

/// The weights file: the `.onnx` graph for ONNX Runtime, the `.safetensors` for candle.
fn weights_file(model: &LocalModel) -> Result<PathBuf, RuntimeError> {
    let extension = match model.engine {
        EngineKind::Onnx => "onnx",
        _ => "safetensors",
    };
    Ok(model.file_with_extension(extension)?)
}
