//! The task registry: the one list of model families tessera can run, and the two traits every
//! family implements.
//!
//! A loaded model has two halves. Its [`Frontend`] is shared by every request and runs on the
//! caller's (blocking) thread: it checks and pre-processes a request (tokenize, decode audio,
//! resize) into an engine input with a cost, and post-processes the engine's output into the
//! answer. Its [`Runner`] owns the engine and runs on the model's worker thread, one batch at a
//! time. The runtime owns threads, queues and lifecycle; it sees runners through [`DynRunner`],
//! with their types erased, so one worker serves every task. Generative families (LLMs) have a
//! [`StepRunner`] instead: it admits jobs while others run and advances all of them one step
//! (one token) at a time, answering each caller at once with a handle to its stream.
//!
//! A [`Family`] ties these to the catalog: which task and engine it serves, how a local folder of
//! its kind is recognised, how it loads, how its work is batched and how much memory it needs.
//! Adding a model family is one module with a `pub static FAMILY: Family` plus one line in
//! [`FAMILIES`]; `docs/adding-a-model-family.md` walks through it.

use std::any::Any;
use std::sync::Arc;

use tessera_core::{Device, EngineKind, Task};
use tessera_engines::onnx::SessionConfig;
use tessera_hub::LocalModel;

use crate::TaskError;
use crate::packing::Budget;

/// Every model family this build knows, in the order local folders are tried against them.
pub static FAMILIES: &[&Family] = &[
    &crate::embed::ONNX_FAMILY,
    &crate::embed::CANDLE_FAMILY,
    &crate::llm::FAMILY,
    &crate::vad::FAMILY,
    &crate::speech::FAMILY,
    &crate::transcribe::FAMILY,
    &crate::vision::segment::FAMILY,
    &crate::vision::detect::FAMILY,
    &crate::vision::pose::FAMILY,
    &crate::vision::classify::FAMILY,
    &crate::vision::ocr::FAMILY,
];

/// A value of any task's input or output type, as it crosses the worker queue.
pub type AnyValue = Box<dyn Any + Send>;

/// The caller-side half of a loaded model: checks and pre-processes requests, post-processes
/// results. Shared by all requests (`Sync`); its methods are synchronous and CPU-bound, and the
/// runtime calls them off the async threads.
pub trait Frontend: Send + Sync + 'static {
    /// The task every model with this frontend does.
    const TASK: Task;
    /// What a caller asks for.
    type Request: Send + 'static;
    /// What the worker's [`Runner`] receives.
    type Input: Send + 'static;
    /// What the worker's [`Runner`] returns.
    type Output: Send + 'static;
    /// What the caller gets back.
    type Response: Send + 'static;

    /// Checks a request against the model's limits and pre-processes it; the cost measures its
    /// work (tokens, pixels, samples) so the worker can batch by budget.
    fn prepare(&self, request: Self::Request) -> Result<Prepared<Self::Input>, TaskError>;

    /// Turns the engine's output into the answer.
    fn finish(&self, output: Self::Output) -> Result<Self::Response, TaskError>;
}

/// A pre-processed request and what it will cost the engine.
#[derive(Debug)]
pub struct Prepared<I> {
    /// The engine input.
    pub input: I,
    /// Its cost in the family's unit (tokens for text encoders).
    pub cost: usize,
}

/// The worker-side half of a loaded model: owns the engine and runs batches of inputs. `Send`,
/// not `Sync`: one worker thread owns it.
pub trait Runner: Send + 'static {
    /// One job's input.
    type Input: Send + 'static;
    /// One job's output.
    type Output: Send + 'static;

    /// Runs a batch of jobs and returns one result per job, in order. A failure that concerns
    /// one job is that job's `Err`; the others still get their answers. A runner that makes
    /// several engine calls for one batch asks `cancelled` between them and skips the work of
    /// jobs whose callers have gone (their results are never read).
    fn run(
        &mut self,
        batch: Vec<Self::Input>,
        cancelled: &Cancelled<'_>,
    ) -> Vec<Result<Self::Output, TaskError>>;
}

/// Tells a runner which jobs of its batch nobody waits for any more (the caller disconnected or
/// passed its deadline).
pub struct Cancelled<'a>(&'a dyn Fn(usize) -> bool);

