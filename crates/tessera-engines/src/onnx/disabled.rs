//! Stand-in for builds without the `onnx` feature: the same API, a clear error.
//!
//! [`OnnxModel`](super::OnnxModel) keeps its shape; only the engine half is missing, so `load`
//! fails and a session can never exist.

use std::path::{Path, PathBuf};

use super::model::Loaded;
use super::{SessionConfig, Tensor, TensorInput};
use crate::EngineError;

fn not_compiled() -> EngineError {
    EngineError::NotCompiled {
        feature: "onnx",
        what: "ONNX models",
    }
}

/// Always fails: ONNX Runtime is not compiled in.
pub fn init_runtime() -> Result<PathBuf, EngineError> {
    Err(not_compiled())
}

/// A session, which cannot exist in this build.
pub(super) enum Session {}

/// Always fails: ONNX Runtime is not compiled in.
pub(super) fn load(
    _path: &Path,
    _bytes: Option<&[u8]>,
    _config: &SessionConfig,
) -> Result<Loaded, EngineError> {
    Err(not_compiled())
}

/// Unreachable: there is no session to run.
pub(super) fn run(
    session: &mut Session,
    _path: &Path,
    _inputs: &[(&str, TensorInput<'_>)],
) -> Result<Vec<Tensor>, EngineError> {
    match *session {}
}

#[cfg(test)]
mod tests {
    use super::super::OnnxModel;
    use super::*;

    #[test]
    fn loading_names_the_feature_to_add() {
        let error = OnnxModel::load(Path::new("model.onnx"), &SessionConfig::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("--features onnx"), "{error}");
        assert!(init_runtime().is_err());
    }
}
