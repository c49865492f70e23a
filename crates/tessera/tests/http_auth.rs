//! `tessera serve` over loopback: API keys by role, the admin pull route, request ids and the
//! OpenAPI document.

mod common;

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{MODEL, Reply, Server, assert_error};
use serde_json::json;

const USER: &str = "sk-test-user-0123";
const ADMIN: &str = "sk-test-admin-4567";
const METRICS: &str = "sk-test-metrics-89";

fn auth(key: &str) -> (&'static str, String) {
    ("Authorization", format!("Bearer {key}"))
}

/// GET with an optional bearer key.
fn get(server: &Server, path: &str, key: Option<&str>) -> Reply {
    match key.map(auth) {
        Some((name, value)) => server.get_with(path, &[(name, &value)]),
        None => server.get_with(path, &[]),
    }
}

/// POST a JSON body with an optional bearer key.
fn post(server: &Server, path: &str, body: &str, key: Option<&str>) -> Reply {
    match key.map(auth) {
        Some((name, value)) => server.post_with(path, body, &[(name, &value)]),
        None => server.post_with(path, body, &[]),
    }
}

fn embed_body() -> String {
    json!({ "model": MODEL, "input": "hello" }).to_string()
}

fn pull_path(id: &str) -> String {
    format!("/v1/models/{id}/pull")
}

/// Asserts OpenAI's 401 for a bad or missing key, with `WWW-Authenticate: Bearer`.
fn assert_unauthorized(reply: &Reply, needle: &str) {
    assert_error(reply, 401, needle);
    let error = &reply.body["error"];
    assert_eq!(error["type"], "invalid_request_error", "{}", reply.body);
    assert_eq!(error["code"], "invalid_api_key", "{}", reply.body);
    assert!(error["param"].is_null(), "{}", reply.body);
    assert_eq!(reply.header("www-authenticate"), Some("Bearer"));
}

#[test]
fn user_keys_guard_the_api_and_only_admin_keys_pull() {
    let server = Server::start(&["--api-key", USER, "--admin-key", ADMIN]);

    // No key, a wrong key, a header that is not Bearer: 401 with OpenAI's error object.
    assert_unauthorized(
        &post(&server, "/v1/embeddings", &embed_body(), None),
        "no API key",
    );
    let wrong = post(&server, "/v1/embeddings", &embed_body(), Some("sk-wrong"));
    assert_unauthorized(&wrong, "invalid API key");
    assert!(!wrong.text.contains("sk-wrong"), "never echo a key");
    let basic = server.post_with("/v1/embeddings", &embed_body(), &[("Authorization", USER)]);
    assert_unauthorized(&basic, "Bearer");
    assert_unauthorized(&get(&server, "/v1/models", None), "no API key");
    assert_unauthorized(
        &get(&server, &format!("/v1/models/{MODEL}"), None),
        "no API key",
    );

    // The user key, and the admin key, open the OpenAI routes.
    for key in [USER, ADMIN] {
        let reply = post(&server, "/v1/embeddings", &embed_body(), Some(key));
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(
            reply.body["data"][0]["embedding"].as_array().unwrap().len(),
            384
        );
        assert_eq!(get(&server, "/v1/models", Some(key)).status, 200);
        assert_eq!(
            get(&server, &format!("/v1/models/{MODEL}"), Some(key)).status,
            200
        );
    }
    // The scheme is case-insensitive, as RFC 7235 says.
    let lower = server.get_with(
        "/v1/models",
        &[("Authorization", &format!("bearer {USER}"))],
    );
    assert_eq!(lower.status, 200);

    // Pull is an admin route: a user key is refused with 403, no or a wrong key with 401.
    let as_user = post(&server, &pull_path(MODEL), "", Some(USER));
    assert_error(&as_user, 403, "admin key");
    assert_eq!(as_user.body["error"]["code"], "insufficient_permissions");
    assert_unauthorized(&post(&server, &pull_path(MODEL), "", None), "admin key");
    assert_unauthorized(
        &post(&server, &pull_path(MODEL), "", Some("sk-wrong")),
        "invalid API key",
    );
    // The admin key pulls (the test model is cached, so nothing downloads).
    let pulled = post(&server, &pull_path(MODEL), "", Some(ADMIN));
    assert_eq!(pulled.status, 200, "{}", pulled.body);
    assert_eq!(
        pulled.body,
        json!({ "id": MODEL, "object": "model", "cached": true })
    );
    let unknown = post(&server, &pull_path("no-such-model"), "", Some(ADMIN));
    assert_error(&unknown, 404, "no-such-model");
    assert_eq!(unknown.body["error"]["code"], "model_not_found");

    // /health is always open; /metrics is open while no metrics key is set.
    assert_eq!(get(&server, "/health", None).status, 200);
    assert_eq!(get(&server, "/metrics", None).status, 200);
}

