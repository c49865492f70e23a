//! `POST /v1/embeddings`, in OpenAI's request and response shapes.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_runtime::RuntimeError;
use tessera_tasks::embed::{EmbedInput, EmbedRequest, Embeddings};

use crate::extract::ApiJson;
use crate::metrics_layer::ModelLabel;
use crate::{ApiError, AppState};

/// OpenAI's embeddings request, plus `truncate` (tessera's: cut over-long inputs instead of failing).
#[derive(Debug, Deserialize)]
pub(crate) struct EmbeddingRequest {
    input: Value,
    model: String,
    #[serde(default)]
    encoding_format: EncodingFormat,
    dimensions: Option<usize>,
    #[serde(default)]
    truncate: bool,
}

#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum EncodingFormat {
    #[default]
    Float,
    Base64,
}

#[derive(Serialize)]
struct EmbeddingResponse {
    object: &'static str,
    data: Vec<EmbeddingData>,
    model: String,
    usage: Usage,
}

#[derive(Serialize)]
struct EmbeddingData {
    object: &'static str,
    index: usize,
    embedding: EmbeddingValue,
}

#[derive(Serialize)]
#[serde(untagged)]
enum EmbeddingValue {
    Float(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: usize,
    total_tokens: usize,
}

pub(crate) async fn create(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<EmbeddingRequest>,
) -> Result<Response, ApiError> {
    let input = parse_input(request.input)?;
    // One call: tokenizing, batching, inference and pooling all happen behind it, off the
    // async threads.
    let embedded = state
        .runtime
        .run::<Embeddings>(
            &request.model,
            EmbedRequest {
                input,
                truncate: request.truncate,
                dimensions: request.dimensions,
            },
        )
        .await
        .map_err(|error| match error {
            RuntimeError::InvalidInput(message) if message.contains("`dimensions`") => {
                ApiError::bad_request(message).param("dimensions")
            }
            other => other.into(),
        })?;
    let data = embedded
        .vectors
        .into_iter()
        .enumerate()
        .map(|(index, vector)| EmbeddingData {
            object: "embedding",
            index,
            embedding: match request.encoding_format {
                EncodingFormat::Float => EmbeddingValue::Float(vector),
                EncodingFormat::Base64 => EmbeddingValue::Base64(encode_base64(&vector)),
            },
        })
        .collect();
    let body = EmbeddingResponse {
        object: "list",
        data,
        model: request.model.clone(),
        usage: Usage {
            prompt_tokens: embedded.tokens,
            total_tokens: embedded.tokens,
        },
    };
    let mut response = axum::Json(body).into_response();
    response.extensions_mut().insert(ModelLabel(request.model));
    Ok(response)
}

/// Little-endian f32 bytes in standard base64, as OpenAI sends them.
fn encode_base64(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Accepts a string, an array of strings, an array of token ids, or an array of such arrays.
fn parse_input(input: Value) -> Result<EmbedInput, ApiError> {
    let invalid = |message: String| ApiError::bad_request(message).param("input");
    let parsed = match input {
        Value::String(text) => EmbedInput::Texts(vec![text]),
        Value::Array(items) if items.is_empty() => return Err(invalid("`input` is an empty array; send at least one string".into())),
        Value::Array(items) => match &items[0] {
            Value::String(_) => EmbedInput::Texts(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Value::String(text) => Ok(text),
                        other => Err(invalid(format!("input[{i}] is {}, but input[0] is a string; send all strings or all token arrays", kind(&other)))),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Value::Number(_) => EmbedInput::Tokens(vec![token_ids(&items, "input")?]),
            Value::Array(_) => EmbedInput::Tokens(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| match item {
                        Value::Array(ids) => token_ids(ids, &format!("input[{i}]")),
                        other => Err(invalid(format!("input[{i}] is {}, expected an array of token ids", kind(other)))),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            other => return Err(invalid(format!("input[0] is {}; send strings or token ids", kind(other)))),
        },
        other => return Err(invalid(format!("`input` is {}; send a string, an array of strings or token ids", kind(&other)))),
    };
    if parsed.is_empty() {
        return Err(invalid("`input` is empty".into()));
    }
    Ok(parsed)
}

fn token_ids(items: &[Value], at: &str) -> Result<Vec<u32>, ApiError> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            item.as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "{at}[{i}] is {item}, not a token id (a non-negative integer)"
                    ))
                    .param("input")
                })
        })
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_openai_input_shape_parses() {
        assert_eq!(
            parse_input(json!("hi")).unwrap(),
            EmbedInput::Texts(vec!["hi".into()])
        );
        assert_eq!(
            parse_input(json!(["a", "b"])).unwrap(),
            EmbedInput::Texts(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            parse_input(json!([1, 2])).unwrap(),
            EmbedInput::Tokens(vec![vec![1, 2]])
        );
        assert_eq!(
            parse_input(json!([[1], [2, 3]])).unwrap(),
            EmbedInput::Tokens(vec![vec![1], vec![2, 3]])
        );
    }

    #[test]
    fn malformed_input_says_what_is_wrong() {
        for (input, expected) in [
            (json!([]), "empty array"),
            (json!(["a", 1]), "input[1] is a number"),
            (json!([1, -2]), "input[1] is -2"),
            (json!({"text": "a"}), "is an object"),
            (json!(null), "is null"),
        ] {
            let error = parse_input(input).unwrap_err();
            assert_eq!(error.status(), 400);
            assert!(
                error.message().contains(expected),
                "{} lacks {expected}",
                error.message()
            );
        }
    }

    #[test]
    fn base64_is_little_endian_f32() {
        assert_eq!(encode_base64(&[1.0]), "AACAPw==");
    }
}
