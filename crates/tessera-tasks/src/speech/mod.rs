//! Text to speech with Piper voices: VITS graphs on ONNX Runtime, fed espeak-ng phonemes.
//!
//! The frontend splits the text into sentences (the first sentence further into clauses, so the
//! first audio comes soon), phonemizes each piece with espeak-ng ([`espeak`]) and maps the
//! phonemes to the voice's ids. The runner is a [`StepRunner`]: each step synthesizes one chunk
//! of one request and sends it at once, so a long text streams and several requests take turns.
//!
//! The voice's graph is cut before its decoder when it loads, so the first chunk of a request
//! goes through the text side once and is decoded in two steps: its first 0.28 s, sent at once,
//! then the rest. The first clause therefore need not be cut short to be heard soon. The decoder
//! is itself cut after its first upsampling stage: the late stages, most of its work, see only a
//! frame either side, so the two windows decode little twice.

pub mod espeak;
mod text;

pub use text::{Chunk, FirstChunk, split};

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde::Deserialize;
use tessera_core::{EngineKind, Task};
use tessera_engines::onnx::{
    OnnxModel, OutputData, SessionConfig, Tensor, TensorInput, split_graph,
};
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

/// Where a Piper graph is cut: its HiFi-GAN decoder, which turns the latent (one frame per 256
/// samples) into audio, is the module `dec` of Piper's export.
const DECODER_PREFIX: &str = "/dec/";
/// Where the decoder is cut again: after its first upsampling stage. Its late stages hold five
/// sixths of its work but see only a frame either side, so a window pays their margin narrow.
const LATE_STAGES_PREFIX: &str = "/dec/ups.1";
/// Latent frames decoded alone at the start of a request (about 0.28 s of audio at 22 kHz).
const FIRST_FRAMES: usize = 24;
/// Frames decoded past each edge of a window and thrown away, at the decoder's input, when it
/// runs in one piece: it reads 12 frames either side, and 8 keep the seam more than 70 dB under
/// the signal.
const MARGIN_FRAMES: usize = 8;
/// The same at the input of each of the two pieces when the decoder is cut: 10 frames before
/// the first upsampling (conv_pre and the first stage read about 10 either side), then 2 (the
/// later stages read about one). The seam is then more than 100 dB under the signal (the test
/// below), and each window decodes about 7 frames' worth of work twice instead of 16.
const STAGE_MARGIN_FRAMES: [usize; 2] = [10, 2];

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
    /// How the first chunk is cut, which depends on whether it streams.
    first_chunk: FirstChunk,
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
        let chunks = split(&request.text, self.first_chunk);
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
    /// The chunk whose first frames were sent, waiting for its other frames.
    rest: Option<Rest>,
    events: mpsc::UnboundedSender<SpeechEvent>,
}

/// How the voice's graph runs.
enum Graph {
    /// One graph: one call per chunk.
    Whole(OnnxModel),
    /// Cut before the decoder ([`split_graph`]): the text side once per chunk, then the decoder,
    /// over the first frames alone for the first chunk of a request.
    Split {
        text: OnnxModel,
        /// The decoder, in one piece or cut after its first upsampling stage.
        decoder: Vec<DecoderStage>,
        /// The tensor of the latent among those the text side hands the decoder.
        latent: String,
    },
}

/// One piece of the decoder and the frames it runs past each edge of a window.
struct DecoderStage {
    model: OnnxModel,
    margin: usize,
}

/// What the text side made for a chunk whose first frames were decoded alone.
struct Rest {
    tensors: Vec<Tensor>,
    /// The first frame not sent yet.
    from: usize,
}

/// One step's synthesis of a chunk: all of it, or its first frames and what the rest needs.
enum Spoken {
    Whole(Vec<f32>),
    Begun(Vec<f32>, Rest),
}

/// Synthesizes one chunk per step, taking the requests in turn.
pub struct SpeechRunner {
    graph: Graph,
    config: Arc<VoiceConfig>,
    sample_rate: u32,
    live: Vec<Live>,
    turn: usize,
}