#[test]
fn keys_without_an_admin_key_close_the_admin_routes() {
    let server = Server::start(&["--api-key", USER]);
    for key in [Some(USER), None] {
        let reply = post(&server, &pull_path(MODEL), "", key);
        assert_error(&reply, 403, "--admin-key");
    }
    assert_eq!(get(&server, "/v1/models", Some(USER)).status, 200);
}

#[test]
fn a_metrics_key_guards_metrics_alone() {
    let server = Server::start(&["--metrics-key", METRICS, "--admin-key", ADMIN]);
    // No user key: the OpenAI routes stay open.
    let reply = post(&server, "/v1/embeddings", &embed_body(), None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_unauthorized(&get(&server, "/metrics", None), "metrics key");
    assert_unauthorized(&get(&server, "/metrics", Some("sk-wrong")), "metrics key");
    for key in [METRICS, ADMIN] {
        let metrics = get(&server, "/metrics", Some(key));
        assert_eq!(metrics.status, 200, "{}", metrics.text);
        assert!(
            metrics.text.contains("tessera_http_requests_total"),
            "{}",
            metrics.text
        );
    }
    // The metrics key opens nothing else.
    assert_error(
        &post(&server, &pull_path(MODEL), "", Some(METRICS)),
        403,
        "admin key",
    );
    assert_eq!(get(&server, "/health", None).status, 200);
}

#[test]
fn keys_come_from_a_key_file_and_the_environment() {
    let dir = std::env::temp_dir().join(format!("tessera-http-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys.txt");
    std::fs::write(
        &file,
        "# keys for the team\n\nsk-file-one\n   sk-file-two   \n# sk-commented-out\n",
    )
    .unwrap();
    let server = Server::start_with_env(
        &["--api-key-file", file.to_str().unwrap()],
        &[
            ("TESSERA_API_KEY", "sk-env-one,sk-env-two"),
            ("TESSERA_ADMIN_KEY", ADMIN),
        ],
    );
    for key in [
        "sk-file-one",
        "sk-file-two",
        "sk-env-one",
        "sk-env-two",
        ADMIN,
    ] {
        let reply = get(&server, "/v1/models", Some(key));
        assert_eq!(reply.status, 200, "{key}: {}", reply.body);
    }
    for key in ["sk-commented-out", "sk-env-one,sk-env-two", "sk-file"] {
        assert_unauthorized(&get(&server, "/v1/models", Some(key)), "invalid API key");
    }
    drop(server);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Runs `tessera serve` with `args`, expecting it to exit on its own within 30 s; returns its
/// success and stderr.
fn serve_expecting_exit(args: &[&str]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["serve", "--host", "127.0.0.1", "--port", "0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tessera serve");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("tessera serve {args:?} kept running; it should have refused to start");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("output");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_key_settings_stop_the_start_with_a_clear_error() {
    let (ok, stderr) = serve_expecting_exit(&["--api-key-file", "/nonexistent/tessera/keys.txt"]);
    assert!(!ok);
    assert!(
        stderr.contains("--api-key-file") && stderr.contains("/nonexistent/tessera/keys.txt"),
        "{stderr}"
    );
    // A key a header cannot carry is refused, and the error does not print it.
    let (ok, stderr) = serve_expecting_exit(&["--api-key", USER, "--admin-key", "sk-with space"]);
    assert!(!ok);
    assert!(stderr.contains("--admin-key"), "{stderr}");
    assert!(!stderr.contains("sk-with"), "{stderr}");
}

#[test]
fn every_response_carries_a_request_id() {
    let server = Server::start(&["--api-key", USER, "--body-limit", "4096"]);
    let big = json!({ "model": MODEL, "input": "x".repeat(10_000) }).to_string();
    let replies = [
        get(&server, "/health", None),
        get(&server, "/metrics", None),
        get(&server, "/openapi.json", None),
        get(&server, "/v1/models", None),
        get(&server, "/v1/models", Some(USER)),
        get(&server, "/v1/models/no-such-model", Some(USER)),
        get(&server, "/v1/nothing", None),
        post(&server, "/v1/embeddings", &embed_body(), Some(USER)),
        post(&server, "/v1/embeddings", "{not json", Some(USER)),
        post(&server, "/v1/embeddings", &big, Some(USER)),
        post(&server, &pull_path(MODEL), "", Some(USER)),
    ];
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [200, 200, 200, 401, 200, 404, 404, 200, 400, 413, 403]
    );
    let mut seen = HashSet::new();
    for reply in &replies {
        let id = reply
            .header("x-request-id")
            .unwrap_or_else(|| panic!("no x-request-id on a {} answer", reply.status));
        let hex = id.strip_prefix("req_").unwrap_or_else(|| panic!("{id}"));
        assert!(
            hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
        assert!(seen.insert(id.to_string()), "{id} given twice");
    }
    // A well-formed id from the caller is kept; anything else is replaced.
    let kept = server.get_with("/health", &[("x-request-id", "client-trace_01")]);
    assert_eq!(kept.header("x-request-id"), Some("client-trace_01"));
    let long = "a".repeat(65);
    for bad in ["has spaces", "semi;colon", long.as_str()] {
        let replaced = server.get_with("/health", &[("x-request-id", bad)]);
        let id = replaced.header("x-request-id").unwrap();
        assert!(id.starts_with("req_"), "{bad:?} gave {id}");
    }
}

#[test]
fn without_keys_everything_is_open_and_documented() {
    let server = Server::start(&[]);
    let pulled = post(&server, &pull_path(MODEL), "", None);
    assert_eq!(pulled.status, 200, "{}", pulled.body);
    assert_eq!(pulled.body["cached"], true);
    assert_eq!(get(&server, "/metrics", None).status, 200);

    let spec = get(&server, "/openapi.json", None);
    assert_eq!(spec.status, 200);
    assert_eq!(spec.header("content-type"), Some("application/json"));
    let paths = spec.body["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/v1/embeddings", "post"),
        ("/v1/models", "get"),
        ("/v1/models/{id}", "get"),
        ("/v1/models/{id}/pull", "post"),
        ("/health", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not in /openapi.json"
        );
    }
    assert_eq!(
        spec.body["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

#[test]
fn a_local_model_id_with_slashes_is_reached_percent_encoded() {
    // A model two folders deep under a --model-dir: its id holds a `/`.
    let dir = tempfile::tempdir().unwrap();
    common::copy_model(dir.path(), "team/minilm");
    let id = "team/minilm";
    let server = Server::start(&["--model-dir", dir.path().to_str().unwrap(), "--preload", id]);
    let reply = get(&server, "/v1/models/team%2Fminilm", None);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["id"], id);
    assert_eq!(reply.body["loaded"], true);
    // Unencoded, the slash makes another path, and the 404 says how to send it.
    assert_error(&get(&server, &format!("/v1/models/{id}"), None), 404, "%2F");
}
