//! The model manager: find a model by name, load it on first use, keep it while it is used, and
//! unload it when idle or when the memory budget needs its room.

use std::any::Any;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};

use tessera_core::{Device, EngineKind, Task};
use tessera_hub::{Hub, ModelRef, Scope};
use tessera_tasks::registry::EngineSide;
use tessera_tasks::{Batching, Family, Frontend, LoadContext, Registry, TaskError};
use tokio::sync::{Semaphore, watch};

use crate::config::RuntimeConfig;
use crate::error::{FailureKind, RuntimeError};
use crate::memory::{resident_bytes, trim};
use crate::worker::{JobError, Worker, WorkerSpec, panic_message as panic_text, stage};

/// The catalog model speech-to-text families find speech with.
const SPEECH_DETECTOR: &str = "silero-vad";

/// How often idle models are looked for.
const IDLE_CHECK: Duration = Duration::from_millis(250);

/// Loads models on demand and runs their work. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    hub: Hub,
    registry: Registry,
    config: RuntimeConfig,
    // One slot per name that denotes a model; names that are not models never get one.
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    preprocessing: Arc<Semaphore>,
    // Loads run one at a time: the budget check and the resident-size measurement stay exact.
    serial_loads: Mutex<()>,
}

/// Where a model is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadState {
    /// Not in memory; the next request loads it.
    Unloaded,
    /// Being fetched or loaded.
    Loading,
    /// In memory and serving.
    Ready,
    /// The last load failed; requests get its cause until the cool-down ends.
    Failed,
}

impl LoadState {
    /// The lowercase name used on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            LoadState::Unloaded => "unloaded",
            LoadState::Loading => "loading",
            LoadState::Ready => "ready",
            LoadState::Failed => "failed",
        }
    }
}

/// Why a model left memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnloadReason {
    /// Unused for longer than its idle timeout.
    Idle,
    /// Its room was needed for another model.
    Evicted,
    /// An operator asked.
    Operator,
}

impl UnloadReason {
    fn as_str(self) -> &'static str {
        match self {
            UnloadReason::Idle => "idle",
            UnloadReason::Evicted => "evicted",
            UnloadReason::Operator => "operator",
        }
    }
}

/// What the runtime knows of one model, for listings.
#[derive(Debug, Clone)]
pub struct ModelStatus {
    /// The name it is served under.
    pub id: String,
    /// What it does, once known.
    pub task: Option<Task>,
    /// What runs it, once known.
    pub engine: Option<EngineKind>,
    /// Where it is in its life.
    pub state: LoadState,
    /// Bytes it holds, measured at load, while loaded.
    pub resident_bytes: Option<u64>,
    /// When a request last used it.
    pub last_used: Option<SystemTime>,
    /// Jobs waiting in its queue.
    pub queue_depth: usize,
    /// Requests using it now.
    pub in_flight: usize,
    /// Where it runs, while loaded.
    pub device: Option<Device>,
    /// Whether it is never unloaded.
    pub pinned: bool,
    /// Why the last load failed, while cooling down.
    pub error: Option<String>,
    /// Whether it is a local folder rather than a catalog model.
    pub local: bool,
}

struct Slot {
    id: String,
    model: ModelRef,
    pinned: bool,
    idle_unload: Option<Duration>,
    state: Mutex<State>,
    in_flight: AtomicUsize,
    failures: AtomicU32,
    last_used: Mutex<Option<(Instant, SystemTime)>>,
}

/// The outcome a load publishes to the requests waiting for it.
type Outcome = Option<Result<(), RuntimeError>>;

enum State {
    Unloaded,
    Loading(watch::Receiver<Outcome>),
    Ready(Arc<Model>),
    Failed {
        error: RuntimeError,
        retry_at: Instant,
    },
}

