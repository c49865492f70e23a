//! The OpenAPI document's frame: title, tags, the bearer scheme, the error responses every route
//! shares, and the `x-request-id` header on every response.
//!
//! The operations themselves are not listed here: each handler carries its `#[utoipa::path]`
//! and is registered with `utoipa_axum::routes!`, so a route and its documentation are added in
//! the same line and cannot drift apart.

// The response types below only document; nothing constructs them.
#![allow(dead_code)]

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Object, RefOr, Response, Type};
use utoipa::{Modify, OpenApi, ToResponse};

use crate::error::ErrorResponse;

/// The frame the routers' operations are merged into.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "tessera",
        description = "Local models behind an OpenAI-compatible API. When the server was started with API keys, send one as `Authorization: Bearer KEY`: user keys (--api-key) open the OpenAI routes, admin keys (--admin-key) open everything, the metrics key (--metrics-key) opens /metrics. Every response carries `x-request-id`."
    ),
    components(
        schemas(ErrorResponse),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            PayloadTooLarge,
            UnsupportedMediaType,
            InternalError,
            BadGateway,
            Overloaded,
            Timeout
        )
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "embeddings", description = "OpenAI's embeddings API"),
        (name = "audio", description = "Speech: speech to text, translation, text to speech, voice activity detection"),
        (name = "vision", description = "Images: object detection, human pose, text recognition (OCR), classification, foreground segmentation (background removal)"),
        (name = "models", description = "The catalog, what is cached and what is loaded"),
        (name = "admin", description = "Routes that change the server; they need an admin key whenever keys are configured"),
        (name = "server", description = "Health and metrics")
    )
)]
pub(crate) struct ApiDoc;

/// The error answers of every route that runs a model: `responses((status = 200, ...),
/// ModelErrors)` in a handler's `#[utoipa::path]`.
pub(crate) struct ModelErrors;

impl utoipa::IntoResponses for ModelErrors {
    fn responses() -> std::collections::BTreeMap<String, RefOr<Response>> {
        [
            ("400", "BadRequest"),
            ("401", "Unauthorized"),
            ("403", "Forbidden"),
            ("404", "NotFound"),
            ("413", "PayloadTooLarge"),
            ("415", "UnsupportedMediaType"),
            ("500", "InternalError"),
            ("502", "BadGateway"),
            ("503", "Overloaded"),
            ("504", "Timeout"),
        ]
        .into_iter()
        .map(|(status, name)| {
            (
                status.to_string(),
                RefOr::Ref(utoipa::openapi::Ref::from_response_name(name)),
            )
        })
        .collect()
    }
}

/// The name operations use to refer to the bearer scheme.
pub(crate) const BEARER: &str = "bearer";

/// Declares `Authorization: Bearer KEY`.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key given to the server with --api-key, --api-key-file, --admin-key or --metrics-key. Needed only when the server was started with keys.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Adds `x-request-id` to every response, since the request-id middleware sets it on all.
/// Applied to the merged document, once every area's operations are in it.
pub(crate) struct RequestIdHeader;

impl Modify for RequestIdHeader {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let add = |response: &mut Response| {
            response.headers.insert(
                crate::request_id::HEADER.as_str().to_string(),
                RefOr::T(
                    HeaderBuilder::new()
                        .schema(Some(Object::with_type(Type::String)))
                        .description(Some(
                            "The request's id: the caller's well-formed x-request-id, else a new `req_` id. Server logs name it.",
                        ))
                        .build(),
                ),
            );
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for operation in operations.into_iter().flatten() {
                for response in operation.responses.responses.values_mut() {
                    if let RefOr::T(response) = response {
                        add(response);
                    }
                }
            }
        }
        if let Some(components) = openapi.components.as_mut() {
            for response in components.responses.values_mut() {
                if let RefOr::T(response) = response {
                    add(response);
                }
            }
        }
    }
}

/// The request cannot be processed as sent: malformed JSON, a missing or mistyped field, or
/// input the model cannot take (empty, too long without `truncate`, token ids outside the
/// vocabulary, a `dimensions` the model does not make, a chat model on the embeddings route).
#[derive(ToResponse)]
#[response(example = json!({"error": {"message": "`input` is an empty array; send at least one string", "type": "invalid_request_error", "param": "input", "code": null}}))]
pub(crate) struct BadRequest(ErrorResponse);

/// No API key, or one this server does not accept (only when the server has keys).
#[derive(ToResponse)]
#[response(
    example = json!({"error": {"message": "no API key: this route needs an API key (--api-key) or an admin key (--admin-key), sent as `Authorization: Bearer KEY`", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}),
    headers(("WWW-Authenticate" = String, description = "`Bearer`: send an API key as `Authorization: Bearer KEY`"))
)]
pub(crate) struct Unauthorized(ErrorResponse);

/// The key is valid but does not open this route: a user key on an admin route, a key other than
/// the metrics or an admin key on `/metrics`, or any admin route on a server started with keys
/// but no admin key.
#[derive(ToResponse)]
#[response(example = json!({"error": {"message": "the key sent is a user API key, but this route needs an admin key (--admin-key)", "type": "invalid_request_error", "param": null, "code": "insufficient_permissions"}}))]
pub(crate) struct Forbidden(ErrorResponse);

/// No such model (or, for `/metrics`, metrics are not enabled).
#[derive(ToResponse)]
#[response(example = json!({"error": {"message": "unknown model `no-such-model`: it is not a catalog id, not a model in the cache and not an existing file or folder; run `tessera list` to see the catalog", "type": "invalid_request_error", "param": "model", "code": "model_not_found"}}))]
pub(crate) struct NotFound(ErrorResponse);

