//! A JSON extractor whose failures answer in OpenAI's error shape.

use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// `axum::Json`, but malformed bodies get a 400 (413 when too large, 415 when not sent as JSON)
/// with a message that says what is wrong; the statuses are chosen in [`crate::error`].
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(ApiError::from(rejection)),
        }
    }
}

/// What a JSON value is, for error messages ("`input` is a number; send a string").
pub(crate) fn kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