/// A loaded model.
struct Model {
    family: &'static Family,
    frontend: Arc<dyn Any + Send + Sync>,
    worker: Worker,
    resident: u64,
    device: Device,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing in the runtime panics while holding these locks; recover rather than cascade.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Slot {
    fn touch(&self) {
        *lock(&self.last_used) = Some((Instant::now(), SystemTime::now()));
    }

    fn idle_for(&self) -> Option<Duration> {
        lock(&self.last_used).map(|(at, _)| at.elapsed())
    }
}

/// Counts a request as using a slot's model from before it looks at the state until it is done,
/// so neither idle unload nor eviction can take the model from under it.
struct InUse(Arc<Slot>);

impl InUse {
    fn new(slot: &Arc<Slot>) -> InUse {
        slot.in_flight.fetch_add(1, Ordering::SeqCst);
        slot.touch();
        InUse(slot.clone())
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Runtime {
    /// A runtime that finds models through `hub`, runs the families of `registry`, and behaves
    /// as `config` says. Starts a thread that unloads idle models; it ends with the runtime.
    pub fn new(hub: Hub, registry: Registry, config: RuntimeConfig) -> Runtime {
        let inner = Arc::new(Inner {
            preprocessing: Arc::new(Semaphore::new(config.max_preprocessing.max(1))),
            hub,
            registry,
            config,
            slots: Mutex::new(HashMap::new()),
            serial_loads: Mutex::new(()),
        });
        let weak = Arc::downgrade(&inner);
        let spawned = std::thread::Builder::new()
            .name("tessera-idle".into())
            .spawn(move || unload_idle_until_dropped(weak));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the idle-unload thread; idle models stay loaded");
        }
        Runtime { inner }
    }

    /// The hub models come from.
    pub fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// The settings this runtime runs with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// Runs one request of task `F` on model `name`, loading the model first if needed. The
    /// request is pre-processed on the blocking pool, run on the model's worker (batched with
    /// other callers' jobs when the family batches) and post-processed, all off the async threads.
    pub async fn run<F: Frontend>(
        &self,
        name: &str,
        request: F::Request,
    ) -> Result<F::Response, RuntimeError> {
        let (slot, model, _in_use) = self.acquire(name, Some(F::TASK)).await?;
        let model_id = slot.id.clone();
        let task = F::TASK.as_str();
        let frontend = frontend_of::<F>(&model, &model_id)?;
        let permit = self
            .inner
            .preprocessing
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                RuntimeError::overloaded(
                    "preprocessing",
                    format!(
                        "the server is pre-processing {} requests already (see --max-preprocessing); retry shortly",
                        self.inner.config.max_preprocessing
                    ),
                )
            })?;
        let started = Instant::now();
        let preparing = frontend.clone();
        let prepared = blocking(&model_id, move || {
            let _permit = permit;
            preparing.prepare(request)
        })
        .await?
        .map_err(|e| RuntimeError::from_task(&model_id, e))?;
        stage(task, &model_id, "preprocess", started.elapsed());
        let receiver = model
            .worker
            .submit(Box::new(prepared.input), prepared.cost)?;
        let output = match receiver.await {
            Ok(Ok(output)) => output,
            Ok(Err(JobError::Task(e))) => return Err(RuntimeError::from_task(&model_id, e)),
            Ok(Err(JobError::Panicked(message))) => {
                return Err(RuntimeError::Panicked {
                    model: model_id,
                    message,
                });
            }
            Err(_) => return Err(RuntimeError::Unavailable { model: model_id }),
        };
        let output = output
            .downcast::<F::Output>()
            .map_err(|_| RuntimeError::Inference {
                model: model_id.clone(),
                message: "internal error: the runner answered with another type".into(),
            })?;
        let started = Instant::now();
        let response = blocking(&model_id, move || frontend.finish(*output))
            .await?
            .map_err(|e| RuntimeError::from_task(&model_id, e))?;
        stage(task, &model_id, "postprocess", started.elapsed());
        Ok(response)
    }

