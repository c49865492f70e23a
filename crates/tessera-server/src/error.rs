//! The one place that turns failures into HTTP statuses and OpenAI error objects.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_runtime::{FailureKind, RuntimeError};

/// An error answer: a status and OpenAI's `{"error": {...}}` body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    param: Option<&'static str>,
    code: Option<&'static str>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    param: Option<&'static str>,
    code: Option<&'static str>,
}

impl ApiError {
    /// 400: the request cannot be processed as sent.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            param: None,
            code: None,
        }
    }

    /// 404: no such model or route.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
            param: None,
            code: None,
        }
    }

    /// The same error, naming the request field at fault.
    pub fn param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    /// The message the client sees.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn kind(&self) -> &'static str {
        match self.status {
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => "server_overloaded",
            s if s.is_server_error() => "server_error",
            _ => "invalid_request_error",
        }
    }

    pub(crate) fn with_status(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            param: None,
            code: None,
        }
    }
}

impl From<RuntimeError> for ApiError {
    fn from(error: RuntimeError) -> Self {
        let message = error.to_string();
        let overloaded = |message: String| ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message,
            param: None,
            code: Some("overloaded"),
        };
        match error {
            RuntimeError::UnknownModel { .. } => ApiError {
                status: StatusCode::NOT_FOUND,
                message,
                param: Some("model"),
                code: Some("model_not_found"),
            },
            RuntimeError::WrongTask { .. } => ApiError::bad_request(message).param("model"),
            RuntimeError::InvalidInput(_) => ApiError::bad_request(message).param("input"),
            RuntimeError::Overloaded { .. }
            | RuntimeError::OverBudget { .. }
            | RuntimeError::Unavailable { .. } => overloaded(message),
            RuntimeError::Load { kind, .. } => match kind {
                FailureKind::BadModel => ApiError::bad_request(message).param("model"),
                FailureKind::Upstream => ApiError::with_status(StatusCode::BAD_GATEWAY, message),
                FailureKind::Unavailable => {
                    ApiError::with_status(StatusCode::SERVICE_UNAVAILABLE, message)
                }
                FailureKind::Internal => {
                    ApiError::with_status(StatusCode::INTERNAL_SERVER_ERROR, message)
                }
            },
            RuntimeError::Inference { .. } | RuntimeError::Panicked { .. } => {
                ApiError::with_status(StatusCode::INTERNAL_SERVER_ERROR, message)
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, message = %self.message, "request failed");
        } else {
            tracing::debug!(status = %self.status, message = %self.message, "request rejected");
        }
        let body = Body {
            error: Detail {
                message: &self.message,
                kind: self.kind(),
                param: self.param,
                code: self.code,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}
