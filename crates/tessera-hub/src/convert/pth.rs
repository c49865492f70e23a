//! PyTorch checkpoints (`torch.save` of a state dict) to safetensors.
//!
//! Two layouts exist: since PyTorch 1.6 a zip holding `<name>/data.pkl` and one file per storage
//! under `<name>/data/`; before it (the "legacy" format, which the EfficientNet-Lite0 weights on
//! PyPI use) five things one after another: three small pickles (a magic number, the format
//! version, sizes and byte order), the state dict's pickle, a pickle listing the storage keys, then
//! each storage as an 8-byte element count and its raw bytes.
//!
//! A pickle is a program for a stack machine and may call any Python function it names. This
//! reader is not a Python: it runs only the opcodes `torch.save` emits for a state dict, and of
//! the globals it knows only `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2` (and
//! `_rebuild_parameter`) and the `torch.*Storage` types; anything else is refused with an error
//! that names it. Nothing in a checkpoint is ever executed.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};

use safetensors::Dtype;
use safetensors::tensor::TensorView;

use super::ConvertError;
use crate::error::{HubError, Result};

/// The magic number that opens a legacy checkpoint (`torch.serialization.MAGIC_NUMBER`).
const LEGACY_MAGIC: u128 = 0x1950a86a20f9469cfc6c;
/// The legacy format's version (`torch.serialization.PROTOCOL_VERSION`).
const LEGACY_VERSION: i64 = 1001;
/// Pickles nest this deep at most here; a state dict needs 4 or 5 levels.
const MAX_DEPTH: usize = 64;
/// Values copied out of the memo, all together, at most (a state dict copies a few thousand):
/// a pickle that reads a big container back again and again would otherwise grow without bound.
const MAX_COPIED: usize = 10_000_000;

/// What [`pth_to_safetensors`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PthSummary {
    /// How many tensors.
    pub tensors: usize,
    /// Their element count, all together.
    pub elements: u64,
}

/// Converts the PyTorch checkpoint `pth` (a state dict saved by `torch.save`, zip or legacy
/// layout) into the safetensors file `out`, keeping every tensor's name, shape and element type.
/// The file appears whole (written beside `out`, then renamed) or not at all.
pub fn pth_to_safetensors(pth: &Path, out: &Path) -> Result<PthSummary> {
    let tensors = read_pth(pth)?;
    let mut elements = 0u64;
    let mut views = Vec::with_capacity(tensors.len());
    for (name, tensor) in &tensors {
        elements += tensor.shape.iter().product::<usize>() as u64;
        let view =
            TensorView::new(tensor.dtype, tensor.shape.clone(), &tensor.data).map_err(|e| {
                ConvertError::Malformed {
                    file: pth.to_path_buf(),
                    message: format!("tensor `{name}`: {e}"),
                }
            })?;
        views.push((name.as_str(), view));
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(|e| HubError::io(parent, e))?;
    let temp = tempfile::Builder::new()
        .prefix(".tessera-convert-")
        .tempfile_in(parent)
        .map_err(|e| HubError::io(parent, e))?;
    let metadata = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(metadata), temp.path()).map_err(|e| {
        ConvertError::Unsupported {
            file: out.to_path_buf(),
            message: format!("could not write safetensors: {e}"),
        }
    })?;
    temp.persist(out).map_err(|e| HubError::io(out, e.error))?;
    Ok(PthSummary {
        tensors: tensors.len(),
        elements,
    })
}

/// One tensor read from a checkpoint, contiguous, little-endian.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PthTensor {
    pub(crate) dtype: Dtype,
    pub(crate) shape: Vec<usize>,
    pub(crate) data: Vec<u8>,
}

/// Every tensor of the state dict in `pth`, by name.
pub(crate) fn read_pth(pth: &Path) -> Result<BTreeMap<String, PthTensor>> {
    let bytes = fs::read(pth).map_err(|e| HubError::io(pth, e))?;
    let malformed = |message: String| -> HubError {
        ConvertError::Malformed {
            file: pth.to_path_buf(),
            message,
        }
        .into()
    };
    let (dict, storages) = if bytes.starts_with(b"PK\x03\x04") {
        read_zip(pth, &bytes)?
    } else if bytes.first() == Some(&0x80) {
        read_legacy(&bytes).map_err(malformed)?
    } else {
        return Err(malformed(
            "not a PyTorch checkpoint (neither a zip nor a pickle); save it with `torch.save(model.state_dict(), path)`"
                .into(),
        ));
    };
    let mut tensors = BTreeMap::new();
    for (name, value) in dict {
        let Value::Str(name) = name else {
            return Err(malformed(format!(
                "a state dict key is {}, not a string",
                value_kind(&name)
            )));
        };
        let Value::Tensor(tensor) = value else {
            // Extra entries (an epoch number, optimizer settings) are not weights.
            tracing::debug!(file = %pth.display(), key = %name, "skipping a non-tensor entry");
            continue;
        };
        let data = storages.get(&tensor.storage.key).ok_or_else(|| {
            malformed(format!(
                "tensor `{name}`: storage {} is missing",
                tensor.storage.key
            ))
        })?;
        let contiguous =
            gather(&tensor, data).map_err(|m| malformed(format!("tensor `{name}`: {m}")))?;
        tensors.insert(
            name,
            PthTensor {
                dtype: tensor.storage.dtype,
                shape: tensor.shape,
                data: contiguous,
            },
        );
    }
    if tensors.is_empty() {
        return Err(malformed("the state dict holds no tensors".into()));
    }
    Ok(tensors)
}

