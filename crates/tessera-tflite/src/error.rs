//! The one error type of the crate.

/// Why a TFLite model could not be read or converted.
///
/// Every failure caused by file content lands here: the converter never panics on bad input.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// The bytes do not start like a TFLite flatbuffer (no `TFL3` file identifier).
    #[error("not a TFLite model: {0}")]
    NotTflite(String),
    /// A flatbuffer offset, length or vtable points outside the file, or a field is malformed.
    #[error("truncated or corrupt TFLite flatbuffer at byte {offset}: {reason}")]
    Corrupt {
        /// Byte offset in the file where the problem was found.
        offset: usize,
        /// What was wrong there.
        reason: String,
    },
    /// The model is well formed but says something inconsistent (bad tensor index, shape, data size).
    #[error("invalid TFLite model: {0}")]
    Invalid(String),
    /// An operator the converter has no ONNX translation for.
    #[error("operator {index} ({name}) is not supported")]
    UnsupportedOperator {
        /// Position of the operator in the subgraph's execution order.
        index: usize,
        /// TFLite operator name, `CUSTOM(<code>)` for custom operators.
        name: String,
    },
    /// A supported operator used in a way the converter cannot translate, or malformed for its kind.
    #[error("operator {index} ({name}): {reason}")]
    Operator {
        /// Position of the operator in the subgraph's execution order.
        index: usize,
        /// TFLite operator name.
        name: String,
        /// What is wrong or unsupported.
        reason: String,
    },
    /// The converted model would exceed protobuf's 2 GiB message limit.
    #[error("the converted model is {0} bytes, over ONNX's 2 GiB protobuf limit")]
    TooLarge(usize),
}

impl ConvertError {
    pub(crate) fn corrupt(offset: usize, reason: impl Into<String>) -> Self {
        ConvertError::Corrupt {
            offset,
            reason: reason.into(),
        }
    }
}
