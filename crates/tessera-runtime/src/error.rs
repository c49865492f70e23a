//! What can go wrong between a request and its answer, sorted so the server can pick a status.

use std::time::Duration;

use tessera_core::Task;
use tessera_hub::{ErrorCategory, HubError};
use tessera_tasks::TaskError;

/// Whose fault a failed load is, which decides the status a caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The model's own files are bad or incomplete, or no family runs them (400).
    BadModel,
    /// A registry or source answered wrongly (502).
    Upstream,
    /// The network, the disk or the engine's library is not available right now (503).
    Unavailable,
    /// A fault of tessera's own (500).
    Internal,
}

/// Everything that can go wrong between a request and its answer. Cheap to clone, so the cause of
/// a failed load can be handed to every caller during its cool-down.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RuntimeError {
    /// The name is not a model this runtime may serve.
    #[error("{message}")]
    UnknownModel {
        /// What the caller sees; it reveals nothing about the file system.
        message: String,
    },
    /// The model exists but does a different kind of work.
    #[error("model `{model}` does `{actual}`; this endpoint needs a model that does `{expected}`")]
    WrongTask {
        /// The model asked for.
        model: String,
        /// What it does.
        actual: Task,
        /// What the caller needs.
        expected: Task,
    },
    /// The caller's input cannot be processed.
    #[error("{0}")]
    InvalidInput(String),
    /// A request field other than the input is wrong for this model.
    #[error("{message}")]
    InvalidParam {
        /// The request field at fault.
        param: &'static str,
        /// What is wrong.
        message: String,
    },
    /// A bounded stage is full; try again shortly.
    #[error("{message}")]
    Overloaded {
        /// Which stage refused: `preprocessing`, `queue_full`.
        reason: &'static str,
        /// What the caller sees.
        message: String,
    },
    /// The model cannot fit in the memory budget even after evicting every idle model.
    #[error("{message}")]
    OverBudget {
        /// The model.
        model: String,
        /// What needs how much, the budget, and what holds it.
        message: String,
    },
    /// The model failed to load (now, or recently: it is cooling down).
    #[error("model `{model}` could not be loaded: {message}{}", retry_note(*retry_in))]
    Load {
        /// The model.
        model: String,
        /// Why.
        message: String,
        /// Whose fault it is.
        kind: FailureKind,
        /// How long until the next load attempt, when cooling down.
        retry_in: Option<Duration>,
    },
    /// The engine failed on this job.
    #[error("model `{model}` failed: {message}")]
    Inference {
        /// The model.
        model: String,
        /// What the engine said.
        message: String,
    },
    /// The engine panicked while running this job's batch; the model keeps serving.
    #[error("model `{model}` crashed while running this request: {message}")]
    Panicked {
        /// The model.
        model: String,
        /// The panic message.
        message: String,
    },
    /// The model's worker stopped (it was unloaded while the job waited).
    #[error("model `{model}` was unloaded while this request waited; retry")]
    Unavailable {
        /// The model.
        model: String,
    },
}

fn retry_note(retry_in: Option<Duration>) -> String {
    match retry_in {
        Some(wait) => format!(" (next attempt in {:.1} s)", wait.as_secs_f64()),
        None => String::new(),
    }
}

impl RuntimeError {
    /// A failure from the hub while looking a name up or fetching a model's files.
    pub(crate) fn from_hub(model: &str, error: &HubError) -> RuntimeError {
        let kind = match error.category() {
            ErrorCategory::NotFound => {
                return RuntimeError::UnknownModel {
                    message: error.to_string(),
                };
            }
            ErrorCategory::BadModel => FailureKind::BadModel,
            ErrorCategory::Upstream => FailureKind::Upstream,
            ErrorCategory::Unavailable => FailureKind::Unavailable,
            _ => FailureKind::Internal,
        };
        RuntimeError::Load {
            model: model.to_string(),
            message: error.to_string(),
            kind,
            retry_in: None,
        }
    }

    /// A failure from a task while loading a model.
    pub(crate) fn from_load(model: &str, error: TaskError) -> RuntimeError {
        let kind = match &error {
            TaskError::Files(hub) => return RuntimeError::from_hub(model, hub),
            TaskError::ModelFile { .. }
            | TaskError::Unsupported(_)
            | TaskError::InvalidInput(_)
            | TaskError::InvalidParam { .. } => FailureKind::BadModel,
            TaskError::Engine(tessera_engines::EngineError::Load { .. }) => FailureKind::BadModel,
            TaskError::Engine(tessera_engines::EngineError::RuntimeLibrary { .. }) => {
                FailureKind::Unavailable
            }
            TaskError::Engine(_) | TaskError::Inference(_) | TaskError::Internal(_) => {
                FailureKind::Internal
            }
        };
        RuntimeError::Load {
            model: model.to_string(),
            message: error.to_string(),
            kind,
            retry_in: None,
        }
    }

    /// A failure from a task while serving a request.
    pub(crate) fn from_task(model: &str, error: TaskError) -> RuntimeError {
        match error {
            TaskError::InvalidInput(message) => RuntimeError::InvalidInput(message),
            TaskError::InvalidParam { param, message } => {
                RuntimeError::InvalidParam { param, message }
            }
            other => RuntimeError::Inference {
                model: model.to_string(),
                message: other.to_string(),
            },
        }
    }

    /// The refusal of a full stage, counted by reason.
    pub(crate) fn overloaded(reason: &'static str, message: String) -> RuntimeError {
        metrics::counter!("tessera_requests_refused_total", "reason" => reason).increment(1);
        RuntimeError::Overloaded { reason, message }
    }
}
