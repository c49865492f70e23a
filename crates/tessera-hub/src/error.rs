//! The one error type of the hub. Every message says what went wrong and what to do about it.

use std::path::PathBuf;

/// Everything that can go wrong while reading the catalog, fetching, caching or detecting a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HubError {
    /// The name is neither a catalog id, a model in the cache, nor an existing file or folder.
    #[error(
        "unknown model `{spec}`: it is not a catalog id, not a model in the cache and not an existing file or folder{}; run `tessera list` to see the catalog",
        suggest(suggestions)
    )]
    UnknownModel {
        /// What the caller asked for.
        spec: String,
        /// Catalog ids that look close to `spec`, best first.
        suggestions: Vec<String>,
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

    /// A wheel was fetched but does not hold the file the catalog names.
    #[error(
        "the wheel of {package} has no member `{member}`; the catalog entry is wrong for this package version"
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
