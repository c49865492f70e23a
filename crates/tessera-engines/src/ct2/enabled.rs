//! The CTranslate2 half of [`super`]: `ct2rs::sys::Whisper` behind tessera's types.

use std::path::{Path, PathBuf};

use ct2rs::sys::{self, ComputeType, Config, StorageView, Whisper, WhisperOptions};

use super::{Alignment, DecodeOptions, Decoded, WhisperConfig};
use crate::{Device, EngineError};

/// The seed of CTranslate2's random generators (sampled decoding).
const SAMPLING_SEED: u32 = 20_261_124;

/// A loaded Whisper model. `Send + Sync`: CTranslate2 queues every call on its own worker.
pub struct WhisperModel {
    whisper: Whisper,
    path: PathBuf,
    device: Device,
}

impl std::fmt::Debug for WhisperModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WhisperModel")
            .field("path", &self.path)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// The encoder's output for a batch of windows, reused by every later call on them.
pub struct EncoderOutput {
    view: StorageView<'static>,
    batch: usize,
}

impl EncoderOutput {
    /// How many windows it holds.
    pub fn batch(&self) -> usize {
        self.batch
    }
}

impl WhisperModel {
    /// Loads a CTranslate2 Whisper folder.
    pub fn load(dir: &Path, config: &WhisperConfig) -> Result<WhisperModel, EngineError> {
        let device = match config.device {
            Device::Cpu | Device::Auto => Device::Cpu,
            requested => {
                tracing::warn!(
                    %requested,
                    "this tessera's CTranslate2 is built for the CPU only; Whisper runs on the CPU"
                );
                Device::Cpu
            }
        };
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        // The temperature fallback samples from CTranslate2's generators, one per thread, each
        // seeded on first use. A fixed seed instead of `std::random_device` makes a fresh
        // process give the same answers to the same requests.
        static SEEDED: std::sync::Once = std::sync::Once::new();
        SEEDED.call_once(|| sys::set_random_seed(SAMPLING_SEED));
        let whisper = Whisper::new(
            dir,
            Config {
                device: sys::Device::CPU,
                compute_type: if config.int8 {
                    ComputeType::INT8
                } else {
                    ComputeType::DEFAULT
                },
                num_threads_per_replica: threads,
                ..Config::default()
            },
        )
        .map_err(|e| EngineError::Load {
            path: dir.to_path_buf(),
            message: format!("{e:#}"),
        })?;
        Ok(WhisperModel {
            whisper,
            path: dir.to_path_buf(),
            device,
        })
    }

    /// Where it runs.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Whether it knows several languages (and the translate task).
    pub fn is_multilingual(&self) -> bool {
        self.whisper.is_multilingual()
    }

    /// Mel bins it reads (80, or 128 for large-v3).
    pub fn n_mels(&self) -> usize {
        self.whisper.n_mels()
    }

    fn run_error(&self, e: impl std::fmt::Display) -> EngineError {
        EngineError::Run {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// Encodes `batch` windows of log-mel features, row-major `[batch, n_mels, frames]`.
    pub fn encode(
        &self,
        mel: &mut [f32],
        batch: usize,
        frames: usize,
    ) -> Result<EncoderOutput, EngineError> {
        let shape = [batch, self.n_mels(), frames];
        if mel.len() != shape.iter().product::<usize>() {
            return Err(EngineError::Input {
                path: self.path.clone(),
                tensor: "features".into(),
                message: format!("{} values do not make a {shape:?} batch", mel.len()),
            });
        }
        let features =
            StorageView::new(&shape, mel, sys::Device::CPU).map_err(|e| self.run_error(e))?;
        let view = self
            .whisper
            .encode(&features, false)
            .map_err(|e| self.run_error(e))?;
        Ok(EncoderOutput { view, batch })
    }

    /// Decodes every window of `encoded`, each after its prompt (token strings).
    pub fn generate(
        &self,
        encoded: &EncoderOutput,
        prompts: &[Vec<String>],
        options: &DecodeOptions,
    ) -> Result<Vec<Decoded>, EngineError> {
        let sampling = options.temperature > 0.0;
        let whisper_options = WhisperOptions {
            beam_size: if sampling {
                1
            } else {
                options.beam_size.max(1)
            },
            patience: 1.0,
            length_penalty: 1.0,
            repetition_penalty: options.repetition_penalty,
            no_repeat_ngram_size: options.no_repeat_ngram_size,
            max_length: options.max_length,
            // 0 samples from the whole distribution.
            sampling_topk: if sampling { 0 } else { 1 },
            sampling_temperature: if sampling { options.temperature } else { 1.0 },
            num_hypotheses: if sampling { options.best_of.max(1) } else { 1 },
            return_scores: true,
            return_logits_vocab: false,
            return_no_speech_prob: true,
            max_initial_timestamp_index: options.max_initial_timestamp_index,
            suppress_blank: options.suppress_blank,
            // -1: the model's own list of suppressed tokens.
            suppress_tokens: vec![-1],
        };
        let results = self
            .whisper
            .generate(&encoded.view, prompts, &whisper_options)
            .map_err(|e| self.run_error(e))?;
        results
            .into_iter()
            .map(|result| {
                // Hypotheses come best first.
                let tokens = result
                    .sequences_ids
                    .into_iter()
                    .next()
                    .ok_or_else(|| self.run_error("the decoder returned no hypothesis"))?;
                Ok(Decoded {
                    tokens: tokens.into_iter().map(|t| t as u32).collect(),
                    score: result.scores.first().copied().unwrap_or(f32::NEG_INFINITY),
                    no_speech_prob: result.no_speech_prob,
                })
            })
            .collect()
    }

    /// Each window's languages with their probabilities, most likely first, as language
    /// tokens (`<|en|>`). Multilingual models only.
    pub fn detect_language(
        &self,
        encoded: &EncoderOutput,
    ) -> Result<Vec<Vec<(String, f32)>>, EngineError> {
        let results = self
            .whisper
            .detect_language(&encoded.view)
            .map_err(|e| self.run_error(e))?;
        Ok(results
            .into_iter()
            .map(|languages| {
                languages
                    .into_iter()
                    .map(|d| (d.language, d.probability))
                    .collect()
            })
            .collect())
    }

    /// Aligns each window's text tokens (ids below end-of-text) to its audio: `start` is the
    /// start-of-transcript sequence the text followed, `frames` each window's mel frames that
    /// hold audio.
    pub fn align(
        &self,
        encoded: &EncoderOutput,
        start: &[u32],
        text: &[Vec<u32>],
        frames: &[usize],
    ) -> Result<Vec<Alignment>, EngineError> {
        let start: Vec<usize> = start.iter().map(|&t| t as usize).collect();
        let text: Vec<Vec<usize>> = text
            .iter()
            .map(|tokens| tokens.iter().map(|&t| t as usize).collect())
            .collect();
        // 7: the median filter width openai/whisper uses on the attention weights.
        let results = self
            .whisper
            .align(&encoded.view, &start, &text, frames, 7)
            .map_err(|e| self.run_error(e))?;
        Ok(results
            .into_iter()
            .map(|result| Alignment {
                path: result
                    .alignments
                    .iter()
                    .map(|a| (a.token_x.max(0) as usize, a.frame_x.max(0) as usize))
                    .collect(),
                token_probs: result.text_token_probs,
            })
            .collect())
    }
}
