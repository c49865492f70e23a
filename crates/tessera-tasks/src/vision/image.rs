//! Images in: the formats the `image` crate decodes that tessera enables (JPEG, PNG, WebP, BMP, a
//! GIF's first frame), turned upright by their EXIF orientation, as 8-bit RGB.
//!
//! The size in the header is checked against a pixel limit before any pixel is decoded, so a
//! small file that claims a huge image (a decompression bomb) costs nothing.

use std::io::Cursor;

pub use image::RgbImage;
use image::{DynamicImage, ImageBuffer, ImageDecoder, ImageFormat, ImageReader, Limits, Pixel};

use crate::TaskError;

/// The default pixel limit: 40 megapixels (8000 × 5000).
pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;

/// An image decoded from an upload.
#[derive(Debug, Clone)]
pub struct Picture {
    /// The pixels, upright.
    pub rgb: RgbImage,
    /// Whether the source had an alpha channel (dropped here).
    pub had_alpha: bool,
}

/// Decodes `bytes` into upright RGB, refusing images over `max_pixels`.
pub fn decode(bytes: &[u8], max_pixels: u64) -> Result<Picture, TaskError> {
    let bad = |message: String| TaskError::InvalidInput(message);
    if bytes.is_empty() {
        return Err(bad("the image is empty (0 bytes)".into()));
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(format!("could not read the image: {e}")))?;
    match reader.format() {
        Some(
            ImageFormat::Jpeg
            | ImageFormat::Png
            | ImageFormat::WebP
            | ImageFormat::Bmp
            | ImageFormat::Gif,
        ) => {}
        Some(other) => {
            return Err(bad(format!(
                "{other:?} images are not read here; send JPEG, PNG, WebP, BMP or GIF"
            )));
        }
        None => {
            return Err(bad(
                "not an image tessera reads (its first bytes match no JPEG, PNG, WebP, BMP or GIF signature)"
                    .into(),
            ));
        }
    }
    if reader.format() == Some(ImageFormat::Jpeg) && !jpeg_is_whole(bytes) {
        return Err(bad(
            "the JPEG is truncated: its last scan has no end-of-image marker".into(),
        ));
    }
    let mut reader = reader;
    let mut limits = Limits::default();
    // The decoder's own allocation cap, a backstop behind the pixel check below (RGBA, 8 bit).
    limits.max_alloc = Some(max_pixels.saturating_mul(4).saturating_add(1 << 20));
    reader.limits(limits);
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| bad(format!("the image is corrupt: {e}")))?;
    let (width, height) = decoder.dimensions();
    if width == 0 || height == 0 {
        return Err(bad(format!(
            "the image is {width} × {height} pixels: it has no pixels"
        )));
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(bad(format!(
            "the image is {width} × {height} = {pixels} pixels, over the limit of {max_pixels}; send a smaller one"
        )));
    }
    let orientation = decoder.orientation().ok();
    let had_alpha = decoder.color_type().has_alpha();
    let mut image = DynamicImage::from_decoder(decoder)
        .map_err(|e| bad(format!("the image is corrupt or truncated: {e}")))?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }
    Ok(Picture {
        rgb: image.into_rgb8(),
        had_alpha,
    })
}

/// Whether a JPEG's last scan is followed by its end-of-image marker. The decoder fills a cut-off
/// scan with grey rather than failing; a marker byte pair cannot occur inside scan data (0xFF is
/// stuffed there), and an embedded thumbnail's scan comes before the main image's last one.
fn jpeg_is_whole(bytes: &[u8]) -> bool {
    let marker = |code: u8| move |pair: &[u8]| pair == [0xFF, code];
    let Some(last_scan) = bytes.windows(2).rposition(marker(0xDA)) else {
        return false;
    };
    bytes[last_scan..].windows(2).any(marker(0xD9))
}

/// `image` resized to `width` × `height` by bilinear convolution (the filter widened when
/// shrinking, as Pillow's BILINEAR does), with SIMD kernels: ten to forty times faster than the
/// `image` crate's own resize, which would cost more than a small detector's graph.
pub fn resize<P>(
    image: &ImageBuffer<P, Vec<u8>>,
    width: u32,
    height: u32,
) -> Result<ImageBuffer<P, Vec<u8>>, TaskError>
where
    P: Pixel<Subpixel = u8>,
{
    use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer, images};
    let failed = |e: &dyn std::fmt::Display| TaskError::Internal(format!("could not resize: {e}"));
    if image.dimensions() == (width, height) {
        return Ok(image.clone());
    }
    let pixel_type = match P::CHANNEL_COUNT {
        1 => PixelType::U8,
        3 => PixelType::U8x3,
        4 => PixelType::U8x4,
        n => return Err(failed(&format!("{n} channels"))),
    };
    let source = images::ImageRef::new(image.width(), image.height(), image.as_raw(), pixel_type)
        .map_err(|e| failed(&e))?;
    let mut target = images::Image::new(width, height, pixel_type);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new()
        .resize(&source, &mut target, &options)
        .map_err(|e| failed(&e))?;
    ImageBuffer::from_raw(width, height, target.into_vec())
        .ok_or_else(|| failed(&"the resized buffer has the wrong length"))
}

