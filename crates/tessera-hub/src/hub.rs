//! The hub: pulls catalog models into the cache, finds and resolves names to local models,
//! reports and removes what is cached.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::path::{Component, Path, PathBuf};
use std::time::{Instant, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use tessera_core::{EngineKind, Task};

use crate::catalog::{
    Catalog, CatalogEntry, FileConversion, FileSpec, Source, is_plain_file_name, is_valid_id,
};
use crate::config::HubConfig;
use crate::convert;
use crate::detect::{detect, folder_name, is_model_file_name};
use crate::error::{HubError, Result};
use crate::fetch::{Fetcher, Lookup, PackageCache, Target};
use crate::model::{Conversion, LocalModel, ModelStatus};
use crate::store::Store;

/// Where a name may be looked for by [`Hub::locate`].
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    /// Anywhere the caller can reach, for the CLI: a catalog id, any existing file or folder
    /// (absolute or relative to the current directory), or a model cached from an older catalog.
    AnyPath,
    /// Only what a server's operator allows: a catalog id, a model cached from an older catalog,
    /// or a relative name (no `..`, no hidden parts) of a folder or `.onnx`/`.gguf` file under one
    /// of these folders (the `--model-dir` list; may be empty), not leaving it through a
    /// symbolic link. Failures say nothing about the machine's files.
    ModelDirs(&'a [PathBuf]),
}

/// A name that denotes a model, found by [`Hub::locate`] without downloading or reading weights;
/// [`Hub::materialize`] makes its files present.
#[derive(Debug, Clone)]
pub struct ModelRef {
    /// The catalog or cached model's id; for a model under a server's model folder the name as
    /// given (a trailing `/` trimmed); for a local path (CLI) the name [`detect`] gives it (the
    /// path as given when it does not detect).
    pub id: String,
    /// The kind of work it does, when known without the task crate: `Some` for catalog entries,
    /// pulled models and Hugging Face Whisper checkpoints (`transcribe`), `None` for other local
    /// files and folders.
    pub task: Option<Task>,
    /// The engine that runs it, when it could be told from the catalog or the file names.
    pub engine: Option<EngineKind>,
    /// Whether it is a local file or folder (as opposed to a catalog or cached model).
    pub local: bool,
    origin: Origin,
}

/// How a [`ModelRef`] is materialised.
#[derive(Debug, Clone)]
enum Origin {
    /// Pulled (or found complete in the cache) as this entry says.
    Entry(CatalogEntry),
    /// Detected from this local file or folder.
    Path(PathBuf),
    /// Converted from this Hugging Face Whisper checkpoint into a CTranslate2 folder.
    WhisperCheckpoint(PathBuf),
}

impl ModelRef {
    fn entry(entry: CatalogEntry) -> ModelRef {
        ModelRef {
            id: entry.id.clone(),
            task: Some(entry.task),
            engine: Some(entry.engine),
            local: false,
            origin: Origin::Entry(entry),
        }
    }
}

/// Pulls, finds, lists and removes models. Cheap to share between threads (`&Hub` is enough);
/// several hubs, in one process or many, may share a home: blobs are locked while fetched.
#[derive(Debug)]
pub struct Hub {
    config: HubConfig,
    catalog: Catalog,
    store: Store,
    agent: ureq::Agent,
    local_agent: ureq::Agent,
}

impl Hub {
    /// A hub over `catalog` with the cache and network settings of `config`.
    pub fn new(config: HubConfig, catalog: Catalog) -> Hub {
        Hub {
            store: Store::new(config.home.clone()),
            agent: crate::fetch::agent(config.timeout, true),
            local_agent: crate::fetch::agent(config.timeout, false),
            config,
            catalog,
        }
    }

    /// The built-in catalog with settings from the environment ([`HubConfig::from_env`]).
    pub fn from_env() -> Result<Hub> {
        Ok(Hub::new(HubConfig::from_env(), Catalog::builtin()?))
    }

    /// The catalog this hub pulls from.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The settings this hub runs with.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The cache root, `$TESSERA_HOME`.
    pub fn home(&self) -> &Path {
        self.store.home()
    }

    /// The folder a model is (or would be) linked into: `$TESSERA_HOME/models/<id>`.
    pub fn model_dir(&self, id: &str) -> PathBuf {
        self.store.model_dir(id)
    }

    /// Makes every file of catalog model `id` present and verified in the cache, fetching what
    /// is missing, and links them into the model's folder. Does nothing more when all is there.
    pub fn pull(&self, id: &str) -> Result<LocalModel> {
        let entry = self
            .catalog
            .get(id)
            .ok_or_else(|| self.unknown(id))?
            .clone();
        self.pull_entry(&entry)
    }

    /// [`Hub::locate`] in [`Scope::AnyPath`], then [`Hub::materialize`]: a catalog id is pulled;
    /// an existing file or folder is detected ([`detect`]); a model in the cache from an older
    /// catalog is used as cached. Anything else is [`HubError::UnknownModel`] with the closest
    /// catalog ids.
    pub fn resolve(&self, spec: &str) -> Result<LocalModel> {
        self.materialize(&self.locate(spec, &Scope::AnyPath)?)
    }

    /// Finds what `spec` names in `scope`, cheaply: no network, no weights read (at most a folder
    /// listing and a small manifest). Looked for in order: a catalog id; a local file or folder
    /// (any existing path in [`Scope::AnyPath`], a name under the model folders in
    /// [`Scope::ModelDirs`]); a model cached from an older catalog. Anything else is
    /// [`HubError::UnknownModel`]; in [`Scope::ModelDirs`] its message is the same whether or
    /// not a path of that name exists, and holds no path.
    pub fn locate(&self, spec: &str, scope: &Scope) -> Result<ModelRef> {
        if let Some(entry) = self.catalog.get(spec) {
            return Ok(ModelRef::entry(entry.clone()));
        }
        let local = match scope {
            Scope::AnyPath => {
                let path = Path::new(spec);
                (!spec.is_empty() && fs::metadata(path).is_ok()).then(|| path.to_path_buf())
            }
            Scope::ModelDirs(dirs) => under_model_dirs(spec, dirs),
        };
        if let Some(path) = local {
            let as_given = || {
                Some(spec.trim_end_matches('/'))
                    .filter(|name| !name.is_empty())
                    .unwrap_or(spec)
                    .to_string()
            };
            // Whisper runs on CTranslate2: materialize converts the checkpoint.
            if convert::is_hf_whisper(&path) {
                return Ok(ModelRef {
                    id: match scope {
                        Scope::AnyPath => folder_name(&path),
                        Scope::ModelDirs(_) => as_given(),
                    },
                    task: Some(Task::Transcribe),
                    engine: Some(EngineKind::Ctranslate2),
                    local: true,
                    origin: Origin::WhisperCheckpoint(path),
                });
            }
            let peek = detect(&path).ok();
            let id = match (scope, &peek) {
                (Scope::AnyPath, Some(model)) => model.id.clone(),
                _ => as_given(),
            };
            return Ok(ModelRef {
                id,
                task: peek.as_ref().and_then(|m| m.task),
                engine: peek.as_ref().map(|m| m.engine),
                local: true,
                origin: Origin::Path(path),
            });
        }
        if let Some(entry) = self.cached_entry(spec) {
            return Ok(ModelRef::entry(entry));
        }
        Err(self.unknown_in(spec, matches!(scope, Scope::ModelDirs(_))))
    }

    /// Makes a located model's files present: a catalog entry or a cached model is pulled (a
    /// no-op when all is cached), a local file or folder is detected ([`detect`]) and keeps the
    /// [`ModelRef::id`] it was located under. A Hugging Face Whisper checkpoint is converted
    /// into a CTranslate2 folder under `$TESSERA_HOME/converted/` the first time (see
    /// [`Hub::convert_whisper`]).
    pub fn materialize(&self, model: &ModelRef) -> Result<LocalModel> {
        let mut local = match &model.origin {
            Origin::Entry(entry) => return self.pull_entry(entry),
            Origin::Path(path) => detect(path)?,
            Origin::WhisperCheckpoint(path) => self.convert_whisper(path)?,
        };
        local.id = model.id.clone();
        Ok(local)
    }

    /// The CTranslate2 model converted from the Hugging Face Whisper checkpoint in `checkpoint`
    /// ([`convert::hf_to_ct2`]), as a `transcribe` model on the `ctranslate2` engine with the
    /// options of the catalog's Whisper entries (`sample_rate`, `multilingual`, `precision`).
    ///
    /// It lives in `$TESSERA_HOME/converted/<folder name>-<hash>`, the hash taken over the
    /// names, sizes and modification times of the checkpoint's files: the first call converts
    /// (under a lock, so concurrent processes convert once), later ones reuse the folder until
    /// the checkpoint's files change. The model's [`LocalModel::id`] is the checkpoint's folder
    /// name.
    pub fn convert_whisper(&self, checkpoint: &Path) -> Result<LocalModel> {
        let key = conversion_key(checkpoint)?;
        let name = folder_name(checkpoint);
        let dir = self
            .store
            .converted_dir()
            .join(format!("{}-{key}", file_name_safe(&name)));
        if !dir.join("model.bin").is_file() {
            let _lock = self.store.lock_conversion(&key, &name)?;
            if !dir.join("model.bin").is_file() {
                // Conversions appear whole, by a rename; anything else there is not one.
                if dir.exists() {
                    fs::remove_dir_all(&dir).map_err(|e| HubError::io(&dir, e))?;
                }
                tracing::info!(
                    from = %checkpoint.display(),
                    to = %dir.display(),
                    "converting the Hugging Face Whisper checkpoint to CTranslate2, once"
                );
                let started = Instant::now();
                let converted = convert::hf_to_ct2(checkpoint, &dir)?;
                tracing::info!(
                    model = %name,
                    to = %dir.display(),
                    n_mels = converted.dims.n_mels,
                    dtype = %converted.dtype,
                    seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
                    "converted the Whisper checkpoint"
                );
            }
        } else {
            tracing::debug!(from = %checkpoint.display(), dir = %dir.display(), "using the converted Whisper model");
        }
        let mut local = detect(&dir)?;
        let (dims, dtype) = convert::ct2_whisper_summary(&dir)?;
        local.id = name;
        local.task = Some(Task::Transcribe);
        local.options.insert("sample_rate".into(), 16_000.into());
        local
            .options
            .insert("multilingual".into(), dims.is_multilingual().into());
        local
            .options
            .insert("precision".into(), dtype.name().into());
        Ok(local)
    }

    /// The names of the models directly under each of `dirs`, sorted, each once: sub-folders
    /// that [`detect`] recognises and `.onnx`/`.gguf` files. Hidden entries, symbolic links
    /// leading out of their folder and unreadable folders are left out. Each name is one
    /// [`Hub::locate`] finds in [`Scope::ModelDirs`] over the same `dirs`.
    pub fn model_dir_entries(&self, dirs: &[PathBuf]) -> Vec<String> {
        let mut names = BTreeSet::new();
        for dir in dirs {
            let Ok(root) = dir.canonicalize() else {
                tracing::debug!(dir = %dir.display(), "model folder not found");
                continue;
            };
            let Ok(read) = fs::read_dir(&root) else {
                continue;
            };
            for entry in read.filter_map(|e| e.ok()) {
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                if names.contains(&name) || !is_safe_relative_name(&name) {
                    continue;
                }
                let Some(path) = inside(&root, &name) else {
                    continue;
                };
                let is_model = match fs::metadata(&path) {
                    Ok(meta) if meta.is_dir() => detect(&path).is_ok(),
                    Ok(meta) => meta.is_file() && is_model_file_name(&name),
                    Err(_) => false,
                };
                if is_model {
                    names.insert(name);
                }
            }
        }
        names.into_iter().collect()
    }

    /// Every catalog model, then every other model found in the cache, with how much of it is
    /// cached.
    pub fn status(&self) -> Vec<ModelStatus> {
        let describe = |entry: &CatalogEntry, in_catalog: bool| {
            let cached_bytes = entry
                .files
                .iter()
                .filter(|f| self.store.has_blob(f))
                .map(|f| f.size)
                .sum();
            ModelStatus {
                id: entry.id.clone(),
                task: entry.task,
                engine: entry.engine,
                license: entry.license.clone(),
                total_size: entry.total_size(),
                cached_bytes,
                complete: entry.files.iter().all(|f| self.store.has_blob(f)),
                in_catalog,
                dir: self.store.model_dir(&entry.id),
            }
        };
        let mut statuses: Vec<ModelStatus> = self
            .catalog
            .entries()
            .iter()
            .map(|e| describe(e, true))
            .collect();
        for (folder, entry) in self.store.cached_models() {
            if self.catalog.get(&folder).is_none() && folder == entry.id {
                statuses.push(describe(&entry, false));
            }
        }
        statuses
    }

    /// The models converted into `$TESSERA_HOME/converted/` ([`Hub::convert_whisper`]), by
    /// name. A conversion still being written (no `model.bin` yet) is left out.
    pub fn conversions(&self) -> Vec<Conversion> {
        let Ok(entries) = fs::read_dir(self.store.converted_dir()) else {
            return Vec::new();
        };
        let mut found: Vec<Conversion> = entries
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let name = entry.file_name().into_string().ok()?;
                let dir = entry.path();
                if name.starts_with('.') || !is_conversion(&dir) {
                    return None;
                }
                Some(Conversion {
                    id: format!("{CONVERTED}{name}"),
                    bytes: folder_bytes(&dir),
                    dir,
                })
            })
            .collect();
        found.sort_by(|a, b| a.id.cmp(&b.id));
        found
    }

    /// Deletes the model's folder and the blobs no other model folder uses; returns the bytes
    /// freed. `converted/<folder>` (as [`Hub::conversions`] names them) deletes a conversion;
    /// the checkpoint it came from is converted again on its next use.
    pub fn remove(&self, id: &str) -> Result<u64> {
        if let Some(folder) = id.strip_prefix(CONVERTED) {
            return self.remove_conversion(id, folder);
        }
        if !is_valid_id(id) {
            return Err(self.unknown(id));
        }
        let dir = self.store.model_dir(id);
        let entry = Store::read_manifest(&dir)
            .or_else(|| self.catalog.get(id).cloned())
            .ok_or_else(|| self.unknown(id))?;
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| HubError::io(&dir, e))?;
            tracing::info!(model = id, dir = %dir.display(), "removed the model folder");
        }
        let still_used = self.blobs_in_use();
        let mut freed = 0;
        let mut seen = HashSet::new();
        for file in &entry.files {
            if still_used.contains(&file.sha256) || !seen.insert(file.sha256.as_str()) {
                continue;
            }
            freed += self.store.remove_blob(&file.sha256)?;
        }
        tracing::info!(model = id, bytes = freed, "freed");
        Ok(freed)
    }

    fn remove_conversion(&self, id: &str, folder: &str) -> Result<u64> {
        let dir = self.store.converted_dir().join(folder);
        if !is_plain_file_name(folder) || !is_conversion(&dir) {
            return Err(HubError::UnknownConversion {
                id: id.to_string(),
                known: self.conversions().into_iter().map(|c| c.id).collect(),
            });
        }
        let bytes = folder_bytes(&dir);
        fs::remove_dir_all(&dir).map_err(|e| HubError::io(&dir, e))?;
        tracing::info!(model = id, dir = %dir.display(), bytes, "removed the conversion");
        Ok(bytes)
    }

    /// Re-hashes every cached file of a model; a file that no longer matches is deleted so the
    /// next pull fetches it again.
    pub fn verify(&self, id: &str) -> Result<()> {
        let entry = self
            .catalog
            .get(id)
            .cloned()
            .or_else(|| {
                is_valid_id(id)
                    .then(|| Store::read_manifest(&self.store.model_dir(id)))
                    .flatten()
            })
            .ok_or_else(|| self.unknown(id))?;
        for file in &entry.files {
            let blob = self.store.blob(&file.sha256);
            if !self.store.has_blob(file) {
                return Err(HubError::MissingFile {
                    model: entry.id.clone(),
                    file: file.name.clone(),
                    dir: self.store.model_dir(&entry.id),
                });
            }
            let (actual, size) = crate::fetch::hash_file(&blob)?;
            if actual != file.sha256 || size != file.size {
                self.store.remove_blob(&file.sha256)?;
                return Err(HubError::ChecksumMismatch {
                    file: format!("{}/{}", entry.id, file.name),
                    expected: file.sha256.clone(),
                    actual,
                });
            }
        }
        Ok(())
    }

    fn pull_entry(&self, entry: &CatalogEntry) -> Result<LocalModel> {
        let fetcher = Fetcher {
            config: &self.config,
            agent: &self.agent,
            local_agent: &self.local_agent,
            store: &self.store,
        };
        // Offline, fail before touching the cache when a file is neither cached nor in the
        // Hugging Face cache.
        if self.config.offline {
            for file in &entry.files {
                let target = Target {
                    model: &entry.id,
                    spec: file,
                };
                let in_hf_cache = || {
                    fetcher
                        .hf_cache_lookups(&target)
                        .iter()
                        .any(|l| matches!(l, Lookup::Found(_)))
                };
                if !self.store.has_blob(file) && !in_hf_cache() {
                    return Err(self.offline_error(&fetcher, &target));
                }
            }
        }
        let dir = self.store.model_dir(&entry.id);
        Store::create_dir(&dir)?;
        self.store.remove_old_wheel_folders();
        let mut wheels = PackageCache::default();
        for (i, file) in entry.files.iter().enumerate() {
            let target = Target {
                model: &entry.id,
                spec: file,
            };
            if !self.store.has_blob(file) {
                let _lock = self.store.lock_blob(&file.sha256, &target.label())?;
                if self.store.has_blob(file) {
                    tracing::info!(file = %target.label(), "already fetched by another process");
                } else {
                    self.store.remove_stale_temps(&file.sha256);
                    if !self.config.offline {
                        fetcher.fetch(&target, &mut wheels)?;
                    } else if !fetcher.fetch_from_hf_cache(&target) {
                        return Err(self.offline_error(&fetcher, &target));
                    }
                }
            }
            wheels.retain(&packages_of(&entry.files[i + 1..]));
            self.store
                .link(&self.store.blob(&file.sha256), &dir.join(&file.name))?;
        }
        self.store.write_manifest(entry)?;
        let mut local = LocalModel::from_entry(entry, dir);
        for file in &entry.files {
            if let Some(conversion) = file.convert {
                let output = self.convert_file(entry, file, conversion)?;
                local.files.push(output);
            }
        }
        Ok(local)
    }

    /// The output of converting `file` of `entry` (verified, in the cache): converted once, under a
    /// lock, into `$TESSERA_HOME/converted/<id>-<hash>/`, the hash taken over the file's sha256
    /// and the converter's version, so a new file or converter converts again.
    fn convert_file(
        &self,
        entry: &CatalogEntry,
        file: &FileSpec,
        conversion: FileConversion,
    ) -> Result<PathBuf> {
        let output = convert::converted_output(
            &self.store.converted_dir(),
            &entry.id,
            &file.sha256,
            &file.name,
            conversion,
        );
        if output.is_file() {
            return Ok(output);
        }
        let key = output
            .parent()
            .and_then(|folder| folder.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _lock = self.store.lock_conversion(&key, &entry.id)?;
        if output.is_file() {
            return Ok(output);
        }
        let source = self.store.blob(&file.sha256);
        tracing::info!(model = %entry.id, file = %file.name, to = %output.display(), "converting, once");
        let started = Instant::now();
        match conversion {
            FileConversion::PthToSafetensors => {
                let summary = convert::pth_to_safetensors(&source, &output)?;
                tracing::info!(
                    model = %entry.id,
                    tensors = summary.tensors,
                    elements = summary.elements,
                    seconds = format!("{:.1}", started.elapsed().as_secs_f64()),
                    "converted the PyTorch checkpoint to safetensors"
                );
            }
            FileConversion::TfliteToOnnx => {
                let bytes = convert::tflite_to_onnx(&source, &output)?;
                tracing::info!(
                    model = %entry.id,
                    bytes,
                    seconds = format!("{:.2}", started.elapsed().as_secs_f64()),
                    "converted the TFLite model to ONNX"
                );
            }
        }
        Ok(output)
    }

    /// Offline and `target` is neither cached nor usable from the Hugging Face cache.
    fn offline_error(&self, fetcher: &Fetcher<'_>, target: &Target<'_>) -> HubError {
        HubError::Offline {
            model: target.model.to_string(),
            file: target.spec.name.clone(),
            path: self.store.model_dir(target.model).join(&target.spec.name),
            hf_cache: fetcher
                .hf_cache_lookups(target)
                .iter()
                .map(|l| l.path().to_path_buf())
                .collect(),
        }
    }

    /// The sha256 of every file of every model folder in the cache.
    fn blobs_in_use(&self) -> HashSet<String> {
        let mut used = HashSet::new();
        for folder in self.store.model_folders() {
            let entry = Store::read_manifest(&self.store.model_dir(&folder))
                .or_else(|| self.catalog.get(&folder).cloned());
            if let Some(entry) = entry {
                used.extend(entry.files.into_iter().map(|f| f.sha256));
            }
        }
        used
    }

    /// The entry of a model cached (from an older catalog) under the id `spec`.
    fn cached_entry(&self, spec: &str) -> Option<CatalogEntry> {
        if !is_valid_id(spec) {
            return None;
        }
        Store::read_manifest(&self.store.model_dir(spec)).filter(|entry| entry.id == spec)
    }

    fn unknown(&self, spec: &str) -> HubError {
        self.unknown_in(spec, false)
    }

    fn unknown_in(&self, spec: &str, served: bool) -> HubError {
        HubError::UnknownModel {
            spec: spec.to_string(),
            suggestions: self.catalog.suggest(spec),
            served,
        }
    }
}

