//! TFLite subgraph to ONNX graph.
//!
//! Layout: TFLite is NHWC (conv filters OHWI). The converted graph runs NCHW inside, because
//! ONNX's Conv, pooling, Resize and DepthToSpace are defined on NCHW and ONNX Runtime runs them
//! fastest that way; only the graph edges get a Transpose. The rule is simple and global: every
//! rank-4 TFLite tensor is held in ONNX as NCHW (constants are transposed at conversion), all
//! other ranks keep TFLite's layout. Operators whose meaning depends on the layout (axes,
//! paddings, reshapes) translate accordingly; a reshape that touches rank 4 goes through NHWC
//! so element order matches TFLite.
//!
//! Constants: DEQUANTIZE and DENSIFY of constant tensors are folded at conversion time (fp16 and
//! sparse weights become dense f32 initializers), so the ONNX graph has only compute nodes.

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use crate::constant::{Const, Data};
use crate::error::ConvertError;
use crate::flatbuf::Result;
use crate::layout::{
    DEPTHWISE_TO_OIHW, TO_NCHW, TO_NHWC, element_count, nhwc_axis_to_nchw, window_axis,
};
use crate::onnx::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    ValueInfoProto, data_type,
};
use crate::sparse::dense_positions;
use crate::tflite::{Model, Operator, SubGraph, TensorType, op};

/// ONNX opset the graph is written for (Resize-13, Pad-13, Clip-13 and HardSwish-14 included).
pub const OPSET: i64 = 17;
/// IR version matching [`OPSET`].
pub const IR_VERSION: i64 = 8;

/// Protobuf messages cannot exceed 2 GiB.
const PROTOBUF_LIMIT: usize = i32::MAX as usize;

/// Builtin operators with a translation, by name.
pub(crate) const SUPPORTED: &[i32] = &[
    op::ADD,
    op::AVERAGE_POOL_2D,
    op::CONCATENATION,
    op::CONV_2D,
    op::DEPTHWISE_CONV_2D,
    op::DEPTH_TO_SPACE,
    op::DEQUANTIZE,
    op::LOGISTIC,
    op::MAX_POOL_2D,
    op::MUL,
    op::RELU,
    op::RELU_N1_TO_1,
    op::RELU6,
    op::RESHAPE,
    op::RESIZE_BILINEAR,
    op::SPACE_TO_DEPTH,
    op::TANH,
    op::PAD,
    op::SUB,
    op::DIV,
    op::SQUEEZE,
    op::PADV2,
    op::EXPAND_DIMS,
    op::LEAKY_RELU,
    op::HARD_SWISH,
    op::DENSIFY,
];

/// Converts subgraph 0 of a TFLite model to an ONNX model.
pub(crate) fn convert_model(bytes: &[u8]) -> Result<ModelProto> {
    let model = Model::parse(bytes)?;
    let sg = model
        .subgraphs
        .first()
        .ok_or_else(|| ConvertError::Invalid("the model has no subgraph".to_string()))?;
    let mut c = Converter::new(&model, sg);
    c.graph_inputs()?;
    for (index, op) in sg.operators.iter().enumerate() {
        c.operator(index, op)?;
    }
    c.graph_outputs()?;
    let graph = GraphProto {
        node: c.nodes,
        name: "tflite".to_string(),
        initializer: c.initializers,
        input: c.inputs,
        output: c.outputs,
        ..GraphProto::default()
    };
    Ok(ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
        producer_name: "tessera-tflite".to_string(),
        producer_version: env!("CARGO_PKG_VERSION").to_string(),
        doc_string: model.description.clone().unwrap_or_default(),
        graph: Some(graph),
        ..ModelProto::default()
    })
}

/// The operator being converted, for error messages.
struct Ctx {
    index: usize,
    name: String,
}

impl Ctx {
    fn err(&self, reason: impl Into<String>) -> ConvertError {
        ConvertError::Operator {
            index: self.index,
            name: self.name.clone(),
            reason: reason.into(),
        }
    }
}

fn ints(v: &[usize]) -> Vec<i64> {
    v.iter().map(|&x| x as i64).collect()
}

// Fused activation values of `ActivationFunctionType`.
const ACT_NONE: u8 = 0;
const ACT_RELU: u8 = 1;
const ACT_RELU_N1_TO_1: u8 = 2;
const ACT_RELU6: u8 = 3;
const ACT_TANH: u8 = 4;
const ACT_SIGN_BIT: u8 = 5;

struct Converter<'m, 'a> {
    model: &'m Model<'a>,
    sg: &'m SubGraph<'a>,
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    /// ONNX value holding each TFLite tensor (in the layout described in the module docs).
    values: Vec<Option<String>>,
    /// Constant tensors, decoded or folded.
    consts: HashMap<usize, Rc<Const>>,
    /// Every name used for a value, so new ones stay unique.
    names: HashSet<String>,
    /// Graph outputs the producing operator writes directly, by tensor.
    direct_outputs: HashMap<usize, String>,
    /// External names of graph outputs, in order.
    output_names: Vec<String>,
    scalars: HashMap<u32, String>,
    initializer_bytes: usize,
    node_count: usize,
}

