//! Engine-neutral tensors: what a graph declares ([`TensorInfo`]), what a task hands in
//! ([`TensorInput`], borrowed) and what it gets back ([`Outputs`] of owned [`Tensor`]s).
//!
//! These types exist in every build, so task code that builds inputs and reads outputs compiles
//! whether or not ONNX Runtime is compiled in.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::EngineError;

/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ElementType {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// 16-bit float (IEEE half).
    F16,
    /// 16-bit brain float.
    Bf16,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer.
    U64,
    /// Boolean.
    Bool,
    /// UTF-8 string.
    String,
    /// Anything else: an exotic element type, or a value that is not a tensor (a sequence, a map).
    Other,
}

impl ElementType {
    /// The short lowercase name (`f32`, `i64`, `bool`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ElementType::F32 => "f32",
            ElementType::F64 => "f64",
            ElementType::F16 => "f16",
            ElementType::Bf16 => "bf16",
            ElementType::I8 => "i8",
            ElementType::I16 => "i16",
            ElementType::I32 => "i32",
            ElementType::I64 => "i64",
            ElementType::U8 => "u8",
            ElementType::U16 => "u16",
            ElementType::U32 => "u32",
            ElementType::U64 => "u64",
            ElementType::Bool => "bool",
            ElementType::String => "string",
            ElementType::Other => "other",
        }
    }
}

impl fmt::Display for ElementType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One input or output as the graph declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorInfo {
    /// The name inputs are given by and outputs are found by.
    pub name: String,
    /// The element type; [`ElementType::Other`] for values that are not tensors.
    pub element_type: ElementType,
    /// One entry per dimension: `Some(n)` for a fixed size, `None` for a dynamic one (batch,
    /// sequence length, ...). Empty for a scalar, a value that is not a tensor, or a tensor the
    /// graph declares without a shape (ONNX Runtime reports the last two alike).
    pub shape: Vec<Option<usize>>,
}

impl TensorInfo {
    /// The number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }
}

impl fmt::Display for TensorInfo {
    /// `input_ids: i64[?, ?]`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}{}",
            self.name,
            self.element_type,
            ShapeDisplay(&self.shape)
        )
    }
}

struct ShapeDisplay<'a>(&'a [Option<usize>]);

impl fmt::Display for ShapeDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, dim) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match dim {
                Some(n) => write!(f, "{n}")?,
                None => f.write_str("?")?,
            }
        }
        f.write_str("]")
    }
}

