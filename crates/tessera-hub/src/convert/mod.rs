//! Converting weights at pull time: Whisper between the Hugging Face (transformers) layout and
//! CTranslate2's, and PyTorch checkpoints (`.pth`) to safetensors ([`pth_to_safetensors`], for a
//! catalog file marked `convert = "pth-to-safetensors"`).
//!
//! tessera runs Whisper with CTranslate2, whose model folder holds `model.bin`, `config.json`,
//! `vocabulary.txt` and `tokenizer.json`. [`hf_to_ct2`] turns a transformers checkpoint
//! (`config.json` with `"model_type": "whisper"`, `model.safetensors` or sharded safetensors,
//! `tokenizer.json`, optionally `generation_config.json` and `preprocessor_config.json`) into
//! such a folder, the way CTranslate2's own converter (`ct2-transformers-converter`, its
//! `WhisperLoader`) does, keeping the weights' float type. [`ct2_to_hf`] goes back, so a
//! CTranslate2 model can be exported (and the round trip tested).
//!
//! Both write into a temporary folder beside `out_dir` and rename it into place at the end, so a
//! failed conversion leaves nothing behind. Neither holds the whole model in memory: tensors are
//! read and written one at a time.
//!
//! The [`Hub`](crate::Hub) converts a Hugging Face Whisper folder it is pointed at once into
//! `$TESSERA_HOME/converted/` and serves the result as a CTranslate2 transcription model.
//!
//! ```no_run
//! use std::path::Path;
//!
//! let converted = tessera_hub::convert::hf_to_ct2(
//!     Path::new("whisper-large-v3"),
//!     Path::new("whisper-large-v3-ct2"),
//! )?;
//! assert_eq!(converted.dims.n_mels, 128);
//! # Ok::<(), tessera_hub::HubError>(())
//! ```

pub mod model_bin;
mod pth;
mod tensors;
mod tflite;
mod whisper;

use std::fs;
use std::path::{Path, PathBuf};

#[cfg(test)]
pub(crate) use pth::sample_checkpoint;
pub use pth::{PthSummary, pth_to_safetensors};
pub use tflite::tflite_to_onnx;
pub use whisper::{Converted, WhisperDims, ct2_to_hf, hf_to_ct2};
pub(crate) use whisper::{ct2_whisper_summary, is_hf_whisper};

use crate::catalog::FileConversion;
use crate::error::{HubError, Result};

/// Where the output of converting file `sha256` of model `id` with `conversion` goes, and its
/// name: a folder per model, input and converter version, so a new file or a changed converter
/// converts again.
pub(crate) fn converted_output(
    root: &Path,
    id: &str,
    sha256: &str,
    file_name: &str,
    conversion: FileConversion,
) -> PathBuf {
    use sha2::Digest;
    let (version, output) = match conversion {
        FileConversion::PthToSafetensors => (pth::CONVERTER_VERSION, CONVERTED_WEIGHTS.to_string()),
        FileConversion::TfliteToOnnx => {
            let stem = Path::new(file_name)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "model".into());
            (tflite::CONVERTER_VERSION, format!("{stem}.onnx"))
        }
    };
    let key = hex::encode(sha2::Sha256::digest(format!("{version}\0{sha256}")));
    root.join(format!("{id}-{}", &key[..12])).join(output)
}

/// The file of a model's converted PyTorch weights, `model.safetensors`.
pub(crate) const CONVERTED_WEIGHTS: &str = "model.safetensors";

/// Whether `dir` holds a finished conversion: a CTranslate2 Whisper folder, converted
/// safetensors, or a converted ONNX graph (each appears whole, by a rename).
pub(crate) fn is_conversion(dir: &Path) -> bool {
    if dir.join("model.bin").is_file() || dir.join(CONVERTED_WEIGHTS).is_file() {
        return true;
    }
    fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "onnx"))
    })
}

/// The folder `out` goes in ("." for a bare name), created if it is missing: temporary files
/// are made there, so the final rename stays within one file system.
fn made_parent(out: &Path) -> Result<&Path> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| HubError::io(parent, e))?;
    Ok(parent)
}

/// Writes `out` whole or not at all: `write` fills a temporary file beside it, which is then
/// renamed into place.
pub(crate) fn write_whole_with(out: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = made_parent(out)?;
    let temp = tempfile::Builder::new()
        .prefix(".tessera-convert-")
        .tempfile_in(parent)
        .map_err(|e| HubError::io(parent, e))?;
    write(temp.path())?;
    temp.persist(out).map_err(|e| HubError::io(out, e.error))?;
    Ok(())
}

/// Writes `bytes` to `out` whole or not at all.
pub(crate) fn write_whole(out: &Path, bytes: &[u8]) -> Result<()> {
    write_whole_with(out, |temp| {
        fs::write(temp, bytes).map_err(|e| HubError::io(temp, e))
    })
}

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

/// Runs `fill` on a fresh temporary folder beside `out_dir`, then renames it to `out_dir`; on
/// any failure the temporary folder is removed and `out_dir` is never created.
fn write_folder_atomically(out_dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    if fs::symlink_metadata(out_dir).is_ok() {
        return Err(ConvertError::OutputExists {
            path: out_dir.to_path_buf(),
        }
        .into());
    }
    let parent = made_parent(out_dir)?;
    let temp = tempfile::Builder::new()
        .prefix(".tessera-convert-")
        .tempdir_in(parent)
        .map_err(|e| HubError::io(parent, e))?;
    fill(temp.path())?;
    // tempdir() makes the folder private (0700); a model folder is as readable as its files.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(temp.path(), fs::Permissions::from_mode(0o755))
            .map_err(|e| HubError::io(temp.path(), e))?;
    }
    fs::rename(temp.path(), out_dir).map_err(|e| {
        if out_dir.exists() {
            ConvertError::OutputExists {
                path: out_dir.to_path_buf(),
            }
            .into()
        } else {
            HubError::io(out_dir, e)
        }
    })?;
    // Renamed away: nothing is left for the guard to delete.
    let _ = temp.keep();
    Ok(())
}

/// Parses the JSON file at `path`, naming it in the error.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> Result<T> {
    let bytes = fs::read(path).map_err(|e| HubError::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| {
        ConvertError::Malformed {
            file: path.to_path_buf(),
            message: format!("not a valid {what} ({e})"),
        }
        .into()
    })
}

/// Writes `value` as JSON the way Python's `json.dump(indent=2)` does, plus a final newline.
fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|e| ConvertError::Unsupported {
        file: path.to_path_buf(),
        message: e.to_string(),
    })?;
    text.push(b'\n');
    fs::write(path, text).map_err(|e| HubError::io(path, e))
}
