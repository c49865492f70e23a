//! Voice activity detection with Silero VAD (v5/v6 ONNX graphs): which stretches of an audio hold
//! speech.
//!
//! [`SileroVad`] runs the graph on 512-sample windows of 16 kHz audio and carries its recurrent
//! state (and the 64 samples of context the graph expects before each window) from one window to
//! the next. [`SpeechDetector`] turns the per-window speech probabilities into segments with a
//! threshold, minimum speech and silence durations and padding. [`VadStream`] joins the two for
//! audio that arrives in pieces (the voice loop); [`VadFrontend`] and [`VadRunner`] serve whole
//! uploads through the runtime.

mod detector;
mod sequence;

pub use detector::{SpeechDetector, VadEvent, VadOptions};

use std::borrow::BorrowMut;
use std::path::Path;

use serde::Serialize;
use tessera_core::{Device, EngineKind, Task};
use tessera_engines::EngineError;
use tessera_engines::onnx::{ConstantInput, OnnxModel, SessionConfig, TensorInput};
use tessera_hub::LocalModel;

use crate::TaskError;
use crate::audio;
use crate::registry::{
    Batching, Cancelled, Family, Frontend, LoadContext, LoadedModel, Prepared, Runner, each_job,
    file_bytes, has_file,
};

/// Silero VAD on ONNX Runtime.
pub static FAMILY: Family = Family {
    name: "silero-vad",
    task: Task::Vad,
    engine: EngineKind::Onnx,
    batching: Batching::Single,
    recognises: |model| {
        has_file(model, |name| {
            name.contains("silero") && name.ends_with(".onnx")
        })
    },
    load,
    estimate_bytes: |model| file_bytes(model).saturating_mul(4),
};

/// The rate Silero runs at here.
pub const SAMPLE_RATE: u32 = 16_000;
/// Samples per window at 16 kHz (32 ms).
pub const WINDOW: usize = 512;
/// Samples of the previous window the graph sees before each window.
const CONTEXT: usize = 64;
/// The recurrent state: [2, batch 1, 128].
const STATE: usize = 2 * 128;

/// Windows judged in one call of the rebuilt graph (131 s of audio; about 20 MB of activations).
const MAX_WINDOWS_PER_CALL: usize = 4096;

/// Which graph a [`SileroVad`] runs.
enum Graph {
    /// The published graph rebuilt to judge many windows per call ([`sequence`]).
    Sequence(OnnxModel),
    /// The published graph as it is: one window per call (a graph the rebuild does not know).
    Published(OnnxModel),
}

/// The Silero graph and the state it carries between windows.
pub struct SileroVad {
    graph: Graph,
    state: Vec<f32>,
    /// The last samples the graph saw: the context of the next window.
    context: Vec<f32>,
    /// Rows of context and window, reused between calls.
    input: Vec<f32>,
}

