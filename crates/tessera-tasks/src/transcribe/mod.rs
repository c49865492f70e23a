//! Speech to text with Whisper on CTranslate2: transcription, translation into English,
//! language detection, segment and word timestamps.
//!
//! The frontend decodes the upload to 16 kHz and, when Silero VAD is at hand, cuts the speech
//! out of it: stretches of speech are merged into chunks of at most 30 s, so silence costs
//! nothing and never turns into invented text, and the chunks of a long file go through the
//! encoder and decoder in batches. The runner is a [`StepRunner`]: each step decodes a batch of
//! one request's windows ([`decode`]) and sends their segments at once, in time order, so a
//! long file streams and several requests take turns. [`stream`] serves audio that arrives
//! while it is spoken (the voice loop).

pub mod decode;
pub mod mel;
pub mod stream;
pub mod subtitles;
pub mod tokens;

pub use decode::{DecodeSettings, Language, Segment, Whisper, WhisperTask, Window, Word};

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tessera_core::{Device, EngineKind, Task};
use tessera_engines::ct2::{WhisperConfig, WhisperModel};
use tessera_hub::LocalModel;
use tokio::sync::mpsc;

use crate::registry::{
    Batching, Family, Frontend, LoadContext, LoadedModel, Prepared, StepRunner, file_bytes,
    has_file,
};
use crate::vad::{SileroVad, VadOptions};
use crate::{TaskError, audio, in_range};
use mel::SAMPLE_RATE;
use tokens::Vocabulary;

/// Whisper on CTranslate2.
pub static FAMILY: Family = Family {
    name: "whisper-ct2",
    task: Task::Transcribe,
    engine: EngineKind::Ctranslate2,
    batching: Batching::Continuous,
    recognises: |model| {
        ["model.bin", "vocabulary.txt", "tokenizer.json"]
            .iter()
            .all(|wanted| has_file(model, |name| name == *wanted))
    },
    load,
    // int8 weights take about half the float16 file; the encoder's activations for a batch of
    // four windows and CTranslate2's buffers add about as much again.
    estimate_bytes: |model| file_bytes(model).saturating_add(256 << 20),
};

/// Requests decoded in turn at once.
const SLOTS: usize = 4;
/// Windows of one request encoded and decoded together: the decoder's steps cost little more
/// for eight sequences than for one.
const BATCH: usize = 8;
/// Longest prompt accepted, in characters (the decoder keeps its last 223 tokens anyway).
const MAX_PROMPT_CHARS: usize = 4096;

/// What a caller asks to have transcribed.
#[derive(Debug, Clone)]
pub struct TranscribeRequest {
    /// The audio file's bytes (any format [`audio::decode`] reads).
    pub audio: Vec<u8>,
    /// Transcribe, or translate into English.
    pub task: WhisperTask,
    /// The spoken language (code such as `de`, or name); `None` detects it.
    pub language: Option<String>,
    /// Text that precedes the audio: names, spellings, style.
    pub prompt: Option<String>,
    /// The first temperature (0 to 1); higher ones are tried while the text looks wrong.
    pub temperature: f32,
    /// Beams at temperature 0 (1: greedy, up to 10).
    pub beam_size: usize,
    /// Cut the text into timed segments (subtitles, `verbose_json`); off, each speech chunk is
    /// one segment and decoding is quicker.
    pub timestamps: bool,
    /// Time each word.
    pub word_timestamps: bool,
    /// Skip what Silero VAD hears as silence (when the VAD model is available).
    pub vad: bool,
    /// Encode short audio only up to 2 s after it, with the encoding of silence for the rest
    /// of the window ([`DecodeSettings::short_window`]): faster, nearly the same words.
    pub short_window: bool,
}

impl Default for TranscribeRequest {
    fn default() -> Self {
        TranscribeRequest {
            audio: Vec::new(),
            task: WhisperTask::Transcribe,
            language: None,
            prompt: None,
            temperature: 0.0,
            beam_size: 1,
            timestamps: true,
            word_timestamps: false,
            vad: true,
            short_window: false,
        }
    }
}

/// A request ready for the engine.
#[derive(Debug)]
pub struct TranscribeJob {
    speech: KeptSpeech,
    /// The upload's length in seconds.
    duration: f64,
    windows: VecDeque<Window>,
    settings: DecodeSettings,
    task: WhisperTask,
}

