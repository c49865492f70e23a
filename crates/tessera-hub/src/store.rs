//! The on-disk cache under `$TESSERA_HOME`.
//!
//! ```text
//! blobs/sha256/<hex>           verified file contents, named by their sha256
//! blobs/sha256/<hex>.partial   an interrupted HTTP download, resumed on the next pull
//! models/<id>/<file name>      links (hard, else symbolic, else a copy) to the blobs
//! models/<id>/.tessera-model.json   the catalog entry the folder was pulled from
//! locks/<hex>.lock             one lock file per blob, so two processes fetch it once
//! locks/convert-<hash>.lock    one per conversion, so two processes convert a model once
//! converted/<name>-<hash>/     Hugging Face Whisper checkpoints converted to CTranslate2, and
//!                              catalog files converted at pull time (.pth to model.safetensors)
//! tmp/                         downloaded wheels while a pull runs
//! ```
//!
//! A blob only ever appears under its final name by a rename after its size and sha256 were
//! checked, so a blob that exists with the right size is verified. A converted folder, too,
//! appears only by a rename once the conversion is complete.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;

use crate::catalog::{CatalogEntry, FileSpec, is_valid_id};
use crate::error::{HubError, Result};

/// The name of the manifest written into each model folder.
pub(crate) const MANIFEST: &str = ".tessera-model.json";

/// Paths and file operations of the cache.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    home: PathBuf,
}

/// An exclusive cross-process lock on one blob, released on drop (closing the file unlocks it).
#[derive(Debug)]
pub(crate) struct BlobLock {
    _file: File,
}

impl Store {
    pub(crate) fn new(home: PathBuf) -> Store {
        Store { home }
    }

    pub(crate) fn home(&self) -> &Path {
        &self.home
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.home.join("blobs").join("sha256")
    }

    pub(crate) fn blob(&self, sha256: &str) -> PathBuf {
        self.blobs_dir().join(sha256)
    }

    pub(crate) fn partial(&self, sha256: &str) -> PathBuf {
        self.blobs_dir().join(format!("{sha256}.partial"))
    }

    pub(crate) fn models_dir(&self) -> PathBuf {
        self.home.join("models")
    }

    pub(crate) fn model_dir(&self, id: &str) -> PathBuf {
        self.models_dir().join(id)
    }

    /// Where converted models live: `$TESSERA_HOME/converted`.
    pub(crate) fn converted_dir(&self) -> PathBuf {
        self.home.join("converted")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.home.join("tmp")
    }

    fn locks_dir(&self) -> PathBuf {
        self.home.join("locks")
    }

    /// Whether the verified blob for `spec` is in the cache.
    pub(crate) fn has_blob(&self, spec: &FileSpec) -> bool {
        fs::metadata(self.blob(&spec.sha256)).is_ok_and(|m| m.is_file() && m.len() == spec.size)
    }

    /// Creates a directory and its parents.
    pub(crate) fn create_dir(path: &Path) -> Result<()> {
        fs::create_dir_all(path).map_err(|e| HubError::io(path, e))
    }

    /// Takes the lock of one blob, waiting for another process that holds it.
    pub(crate) fn lock_blob(&self, sha256: &str, label: &str) -> Result<BlobLock> {
        self.lock(&format!("{sha256}.lock"), |path| {
            tracing::info!(file = label, lock = %path.display(), "another process is fetching this file; waiting for it");
        })
    }

    /// Takes the lock of the conversion whose result is `converted/<…>-<key>`, waiting for
    /// another process that holds it.
    pub(crate) fn lock_conversion(&self, key: &str, label: &str) -> Result<BlobLock> {
        self.lock(&format!("convert-{key}.lock"), |path| {
            tracing::info!(model = label, lock = %path.display(), "another process is converting this model; waiting for it");
        })
    }

