//! Vision tasks and the images they read.
//!
//! [`image`] decodes uploads (JPEG, PNG, WebP, BMP, a GIF's first frame) with their EXIF
//! orientation applied and a pixel limit checked before any pixel is decoded; [`detect`] finds
//! objects with YOLO-style graphs; [`segment`] cuts the foreground out of a photo with IS-Net;
//! [`pose`] finds people and 33 body landmarks each with MediaPipe BlazePose; [`ocr`] reads the
//! lines of text in a picture with PP-OCR; [`classify`] names what a photo shows with
//! EfficientNet-Lite0 on candle; [`draw`] marks results on a photo.

pub mod classify;
pub mod detect;
pub mod draw;
pub mod image;
pub mod ocr;
pub mod pose;
pub mod segment;