    /// Runs `work` on model `name`'s frontend, on the blocking pool, loading the model first if
    /// needed: for what needs the model but not its engine (tokenizing, rendering a prompt).
    pub async fn with_frontend<F: Frontend, T: Send + 'static>(
        &self,
        name: &str,
        work: impl FnOnce(&F) -> Result<T, TaskError> + Send + 'static,
    ) -> Result<T, RuntimeError> {
        let (slot, model, _in_use) = self.acquire(name, Some(F::TASK)).await?;
        let model_id = slot.id.clone();
        let frontend = frontend_of::<F>(&model, &model_id)?;
        blocking(&model_id, move || work(&frontend))
            .await?
            .map_err(|e| RuntimeError::from_task(&model_id, e))
    }

    /// The memory `name` will take once loaded: what it holds when loaded, else its family's
    /// estimate from its files (fetched first when they are not cached). For checking that a set
    /// of models fits [`RuntimeConfig::memory_budget`] before any of them loads.
    pub async fn footprint(&self, name: &str) -> Result<u64, RuntimeError> {
        let slot = self.inner.slot(name)?;
        if let State::Ready(model) = &*lock(&slot.state) {
            return Ok(model.resident);
        }
        let inner = self.inner.clone();
        blocking(name, move || {
            let local = inner
                .hub
                .materialize(&slot.model)
                .map_err(|e| RuntimeError::from_hub(&slot.id, &e))?;
            let family = inner
                .registry
                .family_for(&local)
                .map_err(|e| RuntimeError::from_load(&slot.id, e))?;
            Ok((family.estimate_bytes)(&local))
        })
        .await?
    }

    /// Loads `name` now if it is not loaded (for operators and `--preload`), and returns its status.
    pub async fn load(&self, name: &str) -> Result<ModelStatus, RuntimeError> {
        let (slot, _model, in_use) = self.acquire(name, None).await?;
        drop(in_use);
        Ok(status_of(&slot))
    }

    /// Unloads `name` if it is loaded; requests already running on it finish first. Returns whether
    /// it was loaded.
    pub async fn unload(&self, name: &str) -> Result<bool, RuntimeError> {
        let slot = self.inner.slot(name)?;
        let inner = self.inner.clone();
        blocking(name, move || inner.unload(&slot, UnloadReason::Operator)).await
    }

    /// Takes every loaded model out of memory and waits, up to `grace`, for their workers to
    /// stop; jobs whose callers are gone end at their next step. Call it before the process
    /// exits: an engine thread still computing while the native libraries' static destructors
    /// run (oneDNN frees its JIT kernels at exit) crashes the process. Blocking. Returns
    /// whether every worker stopped in time.
    pub fn shutdown(&self, grace: Duration) -> bool {
        let until = Instant::now() + grace;
        let slots: Vec<Arc<Slot>> = lock(&self.inner.slots).values().cloned().collect();
        let models: Vec<Arc<Model>> = slots
            .iter()
            .filter_map(|slot| {
                let mut state = lock(&slot.state);
                match std::mem::replace(&mut *state, State::Unloaded) {
                    State::Ready(model) => Some(model),
                    other => {
                        *state = other;
                        None
                    }
                }
            })
            .collect();
        let running = models
            .iter()
            .filter(|model| !model.worker.stop_by(until))
            .count();
        if running > 0 {
            tracing::warn!(
                running,
                seconds = grace.as_secs_f64(),
                "models were still computing at shutdown"
            );
        }
        running == 0
    }

    /// Every model the runtime has seen, loaded or not, sorted by name. Never waits for a load.
    pub fn models(&self) -> Vec<ModelStatus> {
        let slots: Vec<Arc<Slot>> = lock(&self.inner.slots).values().cloned().collect();
        let mut statuses: Vec<ModelStatus> = slots.iter().map(|s| status_of(s)).collect();
        statuses.sort_by(|a, b| a.id.cmp(&b.id));
        statuses
    }

    /// The slot of `name` with its model ready, counted as in use.
    async fn acquire(
        &self,
        name: &str,
        expected: Option<Task>,
    ) -> Result<(Arc<Slot>, Arc<Model>, InUse), RuntimeError> {
        let slot = self.inner.slot(name)?;
        let wrong_task = |actual: Task| RuntimeError::WrongTask {
            model: slot.id.clone(),
            actual,
            expected: expected.unwrap_or(actual),
        };
        // Refused from what the catalog says, before anything is downloaded.
        if let (Some(expected), Some(actual)) = (expected, slot.model.task)
            && expected != actual
        {
            return Err(wrong_task(actual));
        }
        let in_use = InUse::new(&slot);
        let model = self.ready(&slot).await?;
        if let Some(expected) = expected
            && model.family.task != expected
        {
            return Err(wrong_task(model.family.task));
        }
        Ok((slot, model, in_use))
    }

    /// Waits until the slot's model is ready, starting a load if none is running; concurrent
    /// callers share one load.
    async fn ready(&self, slot: &Arc<Slot>) -> Result<Arc<Model>, RuntimeError> {
        loop {
            let mut outcome = {
                let mut state = lock(&slot.state);
                match &*state {
                    State::Ready(model) => return Ok(model.clone()),
                    State::Failed { error, retry_at } if Instant::now() < *retry_at => {
                        return Err(with_retry_in(error.clone(), *retry_at));
                    }
                    State::Loading(outcome) => outcome.clone(),
                    State::Unloaded | State::Failed { .. } => {
                        let (publish, outcome) = watch::channel(None);
                        *state = State::Loading(outcome.clone());
                        let inner = self.inner.clone();
                        let loading = slot.clone();
                        tokio::task::spawn_blocking(move || inner.load(&loading, publish));
                        outcome
                    }
                }
            };
            if let Ok(result) = outcome.wait_for(Option::is_some).await
                && let Some(Err(error)) = &*result
            {
                return Err(error.clone());
            }
        }
    }
}

