//! The embedding task: token ids in, one pooled vector per sequence out.

/// One tokenized sequence, special tokens included. Its attention mask is all ones over `ids`;
/// padding is the engine's business.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Encoding {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Segment (token type) ids, as long as `ids`.
    pub type_ids: Vec<u32>,
}

impl Encoding {
    /// The number of tokens.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the sequence has no tokens.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// What an engine reports when a forward pass fails.
#[derive(Debug, thiserror::Error)]
pub enum EmbedderError {
    /// The engine rejected the batch or failed while running it.
    #[error("{engine} inference failed: {message}")]
    Inference {
        /// The engine's name.
        engine: &'static str,
        /// What the engine said.
        message: String,
    },
}

/// A text encoder that turns a batch of tokenized sequences into pooled, unnormalized vectors.
///
/// Implementations are `Send` but not necessarily `Sync`: the runtime gives each loaded model one
/// worker thread that owns it.
pub trait Embedder: Send {
    /// The length of each vector.
    fn dimensions(&self) -> usize;

    /// Where the engine really runs, after any fallback to the CPU.
    fn device(&self) -> crate::Device;

    /// Pools the last hidden state over each sequence's tokens (mean, CLS or max, as the model was
    /// loaded); one vector per input, in order.
    fn embed(&mut self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>, EmbedderError>;
}
