//! HTTP(S) downloads: retries with exponential backoff, timeouts, and resume with `Range`.
//!
//! The download goes to `blobs/sha256/<hex>.partial`. A transfer cut off midway keeps that file,
//! and the next attempt (in this pull or a later one) asks for the rest with `Range: bytes=N-`;
//! a server that answers 200 instead of 206 sends the whole file again and the partial restarts
//! from zero. Only after size and sha256 match is the file renamed to its blob name.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::Duration;

use super::{Fetcher, Target, hash_file};
use crate::error::{HubError, Result};
use crate::progress::Progress;

/// The longest wait between two tries.
const MAX_DELAY: Duration = Duration::from_secs(30);

/// Why one try failed: worth another try, or not.
enum Failure {
    Transient(HubError),
    Fatal(HubError),
}

/// The HTTP agent every hub uses: statuses are handled here, not as errors; connect and each
/// read are bounded by `timeout`; bodies arrive as sent (no compression, so ranges line up).
/// With `use_proxy_env` false the agent ignores `HTTP(S)_PROXY`: for loopback URLs, which no
/// proxy should see.
pub(crate) fn agent(timeout: Duration, use_proxy_env: bool) -> ureq::Agent {
    let proxy = if use_proxy_env {
        ureq::Proxy::try_from_env()
    } else {
        None
    };
    ureq::Agent::config_builder()
        .proxy(proxy)
        .http_status_as_error(false)
        .timeout_resolve(Some(timeout))
        .timeout_connect(Some(timeout))
        .timeout_per_read(Some(timeout))
        .timeout_per_write(Some(timeout))
        .accept_encoding(ureq::config::AutoHeaderValue::None)
        .user_agent(concat!("tessera-hub/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

impl Fetcher<'_> {
    /// Downloads `url` into the blob of `target`, retrying transient failures.
    pub(super) fn fetch_http(
        &self,
        target: &Target<'_>,
        url: &str,
        authorization: Option<&str>,
    ) -> Result<()> {
        let dir = self.store.blobs_dir();
        crate::store::Store::create_dir(&dir)?;
        let partial = self.store.partial(&target.spec.sha256);
        let progress = Progress::start(
            self.config.progress,
            format!("{} from {url}", target.label()),
            target.spec.size,
        );
        let mut attempt: u32 = 0;
        loop {
            match self.try_download(target, url, authorization, &partial, &progress) {
                Ok(()) => break,
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Transient(error)) => {
                    if attempt >= self.config.retries {
                        return Err(error);
                    }
                    let delay = backoff(self.config.retry_base_delay, attempt);
                    tracing::warn!(
                        file = %target.label(),
                        %error,
                        retry_in_ms = delay.as_millis() as u64,
                        "transient failure; retrying"
                    );
                    std::thread::sleep(delay);
                    attempt += 1;
                }
            }
        }

        let (actual, size) = hash_file(&partial)?;
        if let Err(error) = target.verify(size, &actual) {
            remove_quietly(&partial);
            return Err(error);
        }
        let blob = self.store.blob(&target.spec.sha256);
        fs::rename(&partial, &blob).map_err(|e| HubError::io(&blob, e))?;
        progress.done();
        Ok(())
    }

    /// One request: appends to the partial file on 206, rewrites it on 200.
    fn try_download(
        &self,
        target: &Target<'_>,
        url: &str,
        authorization: Option<&str>,
        partial: &Path,
        progress: &Progress,
    ) -> std::result::Result<(), Failure> {
        let size = target.spec.size;
        let mut have = fs::metadata(partial).map(|m| m.len()).unwrap_or(0);
        if have > size {
            remove_quietly(partial);
            have = 0;
        }
        if have == size && have > 0 {
            return Ok(());
        }

        let agent = if is_loopback(url) {
            self.local_agent
        } else {
            self.agent
        };
        let mut request = agent.get(url);
        if have > 0 {
            tracing::info!(file = %target.label(), from_byte = have, "resuming download");
            request = request.header("Range", format!("bytes={have}-"));
        }
        if let Some(value) = authorization {
            request = request.header("Authorization", value);
        }
        let response = request.call().map_err(|error| classify(url, error))?;
        let status = response.status().as_u16();
        let http = || HubError::Http {
            url: url.to_string(),
            status,
        };
        let append = match status {
            200 => false,
            206 => {
                let start = response
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(range_start);
                if start != Some(have) {
                    remove_quietly(partial);
                    return Err(Failure::Transient(HubError::Network {
                        url: url.to_string(),
                        message: format!(
                            "asked for bytes from {have} but the server sent a range starting at {start:?}; restarting"
                        ),
                    }));
                }
                true
            }
            416 => {
                remove_quietly(partial);
                return Err(Failure::Transient(http()));
            }
            408 | 429 | 500..=599 => return Err(Failure::Transient(http())),
            _ => return Err(Failure::Fatal(http())),
        };

        let io_error = |e: io::Error| Failure::Fatal(HubError::io(partial, e));
        let mut file = if append {
            File::options().append(true).open(partial)
        } else {
            have = 0;
            File::create(partial)
        }
        .map_err(io_error)?;
        progress.set(have);

        let mut reader = response.into_body().into_reader();
        let mut buf = vec![0u8; 256 * 1024];
        let mut written = have;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    file.flush().map_err(io_error)?;
                    return Err(Failure::Transient(HubError::Network {
                        url: url.to_string(),
                        message: format!("transfer cut off after {written} of {size} bytes: {e}"),
                    }));
                }
            };
            if written + n as u64 > size {
                drop(file);
                remove_quietly(partial);
                return Err(Failure::Fatal(HubError::SizeMismatch {
                    file: target.label(),
                    expected: size,
                    actual: written + n as u64,
                }));
            }
            file.write_all(&buf[..n]).map_err(io_error)?;
            written += n as u64;
            progress.add(n as u64);
        }
        file.sync_all().map_err(io_error)?;
        Ok(())
    }
}

