//! `tessera serve` over loopback: the OpenAI embeddings API, its errors, limits and concurrency.

mod common;

use base64::Engine as _;
use common::{MODEL, Server, assert_error, cosine, vectors};
use serde_json::json;

#[test]
fn embeddings_answer_in_openai_shape_with_exact_usage() {
    let server = Server::start(&[]);
    let reply = server.post("/v1/embeddings", &json!({ "model": MODEL, "input": ["The cat sleeps.", "A kitten naps on the couch.", "Stocks fell today."] }));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = &reply.body;
    assert_eq!(body["object"], "list");
    assert_eq!(body["model"], MODEL);
    let data = body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for (i, item) in data.iter().enumerate() {
        assert_eq!(item["object"], "embedding");
        assert_eq!(item["index"], i);
        assert_eq!(item["embedding"].as_array().unwrap().len(), 384);
    }
    // [CLS] the cat sleeps . [SEP] = 6; [CLS] a kitten nap ##s on the couch . [SEP] = 10;
    // [CLS] stocks fell today . [SEP] = 6.
    assert_eq!(
        body["usage"],
        json!({ "prompt_tokens": 22, "total_tokens": 22 })
    );
    let v = vectors(body);
    let norm: f32 = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!(
        (norm - 1.0).abs() < 1e-3,
        "vectors are normalized, got norm {norm}"
    );
    assert!(
        cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]) + 0.2,
        "related sentence must rank first"
    );
}

