//! Reusing files a user already has in the Hugging Face hub cache of `huggingface_hub`.
//!
//! ```text
//! {hf_cache}/models--{org}--{name}/refs/{revision}            the commit a branch or tag names
//! {hf_cache}/models--{org}--{name}/snapshots/{commit}/{file}  a symlink to ../../blobs/<etag>
//! {hf_cache}/models--{org}--{name}/blobs/<etag>               the bytes
//! ```
//!
//! A revision of 40 hex digits is a commit and names its snapshot folder directly; any other
//! revision is looked up in `refs/`. A file found there is hard-linked (else copied) into the
//! blob store and kept only if its size and sha256 match the catalog, exactly like a download.
//! Nothing under the Hugging Face cache is ever written, moved or deleted.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::{Fetcher, Target, hash_file};
use crate::catalog::Source;
use crate::error::{HubError, Result};
use crate::store::Store;

/// What the Hugging Face cache holds for one `hf` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// The snapshot file exists (its symlink resolves to a regular file).
    Found(PathBuf),
    /// Nothing usable; the path is the one that was missing (a ref or a snapshot file).
    Missing(PathBuf),
}

impl Lookup {
    /// The path looked at, found or not.
    pub(crate) fn path(&self) -> &Path {
        match self {
            Lookup::Found(path) | Lookup::Missing(path) => path,
        }
    }
}

/// `models--{org}--{name}`, the folder of a model repository in the Hugging Face cache.
pub(crate) fn repo_folder(repo: &str) -> String {
    let mut folder = String::from("models");
    for part in repo.trim_matches('/').split('/') {
        folder.push_str("--");
        folder.push_str(part);
    }
    folder
}

/// Whether `revision` is a full commit hash, which names a snapshot folder by itself.
pub(crate) fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `text` as a path below some folder: only plain components, no `..`, no root.
fn relative(text: &str) -> Option<&Path> {
    let path = Path::new(text);
    let plain = path.components().all(|c| matches!(c, Component::Normal(_)));
    (plain && !text.is_empty()).then_some(path)
}

/// Where `file` of `repo` at `revision` is (or would be) in the Hugging Face cache at `cache`.
/// `None` when the repo, revision or file cannot name a path inside the cache.
pub(crate) fn lookup(cache: &Path, repo: &str, revision: &str, file: &str) -> Option<Lookup> {
    let repo_dir = cache.join(repo_folder(relative(repo.trim_matches('/'))?.to_str()?));
    let file = relative(file.trim_start_matches('/'))?;
    let commit = if is_commit(revision) {
        revision.to_string()
    } else {
        let ref_path = repo_dir.join("refs").join(relative(revision)?);
        let Ok(text) = fs::read_to_string(&ref_path) else {
            return Some(Lookup::Missing(ref_path));
        };
        let commit = text.trim();
        if !is_commit(commit) {
            tracing::warn!(
                path = %ref_path.display(),
                "a Hugging Face cache ref does not hold a commit hash; ignoring it"
            );
            return Some(Lookup::Missing(ref_path));
        }
        commit.to_string()
    };
    let path = repo_dir.join("snapshots").join(commit).join(file);
    // Follows the symlink to the blob: a dangling link is as good as no file.
    if fs::metadata(&path).is_ok_and(|m| m.is_file()) {
        Some(Lookup::Found(path))
    } else {
        Some(Lookup::Missing(path))
    }
}