/// What a transcription sends as it goes.
#[derive(Debug)]
pub enum TranscriptEvent {
    /// The language it decodes in (given or detected); comes before the first segment.
    Language(Language),
    /// The next segment, in time order.
    Segment(Segment),
    /// All segments were sent.
    Done,
    /// The engine failed; nothing more comes.
    Failed(String),
}

/// A transcription in progress: its segments arrive on `events`. Dropping it stops the work.
#[derive(Debug)]
pub struct Transcription {
    /// Transcribe or translate.
    pub task: WhisperTask,
    /// The audio's length in seconds.
    pub duration: f64,
    /// The language (when the request gave one), then segments, then [`TranscriptEvent::Done`].
    pub events: mpsc::UnboundedReceiver<TranscriptEvent>,
}

/// A whole transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// Transcribe or translate.
    pub task: WhisperTask,
    /// The language decoded (`None` when the audio held no speech and none was given).
    pub language: Option<Language>,
    /// The audio's length in seconds.
    pub duration: f64,
    /// The segments' text joined, trimmed.
    pub text: String,
    /// The segments, ids from 0.
    pub segments: Vec<Segment>,
}

impl Transcription {
    /// Waits for every segment.
    pub async fn collect(mut self) -> Result<Transcript, TaskError> {
        let mut language = None;
        let mut segments = Vec::new();
        loop {
            match self.events.recv().await {
                Some(TranscriptEvent::Language(found)) => language = Some(found),
                Some(TranscriptEvent::Segment(segment)) => segments.push(segment),
                Some(TranscriptEvent::Done) => break,
                Some(TranscriptEvent::Failed(message)) => {
                    return Err(TaskError::Inference(message));
                }
                None => {
                    return Err(TaskError::Internal(
                        "the transcription ended without finishing".into(),
                    ));
                }
            }
        }
        Ok(Transcript {
            task: self.task,
            language,
            duration: self.duration,
            text: join_text(&segments),
            segments,
        })
    }
}

/// The segments' text as one string.
pub fn join_text(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| s.text.as_str())
        .collect::<String>()
        .trim()
        .to_string()
}

/// A caller's value as an error message quotes it: at most 32 characters.
fn shortened(value: &str) -> String {
    match value.char_indices().nth(32) {
        Some((cut, _)) => format!("{}…", &value[..cut]),
        None => value.to_string(),
    }
}

/// The Whisper frontend: checks requests, decodes uploads and finds their speech.
pub struct TranscribeFrontend {
    whisper: Arc<Whisper>,
    vad: Option<Mutex<SileroVad>>,
    max_seconds: f64,
}

/// How Silero cuts speech for Whisper: generous padding and a one-second silence before a cut,
/// so words at the edges are kept whole.
fn vad_options() -> VadOptions {
    VadOptions {
        threshold: 0.5,
        min_speech_ms: 250,
        min_silence_ms: 1000,
        speech_pad_ms: 200,
    }
}

/// The speech kept for decoding: the upload's speech stretches one after another, the silence
/// between them left out (as Whisper's batched pipelines do: fewer windows to encode), with
/// where each stretch came from so that times can be given in the upload's clock.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeptSpeech {
    /// The kept samples.
    pub samples: Vec<f32>,
    /// Each stretch: where it starts in `samples`, where it starts in the upload, its length.
    spans: Vec<(usize, usize, usize)>,
    /// Runs of whole stretches of at most 30 s (a longer stretch alone): ranges of `samples`,
    /// each decoded from its own first window.
    pub chunks: Vec<(usize, usize)>,
}

impl KeptSpeech {
    /// All of the audio, as it is.
    pub fn whole(samples: Vec<f32>) -> KeptSpeech {
        let len = samples.len();
        KeptSpeech {
            samples,
            spans: vec![(0, 0, len)],
            chunks: if len == 0 { Vec::new() } else { vec![(0, len)] },
        }
    }

    /// The stretches of `samples` given in seconds (in order, not overlapping), joined.
    pub fn from_stretches(samples: &[f32], stretches: &[(f64, f64)]) -> KeptSpeech {
        let at = |seconds: f64| ((seconds * f64::from(SAMPLE_RATE)) as usize).min(samples.len());
        let mut kept = KeptSpeech::default();
        let mut source_end = 0;
        for &(start, end) in stretches {
            let (start, end) = (at(start).max(source_end), at(end));
            if end <= start {
                continue;
            }
            let from = kept.samples.len();
            kept.samples.extend_from_slice(&samples[start..end]);
            kept.spans.push((from, start, end - start));
            source_end = end;
            let to = kept.samples.len();
            match kept.chunks.last_mut() {
                Some(chunk) if to - chunk.0 <= mel::WINDOW_SAMPLES => chunk.1 = to,
                _ => kept.chunks.push((from, to)),
            }
        }
        kept
    }

