//! The one place that turns failures into HTTP statuses and OpenAI error objects.
//!
//! Every status the server answers with an error is chosen here: by the constructors of
//! [`ApiError`] and by the `From` conversions of the runtime's, the hub's and axum's errors. A
//! 5xx other than 502, 503 and 504 is *concealed*: the client gets a generic message naming the
//! request id, and the real message is logged once, with that id, by the request-id middleware
//! ([`crate::request_id`]). 502, 503 and 504 keep their message: it tells the client what to do.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_hub::{ErrorCategory, HubError};
use tessera_runtime::{FailureKind, RuntimeError};
use utoipa::ToSchema;

/// An error answer: a status and OpenAI's `{"error": {...}}` body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    param: Option<&'static str>,
    code: Option<&'static str>,
}

/// OpenAI's error body: `{"error": {"message", "type", "param", "code"}}`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "error": {
        "message": "invalid API key: the key sent is not one this server accepts; this route needs an API key (--api-key) or an admin key (--admin-key)",
        "type": "invalid_request_error",
        "param": null,
        "code": "invalid_api_key"
    }
}))]
pub struct ErrorResponse {
    /// What went wrong.
    pub error: ErrorObject,
}

/// The error itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorObject {
    /// What went wrong and, where it can, what to do about it.
    pub message: String,
    /// `invalid_request_error` (4xx), `server_overloaded` (429, 503) or `server_error` (5xx).
    #[serde(rename = "type")]
    pub kind: String,
    /// The request field at fault, if one is.
    pub param: Option<String>,
    /// A machine-readable code: `invalid_api_key`, `insufficient_permissions`,
    /// `model_not_found`, `overloaded`, `upstream_error`, `timeout`, `internal_error`.
    pub code: Option<String>,
}

/// Carried in the extensions of a concealed error's response: the real message, for the
/// request-id middleware to log.
#[derive(Debug, Clone)]
pub(crate) struct ConcealedDetail(pub Arc<str>);

/// Whether a response with this status hides its message from the client: 5xx except 502, 503
/// and 504, whose messages say what to do (check the upstream, retry later, raise the limit).
pub(crate) fn is_concealed(status: StatusCode) -> bool {
    status.is_server_error()
        && !matches!(
            status,
            StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
        )
}

/// The body a concealed error is answered with.
pub(crate) fn concealed_message(request_id: &str) -> String {
    format!("internal server error (request id {request_id}); the details are in the server log")
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            param: None,
            code: None,
        }
    }

    /// 400: the request cannot be processed as sent.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such model or route.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 405: the route exists but not with this method (axum adds the `Allow` header).
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::METHOD_NOT_ALLOWED, message)
    }

    /// 401 with `WWW-Authenticate: Bearer`: no API key, or one this server does not accept.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, message).code("invalid_api_key")
    }

    /// 403: a valid key that does not open this route.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, message).code("insufficient_permissions")
    }

    /// 504: the request outlived `--request-timeout`. Not 408, which OpenAI clients retry
    /// automatically: the same request would time out again.
    pub fn timeout(limit: Duration) -> Self {
        ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "the request took longer than {} s and was stopped; raise --request-timeout or send less work per request",
                limit.as_secs_f64()
            ),
        )
        .code("timeout")
    }

    /// 500: a failure of the server itself. The client sees only a generic message.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message).code("internal_error")
    }

    /// The same error, naming the request field at fault.
    pub fn param(mut self, param: &'static str) -> Self {
        self.param = Some(param);
        self
    }

    /// The same error, its message saying which of a request's several inputs it is about.
    pub fn about_input(mut self, index: usize) -> Self {
        self.message = format!("input {index}: {}", self.message);
        self
    }

    fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// The message (for a concealed 5xx, the one that is logged, not the one the client sees).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

/// OpenAI's `type` for a status.
fn kind(status: StatusCode) -> &'static str {
    match status {
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => "server_overloaded",
        s if s.is_server_error() => "server_error",
        _ => "invalid_request_error",
    }
}