impl Inner {
    /// The slot for `name`, made on first use; a name that is not a model gets an error and no slot.
    fn slot(&self, name: &str) -> Result<Arc<Slot>, RuntimeError> {
        if let Some(slot) = lock(&self.slots).get(name) {
            return Ok(slot.clone());
        }
        let scope = if self.config.any_path {
            Scope::AnyPath
        } else {
            Scope::ModelDirs(&self.config.model_dirs)
        };
        let model = self
            .hub
            .locate(name, &scope)
            .map_err(|e| RuntimeError::from_hub(name, &e))?;
        let id = model.id.clone();
        let settings = self.config.models.get(&id).cloned().unwrap_or_default();
        let idle_unload = settings
            .idle_unload
            .or_else(|| self.hub.catalog().get(&id).and_then(|e| e.idle_unload))
            .or(self.config.idle_unload)
            .filter(|d| !d.is_zero());
        let pinned = settings.pin || self.config.pinned.contains(&id);
        let mut slots = lock(&self.slots);
        let slot = slots.entry(id.clone()).or_insert_with(|| {
            Arc::new(Slot {
                id,
                model,
                pinned,
                idle_unload,
                state: Mutex::new(State::Unloaded),
                in_flight: AtomicUsize::new(0),
                failures: AtomicU32::new(0),
                last_used: Mutex::new(None),
            })
        });
        Ok(slot.clone())
    }

    /// Loads a slot's model on a blocking thread and publishes the outcome to its waiters.
    fn load(&self, slot: &Arc<Slot>, publish: watch::Sender<Outcome>) {
        let started = Instant::now();
        let result =
            catch_unwind(AssertUnwindSafe(|| self.load_model(slot))).unwrap_or_else(|panic| {
                Err(RuntimeError::Load {
                    model: slot.id.clone(),
                    message: format!("the loader panicked: {}", panic_text(panic.as_ref())),
                    kind: FailureKind::Internal,
                    retry_in: None,
                })
            });
        let model = slot.id.clone();
        let mut state = lock(&slot.state);
        let outcome = match result {
            Ok(loaded) => {
                let seconds = started.elapsed().as_secs_f64();
                tracing::info!(
                    model,
                    family = loaded.family.name,
                    device = %loaded.device,
                    resident_mb = loaded.resident / 1_000_000,
                    seconds,
                    "model loaded"
                );
                metrics::counter!("tessera_model_loads_total", "model" => model.clone())
                    .increment(1);
                metrics::histogram!("tessera_model_load_seconds", "model" => model.clone())
                    .record(seconds);
                metrics::gauge!("tessera_model_loaded", "model" => model.clone()).set(1.0);
                metrics::gauge!("tessera_model_resident_bytes", "model" => model.clone())
                    .set(loaded.resident as f64);
                slot.failures.store(0, Ordering::SeqCst);
                *state = State::Ready(Arc::new(loaded));
                Ok(())
            }
            // Not the model's fault: nothing to cool down from.
            Err(error @ RuntimeError::OverBudget { .. }) => {
                *state = State::Unloaded;
                Err(error)
            }
            Err(error) => {
                let failures = slot.failures.fetch_add(1, Ordering::SeqCst) + 1;
                let wait = cooldown(&self.config, failures);
                tracing::warn!(model, %error, failures, retry_in_s = wait.as_secs_f64(), "load failed; cooling down");
                metrics::counter!("tessera_model_load_failures_total", "model" => model.clone())
                    .increment(1);
                let retry_at = Instant::now() + wait;
                *state = State::Failed {
                    error: error.clone(),
                    retry_at,
                };
                Err(with_retry_in(error, retry_at))
            }
        };
        drop(state);
        let _ = publish.send(Some(outcome));
    }