    /// The upload's time (seconds) of a time in the kept audio. A time where two stretches
    /// meet is the end of the first when `is_end`, else the start of the second.
    pub fn source_seconds(&self, kept_seconds: f64, is_end: bool) -> f64 {
        let rate = f64::from(SAMPLE_RATE);
        let sample = (kept_seconds * rate).max(0.0);
        let index = if is_end {
            self.spans
                .partition_point(|&(from, _, _)| (from as f64) < sample)
        } else {
            self.spans
                .partition_point(|&(from, _, _)| (from as f64) <= sample)
        };
        match self.spans.get(index.saturating_sub(1)) {
            Some(&(from, source, len)) => {
                (source as f64 + (sample - from as f64).min(len as f64)) / rate
            }
            None => kept_seconds,
        }
    }

    /// A segment (and its words) moved to the upload's clock.
    fn to_source(&self, mut segment: Segment) -> Segment {
        let seek_seconds = (segment.seek * mel::HOP) as f64 / f64::from(SAMPLE_RATE);
        segment.seek =
            (self.source_seconds(seek_seconds, false) * f64::from(SAMPLE_RATE)) as usize / mel::HOP;
        segment.start = self.source_seconds(segment.start, false);
        segment.end = self.source_seconds(segment.end, true).max(segment.start);
        for word in &mut segment.words {
            word.start = self.source_seconds(word.start, false);
            word.end = self.source_seconds(word.end, true).max(word.start);
        }
        segment
    }
}

impl TranscribeFrontend {
    fn settings(&self, request: &TranscribeRequest) -> Result<DecodeSettings, TaskError> {
        in_range("temperature", request.temperature, 0.0..=1.0)?;
        in_range("beam_size", request.beam_size, 1..=10)?;
        let multilingual = self.whisper.is_multilingual();
        let language = match request.language.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(given) => {
                let code = tokens::language_code(given)
                    .filter(|code| self.whisper.vocabulary().knows_language(code) || !multilingual)
                    .ok_or_else(|| TaskError::InvalidParam {
                        param: "language",
                        message: format!(
                            "unknown language `{}`; give an ISO-639-1 code such as `en`, `de` or `fr`",
                            shortened(given)
                        ),
                    })?;
                if !multilingual && code != "en" {
                    return Err(TaskError::InvalidParam {
                        param: "language",
                        message: format!(
                            "this model knows only English, not `{given}`; use a multilingual model such as whisper-base"
                        ),
                    });
                }
                Some(code)
            }
        };
        if request.task == WhisperTask::Translate && !multilingual {
            return Err(TaskError::InvalidParam {
                param: "model",
                message: "this model knows only English and cannot translate; use a multilingual model such as whisper-base".into(),
            });
        }
        if let Some(prompt) = &request.prompt
            && prompt.chars().count() > MAX_PROMPT_CHARS
        {
            return Err(TaskError::InvalidParam {
                param: "prompt",
                message: format!(
                    "`prompt` has {} characters, over the limit of {MAX_PROMPT_CHARS}; Whisper reads only its last 223 tokens",
                    prompt.chars().count()
                ),
            });
        }
        Ok(DecodeSettings {
            task: request.task,
            language: if multilingual { language } else { Some("en") },
            prompt: request.prompt.clone(),
            temperatures: decode::fallback_temperatures(request.temperature),
            beam_size: request.beam_size,
            timestamps: request.timestamps,
            word_timestamps: request.word_timestamps,
            short_window: request.short_window,
        })
    }

    /// The speech of `samples`, or all of it without a VAD.
    fn speech(&self, samples: Vec<f32>, use_vad: bool) -> Result<KeptSpeech, TaskError> {
        match (&self.vad, use_vad) {
            (Some(vad), true) => {
                let mut vad = vad
                    .lock()
                    .map_err(|_| TaskError::Internal("the VAD lock is poisoned".into()))?;
                let found = crate::vad::segments(&mut vad, &samples, vad_options())?;
                let stretches: Vec<(f64, f64)> =
                    found.segments.iter().map(|s| (s.start, s.end)).collect();
                Ok(KeptSpeech::from_stretches(&samples, &stretches))
            }
            _ => Ok(KeptSpeech::whole(samples)),
        }
    }
}

