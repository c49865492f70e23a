//! CTranslate2's `model.bin`: a little-endian stream of
//!
//! ```text
//! u32  binary version (1 to 6; this writer writes 6)
//! str  spec name, e.g. "WhisperSpec"           (version >= 2)
//! u32  spec revision                           (version >= 2)
//! u32  number of variables
//!      per variable: str name, u8 rank, rank x u32 dims,
//!                    u8 dtype id, u32 byte count, the bytes (row-major)
//!                    (before version 4: u8 item size, u32 element count)
//! u32  number of aliases                       (version >= 3)
//!      per alias: str alias, str name of the variable it stands for
//! ```
//!
//! where `str` is a `u16` length counting a trailing NUL, the UTF-8 bytes, then the NUL. This is
//! how `ModelSpec._serialize` in CTranslate2's `python/ctranslate2/specs/model_spec.py` writes a
//! model and `src/models/model.cc` reads it. Variables are written sorted by name; a variable
//! equal to an earlier one is stored once and named again as an alias.
//!
//! [`ModelBin`] reads the header and the index of variables without loading their data, which is
//! read one variable at a time; [`ModelBinWriter`] streams variables out the same way, so neither
//! ever holds a whole model in memory.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{BufReader, BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::ConvertError;
use crate::error::{HubError, Result};

/// The binary version [`ModelBinWriter`] writes, and the newest [`ModelBin`] reads
/// (CTranslate2's `current_binary_version`).
pub const BINARY_VERSION: u32 = 6;

/// The element type of a variable, numbered as CTranslate2's `DataType` enum numbers them in
/// `model.bin`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ct2Dtype {
    /// `float32`, id 0.
    F32,
    /// `int8`, id 1.
    I8,
    /// `int16`, id 2.
    I16,
    /// `int32`, id 3.
    I32,
    /// `float16`, id 4.
    F16,
    /// `bfloat16`, id 5.
    BF16,
}

impl Ct2Dtype {
    const ALL: [Ct2Dtype; 6] = [
        Ct2Dtype::F32,
        Ct2Dtype::I8,
        Ct2Dtype::I16,
        Ct2Dtype::I32,
        Ct2Dtype::F16,
        Ct2Dtype::BF16,
    ];

    /// The id stored in `model.bin`.
    pub fn id(self) -> u8 {
        match self {
            Ct2Dtype::F32 => 0,
            Ct2Dtype::I8 => 1,
            Ct2Dtype::I16 => 2,
            Ct2Dtype::I32 => 3,
            Ct2Dtype::F16 => 4,
            Ct2Dtype::BF16 => 5,
        }
    }

    /// The type with this id, if CTranslate2 has one.
    pub fn from_id(id: u8) -> Option<Ct2Dtype> {
        Ct2Dtype::ALL.into_iter().find(|d| d.id() == id)
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Ct2Dtype::I8 => 1,
            Ct2Dtype::I16 | Ct2Dtype::F16 | Ct2Dtype::BF16 => 2,
            Ct2Dtype::F32 | Ct2Dtype::I32 => 4,
        }
    }

    /// The name CTranslate2 and PyTorch use: `float32`, `int8`, … `bfloat16`.
    pub fn name(self) -> &'static str {
        match self {
            Ct2Dtype::F32 => "float32",
            Ct2Dtype::I8 => "int8",
            Ct2Dtype::I16 => "int16",
            Ct2Dtype::I32 => "int32",
            Ct2Dtype::F16 => "float16",
            Ct2Dtype::BF16 => "bfloat16",
        }
    }

    /// Whether it is a floating point type.
    pub fn is_float(self) -> bool {
        matches!(self, Ct2Dtype::F32 | Ct2Dtype::F16 | Ct2Dtype::BF16)
    }

    /// The type binary versions before 4 meant by an element size.
    fn from_item_size(size: u8) -> Option<Ct2Dtype> {
        match size {
            1 => Some(Ct2Dtype::I8),
            2 => Some(Ct2Dtype::I16),
            4 => Some(Ct2Dtype::F32),
            _ => None,
        }
    }
}

impl fmt::Display for Ct2Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One variable of a `model.bin`: its name, shape and type, and where its bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ct2Variable {
    /// The variable's name, scopes separated by `/`, e.g. `encoder/conv1/weight`.
    pub name: String,
    /// Its dimensions; empty for a scalar.
    pub shape: Vec<usize>,
    /// Its element type.
    pub dtype: Ct2Dtype,
    offset: u64,
}

