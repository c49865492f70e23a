//! Stating graph inputs as constants before a session is built.
//!
//! An input fed the same value on every call keeps ONNX Runtime from folding what depends on it.
//! Silero VAD's graph takes its sample rate as an input and branches on it with an `If` node that
//! holds both the 8 kHz and the 16 kHz networks, judged anew every 32 ms window. With the rate
//! stated as an initializer (a constant), ONNX Runtime's constant folding keeps only the branch
//! taken, and a window costs less than half as much.
//!
//! The edit works on protobuf's wire format and copies every field it does not change byte for
//! byte, so nothing of the model is lost, whatever ONNX version wrote it.

/// A graph input fixed to one scalar `int64` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstantInput {
    /// The input's name in the graph.
    pub name: String,
    /// The value every call would feed it.
    pub value: i64,
}

impl ConstantInput {
    /// The input `name` fixed to `value`.
    pub fn new(name: impl Into<String>, value: i64) -> ConstantInput {
        ConstantInput {
            name: name.into(),
            value,
        }
    }
}

use super::wire::{Fields, LEN, write_len_field, write_varint};

// Field numbers of onnx.proto.
const MODEL_GRAPH: u32 = 7;
const GRAPH_INITIALIZER: u32 = 5;
const GRAPH_INPUT: u32 = 11;
const VALUE_INFO_NAME: u32 = 1;
const TENSOR_DATA_TYPE: u32 = 2;
const TENSOR_INT64_DATA: u32 = 7;
const TENSOR_NAME: u32 = 8;
/// `TensorProto.DataType.INT64`.
const INT64: u64 = 7;

/// The model in `model` (the bytes of an `.onnx` file) with each of `constants` removed from
/// the graph's inputs and added as a scalar initializer of that name.
pub fn inline_constant_inputs(
    model: &[u8],
    constants: &[ConstantInput],
) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(model.len() + 64);
    let mut graphs = 0;
    for field in Fields::new(model) {
        let field = field?;
        if field.number == MODEL_GRAPH && field.wire == LEN {
            graphs += 1;
            let graph = rewrite_graph(field.payload, constants)?;
            write_len_field(&mut out, MODEL_GRAPH, &graph);
        } else {
            out.extend_from_slice(field.raw);
        }
    }
    if graphs != 1 {
        return Err(format!(
            "not an ONNX model: it holds {graphs} graphs, not one"
        ));
    }
    Ok(out)
}

fn rewrite_graph(graph: &[u8], constants: &[ConstantInput]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(graph.len() + 32 * constants.len());
    let mut found = vec![false; constants.len()];
    for field in Fields::new(graph) {
        let field = field?;
        if field.number == GRAPH_INPUT && field.wire == LEN {
            let name = value_info_name(field.payload)?;
            if let Some(index) = constants.iter().position(|c| c.name.as_bytes() == name) {
                found[index] = true;
                continue;
            }
        }
        out.extend_from_slice(field.raw);
    }
    if let Some(missing) = constants.iter().zip(&found).find(|(_, found)| !**found) {
        return Err(format!(
            "the graph has no input `{}` to state as a constant",
            missing.0.name
        ));
    }
    for constant in constants {
        write_len_field(&mut out, GRAPH_INITIALIZER, &scalar_int64(constant));
    }
    Ok(out)
}

fn value_info_name(value_info: &[u8]) -> Result<&[u8], String> {
    for field in Fields::new(value_info) {
        let field = field?;
        if field.number == VALUE_INFO_NAME && field.wire == LEN {
            return Ok(field.payload);
        }
    }
    Ok(&[])
}

/// A `TensorProto` with no dims (a scalar) of type int64.
fn scalar_int64(constant: &ConstantInput) -> Vec<u8> {
    let mut tensor = Vec::new();
    write_varint(&mut tensor, u64::from(TENSOR_DATA_TYPE << 3));
    write_varint(&mut tensor, INT64);
    let mut packed = Vec::new();
    // int64 values are varints of their two's-complement bits.
    write_varint(&mut packed, constant.value as u64);
    write_len_field(&mut tensor, TENSOR_INT64_DATA, &packed);
    write_len_field(&mut tensor, TENSOR_NAME, constant.name.as_bytes());
    tensor
}

