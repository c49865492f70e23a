//! The npm source: `npm pack name@version` fetches a pinned package tarball through whatever
//! registry npm is configured for (`npm_config_registry`, `.npmrc`), the tarball is unpacked into
//! the pull's temporary folder, and the file is read out of it: a member, a byte range of one
//! (a model packed inside a bigger file), or the chunks a JSON index lists (a model split into
//! pieces named by their sha256).

use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use super::{Fetcher, PackageCache, Target, last_lines};
use crate::catalog::{NpmSource, split_npm_package};
use crate::error::{HubError, Result};
use crate::progress::Progress;
use crate::store::Store;

/// An index entry: the file as chunks, each `{hash, offsets: [start, end]}`.
#[derive(Deserialize)]
struct ChunkedFile {
    chunks: Vec<Chunk>,
}

#[derive(Deserialize)]
struct Chunk {
    hash: String,
    offsets: [u64; 2],
}

impl Fetcher<'_> {
    /// Writes the file `source` describes into the blob of `target`.
    pub(super) fn fetch_npm(
        &self,
        target: &Target<'_>,
        source: &NpmSource,
        packages: &mut PackageCache,
    ) -> Result<()> {
        let package = source.package.as_str();
        let unpacked = self.npm_package(package, packages)?;
        let progress = Progress::start(
            self.config.progress,
            format!("{} from npm {package}", target.label()),
            target.spec.size,
        );
        let mut out = self.new_blob_writer(target)?;
        let temp = out.path().to_path_buf();
        assemble(&unpacked, source, &mut |input: &mut dyn Read| {
            out.copy_from(input, &progress)
                .map_err(|e| HubError::io(&temp, e))
        })?;
        out.commit(target)?;
        progress.done();
        Ok(())
    }

    /// The unpacked tarball of `package` (`name@version`), fetching it with npm if needed.
    fn npm_package(&self, package: &str, packages: &mut PackageCache) -> Result<PathBuf> {
        if let Some(tarball) = packages.packages.get(package) {
            return Ok(unpacked_folder(tarball));
        }
        let npm_error = |message: String| HubError::Npm {
            package: package.to_string(),
            message,
        };
        let Some((name, version)) = split_npm_package(package) else {
            return Err(npm_error(
                "the package must be pinned as `name@version` with an exact version".into(),
            ));
        };
        let folder = packages
            .folder(self.store)?
            .join(format!("npm-{}-{version}", name.replace('/', "+")));
        Store::create_dir(&folder)?;
        tracing::info!(%package, "npm pack");
        let output = Command::new("npm")
            .args(["pack", package, "--pack-destination"])
            .arg(&folder)
            .args(["--silent", "--no-fund", "--no-audit"])
            .env("npm_config_update_notifier", "false")
            .output()
            .map_err(|e| {
                npm_error(format!(
                    "could not run `npm`: {e}; install Node.js and npm (Debian: apt-get install npm)"
                ))
            })?;
        if !output.status.success() {
            return Err(npm_error(format!(
                "{} ({}); check that the registry is reachable (npm config get registry) and the version exists",
                last_lines(&String::from_utf8_lossy(&output.stderr), 6, "npm"),
                output.status
            )));
        }
        let tarball = fs::read_dir(&folder)
            .map_err(|e| HubError::io(&folder, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "tgz"))
            .ok_or_else(|| {
                npm_error(format!(
                    "npm pack reported success but saved no tarball in {}",
                    folder.display()
                ))
            })?;
        unpack(&tarball, &unpacked_folder(&tarball)).map_err(|e| {
            npm_error(format!(
                "{} is not a readable tarball: {e}",
                tarball.display()
            ))
        })?;
        packages
            .packages
            .insert(package.to_string(), tarball.clone());
        Ok(unpacked_folder(&tarball))
    }
}

/// Where a tarball is unpacked: beside it.
fn unpacked_folder(tarball: &Path) -> PathBuf {
    tarball.with_extension("unpacked")
}