impl Ct2Variable {
    /// The number of bytes of its data.
    pub fn byte_len(&self) -> usize {
        self.shape.iter().product::<usize>() * self.dtype.size()
    }

    /// Whether it is a scalar (rank 0): a setting such as a number of heads, not a weight.
    pub fn is_scalar(&self) -> bool {
        self.shape.is_empty()
    }
}

/// An opened `model.bin`: its header and the index of its variables. Data is read on demand with
/// [`ModelBin::read`].
#[derive(Debug, Clone)]
pub struct ModelBin {
    path: PathBuf,
    /// The binary version it was written with.
    pub binary_version: u32,
    /// The model specification's name, e.g. `WhisperSpec`; empty before binary version 2.
    pub spec_name: String,
    /// The revision of the specification (1 before binary version 2).
    pub spec_revision: u32,
    /// Every stored variable, in file order (sorted by name when CTranslate2 wrote it).
    pub variables: Vec<Ct2Variable>,
    /// `(alias, variable)` pairs: `alias` names the same data as the stored `variable`.
    pub aliases: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl ModelBin {
    /// Reads the header and variable index of the `model.bin` at `path`, skipping over the data.
    pub fn open(path: &Path) -> Result<ModelBin> {
        let file = File::open(path).map_err(|e| HubError::io(path, e))?;
        let file_len = file.metadata().map_err(|e| HubError::io(path, e))?.len();
        let mut input = Input {
            reader: BufReader::new(file),
            path,
            position: 0,
        };
        let binary_version = input.u32()?;
        if binary_version == 0 || binary_version > BINARY_VERSION {
            return Err(malformed(
                path,
                format!(
                    "binary version {binary_version}; this reader knows versions 1 to {BINARY_VERSION} \
                     (a newer CTranslate2 wrote it, or it is not a model.bin)"
                ),
            ));
        }
        let (spec_name, spec_revision) = if binary_version >= 2 {
            (input.string()?, input.u32()?)
        } else {
            (String::new(), 1)
        };
        let count = input.u32()?;
        let mut variables = Vec::new();
        for _ in 0..count {
            let name = input.string()?;
            let rank = input.u8()?;
            let shape = (0..rank)
                .map(|_| input.u32().map(|d| d as usize))
                .collect::<Result<Vec<usize>>>()?;
            let (dtype, byte_len) = if binary_version >= 4 {
                let id = input.u8()?;
                let dtype = Ct2Dtype::from_id(id).ok_or_else(|| {
                    malformed(path, format!("variable `{name}` has unknown type id {id}"))
                })?;
                (dtype, u64::from(input.u32()?))
            } else {
                let size = input.u8()?;
                let dtype = Ct2Dtype::from_item_size(size).ok_or_else(|| {
                    malformed(
                        path,
                        format!("variable `{name}` has unknown item size {size}"),
                    )
                })?;
                (dtype, u64::from(input.u32()?) * u64::from(size))
            };
            let variable = Ct2Variable {
                name,
                shape,
                dtype,
                offset: input.position,
            };
            if byte_len != variable.byte_len() as u64 {
                return Err(malformed(
                    path,
                    format!(
                        "variable `{}` holds {byte_len} bytes, but shape {:?} of {} needs {}",
                        variable.name,
                        variable.shape,
                        variable.dtype,
                        variable.byte_len()
                    ),
                ));
            }
            if variable.offset + byte_len > file_len {
                return Err(truncated(path));
            }
            input.skip(byte_len)?;
            variables.push(variable);
        }
        let mut aliases = Vec::new();
        if binary_version >= 3 {
            for _ in 0..input.u32()? {
                aliases.push((input.string()?, input.string()?));
            }
        }
        let index: HashMap<String, usize> = variables
            .iter()
            .enumerate()
            .map(|(i, v)| (v.name.clone(), i))
            .collect();
        if let Some((alias, target)) = aliases.iter().find(|(_, t)| !index.contains_key(t)) {
            return Err(malformed(
                path,
                format!("alias `{alias}` names `{target}`, which is not a stored variable"),
            ));
        }
        Ok(ModelBin {
            path: path.to_path_buf(),
            binary_version,
            spec_name,
            spec_revision,
            variables,
            aliases,
            index,
        })
    }

    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The variable called `name`, or the one an alias of that name stands for.
    pub fn variable(&self, name: &str) -> Option<&Ct2Variable> {
        let stored = self
            .aliases
            .iter()
            .find(|(alias, _)| alias == name)
            .map_or(name, |(_, target)| target.as_str());
        self.index.get(stored).map(|&i| &self.variables[i])
    }

    /// The bytes of `variable` (one of this file's).
    pub fn read(&self, variable: &Ct2Variable) -> Result<Vec<u8>> {
        self.read_range(variable, 0, variable.byte_len())
    }

    /// `len` bytes of `variable`'s data from byte `start` on: for a row-major tensor, a run of
    /// whole rows is one such range.
    pub fn read_range(&self, variable: &Ct2Variable, start: usize, len: usize) -> Result<Vec<u8>> {
        if start + len > variable.byte_len() {
            return Err(malformed(
                &self.path,
                format!(
                    "bytes {start}..{} are past the end of variable `{}` ({} bytes)",
                    start + len,
                    variable.name,
                    variable.byte_len()
                ),
            ));
        }
        let mut file = File::open(&self.path).map_err(|e| HubError::io(&self.path, e))?;
        file.seek(SeekFrom::Start(variable.offset + start as u64))
            .map_err(|e| HubError::io(&self.path, e))?;
        let mut data = vec![0; len];
        file.read_exact(&mut data).map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEof => truncated(&self.path),
            _ => HubError::io(&self.path, e),
        })?;
        Ok(data)
    }
}

