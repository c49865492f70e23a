//! `POST /v1/completions`: text continuation, and fill-in-the-middle with `suffix`.

use axum::extract::State;
use axum::response::Response;
use futures_util::StreamExt;
use futures_util::stream;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tessera_tasks::llm::{Event, Generate, GenerateRequest, Generation, Prompt, TokenLogprob};
use utoipa::ToSchema;

use super::wire::{SamplingFields, StreamOptions, kind};
use super::{
    UsageBody, collect, data, done, json_response, now, response_id, sse_response, stream_error,
};
use crate::extract::ApiJson;
use crate::{ApiError, AppState};

/// OpenAI's (legacy) completion request.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"model": "qwen2.5-coder-0.5b-instruct", "prompt": "def add(a, b):\n    ", "suffix": "\n\nprint(add(1, 2))\n", "max_tokens": 32, "temperature": 0}))]
pub(crate) struct CompletionRequest {
    /// A model: a catalog id (see `GET /v1/models`) or a loaded model.
    #[schema(example = "smollm2-135m-instruct")]
    model: String,
    /// The text to continue (an array holding one string is accepted too).
    #[schema(value_type = String)]
    prompt: Value,
    /// The text after the hole: the model writes what goes between `prompt` and `suffix`
    /// (fill-in-the-middle; the model needs FIM tokens).
    suffix: Option<String>,
    #[serde(flatten)]
    sampling: SamplingFields,
    /// Most tokens to generate (default 16, as OpenAI).
    #[schema(minimum = 1)]
    max_tokens: Option<u32>,
    /// Send server-sent events, a chunk per piece of text.
    #[serde(default)]
    stream: bool,
    /// Options of a streamed answer.
    stream_options: Option<StreamOptions>,
    /// Return log-probabilities of each token and of the 0 to 5 most likely alternatives.
    #[schema(minimum = 0, maximum = 5)]
    logprobs: Option<u32>,
    /// Repeat the prompt in the answer; not supported (only false).
    #[serde(default)]
    echo: bool,
    /// Generate several and return the best; only 1 is supported.
    #[schema(minimum = 1, maximum = 1)]
    best_of: Option<u32>,
}

/// A completion.
#[derive(Serialize, ToSchema)]
pub(crate) struct Completion {
    /// A unique id.
    id: String,
    /// Always `text_completion`.
    object: &'static str,
    /// Unix seconds.
    created: u64,
    /// The model as asked for.
    model: String,
    /// The one answer.
    choices: Vec<CompletionChoice>,
    /// Token counts.
    usage: UsageBody,
}

/// One answer.
#[derive(Serialize, ToSchema)]
struct CompletionChoice {
    /// The generated text.
    text: String,
    /// Always 0.
    index: usize,
    /// Log-probabilities, when asked for.
    #[schema(value_type = Option<Object>)]
    logprobs: Option<Value>,
    /// `stop` or `length`.
    finish_reason: &'static str,
}

/// OpenAI's legacy logprobs object: parallel arrays.
fn legacy_logprobs(logprobs: &[TokenLogprob], offset: usize) -> Value {
    let mut position = offset;
    let mut offsets = Vec::new();
    for l in logprobs {
        offsets.push(position);
        position += l.token.len();
    }
    json!({
        "tokens": logprobs.iter().map(|l| &l.token).collect::<Vec<_>>(),
        "token_logprobs": logprobs.iter().map(|l| l.logprob).collect::<Vec<_>>(),
        "top_logprobs": logprobs.iter().map(|l| {
            l.top.iter().map(|(t, _, p)| (t.clone(), json!(p))).collect::<serde_json::Map<_, _>>()
        }).collect::<Vec<_>>(),
        "text_offset": offsets,
    })
}

fn parse_prompt(prompt: &Value) -> Result<String, ApiError> {
    let invalid = |message: String| ApiError::bad_request(message).param("prompt");
    match prompt {
        Value::String(text) => Ok(text.clone()),
        Value::Array(items) if items.len() == 1 => match &items[0] {
            Value::String(text) => Ok(text.clone()),
            other => Err(invalid(format!(
                "prompt[0] is {}; send a string",
                kind(other)
            ))),
        },
        Value::Array(items) => Err(invalid(format!(
            "`prompt` has {} entries; tessera completes one prompt per request",
            items.len()
        ))),
        other => Err(invalid(format!(
            "`prompt` is {}; send a string",
            kind(other)
        ))),
    }
}

