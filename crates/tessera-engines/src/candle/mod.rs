//! candle: the device for a requested [`Device`], [`BertEncoder`], a BERT-family encoder
//! (`candle_transformers::models::bert`) from safetensors weights, and [`EfficientNetLite`], an
//! image classifier written here (`efficientnet_lite.rs`).
//!
//! The engine half lives in `enabled.rs` (with the `candle` feature) or its stand-in
//! `disabled.rs`; everything public here is the same in both builds.

#[cfg(feature = "candle")]
mod efficientnet_lite;
#[cfg(feature = "candle")]
mod enabled;
#[cfg(feature = "candle")]
use enabled as backend;

#[cfg(not(feature = "candle"))]
mod disabled;
#[cfg(not(feature = "candle"))]
use disabled as backend;

use std::path::{Path, PathBuf};

use crate::{Device, EngineError};

/// The device candle runs on for `requested`. Accelerators that are not compiled in or not present
/// fall back to the CPU with a log line that says why; `auto` picks CUDA when it is there. The
/// answer is [`Device::Cpu`] or [`Device::Cuda`] (TensorRT is an ONNX Runtime provider: candle
/// serves it with CUDA). Fails only in a build without the `candle` feature.
pub fn device(requested: Device) -> Result<Device, EngineError> {
    backend::device(requested)
}

/// A BERT-family encoder (BERT, MiniLM, BGE, E5, ...) in f32 on candle: token ids in, the last
/// hidden state out. Pooling is the caller's business.
///
/// In a build without the `candle` feature the type is the same, and `load` returns
/// [`EngineError::NotCompiled`].
pub struct BertEncoder {
    model: backend::Bert,
    weights: PathBuf,
    hidden_size: usize,
    device: Device,
}

impl BertEncoder {
    /// Loads `config` (the model's `config.json`) and the safetensors `weights` onto the device
    /// candle picks for `device` (see [`device()`]).
    pub fn load(weights: &Path, config: &Path, device: Device) -> Result<Self, EngineError> {
        let loaded = backend::load(weights, config, device)?;
        tracing::debug!(
            weights = %weights.display(),
            device = %loaded.device,
            hidden_size = loaded.hidden_size,
            "BERT encoder loaded on candle"
        );
        Ok(BertEncoder {
            model: loaded.model,
            weights: weights.to_path_buf(),
            hidden_size: loaded.hidden_size,
            device: loaded.device,
        })
    }

    /// The length of each token's hidden state.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// The device the weights live on after any fallback: [`Device::Cpu`] or [`Device::Cuda`].
    pub fn device(&self) -> Device {
        self.device
    }

    /// Runs the encoder on `rows` sequences padded to `padded_len` tokens. `ids`, `type_ids` and
    /// `mask` (1 for a real token, 0 for padding) are `[rows, padded_len]` in row-major order.
    /// Returns the last hidden state, `[rows, padded_len, hidden_size]` in row-major order.
    pub fn forward(
        &self,
        ids: &[u32],
        type_ids: &[u32],
        mask: &[u32],
        rows: usize,
        padded_len: usize,
    ) -> Result<Vec<f32>, EngineError> {
        let expected = rows * padded_len;
        for (name, data) in [
            ("input_ids", ids),
            ("token_type_ids", type_ids),
            ("attention_mask", mask),
        ] {
            if data.len() != expected {
                return Err(EngineError::Input {
                    path: self.weights.clone(),
                    tensor: name.into(),
                    message: format!(
                        "{} elements given for {rows} rows of {padded_len} tokens ({expected})",
                        data.len()
                    ),
                });
            }
        }
        if expected == 0 {
            return Ok(Vec::new());
        }
        backend::forward(&self.model, ids, type_ids, mask, rows, padded_len).map_err(|message| {
            EngineError::Run {
                path: self.weights.clone(),
                message,
            }
        })
    }
}

impl std::fmt::Debug for BertEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BertEncoder")
            .field("weights", &self.weights)
            .field("hidden_size", &self.hidden_size)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// EfficientNet-Lite0, an ImageNet classifier, in f32 on candle: normalized pixels in
/// (`[rows, 3, size, size]`, row-major), one logit per class out.
///
/// In a build without the `candle` feature the type is the same, and `load` returns
/// [`EngineError::NotCompiled`].
pub struct EfficientNetLite {
    model: backend::EfficientNet,
    weights: PathBuf,
    classes: usize,
    device: Device,
}

impl EfficientNetLite {
    /// Loads the safetensors `weights` (a converted `efficientnet_pytorch` state dict) onto the
    /// device candle picks for `device` (see [`device()`]).
    pub fn load(weights: &Path, device: Device) -> Result<Self, EngineError> {
        let (model, classes, device) = backend::load_efficientnet(weights, device)?;
        tracing::debug!(weights = %weights.display(), %device, classes, "EfficientNet-Lite loaded on candle");
        Ok(EfficientNetLite {
            model,
            weights: weights.to_path_buf(),
            classes,
            device,
        })
    }

    /// How many classes it scores.
    pub fn classes(&self) -> usize {
        self.classes
    }

    /// The device the weights live on after any fallback.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Runs `rows` images of `size` × `size` pixels, `pixels` holding `[rows, 3, size, size]`;
    /// returns the logits, `[rows, classes]` row-major.
    pub fn forward(
        &self,
        pixels: &[f32],
        rows: usize,
        size: usize,
    ) -> Result<Vec<f32>, EngineError> {
        let expected = rows * 3 * size * size;
        if pixels.len() != expected || size == 0 {
            return Err(EngineError::Input {
                path: self.weights.clone(),
                tensor: "pixels".into(),
                message: format!(
                    "{} values given for {rows} images of 3 × {size} × {size} ({expected})",
                    pixels.len()
                ),
            });
        }
        if rows == 0 {
            return Ok(Vec::new());
        }
        backend::forward_efficientnet(&self.model, pixels, rows, size).map_err(|message| {
            EngineError::Run {
                path: self.weights.clone(),
                message,
            }
        })
    }
}

impl std::fmt::Debug for EfficientNetLite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EfficientNetLite")
            .field("weights", &self.weights)
            .field("classes", &self.classes)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// What a backend's `load` hands back.
struct Loaded {
    model: backend::Bert,
    hidden_size: usize,
    device: Device,
}
