//! Silero's graph rebuilt to judge many windows in one call.
//!
//! The published graph judges one 32 ms window per call: a short-time Fourier transform and four
//! convolutions (the encoder), then one step of an LSTM and a sigmoid (the decoder). Only the
//! LSTM carries anything from one window to the next, so the encoder may as well see all the
//! windows of a clip at once, and ONNX's `LSTM` runs a whole sequence in one node. The graph
//! built here takes `windows` `[N, 576]` (each window after its 64 samples of context) and
//! `state` `[2, 1, 128]`, and returns `output` `[N, 1]` and `stateN` `[2, 1, 128]`: the same
//! numbers as N calls of the published graph (checked in CI to 1e-5), without ONNX Runtime's
//! fixed cost per call and the published graph's shape tests and branches. The weights are read
//! out of the 16 kHz branch of the published graph, and the convolutions keep its attributes.

use std::collections::HashMap;

use prost::Message;
use tessera_tflite::onnx::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    ValueInfoProto, data_type,
};

/// Window samples with their context.
const INPUT: i64 = 576;
/// The samples of reflection the STFT adds after each window.
const REFLECTION: i64 = 64;
/// LSTM width.
const HIDDEN: i64 = 128;
/// The STFT basis of the 16 kHz network: 129 real and 129 imaginary filters of 256 taps.
const BASIS: [i64; 3] = [258, 1, 256];

/// The graph of [module docs](self) built from the published one (`original`, a serialized
/// ONNX model), or why it could not be.
pub(super) fn sequence_graph(original: &[u8]) -> Result<Vec<u8>, String> {
    let model = ModelProto::decode(original).map_err(|e| format!("not an ONNX model ({e})"))?;
    let graph = model.graph.as_ref().ok_or("the model holds no graph")?;
    let network = find_network(graph).ok_or(
        "no 16 kHz Silero network (an STFT basis of 258 x 1 x 256 beside the encoder and decoder weights) in the graph",
    )?;
    let built = build(&network)?;
    Ok(ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        producer_name: "tessera".into(),
        graph: Some(built),
        ..ModelProto::default()
    }
    .encode_to_vec())
}

/// The weights of one network and the convolution nodes that use them.
struct Network<'g> {
    tensors: HashMap<&'static str, &'g TensorProto>,
    convs: HashMap<&'static str, &'g NodeProto>,
}

/// Weight names (the PyTorch module paths, which the exporter keeps as name suffixes).
const BASIS_NAME: &str = "stft.forward_basis_buffer";
const ENCODER: [(&str, &str); 4] = [
    (
        "encoder.0.reparam_conv.weight",
        "encoder.0.reparam_conv.bias",
    ),
    (
        "encoder.1.reparam_conv.weight",
        "encoder.1.reparam_conv.bias",
    ),
    (
        "encoder.2.reparam_conv.weight",
        "encoder.2.reparam_conv.bias",
    ),
    (
        "encoder.3.reparam_conv.weight",
        "encoder.3.reparam_conv.bias",
    ),
];
const LSTM: [&str; 4] = [
    "decoder.rnn.weight_ih",
    "decoder.rnn.weight_hh",
    "decoder.rnn.bias_ih",
    "decoder.rnn.bias_hh",
];
const HEAD: [&str; 2] = ["decoder.decoder.2.weight", "decoder.decoder.2.bias"];

fn all_names() -> impl Iterator<Item = &'static str> {
    std::iter::once(BASIS_NAME)
        .chain(ENCODER.iter().flat_map(|(w, b)| [*w, *b]))
        .chain(LSTM)
        .chain(HEAD)
}

/// The (sub)graph that holds the whole 16 kHz network, searched depth first: v5 and v6 keep
/// each sample rate's network in a branch of an `If`.
fn find_network(graph: &GraphProto) -> Option<Network<'_>> {
    let mut tensors = HashMap::new();
    let named = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t))
        .chain(
            graph
                .node
                .iter()
                .filter(|n| n.op_type == "Constant")
                .filter_map(|n| {
                    let value = n.attribute.iter().find(|a| a.name == "value")?.t.as_ref()?;
                    Some((n.output.first()?.as_str(), value))
                }),
        );
    for (name, tensor) in named {
        if let Some(wanted) = all_names().find(|wanted| name.ends_with(wanted)) {
            tensors.insert(wanted, tensor);
        }
    }
    let complete = all_names().all(|name| tensors.contains_key(name))
        && tensors.get(BASIS_NAME).is_some_and(|t| t.dims == BASIS);
    if complete {
        // The convolutions that read each weight, for their strides and padding.
        let mut convs = HashMap::new();
        for node in graph.node.iter().filter(|n| n.op_type == "Conv") {
            let Some(weight) = node.input.get(1) else {
                continue;
            };
            for name in std::iter::once(BASIS_NAME).chain(ENCODER.iter().map(|(w, _)| *w)) {
                if weight.ends_with(name) {
                    convs.insert(name, node);
                }
            }
        }
        if convs.len() == 1 + ENCODER.len() {
            return Some(Network { tensors, convs });
        }
    }
    graph
        .node
        .iter()
        .flat_map(|node| node.attribute.iter())
        .filter_map(|attribute| attribute.g.as_ref())
        .find_map(find_network)
}

