//! Local files and folders used as models without a catalog entry: the engine and the file order
//! come from the file names; the task is left to the task crate.

use std::fs;
use std::path::{Path, PathBuf};

use tessera_core::{EngineKind, Task};
use tessera_hub::{HubError, LocalModel, detect};

fn write(dir: &Path, name: &str, text: &str) {
    if let Some(parent) = dir.join(name).parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(dir.join(name), text).unwrap();
}

/// The listed file names, in order.
fn names(model: &LocalModel) -> Vec<String> {
    model
        .files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn an_onnx_folder_lists_its_onnx_files_first_and_leaves_task_and_options_open() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "tokenizer.json", "{}");
    write(dir.path(), "model.onnx", "onnx");
    write(dir.path(), "config.json", r#"{"hidden_size": 384}"#);
    write(
        dir.path(),
        "sentence_bert_config.json",
        r#"{"max_seq_length": 256}"#,
    );
    write(
        dir.path(),
        "1_Pooling/config.json",
        r#"{"pooling_mode_mean_tokens": true}"#,
    );
    write(dir.path(), ".hidden", "x");
    let model = detect(dir.path()).unwrap();
    assert_eq!((model.task, model.engine), (None, EngineKind::Onnx));
    assert_eq!(
        names(&model),
        [
            "model.onnx",
            "config.json",
            "sentence_bert_config.json",
            "tokenizer.json"
        ]
    );
    assert!(model.options.is_empty(), "{:?}", model.options);
    assert!(model.file("tokenizer.json").is_ok());
    // Sub-folders are not listed but are reachable through the folder.
    assert!(model.dir.join("1_Pooling/config.json").is_file());

    // The .onnx file alone is listed alone, and files beside it are still found.
    let single = detect(&dir.path().join("model.onnx")).unwrap();
    assert_eq!((single.task, single.engine), (None, EngineKind::Onnx));
    assert_eq!(single.id, "model");
    assert_eq!(single.files, [dir.path().join("model.onnx")]);
    assert!(single.file("tokenizer.json").is_ok());
}

#[test]
fn every_onnx_file_comes_first_sorted() {
    let ocr = tempfile::tempdir().unwrap();
    write(ocr.path(), "rec.onnx", "onnx");
    write(ocr.path(), "det.onnx", "onnx");
    write(ocr.path(), "keys.txt", "a");
    write(ocr.path(), "cls.onnx", "onnx");
    let model = detect(ocr.path()).unwrap();
    assert_eq!(model.engine, EngineKind::Onnx);
    assert_eq!(
        names(&model),
        ["cls.onnx", "det.onnx", "rec.onnx", "keys.txt"]
    );

    // Whatever the onnx file is called, and with nothing beside it.
    for name in ["mystery.onnx", "silero_vad.onnx", "voice.onnx"] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), name, "onnx");
        let model = detect(dir.path()).unwrap();
        assert_eq!((model.task, model.engine), (None, EngineKind::Onnx));
        assert_eq!(names(&model), [name]);
    }
}

#[test]
fn a_gguf_file_or_folder_is_gguf() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "SmolLM2.Q4_1.gguf", "GGUF");
    let model = detect(&dir.path().join("SmolLM2.Q4_1.gguf")).unwrap();
    assert_eq!((model.task, model.engine), (None, EngineKind::Gguf));
    assert_eq!(model.id, "SmolLM2.Q4_1");
    assert_eq!(model.dir, dir.path());
    assert!(model.file_with_extension("gguf").is_ok());

    write(dir.path(), "README.md", "hi");
    let folder = detect(dir.path()).unwrap();
    assert_eq!(folder.engine, EngineKind::Gguf);
    assert_eq!(names(&folder), ["SmolLM2.Q4_1.gguf", "README.md"]);
}

#[test]
fn split_ggufs_start_with_the_first_part_and_several_others_are_refused() {
    let split = tempfile::tempdir().unwrap();
    write(split.path(), "m-00002-of-00002.gguf", "GGUF");
    write(split.path(), "m-00001-of-00002.gguf", "GGUF");
    let model = detect(split.path()).unwrap();
    assert_eq!(
        names(&model),
        ["m-00001-of-00002.gguf", "m-00002-of-00002.gguf"]
    );

    let several = tempfile::tempdir().unwrap();
    write(several.path(), "a.gguf", "GGUF");
    write(several.path(), "b.gguf", "GGUF");
    let err = detect(several.path()).unwrap_err().to_string();
    assert!(
        err.contains("a.gguf, b.gguf") && err.contains("point at"),
        "{err}"
    );
}