type Storages = HashMap<String, Vec<u8>>;

/// The state dict and its storages' bytes from a zip checkpoint.
fn read_zip(pth: &Path, bytes: &[u8]) -> Result<(Vec<(Value, Value)>, Storages)> {
    let malformed = |message: String| -> HubError {
        ConvertError::Malformed {
            file: pth.to_path_buf(),
            message,
        }
        .into()
    };
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| malformed(format!("a broken zip: {e}")))?;
    let pickle_name = archive
        .file_names()
        .find(|n| n.ends_with("data.pkl") && n.matches('/').count() <= 1)
        .map(str::to_string)
        .ok_or_else(|| malformed("the zip has no data.pkl: not a torch.save checkpoint".into()))?;
    let prefix = pickle_name.trim_end_matches("data.pkl").to_string();
    if let Ok(order) = read_member(&mut archive, &format!("{prefix}byteorder"))
        && order != b"little"
    {
        return Err(ConvertError::Unsupported {
            file: pth.to_path_buf(),
            message: "the checkpoint was saved big-endian; save it on a little-endian machine"
                .into(),
        }
        .into());
    }
    let pickle = read_member(&mut archive, &pickle_name).map_err(&malformed)?;
    let mut machine = Machine::new(&pickle);
    let top = machine.run().map_err(&malformed)?;
    let dict = state_dict(top).map_err(&malformed)?;
    let mut storages = Storages::new();
    for storage in machine.storages.values() {
        let data = read_member(&mut archive, &format!("{prefix}data/{}", storage.key))
            .map_err(&malformed)?;
        let need = storage.elements.saturating_mul(dtype_size(storage.dtype));
        if data.len() < need {
            return Err(malformed(format!(
                "storage {} holds {} bytes, {need} expected",
                storage.key,
                data.len()
            )));
        }
        storages.insert(storage.key.clone(), data);
    }
    Ok((dict, storages))
}

fn read_member<R: Read + Seek>(
    archive: &mut zip::ZipArchive<R>,
    name: &str,
) -> std::result::Result<Vec<u8>, String> {
    let mut file = archive
        .by_name(name)
        .map_err(|e| format!("no {name} in the zip ({e})"))?;
    let mut data = Vec::new();
    file.read_to_end(&mut data)
        .map_err(|e| format!("could not read {name}: {e}"))?;
    Ok(data)
}

/// The state dict and its storages' bytes from a legacy (pre-1.6) checkpoint.
fn read_legacy(bytes: &[u8]) -> std::result::Result<(Vec<(Value, Value)>, Storages), String> {
    let mut at = 0;
    let mut next = |what: &str| -> std::result::Result<(Value, Machine<'_>), String> {
        let mut machine = Machine::new(&bytes[at..]);
        let value = machine.run().map_err(|e| format!("{what}: {e}"))?;
        at += machine.pos;
        Ok((value, machine))
    };
    match next("the magic number")?.0 {
        Value::BigInt(LEGACY_MAGIC) => {}
        _ => return Err("not a PyTorch checkpoint (wrong magic number)".into()),
    }
    match next("the format version")?.0 {
        Value::Int(LEGACY_VERSION) => {}
        other => return Err(format!("unknown legacy format version {other:?}")),
    }
    let (info, _) = next("the system information")?;
    let little = match &info {
        Value::Dict(items) => items
            .iter()
            .find(|(k, _)| matches!(k, Value::Str(s) if s == "little_endian"))
            .map(|(_, v)| matches!(v, Value::Bool(true))),
        _ => None,
    };
    if little != Some(true) {
        return Err(
            "the checkpoint was saved big-endian (or says nothing of its byte order)".into(),
        );
    }
    let (top, machine) = next("the state dict")?;
    let declared = machine.storages;
    let dict = state_dict(top)?;
    let (keys, _) = next("the storage list")?;
    let Value::List(keys) = keys else {
        return Err("the storage list is not a list".into());
    };
    let mut storages = Storages::new();
    for key in keys {
        let Value::Str(key) = key else {
            return Err("a storage key is not a string".into());
        };
        let storage = declared
            .get(&key)
            .ok_or_else(|| format!("storage {key} is listed but no tensor uses it"))?;
        let count = bytes
            .get(at..at + 8)
            .ok_or_else(|| format!("truncated before storage {key}"))?;
        let count = u64::from_le_bytes(count.try_into().map_err(|_| "truncated".to_string())?);
        at += 8;
        if count != storage.elements as u64 {
            return Err(format!(
                "storage {key} holds {count} elements, {} declared",
                storage.elements
            ));
        }
        let len = storage.elements.saturating_mul(dtype_size(storage.dtype));
        let data = bytes
            .get(at..at.saturating_add(len))
            .ok_or_else(|| format!("truncated in storage {key}: the file is cut short"))?;
        at += len;
        storages.insert(key, data.to_vec());
    }
    Ok((dict, storages))
}