    /// The Silero VAD graph that speech-to-text models cut speech with: pulled like any
    /// catalog model (2 MB). Without it, Whisper still runs and leans on its no-speech
    /// probability alone.
    fn speech_detector(&self) -> Option<std::path::PathBuf> {
        match self
            .hub
            .pull(SPEECH_DETECTOR)
            .and_then(|vad| vad.file_with_extension("onnx"))
        {
            Ok(path) => Some(path),
            Err(error) => {
                tracing::warn!(%error, "no {SPEECH_DETECTOR} for Whisper: silence is decoded too");
                None
            }
        }
    }

    fn load_model(&self, slot: &Slot) -> Result<Model, RuntimeError> {
        if !self.config.hooks.load_delay.is_zero() {
            std::thread::sleep(self.config.hooks.load_delay);
        }
        let local = self
            .hub
            .materialize(&slot.model)
            .map_err(|e| RuntimeError::from_hub(&slot.id, &e))?;
        let family = self
            .registry
            .family_for(&local)
            .map_err(|e| RuntimeError::from_load(&slot.id, e))?;
        // LLMs and voices batch continuously inside one runner: one copy serves them.
        let replicas = match family.batching {
            Batching::Continuous => 1,
            _ => self.config.replicas.max(1),
        };
        let estimate = (family.estimate_bytes)(&local).saturating_mul(replicas as u64);
        let _serial = lock(&self.serial_loads);
        self.make_room(slot, estimate)?;
        let before = resident_bytes();
        let mut session = self.config.session.clone();
        if replicas > 1 && session.intra_threads == 0 {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            session.intra_threads = (cores / replicas).max(1);
        }
        let context = LoadContext {
            session,
            budget: self.config.batch.budget,
            limits: self.config.limits,
            llm: self.config.llm.clone(),
            vad: (family.task == Task::Transcribe)
                .then(|| self.speech_detector())
                .flatten(),
        };
        let load =
            || (family.load)(&local, &context).map_err(|e| RuntimeError::from_load(&slot.id, e));
        let loaded = load()?;
        let mut runners = vec![loaded.runner];
        while runners.len() < replicas && matches!(runners[0], EngineSide::Batch(_)) {
            runners.push(load()?.runner);
        }
        // The RSS difference, but never less than the weights: memory freed by an earlier unload
        // and reused here would otherwise hide part of the model.
        let weights = tessera_tasks::registry::file_bytes(&local);
        let resident = match (before, resident_bytes()) {
            (Some(before), Some(after)) => after.saturating_sub(before).max(weights),
            _ => estimate,
        };
        let spec = WorkerSpec {
            model: slot.id.clone(),
            task: family.task.as_str(),
            batching: family.batching,
            config: self.config.batch,
            panic_first_call: self.config.hooks.panic_first_call,
        };
        let worker = Worker::spawn(spec, runners).map_err(|e| RuntimeError::Load {
            model: slot.id.clone(),
            message: format!("could not start its worker thread: {e}"),
            kind: FailureKind::Unavailable,
            retry_in: None,
        })?;
        Ok(Model {
            family,
            frontend: loaded.frontend,
            worker,
            resident,
            device: loaded.device,
        })
    }

