//! TensorFlow Lite to ONNX conversion, in pure Rust, for the MediaPipe BlazePose models.
//!
//! [`convert`] reads a `.tflite` flatbuffer and returns an ONNX `ModelProto` (opset
//! [`OPSET`], IR version [`IR_VERSION`]) that ONNX Runtime runs with the same inputs and outputs
//! as the TFLite model: same tensor names, NHWC shapes and element order. Inside, the graph runs
//! NCHW; fp16 and sparse weights (DEQUANTIZE, DENSIFY) are expanded to dense f32 initializers.
//! [`inspect`] lists a model's inputs, outputs and operators without converting it.
//!
//! Every problem in the file is an [`ConvertError`]: the reader checks each flatbuffer offset,
//! so a truncated or corrupt model is reported, never a panic.
//!
//! Operators: CONV_2D, DEPTHWISE_CONV_2D, ADD, SUB, MUL, DIV, PAD, PADV2, MAX_POOL_2D,
//! AVERAGE_POOL_2D, CONCATENATION, RESHAPE, SQUEEZE, EXPAND_DIMS, RESIZE_BILINEAR,
//! DEPTH_TO_SPACE, SPACE_TO_DEPTH, LOGISTIC, RELU, RELU6, RELU_N1_TO_1, TANH, LEAKY_RELU,
//! HARD_SWISH, and DEQUANTIZE / DENSIFY of constants ([`supported_operators`]). Fused
//! activations become separate nodes, applied as TFLite applies them (see `convert.rs`).
//!
//! Checking a conversion against TFLite itself: `tests/compare.py` runs ai-edge-litert and
//! onnxruntime on the same inputs (the `tflite2onnx` example writes the `.onnx` files);
//! `tests/fetch_fixtures.sh` fetches the pose models the fixture tests need.
//!
//! ```no_run
//! let tflite = std::fs::read("pose_landmark_lite.tflite")?;
//! let info = tessera_tflite::inspect(&tflite)?;
//! println!("{} operators, inputs {:?}", info.operators.len(), info.inputs);
//! let onnx = tessera_tflite::convert(&tflite)?;
//! std::fs::write("pose_landmark_lite.onnx", onnx)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod constant;
mod convert;
mod error;
mod flatbuf;
mod layout;
pub mod onnx;
mod sparse;
#[cfg(test)]
mod testmodel;
mod tflite;

use std::collections::BTreeMap;

use prost::Message;

pub use convert::{IR_VERSION, OPSET};
pub use error::ConvertError;
pub use tflite::TensorType;

/// Converts a TFLite model to a serialized ONNX `ModelProto`.
pub fn convert(tflite_bytes: &[u8]) -> Result<Vec<u8>, ConvertError> {
    let model = convert_to_proto(tflite_bytes)?;
    let len = model.encoded_len();
    if len > i32::MAX as usize {
        return Err(ConvertError::TooLarge(len));
    }
    Ok(model.encode_to_vec())
}

/// Converts a TFLite model to an ONNX [`onnx::ModelProto`] message, for callers that want to
/// look at or adjust the graph before serializing it.
pub fn convert_to_proto(tflite_bytes: &[u8]) -> Result<onnx::ModelProto, ConvertError> {
    convert::convert_model(tflite_bytes)
}

/// A graph input or output of a TFLite model.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    /// Index in the subgraph's tensor table.
    pub index: usize,
    /// Tensor name (also the name of the converted ONNX input or output).
    pub name: String,
    /// Static shape, TFLite layout (NHWC for images).
    pub shape: Vec<i64>,
    /// Element type.
    pub dtype: TensorType,
}

/// One operator of the main subgraph.
#[derive(Clone, Debug, PartialEq)]
pub struct OperatorInfo {
    /// Position in execution order (the index errors name).
    pub index: usize,
    /// `CONV_2D`, or `CUSTOM(<custom code>)` for custom operators.
    pub name: String,
    /// Operator version from the model's operator code table.
    pub version: i32,
    /// Input tensor indices (-1 for an absent optional input).
    pub inputs: Vec<i32>,
    /// Output tensor indices.
    pub outputs: Vec<i32>,
    /// Whether [`convert`] has a translation for this operator kind.
    pub supported: bool,
}

/// What [`inspect`] finds in a TFLite model (its first subgraph, the one [`convert`] converts).
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    /// TFLite schema version.
    pub version: u32,
    /// The model's description string, if any.
    pub description: Option<String>,
    /// Number of subgraphs in the file.
    pub subgraphs: usize,
    /// Graph inputs.
    pub inputs: Vec<TensorInfo>,
    /// Graph outputs.
    pub outputs: Vec<TensorInfo>,
    /// Operators in execution order.
    pub operators: Vec<OperatorInfo>,
}

impl ModelInfo {
    /// How many times each operator kind occurs.
    pub fn operator_counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for op in &self.operators {
            *counts.entry(op.name.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// Operator kinds [`convert`] cannot translate, with the index of their first occurrence.
    pub fn unsupported_operators(&self) -> Vec<(usize, String)> {
        let mut seen = std::collections::HashSet::new();
        self.operators
            .iter()
            .filter(|op| !op.supported && seen.insert(op.name.clone()))
            .map(|op| (op.index, op.name.clone()))
            .collect()
    }
}

/// Names of the TFLite builtin operators [`convert`] translates.
pub fn supported_operators() -> Vec<String> {
    convert::SUPPORTED
        .iter()
        .map(|&code| {
            tflite::OpCode {
                builtin: code,
                custom: None,
                version: 1,
            }
            .name()
        })
        .collect()
}

/// Reads a TFLite model's inputs, outputs and operator list.
pub fn inspect(tflite_bytes: &[u8]) -> Result<ModelInfo, ConvertError> {
    let model = tflite::Model::parse(tflite_bytes)?;
    let Some(sg) = model.subgraphs.first() else {
        return Err(ConvertError::Invalid(
            "the model has no subgraph".to_string(),
        ));
    };
    let tensor_info = |raw: &i32| -> Result<TensorInfo, ConvertError> {
        let t = usize::try_from(*raw)
            .ok()
            .and_then(|i| sg.tensors.get(i).map(|t| (i, t)));
        let Some((index, t)) = t else {
            return Err(ConvertError::Invalid(format!(
                "graph tensor index {raw} out of range"
            )));
        };
        Ok(TensorInfo {
            index,
            name: t.name.clone(),
            shape: t.shape.iter().map(|&d| i64::from(d)).collect(),
            dtype: t.dtype,
        })
    };
    let operators = sg
        .operators
        .iter()
        .enumerate()
        .map(|(index, op)| {
            let code = model.op_code(op)?;
            Ok(OperatorInfo {
                index,
                name: code.name(),
                version: code.version,
                inputs: op.inputs.clone(),
                outputs: op.outputs.clone(),
                supported: code.builtin != tflite::op::CUSTOM
                    && convert::SUPPORTED.contains(&code.builtin),
            })
        })
        .collect::<Result<Vec<_>, ConvertError>>()?;
    Ok(ModelInfo {
        version: model.version,
        description: model.description.clone(),
        subgraphs: model.subgraphs.len(),
        inputs: sg
            .inputs
            .iter()
            .map(tensor_info)
            .collect::<Result<_, _>>()?,
        outputs: sg
            .outputs
            .iter()
            .map(tensor_info)
            .collect::<Result<_, _>>()?,
        operators,
    })
}
