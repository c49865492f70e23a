//! The parts of TFLite's `schema.fbs` the converter reads, decoded into owned structs.
//!
//! Field ids follow the schema's declaration order (a union takes two ids: its type, then its
//! value). Operator options stay as [`Table`]s: each converter reads the fields it needs.

use crate::error::ConvertError;
use crate::flatbuf::{Result, Table};

/// Element type of a TFLite tensor (`TensorType` in the schema).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TensorType {
    /// 32-bit float.
    Float32,
    /// IEEE half.
    Float16,
    /// 32-bit signed integer.
    Int32,
    /// 8-bit unsigned integer.
    Uint8,
    /// 64-bit signed integer.
    Int64,
    /// Byte strings.
    String,
    /// Booleans stored as bytes.
    Bool,
    /// 16-bit signed integer.
    Int16,
    /// 8-bit signed integer.
    Int8,
    /// 64-bit float.
    Float64,
    /// Any other schema value (complex, resource, variant, 4-bit...), kept as its number.
    Other(i8),
}

impl TensorType {
    pub(crate) fn from_raw(v: i8) -> Self {
        match v {
            0 => TensorType::Float32,
            1 => TensorType::Float16,
            2 => TensorType::Int32,
            3 => TensorType::Uint8,
            4 => TensorType::Int64,
            5 => TensorType::String,
            6 => TensorType::Bool,
            7 => TensorType::Int16,
            9 => TensorType::Int8,
            10 => TensorType::Float64,
            other => TensorType::Other(other),
        }
    }

    /// Bytes per element, for the types whose data the converter can read.
    pub(crate) fn size(self) -> Option<usize> {
        match self {
            TensorType::Float32 | TensorType::Int32 => Some(4),
            TensorType::Float16 | TensorType::Int16 => Some(2),
            TensorType::Uint8 | TensorType::Int8 | TensorType::Bool => Some(1),
            TensorType::Int64 | TensorType::Float64 => Some(8),
            TensorType::String | TensorType::Other(_) => None,
        }
    }

    /// The ONNX `TensorProto.DataType` of the same element type, when there is one.
    pub fn onnx_type(self) -> Option<i32> {
        Some(match self {
            TensorType::Float32 => 1,
            TensorType::Uint8 => 2,
            TensorType::Int8 => 3,
            TensorType::Int16 => 5,
            TensorType::Int32 => 6,
            TensorType::Int64 => 7,
            TensorType::String => 8,
            TensorType::Bool => 9,
            TensorType::Float16 => 10,
            TensorType::Float64 => 11,
            TensorType::Other(_) => return None,
        })
    }
}

/// Builtin operator codes the converter names in messages (`BuiltinOperator` in the schema).
pub(crate) mod op {
    pub const ADD: i32 = 0;
    pub const AVERAGE_POOL_2D: i32 = 1;
    pub const CONCATENATION: i32 = 2;
    pub const CONV_2D: i32 = 3;
    pub const DEPTHWISE_CONV_2D: i32 = 4;
    pub const DEPTH_TO_SPACE: i32 = 5;
    pub const DEQUANTIZE: i32 = 6;
    pub const LOGISTIC: i32 = 14;
    pub const MAX_POOL_2D: i32 = 17;
    pub const MUL: i32 = 18;
    pub const RELU: i32 = 19;
    pub const RELU_N1_TO_1: i32 = 20;
    pub const RELU6: i32 = 21;
    pub const RESHAPE: i32 = 22;
    pub const RESIZE_BILINEAR: i32 = 23;
    pub const SPACE_TO_DEPTH: i32 = 26;
    pub const TANH: i32 = 28;
    pub const CUSTOM: i32 = 32;
    pub const PAD: i32 = 34;
    pub const SUB: i32 = 41;
    pub const DIV: i32 = 42;
    pub const SQUEEZE: i32 = 43;
    pub const PADV2: i32 = 60;
    pub const EXPAND_DIMS: i32 = 70;
    pub const LEAKY_RELU: i32 = 98;
    pub const HARD_SWISH: i32 = 117;
    pub const DENSIFY: i32 = 124;
}