    /// Bytes held by ready models, leaving out `except`.
    fn used_bytes(&self, except: Option<&str>) -> u64 {
        self.ready_models(except)
            .iter()
            .map(|(_, model)| model.resident)
            .sum()
    }

    fn ready_models(&self, except: Option<&str>) -> Vec<(Arc<Slot>, Arc<Model>)> {
        let slots: Vec<Arc<Slot>> = lock(&self.slots).values().cloned().collect();
        slots
            .into_iter()
            .filter(|slot| Some(slot.id.as_str()) != except)
            .filter_map(|slot| {
                let model = match &*lock(&slot.state) {
                    State::Ready(model) => model.clone(),
                    _ => return None,
                };
                Some((slot, model))
            })
            .collect()
    }

    /// Evicts least-recently-used idle models until `need` more bytes fit the budget.
    fn make_room(&self, slot: &Slot, need: u64) -> Result<(), RuntimeError> {
        let budget = self.config.memory_budget;
        loop {
            let used = self.used_bytes(Some(&slot.id));
            if used.saturating_add(need) <= budget {
                return Ok(());
            }
            let mut candidates: Vec<Arc<Slot>> = self
                .ready_models(Some(&slot.id))
                .into_iter()
                .map(|(slot, _)| slot)
                .filter(|s| !s.pinned && s.in_flight.load(Ordering::SeqCst) == 0)
                .collect();
            candidates.sort_by_key(|s| std::cmp::Reverse(s.idle_for().unwrap_or(Duration::MAX)));
            let evicted = need <= budget
                && candidates
                    .iter()
                    .any(|victim| self.unload(victim, UnloadReason::Evicted));
            if !evicted {
                return Err(self.over_budget(slot, need, used));
            }
        }
    }

    fn over_budget(&self, slot: &Slot, need: u64, used: u64) -> RuntimeError {
        let holders: Vec<String> = self
            .ready_models(Some(&slot.id))
            .iter()
            .map(|(holder, model)| {
                let why = if holder.pinned {
                    "pinned"
                } else if holder.in_flight.load(Ordering::SeqCst) > 0 {
                    "in use"
                } else {
                    "idle"
                };
                format!("`{}` {} ({why})", holder.id, megabytes(model.resident))
            })
            .collect();
        let held = if holders.is_empty() {
            "nothing else is loaded".to_string()
        } else {
            format!("held by {}", holders.join(", "))
        };
        metrics::counter!("tessera_requests_refused_total", "reason" => "memory_budget")
            .increment(1);
        RuntimeError::OverBudget {
            model: slot.id.clone(),
            message: format!(
                "model `{}` needs about {} but the memory budget is {} with {} in use ({held}); raise --memory-budget or unload a model",
                slot.id,
                megabytes(need),
                megabytes(self.config.memory_budget),
                megabytes(used),
            ),
        }
    }

    /// Takes a ready model out of its slot; for idle unloads and evictions only when no request
    /// is using it. Returns whether it unloaded. Blocking: it joins the model's worker.
    fn unload(&self, slot: &Slot, reason: UnloadReason) -> bool {
        let model = {
            let mut state = lock(&slot.state);
            let busy = slot.in_flight.load(Ordering::SeqCst) > 0;
            if !matches!(*state, State::Ready(_)) || (busy && reason != UnloadReason::Operator) {
                return false;
            }
            match std::mem::replace(&mut *state, State::Unloaded) {
                State::Ready(model) => model,
                _ => return false,
            }
        };
        let resident = model.resident;
        // Requests still running on the model hold it until they finish; the last of them closes
        // the worker's queue. Otherwise wait here for the engine to be dropped, so the trim below
        // hands its memory back.
        if let Ok(model) = Arc::try_unwrap(model) {
            model.worker.join();
        }
        trim();
        tracing::info!(
            model = slot.id,
            reason = reason.as_str(),
            resident_mb = resident / 1_000_000,
            "model unloaded"
        );
        metrics::counter!("tessera_model_unloads_total", "model" => slot.id.clone(), "reason" => reason.as_str()).increment(1);
        if reason == UnloadReason::Evicted {
            metrics::counter!("tessera_model_evictions_total", "model" => slot.id.clone())
                .increment(1);
        }
        metrics::gauge!("tessera_model_loaded", "model" => slot.id.clone()).set(0.0);
        metrics::gauge!("tessera_model_resident_bytes", "model" => slot.id.clone()).set(0.0);
        true
    }

