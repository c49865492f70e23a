//! `POST /v1/tokenize` and `POST /v1/detokenize`: a model's tokenizer, raw or through its chat
//! template.

use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_tasks::llm::Generate;
use utoipa::ToSchema;

use super::json_response;
use super::wire::{parse_messages, parse_tools};
use crate::extract::ApiJson;
use crate::{ApiError, AppState};

/// Text to tokenize: `prompt` as is, or `messages` through the model's chat template.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"model": "smollm2-135m-instruct", "prompt": "Hello world"}))]
pub(crate) struct TokenizeRequest {
    /// An LLM: a catalog id or a loaded model.
    #[schema(example = "smollm2-135m-instruct")]
    model: String,
    /// Raw text.
    prompt: Option<String>,
    /// A conversation, rendered with the chat template first (as `/v1/chat/completions` does).
    #[schema(value_type = Option<Vec<Object>>)]
    messages: Option<Vec<Value>>,
    /// Tools, rendered into the template with `messages`.
    #[schema(value_type = Option<Vec<Object>>)]
    tools: Option<Vec<Value>>,
    /// With `prompt`: add the model's BOS token when it uses one (default true).
    add_special: Option<bool>,
    /// With `messages`: end with the template's assistant header (default true).
    add_generation_prompt: Option<bool>,
    /// Also return each token's text.
    #[serde(default)]
    with_pieces: bool,
}

/// The tokens.
#[derive(Serialize, ToSchema)]
struct TokenizeResponse {
    /// Token ids.
    tokens: Vec<i32>,
    /// How many.
    count: usize,
    /// The model's context: prompt and answer together must fit.
    max_model_len: u32,
    /// Each token's text, with `with_pieces`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pieces: Option<Vec<String>>,
}

/// Tokens to turn back into text.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"model": "smollm2-135m-instruct", "tokens": [19556, 905]}))]
pub(crate) struct DetokenizeRequest {
    /// An LLM: a catalog id or a loaded model.
    #[schema(example = "smollm2-135m-instruct")]
    model: String,
    /// Token ids of its vocabulary.
    tokens: Vec<i32>,
}

/// The text.
#[derive(Serialize, ToSchema)]
struct DetokenizeResponse {
    /// The tokens' text, special tokens included.
    prompt: String,
}

/// Tokenizes text, or a conversation through the chat template, with an LLM's tokenizer.
#[utoipa::path(
    post,
    path = "/v1/tokenize",
    operation_id = "tokenize",
    tag = "chat",
    request_body = TokenizeRequest,
    responses(
        (status = 200, description = "The token ids", body = TokenizeResponse),
        crate::openapi::ModelErrors,
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn tokenize(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<TokenizeRequest>,
) -> Result<Response, ApiError> {
    enum Source {
        Text(String, bool),
        Chat(
            Vec<tessera_tasks::chat::ChatMessage>,
            Vec<tessera_tasks::chat::ToolSpec>,
            bool,
        ),
    }
    let source = match (request.prompt, request.messages) {
        (Some(text), None) => Source::Text(text, request.add_special.unwrap_or(true)),
        (None, Some(messages)) => Source::Chat(
            parse_messages(&messages)?,
            parse_tools(request.tools.as_deref().unwrap_or_default())?,
            request.add_generation_prompt.unwrap_or(true),
        ),
        (Some(_), Some(_)) => {
            return Err(
                ApiError::bad_request("send `prompt` or `messages`, not both").param("prompt"),
            );
        }
        (None, None) => {
            return Err(ApiError::bad_request(
                "send `prompt` (raw text) or `messages` (a conversation)",
            )
            .param("prompt"));
        }
    };
    let with_pieces = request.with_pieces;
    let body = state
        .runtime
        .with_frontend::<Generate, _>(&request.model, move |frontend| {
            let tokens = match source {
                Source::Text(text, add_special) => frontend.tokenize(&text, add_special),
                Source::Chat(messages, tools, add_generation_prompt) => {
                    let text = frontend.render_chat(&messages, &tools, add_generation_prompt)?;
                    frontend.tokenize(&text, true)
                }
            };
            Ok(TokenizeResponse {
                count: tokens.len(),
                max_model_len: frontend.info().context,
                pieces: with_pieces
                    .then(|| tokens.iter().map(|&t| frontend.token_text(t)).collect()),
                tokens,
            })
        })
        .await?;
    Ok(json_response(request.model, &body))
}

/// Turns token ids back into text with an LLM's tokenizer.
#[utoipa::path(
    post,
    path = "/v1/detokenize",
    operation_id = "detokenize",
    tag = "chat",
    request_body = DetokenizeRequest,
    responses(
        (status = 200, description = "The text", body = DetokenizeResponse),
        crate::openapi::ModelErrors,
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn detokenize(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<DetokenizeRequest>,
) -> Result<Response, ApiError> {
    let tokens = request.tokens;
    let prompt = state
        .runtime
        .with_frontend::<Generate, _>(&request.model, move |frontend| frontend.detokenize(&tokens))
        .await?;
    Ok(json_response(request.model, &DetokenizeResponse { prompt }))
}
