//! Stand-in for builds without the `onnx` feature: the same API, a clear error.

use super::SessionConfig;
use crate::EngineError;

fn not_compiled() -> EngineError {
    EngineError::NotCompiled {
        feature: "onnx",
        what: "ONNX models",
    }
}

/// Always fails: ONNX Runtime is not compiled in.
pub fn init_runtime() -> Result<std::path::PathBuf, EngineError> {
    Err(not_compiled())
}

/// A session that can never be built in this build.
pub struct Session;

/// Always fails: ONNX Runtime is not compiled in.
pub fn load_session(
    _path: &std::path::Path,
    _config: &SessionConfig,
) -> Result<Session, EngineError> {
    Err(not_compiled())
}