impl SileroVad {
    /// Loads the graph, rebuilt so that one call judges many windows (see `sequence`); a
    /// graph the rebuild does not recognise runs as published. Silero is tiny, so one thread
    /// per call is fastest: an intra-op thread pool costs more in wake-ups than it saves
    /// (`config.intra_threads` 0 becomes 1).
    pub fn load(path: &Path, config: &SessionConfig) -> Result<SileroVad, TaskError> {
        let bytes = std::fs::read(path).map_err(|e| TaskError::ModelFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        match sequence::sequence_graph(&bytes) {
            Ok(graph) => {
                let model = OnnxModel::load_from_memory(path, &graph, &single_thread(config))?;
                Ok(SileroVad::new(Graph::Sequence(model)))
            }
            Err(reason) => {
                tracing::debug!(model = %path.display(), %reason, "Silero graph run as published");
                SileroVad::load_published(path, config)
            }
        }
    }

    /// Loads the graph as published, judging one window per call (what the rebuilt graph is
    /// checked against). The sample rate is stated as a constant (16 kHz), which lets ONNX
    /// Runtime drop the graph's 8 kHz branch and its run-time choice between the two.
    pub fn load_published(path: &Path, config: &SessionConfig) -> Result<SileroVad, TaskError> {
        let mut config = single_thread(config);
        config
            .constant_inputs
            .push(ConstantInput::new("sr", i64::from(SAMPLE_RATE)));
        let model = OnnxModel::load(path, &config).map_err(|error| match error {
            EngineError::Load { message, .. } if message.contains("no input `sr`") => {
                TaskError::ModelFile {
                    path: path.to_path_buf(),
                    message: format!("not a Silero VAD v5/v6 graph: {message}"),
                }
            }
            other => other.into(),
        })?;
        for input in ["input", "state"] {
            if !model.has_input(input) {
                return Err(TaskError::ModelFile {
                    path: path.to_path_buf(),
                    message: format!(
                        "not a Silero VAD v5/v6 graph: it has no `{input}` input (inputs: {:?})",
                        model.inputs().iter().map(|i| &i.name).collect::<Vec<_>>()
                    ),
                });
            }
        }
        Ok(SileroVad::new(Graph::Published(model)))
    }

    fn new(graph: Graph) -> SileroVad {
        SileroVad {
            graph,
            state: vec![0.0; STATE],
            context: vec![0.0; CONTEXT],
            input: Vec::new(),
        }
    }

    /// Where the session runs.
    pub fn device(&self) -> Device {
        match &self.graph {
            Graph::Sequence(model) | Graph::Published(model) => model.device(),
        }
    }

    /// Whether the rebuilt graph runs (many windows per call), not the published one.
    pub fn judges_many_windows_per_call(&self) -> bool {
        matches!(self.graph, Graph::Sequence(_))
    }

    /// Forgets the audio seen so far.
    pub fn reset(&mut self) {
        self.state.fill(0.0);
        self.context.fill(0.0);
    }

    /// The probability that the next 512-sample window (16 kHz) holds speech. A shorter window
    /// (the end of the audio) is padded with silence.
    pub fn probability(&mut self, window: &[f32]) -> Result<f32, TaskError> {
        // An empty window is judged as a window of silence, not skipped.
        let window = match window.len() {
            0 => &[0.0][..],
            n => &window[..n.min(WINDOW)],
        };
        self.judge(window)?
            .first()
            .copied()
            .ok_or_else(|| TaskError::Inference("the VAD graph returned no probability".into()))
    }

    /// The speech probability of every 512-sample window of a whole clip (the last one padded
    /// with silence), from a fresh state.
    pub fn probabilities(&mut self, samples: &[f32]) -> Result<Vec<f32>, TaskError> {
        self.reset();
        self.judge(samples)
    }

    /// The speech probabilities of the windows that follow the audio seen so far: every 512
    /// samples of `samples` (a shorter last window is padded with silence).
    pub fn judge(&mut self, samples: &[f32]) -> Result<Vec<f32>, TaskError> {
        let mut found = Vec::with_capacity(samples.len().div_ceil(WINDOW));
        for part in samples.chunks(MAX_WINDOWS_PER_CALL * WINDOW) {
            let rows = self.fill_rows(part);
            match &mut self.graph {
                Graph::Sequence(model) => {
                    let outputs = model.run(&[
                        (
                            "windows",
                            TensorInput::new([rows, CONTEXT + WINDOW], &self.input),
                        ),
                        ("state", TensorInput::new([2, 1, 128], &self.state)),
                    ])?;
                    let probabilities = outputs.at(0)?.f32()?;
                    if probabilities.len() != rows {
                        return Err(TaskError::Inference(format!(
                            "the VAD graph judged {} windows of {rows}",
                            probabilities.len()
                        )));
                    }
                    found.extend_from_slice(probabilities);
                    copy_state(&mut self.state, outputs.at(1)?.f32()?)?;
                }
                Graph::Published(model) => {
                    for row in self.input.chunks_exact(CONTEXT + WINDOW) {
                        let outputs = model.run(&[
                            ("input", TensorInput::new([1, CONTEXT + WINDOW], row)),
                            ("state", TensorInput::new([2, 1, 128], &self.state)),
                        ])?;
                        let probability =
                            outputs.at(0)?.f32()?.first().copied().ok_or_else(|| {
                                TaskError::Inference("the VAD graph returned no probability".into())
                            })?;
                        found.push(probability);
                        copy_state(&mut self.state, outputs.at(1)?.f32()?)?;
                    }
                }
            }
        }
        Ok(found)
    }

    /// Lays out `samples` as graph input rows, each window after its context, and keeps the
    /// last context for the next call. Returns the number of rows.
    fn fill_rows(&mut self, samples: &[f32]) -> usize {
        self.input.clear();
        for window in samples.chunks(WINDOW) {
            let start = self.input.len();
            self.input.extend_from_slice(&self.context);
            self.input.extend_from_slice(window);
            self.input.resize(start + CONTEXT + WINDOW, 0.0);
            self.context
                .copy_from_slice(&self.input[self.input.len() - CONTEXT..]);
        }
        self.input.len() / (CONTEXT + WINDOW)
    }
}

fn single_thread(config: &SessionConfig) -> SessionConfig {
    let mut config = config.clone();
    if config.intra_threads == 0 {
        config.intra_threads = 1;
    }
    config
}

fn copy_state(state: &mut [f32], next: &[f32]) -> Result<(), TaskError> {
    if next.len() != state.len() {
        return Err(TaskError::Inference(format!(
            "the VAD graph returned a state of {} values, not {}",
            next.len(),
            state.len()
        )));
    }
    state.copy_from_slice(next);
    Ok(())
}

/// Speech segments in audio that arrives piece by piece: push samples (16 kHz mono) as they
/// come, get [`VadEvent`]s as speech starts and ends. It owns its graph, or borrows one
/// (`VadStream<&mut SileroVad>`) that outlives it.
pub struct VadStream<V: BorrowMut<SileroVad> = SileroVad> {
    vad: V,
    detector: SpeechDetector,
    pending: Vec<f32>,
}

impl<V: BorrowMut<SileroVad>> VadStream<V> {
    /// A stream over a loaded graph (its state is reset).
    pub fn new(mut vad: V, options: VadOptions) -> VadStream<V> {
        vad.borrow_mut().reset();
        VadStream {
            vad,
            detector: SpeechDetector::new(options),
            pending: Vec::with_capacity(WINDOW),
        }
    }

