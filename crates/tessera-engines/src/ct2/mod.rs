//! CTranslate2 through `ct2rs`: Whisper's encoder and decoder on the CTranslate2 folders the
//! registries carry (`model.bin`, `config.json`, `vocabulary.txt`).
//!
//! [`WhisperModel`] wraps the low-level API: [`WhisperModel::encode`] turns a batch of log-mel
//! windows into an [`EncoderOutput`] that every later call reuses (language detection, decoding
//! at several temperatures, word alignment), so the encoder runs once per window. The mel, the
//! prompts and the seek loop belong to the task; this module only moves tensors and options.
//! The engine lives in `enabled.rs` (with the `ctranslate2` feature) or its stand-in
//! `disabled.rs`; everything public here is the same in both.
//!
//! CTranslate2 runs int8 GEMMs through oneDNN on x86 CPUs; `WhisperConfig::int8` asks for them
//! (weights stored as float16 are quantized at load time).

#[cfg(feature = "ctranslate2")]
mod enabled;
#[cfg(feature = "ctranslate2")]
use enabled as backend;

#[cfg(not(feature = "ctranslate2"))]
mod disabled;
#[cfg(not(feature = "ctranslate2"))]
use disabled as backend;

pub use backend::{EncoderOutput, WhisperModel};

use crate::Device;

/// How a Whisper model is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhisperConfig {
    /// Where it should run; without a CUDA build it runs on the CPU, with a log line.
    pub device: Device,
    /// Threads for one call (0: one per available core).
    pub threads: usize,
    /// Quantize the weights to int8 (int8 x float32 on CPUs): about twice as fast on CPUs, the
    /// same words in practice. Off: the weights' own precision, float32 on CPUs.
    pub int8: bool,
}

impl Default for WhisperConfig {
    fn default() -> Self {
        WhisperConfig {
            device: Device::Cpu,
            threads: 0,
            int8: true,
        }
    }
}

/// How one batch of windows is decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeOptions {
    /// Beams (1: greedy). Ignored when sampling (temperature > 0).
    pub beam_size: usize,
    /// 0 decodes by beam search or greedily; above 0 samples at that temperature.
    pub temperature: f32,
    /// Candidates sampled at a temperature above 0; the most likely one is kept.
    pub best_of: usize,
    /// Most tokens generated, prompt included (Whisper: 448).
    pub max_length: usize,
    /// The first timestamp may not be later than this index (0.02 s each).
    pub max_initial_timestamp_index: usize,
    /// Blanks may not start the text.
    pub suppress_blank: bool,
    /// Penalty on tokens already generated (1: none).
    pub repetition_penalty: f32,
    /// No n-gram of this size repeats (0: off).
    pub no_repeat_ngram_size: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            beam_size: 1,
            temperature: 0.0,
            best_of: 1,
            max_length: 448,
            max_initial_timestamp_index: 50,
            suppress_blank: true,
            repetition_penalty: 1.0,
            no_repeat_ngram_size: 0,
        }
    }
}

/// The decoder's answer for one window.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// Token ids generated after the prompt (timestamp tokens included, end of text excluded).
    pub tokens: Vec<u32>,
    /// The sequence's log-probability, divided by its length (CTranslate2's score).
    pub score: f32,
    /// The probability of `<|nospeech|>` at the first step.
    pub no_speech_prob: f32,
}

/// Where each text token sits in time: the decoder's cross-attention aligned to the audio.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Alignment {
    /// The path through (token index, frame index) pairs, frames of 20 ms.
    pub path: Vec<(usize, usize)>,
    /// Each text token's probability.
    pub token_probs: Vec<f32>,
}
