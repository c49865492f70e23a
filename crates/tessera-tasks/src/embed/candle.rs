//! BERT-family encoders from safetensors, on candle through [`BertEncoder`].

use std::path::Path;

use tessera_core::{Device, Embedder, EmbedderError, Encoding};
use tessera_engines::candle::BertEncoder;

use super::pooling::{PaddedBatch, Pooling};
use crate::TaskError;

/// A BERT encoder in candle (`candle_transformers::models::bert`), in f32, pooled as asked.
pub struct CandleEmbedder {
    encoder: BertEncoder,
    pooling: Pooling,
}

impl CandleEmbedder {
    /// Loads `config.json` and the safetensors weights onto `device` (or the CPU, if it cannot be
    /// used).
    pub fn load(
        weights: &Path,
        config: &Path,
        device: Device,
        pooling: Pooling,
    ) -> Result<Self, TaskError> {
        Ok(CandleEmbedder {
            encoder: BertEncoder::load(weights, config, device)?,
            pooling,
        })
    }

    /// The pooling applied to the hidden state.
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }
}

impl Embedder for CandleEmbedder {
    fn device(&self) -> Device {
        self.encoder.device()
    }

    fn dimensions(&self) -> usize {
        self.encoder.hidden_size()
    }

    fn embed(&mut self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>, EmbedderError> {
        let padded = PaddedBatch::new(batch);
        let dim = self.encoder.hidden_size();
        if padded.is_empty() {
            return Ok(vec![vec![0.0; dim]; padded.rows]);
        }
        let hidden = self
            .encoder
            .forward(
                &padded.ids,
                &padded.type_ids,
                &padded.mask,
                padded.rows,
                padded.padded_len,
            )
            .map_err(|e| EmbedderError::Inference {
                engine: "candle",
                message: e.to_string(),
            })?;
        Ok(self
            .pooling
            .pool(&hidden, padded.padded_len, dim, &padded.lengths))
    }
}