/// Writes a `model.bin` (binary version [`BINARY_VERSION`]) one variable at a time; aliases are
/// collected and written by [`ModelBinWriter::finish`], which must be called.
#[derive(Debug)]
pub struct ModelBinWriter {
    output: BufWriter<File>,
    path: PathBuf,
    count_at: u64,
    written: usize,
    names: HashSet<String>,
    aliases: Vec<(String, String)>,
}

impl ModelBinWriter {
    /// Creates (or truncates) `path` and writes the header for the spec `spec_name` at
    /// `spec_revision`.
    pub fn create(path: &Path, spec_name: &str, spec_revision: u32) -> Result<ModelBinWriter> {
        let file = File::create(path).map_err(|e| HubError::io(path, e))?;
        let mut writer = ModelBinWriter {
            output: BufWriter::with_capacity(1 << 20, file),
            path: path.to_path_buf(),
            count_at: 0,
            written: 0,
            names: HashSet::new(),
            aliases: Vec::new(),
        };
        writer.bytes(&BINARY_VERSION.to_le_bytes())?;
        writer.string(spec_name)?;
        writer.bytes(&spec_revision.to_le_bytes())?;
        // The count of variables is patched in by finish(), once aliases are known.
        writer.count_at = 4 + 2 + spec_name.len() as u64 + 1 + 4;
        writer.bytes(&0u32.to_le_bytes())?;
        Ok(writer)
    }

    /// Writes one variable; `data` is its row-major bytes, `shape.product() * dtype.size()` long.
    pub fn write_variable(
        &mut self,
        name: &str,
        shape: &[usize],
        dtype: Ct2Dtype,
        data: &[u8],
    ) -> Result<()> {
        let expected = shape.iter().product::<usize>() * dtype.size();
        if data.len() != expected {
            return Err(self.invalid(format!(
                "variable `{name}` was given {} bytes, but shape {shape:?} of {dtype} needs {expected}",
                data.len()
            )));
        }
        let rank = u8::try_from(shape.len())
            .map_err(|_| self.invalid(format!("variable `{name}` has too many dimensions")))?;
        let byte_len = u32::try_from(data.len()).map_err(|_| {
            self.invalid(format!(
                "variable `{name}` is over 4 GiB, more than model.bin can hold"
            ))
        })?;
        self.claim(name)?;
        self.string(name)?;
        self.bytes(&[rank])?;
        for &dim in shape {
            let dim = u32::try_from(dim)
                .map_err(|_| self.invalid(format!("variable `{name}` has a dimension over u32")))?;
            self.bytes(&dim.to_le_bytes())?;
        }
        self.bytes(&[dtype.id()])?;
        self.bytes(&byte_len.to_le_bytes())?;
        self.bytes(data)?;
        self.written += 1;
        Ok(())
    }

