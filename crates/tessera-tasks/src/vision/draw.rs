//! Marks on a photo for `--draw`: box outlines, line segments and dots, in a small palette that
//! tells classes (or people) apart.

use image::{Rgb, RgbImage};

/// Distinct, saturated colours; index them with [`colour`].
const PALETTE: [[u8; 3]; 10] = [
    [230, 25, 75],
    [60, 180, 75],
    [0, 130, 200],
    [245, 130, 48],
    [145, 30, 180],
    [70, 240, 240],
    [240, 50, 230],
    [210, 245, 60],
    [255, 225, 25],
    [0, 128, 128],
];

/// The palette's colour for index `i` (a class id, a person), repeating after ten.
pub fn colour(i: usize) -> Rgb<u8> {
    Rgb(PALETTE[i % PALETTE.len()])
}

/// A stroke width that shows on the photo at its size: about 1/300 of its larger side.
pub fn stroke(image: &RgbImage) -> u32 {
    (image.width().max(image.height()) / 300).max(2)
}

/// The outline of the box from (`x1`, `y1`) to (`x2`, `y2`), `thickness` pixels inward; parts
/// outside the image are left out.
pub fn rectangle(image: &mut RgbImage, corners: [f32; 4], thickness: u32, colour: Rgb<u8>) {
    let [x1, y1, x2, y2] = corners.map(|v| v.round() as i64);
    let t = i64::from(thickness.max(1));
    fill(image, (x1, y1), (x2, y1 + t), colour);
    fill(image, (x1, y2 - t), (x2, y2), colour);
    fill(image, (x1, y1), (x1 + t, y2), colour);
    fill(image, (x2 - t, y1), (x2, y2), colour);
}

/// A line from `from` to `to`, `thickness` pixels wide (square dots stepped along it).
pub fn line(
    image: &mut RgbImage,
    from: (f32, f32),
    to: (f32, f32),
    thickness: u32,
    colour: Rgb<u8>,
) {
    let (dx, dy) = (to.0 - from.0, to.1 - from.1);
    let steps = dx.abs().max(dy.abs()).ceil().max(1.0) as usize;
    for step in 0..=steps {
        let along = step as f32 / steps as f32;
        dot(
            image,
            (from.0 + dx * along, from.1 + dy * along),
            thickness,
            colour,
        );
    }
}

/// A square dot `size` pixels across, centred on `at`.
pub fn dot(image: &mut RgbImage, at: (f32, f32), size: u32, colour: Rgb<u8>) {
    let half = size.max(1) as f32 / 2.0;
    let (x, y) = ((at.0 - half).round() as i64, (at.1 - half).round() as i64);
    let size = i64::from(size.max(1));
    fill(image, (x, y), (x + size, y + size), colour);
}

/// Fills the pixels from `from` (inclusive) to `to` (exclusive) that lie in the image.
fn fill(image: &mut RgbImage, from: (i64, i64), to: (i64, i64), colour: Rgb<u8>) {
    let (width, height) = (i64::from(image.width()), i64::from(image.height()));
    for y in from.1.max(0)..to.1.min(height) {
        for x in from.0.max(0)..to.0.min(width) {
            // In bounds by the ranges above.
            image.put_pixel(x as u32, y as u32, colour);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rectangle_outlines_and_leaves_the_inside_alone() {
        let mut image = RgbImage::new(20, 20);
        let red = Rgb([255, 0, 0]);
        rectangle(&mut image, [2.0, 2.0, 12.0, 12.0], 2, red);
        assert_eq!(*image.get_pixel(2, 2), red);
        assert_eq!(*image.get_pixel(11, 7), red);
        assert_eq!(*image.get_pixel(7, 7), Rgb([0, 0, 0]), "inside");
        // Off the image: clipped, no panic.
        rectangle(&mut image, [-5.0, -5.0, 40.0, 40.0], 3, red);
        line(&mut image, (0.0, 0.0), (19.0, 19.0), 1, red);
        assert_eq!(*image.get_pixel(10, 10), red);
    }
}
