//! How the hub behaves: where the cache is, whether it may use the network, how hard it retries.

use std::fmt;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

/// The default Hugging Face endpoint.
pub const DEFAULT_HF_ENDPOINT: &str = "https://huggingface.co";

/// Settings of a [`crate::Hub`]. Build one with [`HubConfig::from_env`] or [`HubConfig::new`] and
/// adjust the public fields.
#[derive(Clone)]
pub struct HubConfig {
    /// The cache root: `blobs/sha256/`, `models/<id>/`, `locks/`, `tmp/` live under it.
    /// [`HubConfig::from_env`] takes [`tessera_core::tessera_home`]: `$TESSERA_HOME`, default
    /// `~/.cache/tessera`.
    pub home: PathBuf,
    /// Never touch the network; a file missing from the cache is an error. `$TESSERA_OFFLINE=1`.
    pub offline: bool,
    /// How many times a transient failure (connect error, timeout, 5xx, 429) is retried.
    pub retries: u32,
    /// The first retry waits this long; each next one twice as long as the one before.
    pub retry_base_delay: Duration,
    /// The limit for connecting and for each read (an idle transfer fails after this long);
    /// also passed to pip as `--timeout`.
    pub timeout: Duration,
    /// Where Hugging Face sources are fetched from. `$HF_ENDPOINT`, default `https://huggingface.co`.
    pub hf_endpoint: String,
    /// A Hugging Face token sent as a bearer token to `hf_endpoint` only. `$HF_TOKEN`.
    pub hf_token: Option<String>,
    /// The Hugging Face hub cache of `huggingface_hub` (`models--{org}--{name}/...`), searched
    /// before an `hf` source is downloaded, online and offline: a file already there with the
    /// catalog's size and sha256 is hard-linked (else copied) into the cache instead. `None`
    /// (the default of [`HubConfig::new`]) never looks. [`HubConfig::from_env`] sets
    /// `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
    pub hf_cache: Option<PathBuf>,
    /// Draw a progress bar on stderr (only ever drawn when stderr is a terminal).
    pub progress: bool,
    /// The Python interpreter that runs `-m pip`. `$TESSERA_PYTHON`, default `python3`.
    pub python: String,
    /// Extra environment for the pip subprocess (for example `PIP_INDEX_URL`, `PIP_NO_INDEX`,
    /// `PIP_FIND_LINKS`), on top of this process's environment.
    pub pip_env: Vec<(String, String)>,
}

impl HubConfig {
    /// Defaults with the cache at `home`: online, 3 retries from 500 ms, 30 s timeout, Hugging
    /// Face at its public endpoint, progress bar when stderr is a terminal, no extra pip env.
    pub fn new(home: impl Into<PathBuf>) -> HubConfig {
        HubConfig {
            home: home.into(),
            offline: false,
            retries: 3,
            retry_base_delay: Duration::from_millis(500),
            timeout: Duration::from_secs(30),
            hf_endpoint: DEFAULT_HF_ENDPOINT.to_string(),
            hf_token: None,
            hf_cache: None,
            progress: std::io::stderr().is_terminal(),
            python: "python3".to_string(),
            pip_env: Vec::new(),
        }
    }

    /// Defaults with the cache at [`tessera_core::tessera_home`], then `TESSERA_OFFLINE`, `HF_ENDPOINT`, `HF_TOKEN`,
    /// `TESSERA_PYTHON` and the Hugging Face cache (`HF_HUB_CACHE`, `HF_HOME`, as
    /// `huggingface_hub` finds it) from the environment.
    pub fn from_env() -> HubConfig {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let mut config = HubConfig::new(tessera_core::tessera_home());
        config.offline = var("TESSERA_OFFLINE").is_some_and(|v| is_truthy(&v));
        if let Some(endpoint) = var("HF_ENDPOINT") {
            config.hf_endpoint = endpoint;
        }
        config.hf_token = var("HF_TOKEN");
        config.hf_cache = hf_cache_dir(&var);
        if let Some(python) = var("TESSERA_PYTHON") {
            config.python = python;
        }
        config
    }
}

impl fmt::Debug for HubConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubConfig")
            .field("home", &self.home)
            .field("offline", &self.offline)
            .field("retries", &self.retries)
            .field("retry_base_delay", &self.retry_base_delay)
            .field("timeout", &self.timeout)
            .field("hf_endpoint", &self.hf_endpoint)
            .field("hf_token", &self.hf_token.as_ref().map(|_| "<redacted>"))
            .field("hf_cache", &self.hf_cache)
            .field("progress", &self.progress)
            .field("python", &self.python)
            .field("pip_env", &self.pip_env)
            .finish()
    }
}

fn is_truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// Where `huggingface_hub` keeps its hub cache, read the way it reads it: `HF_HUB_CACHE` (or the
/// older `HUGGINGFACE_HUB_CACHE`), else `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`,
/// else `~/.cache/huggingface/hub`. A leading `~/` is the home directory. `None` without any of
/// these and without a home directory.
fn hf_cache_dir(var: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let home = var("HOME").map(PathBuf::from);
    let expand = |value: String| match (&home, value.strip_prefix("~/")) {
        (Some(home), Some(rest)) => home.join(rest),
        (Some(home), None) if value == "~" => home.clone(),
        _ => PathBuf::from(&value),
    };
    if let Some(dir) = var("HF_HUB_CACHE").or_else(|| var("HUGGINGFACE_HUB_CACHE")) {
        return Some(expand(dir));
    }
    if let Some(hf_home) = var("HF_HOME") {
        return Some(expand(hf_home).join("hub"));
    }
    let cache = match var("XDG_CACHE_HOME") {
        Some(xdg) => expand(xdg),
        None => home.as_ref()?.join(".cache"),
    };
    Some(cache.join("huggingface").join("hub"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_accepts_the_usual_spellings() {
        for yes in ["1", "true", "TRUE", " yes ", "on"] {
            assert!(is_truthy(yes), "{yes}");
        }
        for no in ["0", "false", "no", "", "off"] {
            assert!(!is_truthy(no), "{no}");
        }
    }

    #[test]
    fn the_hugging_face_cache_is_found_like_huggingface_hub_finds_it() {
        let with = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            hf_cache_dir(&move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            })
        };
        let all = [
            ("HOME", "/home/u"),
            ("XDG_CACHE_HOME", "/x"),
            ("HF_HOME", "/hh"),
            ("HF_HUB_CACHE", "/hc"),
        ];
        assert_eq!(with(&all), Some(PathBuf::from("/hc")));
        assert_eq!(with(&all[..3]), Some(PathBuf::from("/hh/hub")));
        assert_eq!(
            with(&[("HOME", "/home/u"), ("HF_HOME", "~/hf")]),
            Some(PathBuf::from("/home/u/hf/hub"))
        );
        assert_eq!(
            with(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/x")]),
            Some(PathBuf::from("/x/huggingface/hub"))
        );
        assert_eq!(
            with(&[("HOME", "/home/u")]),
            Some(PathBuf::from("/home/u/.cache/huggingface/hub"))
        );
        assert_eq!(with(&[]), None);
    }

    #[test]
    fn new_never_looks_in_a_hugging_face_cache() {
        assert_eq!(HubConfig::new("/tmp/x").hf_cache, None);
    }

    #[test]
    fn debug_hides_the_token() {
        let mut config = HubConfig::new("/tmp/x");
        config.hf_token = Some("hf_secret".into());
        let shown = format!("{config:?}");
        assert!(!shown.contains("hf_secret"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