/// Continues a prompt (or fills the middle between `prompt` and `suffix`), loading the model on
/// first use.
#[utoipa::path(
    post,
    path = "/v1/completions",
    operation_id = "createCompletion",
    tag = "chat",
    request_body = CompletionRequest,
    responses(
        (status = 200, description = "The continuation; with `stream: true`, server-sent events of `text_completion` chunks ending with `data: [DONE]`",
            content((Completion = "application/json"), (super::StreamEvent = "text/event-stream"))),
        crate::openapi::ModelErrors,
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CompletionRequest>,
) -> Result<Response, ApiError> {
    let prompt = parse_prompt(&request.prompt)?;
    if request.echo {
        return Err(ApiError::bad_request(
            "`echo` is not supported; send echo: false and prepend the prompt yourself",
        )
        .param("echo"));
    }
    if let Some(n) = request.best_of.filter(|&n| n != 1) {
        return Err(
            ApiError::bad_request(format!("`best_of` is {n}; only 1 is supported"))
                .param("best_of"),
        );
    }
    if let Some(n) = request.logprobs.filter(|&n| n > 5) {
        return Err(
            ApiError::bad_request(format!("`logprobs` is {n}; send 0 to 5")).param("logprobs"),
        );
    }
    let generate = GenerateRequest {
        prompt: Some(Prompt::Text {
            prompt,
            suffix: request.suffix.clone(),
        }),
        sampling: request.sampling.sampling()?,
        max_tokens: Some(request.max_tokens.unwrap_or(16)),
        stop: request.sampling.stops()?,
        logprobs: request.logprobs.map(|n| n as usize),
        response_format: Default::default(),
    };
    let generation = state
        .runtime
        .run::<Generate>(&request.model, generate)
        .await?;
    let id = response_id("cmpl");
    let created = now();
    if request.stream {
        let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
        return Ok(stream(
            id,
            created,
            request.model,
            generation,
            include_usage,
            request.logprobs.is_some(),
        ));
    }
    let outcome = collect(generation).await?;
    let body = Completion {
        id,
        object: "text_completion",
        created,
        model: request.model.clone(),
        choices: vec![CompletionChoice {
            logprobs: request
                .logprobs
                .map(|_| legacy_logprobs(&outcome.logprobs, 0)),
            text: outcome.text,
            index: 0,
            finish_reason: outcome.finish.as_str(),
        }],
        usage: outcome.usage.into(),
    };
    Ok(json_response(request.model, &body))
}

fn stream(
    id: String,
    created: u64,
    model: String,
    generation: Generation,
    include_usage: bool,
    logprobs: bool,
) -> Response {
    let label = model.clone();
    let chunk = move |text: &str, logprobs: Option<Value>, finish: Option<&str>| {
        json!({
            "id": id, "object": "text_completion", "created": created, "model": model,
            "choices": [{"text": text, "index": 0, "logprobs": logprobs, "finish_reason": finish}],
        })
    };
    let state = (generation, false, 0usize);
    let events = stream::unfold(state, move |(mut generation, ended, offset)| {
        let chunk = chunk.clone();
        async move {
            if ended {
                return None;
            }
            let events = match generation.events.recv().await {
                Some(Event::Text { text, logprobs: l }) => {
                    let lp = logprobs.then(|| legacy_logprobs(&l, offset));
                    let next = offset + text.len();
                    return Some((
                        vec![data(&chunk(&text, lp, None))],
                        (generation, false, next),
                    ));
                }
                Some(Event::Done { finish, usage }) => {
                    let mut events = vec![data(&chunk("", None, Some(finish.as_str())))];
                    if include_usage {
                        let mut last = chunk("", None, None);
                        last["choices"] = json!([]);
                        last["usage"] = json!(UsageBody::from(usage));
                        events.push(data(&last));
                    }
                    events.push(done());
                    events
                }
                Some(Event::Failed(message)) => {
                    vec![
                        stream_error(&format!("generation failed: {message}")),
                        done(),
                    ]
                }
                None => vec![
                    stream_error("the model's worker stopped before the generation ended"),
                    done(),
                ],
            };
            Some((events, (generation, true, offset)))
        }
    })
    .flat_map(stream::iter)
    .map(Ok);
    sse_response(label, events)
}
