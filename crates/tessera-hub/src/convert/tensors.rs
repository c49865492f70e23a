//! Hugging Face weights in safetensors files: the index of a checkpoint's tensors (one
//! `model.safetensors`, or shards listed by `model.safetensors.index.json`), read one tensor at
//! a time, and a streaming writer. The headers are parsed and built by the `safetensors` crate;
//! only the data is read and written here, so a model is never held whole in memory.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use safetensors::Dtype;
use safetensors::tensor::{Metadata, TensorInfo};

use super::ConvertError;
use super::model_bin::Ct2Dtype;
use crate::error::{HubError, Result};

/// The weights file of an unsharded checkpoint.
pub(crate) const WEIGHTS: &str = "model.safetensors";
/// The index of a sharded checkpoint.
pub(crate) const WEIGHTS_INDEX: &str = "model.safetensors.index.json";

/// Headers this large are not safetensors (the format caps them at 100 MB).
const MAX_HEADER: u64 = 100_000_000;

/// Where one tensor's bytes are.
#[derive(Debug, Clone)]
pub(crate) struct StoredTensor {
    pub(crate) file: PathBuf,
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    offset: u64,
    len: usize,
}

impl StoredTensor {
    /// The tensor's element type as CTranslate2 stores it, if it has one.
    pub(crate) fn ct2_dtype(&self) -> Option<Ct2Dtype> {
        match self.dtype {
            Dtype::F32 => Some(Ct2Dtype::F32),
            Dtype::F16 => Some(Ct2Dtype::F16),
            Dtype::BF16 => Some(Ct2Dtype::BF16),
            _ => None,
        }
    }

    /// Its bytes, row-major little-endian.
    pub(crate) fn read(&self) -> Result<Vec<u8>> {
        let mut file = File::open(&self.file).map_err(|e| HubError::io(&self.file, e))?;
        file.seek(SeekFrom::Start(self.offset))
            .map_err(|e| HubError::io(&self.file, e))?;
        let mut data = vec![0; self.len];
        file.read_exact(&mut data).map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEof => truncated(&self.file),
            _ => HubError::io(&self.file, e),
        })?;
        Ok(data)
    }
}

/// Every tensor of the checkpoint in `dir`, by name.
pub(crate) fn checkpoint_tensors(dir: &Path) -> Result<BTreeMap<String, StoredTensor>> {
    let single = dir.join(WEIGHTS);
    if single.is_file() {
        return read_header(&single);
    }
    let index_path = dir.join(WEIGHTS_INDEX);
    if !index_path.is_file() {
        let hint = if dir.join("pytorch_model.bin").is_file() {
            "the checkpoint has only pytorch_model.bin; save it as safetensors first \
             (`WhisperForConditionalGeneration.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)`)"
        } else {
            "a Hugging Face Whisper checkpoint needs model.safetensors (or model.safetensors.index.json \
             and its shards), config.json and tokenizer.json"
        };
        return Err(ConvertError::MissingFile {
            dir: dir.to_path_buf(),
            file: WEIGHTS.to_string(),
            hint: hint.to_string(),
        }
        .into());
    }
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let text = fs::read(&index_path).map_err(|e| HubError::io(&index_path, e))?;
    let index: Index = serde_json::from_slice(&text).map_err(|e| ConvertError::Malformed {
        file: index_path.clone(),
        message: format!("not a safetensors index ({e})"),
    })?;
    let mut shards: HashMap<&str, BTreeMap<String, StoredTensor>> = HashMap::new();
    let mut tensors = BTreeMap::new();
    for (name, shard) in &index.weight_map {
        if !shards.contains_key(shard.as_str()) {
            let path = dir.join(shard);
            if Path::new(shard).components().count() != 1 || !path.is_file() {
                return Err(ConvertError::MissingFile {
                    dir: dir.to_path_buf(),
                    file: shard.clone(),
                    hint: format!("{WEIGHTS_INDEX} lists it as a shard; fetch the missing shard"),
                }
                .into());
            }
            shards.insert(shard, read_header(&path)?);
        }
        let tensor = shards
            .get(shard.as_str())
            .and_then(|tensors| tensors.get(name))
            .ok_or_else(|| ConvertError::MissingTensor {
                file: dir.join(shard),
                tensor: name.clone(),
            })?;
        tensors.insert(name.clone(), tensor.clone());
    }
    Ok(tensors)
}