impl Frontend for TranscribeFrontend {
    const TASK: Task = Task::Transcribe;
    type Request = TranscribeRequest;
    type Input = TranscribeJob;
    type Output = Transcription;
    type Response = Transcription;

    fn prepare(&self, request: TranscribeRequest) -> Result<Prepared<TranscribeJob>, TaskError> {
        let settings = self.settings(&request)?;
        let audio = audio::decode_at(request.audio, SAMPLE_RATE, self.max_seconds)?;
        let started = std::time::Instant::now();
        let cost = audio.samples.len();
        let duration = cost as f64 / f64::from(SAMPLE_RATE);
        let speech = self.speech(audio.samples, request.vad)?;
        let windows: VecDeque<Window> = speech
            .chunks
            .iter()
            .map(|&(start, end)| Window::first(start, end))
            .collect();
        tracing::debug!(
            chunks = windows.len(),
            speech_seconds = speech.samples.len() as f64 / f64::from(SAMPLE_RATE),
            vad_ms = started.elapsed().as_millis() as u64,
            "found the speech"
        );
        Ok(Prepared {
            input: TranscribeJob {
                speech,
                duration,
                windows,
                settings,
                task: request.task,
            },
            cost,
        })
    }

    fn finish(&self, output: Transcription) -> Result<Transcription, TaskError> {
        Ok(output)
    }
}

/// One request being decoded.
struct Live {
    job: TranscribeJob,
    language: Option<Language>,
    /// Decoded segments not yet sent: they wait for earlier windows still queued.
    held: Vec<Segment>,
    sent: usize,
    events: mpsc::UnboundedSender<TranscriptEvent>,
}

impl Live {
    /// Sends, in time order, the held segments that no queued window can precede, their times
    /// moved from the kept speech to the upload's clock.
    fn release(&mut self, all: bool) {
        let horizon = self
            .job
            .windows
            .iter()
            .map(|w| w.start as f64 / f64::from(SAMPLE_RATE))
            .fold(f64::INFINITY, f64::min);
        self.held.sort_by(|a, b| a.start.total_cmp(&b.start));
        let ready = if all {
            self.held.len()
        } else {
            self.held.iter().take_while(|s| s.start < horizon).count()
        };
        for segment in self.held.drain(..ready) {
            let mut segment = self.job.speech.to_source(segment);
            segment.id = self.sent;
            self.sent += 1;
            let _ = self.events.send(TranscriptEvent::Segment(segment));
        }
    }

    /// Decodes the next batch of this request's windows and sends what is ready.
    fn decode_next(&mut self, whisper: &Whisper) -> Result<(), TaskError> {
        let count = self.job.windows.len().min(BATCH);
        let windows: Vec<Window> = self.job.windows.drain(..count).collect();
        let had_language = self.language.is_some();
        let results = whisper.decode(
            &self.job.speech.samples,
            &windows,
            &self.job.settings,
            &mut self.language,
        )?;
        if let (false, Some(language)) = (had_language, self.language) {
            let _ = self.events.send(TranscriptEvent::Language(language));
        }
        // A resumed window comes before the rest of the queue in time: keep the queue sorted.
        self.job
            .windows
            .extend(results.iter().filter_map(|r| r.next));
        self.job.windows.make_contiguous().sort_by_key(|w| w.start);
        self.held
            .extend(results.into_iter().flat_map(|r| r.segments));
        self.release(false);
        Ok(())
    }
}

/// Decodes requests' windows, a batch of one request per step, requests in turn.
pub struct TranscribeRunner {
    whisper: Arc<Whisper>,
    live: Vec<Live>,
    turn: usize,
}

impl StepRunner for TranscribeRunner {
    type Input = TranscribeJob;
    type Output = Transcription;

    fn free_slots(&self) -> usize {
        SLOTS.saturating_sub(self.live.len())
    }

    fn busy(&self) -> bool {
        !self.live.is_empty()
    }

