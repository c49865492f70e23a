//! The CTranslate2 half of [`super`]: `ct2rs::sys::Whisper` behind tessera's types.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

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
    /// The encoder's output for a whole window of silence, `[1500][d_model]`, made on first use
    /// by [`WhisperModel::encode_short`].
    silence: OnceLock<Vec<f32>>,
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
    states: EncoderStates,
    batch: usize,
}

enum EncoderStates {
    /// As CTranslate2 returned it.
    Engine(StorageView<'static>),
    /// Assembled in tessera's memory, `[batch, 1500, d_model]`. CTranslate2 takes a view of a
    /// mutable buffer, hence the lock; it only reads it.
    Host(Mutex<Vec<f32>>, [usize; 3]),
}

impl EncoderOutput {
    /// How many windows it holds.
    pub fn batch(&self) -> usize {
        self.batch
    }
}

/// Frames the encoder makes of a whole window (its convolution halves the 3000 mel frames).
const ENCODED_FRAMES: usize = 1500;
/// The log-mel value of digital silence (log10 of the 1e-10 floor, scaled by `(x + 4) / 4`).
const SILENT_MEL: f32 = -1.5;

// `const float* ctranslate2::StorageView::data<float>() const`, which ct2rs does not bind: the
// encoder's output is read back to splice it (see `encode_short`). Itanium C++ ABI (Linux, macOS):
// a const member function takes `this` as its first argument. It throws (and so aborts) only when
// the view does not hold float32 values, which a CPU encoder's output always does.
#[cfg(not(target_env = "msvc"))]
unsafe extern "C" {
    #[link_name = "_ZNK11ctranslate211StorageView4dataIfEEPKT_v"]
    fn ct2_storage_view_data_f32(view: *const std::ffi::c_void) -> *const f32;
}

/// The `len` float32 values of a CPU view that CTranslate2 returned.
#[cfg(not(target_env = "msvc"))]
fn host_values(view: &StorageView<'static>, len: usize) -> Option<Vec<f32>> {
    if view.device() != sys::Device::CPU || usize::try_from(view.size()).ok()? != len {
        return None;
    }
    // The C++ object itself: ct2rs's view dereferences to it.
    let this: *const std::ffi::c_void = std::ptr::from_ref(&**view).cast();
    // SAFETY: `this` is a live CTranslate2 StorageView on the CPU that holds `len` values
    // (checked above); `data<float>()` only returns its buffer, which is copied before `view`
    // can drop.
    unsafe {
        let data = ct2_storage_view_data_f32(this);
        (!data.is_null()).then(|| std::slice::from_raw_parts(data, len).to_vec())
    }
}

#[cfg(target_env = "msvc")]
fn host_values(_view: &StorageView<'static>, _len: usize) -> Option<Vec<f32>> {
    None
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
            silence: OnceLock::new(),
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

    /// Runs `f` on `encoded`'s states as a CTranslate2 view.
    fn with_states<T, E: std::fmt::Display>(
        &self,
        encoded: &EncoderOutput,
        f: impl FnOnce(&StorageView) -> Result<T, E>,
    ) -> Result<T, EngineError> {
        match &encoded.states {
            EncoderStates::Engine(view) => f(view).map_err(|e| self.run_error(e)),
            EncoderStates::Host(values, shape) => {
                let mut values = values
                    .lock()
                    .map_err(|_| self.run_error("an earlier call on these states panicked"))?;
                let view = StorageView::new(shape, &mut values, sys::Device::CPU)
                    .map_err(|e| self.run_error(e))?;
                f(&view).map_err(|e| self.run_error(e))
            }
        }
    }

    /// Encodes `batch` windows of log-mel features, row-major `[batch, n_mels, frames]`.
    pub fn encode(
        &self,
        mel: &mut [f32],
        batch: usize,
        frames: usize,
    ) -> Result<EncoderOutput, EngineError> {
        Ok(EncoderOutput {
            states: EncoderStates::Engine(self.encoder_view(mel, batch, frames)?),
            batch,
        })
    }

    /// The encoder's output as CTranslate2 returns it.
    fn encoder_view(
        &self,
        mel: &mut [f32],
        batch: usize,
        frames: usize,
    ) -> Result<StorageView<'static>, EngineError> {
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
        self.whisper
            .encode(&features, false)
            .map_err(|e| self.run_error(e))
    }

    /// Encodes windows whose audio ends early as if they were whole: only the first `frames`
    /// mel frames of each (`[batch, n_mels, frames]`, the audio and some of its padding) go
    /// through the encoder, and the encoder's output for a window of silence stands in for the
    /// rest of the 1500 encoded frames. The encoder's cost grows with its frames, so 3 s of
    /// audio encode in about a tenth of the time; the decoder still sees a 30-second window
    /// that goes silent, so it ends the text where the speech ends (given the truncated
    /// output alone, Whisper repeats itself until its token limit).
    ///
    /// `None` when the encoder's output cannot be read back on this platform (MSVC) or
    /// `frames` is not an even count below a whole window: encode whole windows then.
    pub fn encode_short(
        &self,
        mel: &mut [f32],
        batch: usize,
        frames: usize,
    ) -> Result<Option<EncoderOutput>, EngineError> {
        if frames == 0 || frames % 2 == 1 || frames >= 2 * ENCODED_FRAMES {
            return Ok(None);
        }
        let Some(silence) = self.silence()? else {
            return Ok(None);
        };
        let d_model = silence.len() / ENCODED_FRAMES;
        let view = self.encoder_view(mel, batch, frames)?;
        let kept = frames / 2;
        let Some(head) = host_values(&view, batch * kept * d_model) else {
            return Ok(None);
        };
        let mut states = Vec::with_capacity(batch * ENCODED_FRAMES * d_model);
        for window in head.chunks_exact(kept * d_model) {
            states.extend_from_slice(window);
            states.extend_from_slice(&silence[kept * d_model..]);
        }
        Ok(Some(EncoderOutput {
            states: EncoderStates::Host(Mutex::new(states), [batch, ENCODED_FRAMES, d_model]),
            batch,
        }))
    }

    /// The encoder's output for a window of silence (made once), or `None` when it cannot be
    /// read back.
    fn silence(&self) -> Result<Option<&[f32]>, EngineError> {
        if let Some(silence) = self.silence.get() {
            return Ok(Some(silence));
        }
        let mut mel = vec![SILENT_MEL; self.n_mels() * 2 * ENCODED_FRAMES];
        let view = self.encoder_view(&mut mel, 1, 2 * ENCODED_FRAMES)?;
        let len = usize::try_from(view.size()).unwrap_or(0);
        if len == 0 || len % ENCODED_FRAMES != 0 {
            return Ok(None);
        }
        let Some(values) = host_values(&view, len) else {
            return Ok(None);
        };
        Ok(Some(self.silence.get_or_init(|| values)))
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
        let results = self.with_states(encoded, |view| {
            self.whisper.generate(view, prompts, &whisper_options)
        })?;
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
        let results = self.with_states(encoded, |view| self.whisper.detect_language(view))?;
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
        let results = self.with_states(encoded, |view| {
            self.whisper.align(view, &start, &text, frames, 7)
        })?;
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