impl<'a> Cancelled<'a> {
    /// Asks `is_cancelled(job index)`.
    pub fn new(is_cancelled: &'a dyn Fn(usize) -> bool) -> Cancelled<'a> {
        Cancelled(is_cancelled)
    }

    /// Whether job `index` of the batch was abandoned.
    pub fn job(&self, index: usize) -> bool {
        (self.0)(index)
    }
}

/// The error a runner gives a job whose caller has gone; nobody reads it.
pub fn abandoned() -> TaskError {
    TaskError::Internal("the caller left before the job ran".into())
}

/// Runs `run` on each job of a batch in turn, skipping those whose caller has left: the loop of
/// runners that take one job per engine call.
pub fn each_job<I, O>(
    jobs: Vec<I>,
    cancelled: &Cancelled<'_>,
    mut run: impl FnMut(I) -> Result<O, TaskError>,
) -> Vec<Result<O, TaskError>> {
    jobs.into_iter()
        .enumerate()
        .map(|(index, job)| {
            if cancelled.job(index) {
                Err(abandoned())
            } else {
                run(job)
            }
        })
        .collect()
}

/// A [`Runner`] with its types erased, as the runtime's worker drives it.
pub trait DynRunner: Send {
    /// Runs a batch of boxed inputs; one boxed result per input.
    fn run_any(
        &mut self,
        batch: Vec<AnyValue>,
        cancelled: &Cancelled<'_>,
    ) -> Vec<Result<AnyValue, TaskError>>;
}

impl<R: Runner> DynRunner for R {
    fn run_any(
        &mut self,
        batch: Vec<AnyValue>,
        cancelled: &Cancelled<'_>,
    ) -> Vec<Result<AnyValue, TaskError>> {
        let mut typed = Vec::with_capacity(batch.len());
        let mut wrong = Vec::new();
        for (index, input) in batch.into_iter().enumerate() {
            match input.downcast::<R::Input>() {
                Ok(input) => typed.push(*input),
                Err(_) => wrong.push(index),
            }
        }
        if !wrong.is_empty() {
            // The runtime pairs inputs with runners through `LoadedModel::new`; this is a bug.
            let count = typed.len() + wrong.len();
            return (0..count)
                .map(|_| {
                    Err(TaskError::Internal(format!(
                        "a job's input is not a {}",
                        std::any::type_name::<R::Input>()
                    )))
                })
                .collect();
        }
        self.run(typed, cancelled)
            .into_iter()
            .map(|result| result.map(|output| Box::new(output) as AnyValue))
            .collect()
    }
}

/// The worker side of a model that serves many jobs at once and advances them together, a
/// step at a time (an LLM decoding one token for every live sequence). Jobs join between steps.
pub trait StepRunner: Send + 'static {
    /// One job's input.
    type Input: Send + 'static;
    /// What the caller gets at once: a handle through which the job's results arrive as the
    /// steps produce them (a stream).
    type Output: Send + 'static;

    /// How many more jobs it can take now.
    fn free_slots(&self) -> usize;

    /// Whether any admitted job still has work.
    fn busy(&self) -> bool;

    /// Takes a job; its work happens in later steps. An error refuses only this job.
    fn admit(&mut self, input: Self::Input) -> Result<Self::Output, TaskError>;

    /// Advances every admitted job by one step. A job whose caller has dropped its handle is
    /// ended here, within one step.
    fn step(&mut self);

    /// Ends every admitted job with `message` (after a panic), leaving the runner usable.
    fn abort_all(&mut self, message: &str);
}

/// A [`StepRunner`] with its types erased.
pub trait DynStepRunner: Send {
    /// See [`StepRunner::free_slots`].
    fn free_slots(&self) -> usize;
    /// See [`StepRunner::busy`].
    fn busy(&self) -> bool;
    /// Admits a boxed input; the boxed handle on success.
    fn admit_any(&mut self, input: AnyValue) -> Result<AnyValue, TaskError>;
    /// See [`StepRunner::step`].
    fn step(&mut self);
    /// See [`StepRunner::abort_all`].
    fn abort_all(&mut self, message: &str);
}

