//! tessera's runtime: which models are loaded, and when and where their work runs.
//!
//! [`ModelManager`] resolves a model name through the hub (catalog id or local path), loads it on
//! first use and hands out cheap, cloneable handles such as [`EmbeddingHandle`]. Each loaded model
//! owns one OS worker thread fed by a bounded queue; the worker merges concurrent requests into
//! batches under a token budget ([`packing`]), so async callers never run an engine themselves. A
//! full queue refuses at once with [`RuntimeError::Overloaded`] instead of growing a backlog.
//!
//! The runtime knows tasks and engines but nothing of HTTP.
#![deny(missing_docs)]

mod batcher;
mod embedding;
mod manager;
pub mod packing;

pub use batcher::BatchConfig;
pub use embedding::{EmbedInput, EmbeddingHandle};
pub use manager::{ModelManager, RuntimeConfig};

use tessera_core::Task;
use tessera_hub::HubError;
use tessera_tasks::TaskError;

/// What can go wrong between a request and its answer, sorted so the server can pick a status.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The model could not be found, fetched or verified.
    #[error(transparent)]
    Hub(#[from] HubError),
    /// The model exists but does a different kind of work.
    #[error("model `{model}` is a {actual} model; this endpoint needs a {expected} model")]
    WrongTask {
        /// The model asked for.
        model: String,
        /// What it does.
        actual: Task,
        /// What the caller needs.
        expected: Task,
    },
    /// The caller's input cannot be processed.
    #[error("{0}")]
    InvalidInput(String),
    /// The model's queue is full; try again shortly.
    #[error(
        "model `{model}` is overloaded: its queue of {capacity} requests is full; retry shortly"
    )]
    Overloaded {
        /// The model.
        model: String,
        /// The queue's capacity.
        capacity: usize,
    },
    /// The model failed to load.
    // `reason` is shown in the message rather than chained as a source, so it prints once.
    #[error("model `{model}` could not be loaded: {reason}")]
    Load {
        /// The model.
        model: String,
        /// Why.
        reason: TaskError,
    },
    /// The engine failed on a batch.
    #[error("model `{model}` failed: {message}")]
    Inference {
        /// The model.
        model: String,
        /// What the engine said.
        message: String,
    },
    /// The model's worker is gone (it was unloaded or panicked).
    #[error("model `{model}` is shutting down")]
    Unavailable {
        /// The model.
        model: String,
    },
}

impl RuntimeError {
    fn from_task(model: &str, error: TaskError) -> Self {
        match error {
            TaskError::InvalidInput(message) => RuntimeError::InvalidInput(message),
            other => RuntimeError::Load {
                model: model.to_string(),
                reason: other,
            },
        }
    }
}
