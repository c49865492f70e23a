//! The subset of ONNX's `onnx.proto` the converter writes (and the VAD's graph rewrite reads),
//! as prost messages.
//!
//! Field numbers are those of `onnx.proto`; fields the converter never sets are left out (prost
//! skips them when decoding other models). Decode a converted model with
//! `<ModelProto as prost::Message>::decode`.

#![allow(missing_docs)] // Each field is the `onnx.proto` field of the same name.

/// `TensorProto.DataType` values used here.
pub mod data_type {
    pub const FLOAT: i32 = 1;
    pub const UINT8: i32 = 2;
    pub const INT8: i32 = 3;
    pub const INT16: i32 = 5;
    pub const INT32: i32 = 6;
    pub const INT64: i32 = 7;
    pub const BOOL: i32 = 9;
    pub const FLOAT16: i32 = 10;
}

/// `AttributeProto.AttributeType` values used here.
pub mod attribute_type {
    pub const FLOAT: i32 = 1;
    pub const INT: i32 = 2;
    pub const STRING: i32 = 3;
    pub const INTS: i32 = 7;
}

/// A whole model: IR version, opsets and the graph.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ModelProto {
    #[prost(int64, tag = "1")]
    pub ir_version: i64,
    #[prost(message, repeated, tag = "8")]
    pub opset_import: Vec<OperatorSetIdProto>,
    #[prost(string, tag = "2")]
    pub producer_name: String,
    #[prost(string, tag = "3")]
    pub producer_version: String,
    #[prost(string, tag = "4")]
    pub domain: String,
    #[prost(int64, tag = "5")]
    pub model_version: i64,
    #[prost(string, tag = "6")]
    pub doc_string: String,
    #[prost(message, optional, tag = "7")]
    pub graph: Option<GraphProto>,
}

/// An operator set the model uses (empty domain: the default `ai.onnx`).
#[derive(Clone, PartialEq, prost::Message)]
pub struct OperatorSetIdProto {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(int64, tag = "2")]
    pub version: i64,
}

/// Nodes in topological order, initializers and the graph's inputs and outputs.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GraphProto {
    #[prost(message, repeated, tag = "1")]
    pub node: Vec<NodeProto>,
    #[prost(string, tag = "2")]
    pub name: String,
    #[prost(message, repeated, tag = "5")]
    pub initializer: Vec<TensorProto>,
    #[prost(string, tag = "10")]
    pub doc_string: String,
    #[prost(message, repeated, tag = "11")]
    pub input: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "12")]
    pub output: Vec<ValueInfoProto>,
    #[prost(message, repeated, tag = "13")]
    pub value_info: Vec<ValueInfoProto>,
}

/// One operator application.
#[derive(Clone, PartialEq, prost::Message)]
pub struct NodeProto {
    #[prost(string, repeated, tag = "1")]
    pub input: Vec<String>,
    #[prost(string, repeated, tag = "2")]
    pub output: Vec<String>,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(string, tag = "4")]
    pub op_type: String,
    #[prost(string, tag = "7")]
    pub domain: String,
    #[prost(message, repeated, tag = "5")]
    pub attribute: Vec<AttributeProto>,
    #[prost(string, tag = "6")]
    pub doc_string: String,
}

/// A node attribute; `type` says which value field is meant.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AttributeProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(int32, tag = "20")]
    pub r#type: i32,
    #[prost(float, tag = "2")]
    pub f: f32,
    #[prost(int64, tag = "3")]
    pub i: i64,
    #[prost(bytes = "vec", tag = "4")]
    pub s: Vec<u8>,
    #[prost(message, optional, tag = "5")]
    pub t: Option<TensorProto>,
    /// A subgraph (the branches of `If`, the body of `Loop`): read, never written here.
    #[prost(message, optional, tag = "6")]
    pub g: Option<GraphProto>,
    #[prost(float, repeated, tag = "7")]
    pub floats: Vec<f32>,
    #[prost(int64, repeated, tag = "8")]
    pub ints: Vec<i64>,
}

/// A tensor value: initializers carry their data little-endian in `raw_data`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorProto {
    #[prost(int64, repeated, tag = "1")]
    pub dims: Vec<i64>,
    #[prost(int32, tag = "2")]
    pub data_type: i32,
    #[prost(float, repeated, tag = "4")]
    pub float_data: Vec<f32>,
    #[prost(int32, repeated, tag = "5")]
    pub int32_data: Vec<i32>,
    #[prost(int64, repeated, tag = "7")]
    pub int64_data: Vec<i64>,
    #[prost(string, tag = "8")]
    pub name: String,
    #[prost(bytes = "vec", tag = "9")]
    pub raw_data: Vec<u8>,
}