#[test]
fn a_hugging_face_folder_is_candle_with_its_weights_first() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "config.json",
        r#"{"architectures": ["BertModel"]}"#,
    );
    write(dir.path(), "model-2.safetensors", "st");
    write(dir.path(), "model-1.safetensors", "st");
    write(dir.path(), "tokenizer.json", "{}");
    let model = detect(dir.path()).unwrap();
    assert_eq!((model.task, model.engine), (None, EngineKind::Candle));
    assert_eq!(
        names(&model),
        [
            "model-1.safetensors",
            "model-2.safetensors",
            "config.json",
            "tokenizer.json"
        ]
    );
    assert!(model.options.is_empty());
}

#[test]
fn half_a_hugging_face_folder_says_what_is_missing() {
    let config_only = tempfile::tempdir().unwrap();
    write(
        config_only.path(),
        "config.json",
        r#"{"architectures": ["BertModel"]}"#,
    );
    let err = detect(config_only.path()).unwrap_err().to_string();
    assert!(
        err.contains("no *.safetensors") && err.contains("config.json"),
        "{err}"
    );

    let weights_only = tempfile::tempdir().unwrap();
    write(weights_only.path(), "model.safetensors", "st");
    let err = detect(weights_only.path()).unwrap_err().to_string();
    assert!(
        err.contains("model.safetensors") && err.contains("no config.json"),
        "{err}"
    );
}

#[test]
fn a_ctranslate2_folder_lists_the_model_and_its_vocabulary_first() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "model.bin", "ct2");
    write(dir.path(), "vocabulary.txt", "a\nb\n");
    write(dir.path(), "config.json", r#"{"alignment_heads": []}"#);
    write(dir.path(), "tokenizer.json", "{}");
    let model = detect(dir.path()).unwrap();
    assert_eq!((model.task, model.engine), (None, EngineKind::Ctranslate2));
    assert_eq!(
        names(&model),
        [
            "model.bin",
            "vocabulary.txt",
            "config.json",
            "tokenizer.json"
        ]
    );

    let no_vocabulary = tempfile::tempdir().unwrap();
    write(no_vocabulary.path(), "model.bin", "ct2");
    let err = detect(no_vocabulary.path()).unwrap_err().to_string();
    assert!(err.contains("no vocabulary.txt"), "{err}");
}

#[test]
fn a_pulled_model_folder_keeps_its_catalog_task() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = serde_json::json!({
        "id": "x",
        "task": "vad",
        "engine": "onnx",
        "description": "d",
        "license": "MIT",
        "idle_unload": "5m",
        "files": [{
            "name": "model.onnx",
            "size": 4,
            "sha256": "a".repeat(64),
            "sources": [{ "kind": "https", "url": "https://example.com/m" }],
        }],
    });
    write(dir.path(), ".tessera-model.json", &manifest.to_string());
    write(dir.path(), "model.onnx", "onnx");
    let model = detect(dir.path()).unwrap();
    assert_eq!((model.id.as_str(), model.task), ("x", Some(Task::Vad)));
    assert_eq!(model.files, [PathBuf::from(dir.path()).join("model.onnx")]);
}

#[test]
fn an_unknown_folder_or_file_says_what_was_found_and_what_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "notes.txt", "hello");
    write(dir.path(), "weights.pt", "torch");
    let err = detect(dir.path()).unwrap_err();
    assert!(matches!(err, HubError::Detect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("notes.txt, weights.pt"), "{message}");
    assert!(
        message.contains(".gguf") && message.contains(".onnx") && message.contains("safetensors"),
        "{message}"
    );

    let err = detect(&dir.path().join("weights.pt"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("weights.pt is not a model file"), "{err}");

    let missing = detect(&dir.path().join("nothing-here")).unwrap_err();
    assert!(matches!(missing, HubError::Io { .. }), "{missing:?}");
}
