//! Cutting one ONNX graph into two that run one after the other.
//!
//! A Piper voice is one graph: the text side (encoder, durations, flow) makes a latent of one
//! frame per 256 samples, and the HiFi-GAN decoder turns it into audio. Cut there, the text side
//! runs once for a whole sentence and the decoder can be run over the first frames alone, so the
//! first audio comes early without synthesizing the sentence in pieces.
//!
//! Like [`inline_constant_inputs`](super::inline_constant_inputs) the edit works on protobuf's
//! wire format: nodes, initializers and value infos are copied byte for byte into the half that
//! uses them, and every other field of the model and the graph into both.

use std::collections::{HashMap, HashSet};

use super::wire::{Fields, LEN, write_len_field};

// Field numbers of onnx.proto.
const MODEL_GRAPH: u32 = 7;
const GRAPH_NODE: u32 = 1;
const GRAPH_INITIALIZER: u32 = 5;
const GRAPH_SPARSE_INITIALIZER: u32 = 15;
const GRAPH_INPUT: u32 = 11;
const GRAPH_OUTPUT: u32 = 12;
const GRAPH_VALUE_INFO: u32 = 13;
const NODE_INPUT: u32 = 1;
const NODE_OUTPUT: u32 = 2;
const NODE_NAME: u32 = 3;
const NODE_OP_TYPE: u32 = 4;
const TENSOR_NAME: u32 = 8;
const VALUE_INFO_NAME: u32 = 1;

/// One graph as two: `head` computes the tensors named in `cut` from the original inputs, `tail`
/// computes the original outputs from them.
#[derive(Debug, Clone)]
pub struct SplitGraph {
    /// The first half, a serialized `ModelProto`; its outputs are `cut`.
    pub head: Vec<u8>,
    /// The second half; its inputs are `cut`, its outputs the original graph's.
    pub tail: Vec<u8>,
    /// The tensors that pass from the head to the tail, in the order the tail first reads them.
    pub cut: Vec<String>,
}

struct Node<'a> {
    raw: &'a [u8],
    name: &'a [u8],
    inputs: Vec<&'a [u8]>,
    outputs: Vec<&'a [u8]>,
}

