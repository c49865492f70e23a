//! `POST /v1/embeddings`, in OpenAI's request and response shapes.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tessera_tasks::embed::{EmbedInput, EmbedRequest, Embeddings};
use utoipa::ToSchema;

use crate::extract::{ApiJson, kind};
use crate::metrics_layer::ModelLabel;
use crate::{ApiError, AppState};

/// OpenAI's embeddings request, plus `truncate` (tessera's: cut over-long inputs instead of failing).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"model": "all-minilm-l6-v2-int8", "input": ["The cat sleeps.", "A kitten naps."]}))]
pub(crate) struct EmbeddingRequest {
    /// What to embed.
    #[schema(value_type = EmbeddingInput)]
    input: Value,
    /// A catalog id (see `GET /v1/models`) or a model the server has loaded.
    #[schema(example = "all-minilm-l6-v2-int8")]
    model: String,
    /// `float` (default): arrays of numbers; `base64`: little-endian f32 bytes in base64.
    #[serde(default)]
    encoding_format: EncodingFormat,
    /// Must equal the model's dimensions when given: tessera's models are not trained to be cut.
    #[schema(minimum = 1, example = 384)]
    dimensions: Option<usize>,
    /// Cut inputs longer than the model's limit instead of answering 400.
    #[serde(default)]
    truncate: bool,
}

/// Documents the shapes `input` accepts (parsing them is `parse_input`'s): a non-empty string, or
/// a non-empty array of non-empty strings, of token ids, or of non-empty token-id arrays.
struct EmbeddingInput;

impl utoipa::PartialSchema for EmbeddingInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
        let text = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
        };
        let token = || {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .minimum(Some(0))
                .maximum(Some(u32::MAX))
        };
        let tokens = || ArrayBuilder::new().items(token()).min_items(Some(1));
        OneOfBuilder::new()
            .description(Some(
                "What to embed: a string, an array of strings, an array of token ids, or an array of token-id arrays. Strings and arrays must not be empty; each input must fit the model's window unless `truncate` is set.",
            ))
            .item(text().description(Some("One text.")))
            .item(
                ArrayBuilder::new()
                    .items(text())
                    .min_items(Some(1))
                    .description(Some("Several texts, embedded in order.")),
            )
            .item(tokens().description(Some(
                "One input as token ids of the model's vocabulary; special tokens are added.",
            )))
            .item(
                ArrayBuilder::new()
                    .items(tokens())
                    .min_items(Some(1))
                    .description(Some("Several inputs as token ids.")),
            )
            .into()
    }
}

impl ToSchema for EmbeddingInput {}

/// How vectors are written in the response.
#[derive(Debug, Default, Clone, Copy, Deserialize, PartialEq, Eq, ToSchema)]
#[serde(rename_all = "lowercase")]
enum EncodingFormat {
    #[default]
    Float,
    Base64,
}

/// OpenAI's embeddings response.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.0123, -0.0456, 0.0789]}],
    "model": "all-minilm-l6-v2-int8",
    "usage": {"prompt_tokens": 5, "total_tokens": 5}
}))]
struct EmbeddingResponse {
    /// Always `list`.
    object: &'static str,
    /// One item per input, in input order.
    data: Vec<EmbeddingData>,
    /// The model as it was asked for.
    model: String,
    /// Tokens counted.
    usage: Usage,
}

/// One vector.
#[derive(Serialize, ToSchema)]
struct EmbeddingData {
    /// Always `embedding`.
    object: &'static str,
    /// The input's position in the request.
    index: usize,
    /// The vector.
    embedding: EmbeddingValue,
}

/// A vector as numbers (`encoding_format: float`) or base64 of little-endian f32 (`base64`).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum EmbeddingValue {
    Float(Vec<f32>),
    Base64(String),
}

/// Tokens counted, special tokens included.
#[derive(Serialize, ToSchema)]
struct Usage {
    /// Tokens in all inputs.
    prompt_tokens: usize,
    /// The same: embeddings have no completion.
    total_tokens: usize,
}

/// Embeds one or more inputs with an embedding model, loading it on first use.
#[utoipa::path(
    post,
    path = "/v1/embeddings",
    operation_id = "createEmbedding",
    tag = "embeddings",
    request_body = EmbeddingRequest,
    responses(
        (status = 200, description = "One vector per input, in input order", body = EmbeddingResponse),
        crate::openapi::ModelErrors,
    ),
    security((), ("bearer" = []))
)]
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
        .await?;
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
