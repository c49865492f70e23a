//! The built-in catalog: it parses, and every entry is complete enough to pull.

use std::collections::HashSet;

use tessera_core::{EngineKind, Task};
use tessera_hub::{Catalog, Source};

#[test]
fn the_builtin_catalog_is_complete_and_consistent() {
    let catalog = Catalog::builtin().unwrap();
    assert!(catalog.entries().len() >= 10);
    let mut ids = HashSet::new();
    for entry in catalog.entries() {
        assert!(ids.insert(entry.id.clone()), "duplicate id {}", entry.id);
        assert!(!entry.files.is_empty(), "{} has no files", entry.id);
        assert!(!entry.description.is_empty() && !entry.license.is_empty());
        for file in &entry.files {
            assert_eq!(file.sha256.len(), 64, "{}/{}", entry.id, file.name);
            assert!(
                file.sha256
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "{}/{}",
                entry.id,
                file.name
            );
            assert!(file.size > 0, "{}/{}", entry.id, file.name);
            assert!(!file.sources.is_empty(), "{}/{}", entry.id, file.name);
        }
        assert_eq!(
            entry.total_size(),
            entry.files.iter().map(|f| f.size).sum::<u64>()
        );
    }
}

#[test]
fn the_catalog_has_every_model_the_runtime_expects() {
    let catalog = Catalog::builtin().unwrap();
    let expect = [
        ("all-minilm-l6-v2-int8", Task::Embed, EngineKind::Onnx),
        ("all-minilm-l6-v2", Task::Embed, EngineKind::Candle),
        ("smollm2-135m-instruct", Task::Chat, EngineKind::Gguf),
        ("qwen2.5-coder-0.5b-instruct", Task::Chat, EngineKind::Gguf),
        ("whisper-base", Task::Transcribe, EngineKind::Ctranslate2),
        ("whisper-tiny.en", Task::Transcribe, EngineKind::Ctranslate2),
        ("piper-en-us-joe-medium", Task::Speech, EngineKind::Onnx),
        ("silero-vad", Task::Vad, EngineKind::Onnx),
        ("pp-ocrv4", Task::Ocr, EngineKind::Onnx),
        ("yolov8n-320-nudenet", Task::Detect, EngineKind::Onnx),
        ("efficientnet-lite0", Task::Classify, EngineKind::Candle),
    ];
    for (id, task, engine) in expect {
        let entry = catalog.get(id).unwrap_or_else(|| panic!("{id} is missing"));
        assert_eq!((entry.task, entry.engine), (task, engine), "{id}");
    }
    let minilm = catalog.get("all-minilm-l6-v2-int8").unwrap();
    assert_eq!(minilm.options["max_tokens"], 256);
    assert_eq!(minilm.options["pooling"], "mean");
    assert_eq!(minilm.options["normalize"], true);
    assert_eq!(minilm.options["dimensions"], 384);

    let qwen = catalog.get("qwen2.5-coder-0.5b-instruct").unwrap();
    assert_eq!(qwen.total_size(), 491_400_064);
    let Source::Pip { parts } = &qwen.files[0].sources[0] else {
        panic!("qwen comes from pip");
    };
    assert_eq!(parts.len(), 6);

    // EfficientNet-Lite0's .pth is converted at pull time; its preprocessing is TensorFlow's.
    let lite = catalog.get("efficientnet-lite0").unwrap();
    let pth = lite.file("model.pth").unwrap();
    assert_eq!(
        pth.convert,
        Some(tessera_hub::FileConversion::PthToSafetensors)
    );
    assert_eq!(
        lite.options["mean"],
        serde_json::json!([127.0, 127.0, 127.0])
    );
    assert_eq!(
        lite.options["std"],
        serde_json::json!([128.0, 128.0, 128.0])
    );
    assert_eq!(lite.options["image_size"], 224);
    assert!(
        lite.files
            .iter()
            .all(|f| f.name == "model.pth" || f.convert.is_none())
    );

    let whisper = catalog.get("whisper-base").unwrap();
    assert_eq!(whisper.file("model.bin").unwrap().size, 145_217_532);

    // The pip source is preferred and Hugging Face is the fallback for the MiniLM files.
    let tokenizer = catalog
        .get("all-minilm-l6-v2")
        .unwrap()
        .file("tokenizer.json")
        .unwrap();
    assert!(matches!(tokenizer.sources[0], Source::Pip { .. }));
    assert!(
        matches!(&tokenizer.sources[1], Source::Hf { repo, .. } if repo == "sentence-transformers/all-MiniLM-L6-v2")
    );
}
