//! `POST /v1/chat/completions`.

use axum::extract::State;
use axum::response::Response;
use axum::response::sse::Event as SseEvent;
use futures_util::StreamExt;
use futures_util::stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_tasks::chat::{ParsedCall, StreamPiece, ToolCallStream, parse_tool_calls};
use tessera_tasks::llm::{Event, FinishReason, Generate, GenerateRequest, Prompt, TokenLogprob};
use utoipa::ToSchema;

use super::wire::{
    SamplingFields, StreamOptions, parse_messages, parse_response_format, parse_tool_choice,
    parse_tools,
};
use super::{
    UsageBody, collect, data, done, json_response, now, response_id, sse_response, stream_error,
};
use crate::extract::ApiJson;
use crate::{ApiError, AppState};

/// OpenAI's chat completion request. Fields tessera does not know are ignored.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({
    "model": "smollm2-135m-instruct",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "max_tokens": 32
}))]
pub(crate) struct ChatRequest {
    /// A chat model: a catalog id (see `GET /v1/models`) or a loaded model.
    #[schema(example = "smollm2-135m-instruct")]
    model: String,
    /// The conversation: objects with `role` (system, developer, user, assistant, tool) and
    /// `content` (a string or an array of text parts); assistant messages may carry
    /// `tool_calls`, tool messages a `tool_call_id`.
    #[schema(value_type = Vec<Object>)]
    messages: Vec<Value>,
    #[serde(flatten)]
    sampling: SamplingFields,
    /// Most tokens to generate; default: what the context has room for.
    #[schema(minimum = 1)]
    max_tokens: Option<u32>,
    /// The newer name of `max_tokens`; wins when both are given.
    #[schema(minimum = 1)]
    max_completion_tokens: Option<u32>,
    /// Send the answer as server-sent events, a chunk per piece of text.
    #[serde(default)]
    stream: bool,
    /// Options of a streamed answer.
    stream_options: Option<StreamOptions>,
    /// Return each token's log-probability.
    #[serde(default)]
    logprobs: bool,
    /// With `logprobs`, also the 0 to 20 most likely tokens at each step.
    #[schema(minimum = 0, maximum = 20)]
    top_logprobs: Option<u32>,
    /// `{"type": "text"}`, `{"type": "json_object"}`, or `{"type": "json_schema", "json_schema":
    /// {"name", "schema"}}`: the output is forced by a grammar to be JSON that validates.
    #[schema(value_type = Option<Object>)]
    response_format: Option<Value>,
    /// Functions the model may call: `{"type": "function", "function": {"name", "description",
    /// "parameters"}}`.
    #[schema(value_type = Option<Vec<Object>>)]
    tools: Option<Vec<Value>>,
    /// `none`, `auto` (default with tools), `required`, or `{"type": "function", "function":
    /// {"name"}}`.
    #[schema(value_type = Option<Object>)]
    tool_choice: Option<Value>,
}

/// A chat completion.
#[derive(Serialize, ToSchema)]
pub(crate) struct ChatCompletion {
    /// A unique id.
    id: String,
    /// Always `chat.completion`.
    object: &'static str,
    /// Unix seconds.
    created: u64,
    /// The model as asked for.
    model: String,
    /// The one answer.
    choices: Vec<ChatChoice>,
    /// Token counts.
    usage: UsageBody,
}

/// One answer.
#[derive(Serialize, ToSchema)]
struct ChatChoice {
    /// Always 0.
    index: usize,
    /// The assistant's message.
    message: AssistantMessage,
    /// Log-probabilities, when asked for.
    logprobs: Option<ChatLogprobs>,
    /// `stop`, `length` or `tool_calls`.
    finish_reason: &'static str,
}

/// The assistant's message.
#[derive(Serialize, ToSchema)]
struct AssistantMessage {
    /// Always `assistant`.
    role: &'static str,
    /// The text, or null when the answer is only tool calls.
    content: Option<String>,
    /// The calls the model made.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallBody>,
}

/// A tool call, as OpenAI writes it.
#[derive(Serialize, ToSchema, Clone)]
struct ToolCallBody {
    /// In a stream: which call this delta belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<usize>,
    /// The call's id, to answer with a `tool` message.
    id: String,
    /// Always `function`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The function and its arguments.
    function: FunctionCall,
}

/// The function called.
#[derive(Serialize, ToSchema, Clone)]
struct FunctionCall {
    /// Its name.
    name: String,
    /// Its arguments, as JSON text.
    arguments: String,
}