/// Names of builtin operators 0..=161, in schema order, for inspection and error messages.
const BUILTIN_NAMES: [&str; 162] = [
    "ADD",
    "AVERAGE_POOL_2D",
    "CONCATENATION",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "DEPTH_TO_SPACE",
    "DEQUANTIZE",
    "EMBEDDING_LOOKUP",
    "FLOOR",
    "FULLY_CONNECTED",
    "HASHTABLE_LOOKUP",
    "L2_NORMALIZATION",
    "L2_POOL_2D",
    "LOCAL_RESPONSE_NORMALIZATION",
    "LOGISTIC",
    "LSH_PROJECTION",
    "LSTM",
    "MAX_POOL_2D",
    "MUL",
    "RELU",
    "RELU_N1_TO_1",
    "RELU6",
    "RESHAPE",
    "RESIZE_BILINEAR",
    "RNN",
    "SOFTMAX",
    "SPACE_TO_DEPTH",
    "SVDF",
    "TANH",
    "CONCAT_EMBEDDINGS",
    "SKIP_GRAM",
    "CALL",
    "CUSTOM",
    "EMBEDDING_LOOKUP_SPARSE",
    "PAD",
    "UNIDIRECTIONAL_SEQUENCE_RNN",
    "GATHER",
    "BATCH_TO_SPACE_ND",
    "SPACE_TO_BATCH_ND",
    "TRANSPOSE",
    "MEAN",
    "SUB",
    "DIV",
    "SQUEEZE",
    "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "STRIDED_SLICE",
    "BIDIRECTIONAL_SEQUENCE_RNN",
    "EXP",
    "TOPK_V2",
    "SPLIT",
    "LOG_SOFTMAX",
    "DELEGATE",
    "BIDIRECTIONAL_SEQUENCE_LSTM",
    "CAST",
    "PRELU",
    "MAXIMUM",
    "ARG_MAX",
    "MINIMUM",
    "LESS",
    "NEG",
    "PADV2",
    "GREATER",
    "GREATER_EQUAL",
    "LESS_EQUAL",
    "SELECT",
    "SLICE",
    "SIN",
    "TRANSPOSE_CONV",
    "SPARSE_TO_DENSE",
    "TILE",
    "EXPAND_DIMS",
    "EQUAL",
    "NOT_EQUAL",
    "LOG",
    "SUM",
    "SQRT",
    "RSQRT",
    "SHAPE",
    "POW",
    "ARG_MIN",
    "FAKE_QUANT",
    "REDUCE_PROD",
    "REDUCE_MAX",
    "PACK",
    "LOGICAL_OR",
    "ONE_HOT",
    "LOGICAL_AND",
    "LOGICAL_NOT",
    "UNPACK",
    "REDUCE_MIN",
    "FLOOR_DIV",
    "REDUCE_ANY",
    "SQUARE",
    "ZEROS_LIKE",
    "FILL",
    "FLOOR_MOD",
    "RANGE",
    "RESIZE_NEAREST_NEIGHBOR",
    "LEAKY_RELU",
    "SQUARED_DIFFERENCE",
    "MIRROR_PAD",
    "ABS",
    "SPLIT_V",
    "UNIQUE",
    "CEIL",
    "REVERSE_V2",
    "ADD_N",
    "GATHER_ND",
    "COS",
    "WHERE",
    "RANK",
    "ELU",
    "REVERSE_SEQUENCE",
    "MATRIX_DIAG",
    "QUANTIZE",
    "MATRIX_SET_DIAG",
    "ROUND",
    "HARD_SWISH",
    "IF",
    "WHILE",
    "NON_MAX_SUPPRESSION_V4",
    "NON_MAX_SUPPRESSION_V5",
    "SCATTER_ND",
    "SELECT_V2",
    "DENSIFY",
    "SEGMENT_SUM",
    "BATCH_MATMUL",
    "PLACEHOLDER_FOR_GREATER_OP_CODES",
    "CUMSUM",
    "CALL_ONCE",
    "BROADCAST_TO",
    "RFFT2D",
    "CONV_3D",
    "IMAG",
    "REAL",
    "COMPLEX_ABS",
    "HASHTABLE",
    "HASHTABLE_FIND",
    "HASHTABLE_IMPORT",
    "HASHTABLE_SIZE",
    "REDUCE_ALL",
    "CONV_3D_TRANSPOSE",
    "VAR_HANDLE",
    "READ_VARIABLE",
    "ASSIGN_VARIABLE",
    "BROADCAST_ARGS",
    "RANDOM_STANDARD_NORMAL",
    "BUCKETIZE",
    "RANDOM_UNIFORM",
    "MULTINOMIAL",
    "GELU",
    "DYNAMIC_UPDATE_SLICE",
    "RELU_0_TO_1",
    "UNSORTED_SEGMENT_PROD",
    "UNSORTED_SEGMENT_MAX",
    "UNSORTED_SEGMENT_SUM",
    "ATAN2",
    "UNSORTED_SEGMENT_MIN",
    "SIGN",
    "BITCAST",
    "BITWISE_XOR",
    "RIGHT_SHIFT",
];

