//! Stand-in for builds without the `gguf` feature: the same API, and every entry point says
//! which feature to add. The types cannot be constructed, so their methods are unreachable.

use std::convert::Infallible;
use std::path::Path;

use super::{
    BatchEntry, ContextOptions, DecodeError, FimTokens, GgufOptions, SamplerConfig, Token,
};
use crate::{Device, EngineError};

fn not_compiled() -> EngineError {
    EngineError::NotCompiled {
        feature: "gguf",
        what: "GGUF models on llama.cpp",
    }
}

/// llama.cpp's system information: here, that it is not compiled in.
pub fn system_info() -> String {
    not_compiled().to_string()
}

/// Converts a JSON schema into a GBNF grammar (needs the `gguf` feature).
pub fn json_schema_to_grammar(_schema: &str) -> Result<String, EngineError> {
    Err(not_compiled())
}

/// A loaded GGUF model (never, in this build).
#[derive(Debug, Clone)]
pub struct GgufModel {
    never: Infallible,
}

#[allow(missing_docs)]
impl GgufModel {
    /// Always fails: the `gguf` feature is off.
    pub fn load(_path: &Path, _options: &GgufOptions) -> Result<GgufModel, EngineError> {
        Err(not_compiled())
    }
    pub fn path(&self) -> &Path {
        match self.never {}
    }
    pub fn device(&self) -> Device {
        match self.never {}
    }
    pub fn meta(&self, _key: &str) -> Option<String> {
        match self.never {}
    }
    pub fn train_context(&self) -> u32 {
        match self.never {}
    }
    pub fn vocab_size(&self) -> i32 {
        match self.never {}
    }
    pub fn size_bytes(&self) -> u64 {
        match self.never {}
    }
    pub fn tokenize(&self, _text: &str, _add_special: bool, _parse_special: bool) -> Vec<Token> {
        match self.never {}
    }
    pub fn piece(&self, _token: Token, _special: bool) -> Vec<u8> {
        match self.never {}
    }
    pub fn detokenize(&self, _tokens: &[Token], _special: bool) -> String {
        match self.never {}
    }
    pub fn is_token(&self, _token: Token) -> bool {
        match self.never {}
    }
    pub fn bos(&self) -> Option<Token> {
        match self.never {}
    }
    pub fn eos(&self) -> Option<Token> {
        match self.never {}
    }
    pub fn adds_bos(&self) -> bool {
        match self.never {}
    }
    pub fn is_end_of_generation(&self, _token: Token) -> bool {
        match self.never {}
    }
    pub fn fim(&self) -> Option<FimTokens> {
        match self.never {}
    }
    pub fn sampler(&self, _config: &SamplerConfig) -> Result<Sampler, EngineError> {
        match self.never {}
    }
    pub fn new_context(&self, _options: &ContextOptions) -> Result<GgufContext, EngineError> {
        match self.never {}
    }
}

/// A decoding context (never, in this build).
#[derive(Debug)]
pub struct GgufContext {
    never: Infallible,
}

#[allow(missing_docs)]
impl GgufContext {
    pub fn context_size(&self) -> u32 {
        match self.never {}
    }
    pub fn batch_size(&self) -> usize {
        match self.never {}
    }
    pub fn decode(&mut self, _entries: &[BatchEntry]) -> Result<(), DecodeError> {
        match self.never {}
    }
    pub fn logits(&self, _index: usize) -> &[f32] {
        match self.never {}
    }
    pub fn truncate(&mut self, _sequence: i32, _from: u32) {
        match self.never {}
    }
    pub fn share_prefix(&mut self, _from: i32, _to: i32, _len: u32) {
        match self.never {}
    }
}

/// A sampler (never, in this build).
#[derive(Debug)]
pub struct Sampler {
    never: Infallible,
}

impl Sampler {
    /// Never called: no context exists.
    pub fn sample(&mut self, _context: &GgufContext, _index: usize) -> Token {
        match self.never {}
    }
}