/// Log-probabilities of the answer's tokens.
#[derive(Serialize, ToSchema)]
struct ChatLogprobs {
    /// One entry per token.
    content: Vec<LogprobEntry>,
}

/// One token's log-probability.
#[derive(Serialize, ToSchema)]
struct LogprobEntry {
    /// The token's text.
    token: String,
    /// Natural log of its probability.
    logprob: f32,
    /// Its UTF-8 bytes.
    bytes: Vec<u8>,
    /// The most likely tokens at this step.
    top_logprobs: Vec<TopLogprob>,
}

/// An alternative token.
#[derive(Serialize, ToSchema)]
struct TopLogprob {
    /// The token's text.
    token: String,
    /// Natural log of its probability.
    logprob: f32,
    /// Its UTF-8 bytes.
    bytes: Vec<u8>,
}

fn logprob_entries(logprobs: Vec<TokenLogprob>) -> Vec<LogprobEntry> {
    logprobs
        .into_iter()
        .map(|l| LogprobEntry {
            token: l.token,
            logprob: l.logprob,
            bytes: l.bytes,
            top_logprobs: l
                .top
                .into_iter()
                .map(|(token, bytes, logprob)| TopLogprob {
                    token,
                    logprob,
                    bytes,
                })
                .collect(),
        })
        .collect()
}

fn call_body(index: Option<usize>, call: ParsedCall) -> ToolCallBody {
    ToolCallBody {
        index,
        id: response_id("call"),
        kind: "function",
        function: FunctionCall {
            name: call.name,
            arguments: call.arguments,
        },
    }
}

