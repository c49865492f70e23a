//! Local files and folders used as models without a catalog entry.

use std::fs;
use std::path::Path;

use tessera_core::{EngineKind, Task};
use tessera_hub::{HubError, detect};

fn write(dir: &Path, name: &str, text: &str) {
    if let Some(parent) = dir.join(name).parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(dir.join(name), text).unwrap();
}

#[test]
fn an_onnx_file_beside_a_tokenizer_is_an_embedding_model() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "model.onnx", "onnx");
    write(dir.path(), "tokenizer.json", "{}");
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
    let model = detect(dir.path()).unwrap();
    assert_eq!((model.task, model.engine), (Task::Embed, EngineKind::Onnx));
    assert_eq!(model.files[0], dir.path().join("model.onnx"));
    assert_eq!(model.options["max_tokens"], 256);
    assert_eq!(model.options["pooling"], "mean");
    assert_eq!(model.options["dimensions"], 384);
    assert!(model.file("tokenizer.json").is_ok());

    // The .onnx file alone finds the same tokenizer beside it.
    let single = detect(&dir.path().join("model.onnx")).unwrap();
    assert_eq!(
        (single.task, single.engine),
        (Task::Embed, EngineKind::Onnx)
    );
    assert!(single.file("tokenizer.json").is_ok());
}

#[test]
fn a_gguf_file_is_a_chat_model() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "SmolLM2.Q4_1.gguf", "GGUF");
    let model = detect(&dir.path().join("SmolLM2.Q4_1.gguf")).unwrap();
    assert_eq!((model.task, model.engine), (Task::Chat, EngineKind::Gguf));
    assert_eq!(model.id, "SmolLM2.Q4_1");
    assert_eq!(model.dir, dir.path());
    assert!(model.file_with_extension("gguf").is_ok());
}

#[test]
fn a_bert_folder_is_a_candle_embedding_model() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "config.json",
        r#"{"architectures": ["BertModel"]}"#,
    );
    write(dir.path(), "model.safetensors", "st");
    write(dir.path(), "tokenizer.json", "{}");
    let model = detect(dir.path()).unwrap();
    assert_eq!(
        (model.task, model.engine),
        (Task::Embed, EngineKind::Candle)
    );
    assert_eq!(model.files[0], dir.path().join("model.safetensors"));
}

#[test]
fn a_whisper_config_is_transcription_and_a_bert_without_weights_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "config.json",
        r#"{"architectures": ["WhisperForConditionalGeneration"]}"#,
    );
    write(dir.path(), "model.safetensors", "st");
    write(dir.path(), "tokenizer.json", "{}");
    assert_eq!(detect(dir.path()).unwrap().task, Task::Transcribe);

    let bare = tempfile::tempdir().unwrap();
    write(
        bare.path(),
        "config.json",
        r#"{"architectures": ["BertModel"]}"#,
    );
    let err = detect(bare.path()).unwrap_err().to_string();
    assert!(
        err.contains("safetensors") && err.contains("tokenizer.json"),
        "{err}"
    );
}

#[test]
fn a_ctranslate2_folder_is_a_transcription_model() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "model.bin", "ct2");
    write(dir.path(), "vocabulary.txt", "a\nb\n");
    write(dir.path(), "config.json", r#"{"alignment_heads": []}"#);
    write(dir.path(), "tokenizer.json", "{}");
    let model = detect(dir.path()).unwrap();
    assert_eq!(
        (model.task, model.engine),
        (Task::Transcribe, EngineKind::Ctranslate2)
    );
}

#[test]
fn onnx_folders_without_a_tokenizer_are_told_apart_by_their_files() {
    let piper = tempfile::tempdir().unwrap();
    write(piper.path(), "voice.onnx", "onnx");
    write(piper.path(), "voice.onnx.json", "{}");
    assert_eq!(detect(piper.path()).unwrap().task, Task::Speech);

    let ocr = tempfile::tempdir().unwrap();
    write(ocr.path(), "det.onnx", "onnx");
    write(ocr.path(), "rec.onnx", "onnx");
    write(ocr.path(), "cls.onnx", "onnx");
    let model = detect(ocr.path()).unwrap();
    assert_eq!(model.task, Task::Ocr);
    assert_eq!(model.files.len(), 3);

    let vad = tempfile::tempdir().unwrap();
    write(vad.path(), "silero_vad.onnx", "onnx");
    assert_eq!(detect(vad.path()).unwrap().task, Task::Vad);

    let unknown = tempfile::tempdir().unwrap();
    write(unknown.path(), "mystery.onnx", "onnx");
    let err = detect(unknown.path()).unwrap_err().to_string();
    assert!(
        err.contains("mystery.onnx") && err.contains("tokenizer.json"),
        "{err}"
    );
}

#[test]
fn an_unknown_folder_says_what_was_found_and_what_is_needed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "notes.txt", "hello");
    write(dir.path(), "weights.pt", "torch");
    let err = detect(dir.path()).unwrap_err();
    assert!(matches!(err, HubError::Detect { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("notes.txt, weights.pt"), "{message}");
    assert!(
        message.contains(".gguf") && message.contains("tokenizer.json"),
        "{message}"
    );

    let missing = detect(&dir.path().join("nothing-here")).unwrap_err();
    assert!(matches!(missing, HubError::Io { .. }), "{missing:?}");
}