    /// Feeds samples; returns what they decided. The whole windows among them are judged in
    /// one call.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<VadEvent>, TaskError> {
        self.pending.extend_from_slice(samples);
        let whole = self.pending.len() / WINDOW * WINDOW;
        if whole == 0 {
            return Ok(Vec::new());
        }
        let probabilities = self.vad.borrow_mut().judge(&self.pending[..whole])?;
        self.pending.drain(..whole);
        Ok(probabilities
            .into_iter()
            .flat_map(|probability| self.detector.push(probability, WINDOW))
            .collect())
    }

    /// Where the silence that may end the current speech began, if it has (see
    /// [`SpeechDetector::silence_since`]).
    pub fn silence_since(&self) -> Option<usize> {
        self.detector.silence_since()
    }

    /// Gives the graph back (to start a stream with other options).
    pub fn into_inner(self) -> V {
        self.vad
    }

    /// Ends the audio: a last partial window is judged, and speech still open is closed.
    pub fn finish(&mut self) -> Result<Vec<VadEvent>, TaskError> {
        let mut events = Vec::new();
        if !self.pending.is_empty() {
            let probability = self.vad.borrow_mut().probability(&self.pending)?;
            events.extend(self.detector.push(probability, self.pending.len()));
            self.pending.clear();
        }
        events.extend(self.detector.finish());
        Ok(events)
    }
}

/// A stretch of speech, in seconds from the start of the audio.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpeechSegment {
    /// Where it starts.
    pub start: f64,
    /// Where it ends.
    pub end: f64,
}

/// One upload to search for speech.
#[derive(Debug, Clone)]
pub struct VadRequest {
    /// The audio file's bytes (any format [`audio::decode`] reads).
    pub audio: Vec<u8>,
    /// Thresholds and durations.
    pub options: VadOptions,
}

/// What the runner gets: 16 kHz samples and the options.
#[derive(Debug)]
pub struct VadJob {
    samples: Vec<f32>,
    options: VadOptions,
}

/// The speech found in one upload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VadResult {
    /// The audio's length in seconds.
    pub duration: f64,
    /// The speech segments, in order, not overlapping.
    pub segments: Vec<SpeechSegment>,
}

/// The VAD frontend: decodes and resamples uploads.
pub struct VadFrontend {
    max_seconds: f64,
}

impl Frontend for VadFrontend {
    const TASK: Task = Task::Vad;
    type Request = VadRequest;
    type Input = VadJob;
    type Output = VadResult;
    type Response = VadResult;

    fn prepare(&self, request: VadRequest) -> Result<Prepared<VadJob>, TaskError> {
        request.options.check()?;
        let audio = audio::decode_at(request.audio, SAMPLE_RATE, self.max_seconds)?;
        let cost = audio.samples.len();
        Ok(Prepared {
            input: VadJob {
                samples: audio.samples,
                options: request.options,
            },
            cost,
        })
    }

    fn finish(&self, output: VadResult) -> Result<VadResult, TaskError> {
        Ok(output)
    }
}

/// Runs whole uploads through one graph, one after another.
pub struct VadRunner {
    vad: SileroVad,
}

impl Runner for VadRunner {
    type Input = VadJob;
    type Output = VadResult;

    fn run(
        &mut self,
        jobs: Vec<VadJob>,
        cancelled: &Cancelled<'_>,
    ) -> Vec<Result<VadResult, TaskError>> {
        each_job(jobs, cancelled, |job| {
            segments(&mut self.vad, &job.samples, job.options)
        })
    }
}

/// The speech segments of a whole 16 kHz clip.
pub fn segments(
    vad: &mut SileroVad,
    samples: &[f32],
    options: VadOptions,
) -> Result<VadResult, TaskError> {
    let probabilities = vad.probabilities(samples)?;
    let mut detector = SpeechDetector::new(options);
    let mut events = Vec::new();
    for (index, probability) in probabilities.into_iter().enumerate() {
        let len = (samples.len() - index * WINDOW).min(WINDOW);
        events.extend(detector.push(probability, len));
    }
    events.extend(detector.finish());
    Ok(VadResult {
        duration: samples.len() as f64 / f64::from(SAMPLE_RATE),
        segments: events
            .into_iter()
            .filter_map(|event| match event {
                VadEvent::SpeechEnd { start, end } => Some(SpeechSegment {
                    start: start as f64 / f64::from(SAMPLE_RATE),
                    end: end as f64 / f64::from(SAMPLE_RATE),
                }),
                VadEvent::SpeechStart { .. } => None,
            })
            .collect(),
    })
}

fn load(model: &LocalModel, context: &LoadContext) -> Result<LoadedModel, TaskError> {
    let vad = SileroVad::load(&model.file_with_extension("onnx")?, &context.session)?;
    let device = vad.device();
    Ok(LoadedModel::new(
        VadFrontend {
            max_seconds: f64::from(context.limits.max_audio_seconds),
        },
        VadRunner { vad },
        device,
    ))
}