impl Graph {
    /// Speaks one chunk's `ids`; with `stream` and a cut graph, only its first frames, when the
    /// chunk has frames enough for that to help.
    fn speak(
        &mut self,
        ids: &[i64],
        speaker: Option<i64>,
        scales: [f32; 3],
        stream: bool,
    ) -> Result<Spoken, TaskError> {
        let lengths = [ids.len() as i64];
        let speaker = [speaker.unwrap_or(0)];
        let mut inputs = vec![
            ("input", TensorInput::new([1, ids.len()], ids)),
            ("input_lengths", TensorInput::new([1], &lengths[..])),
            ("scales", TensorInput::new([3], &scales[..])),
        ];
        // The whole graph, or its text side, takes the ids and the speaker.
        let model = match self {
            Graph::Whole(model) => model,
            Graph::Split { text, .. } => text,
        };
        if model.has_input("sid") {
            inputs.push(("sid", TensorInput::new([1], &speaker[..])));
        }
        let mut outputs = model.run(&inputs)?;
        let Graph::Split {
            latent, decoder, ..
        } = self
        else {
            let audio = outputs.take("output").or_else(|_| {
                let name = outputs.at(0)?.name().to_string();
                outputs.take(&name)
            })?;
            return Ok(Spoken::Whole(clamped(audio)?));
        };
        let tensors: Vec<Tensor> = outputs.iter().cloned().collect();
        let (_, _, frames) = find_latent(&tensors, latent)?;
        // The decoder's first piece has the widest margin.
        let margin = decoder.first().map_or(MARGIN_FRAMES, |stage| stage.margin);
        if stream && frames > FIRST_FRAMES + 2 * margin {
            let audio = self.decode(&tensors, 0..FIRST_FRAMES)?;
            let rest = Rest {
                tensors,
                from: FIRST_FRAMES,
            };
            Ok(Spoken::Begun(audio, rest))
        } else {
            Ok(Spoken::Whole(self.decode(&tensors, 0..frames)?))
        }
    }

    /// The frames of a chunk begun by [`speak`](Self::speak) that were not sent.
    fn speak_rest(&mut self, rest: Rest) -> Result<Vec<f32>, TaskError> {
        let Graph::Split { latent, .. } = self else {
            return Err(TaskError::Internal(
                "a chunk was begun on a graph that is not cut".into(),
            ));
        };
        let (_, _, frames) = find_latent(&rest.tensors, latent)?;
        self.decode(&rest.tensors, rest.from..frames)
    }

    /// The audio of latent `frames`. Each piece of the decoder runs over them and its margin
    /// past each inner edge, cut from what the piece before made; the samples of the margins
    /// are dropped at the end.
    fn decode(
        &mut self,
        tensors: &[Tensor],
        frames: std::ops::Range<usize>,
    ) -> Result<Vec<f32>, TaskError> {
        let Graph::Split {
            decoder, latent, ..
        } = self
        else {
            return Err(TaskError::Internal(
                "only a cut graph decodes frames".into(),
            ));
        };
        let (source, _, total) = find_latent(tensors, latent)?;
        // The first piece reads every tensor of the text side, the latent cut to its window;
        // each later piece reads the one tensor the piece before made.
        let mut covered = 0..total;
        let mut carried: Option<Tensor> = None;
        for (index, stage) in decoder.iter_mut().enumerate() {
            let window = frames.start.saturating_sub(stage.margin).max(covered.start)
                ..(frames.end + stage.margin).min(covered.end);
            let input = time_window(
                carried.as_ref().unwrap_or(source),
                covered.len(),
                window.start - covered.start..window.end - covered.start,
            )?;
            let mut inputs = Vec::with_capacity(tensors.len());
            if index == 0 {
                for tensor in tensors {
                    let input = if tensor.name() == latent.as_str() {
                        TensorInput::new(input.shape(), input.f32()?)
                    } else {
                        TensorInput::new(tensor.shape(), tensor.f32()?)
                    };
                    inputs.push((tensor.name(), input));
                }
            } else {
                inputs.push((input.name(), TensorInput::new(input.shape(), input.f32()?)));
            }
            let mut outputs = stage.model.run(&inputs)?;
            let name = outputs.at(0)?.name().to_string();
            carried = Some(outputs.take(&name)?);
            covered = window;
        }
        let audio = clamped(
            carried
                .ok_or_else(|| TaskError::Internal("the voice's decoder has no pieces".into()))?,
        )?;
        // Samples per latent frame: 256 for Piper's voices, read off the output.
        let hop = audio.len() / covered.len().max(1);
        let keep = (frames.start - covered.start) * hop..(frames.end - covered.start) * hop;
        Ok(audio.get(keep).unwrap_or_default().to_vec())
    }
}

