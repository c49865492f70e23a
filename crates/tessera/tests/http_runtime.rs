//! The runtime behind `tessera serve`, over loopback with real weights: lazy and shared loads,
//! idle unload, the memory budget, cool-down after a failed load, panics, admission, path safety
//! and shutdown.

mod common;

use std::time::{Duration, Instant};

use common::{MODEL, Server, assert_error, copy_model};
use serde_json::json;

/// The f32 safetensors MiniLM on candle: about four times the int8 ONNX model.
const BIG_MODEL: &str = "all-minilm-l6-v2";

fn no_preload() -> Vec<&'static str> {
    vec!["--preload", ""]
}

#[test]
fn models_load_on_first_use_and_list_their_state() {
    let server = Server::start(&no_preload());
    let before = server.model(MODEL);
    assert_eq!(before["state"], "unloaded", "{before}");
    assert_eq!(before["loaded"], false);
    assert_eq!(server.embed(json!("load me")).len(), 1);
    let after = server.model(MODEL);
    assert_eq!(after["state"], "ready", "{after}");
    assert_eq!(after["loaded"], true);
    assert!(
        after["resident_bytes"].as_u64().unwrap() > 1_000_000,
        "{after}"
    );
    assert!(
        after["last_used"].as_u64().unwrap() > 1_700_000_000,
        "{after}"
    );
    assert_eq!(after["queue_depth"], 0);
    assert_eq!(after["device"], "cpu", "the device it really runs on");
    assert_eq!(after["task"], "embed");
}

#[test]
fn sixteen_concurrent_first_requests_share_one_load_and_listing_never_waits() {
    let server = &Server::start_with_env(&no_preload(), &[("TESSERA_TEST_LOAD_DELAY_MS", "2000")]);
    std::thread::scope(|scope| {
        let clients: Vec<_> = (0..16)
            .map(|i| scope.spawn(move || server.embed_with(MODEL, json!(format!("request {i}")))))
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        let asked = Instant::now();
        let listed = server.model(MODEL);
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "listing waited {:?} for the load",
            asked.elapsed()
        );
        assert_eq!(listed["state"], "loading", "{listed}");
        for client in clients {
            let reply = client.join().expect("client");
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
    });
    let loads = server.metric(&format!("tessera_model_loads_total{{model=\"{MODEL}\"}}"));
    assert_eq!(loads, 1.0, "16 first requests, one load");
}

#[test]
fn idle_models_unload_and_load_again_on_the_next_request() {
    let server = Server::start(&["--preload", "", "--idle-unload", "1s"]);
    assert_eq!(server.embed(json!("first")).len(), 1);
    assert_eq!(server.model(MODEL)["state"], "ready");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(server.model(MODEL)["state"], "unloaded");
    let idle = format!("tessera_model_unloads_total{{model=\"{MODEL}\",reason=\"idle\"}}");
    assert_eq!(server.metric(&idle), 1.0);
    assert_eq!(server.embed(json!("again")).len(), 1);
    assert_eq!(server.model(MODEL)["state"], "ready");
}