/// The (key, value) pairs of the checkpoint's top object: a state dict, or a dict that holds one
/// under `state_dict` or `model`.
fn state_dict(top: Value) -> std::result::Result<Vec<(Value, Value)>, String> {
    let Value::Dict(items) = top else {
        return Err(format!(
            "the checkpoint holds {}, not a state dict; save `model.state_dict()`",
            value_kind(&top)
        ));
    };
    let has_tensors = items.iter().any(|(_, v)| matches!(v, Value::Tensor(_)));
    if !has_tensors {
        for (key, value) in &items {
            if matches!(key, Value::Str(k) if k == "state_dict" || k == "model")
                && matches!(value, Value::Dict(_))
            {
                return state_dict(value.clone());
            }
        }
    }
    Ok(items)
}

/// The tensor's elements in row-major order, read through its offset and strides.
fn gather(tensor: &TensorRef, data: &[u8]) -> std::result::Result<Vec<u8>, String> {
    let size = dtype_size(tensor.storage.dtype);
    let count: usize = tensor.shape.iter().product();
    if tensor.stride.len() != tensor.shape.len() {
        return Err("its shape and strides differ in length".into());
    }
    // The furthest element the view touches must lie inside the storage.
    let last = tensor.offset
        + tensor
            .shape
            .iter()
            .zip(&tensor.stride)
            .map(|(&n, &s)| n.saturating_sub(1).saturating_mul(s))
            .sum::<usize>();
    if count > 0 && (last + 1).saturating_mul(size) > data.len() {
        return Err(format!(
            "its view reaches element {last}, past the end of its storage ({} elements)",
            data.len() / size
        ));
    }
    let mut out = Vec::with_capacity(count * size);
    let mut index = vec![0usize; tensor.shape.len()];
    for _ in 0..count {
        let element = tensor.offset
            + index
                .iter()
                .zip(&tensor.stride)
                .map(|(i, s)| i * s)
                .sum::<usize>();
        out.extend_from_slice(&data[element * size..(element + 1) * size]);
        // Odometer over the shape, last axis fastest.
        for axis in (0..index.len()).rev() {
            index[axis] += 1;
            if index[axis] < tensor.shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    Ok(out)
}

fn dtype_size(dtype: Dtype) -> usize {
    dtype.bitsize().div_ceil(8)
}

/// A storage a tensor points into.
#[derive(Debug, Clone, PartialEq)]
struct StorageRef {
    key: String,
    dtype: Dtype,
    elements: usize,
}

/// A tensor as `_rebuild_tensor_v2` describes it.
#[derive(Debug, Clone, PartialEq)]
struct TensorRef {
    storage: StorageRef,
    offset: usize,
    shape: Vec<usize>,
    stride: Vec<usize>,
}

/// The globals a state dict may name.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildParameter,
    Storage(Dtype),
}

/// The values the subset of pickle run here builds.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    BigInt(u128),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// A dict or an OrderedDict, its items in order.
    Dict(Vec<(Value, Value)>),
    Global(Global),
    Storage(StorageRef),
    Tensor(TensorRef),
    /// The stack's MARK.
    Mark,
}

fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::None => "None",
        Value::Bool(_) => "a bool",
        Value::Int(_) | Value::BigInt(_) => "an int",
        Value::Float(_) => "a float",
        Value::Str(_) => "a string",
        Value::Tuple(_) => "a tuple",
        Value::List(_) => "a list",
        Value::Dict(_) => "a dict",
        Value::Global(_) => "a class",
        Value::Storage(_) => "a storage",
        Value::Tensor(_) => "a tensor",
        Value::Mark => "a mark",
    }
}

/// The pickle stack machine, for the opcodes `torch.save` emits (protocols 2 to 5).
struct Machine<'a> {
    code: &'a [u8],
    pos: usize,
    stack: Vec<Value>,
    memo: HashMap<u32, Value>,
    /// The storages named by persistent ids, by key.
    storages: BTreeMap<String, StorageRef>,
    /// Values copied out of the memo so far.
    copied: usize,
}

type Step<T> = std::result::Result<T, String>;

impl<'a> Machine<'a> {
    fn new(code: &'a [u8]) -> Self {
        Machine {
            code,
            pos: 0,
            stack: Vec::new(),
            memo: HashMap::new(),
            storages: BTreeMap::new(),
            copied: 0,
        }
    }

