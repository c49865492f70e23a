//! `OnnxModel` on a real graph: MiniLM int8, as exported for sentence-transformers.

mod common;

use common::{HIDDEN, LENGTHS, batch, max_diff, model_file};
use tessera_engines::Device;
use tessera_engines::EngineError;
use tessera_engines::onnx::{ElementType, OnnxModel, SessionConfig, TensorInput};

fn load() -> OnnxModel {
    let path = model_file("all-minilm-l6-v2-int8", "model.onnx");
    let config = SessionConfig {
        device: Device::Cpu,
        ..SessionConfig::default()
    };
    OnnxModel::load(&path, &config).expect("load MiniLM")
}

#[test]
fn describes_the_graph() {
    let model = load();
    assert_eq!(model.device(), Device::Cpu);
    for name in ["input_ids", "attention_mask", "token_type_ids"] {
        assert!(model.has_input(name), "no {name} in {:?}", model.inputs());
        let info = model.input(name).unwrap();
        assert_eq!(info.element_type, ElementType::I64, "{info}");
        assert_eq!(info.rank(), 2, "{info}");
    }
    assert!(!model.has_input("pixel_values"));
    let hidden = &model.outputs()[0];
    assert_eq!(hidden.element_type, ElementType::F32, "{hidden}");
    assert_eq!(hidden.shape.len(), 3, "{hidden}");
    assert_eq!(hidden.shape[2], Some(HIDDEN), "{hidden}");
}

#[test]
fn runs_a_padded_batch() {
    let mut model = load();
    let (ids, type_ids, mask) = batch();
    let to_i64 = |v: &[u32]| v.iter().map(|&x| i64::from(x)).collect::<Vec<_>>();
    let (ids, type_ids, mask) = (to_i64(&ids), to_i64(&type_ids), to_i64(&mask));
    let outputs = model
        .run(&[
            ("input_ids", TensorInput::new([2, 4], &ids)),
            ("attention_mask", TensorInput::new([2, 4], &mask)),
            ("token_type_ids", TensorInput::new([2, 4], &type_ids)),
        ])
        .unwrap();
    assert_eq!(outputs.len(), model.outputs().len());
    let name = model.outputs()[0].name.clone();
    let hidden = outputs.get(&name).unwrap();
    assert_eq!(hidden.shape(), &[2, 4, HIDDEN]);
    let error = hidden.i64().unwrap_err().to_string();
    assert!(error.contains(&name) && error.contains("f32"), "{error}");
    let batched = hidden.f32().unwrap();
    assert!(batched.iter().all(|v| v.is_finite()));

    // The second row alone, unpadded, gives the same hidden states for its real tokens.
    let len = LENGTHS[1];
    let row = |v: &[i64]| v[4..4 + len].to_vec();
    let outputs = model
        .run(&[
            ("input_ids", TensorInput::new([1, len], &row(&ids))),
            ("attention_mask", TensorInput::new([1, len], &row(&mask))),
            (
                "token_type_ids",
                TensorInput::new([1, len], &row(&type_ids)),
            ),
        ])
        .unwrap();
    let alone = outputs.at(0).unwrap().f32().unwrap();
    let padded = &batched[4 * HIDDEN..(4 + len) * HIDDEN];
    assert!(
        max_diff(padded, alone) < 1e-3,
        "{}",
        max_diff(padded, alone)
    );
}

#[test]
fn a_wrong_input_is_reported_with_the_model_and_the_name() {
    let mut model = load();
    let ids = vec![101_i64, 102];
    let floats = vec![1.0_f32, 1.0];
    let cases = [
        ("input_idz", TensorInput::new([1, 2], &ids), "no such input"),
        (
            "input_ids",
            TensorInput::new([1, 3], &ids),
            "3 elements but 2",
        ),
        ("input_ids", TensorInput::new([2], &ids), "shape [?, ?]"),
        (
            "attention_mask",
            TensorInput::new([1, 2], &floats),
            "takes i64",
        ),
    ];
    for (name, input, expected) in cases {
        let error = model.run(&[(name, input)]).unwrap_err();
        assert!(matches!(error, EngineError::Input { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains("model.onnx"), "{message}");
        assert!(message.contains(&format!("`{name}`")), "{message}");
        assert!(message.contains(expected), "{message}");
    }
    // A missing input is ONNX Runtime's to find; it still names the model.
    let error = model
        .run(&[("input_ids", TensorInput::new([1, 2], &ids))])
        .unwrap_err();
    assert!(matches!(error, EngineError::Run { .. }), "{error:?}");
    assert!(error.to_string().contains("model.onnx"), "{error}");
}

#[test]
fn a_missing_file_is_a_load_error_naming_it() {
    let error = OnnxModel::load(
        "/nonexistent/model.onnx".as_ref(),
        &SessionConfig::default(),
    )
    .unwrap_err();
    assert!(matches!(error, EngineError::Load { .. }), "{error:?}");
    assert!(
        error.to_string().contains("/nonexistent/model.onnx"),
        "{error}"
    );
}
