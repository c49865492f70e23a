//! EfficientNet-Lite0 (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
//! Networks", 2019; the Lite variants from tensorflow/tpu `models/official/efficientnet/lite`):
//! MobileNetV2-style inverted residual blocks without squeeze-and-excitation, ReLU6 instead of
//! swish, and a stem of 32 and a head of 1280 channels that do not scale.
//!
//! The weights are a PyTorch state dict in the naming of `efficientnet_pytorch` (`_conv_stem`,
//! `_bn0`, `_blocks.N._expand_conv` / `_bn0` / `_depthwise_conv` / `_bn1` / `_project_conv` /
//! `_bn2`, `_conv_head`, `_bn1`, `_fc`), converted to safetensors. The network was trained in
//! TensorFlow, so every convolution pads like TensorFlow's `SAME` (for a stride of 2 the extra
//! row and column go at the bottom and right). Each BatchNorm (epsilon 1e-3, eval mode) is folded
//! into the convolution before it at load time.
//!
//! Input: `[batch, 3, height, width]` normalized pixels; output: `[batch, classes]` logits.

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Module, Result, Shape, Tensor, bail};
use candle_nn::VarBuilder;

/// BatchNorm's epsilon in EfficientNet (TensorFlow's `batch_norm_epsilon`).
const BN_EPS: f64 = 1e-3;

/// One stage of blocks: (repeats, kernel, first stride, expansion, in channels, out channels),
/// EfficientNet-B0's table, which Lite0 shares (width and depth multipliers of 1.0).
const STAGES: [(usize, usize, usize, usize, usize, usize); 7] = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
];

/// The stem's output channels.
const STEM: usize = 32;
/// The head's output channels.
const HEAD: usize = 1280;

/// TensorFlow's `SAME` padding for one axis: (before, after).
fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let output = input.div_ceil(stride);
    let total = ((output - 1) * stride + kernel).saturating_sub(input);
    (total / 2, total - total / 2)
}

/// A convolution with its BatchNorm folded in: `weight` `[out, in/groups, k, k]`, `bias` `[out]`.
struct FoldedConv {
    weight: Tensor,
    bias: Tensor,
    kernel: usize,
    stride: usize,
}

impl FoldedConv {
    fn load(
        conv: VarBuilder,
        bn: VarBuilder,
        shape: (usize, usize, usize),
        stride: usize,
    ) -> Result<Self> {
        let (out, per_group_in, kernel) = shape;
        let weight = conv.get((out, per_group_in, kernel, kernel), "weight")?;
        let gamma = bn.get(out, "weight")?;
        let beta = bn.get(out, "bias")?;
        let mean = bn.get(out, "running_mean")?;
        let var = bn.get(out, "running_var")?;
        let scale = (gamma / (var + BN_EPS)?.sqrt()?)?;
        let weight = weight.broadcast_mul(&scale.reshape((out, 1, 1, 1))?)?;
        let bias = (beta - (mean * &scale)?)?;
        Ok(FoldedConv {
            weight,
            bias,
            kernel,
            stride,
        })
    }

    fn out_channels(&self) -> usize {
        self.bias.dims1().unwrap_or(0)
    }

    /// A 1×1 convolution as one matrix product per image: `[out, in] × [in, h·w]`.
    fn pointwise(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, channels, height, width) = x.dims4()?;
        let out = self.out_channels();
        let weight = self.weight.reshape((out, channels))?;
        let y = weight.broadcast_left(batch)?.matmul(&x.reshape((
            batch,
            channels,
            height * width,
        ))?)?;
        y.broadcast_add(&self.bias.reshape((1, out, 1))?)?
            .reshape((batch, out, height, width))
    }

    /// A full convolution with `SAME` padding (the stem).
    fn dense(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, height, width) = x.dims4()?;
        let (top, bottom) = same_padding(height, self.kernel, self.stride);
        let (left, right) = same_padding(width, self.kernel, self.stride);
        let x = x
            .pad_with_zeros(2, top, bottom)?
            .pad_with_zeros(3, left, right)?;
        let y = x.conv2d(&self.weight, 0, self.stride, 1, 1)?;
        y.broadcast_add(&self.bias.reshape((1, self.out_channels(), 1, 1))?)
    }

    /// A depthwise convolution with `SAME` padding, then ReLU6. On the CPU one direct loop (candle
    /// runs a grouped convolution as one convolution per channel, over a thousand here).
    fn depthwise_relu6(&self, x: &Tensor) -> Result<Tensor> {
        if x.device().is_cpu() {
            let op = Depthwise {
                weight: self.weight.flatten_all()?.to_vec1::<f32>()?,
                bias: self.bias.to_vec1::<f32>()?,
                kernel: self.kernel,
                stride: self.stride,
            };
            return x.contiguous()?.apply_op1_no_bwd(&op);
        }
        let (_, channels, height, width) = x.dims4()?;
        let (top, bottom) = same_padding(height, self.kernel, self.stride);
        let (left, right) = same_padding(width, self.kernel, self.stride);
        let x = x
            .pad_with_zeros(2, top, bottom)?
            .pad_with_zeros(3, left, right)?;
        let y = x.conv2d(&self.weight, 0, self.stride, 1, channels)?;
        relu6(&y.broadcast_add(&self.bias.reshape((1, channels, 1, 1))?)?)
    }
}