/// Unpacks a gzipped tarball into `into`. Entries that would land outside it are skipped.
pub(super) fn unpack(tarball: &Path, into: &Path) -> io::Result<()> {
    fs::create_dir_all(into)?;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(File::open(tarball)?));
    archive.set_preserve_permissions(false);
    archive.set_unpack_xattrs(false);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if !entry.unpack_in(into)? {
            tracing::warn!(path = %entry.path()?.display(), "skipped a tarball entry outside the package");
        }
    }
    Ok(())
}

/// Feeds the bytes `file` names from the unpacked package in `folder` to `write`, in order.
pub(super) fn assemble(
    folder: &Path,
    file: &NpmSource,
    write: &mut dyn FnMut(&mut dyn Read) -> Result<()>,
) -> Result<()> {
    let package = file.package.as_str();
    let npm_error = |message: String| HubError::Npm {
        package: package.to_string(),
        message,
    };
    let member = member_path(folder, &file.member).ok_or_else(|| {
        npm_error(format!(
            "member `{}` must be a relative path inside the package",
            file.member
        ))
    })?;
    let open = |path: &Path, name: &str| {
        File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => HubError::MissingMember {
                package: package.to_string(),
                member: name.to_string(),
            },
            _ => HubError::io(path, e),
        })
    };
    match (file.range, file.chunks.as_deref()) {
        (None, None) => write(&mut open(&member, &file.member)?),
        (Some([start, end]), _) => {
            let mut input = open(&member, &file.member)?;
            let length = input
                .metadata()
                .map_err(|e| HubError::io(&member, e))?
                .len();
            if end > length {
                return Err(npm_error(format!(
                    "`{}` has {length} bytes, fewer than the range's end {end}",
                    file.member
                )));
            }
            input
                .seek(SeekFrom::Start(start))
                .map_err(|e| HubError::io(&member, e))?;
            write(&mut input.take(end - start))
        }
        (None, Some(key)) => {
            let index = fs::read(&member).map_err(|e| match e.kind() {
                io::ErrorKind::NotFound => HubError::MissingMember {
                    package: package.to_string(),
                    member: file.member.to_string(),
                },
                _ => HubError::io(&member, e),
            })?;
            let mut index: serde_json::Map<String, serde_json::Value> =
                serde_json::from_slice(&index).map_err(|e| {
                    npm_error(format!("`{}` is not a JSON object: {e}", file.member))
                })?;
            let entry = index
                .remove(key)
                .ok_or_else(|| npm_error(format!("`{}` has no entry `{key}`", file.member)))?;
            let chunked: ChunkedFile = serde_json::from_value(entry).map_err(|e| {
                npm_error(format!(
                    "`{}` entry `{key}` is not a chunk list: {e}",
                    file.member
                ))
            })?;
            let dir = member.parent().unwrap_or(folder);
            let mut at = 0;
            for chunk in &chunked.chunks {
                let [start, end] = chunk.offsets;
                let named =
                    chunk.hash.len() == 64 && chunk.hash.bytes().all(|b| b.is_ascii_hexdigit());
                if !named || start != at || end <= start {
                    return Err(npm_error(format!(
                        "`{}` entry `{key}`: chunk `{}` at [{start}, {end}) does not follow the previous one or is not named by a sha256",
                        file.member, chunk.hash
                    )));
                }
                let path = dir.join(&chunk.hash);
                let mut input = open(&path, &chunk.hash)?;
                let length = input.metadata().map_err(|e| HubError::io(&path, e))?.len();
                if length != end - start {
                    return Err(npm_error(format!(
                        "chunk `{}` has {length} bytes; the index says {}",
                        chunk.hash,
                        end - start
                    )));
                }
                write(&mut input)?;
                at = end;
            }
            Ok(())
        }
    }
}

