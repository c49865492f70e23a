//! Text to speech with Piper voices: VITS graphs on ONNX Runtime, fed espeak-ng phonemes.
//!
//! The frontend splits the text into sentences (the first sentence further into clauses, so the
//! first audio comes soon), phonemizes each piece with espeak-ng ([`espeak`]) and maps the
//! phonemes to the voice's ids. The runner is a [`StepRunner`]: each step synthesizes one chunk
//! of one request and sends it at once, so a long text streams and several requests take turns.

pub mod espeak;
mod text;

pub use text::{Chunk, split};

use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use tessera_core::{Device, EngineKind, Task};
use tessera_engines::onnx::{OnnxModel, TensorInput};
use tessera_hub::LocalModel;
use tokio::sync::mpsc;
use unicode_normalization::UnicodeNormalization;

use crate::registry::{
    Batching, Family, Frontend, LoadContext, LoadedModel, Prepared, StepRunner, file_bytes,
};
use crate::{TaskError, in_range};

/// Piper VITS voices.
pub static FAMILY: Family = Family {
    name: "piper-vits",
    task: Task::Speech,
    engine: EngineKind::Onnx,
    batching: Batching::Continuous,
    recognises: |model| voice_config(model).is_ok(),
    load,
    estimate_bytes: |model| file_bytes(model).saturating_mul(3),
};

/// The longest text one request may speak, in characters (OpenAI's limit).
pub const MAX_CHARACTERS: usize = 4096;

/// Requests synthesized in turn at once.
const SLOTS: usize = 8;

/// What a caller asks to hear.
#[derive(Debug, Clone)]
pub struct SpeechRequest {
    /// The text.
    pub text: String,
    /// A speaker of a multi-speaker voice (its name or number); ignored by single-speaker voices.
    pub speaker: Option<String>,
    /// 0.25 to 4; 1 is the voice's own pace.
    pub speed: f32,
    /// Variation of the voice (default: the voice's, usually 0.667).
    pub noise_scale: Option<f32>,
    /// Variation of phoneme lengths (default: the voice's, usually 0.8).
    pub noise_w: Option<f32>,
}

/// A request ready for the engine: phoneme ids per chunk.
#[derive(Debug)]
pub struct SpeechJob {
    /// Phonemized one at a time, just before each is synthesized, so the first audio does not
    /// wait for the whole text's phonemes.
    chunks: Vec<Chunk>,
    speaker: Option<i64>,
    /// noise_scale, length_scale, noise_w, as the graph takes them.
    scales: [f32; 3],
    characters: usize,
}

/// What the synthesis sends, chunk by chunk.
#[derive(Debug)]
pub enum SpeechEvent {
    /// The next samples (mono, at [`Speech::sample_rate`]).
    Audio(Vec<f32>),
    /// All chunks were sent.
    Done,
    /// The engine failed; nothing more comes.
    Failed(String),
}

/// A synthesis in progress: its chunks arrive on `events`. Dropping it stops the work.
#[derive(Debug)]
pub struct Speech {
    /// Samples per second of the audio.
    pub sample_rate: u32,
    /// Characters of the text.
    pub characters: usize,
    /// The chunks, then [`SpeechEvent::Done`].
    pub events: mpsc::UnboundedReceiver<SpeechEvent>,
}

/// A Piper voice's `.onnx.json`.
#[derive(Debug, Deserialize)]
struct VoiceConfig {
    audio: AudioConfig,
    espeak: EspeakConfig,
    #[serde(default)]
    inference: InferenceConfig,
    phoneme_id_map: HashMap<String, Vec<i64>>,
    #[serde(default)]
    num_speakers: u32,
    #[serde(default)]
    speaker_id_map: HashMap<String, i64>,
}

#[derive(Debug, Deserialize)]
struct AudioConfig {
    sample_rate: u32,
}