/// A named value and its type.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ValueInfoProto {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(message, optional, tag = "2")]
    pub r#type: Option<TypeProto>,
    #[prost(string, tag = "3")]
    pub doc_string: String,
}

/// A value's type: only tensor types are written here.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TypeProto {
    #[prost(oneof = "type_proto::Value", tags = "1")]
    pub value: Option<type_proto::Value>,
    #[prost(string, tag = "6")]
    pub denotation: String,
}

/// Nested messages of [`TypeProto`].
pub mod type_proto {
    /// The kind of type.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Value {
        #[prost(message, tag = "1")]
        TensorType(Tensor),
    }

    /// A tensor type: element type and shape.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Tensor {
        #[prost(int32, tag = "1")]
        pub elem_type: i32,
        #[prost(message, optional, tag = "2")]
        pub shape: Option<super::TensorShapeProto>,
    }
}

/// A shape: one entry per dimension.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TensorShapeProto {
    #[prost(message, repeated, tag = "1")]
    pub dim: Vec<tensor_shape_proto::Dimension>,
}

/// Nested messages of [`TensorShapeProto`].
pub mod tensor_shape_proto {
    /// A dimension: a number or a symbolic name.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Dimension {
        #[prost(oneof = "dimension::Value", tags = "1, 2")]
        pub value: Option<dimension::Value>,
        #[prost(string, tag = "3")]
        pub denotation: String,
    }

    /// Nested types of [`Dimension`].
    pub mod dimension {
        /// A fixed size or a symbolic one.
        #[derive(Clone, PartialEq, prost::Oneof)]
        pub enum Value {
            #[prost(int64, tag = "1")]
            DimValue(i64),
            #[prost(string, tag = "2")]
            DimParam(String),
        }
    }
}

impl AttributeProto {
    /// An integer attribute.
    pub fn int(name: &str, i: i64) -> Self {
        AttributeProto {
            name: name.to_string(),
            r#type: attribute_type::INT,
            i,
            ..AttributeProto::default()
        }
    }

    /// A list-of-integers attribute.
    pub fn ints(name: &str, ints: &[i64]) -> Self {
        AttributeProto {
            name: name.to_string(),
            r#type: attribute_type::INTS,
            ints: ints.to_vec(),
            ..AttributeProto::default()
        }
    }

    /// A float attribute.
    pub fn float(name: &str, f: f32) -> Self {
        AttributeProto {
            name: name.to_string(),
            r#type: attribute_type::FLOAT,
            f,
            ..AttributeProto::default()
        }
    }

    /// A string attribute.
    pub fn string(name: &str, s: &str) -> Self {
        AttributeProto {
            name: name.to_string(),
            r#type: attribute_type::STRING,
            s: s.as_bytes().to_vec(),
            ..AttributeProto::default()
        }
    }
}

impl ValueInfoProto {
    /// A tensor value info with a fixed shape.
    pub fn tensor(name: &str, elem_type: i32, shape: &[i64]) -> Self {
        Self::tensor_of(
            name,
            elem_type,
            shape
                .iter()
                .map(|&d| tensor_shape_proto::dimension::Value::DimValue(d)),
        )
    }

    /// A tensor value info whose dimensions are sizes or symbolic names.
    pub fn tensor_of(
        name: &str,
        elem_type: i32,
        dims: impl IntoIterator<Item = tensor_shape_proto::dimension::Value>,
    ) -> Self {
        let dim = dims
            .into_iter()
            .map(|value| tensor_shape_proto::Dimension {
                value: Some(value),
                denotation: String::new(),
            })
            .collect();
        ValueInfoProto {
            name: name.to_string(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type,
                    shape: Some(TensorShapeProto { dim }),
                })),
                denotation: String::new(),
            }),
            doc_string: String::new(),
        }
    }

    /// Element type and fixed dimensions (`-1` for symbolic ones), when this is a tensor type.
    pub fn tensor_shape(&self) -> Option<(i32, Vec<i64>)> {
        let Some(type_proto::Value::TensorType(t)) = self.r#type.as_ref()?.value.as_ref() else {
            return None;
        };
        let dims = t
            .shape
            .as_ref()?
            .dim
            .iter()
            .map(|d| match d.value {
                Some(tensor_shape_proto::dimension::Value::DimValue(v)) => v,
                _ => -1,
            })
            .collect();
        Some((t.elem_type, dims))
    }
}
