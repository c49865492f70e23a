//! ONNX Runtime sessions through `ort` with `load-dynamic`: the half of [`OnnxModel`] that
//! touches the engine.
//!
//! [`OnnxModel`]: super::OnnxModel

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::{Environment, GlobalThreadPoolOptions};
#[allow(unused_imports)]
use ort::ep::{self, ExecutionProvider};
use ort::session::SessionInputValue;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::value::{DynValue, Outlet, TensorElementType, TensorRef, ValueType};

use super::model::Loaded;
use super::{
    ElementType, INSTALL_HINT, InputData, OptimizationLevel, OutputData, SessionConfig, Tensor,
    TensorInfo, TensorInput, library_candidates,
};
use crate::{Device, EngineError};

/// The engine's session; [`OnnxModel`](super::OnnxModel) wraps it.
pub(super) use ort::session::Session;

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
    // The shared pool serves only sessions that ask for it (`shared_thread_pool`); its threads
    // sleep until one does.
    let environment = builder
        .with_name("tessera")
        .with_global_thread_pool(GlobalThreadPoolOptions::default())
        .build()
        .map_err(|e| format!("ONNX Runtime did not start: {e}"))?;
    tracing::info!(library = %path.display(), "loaded ONNX Runtime");
    Ok((path.clone(), environment))
}

/// Builds a session for the model at `path` (or for `bytes`, a graph that came from there) and
/// reads its inputs and outputs. An accelerator that cannot be used falls back to the CPU with a
/// warning that says why.
pub(super) fn load(
    path: &Path,
    bytes: Option<&[u8]>,
    config: &SessionConfig,
) -> Result<Loaded, EngineError> {
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
    // ort hands a session the environment's shared pool unless told otherwise.
    if !config.shared_thread_pool {
        builder = builder
            .with_independent_thread_pool()
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
        if !config.intra_op_spinning {
            builder = builder
                .with_intra_op_spinning(false)
                .map_err(|e| load_error(e.to_string()))?;
        }
    }
    let device = register_device(&mut builder, config);
    let session = match bytes {
        None if config.constant_inputs.is_empty() => builder.commit_from_file(path),
        _ => {
            let mut model = match bytes {
                Some(bytes) => Cow::Borrowed(bytes),
                None => Cow::Owned(std::fs::read(path).map_err(|e| load_error(e.to_string()))?),
            };
            if !config.constant_inputs.is_empty() {
                model = Cow::Owned(
                    super::inline_constant_inputs(&model, &config.constant_inputs)
                        .map_err(load_error)?,
                );
            }
            builder.commit_from_memory(&model)
        }
    }
    .map_err(|e| load_error(e.to_string()))?;
    let metadata = custom_metadata(&session).map_err(|e| load_error(e.to_string()))?;
    Ok(Loaded {
        metadata,
        inputs: session.inputs().iter().map(tensor_info).collect(),
        outputs: session.outputs().iter().map(tensor_info).collect(),
        session,
        device,
    })
}

/// Every key and value of the model file's custom metadata map.
fn custom_metadata(session: &Session) -> ort::Result<BTreeMap<String, String>> {
    let metadata = session.metadata()?;
    Ok(metadata
        .custom_keys()?
        .into_iter()
        .filter_map(|key| metadata.custom(&key).map(|value| (key, value)))
        .collect())
}

