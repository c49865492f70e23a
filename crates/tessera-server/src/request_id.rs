//! Request ids: every response carries `x-request-id`, every log line of a request carries the
//! id in its span, and a concealed 5xx (see [`crate::error`]) is logged here, once, with the id.
//!
//! A well-formed incoming `x-request-id` (1 to 64 characters of `[A-Za-z0-9_-]`, as a proxy in
//! front would send) is kept, so one id follows a request through both logs; anything else is
//! replaced by `req_` and 16 hex digits, unique within the process.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use crate::error::{ConcealedDetail, concealed_response, is_concealed};

/// The header that carries the id, in requests and responses.
pub(crate) const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest incoming id that is kept.
const MAX_LEN: usize = 64;

/// Gives the request an id, runs it inside a span that names the id, conceals a 5xx body and
/// sets `x-request-id` on the response.
pub(crate) async fn assign(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|value| is_well_formed(value))
        .map(str::to_string)
        .unwrap_or_else(generate);
    let span = tracing::info_span!(
        "request",
        id = %id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    async move {
        let mut response = next.run(request).await;
        let status = response.status();
        if is_concealed(status) {
            match response.extensions().get::<ConcealedDetail>() {
                Some(ConcealedDetail(detail)) => {
                    tracing::error!(status = %status, detail = %detail, "request failed");
                }
                None => tracing::error!(status = %status, "request failed without an error detail"),
            }
            response = concealed_response(status, &id);
        }
        if let Ok(value) = HeaderValue::from_str(&id) {
            response.headers_mut().insert(HEADER, value);
        }
        response
    }
    .instrument(span)
    .await
}

/// 1 to 64 characters of `[A-Za-z0-9_-]`.
fn is_well_formed(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `req_` and 16 hex digits: a counter, offset by a per-process random seed and scrambled by a
/// bijective mix, so ids never repeat within a process and are not guessable across processes.
fn generate() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: OnceLock<u64> = OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        // RandomState is keyed from the OS's randomness; time and pid add to it.
        let mut hasher = RandomState::new().build_hasher();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        hasher.write_u128(nanos);
        hasher.write_u32(std::process::id());
        hasher.finish()
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // An odd multiplier and an offset are bijective on u64, and so is the splitmix64 finalizer.
    format!(
        "req_{:016x}",
        mix(seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15)))
    )
}

/// The splitmix64 finalizer: a bijection on u64 that spreads every input bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ApiError;
    use crate::error::concealed_message;
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt as _;

    fn app() -> Router {
        Router::new()
            .route(
                "/boom",
                get(|| async {
                    ApiError::internal("engine crashed reading /secret/path/model.onnx")
                }),
            )
            .route(
                "/busy",
                get(|| async {
                    ApiError::from(tessera_runtime::RuntimeError::Overloaded {
                        reason: "queue_full",
                        message: "model `m` is overloaded: its queue of 4 requests is full".into(),
                    })
                }),
            )
            .route("/ok", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn(assign))
    }

    async fn call(path: &str, id: Option<&str>) -> (StatusCode, String, serde_json::Value) {
        let mut request = Request::get(path);
        if let Some(id) = id {
            request = request.header(
                "x-request-id",
                HeaderValue::from_bytes(id.as_bytes()).unwrap(),
            );
        }
        let response = app()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            id,
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
        )
    }

    #[tokio::test]
    async fn a_500_hides_its_detail_behind_the_request_id() {
        let (status, id, body) = call("/boom", None).await;
        assert_eq!(status, 500);
        assert!(
            id.starts_with("req_") && id.len() == 20,
            "generated id: {id}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert_eq!(message, concealed_message(&id));
        assert!(!message.contains("secret"), "{message}");
        assert_eq!(body["error"]["type"], "server_error");
        assert_eq!(body["error"]["code"], "internal_error");
        // The caller's own id is kept and named in the message.
        let (_, id, body) = call("/boom", Some("trace-42_a")).await;
        assert_eq!(id, "trace-42_a");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("trace-42_a")
        );
    }

    #[tokio::test]
    async fn a_503_keeps_its_message() {
        let (status, _, body) = call("/busy", None).await;
        assert_eq!(status, 503);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("overloaded")
        );
    }

    #[tokio::test]
    async fn malformed_incoming_ids_are_replaced() {
        for bad in ["has space", "semi;colon", &"x".repeat(65), "ünï"] {
            let (_, id, _) = call("/ok", Some(bad)).await;
            assert!(id.starts_with("req_"), "{bad:?} gave {id}");
        }
        let (_, id, _) = call("/ok", Some(&"x".repeat(64))).await;
        assert_eq!(id, "x".repeat(64));
    }

    #[test]
    fn generated_ids_are_distinct_and_well_formed() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| generate()).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| is_well_formed(id) && id.len() == 20));
    }
}