#[test]
fn string_token_and_base64_inputs_agree() {
    let server = Server::start(&[]);
    let text = server.embed(json!("hello world"));
    // [CLS] hello world [SEP] without the special tokens: tessera adds them.
    let tokens = server.embed(json!([7592, 2088]));
    let token_lists = server.embed(json!([[7592, 2088]]));
    assert!(cosine(&text[0], &tokens[0]) > 0.9999);
    assert!(cosine(&text[0], &token_lists[0]) > 0.9999);
    let reply = server.post(
        "/v1/embeddings",
        &json!({ "model": MODEL, "input": "hello world", "encoding_format": "base64" }),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let encoded = reply.body["data"][0]["embedding"]
        .as_str()
        .expect("base64 string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(decoded, text[0]);
}

#[test]
fn bad_requests_get_clear_errors_and_the_server_keeps_serving() {
    let server = Server::start(&["--body-limit", "65536"]);
    assert_error(
        &server.post_raw("/v1/embeddings", "{\"model\": \"x\", \"input\": "),
        400,
        "not valid JSON",
    );
    assert_error(
        &server.post_raw("/v1/embeddings", "{\"input\": \"hi\"}"),
        400,
        "model",
    );
    assert_error(
        &server.post(
            "/v1/embeddings",
            &json!({ "model": "no-such-model", "input": "hi" }),
        ),
        404,
        "no-such-model",
    );
    assert_error(
        &server.post("/v1/embeddings", &json!({ "model": MODEL, "input": [] })),
        400,
        "empty",
    );
    assert_error(
        &server.post("/v1/embeddings", &json!({ "model": MODEL, "input": "" })),
        400,
        "empty",
    );
    assert_error(
        &server.post(
            "/v1/embeddings",
            &json!({ "model": MODEL, "input": ["ok", ""] }),
        ),
        400,
        "input[1] is empty",
    );
    assert_error(
        &server.post(
            "/v1/embeddings",
            &json!({ "model": MODEL, "input": [1, -1] }),
        ),
        400,
        "token id",
    );
    assert_error(
        &server.post(
            "/v1/embeddings",
            &json!({ "model": MODEL, "input": [99999999] }),
        ),
        400,
        "vocabulary",
    );
    let wrong_dimensions = server.post(
        "/v1/embeddings",
        &json!({ "model": MODEL, "input": "hi", "dimensions": 128 }),
    );
    assert_error(&wrong_dimensions, 400, "384");
    assert_eq!(wrong_dimensions.body["error"]["param"], "dimensions");
    assert_error(
        &server.post(
            "/v1/embeddings",
            &json!({ "model": MODEL, "input": "hi", "encoding_format": "hex" }),
        ),
        400,
        "encoding_format",
    );
    assert_error(
        &server.post(
            "/v1/embeddings",
            &json!({ "model": MODEL, "input": "word ".repeat(300) }),
        ),
        400,
        "truncate",
    );
    let too_big = json!({ "model": MODEL, "input": "x".repeat(100_000) });
    assert_error(&server.post("/v1/embeddings", &too_big), 413, "larger than");
    assert_error(
        &server.post(
            "/v1/embeddings",
            &json!({ "model": "all-minilm-l6-v2-int8x", "input": "hi" }),
        ),
        404,
        "all-minilm-l6-v2-int8",
    );
    assert_error(&server.post("/v1/nothing", &json!({})), 404, "no route");

    // Still serving, and over-long input works when truncation is asked for.
    let ok = server.post(
        "/v1/embeddings",
        &json!({ "model": MODEL, "input": "word ".repeat(300), "truncate": true }),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.body["usage"]["prompt_tokens"], 256);
    assert_eq!(server.embed(json!("still here")).len(), 1);
    let (status, _) = server.get("/health");
    assert_eq!(status, 200);
}

#[test]
fn a_chat_model_is_refused_by_the_embeddings_endpoint() {
    let server = Server::start(&[]);
    // Refused from the catalog entry alone: nothing is downloaded for a request that cannot succeed.
    let reply = server.post(
        "/v1/embeddings",
        &json!({ "model": "smollm2-135m-instruct", "input": "hi" }),
    );
    assert_error(
        &reply,
        400,
        "does `chat`; this endpoint needs a model that does `embed`",
    );
    assert_eq!(reply.body["error"]["param"], "model");
}

#[test]
fn thirty_two_concurrent_clients_get_the_same_vectors_as_sequential_calls() {
    let server = &Server::start(&[]);
    let sentences: Vec<String> = (0..32)
        .map(|i| {
            format!(
                "Sentence number {i} talks about {} things.",
                ["red", "green", "blue", "small"][i % 4]
            )
        })
        .collect();
    let sequential: Vec<Vec<f32>> = sentences
        .iter()
        .map(|s| server.embed(json!(s)).remove(0))
        .collect();
    let concurrent: Vec<Vec<f32>> = std::thread::scope(|scope| {
        let handles: Vec<_> = sentences
            .iter()
            .map(|s| scope.spawn(move || server.embed(json!(s)).remove(0)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client thread"))
            .collect()
    });
    for (i, (a, b)) in sequential.iter().zip(&concurrent).enumerate() {
        let similarity = cosine(a, b);
        assert!(
            similarity > 0.9999,
            "client {i}: concurrent vector differs (cosine {similarity})"
        );
    }
    // The worker merged concurrent requests: some engine call ran more than one job.
    let label = format!("{{model=\"{}\"}}", common::MODEL);
    let jobs = server.metric(&format!("tessera_batch_jobs_sum{label}"));
    let calls = server.metric(&format!("tessera_batch_jobs_count{label}"));
    assert!(
        jobs > calls,
        "{jobs} jobs in {calls} engine calls: none merged"
    );
}

#[test]
fn a_full_queue_answers_503_with_retry_after_and_recovers() {
    let server = Server::start(&["--queue-capacity", "1", "--max-batch-tokens", "512"]);
    let long: Vec<String> = (0..64)
        .map(|i| format!("{i} {}", "many words in a long sentence ".repeat(8)))
        .collect();
    let statuses: Vec<(u16, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..12)
            .map(|_| {
                scope.spawn(|| {
                    let reply =
                        server.post("/v1/embeddings", &json!({ "model": MODEL, "input": long }));
                    (reply.status, reply.retry_after)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("client"))
            .collect()
    });
    assert!(statuses.iter().any(|(s, _)| *s == 200), "{statuses:?}");
    let refused: Vec<_> = statuses.iter().filter(|(s, _)| *s == 503).collect();
    assert!(
        !refused.is_empty(),
        "a queue of 1 under 12 concurrent requests must refuse some: {statuses:?}"
    );
    assert!(
        refused
            .iter()
            .all(|(_, retry)| retry.as_deref() == Some("1"))
    );
    assert_eq!(server.embed(json!("after the storm")).len(), 1);
}

#[test]
fn models_health_and_metrics() {
    let server = Server::start(&[]);
    server.embed(json!("warm up"));
    let (status, body) = server.get("/v1/models");
    assert_eq!(status, 200);
    let models: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(models["object"], "list");
    let minilm = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == MODEL)
        .expect("model listed");
    assert_eq!(minilm["object"], "model");
    assert_eq!(minilm["task"], "embed");
    assert_eq!(minilm["loaded"], true);
    let (status, one) = server.get(&format!("/v1/models/{MODEL}"));
    assert_eq!(status, 200, "{one}");
    assert_eq!(server.get("/v1/models/nope").0, 404);
    assert_eq!(server.get("/health").0, 200);
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    for needle in [
        "tessera_http_requests_total",
        "tessera_http_request_duration_seconds_bucket",
        "route=\"/v1/embeddings\"",
        &format!("model=\"{MODEL}\""),
        "tessera_model_load_seconds",
        &format!("tessera_model_loaded{{model=\"{MODEL}\"}} 1"),
        &format!("tessera_model_resident_bytes{{model=\"{MODEL}\"}}"),
        &format!("tessera_model_loads_total{{model=\"{MODEL}\"}} 1"),
        "tessera_model_queue_depth",
        "tessera_stage_seconds_bucket{task=\"embed\"",
        "stage=\"queue\"",
        "stage=\"preprocess\"",
        "stage=\"inference\"",
        "stage=\"postprocess\"",
    ] {
        assert!(
            metrics.contains(needle),
            "/metrics lacks {needle}:\n{metrics}"
        );
    }
}

#[cfg(unix)]
#[test]
fn sigterm_lets_in_flight_requests_finish() {
    let mut server = Server::start(&[]);
    let long: Vec<String> = (0..256)
        .map(|i| format!("{i} {}", "a long sentence with many words ".repeat(6)))
        .collect();
    let pid = server.child.id().to_string();
    let reply = std::thread::scope(|scope| {
        let request = scope
            .spawn(|| server.post("/v1/embeddings", &json!({ "model": MODEL, "input": long })));
        std::thread::sleep(std::time::Duration::from_millis(150));
        let killed = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(killed.success());
        request.join().expect("client")
    });
    assert_eq!(
        reply.status, 200,
        "in-flight request must finish: {}",
        reply.body
    );
    assert_eq!(reply.body["data"].as_array().unwrap().len(), 256);
    let status = server.child.wait().expect("wait");
    assert!(
        status.success(),
        "server exits cleanly after SIGTERM: {status:?}"
    );
}

#[test]
fn a_slow_request_times_out_with_504_and_its_remaining_work_is_dropped() {
    let server = Server::start(&[
        "--request-timeout",
        "3",
        "--body-limit",
        "20000000",
        "--max-batch-tokens",
        "2048",
    ]);
    // About 100k tokens: far more than this machine embeds in three seconds.
    let huge: Vec<String> = (0..400)
        .map(|i| format!("{i} {}", "words that fill the whole window ".repeat(60)))
        .collect();
    let started = std::time::Instant::now();
    let reply = server.post(
        "/v1/embeddings",
        &json!({ "model": MODEL, "input": huge, "truncate": true }),
    );
    // 504, not 408: OpenAI clients retry 408 at once, and the same request would time out again.
    assert_error(&reply, 504, "--request-timeout");
    assert_eq!(reply.body["error"]["code"], "timeout");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "answered at the limit"
    );
    // The worker skips the abandoned batches, so the next caller is served promptly.
    let next = std::time::Instant::now();
    assert_eq!(server.embed(json!("served after the timeout")).len(), 1);
    assert!(
        next.elapsed() < std::time::Duration::from_secs(8),
        "waited {:?} behind abandoned work",
        next.elapsed()
    );
}