    fn admit(&mut self, job: TranscribeJob) -> Result<Transcription, TaskError> {
        let (sender, events) = mpsc::unbounded_channel();
        let duration = job.duration;
        let language = job.settings.language.map(|code| Language {
            code,
            probability: 1.0,
        });
        if let Some(language) = language {
            let _ = sender.send(TranscriptEvent::Language(language));
        }
        let task = job.task;
        self.live.push(Live {
            job,
            language,
            held: Vec::new(),
            sent: 0,
            events: sender,
        });
        Ok(Transcription {
            task,
            duration,
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
        match live.decode_next(&self.whisper) {
            Ok(()) if !live.job.windows.is_empty() => return,
            Ok(()) => {
                live.release(true);
                let _ = live.events.send(TranscriptEvent::Done);
            }
            Err(error) => {
                let _ = live.events.send(TranscriptEvent::Failed(error.to_string()));
            }
        }
        self.live.remove(self.turn);
    }

    fn abort_all(&mut self, message: &str) {
        for live in self.live.drain(..) {
            let _ = live
                .events
                .send(TranscriptEvent::Failed(message.to_string()));
        }
    }
}

/// The folder of a CTranslate2 Whisper model (where its `model.bin` is).
fn model_dir(model: &LocalModel) -> Result<std::path::PathBuf, TaskError> {
    let bin = model.file("model.bin")?;
    Ok(bin
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default())
}

/// Loads Whisper from a model folder, for the runtime and for callers that drive it directly
/// (the voice loop's [`stream`]).
pub fn load_whisper(
    dir: &std::path::Path,
    device: Device,
    threads: usize,
) -> Result<Whisper, TaskError> {
    let model = WhisperModel::load(
        dir,
        &WhisperConfig {
            device,
            threads,
            int8: true,
        },
    )?;
    let vocab = Vocabulary::load(dir)?;
    Ok(Whisper::new(model, vocab))
}

fn load(model: &LocalModel, context: &LoadContext) -> Result<LoadedModel, TaskError> {
    let whisper = Arc::new(load_whisper(
        &model_dir(model)?,
        context.session.device,
        context.session.intra_threads,
    )?);
    let vad = match &context.vad {
        Some(path) => match SileroVad::load(path, &context.session) {
            Ok(vad) => Some(Mutex::new(vad)),
            Err(error) => {
                tracing::warn!(%error, "Silero VAD did not load; Whisper decodes silence too and relies on its no-speech probability");
                None
            }
        },
        None => None,
    };
    let device = whisper.model().device();
    Ok(LoadedModel::stepping(
        TranscribeFrontend {
            whisper: whisper.clone(),
            vad,
            max_seconds: f64::from(context.limits.max_audio_seconds),
        },
        TranscribeRunner {
            whisper,
            live: Vec::new(),
            turn: 0,
        },
        device,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speech_is_joined_into_chunks_of_at_most_thirty_seconds() {
        let rate = 16_000;
        let samples: Vec<f32> = (0..200 * rate).map(|i| i as f32).collect();
        let kept = KeptSpeech::from_stretches(
            &samples,
            &[
                (1.0, 5.0),
                (6.0, 20.0),
                (25.0, 40.0),
                (40.0, 41.0),
                (50.0, 120.0),
                (130.0, 130.0),
            ],
        );
        // 4 + 14 + 15 + 1 + 70 s kept, silence left out.
        assert_eq!(kept.samples.len(), 104 * rate);
        assert_eq!(kept.samples[4 * rate], (6 * rate) as f32);
        assert_eq!(
            kept.chunks,
            vec![
                (0, 18 * rate),
                (18 * rate, 34 * rate),
                (34 * rate, 104 * rate)
            ]
        );
        // Times go back to the upload's clock; where two stretches meet, an end belongs to the
        // first and a start to the second.
        assert_eq!(kept.source_seconds(2.0, false), 3.0);
        assert_eq!(kept.source_seconds(4.0, true), 5.0);
        assert_eq!(kept.source_seconds(4.0, false), 6.0);
        assert_eq!(kept.source_seconds(33.5, false), 40.5);
        assert_eq!(kept.source_seconds(34.0, false), 50.0);
        assert!((kept.source_seconds(104.0, true) - 120.0).abs() < 1e-9);

        let whole = KeptSpeech::whole(vec![0.0; rate]);
        assert_eq!(whole.chunks, vec![(0, rate)]);
        assert_eq!(whole.source_seconds(0.5, true), 0.5);
    }
}
