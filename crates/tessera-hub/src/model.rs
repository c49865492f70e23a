//! What the hub hands to the runtime: a model on disk, and the cache state of a model.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use tessera_core::{EngineKind, Task};

use crate::catalog::{CatalogEntry, Options};
use crate::error::{HubError, Result};

/// A model whose files are all on this machine, ready to load.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalModel {
    /// The catalog id, or for a detected path the folder or file name.
    pub id: String,
    /// The kind of work it does: `Some` for catalog entries and pulled models, `None` for a
    /// detected local file or folder (the hub knows formats, not tasks; the task crate tells).
    pub task: Option<Task>,
    /// The engine that runs it.
    pub engine: EngineKind,
    /// The folder that holds its files.
    pub dir: PathBuf,
    /// Task-specific settings from the catalog (empty for detected models).
    pub options: Options,
    /// Every file of the model, in catalog order; for detected models the main weights first,
    /// then the rest sorted by name (see [`detect`](crate::detect)).
    pub files: Vec<PathBuf>,
}

impl LocalModel {
    /// A pulled catalog entry living in `dir`.
    pub(crate) fn from_entry(entry: &CatalogEntry, dir: PathBuf) -> LocalModel {
        LocalModel {
            id: entry.id.clone(),
            task: Some(entry.task),
            engine: entry.engine,
            files: entry.files.iter().map(|f| dir.join(&f.name)).collect(),
            options: entry.options.clone(),
            dir,
        }
    }

    /// The path of the file called `name`; an error naming the model and the file if it is missing.
    pub fn file(&self, name: &str) -> Result<PathBuf> {
        let listed = self
            .files
            .iter()
            .find(|p| p.file_name().is_some_and(|n| n == name));
        let path = listed.cloned().unwrap_or_else(|| self.dir.join(name));
        if path.is_file() {
            Ok(path)
        } else {
            Err(self.missing(name))
        }
    }

    /// The first file whose name ends with `.{extension}` (for example the one `gguf` of a model
    /// whatever it is called); an error naming the model if there is none.
    pub fn file_with_extension(&self, extension: &str) -> Result<PathBuf> {
        self.files
            .iter()
            .find(|p| p.extension().is_some_and(|e| e == extension) && p.is_file())
            .cloned()
            .ok_or_else(|| self.missing(&format!("*.{extension}")))
    }

    /// The options deserialized into the caller's own settings type.
    pub fn options_as<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(serde_json::Value::Object(self.options.clone())).map_err(|e| {
            HubError::Options {
                model: self.id.clone(),
                message: e.to_string(),
            }
        })
    }

    fn missing(&self, name: &str) -> HubError {
        HubError::MissingFile {
            model: self.id.clone(),
            file: name.to_string(),
            dir: self.dir.clone(),
        }
    }

    /// Whether `path` is one of this model's files.
    pub fn has_file(&self, path: &Path) -> bool {
        self.files.iter().any(|p| p == path)
    }
}

/// How much of a model is in the cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStatus {
    /// The model id.
    pub id: String,
    /// The kind of work it does.
    pub task: Task,
    /// The engine that runs it.
    pub engine: EngineKind,
    /// The licence of its weights, as the catalog states it.
    pub license: String,
    /// The size of all its files.
    pub total_size: u64,
    /// The size of the files already verified in the cache.
    pub cached_bytes: u64,
    /// Whether every file is in the cache.
    pub complete: bool,
    /// Whether the built-in catalog knows it (a cached model may come from an older catalog).
    pub in_catalog: bool,
    /// Its folder under `$TESSERA_HOME/models`.
    pub dir: PathBuf,
}

/// A model converted into `$TESSERA_HOME/converted/`: from a Hugging Face checkpoint, or a
/// catalog file converted at pull time (a PyTorch checkpoint to safetensors).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    /// `converted/<folder>`: the name `tessera rm` takes.
    pub id: String,
    /// The folder.
    pub dir: PathBuf,
    /// The size of its files.
    pub bytes: u64,
}