    /// Records that `alias` names the same data as the variable `target` (written before or
    /// after).
    pub fn write_alias(&mut self, alias: &str, target: &str) -> Result<()> {
        self.claim(alias)?;
        self.aliases.push((alias.to_string(), target.to_string()));
        Ok(())
    }

    /// Writes the aliases, fills in the number of variables and flushes the file to disk.
    pub fn finish(mut self) -> Result<()> {
        let dangling = self
            .aliases
            .iter()
            .find(|(_, target)| !self.names.contains(target.as_str()) || self.is_alias(target));
        if let Some((alias, target)) = dangling {
            return Err(self.invalid(format!(
                "alias `{alias}` names `{target}`, which is not a stored variable"
            )));
        }
        let aliases = std::mem::take(&mut self.aliases);
        self.bytes(&(aliases.len() as u32).to_le_bytes())?;
        for (alias, target) in &aliases {
            self.string(alias)?;
            self.string(target)?;
        }
        let count = u32::try_from(self.written)
            .map_err(|_| self.invalid("too many variables".to_string()))?;
        let path = self.path.clone();
        let io = |e| HubError::io(&path, e);
        self.output
            .seek(SeekFrom::Start(self.count_at))
            .map_err(io)?;
        self.output.write_all(&count.to_le_bytes()).map_err(io)?;
        let file = self
            .output
            .into_inner()
            .map_err(|e| HubError::io(&path, e.into_error()))?;
        file.sync_all().map_err(io)
    }

    fn is_alias(&self, name: &str) -> bool {
        self.aliases.iter().any(|(alias, _)| alias == name)
    }

    fn claim(&mut self, name: &str) -> Result<()> {
        if !self.names.insert(name.to_string()) {
            return Err(self.invalid(format!("`{name}` is written twice")));
        }
        Ok(())
    }

    fn string(&mut self, text: &str) -> Result<()> {
        let len = u16::try_from(text.len() + 1)
            .map_err(|_| self.invalid(format!("name `{text}` is too long for model.bin")))?;
        self.bytes(&len.to_le_bytes())?;
        self.bytes(text.as_bytes())?;
        self.bytes(&[0])
    }

    fn bytes(&mut self, data: &[u8]) -> Result<()> {
        self.output
            .write_all(data)
            .map_err(|e| HubError::io(&self.path, e))
    }

    fn invalid(&self, message: String) -> HubError {
        ConvertError::Unsupported {
            file: self.path.clone(),
            message,
        }
        .into()
    }
}

/// A reader that knows where it is, for the offsets of variables' data.
struct Input<'a> {
    reader: BufReader<File>,
    path: &'a Path,
    position: u64,
}

impl Input<'_> {
    fn exact<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut buffer = [0; N];
        self.fill(&mut buffer)?;
        Ok(buffer)
    }

    fn fill(&mut self, buffer: &mut [u8]) -> Result<()> {
        self.reader.read_exact(buffer).map_err(|e| match e.kind() {
            ErrorKind::UnexpectedEof => truncated(self.path),
            _ => HubError::io(self.path, e),
        })?;
        self.position += buffer.len() as u64;
        Ok(())
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.exact::<1>()?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.exact()?))
    }

    fn string(&mut self) -> Result<String> {
        let len = usize::from(u16::from_le_bytes(self.exact()?));
        if len == 0 {
            return Err(malformed(self.path, "a name of length 0".to_string()));
        }
        let mut bytes = vec![0; len];
        self.fill(&mut bytes)?;
        bytes.pop();
        String::from_utf8(bytes)
            .map_err(|_| malformed(self.path, "a name that is not UTF-8".to_string()))
    }

    fn skip(&mut self, len: u64) -> Result<()> {
        let step = i64::try_from(len).map_err(|_| truncated(self.path))?;
        self.reader
            .seek_relative(step)
            .map_err(|e| HubError::io(self.path, e))?;
        self.position += len;
        Ok(())
    }
}

fn malformed(path: &Path, message: String) -> HubError {
    ConvertError::Malformed {
        file: path.to_path_buf(),
        message: format!("not a valid CTranslate2 model.bin: {message}"),
    }
    .into()
}

