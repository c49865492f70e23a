//! How the runtime runs models: engines, batching, lifecycle and admission settings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tessera_engines::onnx::SessionConfig;
use tessera_tasks::RequestLimits;
use tessera_tasks::registry::LlmSettings;

use crate::worker::BatchConfig;

/// Everything the runtime needs to know; `Default` gives the server's defaults.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// ONNX Runtime session options and the device (also used by candle).
    pub session: SessionConfig,
    /// How each model's worker forms batches and how long its queue is.
    pub batch: BatchConfig,
    /// Copies of each batch-run model (not LLMs or voices), each with its own engine session and
    /// worker thread, all taking jobs from the model's one queue. Several small sessions on one
    /// thread each get more images or texts through than one session spread over all the cores
    /// (at the cost of each request's latency and of memory). With more than one, an ONNX
    /// Runtime session left to choose its threads gets cores / replicas.
    pub replicas: usize,
    /// Per-request caps (inputs, tokens).
    pub limits: RequestLimits,
    /// llama.cpp settings for LLMs (context, sequences, threads …).
    pub llm: LlmSettings,
    /// Unload a model unused this long; `None` never unloads.
    pub idle_unload: Option<Duration>,
    /// Most bytes all loaded models together may hold.
    pub memory_budget: u64,
    /// Models that are never unloaded, by idle time or eviction.
    pub pinned: Vec<String>,
    /// The first wait after a failed load; it doubles with each failure up to
    /// [`RuntimeConfig::max_load_cooldown`].
    pub load_cooldown: Duration,
    /// The longest wait between load attempts.
    pub max_load_cooldown: Duration,
    /// Requests that may be pre-processed (tokenized) at once; one more is refused at once.
    pub max_preprocessing: usize,
    /// Folders whose models may be named by a relative path. With `any_path`, any local path works
    /// too (the CLI); the server keeps it off.
    pub model_dirs: Vec<PathBuf>,
    /// Whether any existing file or folder may be named as a model.
    pub any_path: bool,
    /// Settings for single models, by name; they win over the catalog and the flags above.
    pub models: HashMap<String, ModelSettings>,
    /// Faults to inject, for tests only.
    pub hooks: TestHooks,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        RuntimeConfig {
            session: SessionConfig::default(),
            batch: BatchConfig::default(),
            replicas: 1,
            limits: RequestLimits::default(),
            llm: LlmSettings::default(),
            idle_unload: Some(Duration::from_secs(300)),
            memory_budget: default_memory_budget(),
            pinned: Vec::new(),
            load_cooldown: Duration::from_secs(2),
            max_load_cooldown: Duration::from_secs(300),
            max_preprocessing: 16 * cores,
            model_dirs: Vec::new(),
            any_path: false,
            models: HashMap::new(),
            hooks: TestHooks::default(),
        }
    }
}

/// Three quarters of physical memory, leaving the rest to the system and to the server itself;
/// 8 GiB where the platform does not say.
pub fn default_memory_budget() -> u64 {
    crate::memory::physical_memory().map_or(8 << 30, |total| total / 4 * 3)
}

/// Settings for one model.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelSettings {
    /// Its own idle timeout; `Some(Duration::ZERO)` never unloads it.
    pub idle_unload: Option<Duration>,
    /// Never unload it.
    pub pin: bool,
}

/// Faults the tests inject into a real server through the environment; all off by default and
/// in production.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestHooks {
    /// Every model's first engine call panics (`TESSERA_TEST_PANIC_FIRST_CALL=1`).
    pub panic_first_call: bool,
    /// Every load sleeps this long first (`TESSERA_TEST_LOAD_DELAY_MS`).
    pub load_delay: Duration,
}

impl TestHooks {
    /// Reads the hooks from `TESSERA_TEST_*` variables.
    pub fn from_env() -> TestHooks {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        TestHooks {
            panic_first_call: var("TESSERA_TEST_PANIC_FIRST_CALL").is_some_and(|v| v != "0"),
            load_delay: var("TESSERA_TEST_LOAD_DELAY_MS")
                .and_then(|v| v.parse().ok())
                .map(Duration::from_millis)
                .unwrap_or_default(),
        }
    }
}