/// The part of `tensor` (`[1, channels, samples]`, covering `frames` latent frames) that covers
/// the frames `window`, counted from its start; `tensor` itself, uncopied, when that is all of it.
fn time_window(
    tensor: &Tensor,
    frames: usize,
    window: std::ops::Range<usize>,
) -> Result<Cow<'_, Tensor>, TaskError> {
    let [1, channels, samples] = *tensor.shape() else {
        return Err(TaskError::Inference(format!(
            "the voice's decoder passed on `{}` of shape {:?}, not [1, channels, samples]",
            tensor.name(),
            tensor.shape()
        )));
    };
    let per_frame = samples / frames.max(1);
    let (start, end) = (window.start * per_frame, window.end * per_frame);
    if (start, end) == (0, samples) {
        return Ok(Cow::Borrowed(tensor));
    }
    let mut data = Vec::with_capacity(channels * end.saturating_sub(start));
    for row in tensor.f32()?.chunks(samples.max(1)) {
        data.extend_from_slice(row.get(start..end).unwrap_or_default());
    }
    Ok(Cow::Owned(Tensor::new(
        tensor.name(),
        vec![1, channels, end.saturating_sub(start)],
        OutputData::F32(data),
    )))
}

/// The latent among the text side's outputs, with its channels and frames
/// (`[1, channels, frames]`).
fn find_latent<'a>(
    tensors: &'a [Tensor],
    latent: &str,
) -> Result<(&'a Tensor, usize, usize), TaskError> {
    let tensor = tensors.iter().find(|t| t.name() == latent).ok_or_else(|| {
        TaskError::Inference(format!("the voice's text side made no latent `{latent}`"))
    })?;
    match *tensor.shape() {
        [1, channels, frames] => Ok((tensor, channels, frames)),
        ref shape => Err(TaskError::Inference(format!(
            "the voice's text side made a latent `{latent}` of shape {shape:?}, not [1, channels, frames]"
        ))),
    }
}

fn clamped(audio: Tensor) -> Result<Vec<f32>, TaskError> {
    Ok(audio
        .into_f32()?
        .into_iter()
        .map(|sample| sample.clamp(-1.0, 1.0))
        .collect())
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
            rest: None,
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
        let live = &mut self.live[self.turn];
        let (speaker, scales) = (live.job.speaker, live.job.scales);
        // The first chunk of a request streams: its first frames are sent before the rest.
        let stream = live.next == 0;
        let started = std::time::Instant::now();
        let (result, chunk_done) = match live.rest.take() {
            Some(rest) => (self.graph.speak_rest(rest).map(Some), true),
            None => match self.config.chunk_ids(&live.job.chunks[live.next]) {
                Ok(Some(ids)) => {
                    let phonemized = started.elapsed();
                    let spoken = self.graph.speak(&ids, speaker, scales, stream);
                    tracing::debug!(
                        ids = ids.len(),
                        begun = matches!(spoken, Ok(Spoken::Begun(..))),
                        phonemize_ms = phonemized.as_secs_f64() * 1e3,
                        synthesize_ms = (started.elapsed() - phonemized).as_secs_f64() * 1e3,
                        "chunk spoken"
                    );
                    match spoken {
                        Ok(Spoken::Whole(audio)) => (Ok(Some(audio)), true),
                        Ok(Spoken::Begun(audio, rest)) => {
                            live.rest = Some(rest);
                            (Ok(Some(audio)), false)
                        }
                        Err(error) => (Err(error), true),
                    }
                }
                Ok(None) => (Ok(None), true),
                Err(error) => (Err(error), true),
            },
        };
        let live = &mut self.live[self.turn];
        if chunk_done {
            live.next += 1;
        }
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
    let graph = match split_voice(&weights, &context.session) {
        Ok(graph) => graph,
        Err(reason) => {
            tracing::debug!(model = %model.id, %reason, "the voice's graph runs whole");
            Graph::Whole(OnnxModel::load(&weights, &context.session)?)
        }
    };
    let (device, first_chunk) = match &graph {
        Graph::Whole(onnx) => (onnx.device(), FirstChunk::SHORT),
        Graph::Split { text, .. } => (text.device(), FirstChunk::STREAMED),
    };
    let config = Arc::new(config);
    let runner = SpeechRunner {
        graph,
        config: config.clone(),
        sample_rate: config.audio.sample_rate,
        live: Vec::new(),
        turn: 0,
    };
    Ok(LoadedModel::stepping(
        SpeechFrontend {
            config,
            first_chunk,
        },
        runner,
        device,
    ))
}

