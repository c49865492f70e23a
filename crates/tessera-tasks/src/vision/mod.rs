//! Vision tasks and the images they read.
//!
//! [`image`] decodes uploads (JPEG, PNG, WebP, BMP, a GIF's first frame) with their EXIF
//! orientation applied and a pixel limit checked before any pixel is decoded; [`segment`] cuts
//! the foreground out of a photo with IS-Net on ONNX Runtime; [`ocr`] reads the lines of text in
//! a picture with PP-OCR on ONNX Runtime.

pub mod image;
pub mod ocr;
pub mod segment;
