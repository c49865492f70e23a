//! BERT-family encoders exported to ONNX, on ONNX Runtime through [`OnnxModel`].

use std::path::Path;

use tessera_core::{Device, Embedder, EmbedderError, Encoding};
use tessera_engines::onnx::{ElementType, OnnxModel, SessionConfig, TensorInfo, TensorInput};

use super::pooling::{PaddedBatch, Pooling};
use crate::TaskError;

/// An ONNX encoder taking `input_ids`, `attention_mask` and (if the graph has it) `token_type_ids`
/// as i64 or i32, whose first output is either the last hidden state `[batch, tokens, dim]`,
/// pooled here as asked, or an already pooled `[batch, dim]`, which keeps the graph's own pooling.
pub struct OnnxEmbedder {
    model: OnnxModel,
    /// The inputs the graph has and the integer type each takes.
    inputs: Vec<(Feed, IntType)>,
    output: String,
    dimensions: usize,
    /// `None` when the graph pools itself.
    pooling: Option<Pooling>,
}

impl OnnxEmbedder {
    /// Builds a session for `path` and checks that the graph looks like a BERT encoder.
    pub fn load(path: &Path, config: &SessionConfig, pooling: Pooling) -> Result<Self, TaskError> {
        let model = OnnxModel::load(path, config)?;
        let file_error = |message: String| TaskError::ModelFile {
            path: path.to_path_buf(),
            message,
        };
        let names = || {
            model
                .inputs()
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut inputs = Vec::new();
        for feed in [Feed::Ids, Feed::Mask, Feed::TypeIds] {
            match model.input(feed.name()) {
                Some(info) => inputs.push((feed, IntType::of(info).map_err(file_error)?)),
                // BERT takes segment ids; DistilBERT-style exports do not.
                None if feed == Feed::TypeIds => {}
                None => {
                    return Err(file_error(format!(
                        "the graph has no `{}` input (inputs: {}); it is not a BERT-style encoder",
                        feed.name(),
                        names()
                    )));
                }
            }
        }
        let output = model
            .outputs()
            .first()
            .ok_or_else(|| file_error("the graph has no outputs".into()))?;
        let dimensions = output
            .shape
            .last()
            .copied()
            .flatten()
            .filter(|&d| d > 0)
            .ok_or_else(|| file_error(format!("output {output} has no fixed last dimension")))?;
        let pooling = match output.rank() {
            3 => Some(pooling),
            2 => {
                tracing::debug!(
                    model = %path.display(),
                    output = %output,
                    requested = %pooling,
                    "the graph pools itself; its pooling is kept"
                );
                None
            }
            _ => {
                return Err(file_error(format!(
                    "output {output} is neither a hidden state [batch, tokens, dim] nor pooled [batch, dim]"
                )));
            }
        };
        Ok(OnnxEmbedder {
            output: output.name.clone(),
            model,
            inputs,
            dimensions,
            pooling,
        })
    }

    /// The pooling applied to the hidden state, or `None` when the graph pools itself.
    pub fn pooling(&self) -> Option<Pooling> {
        self.pooling
    }
}

impl Embedder for OnnxEmbedder {
    fn device(&self) -> Device {
        self.model.device()
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    fn embed(&mut self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>, EmbedderError> {
        let failed = |message: String| EmbedderError::Inference {
            engine: "onnx",
            message,
        };
        let padded = PaddedBatch::new(batch);
        if padded.is_empty() {
            return Ok(vec![vec![0.0; self.dimensions]; padded.rows]);
        }
        let (rows, padded_len, dim) = (padded.rows, padded.padded_len, self.dimensions);
        let buffers: Vec<(Feed, IntBuffer)> = self
            .inputs
            .iter()
            .map(|&(feed, ty)| (feed, ty.buffer(feed.values(&padded))))
            .collect();
        let inputs: Vec<(&str, TensorInput<'_>)> = buffers
            .iter()
            .map(|(feed, buffer)| (feed.name(), buffer.input([rows, padded_len])))
            .collect();
        let mut outputs = self.model.run(&inputs).map_err(|e| failed(e.to_string()))?;
        let output = outputs
            .take(&self.output)
            .map_err(|e| failed(e.to_string()))?;
        let shape = output.shape().to_vec();
        let values = output.into_f32().map_err(|e| failed(e.to_string()))?;
        match (self.pooling, shape.as_slice()) {
            (Some(pooling), &[b, l, d]) if b == rows && l == padded_len && d == dim => {
                Ok(pooling.pool(&values, padded_len, dim, &padded.lengths))
            }
            (None, &[b, d]) if b == rows && d == dim => {
                Ok(values.chunks_exact(dim).map(<[f32]>::to_vec).collect())
            }
            (_, other) => Err(failed(format!(
                "unexpected output shape {other:?} for a batch of {rows}×{padded_len}"
            ))),
        }
    }
}

/// An input of a BERT-style graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Feed {
    Ids,
    Mask,
    TypeIds,
}

impl Feed {
    fn name(self) -> &'static str {
        match self {
            Feed::Ids => "input_ids",
            Feed::Mask => "attention_mask",
            Feed::TypeIds => "token_type_ids",
        }
    }

    fn values(self, batch: &PaddedBatch) -> &[u32] {
        match self {
            Feed::Ids => &batch.ids,
            Feed::Mask => &batch.mask,
            Feed::TypeIds => &batch.type_ids,
        }
    }
}

/// The integer type a graph takes its ids in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IntType {
    I64,
    I32,
}

impl IntType {
    fn of(info: &TensorInfo) -> Result<Self, String> {
        match info.element_type {
            ElementType::I64 => Ok(IntType::I64),
            ElementType::I32 => Ok(IntType::I32),
            _ => Err(format!(
                "input {info} should take i64 or i32 token ids; it is not a BERT-style encoder"
            )),
        }
    }

    fn buffer(self, values: &[u32]) -> IntBuffer {
        match self {
            IntType::I64 => IntBuffer::I64(values.iter().map(|&v| i64::from(v)).collect()),
            // Vocabularies and segment ids are far below i32::MAX.
            IntType::I32 => IntBuffer::I32(values.iter().map(|&v| v as i32).collect()),
        }
    }
}

/// Ids converted to the type the graph takes.
enum IntBuffer {
    I64(Vec<i64>),
    I32(Vec<i32>),
}

impl IntBuffer {
    fn input(&self, shape: [usize; 2]) -> TensorInput<'_> {
        match self {
            IntBuffer::I64(values) => TensorInput::new(shape, values),
            IntBuffer::I32(values) => TensorInput::new(shape, values),
        }
    }
}