impl<'m, 'a> Converter<'m, 'a> {
    fn new(model: &'m Model<'a>, sg: &'m SubGraph<'a>) -> Self {
        Converter {
            model,
            sg,
            nodes: Vec::new(),
            initializers: Vec::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            values: vec![None; sg.tensors.len()],
            consts: HashMap::new(),
            names: HashSet::new(),
            direct_outputs: HashMap::new(),
            output_names: Vec::new(),
            scalars: HashMap::new(),
            initializer_bytes: 0,
            node_count: 0,
        }
    }

    // ---- names, nodes, initializers ----

    fn fresh(&mut self, base: &str) -> String {
        let base = if base.is_empty() { "value" } else { base };
        if self.names.insert(base.to_string()) {
            return base.to_string();
        }
        let mut k = 1usize;
        loop {
            let name = format!("{base}_{k}");
            if self.names.insert(name.clone()) {
                return name;
            }
            k += 1;
        }
    }

    fn node(
        &mut self,
        op_type: &str,
        inputs: Vec<String>,
        output: String,
        attribute: Vec<AttributeProto>,
    ) {
        self.node_count += 1;
        self.nodes.push(NodeProto {
            input: inputs,
            output: vec![output],
            name: format!("{op_type}_{}", self.node_count),
            op_type: op_type.to_string(),
            attribute,
            ..NodeProto::default()
        });
    }

    fn initializer(&mut self, base: &str, c: &Const) -> Result<String> {
        let name = self.fresh(base);
        let t = c.to_tensor_proto(&name);
        self.initializer_bytes += t.raw_data.len();
        if self.initializer_bytes > PROTOBUF_LIMIT {
            return Err(ConvertError::TooLarge(self.initializer_bytes));
        }
        self.initializers.push(t);
        Ok(name)
    }

    fn int64s(&mut self, base: &str, v: Vec<i64>) -> Result<String> {
        let c = Const {
            shape: vec![v.len()],
            data: Data::I64(v),
        };
        self.initializer(base, &c)
    }

    /// A shared f32 scalar initializer (Clip bounds, pad values).
    fn scalar(&mut self, v: f32) -> Result<String> {
        if let Some(n) = self.scalars.get(&v.to_bits()) {
            return Ok(n.clone());
        }
        let c = Const {
            shape: Vec::new(),
            data: Data::F32(vec![v]),
        };
        let name = self.initializer(&format!("scalar_{v}"), &c)?;
        self.scalars.insert(v.to_bits(), name.clone());
        Ok(name)
    }

    // ---- tensors ----

    fn tensor_name(&self, t: usize) -> String {
        match self.sg.tensors.get(t) {
            Some(tensor) if !tensor.name.is_empty() => tensor.name.clone(),
            _ => format!("tensor_{t}"),
        }
    }

    fn index(&self, raw: i32) -> Result<usize> {
        usize::try_from(raw)
            .ok()
            .filter(|&t| t < self.sg.tensors.len())
            .ok_or_else(|| {
                ConvertError::Invalid(format!(
                    "tensor index {raw} out of range ({} tensors)",
                    self.sg.tensors.len()
                ))
            })
    }

