//! TensorFlow Lite to ONNX at pull time, with `tessera-tflite` (MediaPipe's BlazePose models on
//! npm are TFLite; tessera runs ONNX).

use std::path::Path;

use super::ConvertError;
use crate::error::{HubError, Result};

/// Bumped when the converter's output changes, so old conversions are not reused.
pub(crate) const CONVERTER_VERSION: &str = concat!("tflite-onnx ", env!("CARGO_PKG_VERSION"), " 1");

/// Converts the TFLite model at `tflite` into an ONNX graph at `out` (written whole, by a
/// rename); returns the ONNX file's size.
pub fn tflite_to_onnx(tflite: &Path, out: &Path) -> Result<u64> {
    let bytes = std::fs::read(tflite).map_err(|e| HubError::io(tflite, e))?;
    let onnx = tessera_tflite::convert(&bytes).map_err(|e| ConvertError::Unsupported {
        file: tflite.to_path_buf(),
        message: format!("could not convert the TFLite model to ONNX: {e}"),
    })?;
    super::write_whole(out, &onnx)?;
    Ok(onnx.len() as u64)
}
