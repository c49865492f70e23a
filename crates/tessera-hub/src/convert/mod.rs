//! Converting Whisper between the Hugging Face (transformers) layout and CTranslate2's.
//!
//! [`model_bin`] reads and writes CTranslate2's `model.bin`.

pub mod model_bin;

use std::path::PathBuf;

/// What can be wrong with the files of a conversion. Each message names the file and says what
/// to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConvertError {
    /// A file the conversion needs is not in the folder.
    #[error("{}: no {file}; {hint}", dir.display())]
    MissingFile {
        /// The folder converted from.
        dir: PathBuf,
        /// The file that is missing.
        file: String,
        /// What the folder needs, or how to produce the file.
        hint: String,
    },

    /// The folder holds some other kind of model.
    #[error(
        "{}: the model is {found}, not Whisper; only Whisper checkpoints (transformers' \
         WhisperForConditionalGeneration, CTranslate2's WhisperSpec) convert",
        path.display()
    )]
    NotWhisper {
        /// The `config.json` read (or the `model.bin`, for a CTranslate2 folder).
        path: PathBuf,
        /// What it says the model is, e.g. `model_type "bert"`.
        found: String,
    },

    /// A tensor the model needs is not in the weights.
    #[error(
        "{}: no tensor `{tensor}`; the weights are incomplete or not a Whisper model's \
         (save the model again with transformers' `save_pretrained`)",
        file.display()
    )]
    MissingTensor {
        /// The weights file (or folder of shards) searched.
        file: PathBuf,
        /// The tensor's name.
        tensor: String,
    },

    /// A tensor does not have the shape the model's configuration implies.
    #[error(
        "{}: tensor `{tensor}` has shape {actual:?}, expected {expected:?} from {from}; \
         the weights and the configuration disagree (fix config.json or use matching weights)",
        file.display()
    )]
    TensorShape {
        /// The file that holds the tensor.
        file: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// The shape the configuration implies.
        expected: Vec<usize>,
        /// The shape found.
        actual: Vec<usize>,
        /// Where the expected shape comes from, e.g. `config.json (d_model 384, num_mel_bins 80)`.
        from: String,
    },

    /// A tensor's element type cannot be converted.
    #[error(
        "{}: tensor `{tensor}` is {dtype}; only float32, float16 and bfloat16 weights convert \
         (quantized weights do not: convert from the float model)",
        file.display()
    )]
    TensorDtype {
        /// The file that holds the tensor.
        file: PathBuf,
        /// The tensor's name.
        tensor: String,
        /// Its element type.
        dtype: String,
    },

    /// A file is not what its name says (bad JSON, a broken header, a truncated file).
    #[error("{}: {message}", file.display())]
    Malformed {
        /// The file.
        file: PathBuf,
        /// What is wrong and what to do.
        message: String,
    },

    /// The files are valid but hold something this converter does not handle.
    #[error("{}: {message}", file.display())]
    Unsupported {
        /// The file.
        file: PathBuf,
        /// What is not supported and what to do instead.
        message: String,
    },

    /// The output folder already exists; conversions never overwrite.
    #[error("{} already exists; remove it or choose another output folder", path.display())]
    OutputExists {
        /// The output folder.
        path: PathBuf,
    },
}