    /// A tensor's static shape. Negative dimensions are refused: the graph is built for the
    /// shapes TFLite allocated.
    fn shape(&self, t: usize) -> Result<Vec<usize>> {
        let tensor = &self.sg.tensors[t];
        tensor
            .shape
            .iter()
            .map(|&d| usize::try_from(d).ok())
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ConvertError::Invalid(format!(
                    "tensor {t} ({}) has a dynamic shape {:?}",
                    tensor.name, tensor.shape
                ))
            })
    }

    fn rank(&self, t: usize) -> usize {
        self.sg.tensors[t].shape.len()
    }

    /// The constant value of a tensor: its buffer (expanded if sparse) or a folded result.
    fn constant(&mut self, t: usize) -> Result<Option<Rc<Const>>> {
        if let Some(c) = self.consts.get(&t) {
            return Ok(Some(c.clone()));
        }
        let tensor = &self.sg.tensors[t];
        let buffer = self
            .model
            .buffers
            .get(tensor.buffer as usize)
            .ok_or_else(|| {
                ConvertError::Invalid(format!(
                    "tensor {t} ({}) refers to buffer {} of {}",
                    tensor.name,
                    tensor.buffer,
                    self.model.buffers.len()
                ))
            })?;
        if buffer.is_empty() {
            return Ok(None);
        }
        let invalid = |reason: String| {
            ConvertError::Invalid(format!("tensor {t} ({}): {reason}", tensor.name))
        };
        let shape = self.shape(t)?;
        let count = element_count(&shape).ok_or_else(|| invalid("shape overflows".into()))?;
        if count.saturating_mul(4) > PROTOBUF_LIMIT {
            return Err(ConvertError::TooLarge(count.saturating_mul(4)));
        }
        let mut data = Data::from_le_bytes(tensor.dtype, buffer).ok_or_else(|| {
            invalid(format!(
                "{} bytes of {:?} data cannot be read",
                buffer.len(),
                tensor.dtype
            ))
        })?;
        if let Some(sp) = &tensor.sparsity {
            let positions =
                dense_positions(sp, &shape).map_err(|e| invalid(format!("sparsity: {e}")))?;
            data = data
                .scattered(&positions, count)
                .map_err(|e| invalid(format!("sparsity: {e}")))?;
        }
        if data.len() != count {
            return Err(invalid(format!(
                "{} elements for shape {shape:?}",
                data.len()
            )));
        }
        let c = Rc::new(Const { shape, data });
        self.consts.insert(t, c.clone());
        Ok(Some(c))
    }

    /// The ONNX value of a tensor, making constants into initializers (rank 4 as NCHW).
    fn operand(&mut self, t: usize) -> Result<String> {
        if let Some(v) = &self.values[t] {
            return Ok(v.clone());
        }
        let Some(c) = self.constant(t)? else {
            return Err(ConvertError::Invalid(format!(
                "tensor {t} ({}) is used before any operator produces it",
                self.tensor_name(t)
            )));
        };
        let name = if c.shape.len() == 4 {
            let nchw = c
                .transposed(&TO_NCHW)
                .ok_or_else(|| ConvertError::Invalid(format!("tensor {t} cannot be transposed")))?;
            self.initializer(&self.tensor_name(t), &nchw)?
        } else {
            self.initializer(&self.tensor_name(t), &c)?
        };
        self.values[t] = Some(name.clone());
        Ok(name)
    }

    /// An operand of an elementwise operator whose output is rank 4 (NCHW): lower ranks
    /// broadcast against NHWC in TFLite, so they are padded to rank 4 and moved to NCHW too.
    fn broadcast_operand(&mut self, ctx: &Ctx, t: usize) -> Result<String> {
        let rank = self.rank(t);
        if rank == 4 {
            return self.operand(t);
        }
        if rank > 4 {
            return Err(ctx.err(format!("operand of rank {rank} with a rank-4 output")));
        }
        let mut nhwc = vec![1usize; 4 - rank];
        nhwc.extend(self.shape(t)?);
        if let Some(c) = self.constant(t)? {
            let padded = Const {
                shape: nhwc,
                data: c.data.clone(),
            };
            let nchw = padded
                .transposed(&TO_NCHW)
                .ok_or_else(|| ctx.err("constant cannot be transposed"))?;
            return self.initializer(&format!("{}_nchw", self.tensor_name(t)), &nchw);
        }
        let v = self.operand(t)?;
        let shape = self.int64s(&format!("{v}_shape4"), ints(&nhwc))?;
        let reshaped = self.fresh(&format!("{v}_rank4"));
        self.node("Reshape", vec![v, shape], reshaped.clone(), vec![]);
        let out = self.fresh(&format!("{reshaped}_nchw"));
        self.node(
            "Transpose",
            vec![reshaped],
            out.clone(),
            vec![AttributeProto::ints("perm", &[0, 3, 1, 2])],
        );
        Ok(out)
    }

    /// Names the ONNX value an operator writes for output tensor `t`.
    fn define(&mut self, t: usize) -> Result<String> {
        if self.values[t].is_some() || self.consts.contains_key(&t) {
            return Err(ConvertError::Invalid(format!(
                "tensor {t} ({}) is produced twice",
                self.tensor_name(t)
            )));
        }
        let name = match self.direct_outputs.get(&t) {
            Some(n) => n.clone(),
            None => self.fresh(&self.tensor_name(t)),
        };
        self.values[t] = Some(name.clone());
        Ok(name)
    }

    // ---- graph edges ----

    fn value_info(&self, t: usize, name: &str) -> Result<ValueInfoProto> {
        let tensor = &self.sg.tensors[t];
        let elem = tensor.dtype.onnx_type().ok_or_else(|| {
            ConvertError::Invalid(format!(
                "tensor {t} ({}) has type {:?}",
                tensor.name, tensor.dtype
            ))
        })?;
        Ok(ValueInfoProto::tensor(name, elem, &ints(&self.shape(t)?)))
    }

    fn graph_inputs(&mut self) -> Result<()> {
        for &raw in &self.sg.inputs {
            let t = self.index(raw)?;
            let name = self.fresh(&self.tensor_name(t));
            self.inputs.push(self.value_info(t, &name)?);
            if self.rank(t) == 4 {
                let inner = self.fresh(&format!("{name}_nchw"));
                self.node(
                    "Transpose",
                    vec![name],
                    inner.clone(),
                    vec![AttributeProto::ints("perm", &ints(&TO_NCHW))],
                );
                self.values[t] = Some(inner);
            } else {
                self.values[t] = Some(name);
            }
        }
        // Reserve output names now so they stay exactly the TFLite names.
        let inputs: HashSet<usize> = self
            .values
            .iter()
            .enumerate()
            .filter(|(_, v)| v.is_some())
            .map(|(i, _)| i)
            .collect();
        for &raw in &self.sg.outputs {
            let t = self.index(raw)?;
            let name = self.fresh(&self.tensor_name(t));
            if self.rank(t) != 4 && !inputs.contains(&t) && !self.direct_outputs.contains_key(&t) {
                self.direct_outputs.insert(t, name.clone());
            }
            self.output_names.push(name);
        }
        Ok(())
    }

    fn graph_outputs(&mut self) -> Result<()> {
        let outputs: Vec<(usize, String)> = self
            .sg
            .outputs
            .iter()
            .zip(self.output_names.clone())
            .map(|(&raw, name)| Ok((self.index(raw)?, name)))
            .collect::<Result<_>>()?;
        for (t, name) in outputs {
            if self.values[t].as_deref() != Some(name.as_str()) {
                let v = self.operand(t)?;
                if self.rank(t) == 4 {
                    self.node(
                        "Transpose",
                        vec![v],
                        name.clone(),
                        vec![AttributeProto::ints("perm", &ints(&TO_NHWC))],
                    );
                } else {
                    self.node("Identity", vec![v], name.clone(), vec![]);
                }
            }
            self.outputs.push(self.value_info(t, &name)?);
        }
        Ok(())
    }

    // ---- operators ----

    fn operator(&mut self, index: usize, op: &Operator<'a>) -> Result<()> {
        let code = self.model.op_code(op)?;
        let ctx = Ctx {
            index,
            name: code.name(),
        };
        let mut ins = Vec::with_capacity(op.inputs.len());
        for &raw in &op.inputs {
            ins.push(if raw < 0 {
                None
            } else {
                Some(self.index(raw)?)
            });
        }
        let outs = op
            .outputs
            .iter()
            .map(|&raw| self.index(raw))
            .collect::<Result<Vec<_>>>()?;
        let o = Ops {
            ctx: &ctx,
            op,
            ins,
            outs,
        };
        match code.builtin {
            op::CONV_2D => self.conv(&o, false),
            op::DEPTHWISE_CONV_2D => self.conv(&o, true),
            op::MAX_POOL_2D => self.pool(&o, "MaxPool"),
            op::AVERAGE_POOL_2D => self.pool(&o, "AveragePool"),
            op::ADD => self.binary(&o, "Add"),
            op::SUB => self.binary(&o, "Sub"),
            op::MUL => self.binary(&o, "Mul"),
            op::DIV => self.binary(&o, "Div"),
            op::PAD | op::PADV2 => self.pad(&o),
            op::DEQUANTIZE => self.dequantize(&o),
            op::DENSIFY => self.densify(&o),
            op::DEPTH_TO_SPACE => self.block(&o, "DepthToSpace"),
            op::SPACE_TO_DEPTH => self.block(&o, "SpaceToDepth"),
            op::RESIZE_BILINEAR => self.resize_bilinear(&o),
            op::RESHAPE | op::SQUEEZE | op::EXPAND_DIMS => self.reshape(&o),
            op::CONCATENATION => self.concat(&o),
            op::LOGISTIC => self.unary(&o, "Sigmoid", vec![]),
            op::RELU => self.unary(&o, "Relu", vec![]),
            op::TANH => self.unary(&o, "Tanh", vec![]),
            op::HARD_SWISH => self.unary(&o, "HardSwish", vec![]),
            op::LEAKY_RELU => {
                let alpha = o.f32(0, 0.0)?;
                self.unary(&o, "LeakyRelu", vec![AttributeProto::float("alpha", alpha)])
            }
            op::RELU6 => self.clip_op(&o, 0.0, 6.0),
            op::RELU_N1_TO_1 => self.clip_op(&o, -1.0, 1.0),
            _ => Err(ConvertError::UnsupportedOperator {
                index,
                name: ctx.name.clone(),
            }),
        }
    }

    /// The node output for an operator with fused activation `act` writing `out`: `out` itself
    /// when the activation does nothing, else a temporary the activation reads.
    ///
    /// TFLite's float kernels apply a fused activation as an output clamp
    /// (`CalculateActivationRange`): RELU, RELU_N1_TO_1 and RELU6 clamp, while TANH and SIGN_BIT
    /// have no range and are not applied at all, so they convert to nothing.
    fn pre_activation(&mut self, ctx: &Ctx, act: u8, out: &str) -> Result<String> {
        match act {
            ACT_NONE | ACT_TANH | ACT_SIGN_BIT => Ok(out.to_string()),
            ACT_RELU | ACT_RELU_N1_TO_1 | ACT_RELU6 => Ok(self.fresh(&format!("{out}_preact"))),
            other => Err(ctx.err(format!("unknown fused activation {other}"))),
        }
    }

    fn activation(&mut self, act: u8, pre: String, out: String) -> Result<()> {
        match act {
            ACT_RELU => self.node("Relu", vec![pre], out, vec![]),
            ACT_RELU_N1_TO_1 => self.clip(pre, out, -1.0, 1.0)?,
            ACT_RELU6 => self.clip(pre, out, 0.0, 6.0)?,
            _ => {}
        }
        Ok(())
    }

    fn clip(&mut self, x: String, out: String, lo: f32, hi: f32) -> Result<()> {
        let lo = self.scalar(lo)?;
        let hi = self.scalar(hi)?;
        self.node("Clip", vec![x, lo, hi], out, vec![]);
        Ok(())
    }

    fn conv(&mut self, o: &Ops, depthwise: bool) -> Result<()> {
        let (x, w, y) = (o.input(0)?, o.input(1)?, o.output(0)?);
        let bias = o.ins.get(2).copied().flatten();
        let xs = self.shape4(o, x, "input")?;
        let ws = self.shape4(o, w, "filter")?;
        let ys = self.shape4(o, y, "output")?;
        // Conv2DOptions: padding, stride_w, stride_h, activation, dilation_w, dilation_h;
        // DepthwiseConv2DOptions has depth_multiplier before the activation.
        let (act_id, dil_id) = if depthwise { (4, 5) } else { (3, 4) };
        let same = o.padding()?;
        let (sw, sh) = (o.positive(1, 1, "stride_w")?, o.positive(2, 1, "stride_h")?);
        let (dw, dh) = (
            o.positive(dil_id, 1, "dilation_w")?,
            o.positive(dil_id + 1, 1, "dilation_h")?,
        );
        let act = o.u8(act_id, 0)?;
        let (kh, kw) = (ws[1], ws[2]);
        let (out_channels, group) = if depthwise {
            if ws[0] != 1 || xs[3] == 0 || !ws[3].is_multiple_of(xs[3]) {
                return Err(o
                    .ctx
                    .err(format!("depthwise filter {ws:?} for input {xs:?}")));
            }
            (ws[3], xs[3])
        } else {
            if ws[3] == 0 || !xs[3].is_multiple_of(ws[3]) {
                return Err(o.ctx.err(format!("filter {ws:?} for input {xs:?}")));
            }
            (ws[0], xs[3] / ws[3])
        };
        let (oh, pt, pb) = window_axis(xs[1], kh, sh, dh, same)
            .ok_or_else(|| o.ctx.err("window does not fit the input height"))?;
        let (ow, pl, pr) = window_axis(xs[2], kw, sw, dw, same)
            .ok_or_else(|| o.ctx.err("window does not fit the input width"))?;
        if [ys[0], oh, ow, out_channels] != [xs[0], ys[1], ys[2], ys[3]] {
            return Err(o.ctx.err(format!(
                "output {ys:?} does not match input {xs:?} and filter {ws:?}"
            )));
        }
        let xv = self.operand(x)?;
        let wv = if !depthwise {
            // OHWI held as "NCHW" is OIHW: exactly ONNX's weight layout.
            self.operand(w)?
        } else if let Some(c) = self.constant(w)? {
            let oihw = c
                .transposed(&DEPTHWISE_TO_OIHW)
                .ok_or_else(|| o.ctx.err("filter cannot be transposed"))?;
            self.initializer(&self.tensor_name(w), &oihw)?
        } else {
            // Held as [1, C*M, H, W]; grouped conv wants [C*M, 1, H, W].
            let v = self.operand(w)?;
            let t = self.fresh(&format!("{v}_oihw"));
            self.node(
                "Transpose",
                vec![v],
                t.clone(),
                vec![AttributeProto::ints("perm", &[1, 0, 2, 3])],
            );
            t
        };
        let mut inputs = vec![xv, wv];
        if let Some(b) = bias {
            inputs.push(self.operand(b)?);
        }
        let out = self.define(y)?;
        let pre = self.pre_activation(o.ctx, act, &out)?;
        let attrs = vec![
            AttributeProto::ints("dilations", &ints(&[dh, dw])),
            AttributeProto::int("group", group as i64),
            AttributeProto::ints("kernel_shape", &ints(&[kh, kw])),
            AttributeProto::ints("pads", &ints(&[pt, pl, pb, pr])),
            AttributeProto::ints("strides", &ints(&[sh, sw])),
        ];
        self.node("Conv", inputs, pre.clone(), attrs);
        self.activation(act, pre, out)
    }

    fn pool(&mut self, o: &Ops, kind: &str) -> Result<()> {
        let (x, y) = (o.input(0)?, o.output(0)?);
        let xs = self.shape4(o, x, "input")?;
        let ys = self.shape4(o, y, "output")?;
        // Pool2DOptions: padding, stride_w, stride_h, filter_width, filter_height, activation.
        let same = o.padding()?;
        let (sw, sh) = (o.positive(1, 1, "stride_w")?, o.positive(2, 1, "stride_h")?);
        let (fw, fh) = (
            o.positive(3, 1, "filter_width")?,
            o.positive(4, 1, "filter_height")?,
        );
        let act = o.u8(5, 0)?;
        let (oh, pt, pb) = window_axis(xs[1], fh, sh, 1, same)
            .ok_or_else(|| o.ctx.err("window does not fit the input height"))?;
        let (ow, pl, pr) = window_axis(xs[2], fw, sw, 1, same)
            .ok_or_else(|| o.ctx.err("window does not fit the input width"))?;
        if [oh, ow, xs[0], xs[3]] != [ys[1], ys[2], ys[0], ys[3]] {
            return Err(o
                .ctx
                .err(format!("output {ys:?} does not match input {xs:?}")));
        }
        let xv = self.operand(x)?;
        let out = self.define(y)?;
        let pre = self.pre_activation(o.ctx, act, &out)?;
        let mut attrs = vec![
            AttributeProto::ints("kernel_shape", &ints(&[fh, fw])),
            AttributeProto::ints("pads", &ints(&[pt, pl, pb, pr])),
            AttributeProto::ints("strides", &ints(&[sh, sw])),
        ];
        if kind == "AveragePool" {
            // TFLite averages over the pixels inside the image only.
            attrs.push(AttributeProto::int("count_include_pad", 0));
        }
        self.node(kind, vec![xv], pre.clone(), attrs);
        self.activation(act, pre, out)
    }

    fn binary(&mut self, o: &Ops, kind: &str) -> Result<()> {
        let (a, b, y) = (o.input(0)?, o.input(1)?, o.output(0)?);
        // Add/Sub/Mul/DivOptions: the fused activation is field 0.
        let act = o.u8(0, 0)?;
        let (av, bv) = if self.rank(y) == 4 {
            (
                self.broadcast_operand(o.ctx, a)?,
                self.broadcast_operand(o.ctx, b)?,
            )
        } else {
            (self.operand(a)?, self.operand(b)?)
        };
        let out = self.define(y)?;
        let pre = self.pre_activation(o.ctx, act, &out)?;
        self.node(kind, vec![av, bv], pre.clone(), vec![]);
        self.activation(act, pre, out)
    }

    fn unary(&mut self, o: &Ops, kind: &str, attrs: Vec<AttributeProto>) -> Result<()> {
        let (x, y) = (o.input(0)?, o.output(0)?);
        self.same_rank(o, x, y)?;
        let xv = self.operand(x)?;
        let out = self.define(y)?;
        self.node(kind, vec![xv], out, attrs);
        Ok(())
    }

    fn clip_op(&mut self, o: &Ops, lo: f32, hi: f32) -> Result<()> {
        let (x, y) = (o.input(0)?, o.output(0)?);
        self.same_rank(o, x, y)?;
        let xv = self.operand(x)?;
        let out = self.define(y)?;
        self.clip(xv, out, lo, hi)
    }

    fn pad(&mut self, o: &Ops) -> Result<()> {
        let (x, p, y) = (o.input(0)?, o.input(1)?, o.output(0)?);
        let rank = self.rank(x);
        let paddings = self
            .constant(p)?
            .and_then(|c| c.data.to_i64())
            .ok_or_else(|| o.ctx.err("paddings must be a constant integer tensor"))?;
        if paddings.len() != 2 * rank || self.rank(y) != rank {
            return Err(o
                .ctx
                .err(format!("{} paddings for rank {rank}", paddings.len())));
        }
        // TFLite: [[before, after]; rank] in NHWC axis order. ONNX: all befores, then all afters.
        let axes: Vec<usize> = if rank == 4 {
            TO_NCHW.to_vec()
        } else {
            (0..rank).collect()
        };
        let mut pads: Vec<i64> = axes.iter().map(|&a| paddings[2 * a]).collect();
        pads.extend(axes.iter().map(|&a| paddings[2 * a + 1]));
        let xv = self.operand(x)?;
        let pads = self.int64s(&format!("{}_pads", self.tensor_name(y)), pads)?;
        let mut inputs = vec![xv, pads];
        if let Some(v) = o.ins.get(2).copied().flatten() {
            let value = self
                .constant(v)?
                .and_then(|c| c.data.to_f32())
                .filter(|f| f.len() == 1)
                .ok_or_else(|| o.ctx.err("the pad value must be a constant float scalar"))?;
            inputs.push(self.scalar(value[0])?);
        }
        let out = self.define(y)?;
        self.node(
            "Pad",
            inputs,
            out,
            vec![AttributeProto::string("mode", "constant")],
        );
        Ok(())
    }

    fn dequantize(&mut self, o: &Ops) -> Result<()> {
        let (x, y) = (o.input(0)?, o.output(0)?);
        if self.sg.tensors[y].dtype != TensorType::Float32 {
            return Err(o
                .ctx
                .err(format!("output type {:?}", self.sg.tensors[y].dtype)));
        }
        if let Some(c) = self.constant(x)? {
            let q = self.sg.tensors[x].quantization.as_ref();
            let f = c.dequantized(q).map_err(|e| o.ctx.err(e))?;
            if self.values[y].is_some() || self.consts.insert(y, Rc::new(f)).is_some() {
                return Err(o.ctx.err("output tensor is produced twice"));
            }
            return Ok(());
        }
        // A dequantized activation: only fp16 (a Cast) has an exact ONNX equivalent here.
        if self.sg.tensors[x].dtype != TensorType::Float16 {
            return Err(o.ctx.err(format!(
                "dequantizing a non-constant {:?} tensor",
                self.sg.tensors[x].dtype
            )));
        }
        let xv = self.operand(x)?;
        let out = self.define(y)?;
        self.node(
            "Cast",
            vec![xv],
            out,
            vec![AttributeProto::int("to", i64::from(data_type::FLOAT))],
        );
        Ok(())
    }

    fn densify(&mut self, o: &Ops) -> Result<()> {
        let (x, y) = (o.input(0)?, o.output(0)?);
        let c = self
            .constant(x)?
            .ok_or_else(|| o.ctx.err("the input must be a constant sparse tensor"))?;
        if self.values[y].is_some() || self.consts.insert(y, c).is_some() {
            return Err(o.ctx.err("output tensor is produced twice"));
        }
        Ok(())
    }

    fn block(&mut self, o: &Ops, kind: &str) -> Result<()> {
        let (x, y) = (o.input(0)?, o.output(0)?);
        self.shape4(o, x, "input")?;
        self.shape4(o, y, "output")?;
        // Depth/SpaceToDepthOptions: block_size is field 0. TFLite orders the channel as
        // (row-in-block, column-in-block, channel): ONNX's DCR mode.
        let bs = o.positive(0, 0, "block_size")?;
        let xv = self.operand(x)?;
        let out = self.define(y)?;
        let mut attrs = vec![AttributeProto::int("blocksize", bs as i64)];
        if kind == "DepthToSpace" {
            attrs.push(AttributeProto::string("mode", "DCR"));
        }
        self.node(kind, vec![xv], out, attrs);
        Ok(())
    }

    fn resize_bilinear(&mut self, o: &Ops) -> Result<()> {
        let (x, y) = (o.input(0)?, o.output(0)?);
        let xs = self.shape4(o, x, "input")?;
        let ys = self.shape4(o, y, "output")?;
        if xs[0] != ys[0] || xs[3] != ys[3] {
            return Err(o.ctx.err(format!("output {ys:?} for input {xs:?}")));
        }
        // ResizeBilinearOptions: new_height, new_width (deprecated), align_corners, half_pixel_centers.
        let align_corners = o.u8(2, 0)? != 0;
        let half_pixel = o.u8(3, 0)? != 0;
        let mode = match (align_corners, half_pixel) {
            (true, false) => "align_corners",
            (false, true) => "half_pixel",
            (false, false) => "asymmetric",
            (true, true) => return Err(o.ctx.err("align_corners and half_pixel_centers both set")),
        };
        // The output tensor's shape is what TFLite allocated from the size input.
        let xv = self.operand(x)?;
        let sizes = self.int64s(
            &format!("{}_sizes", self.tensor_name(y)),
            ints(&[ys[0], ys[3], ys[1], ys[2]]),
        )?;
        let out = self.define(y)?;
        let attrs = vec![
            AttributeProto::string("mode", "linear"),
            AttributeProto::string("coordinate_transformation_mode", mode),
        ];
        self.node(
            "Resize",
            vec![xv, String::new(), String::new(), sizes],
            out,
            attrs,
        );
        Ok(())
    }

    fn reshape(&mut self, o: &Ops) -> Result<()> {
        let (x, y) = (o.input(0)?, o.output(0)?);
        let xs = self.shape(x)?;
        let ys = self.shape(y)?;
        if element_count(&xs) != element_count(&ys) {
            return Err(o.ctx.err(format!("cannot reshape {xs:?} to {ys:?}")));
        }
        if let Some(c) = self.constant(x)? {
            let c = Const {
                shape: ys,
                data: c.data.clone(),
            };
            if self.values[y].is_some() || self.consts.insert(y, Rc::new(c)).is_some() {
                return Err(o.ctx.err("output tensor is produced twice"));
            }
            return Ok(());
        }
        // TFLite reshapes NHWC memory order: leave NCHW first, come back after.
        let mut v = self.operand(x)?;
        if xs.len() == 4 {
            let t = self.fresh(&format!("{v}_nhwc"));
            self.node(
                "Transpose",
                vec![v],
                t.clone(),
                vec![AttributeProto::ints("perm", &ints(&TO_NHWC))],
            );
            v = t;
        }
        let out = self.define(y)?;
        let shape = self.int64s(&format!("{out}_shape"), ints(&ys))?;
        if ys.len() == 4 {
            let t = self.fresh(&format!("{out}_nhwc"));
            self.node("Reshape", vec![v, shape], t.clone(), vec![]);
            self.node(
                "Transpose",
                vec![t],
                out,
                vec![AttributeProto::ints("perm", &ints(&TO_NCHW))],
            );
        } else {
            self.node("Reshape", vec![v, shape], out, vec![]);
        }
        Ok(())
    }

    fn concat(&mut self, o: &Ops) -> Result<()> {
        let y = o.output(0)?;
        let rank = self.rank(y);
        // ConcatenationOptions: axis, fused activation.
        let axis = o.i32(0, 0)?;
        let act = o.u8(1, 0)?;
        let axis = usize::try_from(if axis < 0 { axis + rank as i32 } else { axis })
            .ok()
            .filter(|&a| a < rank)
            .ok_or_else(|| o.ctx.err(format!("axis {axis} for rank {rank}")))?;
        let axis = if rank == 4 {
            nhwc_axis_to_nchw(axis)
        } else {
            axis
        };
        if o.ins.is_empty() {
            return Err(o.ctx.err("no inputs"));
        }
        let mut inputs = Vec::new();
        for k in 0..o.ins.len() {
            let t = o.input(k)?;
            self.same_rank(o, t, y)?;
            inputs.push(self.operand(t)?);
        }
        let out = self.define(y)?;
        let pre = self.pre_activation(o.ctx, act, &out)?;
        self.node(
            "Concat",
            inputs,
            pre.clone(),
            vec![AttributeProto::int("axis", axis as i64)],
        );
        self.activation(act, pre, out)
    }

    fn shape4(&self, o: &Ops, t: usize, what: &str) -> Result<[usize; 4]> {
        let s = self.shape(t)?;
        <[usize; 4]>::try_from(s.as_slice()).map_err(|_| {
            o.ctx
                .err(format!("{what} has shape {s:?}, expected rank 4"))
        })
    }

    fn same_rank(&self, o: &Ops, x: usize, y: usize) -> Result<()> {
        if self.rank(x) != self.rank(y) {
            return Err(o.ctx.err(format!(
                "input rank {} differs from output rank {}",
                self.rank(x),
                self.rank(y)
            )));
        }
        Ok(())
    }
}