    fn take(&mut self, n: usize) -> Step<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.code.len())
            .ok_or_else(|| "the pickle is cut short".to_string())?;
        let bytes = &self.code[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Step<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Step<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Step<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn line(&mut self) -> Step<String> {
        let rest = &self.code[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or_else(|| "the pickle is cut short".to_string())?;
        let text = String::from_utf8(rest[..end].to_vec())
            .map_err(|_| "a name is not UTF-8".to_string())?;
        self.pos += end + 1;
        Ok(text)
    }

    fn text(&mut self, len: usize) -> Step<Value> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map(Value::Str)
            .map_err(|_| "a string is not UTF-8".to_string())
    }

    fn pop(&mut self) -> Step<Value> {
        match self.stack.pop() {
            Some(Value::Mark) | None => Err("the pickle pops an empty stack".into()),
            Some(value) => Ok(value),
        }
    }

    /// The values above the topmost MARK, which is removed.
    fn pop_mark(&mut self) -> Step<Vec<Value>> {
        let mark = self
            .stack
            .iter()
            .rposition(|v| *v == Value::Mark)
            .ok_or_else(|| "the pickle has no MARK where one is needed".to_string())?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    fn push(&mut self, value: Value) -> Step<()> {
        if self.stack.len() > 1 << 20 {
            return Err("the pickle's stack grows without bound".into());
        }
        self.stack.push(value);
        Ok(())
    }

    fn top_mut(&mut self) -> Step<&mut Value> {
        self.stack
            .last_mut()
            .ok_or_else(|| "the pickle uses an empty stack".to_string())
    }

    fn memo_get(&mut self, index: u32) -> Step<Value> {
        let value = self
            .memo
            .get(&index)
            .ok_or_else(|| format!("the pickle reads memo {index} before writing it"))?;
        self.copied = self.copied.saturating_add(size(value));
        if self.copied > MAX_COPIED {
            return Err("the pickle copies more values than a state dict holds".into());
        }
        Ok(value.clone())
    }

    fn memo_put(&mut self, index: u32) -> Step<()> {
        let value = self
            .stack
            .last()
            .cloned()
            .ok_or_else(|| "the pickle memoizes an empty stack".to_string())?;
        self.memo.insert(index, value);
        Ok(())
    }

    /// Runs to STOP and returns the pickled object.
    fn run(&mut self) -> Step<Value> {
        loop {
            let op = self.u8()?;
            match op {
                0x80 => {
                    // PROTO
                    let version = self.u8()?;
                    if !(2..=5).contains(&version) {
                        return Err(format!(
                            "pickle protocol {version} is not one torch.save writes"
                        ));
                    }
                }
                0x95 => {
                    // FRAME: a length prefix only.
                    self.take(8)?;
                }
                b'.' => return self.pop(),
                b'(' => self.push(Value::Mark)?,
                b')' => self.push(Value::Tuple(Vec::new()))?,
                b']' => self.push(Value::List(Vec::new()))?,
                b'}' => self.push(Value::Dict(Vec::new()))?,
                b'N' => self.push(Value::None)?,
                0x88 => self.push(Value::Bool(true))?,
                0x89 => self.push(Value::Bool(false))?,
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(v.into()))?
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v.into()))?
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(v.into()))?
                }
                0x8a => {
                    // LONG1: a little-endian two's-complement integer of n bytes.
                    let n = usize::from(self.u8()?);
                    if n > 16 {
                        return Err("an integer longer than 16 bytes".into());
                    }
                    let bytes = self.take(n)?;
                    let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
                    let mut full = [if negative { 0xff } else { 0 }; 16];
                    full[..n].copy_from_slice(bytes);
                    let wide = i128::from_le_bytes(full);
                    let value = match i64::try_from(wide) {
                        Ok(v) => Value::Int(v),
                        Err(_) if wide >= 0 => Value::BigInt(wide as u128),
                        Err(_) => return Err("a negative integer too large".into()),
                    };
                    self.push(value)?
                }
                b'G' => {
                    let b = self.take(8)?;
                    let mut raw = [0u8; 8];
                    raw.copy_from_slice(b);
                    self.push(Value::Float(f64::from_be_bytes(raw)))?
                }
                b'X' => {
                    let len = self.u32()? as usize;
                    let v = self.text(len)?;
                    self.push(v)?
                }
                0x8c => {
                    let len = usize::from(self.u8()?);
                    let v = self.text(len)?;
                    self.push(v)?
                }
                b'T' | b'U' => {
                    // BINSTRING / SHORT_BINSTRING (protocol 2 `str` from Python 2).
                    let len = if op == b'T' {
                        self.u32()? as usize
                    } else {
                        usize::from(self.u8()?)
                    };
                    let v = self.text(len)?;
                    self.push(v)?
                }
                b't' => {
                    let items = self.pop_mark()?;
                    nestable(&items)?;
                    self.push(Value::Tuple(items))?
                }
                0x85..=0x87 => {
                    let n = usize::from(op - 0x84);
                    if self.stack.len() < n {
                        return Err("the pickle builds a tuple from an empty stack".into());
                    }
                    let items = self.stack.split_off(self.stack.len() - n);
                    if items.contains(&Value::Mark) {
                        return Err("the pickle puts a MARK in a tuple".into());
                    }
                    nestable(&items)?;
                    self.push(Value::Tuple(items))?
                }
                b'a' => {
                    let item = self.pop()?;
                    nestable(std::slice::from_ref(&item))?;
                    match self.top_mut()? {
                        Value::List(list) => list.push(item),
                        _ => return Err("APPEND to something that is not a list".into()),
                    }
                }
                b'e' => {
                    let items = self.pop_mark()?;
                    nestable(&items)?;
                    match self.top_mut()? {
                        Value::List(list) => list.extend(items),
                        _ => return Err("APPENDS to something that is not a list".into()),
                    }
                }
                b's' => {
                    let value = self.pop()?;
                    let key = self.pop()?;
                    nestable(std::slice::from_ref(&value))?;
                    match self.top_mut()? {
                        Value::Dict(items) => items.push((key, value)),
                        _ => return Err("SETITEM on something that is not a dict".into()),
                    }
                }
                b'u' => {
                    let flat = self.pop_mark()?;
                    nestable(&flat)?;
                    if flat.len() % 2 != 0 {
                        return Err("SETITEMS with an odd number of values".into());
                    }
                    let mut flat = flat.into_iter();
                    match self.top_mut()? {
                        Value::Dict(items) => {
                            while let (Some(k), Some(v)) = (flat.next(), flat.next()) {
                                items.push((k, v));
                            }
                        }
                        _ => return Err("SETITEMS on something that is not a dict".into()),
                    }
                }
                b'q' => {
                    let i = self.u8()?;
                    self.memo_put(i.into())?
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?
                }
                0x94 => {
                    // MEMOIZE: the next free index.
                    let i = u32::try_from(self.memo.len()).map_err(|_| "too many memo entries")?;
                    self.memo_put(i)?
                }
                b'h' => {
                    let i = self.u8()?;
                    let v = self.memo_get(i.into())?;
                    self.push(v)?
                }
                b'j' => {
                    let i = self.u32()?;
                    let v = self.memo_get(i)?;
                    self.push(v)?
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    self.push(Value::Global(global(&module, &name)?))?
                }
                0x93 => {
                    // STACK_GLOBAL
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (module, name) else {
                        return Err("STACK_GLOBAL with names that are not strings".into());
                    };
                    self.push(Value::Global(global(&module, &name)?))?
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = self.persistent(pid)?;
                    self.push(Value::Storage(storage))?
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let value = reduce(callable, args)?;
                    self.push(value)?
                }
                b'b' => {
                    // BUILD: only an OrderedDict's `_metadata` (module versions) is set this way.
                    let _state = self.pop()?;
                    if !matches!(self.stack.last(), Some(Value::Dict(_))) {
                        return Err("BUILD on something other than a state dict".into());
                    }
                }
                other => {
                    return Err(format!(
                        "pickle opcode 0x{other:02x} at byte {} is outside what torch.save writes for a state dict; \
                         refusing it (save `model.state_dict()` with torch.save)",
                        self.pos - 1
                    ));
                }
            }
        }
    }

    /// A storage from a persistent id: `('storage', <torch.*Storage>, key, location, numel[, view])`.
    fn persistent(&mut self, pid: Value) -> Step<StorageRef> {
        let Value::Tuple(parts) = pid else {
            return Err("a persistent id that is not a tuple".into());
        };
        let [
            Value::Str(kind),
            Value::Global(Global::Storage(dtype)),
            key,
            _location,
            Value::Int(elements),
            rest @ ..,
        ] = parts.as_slice()
        else {
            return Err(format!("an unknown persistent id {parts:?}"));
        };
        if kind != "storage" {
            return Err(format!("a persistent id of kind {kind:?}, not a storage"));
        }
        if !matches!(rest, [] | [Value::None]) {
            return Err("a storage view (legacy shared storages) is not supported".into());
        }
        let key = match key {
            Value::Str(k) => k.clone(),
            Value::Int(k) => k.to_string(),
            _ => return Err("a storage key that is not a string".into()),
        };
        let elements =
            usize::try_from(*elements).map_err(|_| "a negative storage size".to_string())?;
        let storage = StorageRef {
            key: key.clone(),
            dtype: *dtype,
            elements,
        };
        if let Some(known) = self.storages.get(&key)
            && *known != storage
        {
            return Err(format!("storage {key} is declared twice, differently"));
        }
        self.storages.insert(key, storage.clone());
        Ok(storage)
    }
}