/// Splits `model` (the bytes of an `.onnx` file) before the nodes whose names start with
/// `tail_prefix`: they and every node that reads what they make form the tail.
///
/// Refused, with a message that says why: a model that is not one graph, a graph with control
/// flow (`If`, `Loop`, `Scan`: their subgraphs may read any tensor) or sparse initializers, no
/// node with that prefix, a tail that reads an input of the graph, or a cut tensor with no type
/// recorded in the graph's value infos.
pub fn split_graph(model: &[u8], tail_prefix: &str) -> Result<SplitGraph, String> {
    let mut graph = None;
    for field in Fields::new(model) {
        let field = field?;
        if field.number == MODEL_GRAPH && field.wire == LEN {
            if graph.is_some() {
                return Err("not an ONNX model: it holds more than one graph".into());
            }
            graph = Some(field.payload);
        }
    }
    let graph = graph.ok_or("not an ONNX model: it holds no graph")?;

    let mut nodes = Vec::new();
    let mut initializers: Vec<(&[u8], &[u8])> = Vec::new();
    let mut inputs: Vec<(&[u8], &[u8])> = Vec::new();
    let mut outputs: Vec<(&[u8], &[u8])> = Vec::new();
    let mut value_infos: Vec<(&[u8], &[u8])> = Vec::new();
    for field in Fields::new(graph) {
        let field = field?;
        match field.number {
            GRAPH_NODE => nodes.push(node(field.raw, field.payload)?),
            GRAPH_INITIALIZER => initializers.push((name(field.payload, TENSOR_NAME)?, field.raw)),
            GRAPH_SPARSE_INITIALIZER => {
                return Err("the graph has sparse initializers".into());
            }
            GRAPH_INPUT => inputs.push((name(field.payload, VALUE_INFO_NAME)?, field.raw)),
            GRAPH_OUTPUT => outputs.push((name(field.payload, VALUE_INFO_NAME)?, field.payload)),
            GRAPH_VALUE_INFO => {
                value_infos.push((name(field.payload, VALUE_INFO_NAME)?, field.payload));
            }
            _ => {}
        }
    }

    let prefix = tail_prefix.as_bytes();
    let mut in_tail: Vec<bool> = nodes.iter().map(|n| n.name.starts_with(prefix)).collect();
    if !in_tail.contains(&true) {
        return Err(format!("no node's name starts with `{tail_prefix}`"));
    }
    // Whatever reads a tail tensor is in the tail too; nodes are in topological order, so one
    // pass from the first tail node finds them all.
    let (mut head_made, mut tail_made): (HashSet<&[u8]>, HashSet<&[u8]>) = Default::default();
    for (node, tail) in nodes.iter().zip(in_tail.iter_mut()) {
        *tail = *tail || node.inputs.iter().any(|i| tail_made.contains(i));
        let made = if *tail {
            &mut tail_made
        } else {
            &mut head_made
        };
        made.extend(node.outputs.iter().copied());
    }
    let constants: HashSet<&[u8]> = initializers.iter().map(|(n, _)| *n).collect();
    let graph_inputs: HashSet<&[u8]> = inputs.iter().map(|(n, _)| *n).collect();
    let mut cut: Vec<&[u8]> = Vec::new();
    for (node, _) in nodes.iter().zip(&in_tail).filter(|(_, tail)| **tail) {
        for input in &node.inputs {
            if input.is_empty()
                || tail_made.contains(input)
                || constants.contains(input)
                || cut.contains(input)
            {
                continue;
            }
            if graph_inputs.contains(input) {
                return Err(format!(
                    "the tail reads the graph's input `{}`",
                    String::from_utf8_lossy(input)
                ));
            }
            cut.push(input);
        }
    }

    let mut head_graph = Vec::with_capacity(graph.len());
    let mut tail_graph = Vec::new();
    let used = |half: bool| -> HashSet<&[u8]> {
        nodes
            .iter()
            .zip(&in_tail)
            .filter(|(_, tail)| **tail == half)
            .flat_map(|(n, _)| n.inputs.iter().copied())
            .collect()
    };
    let (head_reads, tail_reads) = (used(false), used(true));
    for (node, tail) in nodes.iter().zip(&in_tail) {
        let out = if *tail {
            &mut tail_graph
        } else {
            &mut head_graph
        };
        out.extend_from_slice(node.raw);
    }
    for (name, raw) in &initializers {
        if head_reads.contains(name) {
            head_graph.extend_from_slice(raw);
        }
        if tail_reads.contains(name) {
            tail_graph.extend_from_slice(raw);
        }
    }
    for (_, raw) in &inputs {
        head_graph.extend_from_slice(raw);
    }
    let types: HashMap<&[u8], &[u8]> = value_infos.iter().copied().collect();
    for name in &cut {
        let info = types.get(name).ok_or_else(|| {
            format!(
                "the graph records no type for `{}`",
                String::from_utf8_lossy(name)
            )
        })?;
        write_len_field(&mut head_graph, GRAPH_OUTPUT, info);
        write_len_field(&mut tail_graph, GRAPH_INPUT, info);
    }
    for (name, info) in &outputs {
        let out = if tail_made.contains(name) {
            &mut tail_graph
        } else {
            &mut head_graph
        };
        write_len_field(out, GRAPH_OUTPUT, info);
    }
    let boundary: HashSet<&[u8]> = cut
        .iter()
        .copied()
        .chain(outputs.iter().map(|(n, _)| *n))
        .collect();
    for (name, info) in &value_infos {
        if boundary.contains(name) {
            continue;
        }
        if head_made.contains(name) {
            write_len_field(&mut head_graph, GRAPH_VALUE_INFO, info);
        } else if tail_made.contains(name) {
            write_len_field(&mut tail_graph, GRAPH_VALUE_INFO, info);
        }
    }
    // The graph's name, doc string and the like go to both halves.
    for field in Fields::new(graph) {
        let field = field?;
        if !matches!(
            field.number,
            GRAPH_NODE | GRAPH_INITIALIZER | GRAPH_INPUT | GRAPH_OUTPUT | GRAPH_VALUE_INFO
        ) {
            head_graph.extend_from_slice(field.raw);
            tail_graph.extend_from_slice(field.raw);
        }
    }

    Ok(SplitGraph {
        head: with_graph(model, &head_graph)?,
        tail: with_graph(model, &tail_graph)?,
        cut: cut
            .iter()
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .collect(),
    })
}

