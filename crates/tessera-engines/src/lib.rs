//! Thin adapters over the engines tessera runs, and the choice of device for each.
//!
//! - [`onnx`]: ONNX Runtime through `ort`, loaded at run time from a shared library
//!   ([`onnx::init_runtime`] finds it through `ORT_DYLIB_PATH`, then tessera's lib folder).
//!   [`onnx::OnnxModel`] is the one way a task runs an ONNX graph: it loads a file with session
//!   options ([`onnx::SessionConfig`]) for threads, graph optimization and the execution provider
//!   (falling back to the CPU with a log line that says why, and reporting the device it ended up
//!   on), describes the graph's inputs and outputs, and runs borrowed typed tensors
//!   ([`onnx::TensorInput`]) into owned ones ([`onnx::Outputs`]). Tasks never touch `ort`.
//! - [`llama`]: llama.cpp through `llama-cpp-2`: [`llama::GgufModel`] (GGUF weights by mmap,
//!   tokenizer, metadata, samplers and grammars) and [`llama::GgufContext`] (one KV cache that
//!   several sequences share, decoded together).
//! - [`ct2`]: CTranslate2 through `ct2rs`: [`ct2::WhisperModel`] encodes log-mel windows once
//!   and decodes, detects languages and aligns words on the encoder output.
//! - [`candle`]: the candle device for a requested [`Device`], with the same fallback, and
//!   [`candle::BertEncoder`], a BERT-family encoder from safetensors weights.
//!
//! Each engine sits behind a cargo feature (`onnx`, `gguf`, `candle`, `ctranslate2`; `cuda`, `tensorrt`,
//! `coreml`, `metal`, `vulkan` for accelerators). With a feature off, its module keeps the same API and returns
//! [`EngineError::NotCompiled`] naming the feature to add, so callers carry no `#[cfg]`.
//! This crate knows nothing of tasks, tokenizers or the wire.
//!
//! ```no_run
//! use tessera_engines::onnx::{OnnxModel, SessionConfig, TensorInput};
//!
//! # fn main() -> Result<(), tessera_engines::EngineError> {
//! let mut model = OnnxModel::load("model.onnx".as_ref(), &SessionConfig::default())?;
//! let ids = [101_i64, 7592, 2088, 102];
//! let mask = [1_i64; 4];
//! let outputs = model.run(&[
//!     ("input_ids", TensorInput::new([1, 4], &ids[..])),
//!     ("attention_mask", TensorInput::new([1, 4], &mask[..])),
//! ])?;
//! let hidden = outputs.at(0)?;
//! println!("{:?} on {}", hidden.shape(), model.device());
//! let _values: &[f32] = hidden.f32()?;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

use std::path::PathBuf;

pub use tessera_core::Device;

pub mod candle;
pub mod ct2;
pub mod llama;
pub mod onnx;

use onnx::ElementType;

/// What can go wrong while setting up an engine or a session.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The binary was built without the feature this engine needs.
    #[error(
        "this tessera was built without the `{feature}` feature; rebuild with `--features {feature}` to use {what}"
    )]
    NotCompiled {
        /// The cargo feature to add.
        feature: &'static str,
        /// What it would enable.
        what: &'static str,
    },
    /// The ONNX Runtime shared library could not be found or loaded.
    #[error("{message}")]
    RuntimeLibrary {
        /// What happened and how to fix it.
        message: String,
    },
    /// A model file could not be turned into a session.
    #[error("could not load {path}: {message}")]
    Load {
        /// The model file.
        path: PathBuf,
        /// What the engine said.
        message: String,
    },
    /// An input does not fit the model: unknown name, wrong element type or a shape that does not
    /// match the graph or the data.
    #[error("{path}: input `{tensor}`: {message}")]
    Input {
        /// The model file.
        path: PathBuf,
        /// The input's name.
        tensor: String,
        /// What is wrong with it.
        message: String,
    },
    /// The engine failed while running a model.
    #[error("{path}: inference failed: {message}")]
    Run {
        /// The model file.
        path: PathBuf,
        /// What the engine said.
        message: String,
    },
    /// An output was asked for that the model does not have.
    #[error("{path}: the model has no output {wanted} (outputs: {available})")]
    MissingOutput {
        /// The model file.
        path: PathBuf,
        /// The name (in backquotes) or position asked for.
        wanted: String,
        /// The outputs it does have.
        available: String,
    },
    /// A tensor was read as another element type than the one it holds.
    #[error("tensor `{tensor}` holds {actual} elements, not {expected}")]
    TensorType {
        /// The tensor's name.
        tensor: String,
        /// The type asked for.
        expected: ElementType,
        /// The type it holds.
        actual: ElementType,
    },
}

/// The engines and accelerators compiled into this build, for `--version`.
pub fn compiled_engines() -> Vec<&'static str> {
    let mut engines = Vec::new();
    if cfg!(feature = "onnx") {
        engines.push("onnx");
    }
    if cfg!(feature = "gguf") {
        engines.push("gguf");
    }
    if cfg!(feature = "candle") {
        engines.push("candle");
    }
    if cfg!(feature = "ctranslate2") {
        engines.push("ctranslate2");
    }
    if cfg!(feature = "cuda") {
        engines.push("cuda");
    }
    if cfg!(feature = "tensorrt") {
        engines.push("tensorrt");
    }
    if cfg!(feature = "coreml") {
        engines.push("coreml");
    }
    if cfg!(feature = "metal") {
        engines.push("metal");
    }
    if cfg!(feature = "vulkan") {
        engines.push("vulkan");
    }
    engines
}