/// An operator's context, tensor indices and option readers.
struct Ops<'o, 'a> {
    ctx: &'o Ctx,
    op: &'o Operator<'a>,
    ins: Vec<Option<usize>>,
    outs: Vec<usize>,
}

impl Ops<'_, '_> {
    fn input(&self, k: usize) -> Result<usize> {
        self.ins
            .get(k)
            .copied()
            .flatten()
            .ok_or_else(|| self.ctx.err(format!("input {k} is missing")))
    }

    fn output(&self, k: usize) -> Result<usize> {
        self.outs
            .get(k)
            .copied()
            .ok_or_else(|| self.ctx.err(format!("output {k} is missing")))
    }

    fn u8(&self, id: usize, default: u8) -> Result<u8> {
        self.op.options.map_or(Ok(default), |t| t.u8(id, default))
    }

    fn i32(&self, id: usize, default: i32) -> Result<i32> {
        self.op.options.map_or(Ok(default), |t| t.i32(id, default))
    }

    fn f32(&self, id: usize, default: f32) -> Result<f32> {
        self.op.options.map_or(Ok(default), |t| t.f32(id, default))
    }

    /// A positive integer option (strides, filter sizes, dilations, block sizes).
    fn positive(&self, id: usize, default: i32, what: &str) -> Result<usize> {
        let v = self.i32(id, default)?;
        usize::try_from(v)
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| self.ctx.err(format!("{what} is {v}")))
    }

    /// `Padding` (field 0 of conv and pool options): true for SAME.
    fn padding(&self) -> Result<bool> {
        match self.u8(0, 0)? {
            0 => Ok(true),
            1 => Ok(false),
            other => Err(self.ctx.err(format!("unknown padding {other}"))),
        }
    }
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
