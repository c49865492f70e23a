//! Constant tensors as the converter folds them: decoded from TFLite buffers, expanded from
//! sparse storage, dequantized, transposed, and finally written as ONNX initializers.

use crate::layout::{f16_to_f32, transpose};
use crate::onnx::{TensorProto, data_type};
use crate::sparse::scatter;
use crate::tflite::{Quantization, TensorType};

/// Typed element storage.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Data {
    F32(Vec<f32>),
    /// Half floats as raw bits: they are only ever widened or copied.
    F16(Vec<u16>),
    I32(Vec<i32>),
    I64(Vec<i64>),
    I16(Vec<i16>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    Bool(Vec<u8>),
}

/// Applies `$body` to the vector inside any variant, rebuilding the same variant.
macro_rules! each_variant {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            Data::F32($v) => Data::F32($body),
            Data::F16($v) => Data::F16($body),
            Data::I32($v) => Data::I32($body),
            Data::I64($v) => Data::I64($body),
            Data::I16($v) => Data::I16($body),
            Data::I8($v) => Data::I8($body),
            Data::U8($v) => Data::U8($body),
            Data::Bool($v) => Data::Bool($body),
        }
    };
}

fn le_chunks<const N: usize, T>(bytes: &[u8], f: fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            f(a)
        })
        .collect()
}

impl Data {
    /// Decodes little-endian `bytes` of `dtype`; `None` for types without a decoder or when
    /// the byte count is not a whole number of elements.
    pub(crate) fn from_le_bytes(dtype: TensorType, bytes: &[u8]) -> Option<Data> {
        if !bytes.len().is_multiple_of(dtype.size()?) {
            return None;
        }
        Some(match dtype {
            TensorType::Float32 => Data::F32(le_chunks(bytes, f32::from_le_bytes)),
            TensorType::Float16 => Data::F16(le_chunks(bytes, u16::from_le_bytes)),
            TensorType::Int32 => Data::I32(le_chunks(bytes, i32::from_le_bytes)),
            TensorType::Int64 => Data::I64(le_chunks(bytes, i64::from_le_bytes)),
            TensorType::Int16 => Data::I16(le_chunks(bytes, i16::from_le_bytes)),
            TensorType::Int8 => Data::I8(bytes.iter().map(|&b| b as i8).collect()),
            TensorType::Uint8 => Data::U8(bytes.to_vec()),
            TensorType::Bool => Data::Bool(bytes.to_vec()),
            _ => return None,
        })
    }

    pub(crate) fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F16(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::I16(v) => v.len(),
            Data::I8(v) => v.len(),
            Data::U8(v) | Data::Bool(v) => v.len(),
        }
    }

    /// The ONNX element type.
    pub(crate) fn onnx_type(&self) -> i32 {
        match self {
            Data::F32(_) => data_type::FLOAT,
            Data::F16(_) => data_type::FLOAT16,
            Data::I32(_) => data_type::INT32,
            Data::I64(_) => data_type::INT64,
            Data::I16(_) => data_type::INT16,
            Data::I8(_) => data_type::INT8,
            Data::U8(_) => data_type::UINT8,
            Data::Bool(_) => data_type::BOOL,
        }
    }

    fn raw(&self) -> Vec<u8> {
        match self {
            Data::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            Data::I8(v) => v.iter().map(|&x| x as u8).collect(),
            Data::U8(v) | Data::Bool(v) => v.clone(),
        }
    }

    pub(crate) fn transposed(&self, shape: &[usize], perm: &[usize]) -> Option<Data> {
        Some(each_variant!(self, v => transpose(v, shape, perm)?))
    }

    pub(crate) fn scattered(&self, positions: &[usize], total: usize) -> Result<Data, String> {
        Ok(each_variant!(self, v => scatter(v, positions, total)?))
    }

    /// Integer contents widened to i64 (for shapes, paddings, sizes).
    pub(crate) fn to_i64(&self) -> Option<Vec<i64>> {
        Some(match self {
            Data::I32(v) => v.iter().map(|&x| i64::from(x)).collect(),
            Data::I64(v) => v.clone(),
            Data::I16(v) => v.iter().map(|&x| i64::from(x)).collect(),
            Data::I8(v) => v.iter().map(|&x| i64::from(x)).collect(),
            Data::U8(v) => v.iter().map(|&x| i64::from(x)).collect(),
            _ => return None,
        })
    }

    /// Float contents as f32: exact for f32 and f16.
    pub(crate) fn to_f32(&self) -> Option<Vec<f32>> {
        match self {
            Data::F32(v) => Some(v.clone()),
            Data::F16(v) => Some(v.iter().map(|&h| f16_to_f32(h)).collect()),
            _ => None,
        }
    }
}