fn truncated(path: &Path) -> HubError {
    malformed(
        path,
        "it ends early; the file is truncated (fetch or convert it again)".to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes CTranslate2's `_serialize` writes for a spec with a f16 matrix, an int16 scalar
    /// and one alias, spelled out field by field.
    fn expected_bytes() -> Vec<u8> {
        let mut out = Vec::new();
        let string = |out: &mut Vec<u8>, s: &str| {
            out.extend((s.len() as u16 + 1).to_le_bytes());
            out.extend(s.as_bytes());
            out.push(0);
        };
        out.extend(6u32.to_le_bytes());
        string(&mut out, "TestSpec");
        out.extend(3u32.to_le_bytes());
        out.extend(2u32.to_le_bytes());
        string(&mut out, "a/num_heads");
        out.push(0);
        out.push(2);
        out.extend(2u32.to_le_bytes());
        out.extend(6i16.to_le_bytes());
        string(&mut out, "a/weight");
        out.push(2);
        out.extend(2u32.to_le_bytes());
        out.extend(3u32.to_le_bytes());
        out.push(4);
        out.extend(12u32.to_le_bytes());
        out.extend(1..=12u8);
        out.extend(1u32.to_le_bytes());
        string(&mut out, "b/weight");
        string(&mut out, "a/weight");
        out
    }

    #[test]
    fn writes_what_ctranslate2_writes_and_reads_it_back() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("model.bin");
        let mut writer = ModelBinWriter::create(&path, "TestSpec", 3).expect("create");
        writer
            .write_variable("a/num_heads", &[], Ct2Dtype::I16, &6i16.to_le_bytes())
            .expect("scalar");
        let weight: Vec<u8> = (1..=12).collect();
        writer
            .write_variable("a/weight", &[2, 3], Ct2Dtype::F16, &weight)
            .expect("matrix");
        writer.write_alias("b/weight", "a/weight").expect("alias");
        writer.finish().expect("finish");
        assert_eq!(std::fs::read(&path).expect("read"), expected_bytes());

        let model = ModelBin::open(&path).expect("open");
        assert_eq!(
            (
                model.binary_version,
                model.spec_name.as_str(),
                model.spec_revision
            ),
            (6, "TestSpec", 3)
        );
        let names: Vec<&str> = model.variables.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["a/num_heads", "a/weight"]);
        let scalar = model.variable("a/num_heads").expect("scalar");
        assert!(scalar.is_scalar());
        assert_eq!(model.read(scalar).expect("read"), 6i16.to_le_bytes());
        let aliased = model.variable("b/weight").expect("alias");
        assert_eq!(
            (aliased.name.as_str(), aliased.dtype),
            ("a/weight", Ct2Dtype::F16)
        );
        assert_eq!(aliased.shape, [2, 3]);
        assert_eq!(model.read(aliased).expect("read"), weight);
        assert_eq!(model.read_range(aliased, 6, 6).expect("row"), weight[6..]);
        assert_eq!(model.aliases, [("b/weight".into(), "a/weight".into())]);
    }

    #[test]
    fn a_truncated_file_or_a_bad_variable_is_refused() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("model.bin");
        let full = expected_bytes();
        std::fs::write(&path, &full[..full.len() - 30]).expect("write");
        let err = ModelBin::open(&path).expect_err("truncated");
        assert!(err.to_string().contains("truncated"), "{err}");

        std::fs::write(&path, 7u32.to_le_bytes()).expect("write");
        let err = ModelBin::open(&path).expect_err("too new");
        assert!(err.to_string().contains("binary version 7"), "{err}");

        let mut writer = ModelBinWriter::create(&path, "TestSpec", 3).expect("create");
        let err = writer
            .write_variable("x", &[2], Ct2Dtype::F32, &[0; 4])
            .expect_err("short data");
        assert!(err.to_string().contains("needs 8"), "{err}");
        writer.write_alias("y", "missing").expect("alias");
        let err = writer.finish().expect_err("dangling alias");
        assert!(err.to_string().contains("`missing`"), "{err}");
    }

    #[test]
    fn dtype_ids_follow_ctranslate2s_enum() {
        let ids: Vec<(u8, &str, usize)> = Ct2Dtype::ALL
            .iter()
            .map(|d| (d.id(), d.name(), d.size()))
            .collect();
        assert_eq!(
            ids,
            [
                (0, "float32", 4),
                (1, "int8", 1),
                (2, "int16", 2),
                (3, "int32", 4),
                (4, "float16", 2),
                (5, "bfloat16", 2)
            ]
        );
        assert_eq!(Ct2Dtype::from_id(6), None);
    }
}