/// Where a photo sits in a letterboxed square: scaled by `scale`, its top-left corner at
/// (`left`, `top`), `width` × `height` pixels of the square.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// Square pixels per photo pixel (the same on both axes, up to rounding).
    pub scale: f32,
    /// The padding left of the photo, in square pixels.
    pub left: u32,
    /// The padding above it.
    pub top: u32,
    /// The photo's width in the square.
    pub width: u32,
    /// Its height.
    pub height: u32,
}

/// The photo scaled to fit a `size` × `size` square, centred, the rest filled with `pad`.
pub fn letterbox(
    rgb: &RgbImage,
    size: u32,
    pad: image::Rgb<u8>,
) -> Result<(RgbImage, Placement), TaskError> {
    let (width, height) = rgb.dimensions();
    let fit = (size as f32 / width as f32).min(size as f32 / height as f32);
    let new_width = ((width as f32 * fit).round() as u32).clamp(1, size);
    let new_height = ((height as f32 * fit).round() as u32).clamp(1, size);
    let (left, top) = ((size - new_width) / 2, (size - new_height) / 2);
    let resized = resize(rgb, new_width, new_height)?;
    let mut canvas = RgbImage::from_pixel(size, size, pad);
    image::imageops::replace(&mut canvas, &resized, i64::from(left), i64::from(top));
    let placement = Placement {
        // The scale actually applied, so points map back exactly.
        scale: new_width as f32 / width as f32,
        left,
        top,
        width: new_width,
        height: new_height,
    };
    Ok((canvas, placement))
}

/// Encodes 8-bit pixels as PNG.
pub fn png<P, C>(image: &image::ImageBuffer<P, C>) -> Result<Vec<u8>, TaskError>
where
    P: image::PixelWithColorType,
    [P::Subpixel]: image::EncodableLayout,
    C: std::ops::Deref<Target = [P::Subpixel]>,
{
    // Fast deflate: masks are mostly flat, so they shrink well anyway, and the answer is sent at once.
    let mut out = Vec::new();
    let encoder = image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    );
    image
        .write_with_encoder(encoder)
        .map_err(|e| TaskError::Internal(format!("could not encode a PNG: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(image: &RgbImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn every_format_decodes_to_the_same_pixels() {
        let image = RgbImage::from_fn(4, 3, |x, y| image::Rgb([x as u8 * 60, y as u8 * 80, 7]));
        for format in [ImageFormat::Png, ImageFormat::Bmp, ImageFormat::WebP] {
            let decoded = decode(&encoded(&image, format), 100).unwrap();
            assert_eq!(decoded.rgb, image, "{format:?}");
        }
        let jpeg = encoded(&image, ImageFormat::Jpeg);
        assert_eq!(decode(&jpeg, 100).unwrap().rgb.dimensions(), (4, 3));
        // A JPEG cut short decodes as grey without this check; with it, it is refused.
        let cut = decode(&jpeg[..jpeg.len() - 4], 100)
            .unwrap_err()
            .to_string();
        assert!(cut.contains("truncated"), "{cut}");
    }

    #[test]
    fn a_letterbox_centres_the_photo_on_the_padding() {
        let photo = RgbImage::from_pixel(200, 100, image::Rgb([255, 0, 0]));
        let (square, at) = letterbox(&photo, 100, image::Rgb([114; 3])).unwrap();
        assert_eq!(
            at,
            Placement {
                scale: 0.5,
                left: 0,
                top: 25,
                width: 100,
                height: 50
            }
        );
        assert_eq!(square.get_pixel(50, 10).0, [114; 3]);
        assert_eq!(square.get_pixel(50, 50).0, [255, 0, 0]);
        let grey = image::GrayImage::from_pixel(8, 8, image::Luma([200]));
        assert_eq!(resize(&grey, 3, 5).unwrap().get_pixel(1, 1).0, [200]);
    }

    #[test]
    fn bad_images_say_what_is_wrong() {
        let image = RgbImage::new(10, 10);
        let png = encoded(&image, ImageFormat::Png);
        let error = |bytes: &[u8], limit| decode(bytes, limit).unwrap_err().to_string();
        assert!(error(&[], 100).contains("empty"));
        assert!(error(b"hello, not an image", 100).contains("signature"));
        assert!(error(&png[..png.len() / 2], 1000).contains("corrupt"));
        assert!(error(&png, 99).contains("over the limit of 99"));
        // A PNG header that claims 50,000 × 50,000 pixels is refused before decoding.
        let mut bomb = png.clone();
        bomb[16..20].copy_from_slice(&50_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&50_000u32.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&bomb[12..29]);
        bomb[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        let message = error(&bomb, DEFAULT_MAX_PIXELS);
        assert!(message.contains("50000 × 50000"), "{message}");
    }
}
