//! ONNX Runtime sessions through `ort` with `load-dynamic`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
#[allow(unused_imports)]
use ort::ep::{self, ExecutionProvider};
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};

pub use ort::session::Session;

use super::{INSTALL_HINT, OptimizationLevel, SessionConfig, library_candidates};
use crate::{Device, EngineError};

static RUNTIME: OnceLock<Result<(PathBuf, Environment), String>> = OnceLock::new();

/// Loads the ONNX Runtime shared library once per process and returns the path it came from.
/// Later calls return the first outcome.
pub fn init_runtime() -> Result<PathBuf, EngineError> {
    environment().map(|(path, _)| path.clone())
}

fn environment() -> Result<&'static (PathBuf, Environment), EngineError> {
    RUNTIME
        .get_or_init(load_library)
        .as_ref()
        .map_err(|message| EngineError::RuntimeLibrary {
            message: message.clone(),
        })
}

fn load_library() -> Result<(PathBuf, Environment), String> {
    let candidates = library_candidates();
    let Some(path) = candidates.iter().find(|p| p.exists()) else {
        let tried = candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(format!(
            "ONNX Runtime library not found (looked at: {tried}); {INSTALL_HINT}"
        ));
    };
    let builder = ort::init_from(path).map_err(|e| {
        format!(
            "ONNX Runtime library at {} could not be loaded: {e}; {INSTALL_HINT}",
            path.display()
        )
    })?;
    let environment = builder
        .with_name("tessera")
        .build()
        .map_err(|e| format!("ONNX Runtime did not start: {e}"))?;
    tracing::info!(library = %path.display(), "loaded ONNX Runtime");
    Ok((path.clone(), environment))
}

/// Builds a session for the model at `path`. An accelerator that cannot be used falls back to
/// the CPU with a warning that says why.
pub fn load_session(path: &Path, config: &SessionConfig) -> Result<Session, EngineError> {
    let (_, environment) = environment()?;
    let load_error = |message: String| EngineError::Load {
        path: path.to_path_buf(),
        message,
    };
    let mut builder = Session::builder(environment).map_err(|e| load_error(e.to_string()))?;
    builder = builder
        .with_optimization_level(match config.optimization {
            OptimizationLevel::Disable => GraphOptimizationLevel::Disable,
            OptimizationLevel::Basic => GraphOptimizationLevel::Level1,
            OptimizationLevel::Extended => GraphOptimizationLevel::Level2,
            OptimizationLevel::All => GraphOptimizationLevel::All,
        })
        .map_err(|e| load_error(e.to_string()))?;
    if config.intra_threads > 0 {
        builder = builder
            .with_intra_threads(config.intra_threads)
            .map_err(|e| load_error(e.to_string()))?;
    }
    if config.inter_threads > 0 {
        builder = builder
            .with_inter_threads(config.inter_threads)
            .map_err(|e| load_error(e.to_string()))?;
        builder = builder
            .with_parallel_execution(true)
            .map_err(|e| load_error(e.to_string()))?;
    }
    register_device(&mut builder, config);
    builder
        .commit_from_file(path)
        .map_err(|e| load_error(e.to_string()))
}

/// Registers the execution provider for the requested device; on any failure the session stays on
/// the CPU and the reason is logged once. `auto` tries what was compiled in, best first.
fn register_device(builder: &mut SessionBuilder, config: &SessionConfig) {
    let wanted: &[Device] = match config.device {
        Device::Cpu => return,
        Device::Auto => &[Device::TensorRt, Device::Cuda, Device::CoreMl],
        ref device => std::slice::from_ref(device),
    };
    let mut reasons = Vec::new();
    for &device in wanted {
        match try_device(builder, device, config) {
            Ok(()) => return,
            Err(reason) => reasons.push(format!("{device}: {reason}")),
        }
    }
    let reasons = reasons.join("; ");
    if config.device == Device::Auto {
        tracing::debug!(%reasons, "no accelerator available, running on the CPU");
    } else {
        tracing::warn!(device = %config.device, %reasons, "falling back to the CPU");
    }
}

#[allow(unused_variables)]
fn try_device(
    builder: &mut SessionBuilder,
    device: Device,
    config: &SessionConfig,
) -> Result<(), String> {
    match device {
        #[cfg(feature = "cuda")]
        Device::Cuda => try_register(builder, ep::CUDA::default()),
        #[cfg(feature = "tensorrt")]
        Device::TensorRt => try_register(builder, tensorrt(config)),
        #[cfg(feature = "coreml")]
        Device::CoreMl => try_register(builder, ep::CoreML::default()),
        Device::Cpu | Device::Auto => Ok(()),
        // Reachable only when some accelerator feature is off.
        #[allow(unreachable_patterns)]
        other => Err(format!(
            "this tessera was built without the `{other}` feature"
        )),
    }
}

#[cfg(feature = "tensorrt")]
fn tensorrt(config: &SessionConfig) -> ep::TensorRT {
    let provider = ep::TensorRT::default()
        .with_engine_cache(true)
        .with_timing_cache(true);
    match &config.tensorrt_cache {
        Some(dir) => provider.with_engine_cache_path(dir.display().to_string()),
        None => provider,
    }
}

#[allow(dead_code)]
fn try_register<E: ExecutionProvider>(
    builder: &mut SessionBuilder,
    provider: E,
) -> Result<(), String> {
    match E::is_available() {
        Ok(true) => {}
        Ok(false) => {
            return Err(format!(
                "the ONNX Runtime library has no {} (install onnxruntime-gpu for CUDA/TensorRT)",
                E::NAME
            ));
        }
        Err(e) => return Err(e.to_string()),
    }
    provider.register(builder).map_err(|e| e.to_string())?;
    tracing::info!(provider = E::NAME, "execution provider registered");
    Ok(())
}