#[cfg(test)]
mod tests {
    use super::super::wire::Field;
    use super::*;

    fn value_info(name: &str) -> Vec<u8> {
        let mut info = Vec::new();
        write_len_field(&mut info, VALUE_INFO_NAME, name.as_bytes());
        info
    }

    /// A model with a producer name, a graph with a node, two inputs and a doc string.
    fn model() -> Vec<u8> {
        let mut graph = Vec::new();
        write_len_field(&mut graph, 1, b"node bytes");
        write_len_field(&mut graph, GRAPH_INPUT, &value_info("input"));
        write_len_field(&mut graph, GRAPH_INPUT, &value_info("sr"));
        write_len_field(&mut graph, 10, b"doc");
        let mut model = Vec::new();
        write_varint(&mut model, 1 << 3); // ir_version
        write_varint(&mut model, 8);
        write_len_field(&mut model, 2, b"producer");
        write_len_field(&mut model, MODEL_GRAPH, &graph);
        model
    }

    fn graph_of(model: &[u8]) -> Vec<Field<'_>> {
        let graph = Fields::new(model)
            .map(Result::unwrap)
            .find(|f| f.number == MODEL_GRAPH)
            .unwrap();
        Fields::new(graph.payload).map(Result::unwrap).collect()
    }

    #[test]
    fn an_input_becomes_a_scalar_initializer_and_the_rest_is_kept() {
        let rewritten =
            inline_constant_inputs(&model(), &[ConstantInput::new("sr", 16000)]).unwrap();
        let top: Vec<_> = Fields::new(&rewritten).map(Result::unwrap).collect();
        assert_eq!(top[0].raw, &[8, 8]);
        assert_eq!(top[1].payload, b"producer");
        let graph = graph_of(&rewritten);
        let inputs: Vec<_> = graph
            .iter()
            .filter(|f| f.number == GRAPH_INPUT)
            .map(|f| value_info_name(f.payload).unwrap().to_vec())
            .collect();
        assert_eq!(inputs, vec![b"input".to_vec()]);
        assert!(graph.iter().any(|f| f.number == 10 && f.payload == b"doc"));
        let initializer = graph
            .iter()
            .find(|f| f.number == GRAPH_INITIALIZER)
            .unwrap();
        let tensor: Vec<_> = Fields::new(initializer.payload)
            .map(Result::unwrap)
            .collect();
        assert_eq!(tensor[0].number, TENSOR_DATA_TYPE);
        assert_eq!(tensor[0].raw, &[TENSOR_DATA_TYPE as u8 * 8, INT64 as u8]);
        assert_eq!(tensor[1].number, TENSOR_INT64_DATA);
        // 16000 as a varint: 0x80 | (16000 & 0x7f), 16000 >> 7.
        assert_eq!(tensor[1].payload, &[0x80, 0x7d]);
        assert_eq!(tensor[2].payload, b"sr");
        assert!(
            graph
                .iter()
                .any(|f| f.number == 1 && f.payload == b"node bytes")
        );
    }

    #[test]
    fn a_missing_input_or_a_broken_file_is_an_error() {
        let missing = inline_constant_inputs(&model(), &[ConstantInput::new("rate", 1)]);
        assert!(missing.unwrap_err().contains("no input `rate`"));
        let model = model();
        let cut = inline_constant_inputs(&model[..model.len() - 3], &[ConstantInput::new("sr", 1)]);
        assert!(cut.unwrap_err().contains("ends inside"));
        assert!(
            inline_constant_inputs(b"", &[])
                .unwrap_err()
                .contains("0 graphs")
        );
    }

    #[test]
    fn negative_values_are_ten_byte_varints() {
        let mut out = Vec::new();
        write_varint(&mut out, -1i64 as u64);
        assert_eq!(out.len(), 10);
        let mut fields = Fields::new(&out);
        assert_eq!(fields.varint().unwrap(), u64::MAX);
    }
}