#[derive(Debug, Deserialize)]
struct EspeakConfig {
    voice: String,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct InferenceConfig {
    noise_scale: f32,
    length_scale: f32,
    noise_w: f32,
}

impl Default for InferenceConfig {
    fn default() -> Self {
        InferenceConfig {
            noise_scale: 0.667,
            length_scale: 1.0,
            noise_w: 0.8,
        }
    }
}

impl VoiceConfig {
    /// The phoneme ids of one chunk: espeak-ng's IPA for each clause followed by its punctuation,
    /// then `^`, each phoneme followed by the pad `_`, and `$`, as Piper's training wrote them.
    /// Characters the voice has no id for are left out. `None` when nothing is speakable.
    fn chunk_ids(&self, chunk: &Chunk) -> Result<Option<Vec<i64>>, TaskError> {
        let mut phonemes = String::new();
        for piece in &chunk.pieces {
            let clauses = espeak::phonemize(&piece.text, &self.espeak.voice)?;
            if clauses.is_empty() {
                continue;
            }
            if !phonemes.is_empty() {
                phonemes.push(' ');
            }
            phonemes.push_str(&clauses.join(" "));
            if let Some(mark) = piece.punctuation {
                phonemes.push(mark);
            }
        }
        if phonemes.is_empty() {
            return Ok(None);
        }
        let map = &self.phoneme_id_map;
        let id = |symbol: &str| map.get(symbol).into_iter().flatten().copied();
        let mut ids: Vec<i64> = id("^").chain(id("_")).collect();
        let mut buffer = [0u8; 4];
        for phoneme in phonemes.nfd() {
            let Some(mapped) = map.get(phoneme.encode_utf8(&mut buffer) as &str) else {
                continue;
            };
            ids.extend(mapped);
            ids.extend(id("_"));
        }
        ids.extend(id("$"));
        Ok(Some(ids))
    }
}

/// The speech frontend: the voice's settings.
pub struct SpeechFrontend {
    config: Arc<VoiceConfig>,
}

impl SpeechFrontend {
    /// The speaker names of a multi-speaker voice (empty for one speaker).
    pub fn speakers(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .config
            .speaker_id_map
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names
    }

    fn speaker(&self, asked: Option<&str>) -> Result<Option<i64>, TaskError> {
        if self.config.num_speakers <= 1 {
            return Ok(None);
        }
        let Some(asked) = asked else {
            return Ok(Some(0));
        };
        if let Some(id) = self.config.speaker_id_map.get(asked) {
            return Ok(Some(*id));
        }
        match asked.parse::<i64>() {
            Ok(id) if (0..i64::from(self.config.num_speakers)).contains(&id) => Ok(Some(id)),
            _ => Err(TaskError::InvalidParam {
                param: "voice",
                message: format!(
                    "this voice has no speaker `{asked}`; choose one of: {}",
                    self.speakers().join(", ")
                ),
            }),
        }
    }
}

impl Frontend for SpeechFrontend {
    const TASK: Task = Task::Speech;
    type Request = SpeechRequest;
    type Input = SpeechJob;
    type Output = Speech;
    type Response = Speech;

    fn prepare(&self, request: SpeechRequest) -> Result<Prepared<SpeechJob>, TaskError> {
        let characters = request.text.chars().count();
        if request.text.trim().is_empty() {
            return Err(TaskError::InvalidInput(
                "`input` is empty; send the text to speak".into(),
            ));
        }
        if characters > MAX_CHARACTERS {
            return Err(TaskError::InvalidInput(format!(
                "`input` has {characters} characters, over the limit of {MAX_CHARACTERS}; split it into several requests"
            )));
        }
        in_range("speed", request.speed, 0.25..=4.0)?;
        for (param, value) in [
            ("noise_scale", request.noise_scale),
            ("noise_w", request.noise_w),
        ] {
            if let Some(value) = value {
                in_range(param, value, 0.0..=2.0)?;
            }
        }
        let speaker = self.speaker(request.speaker.as_deref())?;
        let chunks = split(&request.text);
        if chunks.is_empty() {
            return Err(TaskError::InvalidInput(
                "`input` has nothing speakable (only punctuation or symbols)".into(),
            ));
        }
        let inference = &self.config.inference;
        Ok(Prepared {
            input: SpeechJob {
                chunks,
                speaker,
                scales: [
                    request.noise_scale.unwrap_or(inference.noise_scale),
                    inference.length_scale / request.speed,
                    request.noise_w.unwrap_or(inference.noise_w),
                ],
                characters,
            },
            cost: characters,
        })
    }

    fn finish(&self, output: Speech) -> Result<Speech, TaskError> {
        Ok(output)
    }
}

/// A request being synthesized.
struct Live {
    job: SpeechJob,
    next: usize,
    events: mpsc::UnboundedSender<SpeechEvent>,
}

/// Synthesizes one chunk per step, taking the requests in turn.
pub struct SpeechRunner {
    model: OnnxModel,
    config: Arc<VoiceConfig>,
    sample_rate: u32,
    live: Vec<Live>,
    turn: usize,
}

impl SpeechRunner {
    fn synthesize(
        &mut self,
        ids: &[i64],
        speaker: Option<i64>,
        scales: [f32; 3],
    ) -> Result<Vec<f32>, TaskError> {
        let lengths = [ids.len() as i64];
        let speaker = [speaker.unwrap_or(0)];
        let mut inputs = vec![
            ("input", TensorInput::new([1, ids.len()], ids)),
            ("input_lengths", TensorInput::new([1], &lengths[..])),
            ("scales", TensorInput::new([3], &scales[..])),
        ];
        if self.model.has_input("sid") {
            inputs.push(("sid", TensorInput::new([1], &speaker[..])));
        }
        let mut outputs = self.model.run(&inputs)?;
        let audio = outputs.take("output").or_else(|_| {
            let name = outputs.at(0)?.name().to_string();
            outputs.take(&name)
        })?;
        Ok(audio
            .into_f32()?
            .into_iter()
            .map(|sample| sample.clamp(-1.0, 1.0))
            .collect())
    }
}

impl StepRunner for SpeechRunner {
    type Input = SpeechJob;
    type Output = Speech;

