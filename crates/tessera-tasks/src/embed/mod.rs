//! Text embeddings: tokenize, run a BERT-family encoder, pool over the attention mask (mean, CLS
//! or max, as the model asks: [`Pooling`]), optionally L2-normalize.
//!
//! The engine is ONNX Runtime ([`OnnxEmbedder`]) or candle ([`CandleEmbedder`]); both implement
//! [`Embedder`] and return pooled, unnormalized vectors, so the same tokenizer and the same
//! post-processing serve both. Both exist in every build: an engine compiled out fails to load
//! with an error naming the feature to add.

mod candle;
mod onnx;
mod pooling;
mod task;
mod tokenizer;

use std::path::PathBuf;

use tessera_core::{Embedder, EngineKind};
use tessera_engines::onnx::SessionConfig;

pub use self::candle::CandleEmbedder;
pub use self::onnx::OnnxEmbedder;
pub use pooling::{ParsePoolingError, Pooling, cls_pool, l2_normalize, max_pool, mean_pool};
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
    /// How token vectors become one vector (the catalog's `pooling` option). An ONNX graph whose
    /// output is already pooled keeps its own pooling.
    pub pooling: Pooling,
}

/// Loads the encoder an [`EmbedderSpec`] describes.
pub fn load_embedder(spec: &EmbedderSpec) -> Result<Box<dyn Embedder>, TaskError> {
    match spec.engine {
        EngineKind::Onnx => Ok(Box::new(OnnxEmbedder::load(
            &spec.weights,
            &spec.session,
            spec.pooling,
        )?)),
        EngineKind::Candle => {
            let config = spec
                .config
                .clone()
                .unwrap_or_else(|| spec.weights.with_file_name("config.json"));
            Ok(Box::new(CandleEmbedder::load(
                &spec.weights,
                &config,
                spec.session.device,
                spec.pooling,
            )?))
        }
        other => Err(TaskError::InvalidInput(format!(
            "embeddings run on the onnx or candle engine, not {other}"
        ))),
    }
}
