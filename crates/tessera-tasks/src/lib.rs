//! tessera's tasks: for each kind of work, the pre-processing, the engine call and the
//! post-processing that turn a request into an answer, and the registry that lists them.
//!
//! A task owns what is specific to its work (tokenizing, pooling, normalizing) and calls an engine
//! from `tessera-engines`. It owns no threads and no queues: the runtime decides when and where a
//! task runs, and the server owns the wire format. Each model family registers itself once in
//! [`registry::FAMILIES`] with its task, engine, how its files are recognised, how it loads, how
//! it batches and how much memory it needs ([`registry::Family`]); a loaded model is a
//! [`registry::Frontend`] (caller side) plus a [`registry::Runner`] (worker side).
//!
//! Today: [`embed`], text embeddings from BERT-family encoders on ONNX Runtime or candle;
//! [`llm`], chat, completion and fill-in-the-middle on llama.cpp, with [`chat`]'s templates and
//! tool-call parsing.
#![deny(missing_docs)]

pub mod audio;
pub mod chat;
pub mod embed;
pub mod llm;
pub mod packing;
pub mod registry;
pub mod speech;
pub mod transcribe;
pub mod vad;
pub mod vision;

use std::path::PathBuf;

pub use packing::DEFAULT_MAX_BATCH_PIXELS;
pub use registry::{
    Batching, Family, Frontend, LlmSettings, LoadContext, LoadedModel, Prepared, Registry,
    RequestLimits, Runner, StepRunner,
};
pub use tessera_core::{Embedder, EmbedderError, Encoding};
use tessera_engines::EngineError;
use tessera_hub::HubError;

/// What can go wrong in a task, before or after the engine runs.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The engine could not be set up.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The engine failed while running.
    #[error("{0}")]
    Inference(String),
    /// A model file could not be read or made no sense.
    #[error("{path}: {message}")]
    ModelFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A file the model needs is missing or its settings are bad.
    #[error(transparent)]
    Files(#[from] HubError),
    /// No registered family runs this model.
    #[error("{0}")]
    Unsupported(String),
    /// The caller's input cannot be processed as given.
    #[error("{0}")]
    InvalidInput(String),
    /// A request field other than the input is wrong for this model.
    #[error("{message}")]
    InvalidParam {
        /// The request field at fault, as the wire names it.
        param: &'static str,
        /// What is wrong and what to send instead.
        message: String,
    },
    /// A broken invariant inside tessera: a bug.
    #[error("internal error: {0}")]
    Internal(String),
}

/// A request field outside `range` is a [`TaskError::InvalidParam`] that names the field, its
/// value and the range.
pub(crate) fn in_range<T>(
    param: &'static str,
    value: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<(), TaskError>
where
    T: PartialOrd + std::fmt::Display,
{
    if range.contains(&value) {
        return Ok(());
    }
    Err(TaskError::InvalidParam {
        param,
        message: format!(
            "`{param}` is {value}; give a value from {} to {}",
            range.start(),
            range.end()
        ),
    })
}

impl From<EmbedderError> for TaskError {
    fn from(error: EmbedderError) -> Self {
        TaskError::Inference(error.to_string())
    }
}