/// Refuses to put `items` into a container when that would nest deeper than [`MAX_DEPTH`]. Every
/// value on the stack passed this check, so the recursion here is bounded too.
fn nestable(items: &[Value]) -> Step<()> {
    if items.iter().any(|item| depth(item) + 1 > MAX_DEPTH) {
        return Err("the pickle nests too deep".into());
    }
    Ok(())
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Tuple(items) | Value::List(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Dict(items) => {
            1 + items
                .iter()
                .map(|(k, v)| depth(k).max(depth(v)))
                .max()
                .unwrap_or(0)
        }
        _ => 0,
    }
}

/// How many values `value` holds, itself included.
fn size(value: &Value) -> usize {
    match value {
        Value::Tuple(items) | Value::List(items) => 1 + items.iter().map(size).sum::<usize>(),
        Value::Dict(items) => 1 + items.iter().map(|(k, v)| size(k) + size(v)).sum::<usize>(),
        _ => 1,
    }
}

/// The global `module.name`, if it is one a state dict may use.
fn global(module: &str, name: &str) -> Step<Global> {
    let storage = |dtype| Ok(Global::Storage(dtype));
    match (module, name) {
        ("collections", "OrderedDict") => Ok(Global::OrderedDict),
        ("torch._utils", "_rebuild_tensor_v2") => Ok(Global::RebuildTensor),
        ("torch._utils", "_rebuild_parameter") => Ok(Global::RebuildParameter),
        ("torch", "FloatStorage") => storage(Dtype::F32),
        ("torch", "DoubleStorage") => storage(Dtype::F64),
        ("torch", "HalfStorage") => storage(Dtype::F16),
        ("torch", "BFloat16Storage") => storage(Dtype::BF16),
        ("torch", "LongStorage") => storage(Dtype::I64),
        ("torch", "IntStorage") => storage(Dtype::I32),
        ("torch", "ShortStorage") => storage(Dtype::I16),
        ("torch", "CharStorage") => storage(Dtype::I8),
        ("torch", "ByteStorage") => storage(Dtype::U8),
        ("torch", "BoolStorage") => storage(Dtype::BOOL),
        _ => Err(format!(
            "the pickle names the global `{module}.{name}`, which a plain state dict does not use; \
             refusing it (tessera never runs code from a checkpoint)"
        )),
    }
}