#[test]
fn resident_memory_drops_after_an_unload() {
    let server = Server::start(&no_preload());
    let reply = server.embed_with(BIG_MODEL, json!("weights in memory"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let resident = server.model(BIG_MODEL)["resident_bytes"].as_u64().unwrap();
    assert!(
        resident > 50_000_000,
        "the f32 model holds {resident} bytes"
    );
    let loaded = server.resident_bytes();
    let reply = server.post(&format!("/v1/models/{BIG_MODEL}/unload"), &json!({}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["state"], "unloaded");
    std::thread::sleep(Duration::from_millis(300));
    let unloaded = server.resident_bytes();
    // Tolerance: at least half of what the load measured goes back to the system.
    assert!(
        loaded.saturating_sub(unloaded) >= resident / 2,
        "RSS {loaded} -> {unloaded} after unloading a model of {resident} bytes"
    );
}

#[test]
fn operators_load_and_unload_models() {
    let server = Server::start(&no_preload());
    let loaded = server.post(&format!("/v1/models/{MODEL}/load"), &json!({}));
    assert_eq!(loaded.status, 200, "{}", loaded.body);
    assert_eq!(loaded.body["state"], "ready");
    let unloaded = server.post(&format!("/v1/models/{MODEL}/unload"), &json!({}));
    assert_eq!(unloaded.body["state"], "unloaded", "{}", unloaded.body);
    assert_error(
        &server.post("/v1/models/nope/load", &json!({})),
        404,
        "nope",
    );
}

#[test]
fn a_model_too_big_for_the_budget_is_refused_with_the_reason() {
    let server = Server::start(&["--preload", "", "--memory-budget", "100MB"]);
    let reply = server.embed_with(BIG_MODEL, json!("too big"));
    assert_error(&reply, 503, "memory budget is 100 MB");
    assert!(
        reply.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("--memory-budget")
    );
    assert_eq!(reply.retry_after.as_deref(), Some("1"));
    // The small model still fits, and the server still serves.
    assert_eq!(server.embed(json!("fits")).len(), 1);
}

#[test]
fn the_budget_evicts_the_least_recently_used_idle_model_and_spares_pinned_ones() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        copy_model(dir.path(), name);
    }
    let budget: u64 = 1_000_000_000;
    let server = Server::start(&[
        "--preload",
        "",
        "--model-dir",
        dir.path().to_str().unwrap(),
        "--memory-budget",
        &budget.to_string(),
        "--pin",
        "a",
    ]);
    for name in ["a", "b"] {
        let reply = server.embed_with(name, json!("x"));
        assert_eq!(reply.status, 200, "{name}: {}", reply.body);
        std::thread::sleep(Duration::from_millis(50));
    }
    // Resident sizes vary from load to load, so size c from what a and b measured here: c's
    // estimate (twice its files) fits beside a alone, not beside a and b.
    let resident = |name: &str| server.model(name)["resident_bytes"].as_u64().unwrap();
    let (a, b) = (resident("a"), resident("b"));
    let c_estimate = budget - a - b / 2;
    let c = copy_model(dir.path(), "c");
    let files: u64 = ["model.onnx", "tokenizer.json", "config.json"]
        .iter()
        .map(|f| std::fs::metadata(c.join(f)).unwrap().len())
        .sum();
    // A sparse file: counted in the estimate, costs no disk and is never read.
    std::fs::File::create(c.join("padding.bin"))
        .unwrap()
        .set_len(c_estimate / 2 - files)
        .unwrap();
    let reply = server.embed_with("c", json!("x"));
    assert_eq!(reply.status, 200, "c: {}", reply.body);
    // a is older than b, but pinned: b goes.
    assert_eq!(server.model("a")["state"], "ready");
    assert_eq!(server.model("b")["state"], "unloaded");
    assert_eq!(server.model("c")["state"], "ready");
    let evicted = server.metric("tessera_model_evictions_total{model=\"b\"}");
    assert_eq!(evicted, 1.0);
}

#[test]
fn a_model_in_use_is_never_evicted() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b"] {
        copy_model(dir.path(), name);
    }
    // Room for one copy at a time.
    let server = &Server::start(&[
        "--preload",
        "",
        "--model-dir",
        dir.path().to_str().unwrap(),
        "--memory-budget",
        "150MB",
        "--max-batch-tokens",
        "512",
        "--body-limit",
        "8000000",
    ]);
    assert_eq!(server.embed_with("a", json!("x")).status, 200);
    let long: Vec<String> = (0..1500)
        .map(|i| {
            format!(
                "{i} {}",
                "a long sentence that keeps the engine busy ".repeat(5)
            )
        })
        .collect();
    std::thread::scope(|scope| {
        let busy = scope.spawn(|| {
            server.post(
                "/v1/embeddings",
                &json!({ "model": "a", "input": long, "truncate": true }),
            )
        });
        std::thread::sleep(Duration::from_millis(700));
        assert_eq!(server.model("a")["in_flight"], 1, "a is busy");
        let refused = server.embed_with("b", json!("x"));
        assert_error(&refused, 503, "`a`");
        assert!(
            refused.body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("in use"),
            "{}",
            refused.body
        );
        assert_eq!(busy.join().expect("client").status, 200);
    });
    // Idle now: a makes room for b.
    assert_eq!(server.embed_with("b", json!("x")).status, 200);
    assert_eq!(server.model("a")["state"], "unloaded");
}