fn relu6(x: &Tensor) -> Result<Tensor> {
    x.clamp(0f32, 6f32)
}

/// Depthwise convolution + bias + ReLU6 on contiguous f32 `[batch, channels, h, w]`, `SAME` padding.
struct Depthwise {
    weight: Vec<f32>,
    bias: Vec<f32>,
    kernel: usize,
    stride: usize,
}

impl CustomOp1 for Depthwise {
    fn name(&self) -> &'static str {
        "efficientnet-depthwise-relu6"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(data) = storage else {
            bail!("depthwise convolution: f32 input expected");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            bail!("depthwise convolution: contiguous input expected");
        };
        let input = &data[start..end];
        let (batch, channels, height, width) = layout.shape().dims4()?;
        let (k, s) = (self.kernel, self.stride);
        if self.bias.len() != channels || self.weight.len() != channels * k * k {
            bail!(
                "depthwise convolution: {channels} channels, weights for {}",
                self.bias.len()
            );
        }
        let (top, _) = same_padding(height, k, s);
        let (left, _) = same_padding(width, k, s);
        let (out_h, out_w) = (height.div_ceil(s), width.div_ceil(s));
        let mut out = vec![0f32; batch * channels * out_h * out_w];
        for (plane_index, plane_out) in out.chunks_exact_mut(out_h * out_w).enumerate() {
            let channel = plane_index % channels;
            let plane = &input[plane_index * height * width..(plane_index + 1) * height * width];
            let taps = &self.weight[channel * k * k..(channel + 1) * k * k];
            plane_out.fill(self.bias[channel]);
            for ky in 0..k {
                for kx in 0..k {
                    let tap = taps[ky * k + kx];
                    for oy in 0..out_h {
                        // Input row oy·s + ky − top, skipped when it falls in the padding.
                        let Some(iy) = (oy * s + ky).checked_sub(top).filter(|&iy| iy < height)
                        else {
                            continue;
                        };
                        let row = &plane[iy * width..(iy + 1) * width];
                        let out_row = &mut plane_out[oy * out_w..(oy + 1) * out_w];
                        // Output columns whose input column lies inside the row.
                        let first = left.saturating_sub(kx).div_ceil(s);
                        let last = if width + left > kx {
                            ((width + left - kx - 1) / s + 1).min(out_w)
                        } else {
                            0
                        };
                        if first >= last {
                            continue;
                        }
                        if s == 1 {
                            let shift = first + kx - left;
                            for (o, i) in out_row[first..last].iter_mut().zip(&row[shift..]) {
                                *o += tap * i;
                            }
                        } else {
                            for (ox, o) in out_row.iter_mut().enumerate().take(last).skip(first) {
                                *o += tap * row[ox * s + kx - left];
                            }
                        }
                    }
                }
            }
            for value in plane_out.iter_mut() {
                *value = value.clamp(0.0, 6.0);
            }
        }
        Ok((
            CpuStorage::F32(out),
            Shape::from((batch, channels, out_h, out_w)),
        ))
    }
}

/// One inverted residual block: expand (1×1), depthwise, project (1×1), plus the input when the
/// shape is kept.
struct Block {
    expand: Option<FoldedConv>,
    depthwise: FoldedConv,
    project: FoldedConv,
    residual: bool,
}

impl Block {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let hidden = match &self.expand {
            Some(expand) => relu6(&expand.pointwise(x)?)?,
            None => x.clone(),
        };
        let hidden = self.depthwise.depthwise_relu6(&hidden)?;
        let out = self.project.pointwise(&hidden)?;
        if self.residual { out + x } else { Ok(out) }
    }
}

/// EfficientNet-Lite0 with its classifier.
pub(crate) struct EfficientNetLite0 {
    stem: FoldedConv,
    blocks: Vec<Block>,
    head: FoldedConv,
    fc_weight: Tensor,
    fc_bias: Tensor,
    classes: usize,
    device: candle_core::Device,
}

