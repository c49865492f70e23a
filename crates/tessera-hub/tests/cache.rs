//! The cache: concurrent pulls, offline mode, status, remove and resolve.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use tessera_hub::{Catalog, Hub, HubError};

const CHILD_ENV: &str = "TESSERA_HUB_TEST_CHILD";

/// The catalog the concurrency tests pull: one slow 1.5 MB file and one small one.
fn shared_catalog(base: &str) -> Catalog {
    let big = fixture_bytes(1_500_000, 11);
    let small = fixture_bytes(3_000, 12);
    catalog(vec![entry(
        "shared",
        vec![
            file_spec("model.onnx", &big, vec![https(format!("{base}/big"))]),
            file_spec(
                "tokenizer.json",
                &small,
                vec![https(format!("{base}/small"))],
            ),
        ],
    )])
}

fn serve_shared(server: &TestServer) {
    server.serve("/big", &fixture_bytes(1_500_000, 11));
    server.serve("/small", &fixture_bytes(3_000, 12));
    // About 23 chunks of 64 KiB, 40 ms each: long enough that every puller overlaps.
    server.slow(Duration::from_millis(40));
}

#[test]
fn concurrent_pulls_in_threads_download_each_file_once() {
    let server = TestServer::start();
    serve_shared(&server);
    let home = tempfile::tempdir().unwrap();
    let models: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    // A hub of its own per thread: separate lock file handles, like processes.
                    let hub = Hub::new(test_config(home.path()), shared_catalog(&server.base()));
                    hub.pull("shared")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for model in models {
        let model = model.unwrap();
        assert_eq!(
            std::fs::read(model.file("model.onnx").unwrap()).unwrap(),
            fixture_bytes(1_500_000, 11)
        );
    }
    assert_eq!(server.gets("/big"), 1);
    assert_eq!(server.gets("/small"), 1);
}

#[test]
fn concurrent_pulls_in_two_processes_download_each_file_once() {
    let server = TestServer::start();
    serve_shared(&server);
    let home = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "child_process_pulls_the_shared_model",
                    "--nocapture",
                ])
                .env(
                    CHILD_ENV,
                    format!("{}|{}", home.path().display(), server.base()),
                )
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success(), "a child pull failed");
    }
    assert_eq!(server.gets("/big"), 1);
    assert_eq!(server.gets("/small"), 1);
    let hub = Hub::new(test_config(home.path()), shared_catalog(&server.base()));
    let status = hub.status();
    assert!(status[0].complete);
}

/// Run by `concurrent_pulls_in_two_processes_download_each_file_once` in a child process; with
/// no child environment (a normal test run) it has nothing to do.
#[test]
fn child_process_pulls_the_shared_model() {
    let Ok(setting) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (home, base) = setting.split_once('|').unwrap();
    let hub = Hub::new(test_config(Path::new(home)), shared_catalog(base));
    hub.pull("shared").unwrap();
}

#[test]
fn offline_never_touches_the_network_and_names_the_missing_file() {
    let server = TestServer::start();
    let bytes = fixture_bytes(2_000, 13);
    server.serve("/f", &bytes);
    let home = tempfile::tempdir().unwrap();
    let cat = catalog(vec![entry(
        "off",
        vec![file_spec(
            "model.onnx",
            &bytes,
            vec![https(server.url("/f"))],
        )],
    )]);
    let mut offline = test_config(home.path());
    offline.offline = true;

    let err = Hub::new(offline.clone(), cat.clone())
        .resolve("off")
        .unwrap_err();
    let HubError::Offline { model, file, .. } = &err else {
        panic!("expected an offline error, got {err:?}");
    };
    assert_eq!((model.as_str(), file.as_str()), ("off", "model.onnx"));
    let message = err.to_string();
    assert!(message.contains("TESSERA_OFFLINE=1"), "{message}");
    assert!(message.contains("tessera pull off"), "{message}");
    assert!(server.seen().is_empty(), "offline mode sent a request");

    Hub::new(test_config(home.path()), cat.clone())
        .pull("off")
        .unwrap();
    assert_eq!(server.seen().len(), 1);
    let model = Hub::new(offline, cat).resolve("off").unwrap();
    assert_eq!(
        std::fs::read(model.file("model.onnx").unwrap()).unwrap(),
        bytes
    );
    assert_eq!(server.seen().len(), 1, "a cached model needs no network");
}

#[test]
fn remove_frees_only_blobs_no_other_model_uses() {
    let server = TestServer::start();
    let shared = fixture_bytes(4_000, 14);
    let only_a = fixture_bytes(6_000, 15);
    let only_b = fixture_bytes(8_000, 16);
    server.serve("/shared", &shared);
    server.serve("/a", &only_a);
    server.serve("/b", &only_b);
    let home = tempfile::tempdir().unwrap();
    let hub = Hub::new(
        test_config(home.path()),
        catalog(vec![
            entry(
                "a",
                vec![
                    file_spec(
                        "tokenizer.json",
                        &shared,
                        vec![https(server.url("/shared"))],
                    ),
                    file_spec("model.onnx", &only_a, vec![https(server.url("/a"))]),
                ],
            ),
            entry(
                "b",
                vec![
                    file_spec(
                        "tokenizer.json",
                        &shared,
                        vec![https(server.url("/shared"))],
                    ),
                    file_spec("model.onnx", &only_b, vec![https(server.url("/b"))]),
                ],
            ),
        ]),
    );
    hub.pull("a").unwrap();
    hub.pull("b").unwrap();
    assert_eq!(server.gets("/shared"), 1, "a shared blob is fetched once");
    assert_eq!(blob_files(home.path()).len(), 3);

    assert_eq!(hub.remove("a").unwrap(), 6_000);
    assert!(!home.path().join("models/a").exists());
    assert_eq!(blob_files(home.path()).len(), 2);
    let b = hub.resolve("b").unwrap();
    assert_eq!(
        std::fs::read(b.file("tokenizer.json").unwrap()).unwrap(),
        shared
    );

    assert_eq!(hub.remove("b").unwrap(), 12_000);
    assert!(blob_files(home.path()).is_empty());
    assert_eq!(hub.remove("b").unwrap(), 0);
    assert!(matches!(
        hub.remove("nope"),
        Err(HubError::UnknownModel { .. })
    ));
    assert!(matches!(
        hub.remove("../../etc"),
        Err(HubError::UnknownModel { .. })
    ));
}

