//! candle itself: devices, the BERT forward pass and EfficientNet-Lite's.

use std::path::Path;

use candle_core::{DType, Module, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};

use super::Loaded;
pub(super) use super::efficientnet_lite::EfficientNetLite0 as EfficientNet;
use crate::{Device, EngineError};

/// A loaded BERT model and the candle device its weights live on.
pub(super) struct Bert {
    model: BertModel,
    device: candle_core::Device,
}

pub(super) fn device(requested: Device) -> Result<Device, EngineError> {
    Ok(reported(&candle_device(requested)))
}

/// The candle device to run on. Accelerators that are not compiled in or not present fall back to
/// the CPU with a log line that says why; `auto` picks CUDA when it is there.
pub(crate) fn candle_device(requested: Device) -> candle_core::Device {
    match requested {
        Device::Cpu => candle_core::Device::Cpu,
        Device::Auto | Device::Cuda | Device::TensorRt => {
            if candle_core::utils::cuda_is_available() {
                match candle_core::Device::new_cuda(0) {
                    Ok(device) => return device,
                    Err(e) => warn_fallback(requested, &e.to_string()),
                }
            } else if requested != Device::Auto {
                warn_fallback(
                    requested,
                    "this build has no CUDA support (rebuild with `--features cuda`) or no GPU is present",
                );
            }
            candle_core::Device::Cpu
        }
        Device::CoreMl => {
            warn_fallback(requested, "candle has no CoreML backend");
            candle_core::Device::Cpu
        }
    }
}

fn reported(device: &candle_core::Device) -> Device {
    if device.is_cuda() {
        Device::Cuda
    } else {
        Device::Cpu
    }
}

fn warn_fallback(requested: Device, reason: &str) {
    tracing::warn!(device = %requested, reason, "falling back to the CPU");
}

pub(super) fn load(weights: &Path, config: &Path, device: Device) -> Result<Loaded, EngineError> {
    let load_error = |path: &Path, message: String| EngineError::Load {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(config).map_err(|e| load_error(config, e.to_string()))?;
    let parsed: Config = serde_json::from_str(&text)
        .map_err(|e| load_error(config, format!("not a BERT config.json: {e}")))?;
    let device = candle_device(device);
    let bytes = std::fs::read(weights).map_err(|e| load_error(weights, e.to_string()))?;
    let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)
        .map_err(|e| load_error(weights, e.to_string()))?;
    let model = BertModel::load(vb, &parsed).map_err(|e| load_error(weights, e.to_string()))?;
    Ok(Loaded {
        hidden_size: parsed.hidden_size,
        device: reported(&device),
        model: Bert { model, device },
    })
}

pub(super) fn forward(
    bert: &Bert,
    ids: &[u32],
    type_ids: &[u32],
    mask: &[u32],
    rows: usize,
    padded_len: usize,
) -> Result<Vec<f32>, String> {
    let run = || -> candle_core::Result<Vec<f32>> {
        let shape = (rows, padded_len);
        let tensor = |data: &[u32]| Tensor::from_slice(data, shape, &bert.device);
        let hidden = bert
            .model
            .forward(&tensor(ids)?, &tensor(type_ids)?, Some(&tensor(mask)?))?;
        hidden.flatten_all()?.to_vec1::<f32>()
    };
    run().map_err(|e| e.to_string())
}

/// A loaded EfficientNet-Lite0 and the candle device its weights live on.
pub(super) fn load_efficientnet(
    weights: &Path,
    device: Device,
) -> Result<(EfficientNet, usize, Device), EngineError> {
    let load_error = |message: String| EngineError::Load {
        path: weights.to_path_buf(),
        message,
    };
    let device = candle_device(device);
    let bytes = std::fs::read(weights).map_err(|e| load_error(e.to_string()))?;
    let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, &device)
        .map_err(|e| load_error(e.to_string()))?;
    let model = EfficientNet::load(vb).map_err(|e| {
        load_error(format!(
            "not EfficientNet-Lite0 weights (efficientnet_pytorch names): {e}"
        ))
    })?;
    let classes = model.classes();
    Ok((model, classes, reported(&device)))
}

pub(super) fn forward_efficientnet(
    model: &EfficientNet,
    pixels: &[f32],
    rows: usize,
    size: usize,
) -> Result<Vec<f32>, String> {
    let run = || -> candle_core::Result<Vec<f32>> {
        let x = Tensor::from_slice(pixels, (rows, 3, size, size), model.device())?;
        model.forward(&x)?.flatten_all()?.to_vec1::<f32>()
    };
    run().map_err(|e| e.to_string())
}
