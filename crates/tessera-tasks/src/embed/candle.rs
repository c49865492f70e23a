//! BERT-family encoders from safetensors, on candle.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tessera_core::{Embedder, EmbedderError, Encoding};

use super::pooling::mean_pool;
use crate::TaskError;

/// A BERT encoder in candle (`candle_transformers::models::bert`), in f32.
pub struct CandleEmbedder {
    model: BertModel,
    device: Device,
    dimensions: usize,
}

impl CandleEmbedder {
    /// Loads `config.json` and the safetensors weights.
    pub fn load(
        weights: &Path,
        config: &Path,
        device: tessera_engines::Device,
    ) -> Result<Self, TaskError> {
        let config_text = std::fs::read_to_string(config).map_err(|e| TaskError::ModelFile {
            path: config.to_path_buf(),
            message: e.to_string(),
        })?;
        let config: Config =
            serde_json::from_str(&config_text).map_err(|e| TaskError::ModelFile {
                path: config.to_path_buf(),
                message: e.to_string(),
            })?;
        let device = tessera_engines::candle::device(device);
        let weights_error = |message: String| TaskError::ModelFile {
            path: weights.to_path_buf(),
            message,
        };
        let bytes = std::fs::read(weights).map_err(|e| weights_error(e.to_string()))?;
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)
            .map_err(|e| weights_error(e.to_string()))?;
        let model = BertModel::load(vb, &config).map_err(|e| weights_error(e.to_string()))?;
        Ok(CandleEmbedder {
            model,
            device,
            dimensions: config.hidden_size,
        })
    }

    fn forward(&self, batch: &[&Encoding]) -> candle_core::Result<Vec<Vec<f32>>> {
        let rows = batch.len();
        let padded_len = batch.iter().map(|e| e.len()).max().unwrap_or(0);
        let mut ids = vec![0u32; rows * padded_len];
        let mut mask = vec![0u32; rows * padded_len];
        let mut type_ids = vec![0u32; rows * padded_len];
        for (row, encoding) in batch.iter().enumerate() {
            let start = row * padded_len;
            ids[start..start + encoding.len()].copy_from_slice(&encoding.ids);
            type_ids[start..start + encoding.len()].copy_from_slice(&encoding.type_ids);
            mask[start..start + encoding.len()].fill(1);
        }
        let shape = (rows, padded_len);
        let ids = Tensor::from_vec(ids, shape, &self.device)?;
        let type_ids = Tensor::from_vec(type_ids, shape, &self.device)?;
        let mask = Tensor::from_vec(mask, shape, &self.device)?;
        let hidden = self.model.forward(&ids, &type_ids, Some(&mask))?;
        let hidden = hidden.flatten_all()?.to_vec1::<f32>()?;
        let lengths: Vec<usize> = batch.iter().map(|e| e.len()).collect();
        Ok(mean_pool(&hidden, padded_len, self.dimensions, &lengths))
    }
}

impl Embedder for CandleEmbedder {
    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn embed(&mut self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>, EmbedderError> {
        if batch.is_empty() || batch.iter().all(|e| e.is_empty()) {
            return Ok(vec![vec![0.0; self.dimensions]; batch.len()]);
        }
        self.forward(batch).map_err(|e| EmbedderError::Inference {
            engine: "candle",
            message: e.to_string(),
        })
    }
}
