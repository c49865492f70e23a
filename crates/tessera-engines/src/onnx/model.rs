//! [`OnnxModel`]: one loaded ONNX graph, the only way tasks run ONNX Runtime.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::backend::{self, Session};
use super::{Outputs, SessionConfig, TensorInfo, TensorInput};
use crate::{Device, EngineError};

/// An ONNX graph loaded into an ONNX Runtime session.
///
/// `load` applies the [`SessionConfig`] (threads, graph optimization, execution provider with CPU
/// fallback); [`inputs`](Self::inputs) and [`outputs`](Self::outputs) describe the graph;
/// [`run`](Self::run) takes borrowed, typed inputs by name and returns owned outputs. The model is
/// `Send`, not `Sync`: one worker thread owns it.
///
/// In a build without the `onnx` feature the type is the same, and `load` returns
/// [`EngineError::NotCompiled`].
pub struct OnnxModel {
    session: Session,
    path: Arc<Path>,
    inputs: Vec<TensorInfo>,
    outputs: Vec<TensorInfo>,
    metadata: BTreeMap<String, String>,
    device: Device,
}

impl OnnxModel {
    /// Loads the graph at `path` into a session built with `config`. An accelerator that cannot be
    /// used falls back to the CPU with a log line that says why; [`device`](Self::device) tells
    /// which one the session ended up on.
    pub fn load(path: &Path, config: &SessionConfig) -> Result<Self, EngineError> {
        Self::load_graph(path, None, config)
    }

    /// Loads a graph built or rewritten in memory (`bytes`, a serialized `ModelProto`), as
    /// [`load`](Self::load) does a file; `path` names the file it came from in logs and errors.
    pub fn load_from_memory(
        path: &Path,
        bytes: &[u8],
        config: &SessionConfig,
    ) -> Result<Self, EngineError> {
        Self::load_graph(path, Some(bytes), config)
    }

    fn load_graph(
        path: &Path,
        bytes: Option<&[u8]>,
        config: &SessionConfig,
    ) -> Result<Self, EngineError> {
        let loaded = backend::load(path, bytes, config)?;
        tracing::debug!(
            model = %path.display(),
            device = %loaded.device,
            inputs = %list(&loaded.inputs),
            outputs = %list(&loaded.outputs),
            "ONNX model loaded"
        );
        Ok(OnnxModel {
            session: loaded.session,
            path: Arc::from(path),
            inputs: loaded.inputs,
            outputs: loaded.outputs,
            metadata: loaded.metadata,
            device: loaded.device,
        })
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The graph's inputs, in order.
    pub fn inputs(&self) -> &[TensorInfo] {
        &self.inputs
    }

    /// The graph's outputs, in order; [`run`](Self::run) returns them in this order.
    pub fn outputs(&self) -> &[TensorInfo] {
        &self.outputs
    }

    /// The input called `name`, if the graph has one.
    pub fn input(&self, name: &str) -> Option<&TensorInfo> {
        self.inputs.iter().find(|i| i.name == name)
    }

    /// Whether the graph has an input called `name` (e.g. the optional `token_type_ids`).
    pub fn has_input(&self, name: &str) -> bool {
        self.input(name).is_some()
    }

    /// The value of a custom metadata entry of the model file (exporters store class names,
    /// character lists and input sizes there), if it has one.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// The execution provider the session runs on after any fallback: [`Device::Cpu`], or the
    /// accelerator that was registered. Never [`Device::Auto`].
    pub fn device(&self) -> Device {
        self.device
    }

    /// Runs the graph on `inputs`, given by name. Each input is checked against the graph first
    /// (known name, element type, shape), so a mistake is reported with the model and the input's
    /// name rather than as an engine failure. Returns every output, in the graph's order.
    pub fn run(&mut self, inputs: &[(&str, TensorInput<'_>)]) -> Result<Outputs, EngineError> {
        for (name, input) in inputs {
            let problem = match self.input(name) {
                Some(info) => input.mismatch(info),
                None => Some(format!(
                    "the graph has no such input (inputs: {})",
                    list(&self.inputs)
                )),
            };
            if let Some(message) = problem {
                return Err(EngineError::Input {
                    path: self.path.to_path_buf(),
                    tensor: name.to_string(),
                    message,
                });
            }
        }
        let tensors = backend::run(&mut self.session, &self.path, inputs)?;
        Ok(Outputs::new(self.path.clone(), tensors))
    }
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("path", &self.path)
            .field("device", &self.device)
            .field("inputs", &self.inputs)
            .field("outputs", &self.outputs)
            .finish_non_exhaustive()
    }
}

/// What a backend's `load` hands back.
pub(super) struct Loaded {
    pub(super) session: Session,
    pub(super) inputs: Vec<TensorInfo>,
    pub(super) outputs: Vec<TensorInfo>,
    /// The model file's custom metadata map.
    pub(super) metadata: BTreeMap<String, String>,
    pub(super) device: Device,
}

fn list(infos: &[TensorInfo]) -> String {
    infos
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