/// The body is larger than `--body-limit`.
#[derive(ToResponse)]
#[response(example = json!({"error": {"message": "the request body is larger than this server accepts (see --body-limit)", "type": "invalid_request_error", "param": null, "code": null}}))]
pub(crate) struct PayloadTooLarge(ErrorResponse);

/// The body was not sent as `Content-Type: application/json`.
#[derive(ToResponse)]
#[response(example = json!({"error": {"message": "send the body as JSON with `Content-Type: application/json`", "type": "invalid_request_error", "param": null, "code": null}}))]
pub(crate) struct UnsupportedMediaType(ErrorResponse);

/// The server failed. The message is generic and names the request id; the details are in the
/// server log under that id.
#[derive(ToResponse)]
#[response(example = json!({"error": {"message": "internal server error (request id req_4f1c2a9b7e3d5a60); the details are in the server log", "type": "server_error", "param": null, "code": "internal_error"}}))]
pub(crate) struct InternalError(ErrorResponse);

/// The model's download source failed, or served bytes that do not match the catalog.
#[derive(ToResponse)]
#[response(example = json!({"error": {"message": "network error fetching https://example.org/model.onnx: connection refused; check the connection or proxy and try again", "type": "server_error", "param": null, "code": "upstream_error"}}))]
pub(crate) struct BadGateway(ErrorResponse);

/// The model's queue is full, it is shutting down, or it is not cached and the server is offline
/// (`TESSERA_OFFLINE=1`). Retry after the number of seconds in `Retry-After`.
#[derive(ToResponse)]
#[response(
    example = json!({"error": {"message": "model `all-minilm-l6-v2-int8` is overloaded: its queue of 256 requests is full; retry shortly", "type": "server_overloaded", "param": null, "code": "overloaded"}}),
    headers(("Retry-After" = String, description = "Seconds to wait before retrying"))
)]
pub(crate) struct Overloaded(ErrorResponse);

/// The request took longer than `--request-timeout` and was stopped.
#[derive(ToResponse)]
#[response(example = json!({"error": {"message": "the request took longer than 120 s and was stopped; raise --request-timeout or send less work per request", "type": "server_error", "param": null, "code": "timeout"}}))]
pub(crate) struct Timeout(ErrorResponse);

#[cfg(test)]
mod tests {
    use serde_json::Value;

    fn document() -> Value {
        serde_json::to_value(crate::openapi()).unwrap()
    }

    /// Every `$ref` in `value`.
    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    out.push(target);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_route_is_documented_with_its_errors() {
        let doc = document();
        let operation = |path: &str, method: &str| doc["paths"][path][method].clone();
        let statuses = |path: &str, method: &str| -> Vec<String> {
            operation(path, method)["responses"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path} is not documented"))
                .keys()
                .cloned()
                .collect()
        };
        let inference = &[
            "200", "400", "401", "403", "404", "413", "415", "500", "502", "503", "504",
        ][..];
        let expected: [(&str, &str, &[&str]); 22] = [
            ("/v1/embeddings", "post", inference),
            ("/v1/vision/segment", "post", inference),
            ("/v1/vision/detect", "post", inference),
            ("/v1/vision/pose", "post", inference),
            ("/v1/vision/classify", "post", inference),
            ("/v1/vision/ocr", "post", inference),
            ("/v1/realtime", "get", &["101", "400", "401", "403", "503"]),
            ("/v1/audio/transcriptions", "post", inference),
            ("/v1/audio/translations", "post", inference),
            ("/v1/audio/speech", "post", inference),
            ("/v1/vad", "post", inference),
            ("/v1/chat/completions", "post", inference),
            ("/v1/completions", "post", inference),
            ("/v1/tokenize", "post", inference),
            ("/v1/detokenize", "post", inference),
            ("/v1/models", "get", &["200", "401", "403"]),
            ("/v1/models/{id}", "get", &["200", "401", "403", "404"]),
            (
                "/v1/models/{id}/pull",
                "post",
                &[
                    "200", "400", "401", "403", "404", "500", "502", "503", "504",
                ],
            ),
            (
                "/v1/models/{id}/load",
                "post",
                &[
                    "200", "400", "401", "403", "404", "500", "502", "503", "504",
                ],
            ),
            (
                "/v1/models/{id}/unload",
                "post",
                &["200", "401", "403", "404", "503"],
            ),
            ("/health", "get", &["200"]),
            ("/metrics", "get", &["200", "401", "403", "404"]),
        ];
        assert_eq!(doc["paths"].as_object().unwrap().len(), expected.len());
        for (path, method, codes) in expected {
            assert_eq!(statuses(path, method), *codes, "{method} {path}");
            assert!(operation(path, method)["operationId"].is_string());
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let responses = &doc["components"]["responses"];
        assert!(responses["Overloaded"]["headers"]["Retry-After"].is_object());
        assert!(responses["Unauthorized"]["headers"]["WWW-Authenticate"].is_object());
        assert!(
            doc["paths"]["/v1/embeddings"]["post"]["responses"]["200"]["headers"]["x-request-id"]
                .is_object()
        );
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let mut targets = Vec::new();
        refs(&doc, &mut targets);
        assert!(!targets.is_empty());
        for target in targets {
            let pointer = target.strip_prefix('#').expect("a local reference");
            assert!(doc.pointer(pointer).is_some(), "dangling {target}");
        }
    }
}
