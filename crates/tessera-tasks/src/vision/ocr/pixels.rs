//! Pixel work for OCR: bilinear resizing straight into normalised, channels-first tensors, the
//! perspective warp that cuts a text box out as a level strip, and quarter and half turns.
//!
//! PaddleOCR's models were trained on OpenCV's pictures, so the conventions are OpenCV's: pixel
//! centres at half-integers when resizing, blue-green-red channel order in the tensors, borders
//! replicated when a warp reads outside the image.

use image::{Rgb, RgbImage};

use super::detect::{Point, Quad, distance};

/// How 8-bit values become tensor values: `value × scale[c] + offset[c]`, per channel of the
/// tensor (blue, green, red).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalise {
    /// Multipliers.
    pub scale: [f32; 3],
    /// Offsets.
    pub offset: [f32; 3],
}

impl Normalise {
    /// `(value / 255 − mean) / std`, the reference's form.
    pub fn from_mean_std(mean: [f32; 3], std: [f32; 3]) -> Normalise {
        Normalise {
            scale: [0, 1, 2].map(|c| 1.0 / (255.0 * std[c])),
            offset: [0, 1, 2].map(|c| -mean[c] / std[c]),
        }
    }
}

/// One axis of a bilinear resize: for each output index, the two source indices and the weight
/// of the second (OpenCV's `INTER_LINEAR` mapping, edges clamped).
fn taps(source: usize, target: usize) -> Vec<(usize, usize, f32)> {
    let scale = source as f32 / target as f32;
    let last = source.saturating_sub(1);
    (0..target)
        .map(|i| {
            let at = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
            let low = (at.floor() as usize).min(last);
            let high = (low + 1).min(last);
            (low, high, at - low as f32)
        })
        .collect()
}

/// Resizes `image` to `width × height` bilinearly and writes it into `tensor`, three planes of
/// `plane_width × height` (blue, green, red), normalised; columns from `width` to `plane_width`
/// are left as they are (the caller's padding).
pub fn resize_into(
    image: &RgbImage,
    width: usize,
    height: usize,
    tensor: &mut [f32],
    plane_width: usize,
    normalise: &Normalise,
) {
    let (source_width, source_height) = (image.width() as usize, image.height() as usize);
    let columns = taps(source_width, width);
    let rows = taps(source_height, height);
    let plane = plane_width * height;
    let pixels = image.as_raw();
    let mut row_low = vec![0.0f32; width * 3];
    let mut row_high = vec![0.0f32; width * 3];
    let horizontal = |y: usize, out: &mut [f32]| {
        let line = &pixels[y * source_width * 3..(y + 1) * source_width * 3];
        for (x, &(left, right, t)) in columns.iter().enumerate() {
            for c in 0..3 {
                let a = f32::from(line[left * 3 + c]);
                let b = f32::from(line[right * 3 + c]);
                out[x * 3 + c] = a + (b - a) * t;
            }
        }
    };
    let mut cached = (usize::MAX, usize::MAX);
    for (y, &(top, bottom, t)) in rows.iter().enumerate() {
        if cached != (top, bottom) {
            horizontal(top, &mut row_low);
            horizontal(bottom, &mut row_high);
            cached = (top, bottom);
        }
        for x in 0..width {
            for c in 0..3 {
                let a = row_low[x * 3 + c];
                let value = a + (row_high[x * 3 + c] - a) * t;
                // RGB in, BGR out.
                let channel = 2 - c;
                tensor[channel * plane + y * plane_width + x] =
                    value * normalise.scale[channel] + normalise.offset[channel];
            }
        }
    }
}

/// Resizes `image` to `width × height` bilinearly, as 8-bit RGB.
pub fn resize(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    if image.dimensions() == (width, height) {
        return image.clone();
    }
    let columns = taps(image.width() as usize, width as usize);
    let rows = taps(image.height() as usize, height as usize);
    RgbImage::from_fn(width, height, |x, y| {
        let (left, right, tx) = columns[x as usize];
        let (top, bottom, ty) = rows[y as usize];
        let at = |x: usize, y: usize| image.get_pixel(x as u32, y as u32).0;
        let (a, b, c, d) = (
            at(left, top),
            at(right, top),
            at(left, bottom),
            at(right, bottom),
        );
        Rgb([0, 1, 2].map(|k| {
            let upper = f32::from(a[k]) + (f32::from(b[k]) - f32::from(a[k])) * tx;
            let lower = f32::from(c[k]) + (f32::from(d[k]) - f32::from(c[k])) * tx;
            (upper + (lower - upper) * ty).round().clamp(0.0, 255.0) as u8
        }))
    })
}

