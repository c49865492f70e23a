//! A loaded embedding model: its tokenizer, its worker, and its settings.

use std::sync::Arc;

use tessera_core::Encoding;
use tessera_tasks::embed::{TextTokenizer, l2_normalize};

use crate::RuntimeError;
use crate::batcher::Batcher;

/// What to embed: texts, or sequences of token ids of the model's own vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbedInput {
    /// Texts.
    Texts(Vec<String>),
    /// Token ids; the model's special tokens are added around each sequence.
    Tokens(Vec<Vec<u32>>),
}

impl EmbedInput {
    /// The number of inputs.
    pub fn len(&self) -> usize {
        match self {
            EmbedInput::Texts(texts) => texts.len(),
            EmbedInput::Tokens(tokens) => tokens.len(),
        }
    }

    /// Whether there is nothing to embed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A cheap, cloneable handle to a loaded embedding model.
#[derive(Clone)]
pub struct EmbeddingHandle {
    pub(crate) id: Arc<str>,
    pub(crate) tokenizer: Arc<TextTokenizer>,
    pub(crate) batcher: Batcher,
    pub(crate) dimensions: usize,
    pub(crate) normalize: bool,
}

impl EmbeddingHandle {
    /// The model's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The length of each vector.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// The longest input the model takes, in tokens, special tokens included.
    pub fn max_tokens(&self) -> usize {
        self.tokenizer.max_tokens()
    }

    /// Whether vectors are scaled to unit length.
    pub fn normalizes(&self) -> bool {
        self.normalize
    }

    /// Tokenizes the input; too-long inputs are an error unless `truncate` is set. Synchronous and
    /// CPU-bound: call it off the async threads for large inputs.
    pub fn tokenize(
        &self,
        input: &EmbedInput,
        truncate: bool,
    ) -> Result<Vec<Encoding>, RuntimeError> {
        let first_empty = match input {
            EmbedInput::Texts(texts) => texts.iter().position(String::is_empty),
            EmbedInput::Tokens(tokens) => tokens.iter().position(Vec::is_empty),
        };
        if let Some(index) = first_empty {
            return Err(RuntimeError::InvalidInput(format!(
                "input[{index}] is empty; every input needs at least one character or token"
            )));
        }
        let result = match input {
            EmbedInput::Texts(texts) => self.tokenizer.encode(texts, truncate),
            EmbedInput::Tokens(tokens) => self.tokenizer.encode_ids(tokens, truncate),
        };
        result.map_err(|e| RuntimeError::from_task(&self.id, e))
    }

    /// Embeds tokenized inputs on the model's worker, batched with other callers' work.
    pub async fn embed(&self, encodings: Vec<Encoding>) -> Result<Vec<Vec<f32>>, RuntimeError> {
        let vectors = self.batcher.run(encodings).await?;
        Ok(self.finish(vectors))
    }

    /// Like [`EmbeddingHandle::embed`], for callers outside an async runtime (the CLI, benchmarks).
    pub fn embed_blocking(&self, encodings: Vec<Encoding>) -> Result<Vec<Vec<f32>>, RuntimeError> {
        let vectors = self.batcher.run_blocking(encodings)?;
        Ok(self.finish(vectors))
    }

    fn finish(&self, mut vectors: Vec<Vec<f32>>) -> Vec<Vec<f32>> {
        if self.normalize {
            vectors.iter_mut().for_each(|v| l2_normalize(v));
        }
        vectors
    }
}
