//! The one error type of the hub. Every message says what went wrong and what to do about it.

use std::path::PathBuf;

/// Everything that can go wrong while reading the catalog, fetching, caching or detecting a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The name does not denote a model where it was looked for: for the CLI, neither a catalog
    /// id, a model in the cache, nor an existing file or folder; for a server
    /// ([`Scope::ModelDirs`](crate::Scope::ModelDirs)), neither a catalog id, a cached model,
    /// nor a model under the operator's model folders. A server's message says nothing about the
    /// machine's files: it is the same whether or not a path of that name exists.
    #[error("{}", unknown_model(spec, suggestions, *served))]
    UnknownModel {
        /// What the caller asked for.
        spec: String,
        /// Catalog ids that look close to `spec`, best first.
        suggestions: Vec<String>,
        /// Whether the name came from a server's client ([`Scope::ModelDirs`](crate::Scope::ModelDirs)),
        /// so the message points at `GET /v1/models` rather than the CLI.
        served: bool,
    },

    /// `converted/<folder>` names no conversion under `$TESSERA_HOME/converted`.
    #[error("{}", unknown_conversion(id, known))]
    UnknownConversion {
        /// What the caller asked for.
        id: String,
        /// The conversions there are.
        known: Vec<String>,
    },

    /// The bytes fetched for a file do not hash to the catalog's sha256; they were discarded.
    #[error(
        "{file}: sha256 mismatch: expected {expected}, got {actual}; the download was discarded (the source serves different bytes than the catalog pins)"
    )]
    ChecksumMismatch {
        /// `model/file` of the file that failed.
        file: String,
        /// The sha256 the catalog pins.
        expected: String,
        /// The sha256 of the bytes that arrived.
        actual: String,
    },

    /// The bytes fetched for a file have a different length than the catalog says; they were discarded.
    #[error(
        "{file}: size mismatch: expected {expected} bytes, got {actual}; the download was discarded"
    )]
    SizeMismatch {
        /// `model/file` of the file that failed.
        file: String,
        /// The size the catalog pins.
        expected: u64,
        /// The size of the bytes that arrived.
        actual: u64,
    },

    /// A file is missing from the cache (and from the Hugging Face cache, for `hf` sources) and
    /// offline mode forbids fetching it.
    #[error(
        "model {model} file {file} is not in the cache at {}{} and TESSERA_OFFLINE=1 forbids the network; run `tessera pull {model}` while online",
        path.display(),
        looked_in_hf_cache(hf_cache)
    )]
    Offline {
        /// The model id.
        model: String,
        /// The file name within the model.
        file: String,
        /// Where the verified file would be.
        path: PathBuf,
        /// Where the Hugging Face cache was searched for the file's `hf` sources (a missing ref
        /// or snapshot file, or one whose bytes did not match); empty when the file has no `hf`
        /// source or no Hugging Face cache is configured.
        hf_cache: Vec<PathBuf>,
    },

    /// A transfer failed below HTTP: connect, timeout, reset, DNS.
    #[error("network error fetching {url}: {message}; check the connection or proxy and try again")]
    Network {
        /// The URL being fetched.
        url: String,
        /// What the transport said.
        message: String,
    },

    /// The server answered with an HTTP error status.
    #[error("{url} answered HTTP {status}{}", http_hint(*status))]
    Http {
        /// The URL being fetched.
        url: String,
        /// The HTTP status code.
        status: u16,
    },

    /// `pip download` could not fetch a package.
    #[error("python3 -m pip failed for {package}: {message}")]
    Pip {
        /// The pinned requirement, `name==version`.
        package: String,
        /// What went wrong, including pip's own last lines.
        message: String,
    },

    /// `npm pack` could not fetch a package, or its tarball is not what the catalog says.
    #[error("npm failed for {package}: {message}")]
    Npm {
        /// The pinned package, `name@version`.
        package: String,
        /// What went wrong, including npm's own last lines.
        message: String,
    },

    /// A package (wheel or npm tarball) was fetched but does not hold the file the catalog names.
    #[error(
        "the package {package} has no member `{member}`; the catalog entry is wrong for this package version"
    )]
    MissingMember {
        /// The pinned requirement, `name==version`.
        package: String,
        /// The path inside the wheel.
        member: String,
    },

    /// A file system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The catalog text is malformed or inconsistent.
    #[error("catalog: {0}")]
    Catalog(String),

    /// A local path does not look like any model tessera can run.
    #[error("cannot use {} as a model: {message}", path.display())]
    Detect {
        /// The path given.
        path: PathBuf,
        /// What was found and what is needed.
        message: String,
    },

    /// Every source of a file failed; one line per source, in the order they were tried.
    #[error(
        "could not fetch {file} from any source:\n  - {}",
        errors.join("\n  - ")
    )]
    AllSourcesFailed {
        /// `model/file` of the file that failed.
        file: String,
        /// Each source's failure, in order.
        errors: Vec<String>,
    },

    /// A model is known but a file it should have is not in its folder.
    #[error(
        "model {model} has no file {file} in {}; run `tessera pull {model}` to fetch it again",
        dir.display()
    )]
    MissingFile {
        /// The model id.
        model: String,
        /// The file name asked for.
        file: String,
        /// The model's folder.
        dir: PathBuf,
    },

    /// A Whisper checkpoint could not be converted between the Hugging Face and CTranslate2
    /// layouts ([`convert`](crate::convert)): a file or tensor is missing, shaped wrong or not
    /// Whisper's.
    #[error(transparent)]
    Convert(#[from] crate::convert::ConvertError),

    /// The options of a model do not have the shape the caller asked for.
    #[error("model {model}: bad options: {message}")]
    Options {
        /// The model id.
        model: String,
        /// What serde said.
        message: String,
    },
}