#[test]
fn status_reports_partial_and_complete_models_including_ones_gone_from_the_catalog() {
    let server = TestServer::start();
    let one = fixture_bytes(1_000, 17);
    let two = fixture_bytes(2_000, 18);
    server.serve("/one", &one);
    let home = tempfile::tempdir().unwrap();
    let old = entry(
        "old",
        vec![file_spec(
            "model.onnx",
            &one,
            vec![https(server.url("/one"))],
        )],
    );
    let partial = entry(
        "partial",
        vec![
            file_spec("model.onnx", &one, vec![https(server.url("/one"))]),
            file_spec("tokenizer.json", &two, vec![https(server.url("/two"))]),
        ],
    );
    Hub::new(test_config(home.path()), catalog(vec![old]))
        .pull("old")
        .unwrap();

    let hub = Hub::new(test_config(home.path()), catalog(vec![partial]));
    assert!(hub.pull("partial").is_err(), "/two is not served");
    let status = hub.status();
    assert_eq!(status.len(), 2);
    assert_eq!(status[0].id, "partial");
    assert_eq!(
        (status[0].total_size, status[0].cached_bytes),
        (3_000, 1_000)
    );
    assert!(!status[0].complete && status[0].in_catalog);
    assert_eq!(status[1].id, "old");
    assert!(status[1].complete && !status[1].in_catalog);

    // A model cached from an older catalog still resolves by its id.
    let old = hub.resolve("old").unwrap();
    assert_eq!(std::fs::read(old.file("model.onnx").unwrap()).unwrap(), one);
}

#[test]
fn a_hub_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Hub>();
    shareable::<tessera_hub::LocalModel>();
    shareable::<HubError>();
}

#[test]
fn a_partial_download_is_dropped_once_another_source_delivers() {
    let server = TestServer::start();
    let bytes = fixture_bytes(50_000, 20);
    server.serve("/cut", &bytes);
    server.cut_first("/cut", 10_000, 100);
    let home = tempfile::tempdir().unwrap();
    let local = home.path().join("local-copy.bin");
    std::fs::write(&local, &bytes).unwrap();
    let mut config = test_config(home.path());
    config.retries = 1;
    let hub = Hub::new(
        config,
        catalog(vec![entry(
            "p",
            vec![file_spec(
                "model.bin",
                &bytes,
                vec![
                    https(server.url("/cut")),
                    tessera_hub::Source::Path { path: local },
                ],
            )],
        )]),
    );
    hub.pull("p").unwrap();
    assert_eq!(server.gets("/cut"), 2);
    assert_eq!(
        blob_files(home.path()).len(),
        1,
        "{:?}",
        blob_files(home.path())
    );
}

#[test]
fn unknown_names_suggest_close_catalog_ids() {
    let home = tempfile::tempdir().unwrap();
    let hub = Hub::new(test_config(home.path()), Catalog::builtin().unwrap());
    let err = hub.resolve("whisper-bsae").unwrap_err();
    let HubError::UnknownModel { suggestions, .. } = &err else {
        panic!("expected an unknown model, got {err:?}");
    };
    assert_eq!(suggestions, &["whisper-base"]);
    assert!(
        err.to_string().contains("did you mean whisper-base?"),
        "{err}"
    );
}

#[test]
fn resolve_detects_a_local_folder() {
    let home = tempfile::tempdir().unwrap();
    let folder = tempfile::tempdir().unwrap();
    std::fs::write(folder.path().join("model.gguf"), b"GGUF").unwrap();
    let hub = Hub::new(test_config(home.path()), Catalog::builtin().unwrap());
    let model = hub.resolve(folder.path().to_str().unwrap()).unwrap();
    assert_eq!(model.engine, tessera_core::EngineKind::Gguf);
}

#[test]
fn a_model_file_that_is_missing_is_named_with_its_model() {
    let server = TestServer::start();
    let bytes = fixture_bytes(500, 19);
    server.serve("/x", &bytes);
    let home = tempfile::tempdir().unwrap();
    let hub = Hub::new(
        test_config(home.path()),
        catalog(vec![entry(
            "x",
            vec![file_spec(
                "model.onnx",
                &bytes,
                vec![https(server.url("/x"))],
            )],
        )]),
    );
    let model = hub.pull("x").unwrap();
    let err = model.file("tokenizer.json").unwrap_err().to_string();
    assert!(err.contains("model x has no file tokenizer.json"), "{err}");
    assert_eq!(
        model.file_with_extension("onnx").unwrap(),
        model.dir.join("model.onnx")
    );
}
