//! BERT-family encoders exported to ONNX, on ONNX Runtime.

use std::path::Path;

use ort::session::Session;
use ort::value::{TensorRef, ValueType};
use tessera_core::{Embedder, EmbedderError, Encoding};
use tessera_engines::onnx::{SessionConfig, load_session};

use super::pooling::mean_pool;
use crate::TaskError;

/// An ONNX encoder taking `input_ids`, `attention_mask` and (if the graph has it) `token_type_ids`,
/// returning the last hidden state `[batch, tokens, dim]` as its first output.
pub struct OnnxEmbedder {
    session: Session,
    takes_token_type_ids: bool,
    dimensions: usize,
}

impl OnnxEmbedder {
    /// Builds a session for `path` and checks that the graph looks like a BERT encoder.
    pub fn load(path: &Path, config: &SessionConfig) -> Result<Self, TaskError> {
        let session = load_session(path, config)?;
        let file_error = |message: String| TaskError::ModelFile {
            path: path.to_path_buf(),
            message,
        };
        let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        for required in ["input_ids", "attention_mask"] {
            if !names.contains(&required) {
                return Err(file_error(format!(
                    "the graph has no `{required}` input (inputs: {names:?}); it is not a BERT-style encoder"
                )));
            }
        }
        let takes_token_type_ids = names.contains(&"token_type_ids");
        let output = session
            .outputs()
            .first()
            .ok_or_else(|| file_error("the graph has no outputs".into()))?;
        let dimensions = match output.dtype() {
            ValueType::Tensor { shape, .. } => {
                shape.last().copied().filter(|&d| d > 0).map(|d| d as usize)
            }
            _ => None,
        }
        .ok_or_else(|| {
            file_error(format!(
                "output `{}` has no fixed last dimension",
                output.name()
            ))
        })?;
        Ok(OnnxEmbedder {
            session,
            takes_token_type_ids,
            dimensions,
        })
    }
}

impl Embedder for OnnxEmbedder {
    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn embed(&mut self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>, EmbedderError> {
        let failed = |e: ort::Error| EmbedderError::Inference {
            engine: "onnx",
            message: e.to_string(),
        };
        let rows = batch.len();
        let padded_len = batch.iter().map(|e| e.len()).max().unwrap_or(0);
        if rows == 0 || padded_len == 0 {
            return Ok(vec![vec![0.0; self.dimensions]; rows]);
        }
        let mut ids = vec![0i64; rows * padded_len];
        let mut mask = vec![0i64; rows * padded_len];
        let mut type_ids = vec![0i64; rows * padded_len];
        for (row, encoding) in batch.iter().enumerate() {
            let start = row * padded_len;
            for (i, (&id, &type_id)) in encoding.ids.iter().zip(&encoding.type_ids).enumerate() {
                ids[start + i] = i64::from(id);
                type_ids[start + i] = i64::from(type_id);
                mask[start + i] = 1;
            }
        }
        let shape = [rows, padded_len];
        let mut inputs = ort::inputs![
            "input_ids" => TensorRef::from_array_view((shape, ids.as_slice())).map_err(failed)?,
            "attention_mask" => TensorRef::from_array_view((shape, mask.as_slice())).map_err(failed)?,
        ];
        if self.takes_token_type_ids {
            inputs.push((
                "token_type_ids".into(),
                TensorRef::from_array_view((shape, type_ids.as_slice()))
                    .map_err(failed)?
                    .into(),
            ));
        }
        let outputs = self.session.run(inputs).map_err(failed)?;
        let (out_shape, hidden) = outputs[0].try_extract_tensor::<f32>().map_err(failed)?;
        let lengths: Vec<usize> = batch.iter().map(|e| e.len()).collect();
        match **out_shape {
            [b, l, d]
                if b as usize == rows
                    && l as usize == padded_len
                    && d as usize == self.dimensions =>
            {
                Ok(mean_pool(hidden, padded_len, self.dimensions, &lengths))
            }
            // Some exports pool inside the graph.
            [b, d] if b as usize == rows && d as usize == self.dimensions => Ok(hidden
                .chunks_exact(self.dimensions)
                .map(<[f32]>::to_vec)
                .collect()),
            ref other => Err(EmbedderError::Inference {
                engine: "onnx",
                message: format!(
                    "unexpected output shape {other:?} for a batch of {rows}×{padded_len}"
                ),
            }),
        }
    }
}