/// Runs `session` on inputs already checked against the graph; copies every output out.
pub(super) fn run(
    session: &mut Session,
    path: &Path,
    inputs: &[(&str, TensorInput<'_>)],
) -> Result<Vec<Tensor>, EngineError> {
    let mut values: Vec<(Cow<'_, str>, SessionInputValue<'_>)> = Vec::with_capacity(inputs.len());
    for (name, input) in inputs {
        let value = tensor_ref(input).map_err(|e| EngineError::Input {
            path: path.to_path_buf(),
            tensor: name.to_string(),
            message: e.to_string(),
        })?;
        values.push((Cow::Borrowed(*name), value));
    }
    let run_error = |e: ort::Error| EngineError::Run {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let outputs = session.run(values).map_err(run_error)?;
    let mut tensors = Vec::with_capacity(outputs.len());
    for (name, value) in outputs.iter() {
        let (shape, data) = copy_out(&value).map_err(run_error)?;
        tensors.push(Tensor::new(name, shape, data));
    }
    Ok(tensors)
}

fn tensor_ref<'a>(input: &TensorInput<'a>) -> ort::Result<SessionInputValue<'a>> {
    // ort copies the shape; only the elements stay borrowed.
    let shape = input.shape().to_vec();
    Ok(match input.data() {
        InputData::F32(data) => TensorRef::from_array_view((shape, data))?.into(),
        InputData::F64(data) => TensorRef::from_array_view((shape, data))?.into(),
        InputData::I64(data) => TensorRef::from_array_view((shape, data))?.into(),
        InputData::I32(data) => TensorRef::from_array_view((shape, data))?.into(),
        InputData::I8(data) => TensorRef::from_array_view((shape, data))?.into(),
        InputData::U8(data) => TensorRef::from_array_view((shape, data))?.into(),
        InputData::Bool(data) => TensorRef::from_array_view((shape, data))?.into(),
    })
}

fn copy_out(value: &DynValue) -> ort::Result<(Vec<usize>, OutputData)> {
    let ValueType::Tensor { ty, shape, .. } = value.dtype() else {
        return Ok((Vec::new(), OutputData::Unsupported(ElementType::Other)));
    };
    let shape: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
    let data = match ty {
        TensorElementType::Float32 => OutputData::F32(value.try_extract_tensor()?.1.to_vec()),
        TensorElementType::Float64 => OutputData::F64(value.try_extract_tensor()?.1.to_vec()),
        TensorElementType::Int64 => OutputData::I64(value.try_extract_tensor()?.1.to_vec()),
        TensorElementType::Int32 => OutputData::I32(value.try_extract_tensor()?.1.to_vec()),
        TensorElementType::Int8 => OutputData::I8(value.try_extract_tensor()?.1.to_vec()),
        TensorElementType::Uint8 => OutputData::U8(value.try_extract_tensor()?.1.to_vec()),
        TensorElementType::Bool => OutputData::Bool(value.try_extract_tensor()?.1.to_vec()),
        other => OutputData::Unsupported(element_type(*other)),
    };
    Ok((shape, data))
}

fn tensor_info(outlet: &Outlet) -> TensorInfo {
    let (element_type, shape) = match outlet.dtype() {
        ValueType::Tensor { ty, shape, .. } => (
            element_type(*ty),
            shape
                .iter()
                .map(|&d| usize::try_from(d).ok())
                .collect::<Vec<_>>(),
        ),
        _ => (ElementType::Other, Vec::new()),
    };
    TensorInfo {
        name: outlet.name().to_string(),
        element_type,
        shape,
    }
}

fn element_type(ty: TensorElementType) -> ElementType {
    match ty {
        TensorElementType::Float32 => ElementType::F32,
        TensorElementType::Float64 => ElementType::F64,
        TensorElementType::Float16 => ElementType::F16,
        TensorElementType::Bfloat16 => ElementType::Bf16,
        TensorElementType::Int8 => ElementType::I8,
        TensorElementType::Int16 => ElementType::I16,
        TensorElementType::Int32 => ElementType::I32,
        TensorElementType::Int64 => ElementType::I64,
        TensorElementType::Uint8 => ElementType::U8,
        TensorElementType::Uint16 => ElementType::U16,
        TensorElementType::Uint32 => ElementType::U32,
        TensorElementType::Uint64 => ElementType::U64,
        TensorElementType::Bool => ElementType::Bool,
        TensorElementType::String => ElementType::String,
        _ => ElementType::Other,
    }
}

/// Registers the execution provider for the requested device and returns the device the session
/// will run on; on any failure the session stays on the CPU and the reason is logged once. `auto`
/// tries what was compiled in, best first.
fn register_device(builder: &mut SessionBuilder, config: &SessionConfig) -> Device {
    let wanted: &[Device] = match config.device {
        Device::Cpu => return Device::Cpu,
        Device::Auto => &[Device::TensorRt, Device::Cuda, Device::CoreMl],
        ref device => std::slice::from_ref(device),
    };
    let mut reasons = Vec::new();
    for &device in wanted {
        match try_device(builder, device, config) {
            Ok(()) => return device,
            Err(reason) => reasons.push(format!("{device}: {reason}")),
        }
    }
    let reasons = reasons.join("; ");
    if config.device == Device::Auto {
        tracing::debug!(%reasons, "no accelerator available, running on the CPU");
    } else {
        tracing::warn!(device = %config.device, %reasons, "falling back to the CPU");
    }
    Device::Cpu
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
        Device::Cpu | Device::Auto => Err("not an accelerator".into()),
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
