//! tessera's runtime: which models are loaded, and when and where their work runs.
//!
//! [`Runtime`] serves every task the same way. A caller makes one call,
//! [`Runtime::run`]`::<F>(model, request)`, where `F` is a task's
//! [`Frontend`](tessera_tasks::Frontend), and gets the whole answer back; behind it:
//!
//! - **Lifecycle.** The name is looked up without side effects (a catalog id, or a model under an
//!   operator's `--model-dir`; the CLI also takes any path). A model loads on first use, and
//!   concurrent first requests share one load. A failed load enters a cool-down with exponential
//!   backoff, during which callers get the original cause at once. Idle models unload after
//!   [`RuntimeConfig::idle_unload`]; before a load, least-recently-used idle models are evicted
//!   until the new one fits the [`RuntimeConfig::memory_budget`]; a model in use or pinned is never
//!   evicted. Memory is given back to the system after an unload.
//! - **Admission.** Pre-processing (tokenizing) runs on the blocking pool under a concurrency
//!   limit that refuses at once when full; each model's queue is bounded; both refusals are
//!   [`RuntimeError::Overloaded`] (HTTP 503 with Retry-After).
//! - **Workers.** Each loaded model owns one OS thread fed by a bounded queue; the family's
//!   [`Batching`](tessera_tasks::Batching) decides whether jobs arriving together are merged.
//!   Work whose caller has gone is dropped before it runs; a panic inside an engine call answers
//!   that batch's jobs with [`RuntimeError::Panicked`] and the model keeps serving.
//!
//! The runtime knows tasks and engines but nothing of HTTP.
#![deny(missing_docs)]

mod config;
mod error;
mod manager;
mod memory;
mod worker;

pub use config::{ModelSettings, RuntimeConfig, TestHooks};
pub use error::{FailureKind, RuntimeError};
pub use manager::{LoadState, ModelStatus, Runtime, UnloadReason};
pub use memory::{physical_memory, resident_bytes};
pub use tessera_tasks::packing;
pub use worker::BatchConfig;
