//! Pure helpers for layouts and arithmetic the converter must match exactly: TFLite's padding
//! and output sizes, tensor transposes (NHWC/OHWI to NCHW/OIHW) and half-float decoding.

/// NHWC to NCHW.
pub(crate) const TO_NCHW: [usize; 4] = [0, 3, 1, 2];
/// NCHW to NHWC.
pub(crate) const TO_NHWC: [usize; 4] = [0, 2, 3, 1];
/// A depthwise filter `[1, H, W, C*M]` to ONNX grouped-conv weights `[C*M, 1, H, W]`.
pub(crate) const DEPTHWISE_TO_OIHW: [usize; 4] = [3, 0, 1, 2];

/// Where NHWC axis `axis` lands in NCHW.
pub(crate) fn nhwc_axis_to_nchw(axis: usize) -> usize {
    match axis {
        1 => 2,
        2 => 3,
        3 => 1,
        other => other,
    }
}

/// One spatial axis of a convolution or pooling window: TFLite's output size and ONNX's
/// `(begin, end)` padding. SAME pads the odd pixel at the end, as TFLite does; `None` when the
/// window does not fit or a parameter is zero.
pub(crate) fn window_axis(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    same: bool,
) -> Option<(usize, usize, usize)> {
    if input == 0 || kernel == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let effective = (kernel - 1).checked_mul(dilation)? + 1;
    if same {
        let out = input.div_ceil(stride);
        let total = ((out - 1) * stride + effective).saturating_sub(input);
        let before = total / 2;
        Some((out, before, total - before))
    } else {
        let out = input.checked_sub(effective)? / stride + 1;
        Some((out, 0, 0))
    }
}

/// Row-major element count of a shape, `None` on overflow.
pub(crate) fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d))
}

/// Transposes row-major `data` of `shape` so that output axis `i` is input axis `perm[i]`.
/// `None` when the data does not match the shape or `perm` is not a permutation.
pub(crate) fn transpose<T: Copy>(data: &[T], shape: &[usize], perm: &[usize]) -> Option<Vec<T>> {
    let rank = shape.len();
    if perm.len() != rank || element_count(shape)? != data.len() {
        return None;
    }
    let mut seen = vec![false; rank];
    for &p in perm {
        if p >= rank || std::mem::replace(&mut seen[p], true) {
            return None;
        }
    }
    let mut in_strides = vec![1usize; rank];
    for d in (0..rank.saturating_sub(1)).rev() {
        in_strides[d] = in_strides[d + 1] * shape[d + 1];
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
    let mut out = Vec::with_capacity(data.len());
    let mut idx = vec![0usize; rank];
    let mut src = 0usize;
    for _ in 0..data.len() {
        out.push(*data.get(src)?);
        // Odometer increment over the output shape, keeping the source offset in step.
        for d in (0..rank).rev() {
            idx[d] += 1;
            src += strides[d];
            if idx[d] < out_shape[d] {
                break;
            }
            src -= strides[d] * idx[d];
            idx[d] = 0;
        }
    }
    Some(out)
}

/// Decodes an IEEE 754 half (binary16) to `f32`, exactly (every half is an `f32`).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    match exp {
        // Zero and subnormals: man * 2^-24.
        0 => sign * man as f32 * (1.0 / 16_777_216.0),
        0x1f => f32::from_bits((u32::from(h & 0x8000) << 16) | 0x7f80_0000 | (man << 13)),
        e => f32::from_bits((u32::from(h & 0x8000) << 16) | ((e + 112) << 23) | (man << 13)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_padding_matches_tflite() {
        // 224 -> 112 with a 3x3 stride-2 window: TFLite pads 0 before, 1 after.
        assert_eq!(window_axis(224, 3, 2, 1, true), Some((112, 0, 1)));
        // Stride 1 keeps the size and pads symmetrically for odd kernels.
        assert_eq!(window_axis(56, 5, 1, 1, true), Some((56, 2, 2)));
        // Even kernels put the extra pixel at the end.
        assert_eq!(window_axis(8, 4, 1, 1, true), Some((8, 1, 2)));
        // 2x2 stride-2 pooling on an even size needs no padding.
        assert_eq!(window_axis(64, 2, 2, 1, true), Some((32, 0, 0)));
        // Odd size with stride 2: 7 -> 4, total pad (3*2+3-7)=2.
        assert_eq!(window_axis(7, 3, 2, 1, true), Some((4, 1, 1)));
        // Dilation widens the window: effective 5.
        assert_eq!(window_axis(10, 3, 1, 2, true), Some((10, 2, 2)));
        // A window larger than the input still pads to the TFLite size.
        assert_eq!(window_axis(2, 5, 1, 1, true), Some((2, 2, 2)));
    }

    #[test]
    fn valid_padding_matches_tflite() {
        assert_eq!(window_axis(224, 3, 2, 1, false), Some((111, 0, 0)));
        assert_eq!(window_axis(10, 3, 1, 2, false), Some((6, 0, 0)));
        assert_eq!(window_axis(2, 3, 1, 1, false), None);
        assert_eq!(window_axis(5, 3, 0, 1, false), None);
    }

    #[test]
    fn transpose_ohwi_to_oihw() {
        // O=2, H=1, W=2, I=3: element value encodes (o, h, w, i).
        let shape = [2, 1, 2, 3];
        let data: Vec<u32> = (0..12).collect();
        let out = transpose(&data, &shape, &TO_NCHW).unwrap();
        // OIHW[o][i][0][w] = OHWI[o][0][w][i] = o*6 + w*3 + i.
        let expect: Vec<u32> = (0..2)
            .flat_map(|o| (0..3).flat_map(move |i| (0..2).map(move |w| o * 6 + w * 3 + i)))
            .collect();
        assert_eq!(out, expect);
        // And back.
        assert_eq!(transpose(&out, &[2, 3, 1, 2], &TO_NHWC).unwrap(), data);
    }

    #[test]
    fn transpose_depthwise_filter() {
        // [1, H=2, W=1, C=3] -> [3, 1, 2, 1].
        let data = [0, 1, 2, 10, 11, 12];
        let out = transpose(&data, &[1, 2, 1, 3], &DEPTHWISE_TO_OIHW).unwrap();
        assert_eq!(out, vec![0, 10, 1, 11, 2, 12]);
    }

    #[test]
    fn transpose_rejects_mismatches() {
        assert!(transpose(&[1, 2, 3], &[2, 2], &[1, 0]).is_none());
        assert!(transpose(&[1, 2, 3, 4], &[2, 2], &[0, 0]).is_none());
        assert!(transpose(&[1, 2, 3, 4], &[2, 2], &[0]).is_none());
        assert_eq!(transpose::<u8>(&[], &[0, 3], &[1, 0]), Some(vec![]));
    }

    #[test]
    fn nhwc_axes() {
        assert_eq!(
            (0..4).map(nhwc_axis_to_nchw).collect::<Vec<_>>(),
            vec![0, 2, 3, 1]
        );
        for a in 0..4 {
            assert_eq!(TO_NCHW[nhwc_axis_to_nchw(a)], a);
        }
    }

    #[test]
    fn half_floats() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x03ff), 6.097_555e-5);
        assert_eq!(f16_to_f32(0x8000).to_bits(), (-0.0f32).to_bits());
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
    }
}