impl<R: StepRunner> DynStepRunner for R {
    fn free_slots(&self) -> usize {
        StepRunner::free_slots(self)
    }
    fn busy(&self) -> bool {
        StepRunner::busy(self)
    }
    fn admit_any(&mut self, input: AnyValue) -> Result<AnyValue, TaskError> {
        let input = input.downcast::<R::Input>().map_err(|_| {
            TaskError::Internal(format!(
                "a job's input is not a {}",
                std::any::type_name::<R::Input>()
            ))
        })?;
        self.admit(*input)
            .map(|output| Box::new(output) as AnyValue)
    }
    fn step(&mut self) {
        StepRunner::step(self)
    }
    fn abort_all(&mut self, message: &str) {
        StepRunner::abort_all(self, message)
    }
}

/// The engine side of a loaded model, as the runtime's worker drives it.
pub enum EngineSide {
    /// Runs batches of jobs to completion.
    Batch(Box<dyn DynRunner>),
    /// Advances many jobs a step at a time.
    Step(Box<dyn DynStepRunner>),
}

/// A model ready to serve: its frontend (downcast by callers to the concrete [`Frontend`]) and
/// its engine side (moved onto a worker thread by the runtime).
pub struct LoadedModel {
    /// The shared caller-side half.
    pub frontend: Arc<dyn Any + Send + Sync>,
    /// The engine side.
    pub runner: EngineSide,
    /// Where the engine really runs, after any fallback.
    pub device: Device,
}

impl LoadedModel {
    /// Pairs a frontend with a batch runner of matching input and output types.
    pub fn new<F, R>(frontend: F, runner: R, device: Device) -> LoadedModel
    where
        F: Frontend,
        R: Runner<Input = F::Input, Output = F::Output>,
    {
        LoadedModel {
            frontend: Arc::new(frontend),
            runner: EngineSide::Batch(Box::new(runner)),
            device,
        }
    }

    /// Pairs a frontend with a step runner of matching input and output types.
    pub fn stepping<F, R>(frontend: F, runner: R, device: Device) -> LoadedModel
    where
        F: Frontend,
        R: StepRunner<Input = F::Input, Output = F::Output>,
    {
        LoadedModel {
            frontend: Arc::new(frontend),
            runner: EngineSide::Step(Box::new(runner)),
            device,
        }
    }
}

/// How a family's worker forms batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Batching {
    /// One job per engine call (LLMs, speech, segmentation).
    Single,
    /// Jobs arriving together are merged up to the runtime's cost budget, waiting briefly for
    /// more when several arrive at once (text encoders, image classifiers).
    Budget,
    /// Like `Budget`, with each job's cost in input pixels and the budget's `max_pixels` as the
    /// bound (images: several per engine call).
    Pixels,
    /// Jobs join and leave a running set between steps (LLMs: continuous batching); the family
    /// loads a [`StepRunner`].
    Continuous,
}

/// What a family's loader may use besides the model's files.
#[derive(Debug, Clone, Default)]
pub struct LoadContext {
    /// ONNX Runtime session options and the requested device (also used by candle).
    pub session: SessionConfig,
    /// Limits on one engine call, for families that batch.
    pub budget: Budget,
    /// Per-request caps.
    pub limits: RequestLimits,
    /// llama.cpp settings for generative models; each may be overridden per model.
    pub llm: LlmSettings,
    /// The Silero VAD graph speech-to-text families cut speech with, when the runtime has it.
    pub vad: Option<std::path::PathBuf>,
}

/// llama.cpp settings given by flags or configuration. `None` leaves the choice to the model's
/// catalog options, then to tessera's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LlmSettings {
    /// KV cache size in tokens, shared by the sequences (default: the model's trained context,
    /// at most 8192).
    pub context: Option<u32>,
    /// Sequences decoded together (default 8).
    pub sequences: Option<u32>,
    /// Most tokens per decode call (default 512).
    pub batch: Option<u32>,
    /// CPU threads (default: one per physical core).
    pub threads: Option<u32>,
    /// KV cache element type (default f16).
    pub kv_type: Option<String>,
    /// Flash attention: auto, on or off (default auto).
    pub flash_attention: Option<String>,
    /// Layers offloaded to the GPU (default: all when a GPU backend is compiled and present).
    pub gpu_layers: Option<u32>,
}