/// The tensors of one safetensors file, from its header.
fn read_header(path: &Path) -> Result<BTreeMap<String, StoredTensor>> {
    let mut file = File::open(path).map_err(|e| HubError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| HubError::io(path, e))?.len();
    let mut len = [0; 8];
    read_exact(&mut file, &mut len, path)?;
    let header_len = u64::from_le_bytes(len);
    if header_len > MAX_HEADER || 8 + header_len > file_len {
        return Err(malformed(
            path,
            format!("a header of {header_len} bytes in a file of {file_len}"),
        ));
    }
    let mut header = vec![0; header_len as usize];
    read_exact(&mut file, &mut header, path)?;
    // Metadata's own deserializer checks that the tensors tile the data without gaps.
    let metadata: Metadata =
        serde_json::from_slice(&header).map_err(|e| malformed(path, e.to_string()))?;
    let data_start = 8 + header_len;
    if data_start + metadata.data_len() as u64 > file_len {
        return Err(truncated(path));
    }
    Ok(metadata
        .tensors()
        .into_iter()
        .map(|(name, info)| {
            let tensor = StoredTensor {
                file: path.to_path_buf(),
                dtype: info.dtype,
                shape: info.shape.clone(),
                offset: data_start + info.data_offsets.0 as u64,
                len: info.data_offsets.1 - info.data_offsets.0,
            };
            (name, tensor)
        })
        .collect())
}

/// A tensor to write: its name, type, shape, and how to get its bytes.
pub(crate) struct PlannedTensor<S> {
    pub(crate) name: String,
    pub(crate) dtype: Ct2Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) source: S,
}

impl<S> PlannedTensor<S> {
    /// The number of bytes of its data.
    pub(crate) fn byte_len(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size()
    }
}

/// Writes `tensors` to the safetensors file `path` with the `{"format": "pt"}` metadata
/// transformers looks for, calling `data` for each tensor's bytes in turn.
pub(crate) fn write_safetensors<S>(
    path: &Path,
    tensors: &[PlannedTensor<S>],
    mut data: impl FnMut(&PlannedTensor<S>) -> Result<Vec<u8>>,
) -> Result<()> {
    let mut infos = Vec::with_capacity(tensors.len());
    let mut offset = 0;
    for tensor in tensors {
        let dtype = safetensors_dtype(tensor.dtype);
        let len = tensor.byte_len();
        infos.push((
            tensor.name.clone(),
            TensorInfo {
                dtype,
                shape: tensor.shape.clone(),
                data_offsets: (offset, offset + len),
            },
        ));
        offset += len;
    }
    let format = [("format".to_string(), "pt".to_string())]
        .into_iter()
        .collect();
    let invalid = |e: &dyn std::fmt::Display| ConvertError::Unsupported {
        file: path.to_path_buf(),
        message: format!("cannot build the safetensors header: {e}"),
    };
    let metadata = Metadata::new(Some(format), infos).map_err(|e| invalid(&e))?;
    let mut header = serde_json::to_vec(&metadata).map_err(|e| invalid(&e))?;
    // The format pads the header with spaces so the data starts 8-byte aligned.
    header.resize(header.len().next_multiple_of(8), b' ');

    let file = File::create(path).map_err(|e| HubError::io(path, e))?;
    let mut output = BufWriter::with_capacity(1 << 20, file);
    let io = |e| HubError::io(path, e);
    output
        .write_all(&(header.len() as u64).to_le_bytes())
        .map_err(io)?;
    output.write_all(&header).map_err(io)?;
    for tensor in tensors {
        let bytes = data(tensor)?;
        if bytes.len() != tensor.byte_len() {
            return Err(invalid(&format!(
                "tensor `{}` has {} bytes, its shape needs {}",
                tensor.name,
                bytes.len(),
                tensor.byte_len()
            ))
            .into());
        }
        output.write_all(&bytes).map_err(io)?;
    }
    let file = output
        .into_inner()
        .map_err(|e| HubError::io(path, e.into_error()))?;
    file.sync_all().map_err(io)
}

fn safetensors_dtype(dtype: Ct2Dtype) -> Dtype {
    match dtype {
        Ct2Dtype::F32 => Dtype::F32,
        Ct2Dtype::I8 => Dtype::I8,
        Ct2Dtype::I16 => Dtype::I16,
        Ct2Dtype::I32 => Dtype::I32,
        Ct2Dtype::F16 => Dtype::F16,
        Ct2Dtype::BF16 => Dtype::BF16,
    }
}

fn read_exact(file: &mut File, buffer: &mut [u8], path: &Path) -> Result<()> {
    file.read_exact(buffer).map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof => truncated(path),
        _ => HubError::io(path, e),
    })
}

fn malformed(path: &Path, message: String) -> HubError {
    ConvertError::Malformed {
        file: path.to_path_buf(),
        message: format!("not a valid safetensors file: {message}"),
    }
    .into()
}

fn truncated(path: &Path) -> HubError {
    malformed(
        path,
        "it ends early; the file is truncated (download it again)".to_string(),
    )
}