impl Fetcher<'_> {
    /// What the Hugging Face cache holds for each `hf` source of `target`, in source order;
    /// empty when no cache folder is configured or the file has no `hf` source.
    pub(crate) fn hf_cache_lookups(&self, target: &Target<'_>) -> Vec<Lookup> {
        let Some(cache) = &self.config.hf_cache else {
            return Vec::new();
        };
        target
            .spec
            .sources
            .iter()
            .filter_map(|source| match source {
                Source::Hf {
                    repo,
                    file,
                    revision,
                } => lookup(cache, repo, revision, file),
                _ => None,
            })
            .collect()
    }

    /// Puts `target` into its blob from the Hugging Face cache if a copy there matches the
    /// catalog. A copy that does not match (or cannot be read) is logged and left alone; the
    /// caller then goes to the network. Returns whether the blob is now in place.
    pub(crate) fn fetch_from_hf_cache(&self, target: &Target<'_>) -> bool {
        for lookup in self.hf_cache_lookups(target) {
            let Lookup::Found(path) = lookup else {
                tracing::debug!(
                    file = %target.label(),
                    path = %lookup.path().display(),
                    "not in the Hugging Face cache"
                );
                continue;
            };
            match self.import_hf_file(target, &path) {
                Ok(()) => {
                    tracing::info!(
                        file = %target.label(),
                        path = %path.display(),
                        "reused from the Hugging Face cache"
                    );
                    return true;
                }
                Err(error) => tracing::warn!(
                    file = %target.label(),
                    path = %path.display(),
                    %error,
                    "the Hugging Face cache copy cannot be used (left as it is); fetching elsewhere"
                ),
            }
        }
        false
    }

    /// Hard-links (else copies) one Hugging Face cache file into the blob of `target` through a
    /// temporary name, verifying size and sha256 before the rename.
    fn import_hf_file(&self, target: &Target<'_>, path: &Path) -> Result<()> {
        // The snapshot entry is a relative symlink; link the blob it points to, not the link.
        let real = fs::canonicalize(path).map_err(|e| HubError::io(path, e))?;
        let size = fs::metadata(&real)
            .map_err(|e| HubError::io(&real, e))?
            .len();
        if size != target.spec.size {
            return Err(HubError::SizeMismatch {
                file: target.label(),
                expected: target.spec.size,
                actual: size,
            });
        }
        let dir = self.store.blobs_dir();
        Store::create_dir(&dir)?;
        let blob = self.store.blob(&target.spec.sha256);
        let linked = tempfile::Builder::new()
            .prefix(&format!(".{}.", target.spec.sha256))
            .suffix(".tmp")
            .make_in(&dir, |p| fs::hard_link(&real, p));
        match linked {
            Ok(linked) => {
                // Dropping `linked` on a mismatch removes only the new link.
                let (actual, size) = hash_file(linked.path())?;
                target.verify(size, &actual)?;
                linked
                    .persist(&blob)
                    .map(drop)
                    .map_err(|e| HubError::io(&blob, e.error))
            }
            Err(error) => {
                tracing::debug!(
                    file = %target.label(),
                    %error,
                    "cannot hard-link from the Hugging Face cache; copying"
                );
                self.fetch_path(target, &real)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn repo_folders_follow_huggingface_hub() {
        assert_eq!(
            repo_folder("sentence-transformers/all-MiniLM-L6-v2"),
            "models--sentence-transformers--all-MiniLM-L6-v2"
        );
        assert_eq!(repo_folder("gpt2"), "models--gpt2");
    }

    #[test]
    fn only_full_hex_hashes_are_commits() {
        assert!(is_commit(COMMIT));
        assert!(!is_commit("main"));
        assert!(!is_commit(&COMMIT[..39]));
        assert!(!is_commit(&format!("{}g", &COMMIT[..39])));
    }

    #[test]
    fn paths_cannot_leave_the_cache() {
        let cache = Path::new("/hf");
        assert_eq!(lookup(cache, "a/b", "main", "../../etc/passwd"), None);
        assert_eq!(lookup(cache, "a/b", "../x", "f"), None);
        assert_eq!(lookup(cache, "../b", COMMIT, "f"), None);
        assert_eq!(lookup(cache, "a/b", COMMIT, ""), None);
    }

    #[test]
    fn a_missing_ref_is_reported_by_its_path() {
        let cache = tempfile::tempdir().unwrap();
        let found = lookup(cache.path(), "a/b", "main", "onnx/model.onnx");
        assert_eq!(
            found,
            Some(Lookup::Missing(cache.path().join("models--a--b/refs/main")))
        );
        let found = lookup(cache.path(), "a/b", COMMIT, "onnx/model.onnx");
        assert_eq!(
            found,
            Some(Lookup::Missing(
                cache
                    .path()
                    .join("models--a--b/snapshots")
                    .join(COMMIT)
                    .join("onnx/model.onnx")
            ))
        );
    }

    #[test]
    fn a_ref_without_a_commit_hash_is_ignored() {
        let cache = tempfile::tempdir().unwrap();
        let refs = cache.path().join("models--a--b/refs");
        fs::create_dir_all(&refs).unwrap();
        fs::write(refs.join("main"), "../../../somewhere\n").unwrap();
        assert_eq!(
            lookup(cache.path(), "a/b", "main", "f"),
            Some(Lookup::Missing(refs.join("main")))
        );
    }
}