/// Caps on one request, checked before any work is queued; the error names the cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestLimits {
    /// Most inputs (texts, token sequences) in one request.
    pub max_inputs: usize,
    /// Most tokens, summed over a request's inputs.
    pub max_tokens: usize,
    /// Longest audio accepted, in seconds.
    pub max_audio_seconds: u32,
    /// Largest image accepted, in pixels (checked from its header, before decoding).
    pub max_image_pixels: u64,
}

impl Default for RequestLimits {
    fn default() -> Self {
        // OpenAI's own caps for embeddings.
        RequestLimits {
            max_inputs: 2048,
            max_tokens: 300_000,
            max_audio_seconds: 3600,
            max_image_pixels: crate::vision::image::DEFAULT_MAX_PIXELS,
        }
    }
}

/// One kind of model tessera can run: a task on an engine, with everything the runtime needs.
pub struct Family {
    /// A short name for logs and errors, e.g. `bert-onnx`.
    pub name: &'static str,
    /// The task it serves.
    pub task: Task,
    /// The engine its weights run on.
    pub engine: EngineKind,
    /// How its worker batches.
    pub batching: Batching,
    /// Whether a local model of no declared task is one of this family's (its files decide).
    pub recognises: fn(&LocalModel) -> bool,
    /// Loads the model's files into a frontend and a runner. Blocking.
    pub load: fn(&LocalModel, &LoadContext) -> Result<LoadedModel, TaskError>,
    /// Roughly how many bytes the model will hold once loaded, before it is loaded.
    pub estimate_bytes: fn(&LocalModel) -> u64,
}

impl std::fmt::Debug for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.name)
            .field("task", &self.task)
            .field("engine", &self.engine)
            .field("batching", &self.batching)
            .finish_non_exhaustive()
    }
}

/// The families of this build.
#[derive(Debug, Clone)]
pub struct Registry {
    families: Vec<&'static Family>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::builtin()
    }
}

impl Registry {
    /// Every family compiled into tessera ([`FAMILIES`]).
    pub fn builtin() -> Registry {
        Registry {
            families: FAMILIES.to_vec(),
        }
    }

    /// A registry of the given families, for tests and embedders of the library.
    pub fn new(families: Vec<&'static Family>) -> Registry {
        Registry { families }
    }

    /// The families, in the order local folders are tried.
    pub fn families(&self) -> &[&'static Family] {
        &self.families
    }

    /// The family that runs `model`: the one for its declared task and engine, or for a local
    /// model that declares none, the first whose files it recognises.
    pub fn family_for(&self, model: &LocalModel) -> Result<&'static Family, TaskError> {
        let on_engine = || self.families.iter().filter(|f| f.engine == model.engine);
        match model.task {
            Some(task) => on_engine().find(|f| f.task == task).copied().ok_or_else(|| {
                TaskError::Unsupported(format!(
                    "model `{}` is a {task} model on the {} engine, which this version of tessera cannot run yet",
                    model.id, model.engine
                ))
            }),
            None => on_engine()
                .find(|f| (f.recognises)(model))
                .copied()
                .ok_or_else(|| {
                    let known: Vec<String> = self
                        .families
                        .iter()
                        .map(|f| format!("{} ({} on {})", f.name, f.task, f.engine))
                        .collect();
                    TaskError::Unsupported(format!(
                        "cannot tell what model `{}` does: its {} files match none of the model families tessera runs: {}",
                        model.id,
                        model.engine,
                        known.join(", ")
                    ))
                }),
        }
    }
}

/// Whether one of the model's files has a name (its last component) that `matches`: what most
/// families recognise a model by.
pub fn has_file(model: &LocalModel, matches: impl Fn(&str) -> bool) -> bool {
    model.files.iter().any(|file| {
        file.file_name()
            .and_then(|name| name.to_str())
            .is_some_and(&matches)
    })
}

/// Whether one of the model's file paths (its folder included) contains `needle`, in any case.
pub fn path_mentions(model: &LocalModel, needle: &str) -> bool {
    model.files.iter().any(|file| {
        file.to_str()
            .is_some_and(|path| path.to_ascii_lowercase().contains(needle))
    })
}

/// The size of a model's files: a floor for what loading it costs in memory.
pub fn file_bytes(model: &LocalModel) -> u64 {
    model
        .files
        .iter()
        .filter_map(|path| std::fs::metadata(path).ok())
        .map(|meta| meta.len())
        .sum()
}
