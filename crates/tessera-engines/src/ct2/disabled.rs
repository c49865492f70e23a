//! Stand-in for builds without the `ctranslate2` feature: the same API, and loading says which
//! feature to add. The types cannot be constructed, so their methods are unreachable.

use std::convert::Infallible;
use std::path::Path;

use super::{Alignment, DecodeOptions, Decoded, WhisperConfig};
use crate::{Device, EngineError};

/// A loaded Whisper model (never, in this build).
#[derive(Debug)]
pub struct WhisperModel {
    never: Infallible,
}

/// An encoder output (never, in this build).
pub struct EncoderOutput {
    never: Infallible,
}

#[allow(missing_docs)]
impl EncoderOutput {
    pub fn batch(&self) -> usize {
        match self.never {}
    }
}

#[allow(missing_docs)]
impl WhisperModel {
    /// Always fails: the `ctranslate2` feature is off.
    pub fn load(_dir: &Path, _config: &WhisperConfig) -> Result<WhisperModel, EngineError> {
        Err(EngineError::NotCompiled {
            feature: "ctranslate2",
            what: "Whisper on CTranslate2",
        })
    }
    pub fn device(&self) -> Device {
        match self.never {}
    }
    pub fn is_multilingual(&self) -> bool {
        match self.never {}
    }
    pub fn n_mels(&self) -> usize {
        match self.never {}
    }
    pub fn encode(
        &self,
        _mel: &mut [f32],
        _batch: usize,
        _frames: usize,
    ) -> Result<EncoderOutput, EngineError> {
        match self.never {}
    }
    pub fn encode_short(
        &self,
        _mel: &mut [f32],
        _batch: usize,
        _frames: usize,
    ) -> Result<Option<EncoderOutput>, EngineError> {
        match self.never {}
    }
    pub fn generate(
        &self,
        _encoded: &EncoderOutput,
        _prompts: &[Vec<String>],
        _options: &DecodeOptions,
    ) -> Result<Vec<Decoded>, EngineError> {
        match self.never {}
    }
    pub fn detect_language(
        &self,
        _encoded: &EncoderOutput,
    ) -> Result<Vec<Vec<(String, f32)>>, EngineError> {
        match self.never {}
    }
    pub fn align(
        &self,
        _encoded: &EncoderOutput,
        _start: &[u32],
        _text: &[Vec<u32>],
        _frames: &[usize],
    ) -> Result<Vec<Alignment>, EngineError> {
        match self.never {}
    }
}