/// An entry of the model's operator code table.
#[derive(Clone, Debug)]
pub(crate) struct OpCode {
    pub builtin: i32,
    pub custom: Option<String>,
    pub version: i32,
}

impl OpCode {
    /// `CONV_2D`, `CUSTOM(Convolution2DTransposeBias)`, or `BUILTIN_<n>` for codes past the table.
    pub(crate) fn name(&self) -> String {
        if self.builtin == op::CUSTOM {
            return format!("CUSTOM({})", self.custom.as_deref().unwrap_or("?"));
        }
        usize::try_from(self.builtin)
            .ok()
            .and_then(|i| BUILTIN_NAMES.get(i))
            .map_or_else(|| format!("BUILTIN_{}", self.builtin), |n| (*n).to_string())
    }
}

/// Affine quantization parameters (`QuantizationParameters`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Quantization {
    pub scale: Vec<f32>,
    pub zero_point: Vec<i64>,
    pub quantized_dimension: i32,
}

/// Storage of one traversal level of a sparse tensor (`DimensionMetadata`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum DimMeta {
    Dense(usize),
    /// CSR: `segments[k]..segments[k + 1]` index into `indices` for the k-th element of the
    /// previous level.
    Sparse {
        segments: Vec<usize>,
        indices: Vec<usize>,
    },
}

/// Sparsity parameters (`SparsityParameters`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Sparsity {
    pub traversal_order: Vec<usize>,
    pub block_map: Vec<usize>,
    pub dims: Vec<DimMeta>,
}

/// A tensor of a subgraph.
#[derive(Clone, Debug)]
pub(crate) struct Tensor {
    pub shape: Vec<i32>,
    pub dtype: TensorType,
    pub buffer: u32,
    pub name: String,
    pub quantization: Option<Quantization>,
    pub sparsity: Option<Sparsity>,
}

/// An operator: its code index, tensor indices (-1 for an absent optional input) and options.
#[derive(Clone, Debug)]
pub(crate) struct Operator<'a> {
    pub opcode_index: u32,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub options: Option<Table<'a>>,
}

/// A subgraph: tensors and operators in execution order.
#[derive(Clone, Debug)]
pub(crate) struct SubGraph<'a> {
    pub tensors: Vec<Tensor>,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    pub operators: Vec<Operator<'a>>,
}

/// A decoded model; buffer data borrows the file.
#[derive(Clone, Debug)]
pub(crate) struct Model<'a> {
    pub version: u32,
    pub op_codes: Vec<OpCode>,
    pub subgraphs: Vec<SubGraph<'a>>,
    pub description: Option<String>,
    pub buffers: Vec<&'a [u8]>,
}

