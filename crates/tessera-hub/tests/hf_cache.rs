//! `hf` sources reuse the Hugging Face hub cache of `huggingface_hub`: a fake cache tree built in
//! a temporary folder (refs, snapshots as symlinks to blobs), a loopback server counting requests.
#![cfg(unix)]

mod common;

use std::path::{Path, PathBuf};

use common::*;
use tessera_hub::{Hub, HubConfig, HubError, Source};

const REPO: &str = "acme/tiny-model";
const COMMIT: &str = "4f6c8e2d1b0a99887766554433221100ffeeddcc";
const FILE: &str = "onnx/model.onnx";
const URL_PATH: &str = "/acme/tiny-model/resolve/main/onnx/model.onnx";

/// Lays out `{cache}/models--acme--tiny-model` the way `huggingface_hub` does: `refs/{revision}`
/// (when given) holding the commit, `snapshots/{commit}/{FILE}` a relative symlink to
/// `../../../blobs/<etag>` (one level deeper for the `onnx/` folder), the blob holding `bytes`.
/// Returns the blob path.
fn fake_hf_cache(cache: &Path, revision: Option<&str>, bytes: &[u8]) -> PathBuf {
    let repo_dir = cache.join("models--acme--tiny-model");
    let etag = sha256_hex(bytes);
    let blob = repo_dir.join("blobs").join(&etag);
    std::fs::create_dir_all(blob.parent().unwrap()).unwrap();
    std::fs::write(&blob, bytes).unwrap();
    if let Some(revision) = revision {
        std::fs::create_dir_all(repo_dir.join("refs")).unwrap();
        std::fs::write(repo_dir.join("refs").join(revision), COMMIT).unwrap();
    }
    let link = repo_dir.join("snapshots").join(COMMIT).join(FILE);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(format!("../../../blobs/{etag}"), &link).unwrap();
    assert_eq!(
        std::fs::read(&link).unwrap(),
        bytes,
        "the fixture link resolves"
    );
    blob
}

fn hf(revision: &str) -> Source {
    Source::Hf {
        repo: REPO.into(),
        file: FILE.into(),
        revision: revision.into(),
    }
}

fn config(home: &Path, cache: &Path, server: &TestServer) -> HubConfig {
    let mut config = test_config(home);
    config.hf_endpoint = server.base();
    config.hf_cache = Some(cache.to_path_buf());
    config
}

#[test]
fn an_hf_file_in_the_hugging_face_cache_needs_no_network_online_or_offline() {
    let server = TestServer::start();
    let bytes = fixture_bytes(50_000, 31);
    let hf_cache = tempfile::tempdir().unwrap();
    let blob = fake_hf_cache(hf_cache.path(), Some("main"), &bytes);
    let cat = catalog(vec![entry(
        "tiny",
        vec![file_spec("model.onnx", &bytes, vec![hf("main")])],
    )]);

    for offline in [false, true] {
        let home = tempfile::tempdir().unwrap();
        let mut config = config(home.path(), hf_cache.path(), &server);
        config.offline = offline;
        let model = Hub::new(config, cat.clone()).pull("tiny").unwrap();
        assert_eq!(
            std::fs::read(model.file("model.onnx").unwrap()).unwrap(),
            bytes,
            "offline={offline}"
        );
        assert!(
            home.path()
                .join("blobs/sha256")
                .join(sha256_hex(&bytes))
                .is_file()
        );
    }
    assert!(server.seen().is_empty(), "requests: {:?}", server.seen());
    assert_eq!(std::fs::read(&blob).unwrap(), bytes);
    let link = hf_cache
        .path()
        .join("models--acme--tiny-model/snapshots")
        .join(COMMIT)
        .join(FILE);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn a_corrupt_hugging_face_cache_file_falls_back_to_the_network_and_is_left_alone() {
    let server = TestServer::start();
    let bytes = fixture_bytes(40_000, 32);
    let corrupt = fixture_bytes(40_000, 33);
    server.serve(URL_PATH, &bytes);
    let hf_cache = tempfile::tempdir().unwrap();
    let blob = fake_hf_cache(hf_cache.path(), Some("main"), &corrupt);
    let cat = catalog(vec![entry(
        "tiny",
        vec![file_spec("model.onnx", &bytes, vec![hf("main")])],
    )]);

    let home = tempfile::tempdir().unwrap();
    let model = Hub::new(config(home.path(), hf_cache.path(), &server), cat.clone())
        .pull("tiny")
        .unwrap();
    assert_eq!(
        std::fs::read(model.file("model.onnx").unwrap()).unwrap(),
        bytes
    );
    assert_eq!(server.gets(URL_PATH), 1);
    assert_eq!(
        std::fs::read(&blob).unwrap(),
        corrupt,
        "the HF cache was changed"
    );
    let blobs = blob_files(home.path());
    assert_eq!(
        blobs,
        vec![home.path().join("blobs/sha256").join(sha256_hex(&bytes))],
        "only the verified blob is kept"
    );

    // Offline, the corrupt copy is not good enough, and the error says where it looked.
    let other_home = tempfile::tempdir().unwrap();
    let mut offline = config(other_home.path(), hf_cache.path(), &server);
    offline.offline = true;
    let err = Hub::new(offline, cat).pull("tiny").unwrap_err();
    let HubError::Offline {
        hf_cache: paths, ..
    } = &err
    else {
        panic!("expected an offline error, got {err:?}");
    };
    assert_eq!(paths.len(), 1);
    let message = err.to_string();
    assert!(message.contains("Hugging Face cache"), "{message}");
    assert!(
        message.contains(&hf_cache.path().display().to_string()),
        "{message}"
    );
    assert_eq!(server.gets(URL_PATH), 1, "offline mode sent a request");
    assert!(blob_files(other_home.path()).is_empty());
    assert_eq!(std::fs::read(&blob).unwrap(), corrupt);
}

#[test]
fn a_commit_revision_names_the_snapshot_folder_directly() {
    let server = TestServer::start();
    let bytes = fixture_bytes(30_000, 34);
    let hf_cache = tempfile::tempdir().unwrap();
    // No refs at all: only the commit itself can find the snapshot.
    fake_hf_cache(hf_cache.path(), None, &bytes);
    let cat = catalog(vec![entry(
        "pinned",
        vec![file_spec("model.onnx", &bytes, vec![hf(COMMIT)])],
    )]);

    let home = tempfile::tempdir().unwrap();
    let mut offline = config(home.path(), hf_cache.path(), &server);
    offline.offline = true;
    let model = Hub::new(offline, cat).pull("pinned").unwrap();
    assert_eq!(
        std::fs::read(model.file("model.onnx").unwrap()).unwrap(),
        bytes
    );
    assert!(server.seen().is_empty(), "requests: {:?}", server.seen());
}

#[test]
fn offline_names_the_missing_ref_in_the_hugging_face_cache() {
    let bytes = fixture_bytes(1_000, 35);
    let hf_cache = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let mut config = test_config(home.path());
    config.offline = true;
    config.hf_cache = Some(hf_cache.path().to_path_buf());
    let cat = catalog(vec![entry(
        "tiny",
        vec![file_spec("model.onnx", &bytes, vec![hf("main")])],
    )]);

    let err = Hub::new(config, cat).pull("tiny").unwrap_err();
    let message = err.to_string();
    let ref_path = hf_cache.path().join("models--acme--tiny-model/refs/main");
    assert!(
        message.contains(&ref_path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("TESSERA_OFFLINE=1"), "{message}");
    assert!(
        !home.path().join("models").exists(),
        "a failed offline pull wrote model folders"
    );
}