    /// Takes the lock file `locks/<name>`; `waiting` is told when another process holds it.
    fn lock(&self, name: &str, waiting: impl FnOnce(&Path)) -> Result<BlobLock> {
        let dir = self.locks_dir();
        Store::create_dir(&dir)?;
        let path = dir.join(name);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| HubError::io(&path, e))?;
        let got = FileExt::try_lock_exclusive(&file).map_err(|e| HubError::io(&path, e))?;
        if !got {
            waiting(&path);
            FileExt::lock_exclusive(&file).map_err(|e| HubError::io(&path, e))?;
        }
        Ok(BlobLock { _file: file })
    }

    /// Puts the blob at `dest`: a hard link, else a symbolic link, else a copy; replaced atomically.
    pub(crate) fn link(&self, blob: &Path, dest: &Path) -> Result<()> {
        // rename() onto a hard link of the same file does nothing and leaves the temporary name
        // behind, so a file that already is the blob is left as it is.
        if same_file(blob, dest) {
            return Ok(());
        }
        let dir = dest.parent().unwrap_or(Path::new("."));
        let temp = |how: &dyn Fn(&Path) -> std::io::Result<()>| {
            tempfile::Builder::new()
                .prefix(".link-")
                .make_in(dir, |p| how(p))
        };
        let linked = temp(&|p| fs::hard_link(blob, p))
            .or_else(|_| temp(&|p| symlink(blob, p)))
            .or_else(|_| temp(&|p| fs::copy(blob, p).map(drop)))
            .map_err(|e| HubError::io(dest, e))?;
        linked
            .persist(dest)
            .map(drop)
            .map_err(|e| HubError::io(dest, e.error))
    }

    /// Writes the entry a model folder was pulled from, atomically.
    pub(crate) fn write_manifest(&self, entry: &CatalogEntry) -> Result<()> {
        let dir = self.model_dir(&entry.id);
        let path = dir.join(MANIFEST);
        let text = serde_json::to_vec_pretty(entry).map_err(|e| {
            HubError::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            )
        })?;
        let mut file = tempfile::Builder::new()
            .prefix(".manifest-")
            .tempfile_in(&dir)
            .map_err(|e| HubError::io(&dir, e))?;
        file.write_all(&text).map_err(|e| HubError::io(&path, e))?;
        make_readable(file.as_file(), &path)?;
        file.persist(&path)
            .map(drop)
            .map_err(|e| HubError::io(&path, e.error))
    }

    /// The entry a cached model folder was pulled from, if it has a readable manifest.
    pub(crate) fn read_manifest(dir: &Path) -> Option<CatalogEntry> {
        let text = fs::read(dir.join(MANIFEST)).ok()?;
        let entry: CatalogEntry = serde_json::from_slice(&text).ok()?;
        entry.check().ok()?;
        Some(entry)
    }

    /// The cached model ids with a manifest, sorted.
    pub(crate) fn cached_models(&self) -> Vec<(String, CatalogEntry)> {
        let Ok(read) = fs::read_dir(self.models_dir()) else {
            return Vec::new();
        };
        let mut models: Vec<(String, CatalogEntry)> = read
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                if !is_valid_id(&name) || !e.path().is_dir() {
                    return None;
                }
                let entry = Store::read_manifest(&e.path())?;
                Some((name, entry))
            })
            .collect();
        models.sort_by(|a, b| a.0.cmp(&b.0));
        models
    }

    /// The folder names under `models/`, whether or not they have a manifest.
    pub(crate) fn model_folders(&self) -> HashSet<String> {
        let Ok(read) = fs::read_dir(self.models_dir()) else {
            return HashSet::new();
        };
        read.filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect()
    }

    /// Deletes what a killed process left of writing this blob: `.<hex>.*.tmp` files. Only call
    /// while holding the blob's lock, so nobody else is writing them.
    pub(crate) fn remove_stale_temps(&self, sha256: &str) {
        let prefix = format!(".{sha256}.");
        let Ok(read) = fs::read_dir(self.blobs_dir()) else {
            return;
        };
        for entry in read.filter_map(|e| e.ok()) {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(&prefix) && name.ends_with(".tmp") {
                tracing::debug!(path = %entry.path().display(), "removing a stale temporary file");
                let _ = fs::remove_file(entry.path());
            }
        }
    }

    /// Deletes wheel folders under `tmp/` that a killed pull left behind a day or more ago.
    pub(crate) fn remove_old_wheel_folders(&self) {
        const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);
        let Ok(read) = fs::read_dir(self.tmp_dir()) else {
            return;
        };
        for entry in read.filter_map(|e| e.ok()) {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= DAY);
            let name = entry.file_name().to_string_lossy().into_owned();
            if old && (name.starts_with("packages-") || name.starts_with("wheels-")) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }

    /// Deletes a blob (and any partial download of it) under its lock; returns the bytes freed.
    pub(crate) fn remove_blob(&self, sha256: &str) -> Result<u64> {
        let _lock = self.lock_blob(sha256, sha256)?;
        let mut freed = 0;
        for path in [self.blob(sha256), self.partial(sha256)] {
            if let Ok(meta) = fs::symlink_metadata(&path) {
                fs::remove_file(&path).map_err(|e| HubError::io(&path, e))?;
                freed += meta.len();
            }
        }
        Ok(freed)
    }
}

/// Gives a file written through `tempfile` (created 0600) the usual 0644, so a cache shared
/// with another user (a service account) stays readable.
pub(crate) fn make_readable(file: &File, path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(|e| HubError::io(path, e))?;
    }
    #[cfg(not(unix))]
    let _ = (file, path);
    Ok(())
}

#[cfg(unix)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

#[cfg(not(any(unix, windows)))]
fn symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "no symbolic links on this platform",
    ))
}

/// Whether both paths name the same file on disk (one inode).
#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (fs::metadata(a), fs::symlink_metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_a: &Path, _b: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_replaces_an_existing_file() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::new(home.path().to_path_buf());
        let blob = home.path().join("blob");
        fs::write(&blob, b"new").unwrap();
        let dest = home.path().join("dest");
        fs::write(&dest, b"old").unwrap();
        store.link(&blob, &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"new");
        let leftovers: Vec<_> = fs::read_dir(home.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".link-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn linking_the_same_blob_twice_leaves_no_temporary_file() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::new(home.path().to_path_buf());
        let blob = home.path().join("blob");
        fs::write(&blob, b"weights").unwrap();
        let dest = home.path().join("dest");
        store.link(&blob, &dest).unwrap();
        store.link(&blob, &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"weights");
        let names: Vec<String> = fs::read_dir(home.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".link-"))
            .collect();
        assert!(names.is_empty(), "left behind: {names:?}");
    }

    #[test]
    fn a_second_lock_waits_for_the_first() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::new(home.path().to_path_buf());
        let first = store.lock_blob("ab", "x").unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let other = store.clone();
        let waiter = std::thread::spawn(move || {
            let _second = other.lock_blob("ab", "x").unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err()
        );
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        waiter.join().unwrap();
    }
}
