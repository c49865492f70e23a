//! tessera's real-time programs, built on one runtime that holds every model: no HTTP between
//! stages, every stage streaming into the next, one memory budget.
//!
//! - [`session`]: the voice loop. Audio frames in; Silero VAD finds each turn
//!   ([`TurnDetection`], OpenAI's `server_vad` semantics) while partial transcripts are made;
//!   at the end of speech Whisper gives the final text, the LLM answers with the conversation's
//!   history (its system prompt stays in the KV cache between turns), its text is cut into
//!   clauses ([`text::clauses`]) and each clause is spoken as soon as it is complete; the user
//!   speaking during the reply cancels it (barge-in) and the conversation keeps only what was
//!   heard. Per-turn stage times ([`TurnLatency`]) go to metrics and to the caller.
//! - [`speak`]: the speak pipeline. Claude Code's `stream-json` events in
//!   ([`text::stream_json`]); assistant text cleaned for speech ([`text::clean`]), optionally
//!   translated, and spoken clause by clause while later text still arrives.
#![deny(missing_docs)]

pub mod config;
pub mod latency;
mod reply;
pub mod session;
pub mod speak;
pub mod text;
mod turn;

pub use config::{TurnDetection, VoiceModels, VoiceSettings};
pub use latency::TurnLatency;
pub use session::{Command, ItemId, ResponseId, ResponseStatus, VoiceEvent, VoiceSession};
pub use turn::SAMPLE_RATE;

use tessera_runtime::RuntimeError;

/// What can stop a session or a pipeline from starting.
#[derive(Debug, thiserror::Error)]
pub enum VoiceError {
    /// A model could not be found, fetched or loaded.
    #[error(transparent)]
    Runtime(RuntimeError),
    /// A model failed outside the runtime (the session's own VAD), or its warm-up failed.
    #[error("{0}")]
    Model(String),
    /// The models do not fit the memory budget.
    #[error("{0}")]
    Budget(String),
    /// A setting is out of range.
    #[error("{0}")]
    Settings(String),
}