/// Generates the assistant's next message, loading the model on first use.
#[utoipa::path(
    post,
    path = "/v1/chat/completions",
    operation_id = "createChatCompletion",
    tag = "chat",
    request_body = ChatRequest,
    responses(
        (status = 200, description = "The answer; with `stream: true`, server-sent events of `chat.completion.chunk` objects ending with `data: [DONE]`",
            content((ChatCompletion = "application/json"), (super::StreamEvent = "text/event-stream"))),
        crate::openapi::ModelErrors,
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn create(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ChatRequest>,
) -> Result<Response, ApiError> {
    let messages = parse_messages(&request.messages)?;
    let tools = parse_tools(request.tools.as_deref().unwrap_or_default())?;
    let tool_choice = parse_tool_choice(request.tool_choice.as_ref(), !tools.is_empty())?;
    let names: Vec<String> = tools.iter().map(|t| t.name.clone()).collect();
    let top = match (request.logprobs, request.top_logprobs) {
        (_, Some(n)) if n > 20 => {
            return Err(
                ApiError::bad_request(format!("`top_logprobs` is {n}; send 0 to 20"))
                    .param("top_logprobs"),
            );
        }
        (false, Some(_)) => {
            return Err(
                ApiError::bad_request("`top_logprobs` needs `logprobs: true`")
                    .param("top_logprobs"),
            );
        }
        (true, n) => Some(n.unwrap_or(0) as usize),
        (false, None) => None,
    };
    let generate = GenerateRequest {
        prompt: Some(Prompt::Chat {
            messages,
            tools,
            tool_choice,
        }),
        sampling: request.sampling.sampling()?,
        max_tokens: request.max_completion_tokens.or(request.max_tokens),
        stop: request.sampling.stops()?,
        logprobs: top,
        response_format: parse_response_format(request.response_format.as_ref())?,
    };
    let generation = state
        .runtime
        .run::<Generate>(&request.model, generate)
        .await?;
    let id = response_id("chatcmpl");
    let created = now();
    if request.stream {
        let include_usage = request.stream_options.is_some_and(|o| o.include_usage);
        return Ok(stream(
            id,
            created,
            request.model,
            generation,
            include_usage,
            request.logprobs,
        ));
    }
    let tool_format = generation.tool_format;
    let outcome = collect(generation).await?;
    let (content, calls) = match tool_format {
        Some(format) => {
            let parsed = parse_tool_calls(format, &outcome.text);
            // A "call" of a function nobody offered is text that looks like one.
            if parsed.tool_calls.iter().all(|c| names.contains(&c.name)) {
                (parsed.content, parsed.tool_calls)
            } else {
                (Some(outcome.text), Vec::new())
            }
        }
        None => (Some(outcome.text), Vec::new()),
    };
    let finish = if calls.is_empty() {
        outcome.finish
    } else {
        FinishReason::ToolCalls
    };
    let body = ChatCompletion {
        id,
        object: "chat.completion",
        created,
        model: request.model.clone(),
        choices: vec![ChatChoice {
            index: 0,
            message: AssistantMessage {
                role: "assistant",
                content: if calls.is_empty() {
                    Some(content.unwrap_or_default())
                } else {
                    content
                },
                tool_calls: calls.into_iter().map(|c| call_body(None, c)).collect(),
            },
            logprobs: request.logprobs.then(|| ChatLogprobs {
                content: logprob_entries(outcome.logprobs),
            }),
            finish_reason: finish.as_str(),
        }],
        usage: outcome.usage.into(),
    };
    Ok(json_response(request.model, &body))
}

/// What a streamed answer carries between chunks.
struct Streaming {
    id: String,
    created: u64,
    model: String,
    generation: tessera_tasks::llm::Generation,
    tools: Option<ToolCallStream>,
    calls: usize,
    include_usage: bool,
    logprobs: bool,
    ended: bool,
}

impl Streaming {
    fn chunk(
        &self,
        delta: Value,
        logprobs: Option<Vec<TokenLogprob>>,
        finish: Option<&str>,
    ) -> SseEvent {
        data(&serde_json::json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "delta": delta,
                "logprobs": logprobs.filter(|_| self.logprobs).map(|l| serde_json::json!({"content": logprob_entries(l)})),
                "finish_reason": finish,
            }],
        }))
    }

    fn pieces(&mut self, pieces: Vec<StreamPiece>, logprobs: Vec<TokenLogprob>) -> Vec<SseEvent> {
        let mut events = Vec::new();
        let mut logprobs = Some(logprobs);
        for piece in pieces {
            match piece {
                StreamPiece::Content(text) if text.is_empty() => {}
                StreamPiece::Content(text) => {
                    events.push(self.chunk(
                        serde_json::json!({"content": text}),
                        logprobs.take(),
                        None,
                    ));
                }
                StreamPiece::Call(call) => {
                    let body = call_body(Some(self.calls), call);
                    self.calls += 1;
                    events.push(self.chunk(
                        serde_json::json!({"tool_calls": [body]}),
                        logprobs.take(),
                        None,
                    ));
                }
            }
        }
        if let Some(rest) = logprobs.filter(|l| !l.is_empty() && self.logprobs) {
            events.push(self.chunk(serde_json::json!({}), Some(rest), None));
        }
        events
    }

    /// The chunks for the next event of the generation; `None` once the stream has ended.
    async fn next(&mut self) -> Option<Vec<SseEvent>> {
        if self.ended {
            return None;
        }
        let event = self.generation.events.recv().await;
        Some(match event {
            Some(Event::Text { text, logprobs }) => {
                let pieces = match &mut self.tools {
                    Some(parser) => parser.push(&text),
                    None => vec![StreamPiece::Content(text)],
                };
                self.pieces(pieces, logprobs)
            }
            Some(Event::Done { finish, usage }) => {
                self.ended = true;
                let rest = self
                    .tools
                    .take()
                    .map(ToolCallStream::finish)
                    .unwrap_or_default();
                let mut events = self.pieces(rest, Vec::new());
                let finish = if self.calls > 0 {
                    FinishReason::ToolCalls
                } else {
                    finish
                };
                events.push(self.chunk(serde_json::json!({}), None, Some(finish.as_str())));
                if self.include_usage {
                    events.push(data(&serde_json::json!({
                        "id": self.id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "choices": [],
                        "usage": UsageBody::from(usage),
                    })));
                }
                events.push(done());
                events
            }
            Some(Event::Failed(message)) => {
                self.ended = true;
                tracing::error!(model = %self.model, %message, "generation failed mid-stream");
                vec![
                    stream_error(&format!("generation failed: {message}")),
                    done(),
                ]
            }
            None => {
                self.ended = true;
                vec![
                    stream_error("the model's worker stopped before the generation ended"),
                    done(),
                ]
            }
        })
    }
}

fn stream(
    id: String,
    created: u64,
    model: String,
    generation: tessera_tasks::llm::Generation,
    include_usage: bool,
    logprobs: bool,
) -> Response {
    let state = Streaming {
        id,
        created,
        model: model.clone(),
        tools: generation.tool_format.map(ToolCallStream::new),
        generation,
        calls: 0,
        include_usage,
        logprobs,
        ended: false,
    };
    let first = state.chunk(
        serde_json::json!({"role": "assistant", "content": ""}),
        None,
        None,
    );
    let rest = stream::unfold(state, |mut state| async move {
        state.next().await.map(|events| (events, state))
    })
    .flat_map(stream::iter);
    let events = stream::iter([first]).chain(rest).map(Ok);
    sse_response(model, events)
}
