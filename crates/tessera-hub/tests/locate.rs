//! Finding models by name without side effects, and keeping a server's clients inside the
//! operator's model folders.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{TestServer, catalog, entry, file_spec, fixture_bytes, https, test_config};
use tessera_core::{EngineKind, Task};
use tessera_hub::{Catalog, ErrorCategory, Hub, HubError, Scope};

fn hub(home: &Path) -> Hub {
    Hub::new(test_config(home), Catalog::builtin().unwrap())
}

/// A model folder with an ONNX model `minilm/`, a GGUF file and a non-model folder.
fn model_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir_all(dir.path().join("minilm")).unwrap();
    fs::write(dir.path().join("minilm/model.onnx"), b"onnx").unwrap();
    fs::write(dir.path().join("minilm/tokenizer.json"), b"{}").unwrap();
    fs::write(dir.path().join("smol.gguf"), b"GGUF").unwrap();
    fs::write(dir.path().join("notes.txt"), b"hi").unwrap();
    fs::create_dir_all(dir.path().join("empty")).unwrap();
    fs::create_dir_all(dir.path().join(".hidden")).unwrap();
    fs::write(dir.path().join(".hidden/model.onnx"), b"onnx").unwrap();
    dir
}

/// Asserts `spec` is an unknown model for a server whose message names no path of the machine.
fn refused(hub: &Hub, dirs: &[PathBuf], spec: &str) -> String {
    let err = hub.locate(spec, &Scope::ModelDirs(dirs)).unwrap_err();
    let HubError::UnknownModel { served, .. } = &err else {
        panic!("{spec:?}: expected an unknown model, got {err:?}");
    };
    assert!(served);
    assert_eq!(err.category(), ErrorCategory::NotFound);
    let text = err.to_string();
    assert!(text.contains("GET /v1/models"), "{text}");
    // Apart from the name itself, echoed back, nothing of the machine shows.
    let rest = text.replacen(&format!("`{spec}`"), "``", 1);
    let tmp = std::env::temp_dir().display().to_string();
    for dir in dirs {
        let shown = dir.display().to_string();
        assert!(!rest.contains(&shown), "{spec:?} reveals {shown}: {text}");
    }
    for secret in [
        "passwd",
        "hosts",
        tmp.as_str(),
        "notes.txt",
        "smol.gguf",
        "No such file",
    ] {
        assert!(!rest.contains(secret), "{spec:?} reveals {secret}: {text}");
    }
    text
}

#[test]
fn a_server_refuses_paths_outside_its_model_folders() {
    let home = tempfile::tempdir().unwrap();
    let hub = hub(home.path());
    let models = model_dir();
    let dirs = [models.path().to_path_buf()];
    let tmp = std::env::temp_dir();
    let outside = format!("{}", models.path().join("minilm").display());
    for spec in [
        "/etc",
        "/etc/passwd",
        "..",
        "../..",
        "../../etc/passwd",
        "a/../../x",
        "minilm/../..",
        "minilm/../minilm",
        "./minilm",
        ".hidden",
        ".hidden/model.onnx",
        "",
        "/",
        "minilm\\..\\..",
        "min\0ilm",
        tmp.to_str().unwrap(),
        outside.as_str(),
        "notes.txt",
        "does-not-exist",
    ] {
        refused(&hub, &dirs, spec);
    }
    // No model folders at all: only catalog ids.
    refused(&hub, &[], "minilm");
    refused(&hub, &[], "/etc");
}