impl EfficientNetLite0 {
    /// Loads the weights under `vb` (the converted state dict; names as the module doc says).
    pub(crate) fn load(vb: VarBuilder) -> Result<Self> {
        let stem = FoldedConv::load(vb.pp("_conv_stem"), vb.pp("_bn0"), (STEM, 3, 3), 2)?;
        let mut blocks = Vec::new();
        for (repeats, kernel, stride, expansion, input, output) in STAGES {
            for repeat in 0..repeats {
                let vb = vb.pp(format!("_blocks.{}", blocks.len()));
                let (input, stride) = if repeat == 0 {
                    (input, stride)
                } else {
                    (output, 1)
                };
                let hidden = input * expansion;
                let expand = (expansion != 1)
                    .then(|| {
                        FoldedConv::load(
                            vb.pp("_expand_conv"),
                            vb.pp("_bn0"),
                            (hidden, input, 1),
                            1,
                        )
                    })
                    .transpose()?;
                let depthwise = FoldedConv::load(
                    vb.pp("_depthwise_conv"),
                    vb.pp("_bn1"),
                    (hidden, 1, kernel),
                    stride,
                )?;
                let project = FoldedConv::load(
                    vb.pp("_project_conv"),
                    vb.pp("_bn2"),
                    (output, hidden, 1),
                    1,
                )?;
                blocks.push(Block {
                    expand,
                    depthwise,
                    project,
                    residual: stride == 1 && input == output,
                });
            }
        }
        let last = STAGES[STAGES.len() - 1].5;
        let head = FoldedConv::load(vb.pp("_conv_head"), vb.pp("_bn1"), (HEAD, last, 1), 1)?;
        let fc_bias = vb.pp("_fc").get_unchecked_dtype("bias", DType::F32)?;
        let classes = fc_bias.dims1()?;
        let fc_weight = vb.pp("_fc").get((classes, HEAD), "weight")?;
        Ok(EfficientNetLite0 {
            device: vb.device().clone(),
            stem,
            blocks,
            head,
            fc_weight,
            fc_bias,
            classes,
        })
    }

    /// The device its weights live on.
    pub(crate) fn device(&self) -> &candle_core::Device {
        &self.device
    }

    /// How many classes the classifier scores.
    pub(crate) fn classes(&self) -> usize {
        self.classes
    }
}

impl Module for EfficientNetLite0 {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = relu6(&self.stem.dense(x)?)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        let x = relu6(&self.head.pointwise(&x)?)?;
        // Global average pooling, then the classifier.
        let pooled = x.flatten_from(2)?.mean(2)?;
        pooled
            .matmul(&self.fc_weight.t()?)?
            .broadcast_add(&self.fc_bias)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn same_padding_puts_the_extra_pixel_after() {
        assert_eq!(same_padding(224, 3, 2), (0, 1));
        assert_eq!(same_padding(56, 5, 2), (1, 2));
        assert_eq!(same_padding(14, 5, 1), (2, 2));
        assert_eq!(same_padding(7, 3, 1), (1, 1));
        assert_eq!(same_padding(7, 3, 2), (1, 1));
    }

    /// The direct depthwise loop equals candle's grouped convolution on padded input.
    #[test]
    fn the_depthwise_loop_matches_a_grouped_convolution() {
        let device = Device::Cpu;
        for (kernel, stride, size) in [(3, 1, 7), (3, 2, 8), (5, 2, 9), (5, 1, 6), (3, 2, 7)] {
            let channels = 3;
            let x = Tensor::randn(0f32, 1.0, (2, channels, size, size + 1), &device).unwrap();
            let weight = Tensor::randn(0f32, 1.0, (channels, 1, kernel, kernel), &device).unwrap();
            let bias = Tensor::new(&[0.5f32, -0.25, 0.0], &device).unwrap();
            let conv = FoldedConv {
                weight: weight.clone(),
                bias: bias.clone(),
                kernel,
                stride,
            };
            let fast = conv.depthwise_relu6(&x).unwrap();
            let (top, bottom) = same_padding(size, kernel, stride);
            let (left, right) = same_padding(size + 1, kernel, stride);
            let padded = x
                .pad_with_zeros(2, top, bottom)
                .unwrap()
                .pad_with_zeros(3, left, right)
                .unwrap();
            let slow = padded
                .conv2d(&weight, 0, stride, 1, channels)
                .unwrap()
                .broadcast_add(&bias.reshape((1, channels, 1, 1)).unwrap())
                .unwrap()
                .clamp(0f32, 6f32)
                .unwrap();
            assert_eq!(fast.dims(), slow.dims(), "k{kernel} s{stride} n{size}");
            let diff = (fast - slow)
                .unwrap()
                .abs()
                .unwrap()
                .flatten_all()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(diff < 1e-5, "k{kernel} s{stride} n{size}: {diff}");
        }
    }
}