fn build(network: &Network<'_>) -> Result<GraphProto, String> {
    let mut graph = Builder::default();
    // The STFT: reflect 64 samples after the window, filter, then the magnitude.
    graph.int64s("pads", &[0, 0, 0, REFLECTION]);
    graph.int64s("axis1", &[1]);
    graph.node(
        "Pad",
        &["windows", "pads"],
        "padded",
        vec![AttributeProto::string("mode", "reflect")],
    );
    graph.node("Unsqueeze", &["padded", "axis1"], "signal", vec![]);
    graph.copy("basis", network.tensors[BASIS_NAME])?;
    graph.node(
        "Conv",
        &["signal", "basis"],
        "spectrum",
        conv_attributes(network.convs[BASIS_NAME]),
    );
    let half = BASIS[0] / 2;
    graph.split("spectrum", [half, half], ["real", "imaginary"], 1);
    graph.node("Mul", &["real", "real"], "real2", vec![]);
    graph.node("Mul", &["imaginary", "imaginary"], "imaginary2", vec![]);
    graph.node("Add", &["real2", "imaginary2"], "power", vec![]);
    graph.node("Sqrt", &["power"], "x0", vec![]);
    // The encoder.
    for (index, (weight, bias)) in ENCODER.iter().enumerate() {
        let (w, b) = (
            format!("encoder{index}.weight"),
            format!("encoder{index}.bias"),
        );
        graph.copy(&w, network.tensors[weight])?;
        graph.copy(&b, network.tensors[bias])?;
        let conv = format!("encoder{index}.conv");
        graph.node(
            "Conv",
            &[&format!("x{index}"), &w, &b],
            &conv,
            conv_attributes(network.convs[weight]),
        );
        graph.node("Relu", &[&conv], &format!("x{}", index + 1), vec![]);
    }
    // [N, 128, 1] → [N, 1, 128]: the windows become the LSTM's sequence, batch 1.
    let last = format!("x{}", ENCODER.len());
    graph.node(
        "Transpose",
        &[&last],
        "sequence",
        vec![AttributeProto::ints("perm", &[0, 2, 1])],
    );
    graph.split("state", [1, 1], ["h0", "c0"], 0);
    // PyTorch orders the gates input, forget, cell, output; ONNX input, output, forget, cell.
    let [w_ih, w_hh, b_ih, b_hh] = LSTM.map(|name| network.tensors[name]);
    let input_weights = onnx_gates(&floats(w_ih)?, HIDDEN as usize)?;
    let recurrent_weights = onnx_gates(&floats(w_hh)?, HIDDEN as usize)?;
    let mut biases = onnx_gates(&floats(b_ih)?, HIDDEN as usize)?;
    biases.extend(onnx_gates(&floats(b_hh)?, HIDDEN as usize)?);
    let gates = 4 * HIDDEN;
    graph.f32s(
        "lstm.w",
        &[1, gates, w_ih.dims.get(1).copied().unwrap_or(0)],
        &input_weights,
    );
    graph.f32s("lstm.r", &[1, gates, HIDDEN], &recurrent_weights);
    graph.f32s("lstm.b", &[1, 2 * gates], &biases);
    graph.nodes.push(NodeProto {
        op_type: "LSTM".into(),
        input: ["sequence", "lstm.w", "lstm.r", "lstm.b", "", "h0", "c0"]
            .map(String::from)
            .to_vec(),
        output: ["hidden", "h", "c"].map(String::from).to_vec(),
        attribute: vec![AttributeProto::int("hidden_size", HIDDEN)],
        ..NodeProto::default()
    });
    graph.node(
        "Concat",
        &["h", "c"],
        "stateN",
        vec![AttributeProto::int("axis", 0)],
    );
    // The head on every step: ReLU, a 1 x 1 convolution to one logit (a matrix product here),
    // sigmoid.
    graph.int64s("rows", &[-1, HIDDEN]);
    graph.node("Reshape", &["hidden", "rows"], "steps", vec![]);
    graph.node("Relu", &["steps"], "active", vec![]);
    let [head_weight, head_bias] = HEAD.map(|name| network.tensors[name]);
    graph.f32s("head.w", &[HIDDEN, 1], &floats(head_weight)?);
    graph.f32s("head.b", &[1], &floats(head_bias)?);
    graph.node("MatMul", &["active", "head.w"], "logit0", vec![]);
    graph.node("Add", &["logit0", "head.b"], "logit", vec![]);
    graph.node("Sigmoid", &["logit"], "output", vec![]);
    Ok(GraphProto {
        name: "silero_vad_sequence".into(),
        node: graph.nodes,
        initializer: graph.initializers,
        input: vec![
            symbolic("windows", &[None, Some(INPUT)]),
            symbolic("state", &[Some(2), Some(1), Some(HIDDEN)]),
        ],
        output: vec![
            symbolic("output", &[None, Some(1)]),
            symbolic("stateN", &[Some(2), Some(1), Some(HIDDEN)]),
        ],
        ..GraphProto::default()
    })
}

