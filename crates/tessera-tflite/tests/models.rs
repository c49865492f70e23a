//! Conversion of the real MediaPipe pose models.
//!
//! Tests cannot download, so they read the models from the folder named by
//! `TESSERA_TFLITE_FIXTURES`, by default `$TESSERA_HOME/fixtures/mediapipe-pose` (or
//! `~/.cache/tessera/fixtures/mediapipe-pose`), which `scripts/fetch-models.sh` fills from the npm
//! package `@mediapipe/pose` (through `tests/fetch_fixtures.sh DIR`). Missing, these tests fail: a
//! silent skip would pass CI without checking anything. Set `TESSERA_TFLITE_ONNX_OUT` to a folder
//! to also write the converted models there, for `tests/compare.py`.

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use prost::Message;
use tessera_tflite::onnx::{GraphProto, ModelProto, data_type};
use tessera_tflite::{ConvertError, TensorType, convert, inspect};

fn fixture(name: &str) -> Vec<u8> {
    let dir = match std::env::var_os("TESSERA_TFLITE_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("TESSERA_HOME")
                .filter(|h| !h.is_empty())
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tessera"))
                })
                .expect("HOME or TESSERA_HOME");
            home.join("fixtures/mediapipe-pose")
        }
    };
    let path = dir.join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read fixture {}: {e}; run scripts/fetch-models.sh (or \
             crates/tessera-tflite/tests/fetch_fixtures.sh DIR and set TESSERA_TFLITE_FIXTURES=DIR)",
            path.display()
        )
    })
}

/// ONNX operators a converted pose model may contain.
const ONNX_OPS: &[&str] = &[
    "Transpose",
    "Conv",
    "Clip",
    "Relu",
    "Add",
    "Pad",
    "MaxPool",
    "Resize",
    "Reshape",
    "Concat",
    "Sigmoid",
    "DepthToSpace",
];

struct Expect {
    file: &'static str,
    input: (&'static str, [i64; 4]),
    outputs: &'static [(&'static str, &'static [i64])],
    tflite_ops: &'static [&'static str],
}

const DETECTOR: Expect = Expect {
    file: "pose_detection.tflite",
    input: ("input_1", [1, 224, 224, 3]),
    outputs: &[("Identity", &[1, 2254, 12]), ("Identity_1", &[1, 2254, 1])],
    tflite_ops: &[
        "ADD",
        "CONCATENATION",
        "CONV_2D",
        "DENSIFY",
        "DEPTHWISE_CONV_2D",
        "DEPTH_TO_SPACE",
        "DEQUANTIZE",
        "PAD",
        "RESHAPE",
        "RESIZE_BILINEAR",
    ],
};

const LANDMARK_OUTPUTS: &[(&str, &[i64])] = &[
    ("Identity", &[1, 195]),
    ("Identity_1", &[1, 1]),
    ("Identity_2", &[1, 256, 256, 1]),
    ("Identity_3", &[1, 64, 64, 39]),
    ("Identity_4", &[1, 117]),
];

const LANDMARK_OPS: &[&str] = &[
    "ADD",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "DEQUANTIZE",
    "LOGISTIC",
    "MAX_POOL_2D",
    "PAD",
    "RESHAPE",
    "RESIZE_BILINEAR",
];

fn landmark(file: &'static str) -> Expect {
    Expect {
        file,
        input: ("input_1", [1, 256, 256, 3]),
        outputs: LANDMARK_OUTPUTS,
        tflite_ops: LANDMARK_OPS,
    }
}

/// Every node input is a graph input, an initializer or an earlier node's output; every
/// output is produced.
fn assert_valid_graph(g: &GraphProto) {
    let mut known: HashSet<&str> = g
        .input
        .iter()
        .map(|v| v.name.as_str())
        .chain(g.initializer.iter().map(|t| t.name.as_str()))
        .collect();
    for n in &g.node {
        assert!(
            ONNX_OPS.contains(&n.op_type.as_str()),
            "unexpected node {}",
            n.op_type
        );
        for i in &n.input {
            assert!(
                i.is_empty() || known.contains(i.as_str()),
                "{} reads undefined {i}",
                n.name
            );
        }
        for o in &n.output {
            assert!(known.insert(o), "{o} is defined twice");
        }
    }
    for o in &g.output {
        assert!(
            known.contains(o.name.as_str()),
            "output {} is never produced",
            o.name
        );
    }
    for t in &g.initializer {
        assert!(
            [data_type::FLOAT, data_type::INT64].contains(&t.data_type),
            "initializer {} has type {}: weights should be dense f32",
            t.name,
            t.data_type
        );
    }
}