impl<'a> Model<'a> {
    /// Reads a TFLite flatbuffer, checking every offset it follows.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self> {
        if bytes.len() < 8 {
            return Err(ConvertError::NotTflite(format!(
                "{} bytes, too short for a flatbuffer",
                bytes.len()
            )));
        }
        if &bytes[4..8] != b"TFL3" {
            return Err(ConvertError::NotTflite(
                "the file identifier is not TFL3".to_string(),
            ));
        }
        let root = Table::root(bytes)?;
        let op_codes = root
            .tables(1)?
            .iter()
            .map(|t| {
                // Codes past 127 live in the int32 field; the byte field keeps old readers working.
                let old = i32::from(t.i8(0, 0)?);
                let new = t.i32(3, 0)?;
                Ok(OpCode {
                    builtin: old.max(new),
                    custom: t.string(1)?,
                    version: t.i32(2, 1)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let subgraphs = root
            .tables(2)?
            .iter()
            .map(parse_subgraph)
            .collect::<Result<Vec<_>>>()?;
        let buffers = root
            .tables(4)?
            .iter()
            .map(|b| parse_buffer(bytes, b))
            .collect::<Result<Vec<_>>>()?;
        Ok(Model {
            version: root.u32(0, 0)?,
            op_codes,
            subgraphs,
            description: root.string(3)?,
            buffers,
        })
    }

    /// The operator code of an operator, checked.
    pub(crate) fn op_code(&self, op: &Operator) -> Result<&OpCode> {
        self.op_codes.get(op.opcode_index as usize).ok_or_else(|| {
            ConvertError::Invalid(format!(
                "operator code index {} out of range ({} codes)",
                op.opcode_index,
                self.op_codes.len()
            ))
        })
    }
}

fn parse_buffer<'a>(file: &'a [u8], b: &Table<'a>) -> Result<&'a [u8]> {
    // Models over 2 GiB keep data after the flatbuffer, addressed by offset and size.
    let offset = b.u64(1, 0)?;
    if offset > 1 {
        let size = b.u64(2, 0)?;
        let start = usize::try_from(offset).ok();
        let end = start
            .zip(usize::try_from(size).ok())
            .and_then(|(s, n)| s.checked_add(n));
        return match (start, end) {
            (Some(s), Some(e)) if e <= file.len() => Ok(&file[s..e]),
            _ => Err(ConvertError::corrupt(
                file.len(),
                format!("buffer at offset {offset} with {size} bytes is past the end of the file"),
            )),
        };
    }
    Ok(b.vector(0, 1)?.map(|v| v.bytes()).unwrap_or_default())
}

fn parse_subgraph<'a>(sg: &Table<'a>) -> Result<SubGraph<'a>> {
    let tensors = sg
        .tables(0)?
        .iter()
        .map(parse_tensor)
        .collect::<Result<Vec<_>>>()?;
    let operators = sg
        .tables(3)?
        .iter()
        .map(|o| {
            Ok(Operator {
                opcode_index: o.u32(0, 0)?,
                inputs: o.i32s(1)?,
                outputs: o.i32s(2)?,
                options: o.table(4)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(SubGraph {
        tensors,
        inputs: sg.i32s(1)?,
        outputs: sg.i32s(2)?,
        operators,
    })
}

fn parse_tensor(t: &Table) -> Result<Tensor> {
    let quantization = match t.table(4)? {
        Some(q) => Some(Quantization {
            scale: q.f32s(2)?,
            zero_point: q.i64s(3)?,
            quantized_dimension: q.i32(6, 0)?,
        }),
        None => None,
    };
    let sparsity = match t.table(6)? {
        Some(s) => Some(parse_sparsity(&s)?),
        None => None,
    };
    Ok(Tensor {
        shape: t.i32s(0)?,
        dtype: TensorType::from_raw(t.i8(1, 0)?),
        buffer: t.u32(2, 0)?,
        name: t.string(3)?.unwrap_or_default(),
        quantization,
        sparsity,
    })
}

fn non_negative(v: Vec<i32>, what: &str) -> Result<Vec<usize>> {
    v.into_iter()
        .map(|x| {
            usize::try_from(x)
                .map_err(|_| ConvertError::Invalid(format!("negative {what} {x} in sparsity")))
        })
        .collect()
}

/// Reads a `SparseIndexVector` union (Int32Vector, Uint16Vector or Uint8Vector).
fn index_vector(dm: &Table, type_id: usize, what: &str) -> Result<Vec<usize>> {
    let kind = dm.u8(type_id, 0)?;
    let Some(t) = dm.table(type_id + 1)? else {
        return Err(ConvertError::Invalid(format!(
            "sparse dimension without {what}"
        )));
    };
    match kind {
        1 => non_negative(t.i32s(0)?, what),
        2 => Ok(t
            .vector(0, 2)?
            .map(|v| v.u16s().into_iter().map(usize::from).collect())
            .unwrap_or_default()),
        3 => Ok(t
            .vector(0, 1)?
            .map(|v| v.bytes().iter().map(|&b| usize::from(b)).collect())
            .unwrap_or_default()),
        other => Err(ConvertError::Invalid(format!(
            "unknown sparse index vector type {other} for {what}"
        ))),
    }
}

fn parse_sparsity(s: &Table) -> Result<Sparsity> {
    let dims = s
        .tables(2)?
        .iter()
        .map(|dm| match dm.u8(0, 0)? {
            0 => Ok(DimMeta::Dense(
                non_negative(vec![dm.i32(1, 0)?], "dense size")?[0],
            )),
            1 => Ok(DimMeta::Sparse {
                segments: index_vector(dm, 2, "array segments")?,
                indices: index_vector(dm, 4, "array indices")?,
            }),
            other => Err(ConvertError::Invalid(format!(
                "unknown sparse dimension format {other}"
            ))),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Sparsity {
        traversal_order: non_negative(s.i32s(0)?, "traversal order")?,
        block_map: non_negative(s.i32s(1)?, "block map")?,
        dims,
    })
}
