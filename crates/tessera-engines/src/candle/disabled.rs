//! Stand-in for builds without the `candle` feature: the same API, a clear error.

use std::path::Path;

use super::Loaded;
use crate::{Device, EngineError};

fn not_compiled() -> EngineError {
    EngineError::NotCompiled {
        feature: "candle",
        what: "safetensors models",
    }
}

/// A loaded model, which cannot exist in this build.
pub(super) enum Bert {}

/// Always fails: candle is not compiled in.
pub(super) fn device(_requested: Device) -> Result<Device, EngineError> {
    Err(not_compiled())
}

/// Always fails: candle is not compiled in.
pub(super) fn load(
    _weights: &Path,
    _config: &Path,
    _device: Device,
) -> Result<Loaded, EngineError> {
    Err(not_compiled())
}

/// A loaded EfficientNet, which cannot exist in this build.
pub(super) enum EfficientNet {}

/// Always fails: candle is not compiled in.
pub(super) fn load_efficientnet(
    _weights: &Path,
    _device: Device,
) -> Result<(EfficientNet, usize, Device), EngineError> {
    Err(not_compiled())
}

/// Unreachable: there is no model to run.
pub(super) fn forward_efficientnet(
    model: &EfficientNet,
    _pixels: &[f32],
    _rows: usize,
    _size: usize,
) -> Result<Vec<f32>, String> {
    match *model {}
}

/// Unreachable: there is no model to run.
pub(super) fn forward(
    bert: &Bert,
    _ids: &[u32],
    _type_ids: &[u32],
    _mask: &[u32],
    _rows: usize,
    _padded_len: usize,
) -> Result<Vec<f32>, String> {
    match *bert {}
}

#[cfg(test)]
mod tests {
    use super::super::BertEncoder;
    use super::*;

    #[test]
    fn loading_names_the_feature_to_add() {
        let error = BertEncoder::load(
            Path::new("model.safetensors"),
            Path::new("config.json"),
            Device::Cpu,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("--features candle"), "{error}");
        assert!(super::super::device(Device::Auto).is_err());
    }
}