fn check(e: &Expect) {
    let bytes = fixture(e.file);

    let info = inspect(&bytes).expect("inspects");
    assert_eq!(info.subgraphs, 1);
    assert_eq!(info.inputs.len(), 1);
    assert_eq!(info.inputs[0].name, e.input.0);
    assert_eq!(info.inputs[0].shape, e.input.1);
    assert_eq!(info.inputs[0].dtype, TensorType::Float32);
    let outs: Vec<(&str, &[i64])> = info
        .outputs
        .iter()
        .map(|t| (t.name.as_str(), t.shape.as_slice()))
        .collect();
    assert_eq!(outs, e.outputs);
    let kinds: BTreeSet<&str> = info.operators.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(kinds, e.tflite_ops.iter().copied().collect::<BTreeSet<_>>());
    assert!(info.unsupported_operators().is_empty());

    let start = std::time::Instant::now();
    let onnx = convert(&bytes).unwrap_or_else(|err| panic!("{}: {err}", e.file));
    eprintln!(
        "{}: converted in {:?}, {} bytes",
        e.file,
        start.elapsed(),
        onnx.len()
    );
    if let Some(dir) = std::env::var_os("TESSERA_TFLITE_ONNX_OUT") {
        let out = PathBuf::from(dir).join(e.file).with_extension("onnx");
        std::fs::write(&out, &onnx).unwrap_or_else(|err| panic!("write {}: {err}", out.display()));
    }

    let model = ModelProto::decode(onnx.as_slice()).expect("a valid ModelProto");
    assert_eq!(model.ir_version, tessera_tflite::IR_VERSION);
    assert_eq!(model.opset_import.len(), 1);
    assert_eq!(model.opset_import[0].domain, "");
    assert_eq!(model.opset_import[0].version, tessera_tflite::OPSET);
    let g = model.graph.expect("a graph");
    assert_eq!(g.input.len(), 1);
    assert_eq!(g.input[0].name, e.input.0);
    assert_eq!(
        g.input[0].tensor_shape(),
        Some((data_type::FLOAT, e.input.1.to_vec()))
    );
    let outs: Vec<(String, Vec<i64>)> = g
        .output
        .iter()
        .map(|o| {
            let (ty, shape) = o.tensor_shape().expect("a tensor output");
            assert_eq!(ty, data_type::FLOAT);
            (o.name.clone(), shape)
        })
        .collect();
    let expected: Vec<(String, Vec<i64>)> = e
        .outputs
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_vec()))
        .collect();
    assert_eq!(outs, expected);
    assert_valid_graph(&g);
    // Folded operators leave no trace; every convolution became one Conv.
    let convs = info
        .operators
        .iter()
        .filter(|o| o.name == "CONV_2D" || o.name == "DEPTHWISE_CONV_2D")
        .count();
    assert_eq!(g.node.iter().filter(|n| n.op_type == "Conv").count(), convs);
}

#[test]
fn pose_detection() {
    check(&DETECTOR);
}

#[test]
fn pose_landmark_lite() {
    check(&landmark("pose_landmark_lite.tflite"));
}

#[test]
fn pose_landmark_full() {
    check(&landmark("pose_landmark_full.tflite"));
}

#[test]
fn pose_landmark_heavy() {
    check(&landmark("pose_landmark_heavy.tflite"));
}

#[test]
fn truncated_real_models_are_errors() {
    let bytes = fixture("pose_detection.tflite");
    for k in 0..32 {
        let cut = &bytes[..bytes.len() * k / 32];
        match inspect(cut) {
            Err(ConvertError::NotTflite(_) | ConvertError::Corrupt { .. }) => {}
            other => panic!("a {k}/32 prefix gave {other:?}"),
        }
    }
    // Cutting only the weights away still fails at conversion.
    let cut = &bytes[..bytes.len() - 1024];
    assert!(convert(cut).is_err());
}
