//! HTTP sources against a loopback server: verification, resume, retries, Hugging Face layout,
//! and falling back from one source to the next.

mod common;

use common::*;
use tessera_hub::{Hub, HubError, Source};

#[test]
fn a_sha256_mismatch_is_rejected_and_nothing_is_kept() {
    let server = TestServer::start();
    let expected = fixture_bytes(100_000, 1);
    let served = fixture_bytes(100_000, 2);
    server.serve("/m.onnx", &served);
    let home = tempfile::tempdir().unwrap();
    let spec = file_spec("model.onnx", &expected, vec![https(server.url("/m.onnx"))]);
    let hub = Hub::new(
        test_config(home.path()),
        catalog(vec![entry("m", vec![spec])]),
    );

    let err = hub.pull("m").unwrap_err();
    match &err {
        HubError::ChecksumMismatch {
            file,
            expected: want,
            actual,
        } => {
            assert_eq!(file, "m/model.onnx");
            assert_eq!(*want, sha256_hex(&expected));
            assert_eq!(*actual, sha256_hex(&served));
        }
        other => panic!("expected a checksum mismatch, got {other:?}"),
    }
    let message = err.to_string();
    assert!(message.contains(&sha256_hex(&expected)), "{message}");
    assert!(message.contains(&sha256_hex(&served)), "{message}");
    assert!(message.contains("model.onnx"), "{message}");
    assert!(
        blob_files(home.path()).is_empty(),
        "bad bytes were kept: {:?}",
        blob_files(home.path())
    );
    assert!(!home.path().join("models/m/model.onnx").exists());
    assert_eq!(
        server.gets("/m.onnx"),
        1,
        "a checksum mismatch is not retried"
    );
}

#[test]
fn an_interrupted_download_resumes_with_a_range_request() {
    let server = TestServer::start();
    let bytes = fixture_bytes(300_000, 3);
    server.serve("/w.bin", &bytes);
    server.cut_first("/w.bin", 120_000, 1);
    let home = tempfile::tempdir().unwrap();
    let spec = file_spec("model.bin", &bytes, vec![https(server.url("/w.bin"))]);
    let mut config = test_config(home.path());
    config.retries = 0;
    let cat = catalog(vec![entry("w", vec![spec.clone()])]);

    let err = Hub::new(config.clone(), cat.clone()).pull("w").unwrap_err();
    assert!(matches!(err, HubError::Network { .. }), "{err:?}");
    let blob = home.path().join("blobs/sha256").join(&spec.sha256);
    assert!(
        !blob.exists(),
        "a partial download sits under the final name"
    );
    assert!(!home.path().join("models/w/model.bin").exists());
    let partial = home
        .path()
        .join("blobs/sha256")
        .join(format!("{}.partial", spec.sha256));
    assert_eq!(std::fs::metadata(&partial).unwrap().len(), 120_000);

    let model = Hub::new(config, cat).pull("w").unwrap();
    assert_eq!(
        std::fs::read(model.file("model.bin").unwrap()).unwrap(),
        bytes
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].range, None);
    assert_eq!(seen[1].range.as_deref(), Some("bytes=120000-"));
    assert!(!partial.exists());
    assert_eq!(blob_files(home.path()), vec![blob]);
}

#[test]
fn an_interrupted_download_restarts_cleanly_when_the_server_ignores_ranges() {
    let server = TestServer::start();
    let bytes = fixture_bytes(200_000, 4);
    server.serve("/r.bin", &bytes);
    server.cut_first("/r.bin", 70_000, 1);
    server.ignore_range(true);
    let home = tempfile::tempdir().unwrap();
    let spec = file_spec("model.bin", &bytes, vec![https(server.url("/r.bin"))]);
    let hub = Hub::new(
        test_config(home.path()),
        catalog(vec![entry("r", vec![spec])]),
    );

    // Within one pull: the cut is retried, the range is ignored, the file starts over.
    let model = hub.pull("r").unwrap();
    assert_eq!(
        std::fs::read(model.file("model.bin").unwrap()).unwrap(),
        bytes
    );
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].range.as_deref(), Some("bytes=70000-"));
    assert_eq!(blob_files(home.path()).len(), 1);
}

#[test]
fn transient_503s_are_retried_then_succeed() {
    let server = TestServer::start();
    let bytes = fixture_bytes(10_000, 5);
    server.serve("/t.bin", &bytes);
    server.fail_first("/t.bin", 503, 2);
    let home = tempfile::tempdir().unwrap();
    let spec = file_spec("model.bin", &bytes, vec![https(server.url("/t.bin"))]);
    let hub = Hub::new(
        test_config(home.path()),
        catalog(vec![entry("t", vec![spec])]),
    );

    hub.pull("t").unwrap();
    assert_eq!(server.gets("/t.bin"), 3);
}

#[test]
fn retries_give_up_after_the_configured_number() {
    let server = TestServer::start();
    let bytes = fixture_bytes(1000, 6);
    server.serve("/g.bin", &bytes);
    server.fail_first("/g.bin", 429, 100);
    let home = tempfile::tempdir().unwrap();
    let spec = file_spec("model.bin", &bytes, vec![https(server.url("/g.bin"))]);
    let mut config = test_config(home.path());
    config.retries = 2;
    let hub = Hub::new(config, catalog(vec![entry("g", vec![spec])]));

    let err = hub.pull("g").unwrap_err();
    assert!(matches!(err, HubError::Http { status: 429, .. }), "{err:?}");
    assert_eq!(server.gets("/g.bin"), 3);
}

