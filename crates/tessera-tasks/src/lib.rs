//! tessera's tasks: for each kind of work, the pre-processing, the engine call and the
//! post-processing that turn a request into an answer.
//!
//! A task owns what is specific to its work (tokenizing, pooling, normalizing) and calls an engine
//! from `tessera-engines` through a trait of `tessera-core`. It owns no threads and no queues: the
//! runtime decides when and where a task runs, and the server owns the wire format.
//!
//! Today: [`embed`], text embeddings from BERT-family encoders on ONNX Runtime or candle.
#![deny(missing_docs)]

pub mod embed;

use std::path::PathBuf;

pub use tessera_core::{Embedder, EmbedderError, Encoding};
use tessera_engines::EngineError;

/// What can go wrong in a task, before or after the engine runs.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// The engine could not be set up.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The engine failed while running.
    #[error(transparent)]
    Inference(#[from] EmbedderError),
    /// A model file could not be read or made no sense.
    #[error("{path}: {message}")]
    ModelFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// The caller's input cannot be processed as given.
    #[error("{0}")]
    InvalidInput(String),
}