impl HubError {
    /// An [`HubError::Io`] for `path`.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> HubError {
        HubError::Io {
            path: path.into(),
            source,
        }
    }
}

/// The broad kind of a [`HubError`], so a caller (the HTTP server) can pick a status without
/// matching every variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCategory {
    /// No model has that name (HTTP 404).
    NotFound,
    /// The user's own model files are bad or incomplete (HTTP 400).
    BadModel,
    /// A registry or source answered wrongly: bytes that do not match, an HTTP error status, pip
    /// failing, a wheel without the member, every source failing (HTTP 502).
    Upstream,
    /// Something needed is out of reach for now: the network, offline mode, the local disk
    /// (HTTP 503).
    Unavailable,
    /// tessera itself is wrong, such as a malformed built-in catalog (HTTP 500).
    Internal,
}

impl HubError {
    /// Which kind of failure this is.
    pub fn category(&self) -> ErrorCategory {
        match self {
            HubError::UnknownModel { .. } | HubError::UnknownConversion { .. } => {
                ErrorCategory::NotFound
            }
            HubError::Detect { .. }
            | HubError::MissingFile { .. }
            | HubError::Options { .. }
            | HubError::Convert(_) => ErrorCategory::BadModel,
            HubError::ChecksumMismatch { .. }
            | HubError::SizeMismatch { .. }
            | HubError::Http { .. }
            | HubError::Pip { .. }
            | HubError::Npm { .. }
            | HubError::MissingMember { .. }
            | HubError::AllSourcesFailed { .. } => ErrorCategory::Upstream,
            HubError::Network { .. } | HubError::Offline { .. } | HubError::Io { .. } => {
                ErrorCategory::Unavailable
            }
            HubError::Catalog(_) => ErrorCategory::Internal,
        }
    }
}

fn unknown_conversion(id: &str, known: &[String]) -> String {
    if known.is_empty() {
        format!(
            "no conversion `{id}`: nothing has been converted (`tessera list` shows conversions)"
        )
    } else {
        format!("no conversion `{id}`; there are: {}", known.join(", "))
    }
}

fn unknown_model(spec: &str, suggestions: &[String], served: bool) -> String {
    let spec = shown(spec);
    let suggestions = suggest(suggestions);
    if served {
        format!(
            "unknown model `{spec}`: not a catalog id or a model under this server's model folders{suggestions}; \
             run GET /v1/models to see what is available"
        )
    } else {
        format!(
            "unknown model `{spec}`: it is not a catalog id, not a model in the cache and not an existing file or folder{suggestions}; \
             run `tessera list` to see the catalog"
        )
    }
}

