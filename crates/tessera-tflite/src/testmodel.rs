//! Hand-built TFLite models for unit tests, written with the test flatbuffer writer and the
//! same schema field ids the reader uses.

use crate::flatbuf::build::{F, T, finish};

pub(crate) const F32: u8 = 0;
pub(crate) const F16: u8 = 1;

struct TTensor {
    name: String,
    shape: Vec<i32>,
    dtype: u8,
    buffer: u32,
    sparsity: Option<T>,
}

struct TOp {
    code: u32,
    inputs: Vec<i32>,
    outputs: Vec<i32>,
    options: Option<T>,
}

/// A one-subgraph model under construction.
pub(crate) struct TModel {
    tensors: Vec<TTensor>,
    pub inputs: Vec<i32>,
    pub outputs: Vec<i32>,
    ops: Vec<TOp>,
    codes: Vec<(i32, Option<String>)>,
    buffers: Vec<Vec<u8>>,
}

impl TModel {
    pub(crate) fn new() -> Self {
        TModel {
            tensors: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            ops: Vec::new(),
            codes: Vec::new(),
            // Buffer 0 is the empty sentinel, as in real files.
            buffers: vec![Vec::new()],
        }
    }

    /// An activation tensor (no data).
    pub(crate) fn tensor(&mut self, name: &str, shape: &[i32]) -> i32 {
        self.push(name, shape, F32, 0, None)
    }

    fn push(
        &mut self,
        name: &str,
        shape: &[i32],
        dtype: u8,
        buffer: u32,
        sparsity: Option<T>,
    ) -> i32 {
        self.tensors.push(TTensor {
            name: name.to_string(),
            shape: shape.to_vec(),
            dtype,
            buffer,
            sparsity,
        });
        self.tensors.len() as i32 - 1
    }

    fn buffer(&mut self, data: Vec<u8>) -> u32 {
        self.buffers.push(data);
        self.buffers.len() as u32 - 1
    }

    pub(crate) fn const_f32(&mut self, name: &str, shape: &[i32], data: &[f32]) -> i32 {
        let b = self.buffer(data.iter().flat_map(|x| x.to_le_bytes()).collect());
        self.push(name, shape, F32, b, None)
    }

    pub(crate) fn const_i32(&mut self, name: &str, shape: &[i32], data: &[i32]) -> i32 {
        let b = self.buffer(data.iter().flat_map(|x| x.to_le_bytes()).collect());
        self.push(name, shape, 2, b, None)
    }

    /// A sparse fp16 constant whose innermost dimension is CSR (like the detector's weights).
    pub(crate) fn sparse_f16(
        &mut self,
        name: &str,
        shape: &[i32],
        segments: &[u16],
        indices: &[u16],
        values: &[u16],
    ) -> i32 {
        let b = self.buffer(values.iter().flat_map(|x| x.to_le_bytes()).collect());
        let rank = shape.len();
        let mut dims: Vec<T> = shape[..rank - 1]
            .iter()
            .map(|&d| T::default().with(0, F::U8(0)).with(1, F::I32(d)))
            .collect();
        let u16s = |v: &[u16]| F::Table(T::default().with(0, F::VecU16(v.to_vec())));
        dims.push(
            T::default()
                .with(0, F::U8(1))
                .with(2, F::U8(2))
                .with(3, u16s(segments))
                .with(4, F::U8(2))
                .with(5, u16s(indices)),
        );
        let sparsity = T::default()
            .with(0, F::VecI32((0..rank as i32).collect()))
            .with(2, F::VecTable(dims));
        self.push(name, shape, F16, b, Some(sparsity))
    }

    fn code(&mut self, builtin: i32, custom: Option<&str>) -> u32 {
        let key = (builtin, custom.map(str::to_string));
        let i = match self.codes.iter().position(|c| *c == key) {
            Some(i) => i,
            None => {
                self.codes.push(key);
                self.codes.len() - 1
            }
        };
        i as u32
    }