    fn unload_idle(&self) {
        for (slot, _) in self.ready_models(None) {
            let Some(limit) = slot.idle_unload else {
                continue;
            };
            if !slot.pinned && slot.idle_for().is_some_and(|idle| idle >= limit) {
                self.unload(&slot, UnloadReason::Idle);
            }
        }
    }
}

fn unload_idle_until_dropped(runtime: Weak<Inner>) {
    loop {
        std::thread::sleep(IDLE_CHECK);
        match runtime.upgrade() {
            Some(inner) => inner.unload_idle(),
            None => return,
        }
    }
}

fn status_of(slot: &Slot) -> ModelStatus {
    let (state, model, error) = match &*lock(&slot.state) {
        State::Unloaded => (LoadState::Unloaded, None, None),
        State::Loading(_) => (LoadState::Loading, None, None),
        State::Ready(model) => (LoadState::Ready, Some(model.clone()), None),
        State::Failed { error, .. } => (LoadState::Failed, None, Some(error.to_string())),
    };
    ModelStatus {
        id: slot.id.clone(),
        task: model.as_ref().map(|m| m.family.task).or(slot.model.task),
        engine: model
            .as_ref()
            .map(|m| m.family.engine)
            .or(slot.model.engine),
        state,
        resident_bytes: model.as_ref().map(|m| m.resident),
        last_used: lock(&slot.last_used).map(|(_, at)| at),
        queue_depth: model.as_ref().map_or(0, |m| m.worker.queue_depth()),
        in_flight: slot.in_flight.load(Ordering::SeqCst),
        device: model.as_ref().map(|m| m.device),
        pinned: slot.pinned,
        error,
        local: slot.model.local,
    }
}

/// The wait after the `failures`-th failed load in a row: doubling from the base, capped.
fn cooldown(config: &RuntimeConfig, failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(20);
    config
        .load_cooldown
        .saturating_mul(1 << doublings)
        .min(config.max_load_cooldown)
}

fn with_retry_in(error: RuntimeError, retry_at: Instant) -> RuntimeError {
    match error {
        RuntimeError::Load {
            model,
            message,
            kind,
            ..
        } => RuntimeError::Load {
            model,
            message,
            kind,
            retry_in: Some(retry_at.saturating_duration_since(Instant::now())),
        },
        other => other,
    }
}

/// Runs CPU-bound or blocking work on the blocking pool; a panic there becomes the job's error.
/// The model's frontend as task `F`'s type; another task's model is a `WrongTask` error.
fn frontend_of<F: Frontend>(model: &Model, id: &str) -> Result<Arc<F>, RuntimeError> {
    model
        .frontend
        .clone()
        .downcast::<F>()
        .map_err(|_| RuntimeError::WrongTask {
            model: id.to_string(),
            actual: model.family.task,
            expected: F::TASK,
        })
}

async fn blocking<T: Send + 'static>(
    model: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, RuntimeError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| RuntimeError::Panicked {
            model: model.to_string(),
            message: if e.is_panic() {
                panic_text(e.into_panic().as_ref())
            } else {
                "the task was cancelled".to_string()
            },
        })
}

fn megabytes(bytes: u64) -> String {
    format!("{} MB", bytes.div_ceil(1_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cooldown_doubles_up_to_its_cap() {
        let config = RuntimeConfig {
            load_cooldown: Duration::from_secs(1),
            max_load_cooldown: Duration::from_secs(10),
            ..RuntimeConfig::default()
        };
        let waits: Vec<u64> = (1..=6).map(|n| cooldown(&config, n).as_secs()).collect();
        assert_eq!(waits, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(cooldown(&config, u32::MAX).as_secs(), 10);
    }
}