/// `base * 2^attempt`, at most [`MAX_DELAY`].
fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(attempt))
        .min(MAX_DELAY)
}

/// The first byte of a `Content-Range: bytes START-END/TOTAL` header.
fn range_start(value: &str) -> Option<u64> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (start, _) = rest.split_once('-')?;
    start.trim().parse().ok()
}

/// Request errors that a retry cannot fix are fatal; the rest (connect, DNS, timeouts, resets)
/// are transient.
fn classify(url: &str, error: ureq::Error) -> Failure {
    let network = HubError::Network {
        url: url.to_string(),
        message: error.to_string(),
    };
    match error {
        ureq::Error::BadUri(_)
        | ureq::Error::Http(_)
        | ureq::Error::InvalidProxyUrl
        | ureq::Error::TooManyRedirects
        | ureq::Error::RedirectFailed => Failure::Fatal(network),
        _ => Failure::Transient(network),
    }
}

/// Whether the URL's host is this machine (`localhost`, `127.x.x.x`, `[::1]`).
fn is_loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn remove_quietly(path: &Path) {
    if let Err(error) = fs::remove_file(path)
        && error.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), %error, "could not remove a temporary file");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_millis(100);
        assert_eq!(backoff(base, 0), Duration::from_millis(100));
        assert_eq!(backoff(base, 3), Duration::from_millis(800));
        assert_eq!(backoff(base, 40), MAX_DELAY);
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        assert!(is_loopback("http://127.0.0.1:8080/a/b"));
        assert!(is_loopback("http://localhost/x"));
        assert!(is_loopback("http://[::1]:9/x"));
        assert!(!is_loopback("https://huggingface.co/x"));
        assert!(!is_loopback("https://127.0.0.1.example.com/x"));
    }

    #[test]
    fn content_range_start_is_parsed() {
        assert_eq!(range_start("bytes 100-199/200"), Some(100));
        assert_eq!(range_start("bytes 0-0/1"), Some(0));
        assert_eq!(range_start("bytes */200"), None);
        assert_eq!(range_start("items 1-2/3"), None);
    }
}