#[test]
fn a_symbolic_link_out_of_a_model_folder_is_refused() {
    let home = tempfile::tempdir().unwrap();
    let hub = hub(home.path());
    let models = model_dir();
    let elsewhere = tempfile::tempdir().unwrap();
    fs::write(elsewhere.path().join("model.onnx"), b"onnx").unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(elsewhere.path(), models.path().join("escape")).unwrap();
        std::os::unix::fs::symlink("/etc", models.path().join("etc")).unwrap();
        std::os::unix::fs::symlink(
            elsewhere.path().join("model.onnx"),
            models.path().join("linked.onnx"),
        )
        .unwrap();
        // A link that stays inside is fine.
        std::os::unix::fs::symlink(models.path().join("minilm"), models.path().join("alias"))
            .unwrap();
    }
    let dirs = [models.path().to_path_buf()];
    for spec in [
        "escape",
        "escape/model.onnx",
        "etc",
        "etc/passwd",
        "linked.onnx",
    ] {
        let text = refused(&hub, &dirs, spec);
        assert!(
            !text.contains(&elsewhere.path().display().to_string()),
            "{text}"
        );
    }
    #[cfg(unix)]
    {
        let alias = hub.locate("alias", &Scope::ModelDirs(&dirs)).unwrap();
        assert!(alias.local);
        let listed = hub.model_dir_entries(&dirs);
        assert!(listed.contains(&"alias".to_string()), "{listed:?}");
        for gone in ["escape", "etc", "linked.onnx"] {
            assert!(!listed.contains(&gone.to_string()), "{listed:?}");
        }
    }
}

#[test]
fn the_message_is_the_same_whether_or_not_the_path_exists() {
    let home = tempfile::tempdir().unwrap();
    let hub = hub(home.path());
    let models = model_dir();
    let dirs = [models.path().to_path_buf()];
    let text = |spec: &str| refused(&hub, &dirs, spec).replace(spec, "<spec>");
    assert_eq!(text("/etc"), text("/etc-that-is-not-there"));
    assert_eq!(text("../.."), text("../../no/such/folder"));
    let existing = home.path().display().to_string();
    let missing = home.path().join("nothing").display().to_string();
    assert_eq!(text(&existing), text(&missing));
}

#[test]
fn a_sub_folder_or_model_file_of_a_model_folder_is_located_as_given() {
    let home = tempfile::tempdir().unwrap();
    let hub = hub(home.path());
    let models = model_dir();
    let other = tempfile::tempdir().unwrap();
    fs::create_dir_all(other.path().join("nested/bert")).unwrap();
    fs::write(other.path().join("nested/bert/config.json"), b"{}").unwrap();
    fs::write(other.path().join("nested/bert/model.safetensors"), b"st").unwrap();
    let dirs = [models.path().to_path_buf(), other.path().to_path_buf()];
    let scope = Scope::ModelDirs(&dirs);

    let minilm = hub.locate("minilm/", &scope).unwrap();
    assert_eq!(minilm.id, "minilm");
    assert!(minilm.local);
    assert_eq!((minilm.task, minilm.engine), (None, Some(EngineKind::Onnx)));
    let model = hub.materialize(&minilm).unwrap();
    assert_eq!(model.id, "minilm");
    assert_eq!(model.engine, EngineKind::Onnx);
    assert!(model.file("tokenizer.json").is_ok());

    let smol = hub.locate("smol.gguf", &scope).unwrap();
    assert_eq!(
        (smol.id.as_str(), smol.engine),
        ("smol.gguf", Some(EngineKind::Gguf))
    );
    assert_eq!(hub.materialize(&smol).unwrap().id, "smol.gguf");

    // In the second folder, nested.
    let bert = hub.locate("nested/bert", &scope).unwrap();
    assert_eq!(bert.engine, Some(EngineKind::Candle));

    // A folder that is not a model is found (the operator put it there) and materialising it
    // says why it is not a model.
    let empty = hub.locate("empty", &scope).unwrap();
    assert_eq!(empty.engine, None);
    let err = hub.materialize(&empty).unwrap_err();
    assert_eq!(err.category(), ErrorCategory::BadModel);

    assert_eq!(
        hub.model_dir_entries(&dirs),
        ["minilm", "smol.gguf"],
        "models directly under each folder; not notes.txt, empty/, .hidden/ or nested/"
    );
    assert!(hub.model_dir_entries(&[]).is_empty());
    assert!(
        hub.model_dir_entries(&[home.path().join("missing")])
            .is_empty()
    );
}