#[test]
fn a_silent_server_times_out_and_the_retry_succeeds() {
    let server = TestServer::start();
    let bytes = fixture_bytes(10_000, 10);
    server.serve("/s.bin", &bytes);
    server.stall_first("/s.bin", std::time::Duration::from_secs(3), 1);
    let home = tempfile::tempdir().unwrap();
    let spec = file_spec("model.bin", &bytes, vec![https(server.url("/s.bin"))]);
    let mut config = test_config(home.path());
    config.timeout = std::time::Duration::from_millis(300);
    let hub = Hub::new(config, catalog(vec![entry("s", vec![spec])]));

    let started = std::time::Instant::now();
    hub.pull("s").unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    assert_eq!(server.gets("/s.bin"), 2);
}

#[test]
fn a_404_is_not_retried() {
    let server = TestServer::start();
    let home = tempfile::tempdir().unwrap();
    let spec = file_spec(
        "model.bin",
        b"never served",
        vec![https(server.url("/missing"))],
    );
    let hub = Hub::new(
        test_config(home.path()),
        catalog(vec![entry("n", vec![spec])]),
    );

    let err = hub.pull("n").unwrap_err();
    assert!(matches!(err, HubError::Http { status: 404, .. }), "{err:?}");
    assert!(err.to_string().contains("404"), "{err}");
    assert_eq!(server.gets("/missing"), 1);
}

#[test]
fn a_server_sending_more_bytes_than_pinned_is_cut_short() {
    let server = TestServer::start();
    let expected = fixture_bytes(1000, 7);
    server.serve("/big", &fixture_bytes(50_000, 7));
    let home = tempfile::tempdir().unwrap();
    let spec = file_spec("model.bin", &expected, vec![https(server.url("/big"))]);
    let hub = Hub::new(
        test_config(home.path()),
        catalog(vec![entry("b", vec![spec])]),
    );

    let err = hub.pull("b").unwrap_err();
    assert!(
        matches!(err, HubError::SizeMismatch { expected: 1000, .. }),
        "{err:?}"
    );
    assert!(blob_files(home.path()).is_empty());
}

#[test]
fn hf_sources_use_the_resolve_layout_of_the_configured_endpoint() {
    let server = TestServer::start();
    let bytes = b"{\"architectures\": [\"BertModel\"]}".to_vec();
    server.serve(
        "/sentence-transformers/all-MiniLM-L6-v2/resolve/main/config.json",
        &bytes,
    );
    let home = tempfile::tempdir().unwrap();
    let spec = file_spec(
        "config.json",
        &bytes,
        vec![Source::Hf {
            repo: "sentence-transformers/all-MiniLM-L6-v2".into(),
            file: "config.json".into(),
            revision: "main".into(),
        }],
    );
    let mut config = test_config(home.path());
    config.hf_endpoint = format!("{}/", server.base());
    let hub = Hub::new(config, catalog(vec![entry("h", vec![spec])]));

    let model = hub.pull("h").unwrap();
    assert_eq!(
        std::fs::read(model.file("config.json").unwrap()).unwrap(),
        bytes
    );
    assert_eq!(
        server.gets("/sentence-transformers/all-MiniLM-L6-v2/resolve/main/config.json"),
        1
    );
}

#[test]
fn a_failing_source_falls_back_to_the_next_and_all_failures_are_listed() {
    let server = TestServer::start();
    let bytes = fixture_bytes(5000, 8);
    server.serve("/second", &bytes);
    let home = tempfile::tempdir().unwrap();
    let good = file_spec(
        "model.bin",
        &bytes,
        vec![https(server.url("/first")), https(server.url("/second"))],
    );
    let bad = file_spec(
        "other.bin",
        b"nowhere",
        vec![
            https(server.url("/nope")),
            Source::Path {
                path: home.path().join("does-not-exist"),
            },
        ],
    );
    let hub = Hub::new(
        test_config(home.path()),
        catalog(vec![entry("ok", vec![good]), entry("bad", vec![bad])]),
    );

    hub.pull("ok").unwrap();
    assert_eq!(server.gets("/first"), 1);
    assert_eq!(server.gets("/second"), 1);

    let err = hub.pull("bad").unwrap_err();
    let HubError::AllSourcesFailed { file, errors } = &err else {
        panic!("expected every source to fail, got {err:?}");
    };
    assert_eq!(file, "bad/other.bin");
    assert_eq!(errors.len(), 2);
    assert!(
        errors[0].contains("/nope") && errors[0].contains("404"),
        "{err}"
    );
    assert!(errors[1].contains("does-not-exist"), "{err}");
}

#[test]
fn pulling_twice_fetches_once() {
    let server = TestServer::start();
    let bytes = fixture_bytes(4000, 9);
    server.serve("/once", &bytes);
    let home = tempfile::tempdir().unwrap();
    let spec = file_spec("model.bin", &bytes, vec![https(server.url("/once"))]);
    let hub = Hub::new(
        test_config(home.path()),
        catalog(vec![entry("o", vec![spec])]),
    );

    let first = hub.pull("o").unwrap();
    let second = hub.pull("o").unwrap();
    assert_eq!(first, second);
    assert_eq!(server.gets("/once"), 1);
    assert_eq!(first.options["max_tokens"], 128);
}
