//! The LLM routes: `/v1/chat/completions`, `/v1/completions`, `/v1/tokenize`, `/v1/detokenize`.
//!
//! Every route makes one runtime call; the model's worker decodes, and the events it sends
//! become either one JSON answer or server-sent events, as OpenAI writes them.

pub(crate) mod chat;
pub(crate) mod completions;
pub(crate) mod tokenize;
mod wire;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use serde::Serialize;
use tessera_tasks::llm::{Event, FinishReason, Generation, TokenLogprob, Usage};
use utoipa::ToSchema;

use crate::ApiError;
use crate::metrics_layer::ModelLabel;

/// One server-sent event of a streamed answer, as OpenAPI describes `text/event-stream`.
#[derive(ToSchema)]
#[allow(dead_code)]
pub(crate) struct StreamEvent {
    /// A JSON chunk (`chat.completion.chunk` or `text_completion`), an error object, or `[DONE]`
    /// as the last event.
    data: String,
    /// The event's type, when the server names one.
    event: Option<String>,
    /// The event's id, when it has one.
    id: Option<String>,
    /// Milliseconds a client should wait before reconnecting.
    retry: Option<u64>,
}

/// Token counts, as OpenAI reports them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct UsageBody {
    /// Tokens of the prompt (after the chat template).
    prompt_tokens: usize,
    /// Tokens generated.
    completion_tokens: usize,
    /// The two together.
    total_tokens: usize,
    /// Details of the prompt's tokens.
    prompt_tokens_details: PromptTokensDetails,
}

/// How much of the prompt came from the prefix cache.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct PromptTokensDetails {
    /// Prompt tokens whose KV cache was reused from an earlier request.
    cached_tokens: usize,
}

impl From<Usage> for UsageBody {
    fn from(usage: Usage) -> Self {
        UsageBody {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.prompt_tokens + usage.completion_tokens,
            prompt_tokens_details: PromptTokensDetails {
                cached_tokens: usage.cached_tokens,
            },
        }
    }
}

/// A whole generation, collected.
pub(crate) struct Outcome {
    pub text: String,
    pub finish: FinishReason,
    pub usage: Usage,
    pub logprobs: Vec<TokenLogprob>,
}

/// Waits for the whole generation.
pub(crate) async fn collect(mut generation: Generation) -> Result<Outcome, ApiError> {
    let mut text = String::new();
    let mut logprobs = Vec::new();
    while let Some(event) = generation.events.recv().await {
        match event {
            Event::Text {
                text: piece,
                logprobs: more,
            } => {
                text.push_str(&piece);
                logprobs.extend(more);
            }
            Event::Done { finish, usage } => {
                return Ok(Outcome {
                    text,
                    finish,
                    usage,
                    logprobs,
                });
            }
            Event::Failed(message) => {
                return Err(ApiError::internal(format!("generation failed: {message}")));
            }
        }
    }
    Err(ApiError::internal(
        "the model's worker stopped before the generation ended",
    ))
}

/// An id for a response: a prefix, the time and a counter.
pub(crate) fn response_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{nanos:x}{count:04x}")
}

/// Seconds since the epoch.
pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The JSON of one SSE `data:` line.
pub(crate) fn data(value: &impl Serialize) -> SseEvent {
    SseEvent::default().data(serde_json::to_string(value).unwrap_or_else(|e| {
        format!("{{\"error\": {{\"message\": \"could not serialize a chunk: {e}\"}}}}")
    }))
}

/// An error inside a stream whose headers are already sent: OpenAI's error object as data.
pub(crate) fn stream_error(message: &str) -> SseEvent {
    data(&serde_json::json!({
        "error": {"message": message, "type": "server_error", "param": null, "code": "internal_error"}
    }))
}

/// The `data: [DONE]` line that ends every stream.
pub(crate) fn done() -> SseEvent {
    SseEvent::default().data("[DONE]")
}

/// A streamed answer, labelled with its model for the metrics.
pub(crate) fn sse_response<S>(model: String, events: S) -> Response
where
    S: Stream<Item = Result<SseEvent, std::convert::Infallible>> + Send + 'static,
{
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response();
    response.extensions_mut().insert(ModelLabel(model));
    response
}

/// A JSON answer, labelled with its model for the metrics.
pub(crate) fn json_response(model: String, body: &impl Serialize) -> Response {
    let mut response = axum::Json(body).into_response();
    response.extensions_mut().insert(ModelLabel(model));
    response
}