/// `member` under `folder`, when it is a plain relative path.
fn member_path(folder: &Path, member: &str) -> Option<PathBuf> {
    let relative = Path::new(member);
    relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| folder.join(relative))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gzipped tarball of `files` (path, bytes), as `npm pack` writes one.
    fn tarball(dir: &Path, files: &[(&str, &[u8])]) -> PathBuf {
        let path = dir.join("pkg-1.0.0.tgz");
        let gz = flate2::write::GzEncoder::new(
            File::create(&path).unwrap(),
            flate2::Compression::fast(),
        );
        let mut builder = tar::Builder::new(gz);
        for (name, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o444);
            header.set_cksum();
            builder.append_data(&mut header, name, *bytes).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap();
        path
    }

    /// `member` of the test package, or a range of it, or the chunks `key` lists in it.
    fn file(member: &str, range: Option<[u64; 2]>, chunks: Option<&str>) -> NpmSource {
        NpmSource {
            package: "pkg@1.0.0".into(),
            member: member.into(),
            range,
            chunks: chunks.map(String::from),
        }
    }

    fn read(folder: &Path, file: &NpmSource) -> Result<Vec<u8>> {
        let mut bytes = Vec::new();
        assemble(folder, file, &mut |input: &mut dyn Read| {
            input
                .read_to_end(&mut bytes)
                .map(drop)
                .map_err(|e| HubError::io(folder, e))
        })?;
        Ok(bytes)
    }

    #[test]
    fn members_ranges_and_chunk_lists_come_out_of_a_tarball() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let index = format!(
            r#"{{"/models/x": {{"chunks": [{{"hash": "{a}", "offsets": [0, 3]}}, {{"hash": "{b}", "offsets": [3, 5]}}], "size": 5}},
                "/models/gap": {{"chunks": [{{"hash": "{b}", "offsets": [1, 3]}}]}}}}"#
        );
        let (chunk_a, chunk_b) = (format!("package/dist/{a}"), format!("package/dist/{b}"));
        let files: Vec<(&str, &[u8])> = vec![
            ("package/model.bin", b"0123456789"),
            ("package/dist/index.json", index.as_bytes()),
            (&chunk_a, b"abc"),
            (&chunk_b, b"de"),
        ];
        let tgz = tarball(dir.path(), &files);
        let folder = unpacked_folder(&tgz);
        unpack(&tgz, &folder).unwrap();
        let model = "package/model.bin";
        let index = "package/dist/index.json";
        assert_eq!(
            read(&folder, &file(model, None, None)).unwrap(),
            b"0123456789"
        );
        assert_eq!(
            read(&folder, &file(model, Some([2, 5]), None)).unwrap(),
            b"234"
        );
        assert_eq!(
            read(&folder, &file(index, None, Some("/models/x"))).unwrap(),
            b"abcde"
        );

        // What is wrong is said: a missing member, a range past the end, an unknown key, chunks
        // that leave a gap, a path out of the package.
        assert!(matches!(
            read(&folder, &file("package/none.bin", None, None)),
            Err(HubError::MissingMember { member, .. }) if member == "package/none.bin"
        ));
        let error = |f: NpmSource| read(&folder, &f).unwrap_err().to_string();
        assert!(error(file(model, Some([0, 11]), None)).contains("fewer than the range's end"));
        assert!(error(file(index, None, Some("/models/y"))).contains("has no entry"));
        assert!(error(file(index, None, Some("/models/gap"))).contains("does not follow"));
        assert!(error(file("../outside", None, None)).contains("relative path"));
    }

    #[test]
    fn npm_packages_must_be_pinned_exactly() {
        assert_eq!(
            split_npm_package("@mediapipe/pose@0.5.1675469404"),
            Some(("@mediapipe/pose", "0.5.1675469404"))
        );
        assert_eq!(
            split_npm_package("left-pad@1.3.0"),
            Some(("left-pad", "1.3.0"))
        );
        for loose in [
            "left-pad",
            "left-pad@^1.3.0",
            "left-pad@latest",
            "@scope@1.0.0",
            "@1.0.0",
            "x@1.x",
            "x@1.x || 2",
        ] {
            assert_eq!(split_npm_package(loose), None, "{loose}");
        }
    }
}