/// What calling `callable(*args)` builds, for the globals allowed.
fn reduce(callable: Value, args: Value) -> Step<Value> {
    let Value::Tuple(args) = args else {
        return Err("REDUCE with arguments that are not a tuple".into());
    };
    let usizes = |value: &Value, what: &str| -> Step<Vec<usize>> {
        let Value::Tuple(items) = value else {
            return Err(format!("a tensor's {what} is not a tuple"));
        };
        items
            .iter()
            .map(|v| match v {
                Value::Int(n) => usize::try_from(*n).map_err(|_| format!("a negative {what}")),
                _ => Err(format!("a tensor's {what} holds a non-integer")),
            })
            .collect()
    };
    match callable {
        Value::Global(Global::OrderedDict) if args.is_empty() => Ok(Value::Dict(Vec::new())),
        Value::Global(Global::RebuildTensor) => {
            let [
                Value::Storage(storage),
                Value::Int(offset),
                shape,
                stride,
                ..,
            ] = args.as_slice()
            else {
                return Err("_rebuild_tensor_v2 with unexpected arguments".into());
            };
            Ok(Value::Tensor(TensorRef {
                storage: storage.clone(),
                offset: usize::try_from(*offset)
                    .map_err(|_| "a negative tensor offset".to_string())?,
                shape: usizes(shape, "shape")?,
                stride: usizes(stride, "stride")?,
            }))
        }
        Value::Global(Global::RebuildParameter) => match args.into_iter().next() {
            Some(tensor @ Value::Tensor(_)) => Ok(tensor),
            _ => Err("_rebuild_parameter without a tensor".into()),
        },
        other => Err(format!("a call of {} is not allowed", value_kind(&other))),
    }
}

/// The file of a model's converted weights, `model.safetensors`.
pub(crate) const CONVERTED_WEIGHTS: &str = "model.safetensors";

/// Bumped when the converter's output changes, so old conversions are not reused.
pub(crate) const CONVERTER_VERSION: &str = "pth-safetensors 1";

/// Where the output of converting a checkpoint with sha256 `sha256` for model `id` goes.
pub(crate) fn converted_folder(root: &Path, id: &str, sha256: &str) -> PathBuf {
    use sha2::Digest;
    let key = hex::encode(sha2::Sha256::digest(format!(
        "{CONVERTER_VERSION}\0{sha256}"
    )));
    root.join(format!("{id}-{}", &key[..12]))
}