/// The voice's graph cut before its decoder, and the decoder cut after its first upsampling
/// stage, every piece on the process's shared thread pool. Refused (the graph then runs whole)
/// when the graph does not have Piper's decoder, and when threads were set for the voice, which
/// the shared pool would not honour. A decoder that cannot be cut again runs in one piece.
fn split_voice(weights: &std::path::Path, session: &SessionConfig) -> Result<Graph, String> {
    if session.intra_threads > 0 || session.inter_threads > 0 {
        return Err("threads are set for this voice".into());
    }
    let bytes = std::fs::read(weights).map_err(|e| e.to_string())?;
    let split = split_graph(&bytes, DECODER_PREFIX)?;
    let latent = split
        .cut
        .first()
        .cloned()
        .ok_or("the decoder reads nothing from the text side")?;
    let shared = SessionConfig {
        shared_thread_pool: true,
        ..session.clone()
    };
    let load = |half: &[u8]| {
        OnnxModel::load_from_memory(weights, half, &shared).map_err(|e| e.to_string())
    };
    let decoder = match split_graph(&split.tail, LATE_STAGES_PREFIX) {
        // The late stages must read one tensor, the early stage's output, and nothing else.
        Ok(stages) if stages.cut.len() == 1 => vec![
            DecoderStage {
                model: load(&stages.head)?,
                margin: STAGE_MARGIN_FRAMES[0],
            },
            DecoderStage {
                model: load(&stages.tail)?,
                margin: STAGE_MARGIN_FRAMES[1],
            },
        ],
        cut => {
            let reason = match cut {
                Ok(stages) => format!("its late stages read {} tensors", stages.cut.len()),
                Err(reason) => reason,
            };
            tracing::debug!(%reason, "the voice's decoder runs in one piece");
            vec![DecoderStage {
                model: load(&split.tail)?,
                margin: MARGIN_FRAMES,
            }]
        }
    };
    Ok(Graph::Split {
        text: load(&split.head)?,
        decoder,
        latent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_core::Device;
    use tessera_hub::Hub;

    fn spoken(result: Result<Spoken, TaskError>) -> Vec<f32> {
        match result.unwrap() {
            Spoken::Whole(audio) => audio,
            Spoken::Begun(..) => panic!("a whole chunk was expected"),
        }
    }

    /// The cut graph, streamed or not, says what the whole graph says: with the noise off the
    /// same ids make the same latent, and the decoder's windows join without a seam.
    #[test]
    fn a_streamed_chunk_is_the_whole_graphs_audio() {
        let hub = Hub::from_env().expect("hub");
        let model = hub
            .pull("piper-en-us-joe-medium")
            .expect("pull (run scripts/fetch-models.sh)");
        let weights = model.file("model.onnx").unwrap();
        let session = SessionConfig {
            device: Device::Cpu,
            ..SessionConfig::default()
        };
        let mut whole = Graph::Whole(OnnxModel::load(&weights, &session).unwrap());
        let mut cut = split_voice(&weights, &session).unwrap();
        let Graph::Split { decoder, .. } = &cut else {
            panic!("Piper's graph is cut before its decoder");
        };
        assert_eq!(
            decoder.len(),
            2,
            "and its decoder after the first upsampling"
        );
        let config = voice_config(&model).unwrap();
        let text = "The quick brown fox jumps over the lazy dog today.";
        let chunks = split(text, FirstChunk::STREAMED);
        assert_eq!(chunks.len(), 1, "ten words are one streamed chunk");
        let ids = config.chunk_ids(&chunks[0]).unwrap().unwrap();
        let scales = [0.0, 1.0, 0.0];

        let reference = spoken(whole.speak(&ids, None, scales, true));
        let unstreamed = spoken(cut.speak(&ids, None, scales, false));
        assert_eq!(unstreamed.len(), reference.len());
        let largest = |a: &[f32], b: &[f32]| {
            a.iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max)
        };
        assert!(largest(&unstreamed, &reference) < 1e-4);

        let Spoken::Begun(first, rest) = cut.speak(&ids, None, scales, true).unwrap() else {
            panic!("a ten-word chunk streams");
        };
        assert_eq!(first.len(), FIRST_FRAMES * 256);
        let streamed = [first, cut.speak_rest(rest).unwrap()].concat();
        assert_eq!(streamed.len(), reference.len());
        let energy = |samples: &mut dyn Iterator<Item = f32>| -> f64 {
            samples.map(|s| f64::from(s).powi(2)).sum()
        };
        let signal = energy(&mut reference.iter().copied());
        let seam = energy(&mut reference.iter().zip(&streamed).map(|(a, b)| a - b));
        let snr_db = 10.0 * (signal / seam.max(1e-30)).log10();
        assert!(
            snr_db > 100.0,
            "streamed audio {snr_db:.1} dB from the whole graph's"
        );
    }
}