/// At most 64 characters of a name a caller gave, control characters escaped, `…` when cut.
fn shown(spec: &str) -> String {
    const SHOWN: usize = 64;
    let mut text = String::new();
    for (i, c) in spec.chars().enumerate() {
        if i == SHOWN {
            text.push('…');
            break;
        }
        if c.is_control() {
            text.extend(c.escape_debug());
        } else {
            text.push(c);
        }
    }
    text
}

fn suggest(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", suggestions.join(", "))
    }
}

fn looked_in_hf_cache(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return String::new();
    }
    let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    format!(" nor in the Hugging Face cache at {}", paths.join(" or "))
}

fn http_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => {
            "; the file needs credentials (set HF_TOKEN for Hugging Face) or is not public"
        }
        404 => "; the file or revision does not exist at this source",
        429 => "; the server is rate limiting, try again later",
        500..=599 => "; the server failed, try again later",
        _ => "",
    }
}

/// Shorthand used across the crate.
pub(crate) type Result<T, E = HubError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn io() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied")
    }

    #[test]
    fn every_variant_has_its_category() {
        use ErrorCategory::*;
        let s = String::new;
        let cases = [
            (
                HubError::UnknownModel {
                    spec: s(),
                    suggestions: vec![],
                    served: true,
                },
                NotFound,
            ),
            (
                HubError::UnknownConversion {
                    id: s(),
                    known: vec![],
                },
                NotFound,
            ),
            (
                HubError::Detect {
                    path: PathBuf::new(),
                    message: s(),
                },
                BadModel,
            ),
            (
                HubError::MissingFile {
                    model: s(),
                    file: s(),
                    dir: PathBuf::new(),
                },
                BadModel,
            ),
            (
                HubError::Options {
                    model: s(),
                    message: s(),
                },
                BadModel,
            ),
            (
                HubError::Convert(crate::convert::ConvertError::OutputExists {
                    path: PathBuf::new(),
                }),
                BadModel,
            ),
            (
                HubError::ChecksumMismatch {
                    file: s(),
                    expected: s(),
                    actual: s(),
                },
                Upstream,
            ),
            (
                HubError::SizeMismatch {
                    file: s(),
                    expected: 1,
                    actual: 2,
                },
                Upstream,
            ),
            (
                HubError::Http {
                    url: s(),
                    status: 404,
                },
                Upstream,
            ),
            (
                HubError::Pip {
                    package: s(),
                    message: s(),
                },
                Upstream,
            ),
            (
                HubError::Npm {
                    package: s(),
                    message: s(),
                },
                Upstream,
            ),
            (
                HubError::MissingMember {
                    package: s(),
                    member: s(),
                },
                Upstream,
            ),
            (
                HubError::AllSourcesFailed {
                    file: s(),
                    errors: vec![],
                },
                Upstream,
            ),
            (
                HubError::Network {
                    url: s(),
                    message: s(),
                },
                Unavailable,
            ),
            (
                HubError::Offline {
                    model: s(),
                    file: s(),
                    path: PathBuf::new(),
                    hf_cache: vec![],
                },
                Unavailable,
            ),
            (HubError::io("/x", io()), Unavailable),
            (HubError::Catalog(s()), Internal),
        ];
        for (error, category) in cases {
            assert_eq!(error.category(), category, "{error:?}");
        }
    }

    #[test]
    fn unknown_models_read_differently_for_the_cli_and_a_server() {
        let unknown = |served| HubError::UnknownModel {
            spec: "whisper-bsae".into(),
            suggestions: vec!["whisper-base".into()],
            served,
        };
        let cli = unknown(false).to_string();
        assert!(
            cli.contains("tessera list") && cli.contains("existing file"),
            "{cli}"
        );
        let served = unknown(true).to_string();
        assert!(served.contains("GET /v1/models"), "{served}");
        assert!(!served.contains("file or folder"), "{served}");
        assert!(served.contains("did you mean whisper-base?"), "{served}");
    }

    #[test]
    fn long_or_odd_names_are_cut_and_escaped() {
        let error = HubError::UnknownModel {
            spec: format!("a\nb{}", "x".repeat(10_000)),
            suggestions: vec![],
            served: true,
        };
        let text = error.to_string();
        assert!(text.len() < 400, "{text}");
        assert!(text.contains("a\\nb") && text.contains('…'), "{text}");
    }
}
