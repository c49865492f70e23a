//! Text to token ids, with the model's special tokens and an exact count.

use std::path::Path;

use tessera_core::Encoding;
use tokenizers::{Tokenizer, TruncationParams};

use crate::TaskError;

/// A `tokenizer.json` tokenizer with the model's token limit. Cheap to share: encoding takes `&self`.
pub struct TextTokenizer {
    plain: Tokenizer,
    truncating: Tokenizer,
    max_tokens: usize,
}

impl TextTokenizer {
    /// Loads `tokenizer.json`; sequences longer than `max_tokens` (special tokens included) are
    /// an error unless the caller asks for truncation.
    pub fn from_file(path: &Path, max_tokens: usize) -> Result<Self, TaskError> {
        let file_error = |message: String| TaskError::ModelFile {
            path: path.to_path_buf(),
            message,
        };
        let mut plain = Tokenizer::from_file(path).map_err(|e| file_error(e.to_string()))?;
        plain.with_padding(None);
        plain
            .with_truncation(None)
            .map_err(|e| file_error(e.to_string()))?;
        let mut truncating = plain.clone();
        truncating
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| file_error(e.to_string()))?;
        Ok(TextTokenizer {
            plain,
            truncating,
            max_tokens,
        })
    }

    /// The longest sequence the model takes, special tokens included.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Encodes each text with the model's special tokens. `index_base` numbers inputs in errors.
    pub fn encode(&self, texts: &[String], truncate: bool) -> Result<Vec<Encoding>, TaskError> {
        texts
            .iter()
            .enumerate()
            .map(|(index, text)| {
                let encoding = self.encode_one(&self.plain, text)?;
                if encoding.len() <= self.max_tokens {
                    Ok(encoding)
                } else if truncate {
                    self.encode_one(&self.truncating, text)
                } else {
                    Err(self.too_long(index, encoding.len()))
                }
            })
            .collect()
    }

    /// Wraps caller-supplied token ids in the model's special tokens, as if they came from text.
    pub fn encode_ids(
        &self,
        sequences: &[Vec<u32>],
        truncate: bool,
    ) -> Result<Vec<Encoding>, TaskError> {
        let vocab = self.plain.get_vocab_size(true) as u32;
        sequences
            .iter()
            .enumerate()
            .map(|(index, ids)| {
                if let Some(bad) = ids.iter().find(|&&id| id >= vocab) {
                    return Err(TaskError::InvalidInput(format!(
                        "input[{index}] has token id {bad}, but this model's vocabulary has {vocab} tokens"
                    )));
                }
                let tokens = ids
                    .iter()
                    .map(|&id| tokenizers::Token::new(id, self.plain.id_to_token(id).unwrap_or_default(), (0, 0)))
                    .collect();
                let raw = tokenizers::Encoding::from_tokens(tokens, 0);
                let with_specials = self
                    .plain
                    .post_process(raw.clone(), None, true)
                    .map_err(|e| TaskError::InvalidInput(e.to_string()))?;
                if with_specials.len() <= self.max_tokens {
                    return Ok(convert(&with_specials));
                }
                if !truncate {
                    return Err(self.too_long(index, with_specials.len()));
                }
                let truncated = self
                    .truncating
                    .post_process(raw, None, true)
                    .map_err(|e| TaskError::InvalidInput(e.to_string()))?;
                Ok(convert(&truncated))
            })
            .collect()
    }

    fn encode_one(&self, tokenizer: &Tokenizer, text: &str) -> Result<Encoding, TaskError> {
        tokenizer
            .encode_fast(text, true)
            .map(|e| convert(&e))
            .map_err(|e| TaskError::InvalidInput(format!("could not tokenize input: {e}")))
    }

    fn too_long(&self, index: usize, tokens: usize) -> TaskError {
        TaskError::InvalidInput(format!(
            "input[{index}] is {tokens} tokens long, over this model's limit of {}; shorten it or set \"truncate\": true",
            self.max_tokens
        ))
    }
}

fn convert(encoding: &tokenizers::Encoding) -> Encoding {
    Encoding {
        ids: encoding.get_ids().to_vec(),
        type_ids: encoding.get_type_ids().to_vec(),
    }
}