#[derive(Default)]
struct Builder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl Builder {
    fn node(&mut self, op: &str, inputs: &[&str], output: &str, attribute: Vec<AttributeProto>) {
        self.nodes.push(NodeProto {
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            attribute,
            ..NodeProto::default()
        });
    }

    /// `input` cut in two along `axis`, `sizes` long.
    fn split(&mut self, input: &str, sizes: [i64; 2], outputs: [&str; 2], axis: i64) {
        let sizes_name = format!("{input}.split");
        self.int64s(&sizes_name, &sizes);
        self.nodes.push(NodeProto {
            op_type: "Split".into(),
            input: vec![input.into(), sizes_name],
            output: outputs.map(String::from).to_vec(),
            attribute: vec![AttributeProto::int("axis", axis)],
            ..NodeProto::default()
        });
    }

    fn int64s(&mut self, name: &str, values: &[i64]) {
        self.initializers.push(TensorProto {
            name: name.into(),
            dims: vec![values.len() as i64],
            data_type: data_type::INT64,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..TensorProto::default()
        });
    }

    fn f32s(&mut self, name: &str, dims: &[i64], values: &[f32]) {
        self.initializers.push(TensorProto {
            name: name.into(),
            dims: dims.to_vec(),
            data_type: data_type::FLOAT,
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..TensorProto::default()
        });
    }

    /// A float weight of the published graph under a new name.
    fn copy(&mut self, name: &str, tensor: &TensorProto) -> Result<(), String> {
        self.f32s(name, &tensor.dims, &floats(tensor)?);
        Ok(())
    }
}

/// A float tensor's values, whether stored raw or as `float_data`.
fn floats(tensor: &TensorProto) -> Result<Vec<f32>, String> {
    if tensor.data_type != data_type::FLOAT {
        return Err(format!(
            "weight {} is of ONNX type {}, not float",
            tensor.name, tensor.data_type
        ));
    }
    let values: Vec<f32> = if tensor.raw_data.is_empty() {
        tensor.float_data.clone()
    } else {
        tensor
            .raw_data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect()
    };
    let expected: i64 = tensor.dims.iter().product();
    if values.len() as i64 != expected {
        return Err(format!(
            "weight {} holds {} values for dimensions {:?}",
            tensor.name,
            values.len(),
            tensor.dims
        ));
    }
    Ok(values)
}

/// PyTorch's LSTM gate blocks (input, forget, cell, output; `hidden` rows each) in ONNX's
/// order (input, output, forget, cell).
fn onnx_gates(values: &[f32], hidden: usize) -> Result<Vec<f32>, String> {
    if !values.len().is_multiple_of(4 * hidden) {
        return Err(format!(
            "an LSTM weight of {} values is not four gates of {hidden} rows",
            values.len()
        ));
    }
    let block = values.len() / 4;
    let gate = |g: usize| &values[g * block..(g + 1) * block];
    Ok([gate(0), gate(3), gate(1), gate(2)].concat())
}

/// The attributes of a published convolution that shape its output.
fn conv_attributes(node: &NodeProto) -> Vec<AttributeProto> {
    node.attribute
        .iter()
        .filter(|a| {
            matches!(
                a.name.as_str(),
                "strides" | "pads" | "dilations" | "group" | "kernel_shape"
            )
        })
        .cloned()
        .collect()
}

/// A float input or output; `None` dimensions are the symbolic number of windows.
fn symbolic(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    use tessera_tflite::onnx::tensor_shape_proto::dimension::Value;
    ValueInfoProto::tensor_of(
        name,
        data_type::FLOAT,
        dims.iter().map(|d| match d {
            Some(size) => Value::DimValue(*size),
            None => Value::DimParam("windows".into()),
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gates_are_reordered_for_onnx() {
        // Four gates of one row each: i f g o → i o f g.
        assert_eq!(
            onnx_gates(&[1.0, 2.0, 3.0, 4.0], 1).unwrap(),
            vec![1.0, 4.0, 2.0, 3.0]
        );
        assert!(onnx_gates(&[1.0, 2.0, 3.0], 1).is_err());
    }

    #[test]
    fn a_graph_without_silero_weights_is_refused() {
        let empty = ModelProto {
            graph: Some(GraphProto::default()),
            ..ModelProto::default()
        }
        .encode_to_vec();
        let error = sequence_graph(&empty).unwrap_err();
        assert!(error.contains("no 16 kHz Silero network"), "{error}");
        assert!(sequence_graph(b"\xff\xff").is_err());
    }
}