    fn free_slots(&self) -> usize {
        SLOTS.saturating_sub(self.live.len())
    }

    fn busy(&self) -> bool {
        !self.live.is_empty()
    }

    fn admit(&mut self, job: SpeechJob) -> Result<Speech, TaskError> {
        let (sender, events) = mpsc::unbounded_channel();
        let characters = job.characters;
        self.live.push(Live {
            job,
            next: 0,
            events: sender,
        });
        Ok(Speech {
            sample_rate: self.sample_rate,
            characters,
            events,
        })
    }

    fn step(&mut self) {
        // Callers that left cost nothing more.
        self.live.retain(|live| !live.events.is_closed());
        if self.live.is_empty() {
            return;
        }
        self.turn = (self.turn + 1) % self.live.len();
        let live = &self.live[self.turn];
        let (speaker, scales) = (live.job.speaker, live.job.scales);
        let started = std::time::Instant::now();
        let result = match self.config.chunk_ids(&live.job.chunks[live.next]) {
            Ok(Some(ids)) => {
                let phonemized = started.elapsed();
                let audio = self.synthesize(&ids, speaker, scales);
                if let Ok(audio) = &audio {
                    tracing::debug!(
                        ids = ids.len(),
                        audio_s = audio.len() as f64 / f64::from(self.sample_rate),
                        phonemize_ms = phonemized.as_secs_f64() * 1e3,
                        synthesize_ms = (started.elapsed() - phonemized).as_secs_f64() * 1e3,
                        "chunk spoken"
                    );
                }
                audio.map(Some)
            }
            Ok(None) => Ok(None),
            Err(error) => Err(error),
        };
        let live = &mut self.live[self.turn];
        live.next += 1;
        let finished = match result {
            Ok(audio) => {
                // A caller that has gone is dropped at the next step.
                if let Some(audio) = audio {
                    let _ = live.events.send(SpeechEvent::Audio(audio));
                }
                live.next == live.job.chunks.len()
            }
            Err(error) => {
                let _ = live.events.send(SpeechEvent::Failed(error.to_string()));
                true
            }
        };
        if finished {
            let live = self.live.remove(self.turn);
            if live.next == live.job.chunks.len() {
                let _ = live.events.send(SpeechEvent::Done);
            }
        }
    }

    fn abort_all(&mut self, message: &str) {
        for live in self.live.drain(..) {
            let _ = live.events.send(SpeechEvent::Failed(message.to_string()));
        }
    }
}

/// The voice's JSON: `model.onnx.json` (the catalog's `config` option names another).
fn voice_config(model: &LocalModel) -> Result<VoiceConfig, TaskError> {
    #[derive(Deserialize, Default)]
    struct Options {
        config: Option<String>,
    }
    let options: Options = model.options_as().unwrap_or_default();
    let path = match options.config {
        Some(name) => model.file(&name)?,
        None => model
            .files
            .iter()
            .find(|file| file.to_string_lossy().ends_with(".onnx.json"))
            .cloned()
            .ok_or_else(|| {
                TaskError::Unsupported(format!("model `{}` has no Piper `.onnx.json`", model.id))
            })?,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| TaskError::ModelFile {
        path: path.clone(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| TaskError::ModelFile {
        path,
        message: format!("not a Piper voice config: {e}"),
    })
}

fn load(model: &LocalModel, context: &LoadContext) -> Result<LoadedModel, TaskError> {
    let config = voice_config(model)?;
    espeak::available()?;
    let weights = model
        .files
        .iter()
        .find(|file| file.extension().is_some_and(|ext| ext == "onnx"))
        .cloned()
        .ok_or_else(|| {
            TaskError::Unsupported(format!("model `{}` has no .onnx graph", model.id))
        })?;
    let onnx = OnnxModel::load(&weights, &context.session)?;
    let device: Device = onnx.device();
    let config = Arc::new(config);
    let runner = SpeechRunner {
        model: onnx,
        config: config.clone(),
        sample_rate: config.audio.sample_rate,
        live: Vec::new(),
        turn: 0,
    };
    Ok(LoadedModel::stepping(
        SpeechFrontend { config },
        runner,
        device,
    ))
}