#[test]
fn catalog_ids_are_located_in_every_scope_without_the_network() {
    let home = tempfile::tempdir().unwrap();
    let mut config = test_config(home.path());
    config.offline = true;
    let hub = Hub::new(config, Catalog::builtin().unwrap());
    for scope in [Scope::AnyPath, Scope::ModelDirs(&[])] {
        let found = hub.locate("whisper-base", &scope).unwrap();
        assert_eq!(found.id, "whisper-base");
        assert_eq!(
            (found.task, found.engine, found.local),
            (Some(Task::Transcribe), Some(EngineKind::Ctranslate2), false)
        );
    }
    assert!(
        !home.path().join("models").exists(),
        "locate touched the cache"
    );
    // Materialising needs the files, which offline mode cannot fetch.
    let found = hub.locate("whisper-base", &Scope::AnyPath).unwrap();
    let err = hub.materialize(&found).unwrap_err();
    assert_eq!(err.category(), ErrorCategory::Unavailable);
}

#[test]
fn a_model_cached_from_an_older_catalog_is_located_in_every_scope() {
    let server = TestServer::start();
    let bytes = fixture_bytes(1_000, 31);
    server.serve("/old", &bytes);
    let home = tempfile::tempdir().unwrap();
    let old = entry(
        "old",
        vec![file_spec(
            "model.onnx",
            &bytes,
            vec![https(server.url("/old"))],
        )],
    );
    Hub::new(test_config(home.path()), catalog(vec![old]))
        .pull("old")
        .unwrap();
    let hub = hub(home.path());
    for scope in [Scope::AnyPath, Scope::ModelDirs(&[])] {
        let found = hub.locate("old", &scope).unwrap();
        assert_eq!((found.id.as_str(), found.local), ("old", false));
        assert_eq!(found.task, Some(Task::Embed));
        let model = hub.materialize(&found).unwrap();
        assert_eq!(fs::read(model.file("model.onnx").unwrap()).unwrap(), bytes);
    }
    assert_eq!(
        server.gets("/old"),
        1,
        "the cached model is not fetched again"
    );
}

#[test]
fn the_cli_may_name_any_path_and_hears_about_files() {
    let home = tempfile::tempdir().unwrap();
    let hub = hub(home.path());
    let models = model_dir();
    let path = models.path().join("minilm");
    let found = hub.locate(path.to_str().unwrap(), &Scope::AnyPath).unwrap();
    assert!(found.local);
    assert_eq!(found.id, "minilm");
    assert_eq!(hub.resolve(path.to_str().unwrap()).unwrap().id, "minilm");

    let err = hub
        .resolve(models.path().join("empty").to_str().unwrap())
        .unwrap_err();
    assert!(matches!(err, HubError::Detect { .. }), "{err:?}");

    let err = hub.locate("no-such-model", &Scope::AnyPath).unwrap_err();
    assert!(matches!(err, HubError::UnknownModel { served: false, .. }));
    assert!(err.to_string().contains("tessera list"), "{err}");
}

#[test]
fn a_huge_name_is_refused_quickly_with_a_short_message() {
    let home = tempfile::tempdir().unwrap();
    let hub = hub(home.path());
    let models = model_dir();
    let dirs = [models.path().to_path_buf()];
    let huge = "whisper-base/".repeat(80_000) + &"a".repeat(1 << 20);
    let start = Instant::now();
    for scope in [Scope::AnyPath, Scope::ModelDirs(&dirs)] {
        let err = hub.locate(&huge, &scope).unwrap_err();
        let HubError::UnknownModel { suggestions, .. } = &err else {
            panic!("expected an unknown model, got {err:?}");
        };
        assert!(suggestions.is_empty());
        assert!(err.to_string().len() < 500);
    }
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
}
