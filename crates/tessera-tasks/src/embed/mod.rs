//! Text embeddings: tokenize, run a BERT-family encoder, mean-pool over the attention mask,
//! optionally L2-normalize.
//!
//! The engine is ONNX Runtime ([`OnnxEmbedder`]) or candle ([`CandleEmbedder`]); both implement
//! [`Embedder`] and return pooled, unnormalized vectors, so the same tokenizer and the same
//! post-processing serve both.

mod pooling;
mod task;
mod tokenizer;

#[cfg(feature = "candle")]
mod candle;
#[cfg(feature = "onnx")]
mod onnx;

use std::path::PathBuf;

use tessera_core::{Embedder, EngineKind};
use tessera_engines::onnx::SessionConfig;

#[cfg(feature = "candle")]
pub use self::candle::CandleEmbedder;
#[cfg(feature = "onnx")]
pub use self::onnx::OnnxEmbedder;
pub use pooling::{l2_normalize, mean_pool};
pub use task::{
    CANDLE_FAMILY, EmbedInput, EmbedRequest, EmbedRunner, Embedded, Embeddings, ONNX_FAMILY,
};
pub use tokenizer::TextTokenizer;

use crate::TaskError;

/// Where an embedding model's files are and how to run it.
#[derive(Debug, Clone)]
pub struct EmbedderSpec {
    /// The engine that runs the weights.
    pub engine: EngineKind,
    /// The weights: a `.onnx` file, or a `.safetensors` file beside a `config.json`.
    pub weights: PathBuf,
    /// `config.json` (needed by candle; optional for ONNX).
    pub config: Option<PathBuf>,
    /// ONNX Runtime session options; `device` is also used for candle.
    pub session: SessionConfig,
}

/// Loads the encoder an [`EmbedderSpec`] describes.
pub fn load_embedder(spec: &EmbedderSpec) -> Result<Box<dyn Embedder>, TaskError> {
    match spec.engine {
        EngineKind::Onnx => load_onnx(spec),
        EngineKind::Candle => load_candle(spec),
        other => Err(TaskError::InvalidInput(format!(
            "embeddings run on the onnx or candle engine, not {other}"
        ))),
    }
}

#[cfg(feature = "onnx")]
fn load_onnx(spec: &EmbedderSpec) -> Result<Box<dyn Embedder>, TaskError> {
    Ok(Box::new(OnnxEmbedder::load(&spec.weights, &spec.session)?))
}

#[cfg(not(feature = "onnx"))]
fn load_onnx(_spec: &EmbedderSpec) -> Result<Box<dyn Embedder>, TaskError> {
    Err(tessera_engines::EngineError::NotCompiled {
        feature: "onnx",
        what: "ONNX embedding models",
    }
    .into())
}

#[cfg(feature = "candle")]
fn load_candle(spec: &EmbedderSpec) -> Result<Box<dyn Embedder>, TaskError> {
    let config = spec
        .config
        .clone()
        .unwrap_or_else(|| spec.weights.with_file_name("config.json"));
    Ok(Box::new(CandleEmbedder::load(
        &spec.weights,
        &config,
        spec.session.device,
    )?))
}

#[cfg(not(feature = "candle"))]
fn load_candle(_spec: &EmbedderSpec) -> Result<Box<dyn Embedder>, TaskError> {
    Err(tessera_engines::EngineError::NotCompiled {
        feature: "candle",
        what: "safetensors embedding models",
    }
    .into())
}