/// A small legacy checkpoint (a transposed weight, a bias at an offset, an int64 counter), for
/// the hub's tests.
#[cfg(test)]
pub(crate) fn sample_checkpoint() -> Vec<u8> {
    tests::legacy_checkpoint(&tests::sample_pickle())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes pickles the way torch.save does, for hand-made checkpoints.
    #[derive(Default)]
    struct Pickle(Vec<u8>);

    impl Pickle {
        fn op(&mut self, bytes: &[u8]) -> &mut Self {
            self.0.extend_from_slice(bytes);
            self
        }
        fn str(&mut self, s: &str) -> &mut Self {
            self.op(b"X")
                .op(&(s.len() as u32).to_le_bytes())
                .op(s.as_bytes())
        }
        fn int(&mut self, n: u16) -> &mut Self {
            self.op(b"M").op(&n.to_le_bytes())
        }
        fn ints(&mut self, ns: &[u16]) -> &mut Self {
            self.op(b"(");
            for &n in ns {
                self.int(n);
            }
            self.op(b"t")
        }
        fn global(&mut self, module: &str, name: &str) -> &mut Self {
            self.op(b"c")
                .op(module.as_bytes())
                .op(b"\n")
                .op(name.as_bytes())
                .op(b"\n")
        }
        /// `name: _rebuild_tensor_v2(storage(key, numel), offset, shape, stride, False, OrderedDict())`.
        fn tensor(
            &mut self,
            name: &str,
            storage: (&str, &str, u16),
            offset: u16,
            shape: &[u16],
            stride: &[u16],
        ) -> &mut Self {
            self.str(name)
                .global("torch._utils", "_rebuild_tensor_v2")
                .op(b"((")
                .str("storage")
                .global("torch", storage.0)
                .str(storage.1)
                .str("cpu")
                .int(storage.2)
                .op(b"NtQ")
                .int(offset)
                .ints(shape)
                .ints(stride)
                .op(b"\x89")
                .global("collections", "OrderedDict")
                .op(b")R")
                .op(b"tR")
                .op(b"s")
        }
        fn state_dict(tensors: impl FnOnce(&mut Pickle)) -> Vec<u8> {
            let mut p = Pickle::default();
            p.op(b"\x80\x02")
                .global("collections", "OrderedDict")
                .op(b")R");
            tensors(&mut p);
            // The `_metadata` torch sets with BUILD.
            p.op(b"}").str("version").int(1).op(b"s").op(b"b").op(b".");
            p.0
        }
    }

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    /// A weight [2, 3] stored transposed (so not contiguous), a bias sharing one storage at an
    /// offset, and a step counter in int64.
    pub(super) fn sample_pickle() -> Vec<u8> {
        Pickle::state_dict(|p| {
            p.tensor("fc.weight", ("FloatStorage", "0", 6), 0, &[2, 3], &[1, 2])
                .tensor("fc.bias", ("FloatStorage", "1", 4), 2, &[2], &[1])
                .tensor("steps", ("LongStorage", "2", 1), 0, &[], &[]);
        })
    }

    fn check_sample(tensors: &BTreeMap<String, PthTensor>) {
        let weight = &tensors["fc.weight"];
        assert_eq!(
            (weight.dtype, weight.shape.as_slice()),
            (Dtype::F32, &[2usize, 3][..])
        );
        // Storage [0 1 2 3 4 5] seen with strides (1, 2): rows [0 2 4] and [1 3 5].
        assert_eq!(weight.data, f32_bytes(&[0., 2., 4., 1., 3., 5.]));
        assert_eq!(tensors["fc.bias"].data, f32_bytes(&[12., 13.]));
        let steps = &tensors["steps"];
        assert_eq!((steps.dtype, steps.shape.len()), (Dtype::I64, 0));
        assert_eq!(steps.data, 7i64.to_le_bytes());
    }

    fn storages() -> [(&'static str, Vec<u8>); 3] {
        [
            ("0", f32_bytes(&[0., 1., 2., 3., 4., 5.])),
            ("1", f32_bytes(&[10., 11., 12., 13.])),
            ("2", 7i64.to_le_bytes().to_vec()),
        ]
    }

    fn zip_checkpoint(pickle: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut out = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zip.start_file("archive/data.pkl", options).unwrap();
        zip.write_all(pickle).unwrap();
        zip.start_file("archive/byteorder", options).unwrap();
        zip.write_all(b"little").unwrap();
        for (key, data) in storages() {
            zip.start_file(format!("archive/data/{key}"), options)
                .unwrap();
            zip.write_all(&data).unwrap();
        }
        zip.finish().unwrap();
        out.into_inner()
    }

    pub(super) fn legacy_checkpoint(pickle: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        // The magic number as LONG1, the version, the system information.
        out.extend_from_slice(b"\x80\x02\x8a\x0a");
        out.extend_from_slice(&LEGACY_MAGIC.to_le_bytes()[..10]);
        out.extend_from_slice(b".");
        out.extend_from_slice(b"\x80\x02M\xe9\x03.");
        let mut info = Pickle::default();
        info.op(b"\x80\x02}(").str("little_endian").op(b"\x88u.");
        out.extend_from_slice(&info.0);
        out.extend_from_slice(pickle);
        let mut keys = Pickle::default();
        keys.op(b"\x80\x02](").str("0").str("1").str("2").op(b"e.");
        out.extend_from_slice(&keys.0);
        for (_, data) in storages() {
            let elements = if data.len() == 8 {
                1u64
            } else {
                data.len() as u64 / 4
            };
            out.extend_from_slice(&elements.to_le_bytes());
            out.extend_from_slice(&data);
        }
        out
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        fs::write(&path, bytes).unwrap();
        path
    }

    #[test]
    fn zip_and_legacy_checkpoints_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let pickle = sample_pickle();
        let zip = write(dir.path(), "new.pth", &zip_checkpoint(&pickle));
        let legacy = write(dir.path(), "old.pth", &legacy_checkpoint(&pickle));
        check_sample(&read_pth(&zip).unwrap());
        check_sample(&read_pth(&legacy).unwrap());
    }

    #[test]
    fn converts_to_safetensors_that_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let pth = write(dir.path(), "m.pth", &legacy_checkpoint(&sample_pickle()));
        let out = dir.path().join("out").join(CONVERTED_WEIGHTS);
        let summary = pth_to_safetensors(&pth, &out).unwrap();
        assert_eq!(
            summary,
            PthSummary {
                tensors: 3,
                elements: 9
            }
        );
        let bytes = fs::read(&out).unwrap();
        let read = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let weight = read.tensor("fc.weight").unwrap();
        assert_eq!(weight.shape(), &[2, 3]);
        assert_eq!(
            weight.data(),
            f32_bytes(&[0., 2., 4., 1., 3., 5.]).as_slice()
        );
        assert_eq!(read.tensor("steps").unwrap().dtype(), Dtype::I64);
        // Nothing but the output is left in its folder.
        assert_eq!(fs::read_dir(out.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn foreign_globals_and_opcodes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        // A pickle that would call os.system("...") in Python.
        let mut evil = Pickle::default();
        evil.op(b"\x80\x02")
            .global("os", "system")
            .op(b"(")
            .str("echo hi")
            .op(b"tR.");
        let path = write(dir.path(), "evil.pth", &zip_checkpoint(&evil.0));
        let message = read_pth(&path).unwrap_err().to_string();
        assert!(
            message.contains("`os.system`") && message.contains("refusing"),
            "{message}"
        );

        // INST (`i`), a protocol-0 way to call a class, is not in the subset.
        let mut inst = Pickle::default();
        inst.op(b"\x80\x02(ibuiltins\nlist\n.");
        let path = write(dir.path(), "inst.pth", &zip_checkpoint(&inst.0));
        let message = read_pth(&path).unwrap_err().to_string();
        assert!(message.contains("opcode 0x69"), "{message}");

        // A tensor that reaches past its storage.
        let bad = Pickle::state_dict(|p| {
            p.tensor("w", ("FloatStorage", "0", 6), 4, &[3], &[1]);
        });
        let path = write(dir.path(), "bad.pth", &zip_checkpoint(&bad));
        let message = read_pth(&path).unwrap_err().to_string();
        assert!(message.contains("past the end of its storage"), "{message}");

        // A legacy file cut in its storages, and a file that is neither format.
        let legacy = legacy_checkpoint(&sample_pickle());
        let path = write(dir.path(), "cut.pth", &legacy[..legacy.len() - 3]);
        let message = read_pth(&path).unwrap_err().to_string();
        assert!(message.contains("cut short"), "{message}");
        let path = write(dir.path(), "text.pth", b"hello");
        assert!(
            read_pth(&path)
                .unwrap_err()
                .to_string()
                .contains("not a PyTorch checkpoint")
        );
    }

    /// The EfficientNet-Lite0 weights the catalog pulls, when the cache has them
    /// (`scripts/fetch-models.sh`); in CI it always does.
    #[test]
    fn the_efficientnet_lite0_checkpoint_converts() {
        let home = std::env::var_os("TESSERA_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tessera")))
            .unwrap();
        let pth = home.join("models/efficientnet-lite0/model.pth");
        assert!(
            pth.is_file(),
            "{} is missing; run scripts/fetch-models.sh",
            pth.display()
        );
        let tensors = read_pth(&pth).unwrap();
        assert_eq!(tensors.len(), 296);
        let stem = &tensors["_conv_stem.weight"];
        assert_eq!(
            (stem.dtype, stem.shape.as_slice()),
            (Dtype::F32, &[32usize, 3, 3, 3][..])
        );
        assert_eq!(tensors["_fc.weight"].shape, [1000, 1280]);
        assert_eq!(
            tensors["_blocks.15._depthwise_conv.weight"].shape,
            [1152, 1, 3, 3]
        );
        let elements: usize = tensors
            .values()
            .filter(|t| t.dtype == Dtype::F32)
            .map(|t| t.data.len() / 4)
            .sum();
        // 4.65 M parameters plus the BatchNorm statistics.
        assert_eq!(elements, 4_694_024);
        let fc: Vec<f32> = tensors["_fc.bias"]
            .data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert!(fc.iter().all(|v| v.is_finite()) && fc.iter().any(|&v| v != 0.0));
    }
}