/// Borrowed elements of one input, in row-major order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InputData<'a> {
    /// 32-bit floats (audio samples, pixels, features).
    F32(&'a [f32]),
    /// 64-bit floats.
    F64(&'a [f64]),
    /// 64-bit integers (token ids and masks of most text exports).
    I64(&'a [i64]),
    /// 32-bit integers.
    I32(&'a [i32]),
    /// Signed bytes.
    I8(&'a [i8]),
    /// Bytes (raw images).
    U8(&'a [u8]),
    /// Booleans (masks).
    Bool(&'a [bool]),
}

impl InputData<'_> {
    /// The number of elements.
    pub fn len(&self) -> usize {
        match self {
            InputData::F32(d) => d.len(),
            InputData::F64(d) => d.len(),
            InputData::I64(d) => d.len(),
            InputData::I32(d) => d.len(),
            InputData::I8(d) => d.len(),
            InputData::U8(d) => d.len(),
            InputData::Bool(d) => d.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element type.
    pub fn element_type(&self) -> ElementType {
        match self {
            InputData::F32(_) => ElementType::F32,
            InputData::F64(_) => ElementType::F64,
            InputData::I64(_) => ElementType::I64,
            InputData::I32(_) => ElementType::I32,
            InputData::I8(_) => ElementType::I8,
            InputData::U8(_) => ElementType::U8,
            InputData::Bool(_) => ElementType::Bool,
        }
    }
}

macro_rules! input_from {
    ($($ty:ty => $variant:ident),+ $(,)?) => {$(
        impl<'a> From<&'a [$ty]> for InputData<'a> {
            fn from(data: &'a [$ty]) -> Self {
                InputData::$variant(data)
            }
        }
        impl<'a> From<&'a Vec<$ty>> for InputData<'a> {
            fn from(data: &'a Vec<$ty>) -> Self {
                InputData::$variant(data)
            }
        }
    )+};
}

input_from!(f32 => F32, f64 => F64, i64 => I64, i32 => I32, i8 => I8, u8 => U8, bool => Bool);

/// One input for [`OnnxModel::run`](super::OnnxModel::run): a shape and borrowed elements.
///
/// Nothing is checked when it is built; `run` checks the name, the element type and the shape
/// against the graph, and that the shape's product equals the number of elements.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInput<'a> {
    shape: Vec<usize>,
    data: InputData<'a>,
}

impl<'a> TensorInput<'a> {
    /// An input of `shape` holding `data` (any of `&[f32]`, `&[f64]`, `&[i64]`, `&[i32]`, `&[i8]`,
    /// `&[u8]`, `&[bool]` or a `&Vec` of them) in row-major order.
    ///
    /// ```
    /// use tessera_engines::onnx::{ElementType, TensorInput};
    ///
    /// let ids = vec![101_i64, 2023, 102, 101, 102, 0];
    /// let input = TensorInput::new([2, 3], &ids);
    /// assert_eq!(input.shape(), &[2, 3]);
    /// assert_eq!(input.element_type(), ElementType::I64);
    /// ```
    pub fn new(shape: impl Into<Vec<usize>>, data: impl Into<InputData<'a>>) -> Self {
        TensorInput {
            shape: shape.into(),
            data: data.into(),
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The elements.
    pub fn data(&self) -> InputData<'a> {
        self.data
    }

    /// The element type.
    pub fn element_type(&self) -> ElementType {
        self.data.element_type()
    }

    /// Why this input does not fit the graph's declaration of it, if it does not.
    pub(crate) fn mismatch(&self, info: &TensorInfo) -> Option<String> {
        let elements: usize = self.shape.iter().product();
        if elements != self.data.len() {
            return Some(format!(
                "shape {:?} holds {elements} elements but {} were given",
                self.shape,
                self.data.len()
            ));
        }
        if info.element_type != ElementType::Other && info.element_type != self.element_type() {
            return Some(format!(
                "the graph takes {} elements, not {}",
                info.element_type,
                self.element_type()
            ));
        }
        // An empty declaration may be a tensor of any shape (see `TensorInfo::shape`): ONNX
        // Runtime then judges the input itself.
        let fits = info.shape.is_empty()
            || info.shape.len() == self.shape.len()
                && info
                    .shape
                    .iter()
                    .zip(&self.shape)
                    .all(|(want, &got)| want.is_none_or(|want| want == got));
        if !fits {
            return Some(format!(
                "the graph takes shape {}, not {:?}",
                ShapeDisplay(&info.shape),
                self.shape
            ));
        }
        None
    }
}

/// Owned elements of one output, in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputData {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 64-bit floats.
    F64(Vec<f64>),
    /// 64-bit integers.
    I64(Vec<i64>),
    /// 32-bit integers.
    I32(Vec<i32>),
    /// Signed bytes.
    I8(Vec<i8>),
    /// Bytes.
    U8(Vec<u8>),
    /// Booleans.
    Bool(Vec<bool>),
    /// An element type this adapter does not copy out (yet); the graph produced it, but reading it
    /// is an error that names the type.
    Unsupported(ElementType),
}

impl OutputData {
    /// The element type.
    pub fn element_type(&self) -> ElementType {
        match self {
            OutputData::F32(_) => ElementType::F32,
            OutputData::F64(_) => ElementType::F64,
            OutputData::I64(_) => ElementType::I64,
            OutputData::I32(_) => ElementType::I32,
            OutputData::I8(_) => ElementType::I8,
            OutputData::U8(_) => ElementType::U8,
            OutputData::Bool(_) => ElementType::Bool,
            OutputData::Unsupported(ty) => *ty,
        }
    }
}

/// One output of a run: its name, shape and owned elements.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    name: String,
    shape: Vec<usize>,
    data: OutputData,
}

macro_rules! accessors {
    ($($ty:ty => $variant:ident, $get:ident, $into:ident);+ $(;)?) => {$(
        #[doc = concat!("The elements as `", stringify!($ty), "`; an error naming both types if the tensor holds another type.")]
        pub fn $get(&self) -> Result<&[$ty], EngineError> {
            match &self.data {
                OutputData::$variant(data) => Ok(data),
                _ => Err(self.type_error(ElementType::$variant)),
            }
        }

        #[doc = concat!("The elements as an owned `Vec<", stringify!($ty), ">`, without a copy; an error naming both types if the tensor holds another type.")]
        pub fn $into(self) -> Result<Vec<$ty>, EngineError> {
            match self.data {
                OutputData::$variant(data) => Ok(data),
                _ => Err(self.type_error(ElementType::$variant)),
            }
        }
    )+};
}

impl Tensor {
    /// A tensor; `shape`'s product must equal the number of elements.
    pub fn new(name: impl Into<String>, shape: Vec<usize>, data: OutputData) -> Self {
        Tensor {
            name: name.into(),
            shape,
            data,
        }
    }

    /// The output's name in the graph.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The element type.
    pub fn element_type(&self) -> ElementType {
        self.data.element_type()
    }

    /// The elements, whatever their type.
    pub fn data(&self) -> &OutputData {
        &self.data
    }

    accessors! {
        f32 => F32, f32, into_f32;
        f64 => F64, f64, into_f64;
        i64 => I64, i64, into_i64;
        i32 => I32, i32, into_i32;
        i8 => I8, i8, into_i8;
        u8 => U8, u8, into_u8;
        bool => Bool, bool, into_bool;
    }

    fn type_error(&self, expected: ElementType) -> EngineError {
        EngineError::TensorType {
            tensor: self.name.clone(),
            expected,
            actual: self.element_type(),
        }
    }
}

/// The outputs of one run, in the graph's order, found by name or position.
#[derive(Debug, Clone)]
pub struct Outputs {
    model: Arc<Path>,
    tensors: Vec<Tensor>,
}

impl Outputs {
    /// Outputs of the model at `model`.
    pub fn new(model: Arc<Path>, tensors: Vec<Tensor>) -> Self {
        Outputs { model, tensors }
    }

    /// The number of outputs.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The output called `name`, or an error that lists the outputs there are.
    pub fn get(&self, name: &str) -> Result<&Tensor, EngineError> {
        self.position(name).map(|i| &self.tensors[i])
    }

    /// The output at `index` in the graph's order, or an error that lists the outputs there are.
    pub fn at(&self, index: usize) -> Result<&Tensor, EngineError> {
        self.tensors
            .get(index)
            .ok_or_else(|| self.missing(format!("number {index}")))
    }

    /// Takes the output called `name` out, so its elements can be had without a copy.
    pub fn take(&mut self, name: &str) -> Result<Tensor, EngineError> {
        self.position(name).map(|i| self.tensors.remove(i))
    }

    /// The outputs, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Tensor> {
        self.tensors.iter()
    }

    fn position(&self, name: &str) -> Result<usize, EngineError> {
        self.tensors
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| self.missing(format!("`{name}`")))
    }

    fn missing(&self, wanted: String) -> EngineError {
        let available = self
            .tensors
            .iter()
            .map(|t| format!("`{}`", t.name))
            .collect::<Vec<_>>()
            .join(", ");
        EngineError::MissingOutput {
            path: self.model.to_path_buf(),
            wanted,
            available,
        }
    }
}

impl IntoIterator for Outputs {
    type Item = Tensor;
    type IntoIter = std::vec::IntoIter<Tensor>;
    fn into_iter(self) -> Self::IntoIter {
        self.tensors.into_iter()
    }
}

impl<'a> IntoIterator for &'a Outputs {
    type Item = &'a Tensor;
    type IntoIter = std::slice::Iter<'a, Tensor>;
    fn into_iter(self) -> Self::IntoIter {
        self.tensors.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(element_type: ElementType, shape: &[Option<usize>]) -> TensorInfo {
        TensorInfo {
            name: "x".into(),
            element_type,
            shape: shape.to_vec(),
        }
    }

    #[test]
    fn info_displays_dynamic_dimensions() {
        let info = info(ElementType::F32, &[None, Some(3), Some(224)]);
        assert_eq!(info.to_string(), "x: f32[?, 3, 224]");
        assert_eq!(info.rank(), 3);
    }

    #[test]
    fn an_input_that_fits_passes() {
        let ids = vec![1_i64; 6];
        let input = TensorInput::new([2, 3], &ids);
        assert_eq!(input.mismatch(&info(ElementType::I64, &[None, None])), None);
        assert_eq!(
            input.mismatch(&info(ElementType::I64, &[None, Some(3)])),
            None
        );
        let mask = [true, false];
        let input = TensorInput::new(vec![2], &mask[..]);
        assert_eq!(input.element_type(), ElementType::Bool);
        assert_eq!(input.mismatch(&info(ElementType::Bool, &[None])), None);
    }

    #[test]
    fn an_input_that_does_not_fit_says_why() {
        let ids = vec![1_i64; 6];
        let wrong_count = TensorInput::new([2, 4], &ids)
            .mismatch(&info(ElementType::I64, &[None, None]))
            .unwrap();
        assert!(wrong_count.contains("8 elements but 6"), "{wrong_count}");
        let wrong_type = TensorInput::new([2, 3], &ids)
            .mismatch(&info(ElementType::I32, &[None, None]))
            .unwrap();
        assert!(wrong_type.contains("takes i32"), "{wrong_type}");
        assert!(wrong_type.contains("not i64"), "{wrong_type}");
        let wrong_rank = TensorInput::new([6], &ids)
            .mismatch(&info(ElementType::I64, &[None, None]))
            .unwrap();
        assert!(wrong_rank.contains("[?, ?]"), "{wrong_rank}");
        let wrong_dim = TensorInput::new([3, 2], &ids)
            .mismatch(&info(ElementType::I64, &[None, Some(3)]))
            .unwrap();
        assert!(wrong_dim.contains("[?, 3], not [3, 2]"), "{wrong_dim}");
        let undeclared = TensorInput::new([2, 3], &ids).mismatch(&info(ElementType::I64, &[]));
        assert_eq!(undeclared, None);
    }

    #[test]
    fn typed_accessors_check_the_element_type() {
        let tensor = Tensor::new("logits", vec![1, 2], OutputData::F32(vec![0.5, 1.5]));
        assert_eq!(tensor.f32().unwrap(), &[0.5, 1.5]);
        let error = tensor.i64().unwrap_err().to_string();
        assert_eq!(error, "tensor `logits` holds f32 elements, not i64");
        assert_eq!(tensor.clone().into_f32().unwrap(), vec![0.5, 1.5]);
        let error = tensor.into_bool().unwrap_err().to_string();
        assert_eq!(error, "tensor `logits` holds f32 elements, not bool");

        let half = Tensor::new("h", vec![1], OutputData::Unsupported(ElementType::F16));
        assert_eq!(half.element_type(), ElementType::F16);
        let error = half.f32().unwrap_err().to_string();
        assert_eq!(error, "tensor `h` holds f16 elements, not f32");
    }

    #[test]
    fn outputs_are_found_by_name_or_position() {
        let mut outputs = Outputs::new(
            Arc::from(Path::new("/models/m.onnx")),
            vec![
                Tensor::new("boxes", vec![1, 4], OutputData::F32(vec![0.0; 4])),
                Tensor::new("labels", vec![1], OutputData::I64(vec![7])),
            ],
        );
        assert_eq!(outputs.len(), 2);
        assert_eq!(outputs.at(1).unwrap().name(), "labels");
        assert_eq!(outputs.get("labels").unwrap().i64().unwrap(), &[7]);
        let error = outputs.get("scores").unwrap_err().to_string();
        assert_eq!(
            error,
            "/models/m.onnx: the model has no output `scores` (outputs: `boxes`, `labels`)"
        );
        let error = outputs.at(2).unwrap_err().to_string();
        assert!(error.contains("no output number 2"), "{error}");
        let boxes = outputs.take("boxes").unwrap();
        assert_eq!(boxes.into_f32().unwrap(), vec![0.0; 4]);
        assert_eq!(
            outputs.iter().map(Tensor::name).collect::<Vec<_>>(),
            ["labels"]
        );
    }
}