/// `model` with its graph replaced by `graph`.
fn with_graph(model: &[u8], graph: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(graph.len() + 256);
    for field in Fields::new(model) {
        let field = field?;
        if field.number == MODEL_GRAPH && field.wire == LEN {
            write_len_field(&mut out, MODEL_GRAPH, graph);
        } else {
            out.extend_from_slice(field.raw);
        }
    }
    Ok(out)
}

fn node<'a>(raw: &'a [u8], payload: &'a [u8]) -> Result<Node<'a>, String> {
    let mut node = Node {
        raw,
        name: &[],
        inputs: Vec::new(),
        outputs: Vec::new(),
    };
    for field in Fields::new(payload) {
        let field = field?;
        if field.wire != LEN {
            continue;
        }
        match field.number {
            NODE_INPUT => node.inputs.push(field.payload),
            NODE_OUTPUT => node.outputs.push(field.payload),
            NODE_NAME => node.name = field.payload,
            NODE_OP_TYPE if matches!(field.payload, b"If" | b"Loop" | b"Scan") => {
                return Err(format!(
                    "the graph has control flow (`{}`)",
                    String::from_utf8_lossy(field.payload)
                ));
            }
            _ => {}
        }
    }
    Ok(node)
}

/// The string field `number` of a message (a name), empty when it has none.
fn name(message: &[u8], number: u32) -> Result<&[u8], String> {
    for field in Fields::new(message) {
        let field = field?;
        if field.number == number && field.wire == LEN {
            return Ok(field.payload);
        }
    }
    Ok(&[])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string_field(number: u32, value: &str) -> Vec<u8> {
        let mut out = Vec::new();
        write_len_field(&mut out, number, value.as_bytes());
        out
    }

    fn node_bytes(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> Vec<u8> {
        let mut node = Vec::new();
        for input in inputs {
            node.extend(string_field(NODE_INPUT, input));
        }
        for output in outputs {
            node.extend(string_field(NODE_OUTPUT, output));
        }
        node.extend(string_field(NODE_NAME, name));
        node.extend(string_field(NODE_OP_TYPE, op));
        node
    }

    fn info(name: &str) -> Vec<u8> {
        let mut info = string_field(VALUE_INFO_NAME, name);
        write_len_field(&mut info, 2, b"type");
        info
    }

    /// x -> /enc/a -> h -> /dec/b (with weight w) -> y, h also -> /enc/c -> side (an output).
    fn model(extra_node: Option<Vec<u8>>) -> Vec<u8> {
        let mut graph = Vec::new();
        write_len_field(
            &mut graph,
            GRAPH_NODE,
            &node_bytes("/enc/a", "Relu", &["x"], &["h"]),
        );
        write_len_field(
            &mut graph,
            GRAPH_NODE,
            &node_bytes("/dec/b", "Mul", &["h", "w"], &["y"]),
        );
        write_len_field(
            &mut graph,
            GRAPH_NODE,
            &node_bytes("/enc/c", "Neg", &["h"], &["side"]),
        );
        if let Some(node) = extra_node {
            write_len_field(&mut graph, GRAPH_NODE, &node);
        }
        let mut weight = string_field(TENSOR_NAME, "w");
        write_len_field(&mut weight, 9, b"\0\0\x80\x3f");
        write_len_field(&mut graph, GRAPH_INITIALIZER, &weight);
        write_len_field(&mut graph, GRAPH_INPUT, &info("x"));
        write_len_field(&mut graph, GRAPH_OUTPUT, &info("y"));
        write_len_field(&mut graph, GRAPH_OUTPUT, &info("side"));
        write_len_field(&mut graph, GRAPH_VALUE_INFO, &info("h"));
        write_len_field(&mut graph, 2, b"graph name");
        let mut model = Vec::new();
        model.extend([8, 8]); // ir_version 8
        write_len_field(&mut model, MODEL_GRAPH, &graph);
        model
    }

    fn parts(model: &[u8]) -> (Vec<String>, Vec<String>, Vec<String>, Vec<String>, bool) {
        let graph = Fields::new(model)
            .map(Result::unwrap)
            .find(|f| f.number == MODEL_GRAPH)
            .unwrap()
            .payload;
        let (mut nodes, mut inits, mut ins, mut outs, mut named) =
            (vec![], vec![], vec![], vec![], false);
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        for field in Fields::new(graph).map(Result::unwrap) {
            match field.number {
                GRAPH_NODE => nodes.push(text(node(field.raw, field.payload).unwrap().name)),
                GRAPH_INITIALIZER => inits.push(text(name(field.payload, TENSOR_NAME).unwrap())),
                GRAPH_INPUT => ins.push(text(name(field.payload, VALUE_INFO_NAME).unwrap())),
                GRAPH_OUTPUT => outs.push(text(name(field.payload, VALUE_INFO_NAME).unwrap())),
                2 => named = field.payload == b"graph name",
                _ => {}
            }
        }
        (nodes, inits, ins, outs, named)
    }

    #[test]
    fn the_tail_takes_its_nodes_and_weights_and_the_head_hands_it_the_cut() {
        let split = split_graph(&model(None), "/dec/").unwrap();
        assert_eq!(split.cut, vec!["h".to_string()]);
        let (nodes, inits, ins, outs, named) = parts(&split.head);
        assert_eq!(nodes, vec!["/enc/a", "/enc/c"]);
        assert!(inits.is_empty());
        assert_eq!(ins, vec!["x"]);
        assert_eq!(outs, vec!["h", "side"]);
        assert!(named);
        let (nodes, inits, ins, outs, named) = parts(&split.tail);
        assert_eq!(nodes, vec!["/dec/b"]);
        assert_eq!(inits, vec!["w"]);
        assert_eq!(ins, vec!["h"]);
        assert_eq!(outs, vec!["y"]);
        assert!(named);
        assert!(split.head.starts_with(&[8, 8]) && split.tail.starts_with(&[8, 8]));
    }

    #[test]
    fn what_reads_the_tail_joins_it() {
        let after = node_bytes("/post/d", "Abs", &["y"], &["z"]);
        let split = split_graph(&model(Some(after)), "/dec/").unwrap();
        assert_eq!(parts(&split.tail).0, vec!["/dec/b", "/post/d"]);
    }

    #[test]
    fn graphs_it_cannot_cut_are_refused_with_the_reason() {
        let error = |model: &[u8], prefix: &str| split_graph(model, prefix).unwrap_err();
        assert!(error(&model(None), "/nothing/").contains("no node's name starts with"));
        let reads_input = node_bytes("/dec/e", "Add", &["x", "y"], &["q"]);
        assert!(error(&model(Some(reads_input)), "/dec/").contains("input `x`"));
        let control = node_bytes("/enc/if", "If", &["x"], &["r"]);
        assert!(error(&model(Some(control)), "/dec/").contains("control flow"));
        let model = model(None);
        assert!(error(&model[..model.len() - 2], "/dec/").contains("ends inside"));
        assert!(error(b"", "/dec/").contains("no graph"));
    }
}
