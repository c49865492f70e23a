//! ONNX Runtime, loaded at run time: [`OnnxModel`] and the tensors it takes and gives.
//!
//! The engine half lives in `enabled.rs` (with the `onnx` feature) or its stand-in `disabled.rs`;
//! everything public here is the same in both builds.

#[cfg(feature = "onnx")]
mod enabled;
#[cfg(feature = "onnx")]
use enabled as backend;

#[cfg(not(feature = "onnx"))]
mod disabled;
#[cfg(not(feature = "onnx"))]
use disabled as backend;

mod constants;
mod model;
mod split;
mod tensor;
mod wire;

pub use backend::init_runtime;
pub use constants::{ConstantInput, inline_constant_inputs};
pub use model::OnnxModel;
pub use split::{SplitGraph, split_graph};
pub use tensor::{ElementType, InputData, OutputData, Outputs, Tensor, TensorInfo, TensorInput};

use std::path::PathBuf;

use crate::Device;

/// How graph optimizations are applied when a session is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OptimizationLevel {
    /// No graph rewrites.
    Disable,
    /// Constant folding and redundant node removal.
    Basic,
    /// Basic plus node fusions.
    Extended,
    /// Everything ONNX Runtime offers (its default).
    #[default]
    All,
}

impl std::str::FromStr for OptimizationLevel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "disable" | "none" | "0" => Ok(Self::Disable),
            "basic" | "1" => Ok(Self::Basic),
            "extended" | "2" => Ok(Self::Extended),
            "all" | "3" => Ok(Self::All),
            _ => Err(format!(
                "unknown optimization level `{s}`; expected disable, basic, extended or all"
            )),
        }
    }
}

/// Options for one ONNX Runtime session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Threads used inside one operator; 0 lets ONNX Runtime choose (one per physical core).
    pub intra_threads: usize,
    /// Threads used across independent operators; 0 keeps sequential execution.
    pub inter_threads: usize,
    /// Graph optimization level.
    pub optimization: OptimizationLevel,
    /// Where to run.
    pub device: Device,
    /// Where TensorRT caches its engines; `None` keeps them beside the model.
    pub tensorrt_cache: Option<PathBuf>,
    /// Inputs stated as constants before the session is built, so ONNX Runtime can fold what
    /// depends on them; they are then no longer inputs of the session.
    pub constant_inputs: Vec<ConstantInput>,
    /// Whether the intra-op threads spin a while after each run, waiting for more work (ONNX
    /// Runtime's default). A task that does CPU work of its own between graph calls (pose:
    /// the rotated crop between the detector and the landmark model) turns it off, or the
    /// spinning threads take the cores that work needs.
    pub intra_op_spinning: bool,
    /// Run on the process's shared intra-op thread pool (one thread per physical core) instead of
    /// a pool of its own; `intra_threads`, `inter_threads` and `intra_op_spinning` then do not
    /// apply. For the halves of a graph cut in two ([`split_graph`]) that run one after the
    /// other: with a pool each, the threads of the one that just ran spin while the other runs
    /// (measured on a Piper voice: 50 % slower).
    pub shared_thread_pool: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            intra_threads: 0,
            inter_threads: 0,
            optimization: OptimizationLevel::All,
            device: Device::Auto,
            tensorrt_cache: None,
            constant_inputs: Vec::new(),
            intra_op_spinning: true,
            shared_thread_pool: false,
        }
    }
}

/// Candidate paths for the ONNX Runtime library, in the order they are tried:
/// `ORT_DYLIB_PATH`, then `lib/` under [`tessera_core::tessera_home`] (`$TESSERA_HOME/lib`, default
/// `~/.cache/tessera/lib`), then `lib/` beside the executable.
pub fn library_candidates() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        candidates.push(PathBuf::from(path));
        return candidates;
    }
    let file = library_file_name();
    candidates.push(tessera_core::tessera_home().join("lib").join(file));
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|p| p.to_path_buf()))
    {
        candidates.push(dir.join("lib").join(file));
    }
    candidates
}

fn library_file_name() -> &'static str {
    if cfg!(target_os = "macos") {
        "libonnxruntime.dylib"
    } else if cfg!(target_os = "windows") {
        "onnxruntime.dll"
    } else {
        "libonnxruntime.so"
    }
}

#[cfg_attr(not(feature = "onnx"), allow(dead_code))]
const INSTALL_HINT: &str = "install it with `scripts/setup.sh` (it copies libonnxruntime from the `onnxruntime` wheel into $TESSERA_HOME/lib), or point ORT_DYLIB_PATH at an existing libonnxruntime";