#[test]
fn a_broken_model_cools_down_then_loads_once_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let broken = copy_model(dir.path(), "broken");
    std::fs::write(broken.join("model.onnx"), b"not an ONNX graph").unwrap();
    let server = Server::start(&[
        "--preload",
        "",
        "--model-dir",
        dir.path().to_str().unwrap(),
        "--load-cooldown",
        "1s",
    ]);
    let first = server.embed_with("broken", json!("x"));
    assert_error(&first, 400, "could not be loaded");
    let cause = first.body["error"]["message"].as_str().unwrap().to_string();
    let asked = Instant::now();
    let second = server.embed_with("broken", json!("x"));
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "answered at once"
    );
    assert_error(&second, 400, "next attempt in");
    let second_cause = second.body["error"]["message"].as_str().unwrap();
    let before_note = |m: &str| m.split(" (next attempt").next().unwrap_or(m).to_string();
    assert_eq!(
        before_note(second_cause),
        before_note(&cause),
        "the same cause"
    );
    assert_eq!(
        server.metric("tessera_model_load_failures_total{model=\"broken\"}"),
        1.0,
        "no second load during the cool-down"
    );
    assert_eq!(server.model("broken")["state"], "failed");
    // Fixed on disk: after the cool-down the next request loads it.
    copy_model(dir.path(), "broken");
    std::thread::sleep(Duration::from_millis(1200));
    let fixed = server.embed_with("broken", json!("x"));
    assert_eq!(fixed.status, 200, "{}", fixed.body);
}

#[test]
fn a_panicking_engine_call_answers_500_and_the_model_keeps_serving() {
    let server = Server::start_with_env(&[], &[("TESSERA_TEST_PANIC_FIRST_CALL", "1")]);
    let crashed = server.embed_with(MODEL, json!("the engine panics on this one"));
    assert_eq!(crashed.status, 500, "{}", crashed.body);
    let message = crashed.body["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("TESSERA_TEST"),
        "internals leaked: {message}"
    );
    assert_eq!(server.embed(json!("and serves this one")).len(), 1);
}

#[test]
fn request_names_never_reach_the_file_system() {
    let dir = tempfile::tempdir().unwrap();
    copy_model(dir.path(), "good");
    let outside = tempfile::tempdir().unwrap();
    let secret = copy_model(outside.path(), "secret");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/etc", dir.path().join("etc-link")).unwrap();
        std::os::unix::fs::symlink(&secret, dir.path().join("secret-link")).unwrap();
    }
    let server = Server::start(&["--preload", "", "--model-dir", dir.path().to_str().unwrap()]);
    let secret_path = secret.to_str().unwrap().to_string();
    let good_path = dir.path().join("good").to_str().unwrap().to_string();
    let names = [
        "/etc",
        "/etc/passwd",
        "../..",
        "..",
        "good/../..",
        "etc-link",
        "secret-link",
        secret_path.as_str(),
        good_path.as_str(),
        "/root",
    ];
    let dir_text = dir.path().to_str().unwrap().to_string();
    for name in names {
        let reply = server.embed_with(name, json!("x"));
        assert_error(&reply, 404, "unknown model");
        let body = reply.body.to_string();
        // Whatever the caller sent may be echoed back; nothing else of the machine may appear.
        for leak in [
            "passwd",
            "hostname",
            "os-release",
            "No such file",
            "secret-link/",
            "model.onnx",
        ] {
            assert!(
                name.contains(leak) || !body.contains(leak),
                "{name}: {body}"
            );
        }
        if !name.starts_with('/') {
            assert!(!body.contains(&dir_text), "{name}: {body}");
        }
    }
    let (_, listing) = server.get("/v1/models");
    assert!(
        !listing.contains("passwd") && !listing.contains("../"),
        "{listing}"
    );
    assert_eq!(server.embed_with("good", json!("x")).status, 200);
}