    pub(crate) fn op(&mut self, builtin: i32, inputs: &[i32], outputs: &[i32], options: Option<T>) {
        let code = self.code(builtin, None);
        self.ops.push(TOp {
            code,
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
            options,
        });
    }

    pub(crate) fn custom_op(&mut self, name: &str, inputs: &[i32], outputs: &[i32]) {
        let code = self.code(32, Some(name));
        self.ops.push(TOp {
            code,
            inputs: inputs.to_vec(),
            outputs: outputs.to_vec(),
            options: None,
        });
    }

    pub(crate) fn build(&self) -> Vec<u8> {
        let codes = self
            .codes
            .iter()
            .map(|(b, custom)| {
                let mut t = T::default()
                    .with(0, F::U8((*b).min(127) as u8))
                    .with(2, F::I32(1))
                    .with(3, F::I32(*b));
                if let Some(c) = custom {
                    t = t.with(1, F::Str(c.clone()));
                }
                t
            })
            .collect();
        let tensors = self
            .tensors
            .iter()
            .map(|t| {
                let mut tt = T::default()
                    .with(0, F::VecI32(t.shape.clone()))
                    .with(1, F::U8(t.dtype))
                    .with(2, F::U32(t.buffer))
                    .with(3, F::Str(t.name.clone()));
                if let Some(s) = &t.sparsity {
                    tt = tt.with(6, F::Table(s.clone()));
                }
                tt
            })
            .collect();
        let ops = self
            .ops
            .iter()
            .map(|o| {
                let mut t = T::default()
                    .with(0, F::U32(o.code))
                    .with(1, F::VecI32(o.inputs.clone()))
                    .with(2, F::VecI32(o.outputs.clone()));
                if let Some(opts) = &o.options {
                    let builtin = self.codes[o.code as usize].0;
                    t = t
                        .with(3, F::U8(options_type(builtin)))
                        .with(4, F::Table(opts.clone()));
                }
                t
            })
            .collect();
        let subgraph = T::default()
            .with(0, F::VecTable(tensors))
            .with(1, F::VecI32(self.inputs.clone()))
            .with(2, F::VecI32(self.outputs.clone()))
            .with(3, F::VecTable(ops))
            .with(4, F::Str("main".into()));
        let buffers = self
            .buffers
            .iter()
            .map(|b| {
                if b.is_empty() {
                    T::default()
                } else {
                    T::default().with(0, F::VecU8(b.clone()))
                }
            })
            .collect();
        let model = T::default()
            .with(0, F::U32(3))
            .with(1, F::VecTable(codes))
            .with(2, F::VecTable(vec![subgraph]))
            .with(3, F::Str("test model".into()))
            .with(4, F::VecTable(buffers));
        finish(&model, b"TFL3")
    }
}

/// The `BuiltinOptions` union type of an operator's options table.
fn options_type(builtin: i32) -> u8 {
    use crate::tflite::op;
    match builtin {
        op::CONV_2D => 1,
        op::DEPTHWISE_CONV_2D => 2,
        op::AVERAGE_POOL_2D | op::MAX_POOL_2D => 5,
        op::CONCATENATION => 10,
        op::ADD => 11,
        op::RESIZE_BILINEAR => 15,
        op::RESHAPE => 17,
        op::SPACE_TO_DEPTH => 19,
        op::MUL => 21,
        op::PAD => 22,
        op::SUB => 28,
        op::DIV => 29,
        op::SQUEEZE => 30,
        op::PADV2 => 43,
        op::EXPAND_DIMS => 52,
        op::LEAKY_RELU => 75,
        op::HARD_SWISH => 91,
        op::DEPTH_TO_SPACE => 94,
        other => panic!("no options type for builtin {other}"),
    }
}

/// Options table helpers.
pub(crate) fn opts(fields: Vec<(usize, F)>) -> Option<T> {
    Some(T(fields))
}
