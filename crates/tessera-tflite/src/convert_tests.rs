//! Conversion of small hand-built models: graph structure, attributes and weight layouts.

use prost::Message;

use crate::flatbuf::build::F;
use crate::onnx::{GraphProto, ModelProto, NodeProto, TensorProto};
use crate::testmodel::{TModel, opts};
use crate::tflite::op;
use crate::{ConvertError, convert, inspect};

fn graph(model: &TModel) -> GraphProto {
    let bytes = convert(&model.build()).expect("converts");
    let proto = ModelProto::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(proto.ir_version, 8);
    assert_eq!(proto.opset_import[0].version, 17);
    proto.graph.expect("has a graph")
}

fn op_types(g: &GraphProto) -> Vec<&str> {
    g.node.iter().map(|n| n.op_type.as_str()).collect()
}

fn node<'g>(g: &'g GraphProto, op_type: &str) -> &'g NodeProto {
    g.node
        .iter()
        .find(|n| n.op_type == op_type)
        .unwrap_or_else(|| panic!("no {op_type} node"))
}

fn ints(n: &NodeProto, name: &str) -> Vec<i64> {
    let a = n
        .attribute
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no {name}"));
    if a.r#type == crate::onnx::attribute_type::INT {
        vec![a.i]
    } else {
        a.ints.clone()
    }
}

fn string(n: &NodeProto, name: &str) -> String {
    let a = n
        .attribute
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no {name}"));
    String::from_utf8(a.s.clone()).unwrap()
}

fn init<'g>(g: &'g GraphProto, name: &str) -> &'g TensorProto {
    g.initializer
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no initializer {name}"))
}