impl From<RuntimeError> for ApiError {
    fn from(error: RuntimeError) -> Self {
        let message = error.to_string();
        let overloaded = |message: String| {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message).code("overloaded")
        };
        match error {
            RuntimeError::UnknownModel { .. } => ApiError::not_found(message)
                .param("model")
                .code("model_not_found"),
            RuntimeError::WrongTask { .. } => ApiError::bad_request(message).param("model"),
            RuntimeError::InvalidInput(_) => ApiError::bad_request(message).param("input"),
            RuntimeError::InvalidParam { param, .. } => ApiError::bad_request(message).param(param),
            RuntimeError::Overloaded { .. }
            | RuntimeError::OverBudget { .. }
            | RuntimeError::Unavailable { .. } => overloaded(message),
            RuntimeError::Load { kind, .. } => match kind {
                // The model's own files are bad: the operator's to fix, not ours.
                FailureKind::BadModel => ApiError::bad_request(message).param("model"),
                FailureKind::Upstream => {
                    ApiError::new(StatusCode::BAD_GATEWAY, message).code("upstream_error")
                }
                FailureKind::Unavailable => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message),
                FailureKind::Internal => ApiError::internal(message),
            },
            RuntimeError::Inference { .. } | RuntimeError::Panicked { .. } => {
                ApiError::internal(message)
            }
        }
    }
}

impl From<HubError> for ApiError {
    fn from(error: HubError) -> Self {
        let message = error.to_string();
        match error.category() {
            ErrorCategory::NotFound => ApiError::not_found(message)
                .param("model")
                .code("model_not_found"),
            ErrorCategory::BadModel => ApiError::bad_request(message).param("model"),
            // The model's source failed or served bytes that do not match the catalog.
            ErrorCategory::Upstream => {
                ApiError::new(StatusCode::BAD_GATEWAY, message).code("upstream_error")
            }
            ErrorCategory::Unavailable => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message),
            _ => ApiError::internal(message),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(error: tokio::task::JoinError) -> Self {
        ApiError::internal(format!("worker task failed: {error}"))
    }
}

impl From<MultipartRejection> for ApiError {
    fn from(rejection: MultipartRejection) -> Self {
        ApiError::bad_request(format!(
            "send the form as `multipart/form-data` with a boundary ({})",
            rejection.body_text()
        ))
    }
}

impl From<MultipartError> for ApiError {
    fn from(error: MultipartError) -> Self {
        match error.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the upload is larger than this server accepts (see --upload-limit)",
            ),
            _ => ApiError::bad_request(format!(
                "the multipart form is malformed: {}",
                error.body_text()
            )),
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        let status = rejection.status();
        let message = match &rejection {
            JsonRejection::JsonDataError(e) => format!("invalid request: {}", e.body_text()),
            JsonRejection::JsonSyntaxError(e) => {
                format!("the body is not valid JSON: {}", e.body_text())
            }
            JsonRejection::MissingJsonContentType(_) => {
                "send the body as JSON with `Content-Type: application/json`".to_string()
            }
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
                "the request body is larger than this server accepts (see --body-limit)".to_string()
            }
            other => other.body_text(),
        };
        let status = match status {
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE => status,
            _ => StatusCode::BAD_REQUEST,
        };
        ApiError::new(status, message)
    }
}

fn body(status: StatusCode, message: String, param: Option<&str>, code: Option<&str>) -> Response {
    let body = ErrorResponse {
        error: ErrorObject {
            message,
            kind: kind(status).to_string(),
            param: param.map(str::to_string),
            code: code.map(str::to_string),
        },
    };
    let mut response = (status, axum::Json(body)).into_response();
    let headers = response.headers_mut();
    match status {
        StatusCode::SERVICE_UNAVAILABLE => {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        StatusCode::UNAUTHORIZED => {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
    response
}

/// The answer for a concealed 5xx: the status and a generic message naming the request id.
pub(crate) fn concealed_response(status: StatusCode, request_id: &str) -> Response {
    body(
        status,
        concealed_message(request_id),
        None,
        Some("internal_error"),
    )
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if is_concealed(self.status) {
            // The request-id middleware logs the detail once and rewrites the body with the id.
            let mut response = concealed_response(self.status, "unknown");
            response
                .extensions_mut()
                .insert(ConcealedDetail(self.message.into()));
            return response;
        }
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, message = %self.message, "request failed");
        } else {
            tracing::debug!(status = %self.status, message = %self.message, "request rejected");
        }
        body(self.status, self.message, self.param, self.code)
    }
}