/// The homography that maps the corners of a `width × height` rectangle ((0, 0), (w, 0), (w, h),
/// (0, h)) onto `corners`, as a row-major 3 × 3 matrix with its last entry 1. `None` when the
/// corners are degenerate (three on a line).
pub fn rectangle_to_quad(width: f32, height: f32, corners: &Quad) -> Option<[f32; 9]> {
    let from = [[0.0, 0.0], [width, 0.0], [width, height], [0.0, height]];
    // Eight equations in the eight unknowns h0..h7: for each pair (x, y) → (u, v),
    // u = (h0 x + h1 y + h2) / (h6 x + h7 y + 1), v likewise with h3..h5.
    let mut system = [[0.0f64; 9]; 8];
    for (k, (&[x, y], &[u, v])) in from.iter().zip(corners).enumerate() {
        let (x, y, u, v) = (f64::from(x), f64::from(y), f64::from(u), f64::from(v));
        system[2 * k] = [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u];
        system[2 * k + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v];
    }
    let h = solve(system)?;
    Some([
        h[0] as f32,
        h[1] as f32,
        h[2] as f32,
        h[3] as f32,
        h[4] as f32,
        h[5] as f32,
        h[6] as f32,
        h[7] as f32,
        1.0,
    ])
}

/// Gaussian elimination with partial pivoting on an augmented 8 × 9 system.
fn solve(mut m: [[f64; 9]; 8]) -> Option<[f64; 8]> {
    for col in 0..8 {
        let pivot = (col..8).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() < 1e-9 {
            return None;
        }
        m.swap(col, pivot);
        let pivot_row = m[col];
        for (row, equation) in m.iter_mut().enumerate() {
            if row == col {
                continue;
            }
            let factor = equation[col] / pivot_row[col];
            for (value, p) in equation.iter_mut().zip(pivot_row).skip(col) {
                *value -= factor * p;
            }
        }
    }
    let mut x = [0.0; 8];
    for (i, (value, equation)) in x.iter_mut().zip(&m).enumerate() {
        *value = equation[8] / equation[i];
    }
    Some(x)
}

/// Cuts the text box `corners` (top-left, top-right, bottom-right, bottom-left) out of `image`
/// as a level strip, its size the longer of each pair of opposite sides, sampled bilinearly
/// through the perspective that maps the strip onto the box; a strip at least 1.5 times taller
/// than wide is turned a quarter left (vertical text reads as a line). `None` for a box with no
/// area.
pub fn crop(image: &RgbImage, corners: &Quad) -> Option<RgbImage> {
    let [tl, tr, br, bl] = *corners;
    let width = distance(tl, tr).max(distance(br, bl)) as u32;
    let height = distance(tl, bl).max(distance(tr, br)) as u32;
    if width == 0 || height == 0 {
        return None;
    }
    let h = rectangle_to_quad(width as f32, height as f32, corners)?;
    let strip = RgbImage::from_fn(width, height, |x, y| {
        let (x, y) = (x as f32, y as f32);
        let w = h[6] * x + h[7] * y + h[8];
        let source = [
            (h[0] * x + h[1] * y + h[2]) / w,
            (h[3] * x + h[4] * y + h[5]) / w,
        ];
        sample(image, source)
    });
    Some(if height as f32 / width as f32 >= 1.5 {
        quarter_turn_left(&strip)
    } else {
        strip
    })
}

/// The bilinear sample of `image` at `point`, the border replicated outside it.
fn sample(image: &RgbImage, [x, y]: Point) -> Rgb<u8> {
    let (max_x, max_y) = (image.width() as f32 - 1.0, image.height() as f32 - 1.0);
    let (x, y) = (x.clamp(0.0, max_x), y.clamp(0.0, max_y));
    let (x0, y0) = (x.floor(), y.floor());
    let (tx, ty) = (x - x0, y - y0);
    let (x0, y0) = (x0 as u32, y0 as u32);
    let (x1, y1) = ((x0 + 1).min(max_x as u32), (y0 + 1).min(max_y as u32));
    let (a, b, c, d) = (
        image.get_pixel(x0, y0).0,
        image.get_pixel(x1, y0).0,
        image.get_pixel(x0, y1).0,
        image.get_pixel(x1, y1).0,
    );
    Rgb([0, 1, 2].map(|k| {
        let upper = f32::from(a[k]) + (f32::from(b[k]) - f32::from(a[k])) * tx;
        let lower = f32::from(c[k]) + (f32::from(d[k]) - f32::from(c[k])) * tx;
        (upper + (lower - upper) * ty).round().clamp(0.0, 255.0) as u8
    }))
}