/// A dense constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Const {
    pub shape: Vec<usize>,
    pub data: Data,
}

impl Const {
    pub(crate) fn to_tensor_proto(&self, name: &str) -> TensorProto {
        TensorProto {
            dims: self.shape.iter().map(|&d| d as i64).collect(),
            data_type: self.data.onnx_type(),
            name: name.to_string(),
            raw_data: self.data.raw(),
            ..TensorProto::default()
        }
    }

    pub(crate) fn transposed(&self, perm: &[usize]) -> Option<Const> {
        Some(Const {
            shape: perm
                .iter()
                .map(|&p| self.shape.get(p).copied())
                .collect::<Option<_>>()?,
            data: self.data.transposed(&self.shape, perm)?,
        })
    }

    /// Dequantizes to f32: halves widen exactly; integers use the tensor's affine parameters
    /// `(q - zero_point) * scale`, per tensor or per `quantized_dimension` channel.
    pub(crate) fn dequantized(&self, q: Option<&Quantization>) -> Result<Const, String> {
        if let Some(f) = self.data.to_f32() {
            return Ok(Const {
                shape: self.shape.clone(),
                data: Data::F32(f),
            });
        }
        let values = self
            .data
            .to_i64()
            .ok_or("only float and integer tensors can be dequantized")?;
        let q = q
            .filter(|q| !q.scale.is_empty())
            .ok_or("integer tensor without quantization scales")?;
        let channels = q.scale.len();
        // Elements sharing one channel are contiguous runs of `inner` within blocks of
        // `channels * inner`.
        let inner = if channels == 1 {
            values.len().max(1)
        } else {
            let dim = usize::try_from(q.quantized_dimension)
                .ok()
                .filter(|&d| d < self.shape.len() && self.shape[d] == channels)
                .ok_or("quantized dimension does not match the scales")?;
            self.shape[dim + 1..].iter().product::<usize>().max(1)
        };
        let out = values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let c = if channels == 1 {
                    0
                } else {
                    (i / inner) % channels
                };
                let zp = q
                    .zero_point
                    .get(c)
                    .or(q.zero_point.first())
                    .copied()
                    .unwrap_or(0);
                (v - zp) as f32 * q.scale[c]
            })
            .collect();
        Ok(Const {
            shape: self.shape.clone(),
            data: Data::F32(out),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_rejects_partial_elements() {
        let bytes = [0u8, 0, 128, 63, 0, 0, 0, 64];
        assert_eq!(
            Data::from_le_bytes(TensorType::Float32, &bytes),
            Some(Data::F32(vec![1.0, 2.0]))
        );
        assert_eq!(Data::from_le_bytes(TensorType::Float32, &bytes[..7]), None);
        assert_eq!(Data::from_le_bytes(TensorType::String, &bytes), None);
    }

    #[test]
    fn dequantizes_halves_and_per_channel_ints() {
        let h = Const {
            shape: vec![2],
            data: Data::F16(vec![0x3c00, 0xc000]),
        };
        assert_eq!(
            h.dequantized(None).unwrap().data,
            Data::F32(vec![1.0, -2.0])
        );
        let q = Quantization {
            scale: vec![0.5, 2.0],
            zero_point: vec![1, 0],
            quantized_dimension: 0,
        };
        let i = Const {
            shape: vec![2, 2],
            data: Data::I8(vec![3, 5, 1, -1]),
        };
        assert_eq!(
            i.dequantized(Some(&q)).unwrap().data,
            Data::F32(vec![1.0, 2.0, 2.0, -2.0])
        );
        assert!(i.dequantized(None).is_err());
    }
}