#[test]
fn per_request_caps_name_the_cap() {
    let server = Server::start(&["--max-request-tokens", "50", "--body-limit", "4000000"]);
    let many: Vec<String> = (0..2049).map(|i| format!("t{i}")).collect();
    assert_error(&server.embed_with(MODEL, json!(many)), 400, "2048 inputs");
    let long: Vec<String> = (0..10)
        .map(|i| format!("sentence number {i} is here"))
        .collect();
    assert_error(&server.embed_with(MODEL, json!(long)), 400, "50 tokens");
    assert_eq!(server.embed(json!("small")).len(), 1);
}

#[test]
fn a_full_preprocessing_stage_refuses_at_once_with_retry_after() {
    let server = &Server::start(&["--max-preprocessing", "1", "--body-limit", "8000000"]);
    let texts: Vec<String> = (0..2000)
        .map(|i| {
            format!(
                "{i} {}",
                "a sentence that takes the tokenizer a while ".repeat(4)
            )
        })
        .collect();
    let replies: Vec<(u16, Option<String>, String)> = std::thread::scope(|scope| {
        let clients: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let reply = server.post(
                        "/v1/embeddings",
                        &json!({ "model": MODEL, "input": texts, "truncate": true }),
                    );
                    (reply.status, reply.retry_after, reply.body.to_string())
                })
            })
            .collect();
        clients
            .into_iter()
            .map(|c| c.join().expect("client"))
            .collect()
    });
    assert!(replies.iter().any(|(s, _, _)| *s == 200), "{replies:?}");
    let refused: Vec<_> = replies.iter().filter(|(s, _, _)| *s == 503).collect();
    assert!(
        !refused.is_empty(),
        "one pre-processing slot under 8 clients: {replies:?}"
    );
    for (_, retry, body) in refused {
        assert_eq!(retry.as_deref(), Some("1"));
        assert!(body.contains("pre-processing"), "{body}");
    }
}

#[cfg(unix)]
#[test]
fn sigterm_during_a_slow_load_exits_within_the_grace() {
    let mut server = Server::start_with_env(
        &["--preload", "", "--shutdown-grace", "1"],
        &[("TESSERA_TEST_LOAD_DELAY_MS", "30000")],
    );
    let url = server.url("/v1/embeddings");
    // The request waits on a load that takes 30 s.
    std::thread::spawn(move || {
        let _ = ureq::post(&url).send_json(json!({ "model": MODEL, "input": "x" }));
    });
    std::thread::sleep(Duration::from_millis(500));
    let pid = server.child.id().to_string();
    let signalled = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    loop {
        if server.child.try_wait().expect("wait").is_some() {
            break;
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "still running {:?} after SIGTERM with a 1 s grace",
            signalled.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_settings_file_sets_flags_and_pins_models() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tessera.toml");
    std::fs::write(
        &file,
        format!("idle_unload = \"1s\"\n\n[models.{MODEL}]\npin = true\n"),
    )
    .unwrap();
    let server = Server::start(&["--config", file.to_str().unwrap()]);
    assert_eq!(server.embed(json!("pinned")).len(), 1);
    assert_eq!(server.model(MODEL)["pinned"], true);
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(
        server.model(MODEL)["state"],
        "ready",
        "a pinned model never idles out"
    );
}
