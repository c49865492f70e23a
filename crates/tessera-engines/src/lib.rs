//! Thin adapters over the engines tessera runs, and the choice of device for each.
//!
//! - [`onnx`]: ONNX Runtime through `ort`, loaded at run time from a shared library
//!   ([`onnx::init_runtime`] finds it through `ORT_DYLIB_PATH`, then tessera's lib folder), with
//!   session options ([`onnx::SessionConfig`]) for threads, graph optimization and the execution
//!   provider, falling back to the CPU with a log line that says why.
//! - [`candle`]: the candle device for a requested [`Device`], with the same fallback.
//!
//! Each engine sits behind a cargo feature (`onnx`, `candle`; `cuda`, `tensorrt`, `coreml` for
//! accelerators). With a feature off, its module keeps the same API and returns
//! [`EngineError::NotCompiled`] naming the feature to add, so callers carry no `#[cfg]`.
//! This crate knows nothing of tasks, tokenizers or the wire.
#![deny(missing_docs)]

use std::path::PathBuf;

pub use tessera_core::Device;

#[cfg(feature = "candle")]
pub mod candle;
pub mod onnx;

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
}

/// The engines and accelerators compiled into this build, for `--version`.
pub fn compiled_engines() -> Vec<&'static str> {
    let mut engines = Vec::new();
    if cfg!(feature = "onnx") {
        engines.push("onnx");
    }
    if cfg!(feature = "candle") {
        engines.push("candle");
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
    engines
}