fn f32s(t: &TensorProto) -> Vec<f32> {
    t.raw_data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn i64s(t: &TensorProto) -> Vec<i64> {
    t.raw_data
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

/// Every node input is a graph input, an initializer or an earlier node's output.
fn assert_topological(g: &GraphProto) {
    let mut known: std::collections::HashSet<&str> = g
        .input
        .iter()
        .map(|v| v.name.as_str())
        .chain(g.initializer.iter().map(|t| t.name.as_str()))
        .collect();
    for n in &g.node {
        for i in &n.input {
            assert!(
                i.is_empty() || known.contains(i.as_str()),
                "{} reads undefined {i}",
                n.name
            );
        }
        known.extend(n.output.iter().map(String::as_str));
    }
    for o in &g.output {
        assert!(
            known.contains(o.name.as_str()),
            "output {} undefined",
            o.name
        );
    }
}

/// input [1,8,8,3] -> CONV_2D 4x3x3x3 stride 2 SAME + RELU6 -> [1,4,4,4]
fn conv_model() -> TModel {
    let mut m = TModel::new();
    let x = m.tensor("image", &[1, 8, 8, 3]);
    let w: Vec<f32> = (0..4 * 3 * 3 * 3).map(|v| v as f32).collect();
    let w = m.const_f32("w", &[4, 3, 3, 3], &w);
    let b = m.const_f32("b", &[4], &[0.5, -0.5, 1.0, 0.0]);
    let y = m.tensor("features", &[1, 4, 4, 4]);
    // padding SAME, stride_w 2, stride_h 2, RELU6.
    let o = opts(vec![
        (0, F::U8(0)),
        (1, F::I32(2)),
        (2, F::I32(2)),
        (3, F::U8(3)),
    ]);
    m.op(op::CONV_2D, &[x, w, b], &[y], o);
    m.inputs = vec![x];
    m.outputs = vec![y];
    m
}

#[test]
fn conv_runs_nchw_between_edge_transposes() {
    let g = graph(&conv_model());
    assert_topological(&g);
    assert_eq!(op_types(&g), ["Transpose", "Conv", "Clip", "Transpose"]);
    assert_eq!(g.input[0].name, "image");
    assert_eq!(g.input[0].tensor_shape(), Some((1, vec![1, 8, 8, 3])));
    assert_eq!(g.output[0].name, "features");
    assert_eq!(g.output[0].tensor_shape(), Some((1, vec![1, 4, 4, 4])));
    assert_eq!(ints(&g.node[0], "perm"), [0, 3, 1, 2]);
    assert_eq!(ints(&g.node[3], "perm"), [0, 2, 3, 1]);
    let conv = node(&g, "Conv");
    // 8 -> 4 with a 3-wide stride-2 window: TFLite pads 0 before and 1 after.
    assert_eq!(ints(conv, "pads"), [0, 0, 1, 1]);
    assert_eq!(ints(conv, "strides"), [2, 2]);
    assert_eq!(ints(conv, "kernel_shape"), [3, 3]);
    assert_eq!(ints(conv, "group"), [1]);
    let w = init(&g, &conv.input[1]);
    assert_eq!(w.dims, [4, 3, 3, 3]);
    // OIHW[o][i][h][w] = OHWI[o][h][w][i] = ((o*3 + h)*3 + w)*3 + i.
    let data = f32s(w);
    let (o, i, h, x) = (2, 1, 0, 2);
    assert_eq!(
        data[((o * 3 + i) * 3 + h) * 3 + x],
        (((o * 3 + h) * 3 + x) * 3 + i) as f32
    );
    let clip = node(&g, "Clip");
    assert_eq!(f32s(init(&g, &clip.input[1])), [0.0]);
    assert_eq!(f32s(init(&g, &clip.input[2])), [6.0]);
}

#[test]
fn depthwise_with_multiplier_is_a_grouped_conv() {
    let mut m = TModel::new();
    let x = m.tensor("x", &[1, 5, 5, 2]);
    let w: Vec<f32> = (0..3 * 3 * 4).map(|v| v as f32).collect();
    let w = m.const_f32("w", &[1, 3, 3, 4], &w);
    let y = m.tensor("y", &[1, 3, 3, 4]);
    // VALID, stride 1, depth_multiplier 2, no activation.
    let o = opts(vec![
        (0, F::U8(1)),
        (1, F::I32(1)),
        (2, F::I32(1)),
        (3, F::I32(2)),
    ]);
    m.op(op::DEPTHWISE_CONV_2D, &[x, w, -1], &[y], o);
    m.inputs = vec![x];
    m.outputs = vec![y];
    let g = graph(&m);
    assert_topological(&g);
    let conv = node(&g, "Conv");
    assert_eq!(conv.input.len(), 2, "absent bias is left out");
    assert_eq!(ints(conv, "group"), [2]);
    assert_eq!(ints(conv, "pads"), [0, 0, 0, 0]);
    let w = init(&g, &conv.input[1]);
    assert_eq!(w.dims, [4, 1, 3, 3]);
    // [C*M, 1, H, W][c][0][h][w] = [1, H, W, C*M][0][h][w][c] = (h*3 + w)*4 + c.
    assert_eq!(f32s(w)[3 * 9 + 3 + 2], ((3 + 2) * 4 + 3) as f32);
}

#[test]
fn sparse_fp16_weights_are_folded_to_dense_f32() {
    let mut m = TModel::new();
    let x = m.tensor("x", &[1, 2, 2, 3]);
    // Filter [2,1,1,3]: row 0 keeps channel 2 (=1.0), row 1 keeps channels 0, 1 (=2.0, -2.0).
    let sparse = m.sparse_f16(
        "w_sparse",
        &[2, 1, 1, 3],
        &[0, 1, 3],
        &[2, 0, 1],
        &[0x3c00, 0x4000, 0xc000],
    );
    let half = m.tensor("w_half", &[2, 1, 1, 3]);
    let dense = m.tensor("w", &[2, 1, 1, 3]);
    let y = m.tensor("y", &[1, 2, 2, 2]);
    m.op(op::DENSIFY, &[sparse], &[half], None);
    m.op(op::DEQUANTIZE, &[half], &[dense], None);
    m.op(
        op::CONV_2D,
        &[x, dense, -1],
        &[y],
        opts(vec![(1, F::I32(1)), (2, F::I32(1))]),
    );
    m.inputs = vec![x];
    m.outputs = vec![y];
    let g = graph(&m);
    assert_topological(&g);
    assert_eq!(op_types(&g), ["Transpose", "Conv", "Transpose"]);
    let w = init(&g, &node(&g, "Conv").input[1]);
    assert_eq!(w.data_type, 1);
    assert_eq!(w.dims, [2, 3, 1, 1]);
    assert_eq!(f32s(w), [0.0, 0.0, 1.0, 2.0, -2.0, 0.0]);
}

#[test]
fn reshape_of_nchw_goes_through_nhwc() {
    let mut m = TModel::new();
    let x = m.tensor("x", &[1, 2, 2, 3]);
    let shape = m.const_i32("shape", &[2], &[1, 12]);
    let y = m.tensor("flat", &[1, 12]);
    m.op(op::RESHAPE, &[x, shape], &[y], None);
    m.inputs = vec![x];
    m.outputs = vec![y];
    let g = graph(&m);
    assert_topological(&g);
    assert_eq!(op_types(&g), ["Transpose", "Transpose", "Reshape"]);
    assert_eq!(ints(&g.node[1], "perm"), [0, 2, 3, 1]);
    assert_eq!(i64s(init(&g, &g.node[2].input[1])), [1, 12]);
    assert_eq!(
        g.node[2].output[0], "flat",
        "a rank-2 output is written directly"
    );
}

#[test]
fn concatenation_axis_and_padding_follow_the_layout() {
    let mut m = TModel::new();
    let a = m.tensor("a", &[1, 4, 4, 2]);
    let b = m.tensor("b", &[1, 4, 4, 3]);
    let cat = m.tensor("cat", &[1, 4, 4, 5]);
    let pads = m.const_i32("pads", &[4, 2], &[0, 0, 1, 2, 3, 4, 0, 0]);
    let padded = m.tensor("padded", &[1, 7, 11, 5]);
    m.op(
        op::CONCATENATION,
        &[a, b],
        &[cat],
        opts(vec![(0, F::I32(-1))]),
    );
    m.op(op::PAD, &[cat, pads], &[padded], None);
    m.inputs = vec![a, b];
    m.outputs = vec![padded];
    let g = graph(&m);
    assert_topological(&g);
    assert_eq!(ints(node(&g, "Concat"), "axis"), [1]);
    let pad = node(&g, "Pad");
    // NCHW order: begins (N, C, H, W), then ends.
    assert_eq!(i64s(init(&g, &pad.input[1])), [0, 0, 1, 3, 0, 0, 2, 4]);
}

#[test]
fn resize_bilinear_maps_coordinate_modes() {
    for (align, half, mode) in [
        (0, 1, "half_pixel"),
        (1, 0, "align_corners"),
        (0, 0, "asymmetric"),
    ] {
        let mut m = TModel::new();
        let x = m.tensor("x", &[1, 4, 4, 3]);
        let size = m.const_i32("size", &[2], &[8, 6]);
        let y = m.tensor("y", &[1, 8, 6, 3]);
        m.op(
            op::RESIZE_BILINEAR,
            &[x, size],
            &[y],
            opts(vec![(2, F::U8(align)), (3, F::U8(half))]),
        );
        m.inputs = vec![x];
        m.outputs = vec![y];
        let g = graph(&m);
        assert_topological(&g);
        let r = node(&g, "Resize");
        assert_eq!(string(r, "coordinate_transformation_mode"), mode);
        assert_eq!(string(r, "mode"), "linear");
        assert_eq!(i64s(init(&g, &r.input[3])), [1, 3, 8, 6]);
    }
}

#[test]
fn broadcast_constants_move_to_nchw() {
    let mut m = TModel::new();
    let x = m.tensor("x", &[1, 2, 2, 12]);
    let c = m.const_f32("bias", &[12], &[1.0; 12]);
    let y = m.tensor("y", &[1, 2, 2, 12]);
    let d = m.tensor("d2s", &[1, 4, 4, 3]);
    let s = m.tensor("sig", &[1, 4, 4, 3]);
    m.op(op::ADD, &[x, c], &[y], opts(vec![(0, F::U8(1))]));
    m.op(op::DEPTH_TO_SPACE, &[y], &[d], opts(vec![(0, F::I32(2))]));
    m.op(op::LOGISTIC, &[d], &[s], None);
    m.inputs = vec![x];
    m.outputs = vec![s];
    let g = graph(&m);
    assert_topological(&g);
    let add = node(&g, "Add");
    assert_eq!(init(&g, &add.input[1]).dims, [1, 12, 1, 1]);
    assert_eq!(
        op_types(&g),
        [
            "Transpose",
            "Add",
            "Relu",
            "DepthToSpace",
            "Sigmoid",
            "Transpose"
        ]
    );
    let d2s = node(&g, "DepthToSpace");
    assert_eq!(string(d2s, "mode"), "DCR");
    assert_eq!(ints(d2s, "blocksize"), [2]);
}

#[test]
fn unsupported_operators_are_named_with_their_index() {
    let mut m = TModel::new();
    let x = m.tensor("x", &[1, 4]);
    let y = m.tensor("y", &[1, 4]);
    let z = m.tensor("z", &[1, 4]);
    m.op(op::LOGISTIC, &[x], &[y], None);
    m.op(9, &[y], &[z], None);
    m.inputs = vec![x];
    m.outputs = vec![z];
    match convert(&m.build()) {
        Err(ConvertError::UnsupportedOperator { index, name }) => {
            assert_eq!((index, name.as_str()), (1, "FULLY_CONNECTED"));
        }
        other => panic!("expected an unsupported operator, got {other:?}"),
    }
    let info = inspect(&m.build()).unwrap();
    assert_eq!(
        info.unsupported_operators(),
        [(1, "FULLY_CONNECTED".to_string())]
    );

    let mut m = TModel::new();
    let x = m.tensor("x", &[1, 4, 4, 2]);
    let y = m.tensor("y", &[1, 8, 8, 2]);
    m.custom_op("Convolution2DTransposeBias", &[x], &[y]);
    m.inputs = vec![x];
    m.outputs = vec![y];
    let err = convert(&m.build()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "operator 0 (CUSTOM(Convolution2DTransposeBias)) is not supported"
    );
}

#[test]
fn inconsistent_shapes_are_reported_not_converted() {
    let mut m = conv_model();
    // Claim a 5x5 output where TFLite's SAME arithmetic gives 4x4.
    let bad = m.tensor("bad", &[1, 5, 5, 4]);
    let x = m.inputs[0];
    let w = m.const_f32("w2", &[4, 3, 3, 3], &[0.0; 108]);
    m.op(
        op::CONV_2D,
        &[x, w, -1],
        &[bad],
        opts(vec![(1, F::I32(2)), (2, F::I32(2))]),
    );
    let err = convert(&m.build()).unwrap_err();
    assert!(
        matches!(err, ConvertError::Operator { index: 1, .. }),
        "{err}"
    );
}

#[test]
fn inspect_lists_io_and_operators() {
    let info = inspect(&conv_model().build()).unwrap();
    assert_eq!(info.inputs[0].name, "image");
    assert_eq!(info.inputs[0].shape, [1, 8, 8, 3]);
    assert_eq!(info.outputs[0].name, "features");
    assert_eq!(info.operators.len(), 1);
    assert_eq!(info.operators[0].name, "CONV_2D");
    assert!(info.operators[0].supported);
    assert_eq!(info.description.as_deref(), Some("test model"));
}

#[test]
fn non_tflite_input_is_rejected() {
    assert!(matches!(convert(b""), Err(ConvertError::NotTflite(_))));
    assert!(matches!(
        convert(b"\x00\x00\x00\x00ONNXwhatever"),
        Err(ConvertError::NotTflite(_))
    ));
}

#[test]
fn every_truncation_of_a_model_is_an_error() {
    let bytes = conv_model().build();
    for n in 0..bytes.len() {
        assert!(
            convert(&bytes[..n]).is_err(),
            "prefix of {n} bytes converted"
        );
    }
}

#[test]
fn corrupt_bytes_never_panic() {
    let bytes = conv_model().build();
    for i in 8..bytes.len() {
        for v in [0x00, 0xff, 0x80, 0x7f] {
            let mut b = bytes.clone();
            b[i] = v;
            // Either outcome is fine; reaching the next iteration means no panic.
            let _ = convert(&b);
            let _ = inspect(&b);
        }
    }
}

fn ramp(n: usize, scale: f32) -> Vec<f32> {
    // Deterministic, sign-mixed values without a random generator.
    (0..n)
        .map(|i| ((i * 37 % 17) as f32 - 8.0) * scale)
        .collect()
}

/// Small models exercising the operators and options the pose models do not use, so that
/// `tests/compare.py` can check them against ai-edge-litert:
/// `TESSERA_TFLITE_SYNTH_OUT=DIR cargo test -p tessera-tflite synthetic` writes them to DIR.
fn synthetic_models() -> Vec<(&'static str, TModel)> {
    let mut a = TModel::new();
    let x = a.tensor("x", &[1, 9, 9, 4]);
    let v = a.tensor("v", &[4]);
    let avg = a.tensor("avg", &[1, 5, 5, 4]);
    let mx = a.tensor("max", &[1, 5, 5, 4]);
    // 3x3 stride 2 SAME average: padded pixels must not count.
    let pool = |f: i32, act: u8| {
        opts(vec![
            (0, F::U8(0)),
            (1, F::I32(2)),
            (2, F::I32(2)),
            (3, F::I32(f)),
            (4, F::I32(f)),
            (5, F::U8(act)),
        ])
    };
    a.op(op::AVERAGE_POOL_2D, &[x], &[avg], pool(3, 0));
    // 2x2 stride 2 SAME on 9 pixels pads only at the end.
    a.op(op::MAX_POOL_2D, &[x], &[mx], pool(2, 1));
    let c4 = a.const_f32("c4", &[4], &[0.5, 1.5, -1.0, 2.0]);
    let c1111 = a.const_f32("c1111", &[1, 1, 1, 4], &[2.0, 4.0, 0.5, 1.0]);
    let m1 = a.tensor("m1", &[1, 5, 5, 4]);
    let s1 = a.tensor("s1", &[1, 5, 5, 4]);
    let d1 = a.tensor("d1", &[1, 5, 5, 4]);
    let a1 = a.tensor("a1", &[1, 5, 5, 4]);
    let l1 = a.tensor("l1", &[1, 5, 5, 4]);
    let h1 = a.tensor("h1", &[1, 5, 5, 4]);
    let r1 = a.tensor("r1", &[1, 5, 5, 4]);
    a.op(op::MUL, &[avg, c4], &[m1], opts(vec![(0, F::U8(0))]));
    a.op(op::SUB, &[m1, mx], &[s1], opts(vec![(0, F::U8(0))]));
    a.op(op::DIV, &[s1, c1111], &[d1], opts(vec![(0, F::U8(2))]));
    // A rank-1 activation broadcast against NCHW.
    a.op(op::ADD, &[d1, v], &[a1], opts(vec![(0, F::U8(4))]));
    a.op(op::LEAKY_RELU, &[a1], &[l1], opts(vec![(0, F::F32(0.2))]));
    a.op(op::HARD_SWISH, &[l1], &[h1], opts(vec![]));
    a.op(op::RELU_N1_TO_1, &[h1], &[r1], None);
    let t1 = a.tensor("t1", &[1, 5, 5, 4]);
    let t2 = a.tensor("t2", &[1, 5, 5, 4]);
    let t3 = a.tensor("t3", &[1, 5, 5, 4]);
    a.op(op::RELU, &[s1], &[t1], None);
    a.op(op::RELU6, &[t1], &[t2], None);
    a.op(op::TANH, &[t2], &[t3], None);
    a.inputs = vec![x, v];
    a.outputs = vec![r1, t3];

    let mut b = TModel::new();
    let x = b.tensor("x", &[1, 8, 8, 8]);
    let s2d = b.tensor("s2d", &[1, 4, 4, 32]);
    b.op(op::SPACE_TO_DEPTH, &[x], &[s2d], opts(vec![(0, F::I32(2))]));
    let shape = b.const_i32("shape", &[3], &[1, 16, 32]);
    let rs = b.tensor("rs", &[1, 16, 32]);
    b.op(op::RESHAPE, &[s2d, shape], &[rs], None);
    let axis = b.const_i32("axis", &[1], &[2]);
    let ex = b.tensor("ex", &[1, 16, 1, 32]);
    b.op(op::EXPAND_DIMS, &[rs, axis], &[ex], opts(vec![]));
    let sq = b.tensor("sq", &[1, 16, 32]);
    b.op(
        op::SQUEEZE,
        &[ex],
        &[sq],
        opts(vec![(0, F::VecI32(vec![2]))]),
    );
    let pads = b.const_i32("pads", &[4, 2], &[0, 0, 1, 0, 2, 3, 0, 0]);
    let half = b.const_f32("half", &[], &[0.5]);
    let pv = b.tensor("pv", &[1, 9, 13, 8]);
    b.op(op::PADV2, &[x, pads, half], &[pv], opts(vec![]));
    // Dilated SAME conv, TANH fused.
    let w = b.const_f32("w", &[4, 3, 3, 4], &ramp(4 * 9 * 4, 0.05));
    let bias = b.const_f32("bias", &[4], &[0.1, -0.2, 0.3, 0.0]);
    let cv = b.tensor("cv", &[1, 8, 8, 4]);
    let conv = opts(vec![
        (0, F::U8(0)),
        (1, F::I32(1)),
        (2, F::I32(1)),
        (3, F::U8(4)),
        (4, F::I32(2)),
        (5, F::I32(2)),
    ]);
    b.op(op::CONV_2D, &[x, w, bias], &[cv], conv);
    // Depthwise, multiplier 2, stride 2 SAME, RELU_N1_TO_1 fused.
    let dw_w = b.const_f32("dw_w", &[1, 3, 3, 16], &ramp(9 * 16, 0.1));
    let dw_b = b.const_f32("dw_b", &[16], &ramp(16, 0.01));
    let dw = b.tensor("dw", &[1, 4, 4, 16]);
    let dwo = opts(vec![
        (0, F::U8(0)),
        (1, F::I32(2)),
        (2, F::I32(2)),
        (3, F::I32(2)),
        (4, F::U8(2)),
    ]);
    b.op(op::DEPTHWISE_CONV_2D, &[x, dw_w, dw_b], &[dw], dwo);
    let size_a = b.const_i32("size_a", &[2], &[7, 9]);
    let ra = b.tensor("ra", &[1, 7, 9, 16]);
    b.op(
        op::RESIZE_BILINEAR,
        &[dw, size_a],
        &[ra],
        opts(vec![(2, F::U8(1))]),
    );
    let size_n = b.const_i32("size_n", &[2], &[10, 6]);
    let rn = b.tensor("rn", &[1, 10, 6, 16]);
    b.op(op::RESIZE_BILINEAR, &[dw, size_n], &[rn], opts(vec![]));
    let d2s = b.tensor("d2s", &[1, 8, 8, 4]);
    b.op(
        op::DEPTH_TO_SPACE,
        &[dw],
        &[d2s],
        opts(vec![(0, F::I32(2))]),
    );
    let cc = b.tensor("cc", &[1, 8, 8, 8]);
    b.op(
        op::CONCATENATION,
        &[cv, d2s],
        &[cc],
        opts(vec![(0, F::I32(-1))]),
    );
    b.inputs = vec![x];
    b.outputs = vec![sq, pv, ra, rn, cc];
    vec![("synth_elementwise", a), ("synth_layout", b)]
}

#[test]
fn synthetic_models_convert() {
    let out = std::env::var_os("TESSERA_TFLITE_SYNTH_OUT").map(std::path::PathBuf::from);
    for (name, m) in synthetic_models() {
        let g = graph(&m);
        assert_topological(&g);
        if name == "synth_elementwise" {
            // TFLite does not apply a fused TANH (it has no clamp range): only the TANH
            // operator becomes a Tanh node.
            assert_eq!(op_types(&g).iter().filter(|t| **t == "Tanh").count(), 1);
        }
        if let Some(dir) = &out {
            std::fs::write(dir.join(format!("{name}.tflite")), m.build()).unwrap();
        }
    }
}