/// How [`Hub::conversions`] names converted models, before the folder's name.
const CONVERTED: &str = "converted/";

use convert::is_conversion;

/// The size of the files in `dir` and its sub-folders (symbolic links not followed).
fn folder_bytes(dir: &Path) -> u64 {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|entry| entry.ok())
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => folder_bytes(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// What names a conversion of `checkpoint`: the names, sizes and modification times of its
/// files (not sub-folders, not hidden files), and the converter's version, hashed; 12 hex digits.
fn conversion_key(checkpoint: &Path) -> Result<String> {
    // Bump when the converter's output changes, so old conversions are not reused.
    const CONVERTER_VERSION: &str = "whisper-ct2 1";
    let read = fs::read_dir(checkpoint).map_err(|e| HubError::io(checkpoint, e))?;
    let mut files = Vec::new();
    for entry in read {
        let entry = entry.map_err(|e| HubError::io(checkpoint, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let Ok(meta) = fs::metadata(&path) else {
            continue;
        };
        if name.starts_with('.') || !meta.is_file() {
            continue;
        }
        let modified = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        files.push((name, meta.len(), modified));
    }
    files.sort();
    let mut hash = Sha256::new();
    hash.update(CONVERTER_VERSION);
    for (name, size, modified) in files {
        hash.update(format!("\0{name}\0{size}\0{modified}"));
    }
    Ok(hex::encode(hash.finalize())[..12].to_string())
}

/// `name` with every character other than letters, digits, `.`, `_` and `-` made a `-`.
fn file_name_safe(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    match safe.trim_start_matches('.') {
        "" => "whisper".to_string(),
        trimmed => trimmed.to_string(),
    }
}

/// The existing folder or `.onnx`/`.gguf` file `name` names under the first of `dirs` that has
/// it, as `<canonical dir>/<name>`; `None` for a name that is not a safe relative name, or that
/// leaves its folder through a symbolic link.
fn under_model_dirs(name: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    let name = name.trim_end_matches('/');
    if !is_safe_relative_name(name) {
        return None;
    }
    dirs.iter().find_map(|dir| {
        let root = dir.canonicalize().ok()?;
        let path = inside(&root, name)?;
        let meta = fs::metadata(&path).ok()?;
        (meta.is_dir() || (meta.is_file() && is_model_file_name(name))).then_some(path)
    })
}

/// `root.join(name)` when it exists and, all symbolic links followed, is still under `root`
/// (which must be canonical).
fn inside(root: &Path, name: &str) -> Option<PathBuf> {
    let path = root.join(name);
    let real = path.canonicalize().ok()?;
    real.starts_with(root).then_some(path)
}

/// A name a server's client may use under a model folder: non-empty `/`-separated parts, none
/// empty or hidden (so no `.` or `..`), no NUL or backslash, nothing absolute.
fn is_safe_relative_name(name: &str) -> bool {
    !name.is_empty()
        && !name.contains(['\0', '\\'])
        && name
            .split('/')
            .all(|part| !part.is_empty() && !part.starts_with('.'))
        && Path::new(name)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// The pip and npm packages the files of `files` come from.
fn packages_of(files: &[crate::catalog::FileSpec]) -> HashSet<&str> {
    files
        .iter()
        .flat_map(|f| &f.sources)
        .flat_map(|s| match s {
            Source::Pip { parts } => parts.iter().map(|p| p.package.as_str()).collect(),
            Source::Npm(npm) => vec![npm.package.as_str()],
            _ => Vec::new(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalog file marked `convert = "pth-to-safetensors"` is converted once at pull time,
    /// listed among the model's files and as a conversion, and `tessera rm` can drop it.
    #[test]
    fn a_pth_file_is_converted_once_when_pulled() {
        let home = tempfile::tempdir().unwrap();
        let source = home.path().join("weights.pth");
        let bytes = convert::sample_checkpoint();
        fs::write(&source, &bytes).unwrap();
        let entry = CatalogEntry {
            id: "tiny-classifier".into(),
            task: Task::Classify,
            engine: EngineKind::Candle,
            description: "a test".into(),
            license: "MIT".into(),
            options: Default::default(),
            idle_unload: None,
            files: vec![FileSpec {
                name: "model.pth".into(),
                size: bytes.len() as u64,
                sha256: hex::encode(Sha256::digest(&bytes)),
                sources: vec![Source::Path { path: source }],
                convert: Some(FileConversion::PthToSafetensors),
            }],
        };
        let mut config = HubConfig::new(home.path().join("home"));
        config.progress = false;
        let hub = Hub::new(config, Catalog::from_entries(vec![entry]).unwrap());
        let model = hub.pull("tiny-classifier").unwrap();
        let converted = model.file_with_extension("safetensors").unwrap();
        assert!(converted.starts_with(home.path().join("home/converted")));
        let written = fs::metadata(&converted).unwrap().modified().unwrap();
        let data = fs::read(&converted).unwrap();
        let read = safetensors::SafeTensors::deserialize(&data).unwrap();
        assert_eq!(read.tensor("fc.weight").unwrap().shape(), &[2, 3]);
        // Pulled again: the conversion is reused, not redone.
        let again = hub.pull("tiny-classifier").unwrap();
        assert_eq!(again.files, model.files);
        assert_eq!(
            fs::metadata(&converted).unwrap().modified().unwrap(),
            written
        );
        let listed = hub.conversions();
        assert_eq!(listed.len(), 1);
        assert!(
            listed[0].id.starts_with("converted/tiny-classifier-"),
            "{listed:?}"
        );
        assert_eq!(listed[0].bytes, data.len() as u64);
        hub.remove(&listed[0].id).unwrap();
        assert!(hub.conversions().is_empty());
    }

    #[test]
    fn safe_relative_names() {
        for good in ["minilm", "a/b", "model.onnx", "a b/c-d_e.gguf"] {
            assert!(is_safe_relative_name(good), "{good}");
        }
        for bad in [
            "",
            "/etc",
            "..",
            "../..",
            "a/../../x",
            ".",
            "./a",
            "a/./b",
            "a//b",
            ".hidden",
            "a\\b",
            "a\0b",
            "/",
        ] {
            assert!(!is_safe_relative_name(bad), "{bad:?}");
        }
    }
}