/// The image turned 90° counter-clockwise.
pub fn quarter_turn_left(image: &RgbImage) -> RgbImage {
    let (width, height) = image.dimensions();
    RgbImage::from_fn(height, width, |x, y| *image.get_pixel(width - 1 - y, x))
}

/// The image turned 180°.
pub fn half_turn(image: &RgbImage) -> RgbImage {
    let (width, height) = image.dimensions();
    RgbImage::from_fn(width, height, |x, y| {
        *image.get_pixel(width - 1 - x, height - 1 - y)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| {
            Rgb([(x * 10) as u8, (y * 10) as u8, 7])
        })
    }

    #[test]
    fn a_crop_of_an_axis_aligned_box_is_the_pixels_inside_it() {
        let image = ramp(20, 10);
        let corners = [[4.0, 2.0], [14.0, 2.0], [14.0, 6.0], [4.0, 6.0]];
        let strip = crop(&image, &corners).unwrap();
        assert_eq!(strip.dimensions(), (10, 4));
        for (x, y, pixel) in strip.enumerate_pixels() {
            assert_eq!(pixel, image.get_pixel(x + 4, y + 2), "({x}, {y})");
        }
    }

    #[test]
    fn a_tilted_box_is_levelled() {
        // The box's top edge runs down-right at 45°; its strip starts at its top-left corner and
        // walks along that edge.
        let image = ramp(25, 25);
        let corners = [[2.0, 10.0], [10.0, 18.0], [6.0, 22.0], [-2.0, 14.0]];
        let h = rectangle_to_quad(11.0, 5.0, &corners).unwrap();
        let map = |x: f32, y: f32| {
            let w = h[6] * x + h[7] * y + h[8];
            [
                (h[0] * x + h[1] * y + h[2]) / w,
                (h[3] * x + h[4] * y + h[5]) / w,
            ]
        };
        for ((x, y), expected) in [
            ((0.0, 0.0), corners[0]),
            ((11.0, 0.0), corners[1]),
            ((11.0, 5.0), corners[2]),
        ] {
            let got = map(x, y);
            assert!(
                (got[0] - expected[0]).abs() < 1e-3 && (got[1] - expected[1]).abs() < 1e-3,
                "{got:?}"
            );
        }
        let strip = crop(&image, &corners).unwrap();
        assert_eq!(strip.dimensions(), (11, 5));
        assert_eq!(strip.get_pixel(0, 0), image.get_pixel(2, 10));
    }

    #[test]
    fn tall_strips_turn_a_quarter_and_turns_compose() {
        let image = ramp(3, 2);
        let left = quarter_turn_left(&image);
        assert_eq!(left.dimensions(), (2, 3));
        // The top-right pixel goes to the top-left.
        assert_eq!(left.get_pixel(0, 0), image.get_pixel(2, 0));
        assert_eq!(half_turn(&half_turn(&image)), image);
        assert_eq!(quarter_turn_left(&left), half_turn(&image));
        let tall = ramp(10, 40);
        let strip = crop(&tall, &[[0.0, 0.0], [6.0, 0.0], [6.0, 30.0], [0.0, 30.0]]).unwrap();
        assert_eq!(strip.dimensions(), (30, 6));
    }

    #[test]
    fn resizing_into_a_tensor_swaps_to_bgr_normalises_and_leaves_the_padding() {
        let image = RgbImage::from_pixel(4, 2, Rgb([255, 0, 51]));
        let mut tensor = vec![9.0f32; 3 * 2 * 6];
        let half = Normalise::from_mean_std([0.5; 3], [0.5; 3]);
        resize_into(&image, 4, 2, &mut tensor, 6, &half);
        // Blue plane first: 51 → 51/127.5 − 1 = −0.6.
        assert!((tensor[0] + 0.6).abs() < 1e-6);
        assert!((tensor[12] + 1.0).abs() < 1e-6, "green 0 → −1");
        assert!((tensor[24] - 1.0).abs() < 1e-6, "red 255 → 1");
        assert_eq!(tensor[4], 9.0, "columns past the width are the caller's");
    }

    #[test]
    fn bilinear_resizing_matches_opencv_on_a_ramp() {
        // As cv2.resize(np.array([[0, 60, 120, 180]]), (8, 1)): output i samples the source at
        // (i + 0.5) / 2 − 0.5, clamped at the edges.
        let image = RgbImage::from_fn(4, 1, |x, _| Rgb([(x * 60) as u8, 0, 0]));
        let wide = resize(&image, 8, 1);
        let reds: Vec<u8> = wide.pixels().map(|p| p.0[0]).collect();
        assert_eq!(reds, vec![0, 15, 45, 75, 105, 135, 165, 180]);
    }
}
