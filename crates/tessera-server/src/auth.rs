//! API keys: who may call which area of the API.
//!
//! [`AuthConfig`] holds the keys the server was started with, in three roles: user keys
//! (`--api-key`, `--api-key-file`) open the OpenAI routes under `/v1`; admin keys (`--admin-key`)
//! open those and the admin routes (pull, later load and unload) and `/metrics`; the metrics key
//! (`--metrics-key`) opens only `/metrics`. Clients send a key as `Authorization: Bearer <key>`.
//!
//! The rules, per router area ([`Access`]):
//! - no key configured at all: everything is open (a server on loopback for one user);
//! - user area: open unless user keys are configured; then a user or admin key is needed;
//! - admin area: whenever any key is configured, an admin key is needed; a server with keys but
//!   no admin key refuses admin routes with 403;
//! - metrics: open unless `--metrics-key` is set; then that key or an admin key is needed.
//!
//! A missing or unknown key answers 401 with `WWW-Authenticate: Bearer`; a known key without the
//! role the area needs answers 403. Keys are kept only as SHA-256 digests and compared with
//! `subtle`'s constant-time equality, against every configured key without stopping early, so
//! neither timing nor length tells a caller how close a guess was. `Debug` shows how many keys
//! there are, never the keys.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::ApiError;

/// One API key, kept as its SHA-256 digest. Its `Debug` is redacted.
#[derive(Clone)]
pub struct ApiKey {
    digest: [u8; 32],
}

impl ApiKey {
    /// A key from its text: 1 to 256 visible ASCII characters (no spaces, which a header could
    /// not carry intact).
    pub fn new(key: &str) -> Result<ApiKey, InvalidKey> {
        if key.is_empty() {
            return Err(InvalidKey::Empty);
        }
        if key.len() > 256 {
            return Err(InvalidKey::TooLong(key.len()));
        }
        if let Some(position) = key.bytes().position(|b| !b.is_ascii_graphic()) {
            return Err(InvalidKey::BadCharacter(position + 1));
        }
        Ok(ApiKey {
            digest: Sha256::digest(key.as_bytes()).into(),
        })
    }

    /// Whether `presented` is this key, in time that does not depend on where they differ.
    fn matches(&self, presented: &[u8; 32]) -> Choice {
        self.digest.ct_eq(presented)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

impl FromStr for ApiKey {
    type Err = InvalidKey;

    fn from_str(key: &str) -> Result<ApiKey, InvalidKey> {
        ApiKey::new(key)
    }
}

/// Why a text cannot be an API key. The messages never quote the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidKey {
    /// The key is empty.
    #[error("an API key cannot be empty")]
    Empty,
    /// The key is longer than 256 bytes.
    #[error("an API key is at most 256 characters, this one has {0}")]
    TooLong(usize),
    /// The key holds a space, a control or a non-ASCII character at this (1-based) position.
    #[error(
        "an API key may only hold visible ASCII characters (no spaces); character {0} is not one"
    )]
    BadCharacter(usize),
}

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read.
    #[error("cannot read API keys from {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A line is not a valid key.
    #[error("{}:{line}: {source}", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        #[source]
        source: InvalidKey,
    },
    /// The file holds no key; starting open would silently drop the protection asked for.
    #[error(
        "{} holds no API key (one key per line; blank lines and lines starting with # are ignored)",
        path.display()
    )]
    NoKeys {
        /// The file.
        path: PathBuf,
    },
}

/// Reads user keys from a file: one key per line, surrounding spaces trimmed, blank lines and
/// lines starting with `#` ignored. A file without any key is an error.
pub fn read_key_file(path: &Path) -> Result<Vec<ApiKey>, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let keys = parse_keys(&text).map_err(|(line, source)| KeyFileError::BadKey {
        path: path.to_path_buf(),
        line,
        source,
    })?;
    if keys.is_empty() {
        return Err(KeyFileError::NoKeys {
            path: path.to_path_buf(),
        });
    }
    Ok(keys)
}

/// The keys in a key file's text, or the 1-based line of the first bad one.
fn parse_keys(text: &str) -> Result<Vec<ApiKey>, (usize, InvalidKey)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(number, line)| ApiKey::new(line).map_err(|e| (number, e)))
        .collect()
}

/// The keys the server accepts, by role. The default has none: everything is open.
#[derive(Clone, Default)]
pub struct AuthConfig {
    /// Keys for the OpenAI routes under `/v1` (`--api-key`, `--api-key-file`).
    pub user_keys: Vec<ApiKey>,
    /// Keys for everything, admin routes included (`--admin-key`).
    pub admin_keys: Vec<ApiKey>,
    /// The key for `/metrics` alone (`--metrics-key`).
    pub metrics_key: Option<ApiKey>,
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "user_keys",
                &format_args!("{} redacted", self.user_keys.len()),
            )
            .field(
                "admin_keys",
                &format_args!("{} redacted", self.admin_keys.len()),
            )
            .field(
                "metrics_key",
                &format_args!(
                    "{}",
                    if self.metrics_key.is_some() {
                        "redacted"
                    } else {
                        "none"
                    }
                ),
            )
            .finish()
    }
}

/// A router area, each with its own rule (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// The OpenAI routes: embeddings and models.
    User,
    /// Routes that change the server: pull (later load, unload).
    Admin,
    /// `/metrics`.
    Metrics,
}

/// Which configured key a request presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Presented {
    /// No `Authorization` header.
    Nothing,
    /// A header that is not `Bearer <key>`.
    Malformed,
    /// A bearer key that matches no configured key.
    Unknown,
    User,
    Admin,
    Metrics,
}

impl AuthConfig {
    /// No key of any kind: every route is open.
    pub fn is_open(&self) -> bool {
        self.user_keys.is_empty() && self.admin_keys.is_empty() && self.metrics_key.is_none()
    }

    /// The `/v1` OpenAI routes need no key.
    pub fn api_is_open(&self) -> bool {
        self.user_keys.is_empty()
    }

    /// The warning to log when the server listens on `address`, reachable from other machines,
    /// while its API needs no key; `None` on loopback or when user keys are set.
    pub fn exposure_warning(&self, address: SocketAddr) -> Option<String> {
        if address.ip().is_loopback() || !self.api_is_open() {
            return None;
        }
        Some(format!(
            "listening on {address} without an API key: the API is open to the network and anyone \
             who can reach this address can run models{}; add a key with --api-key KEY, \
             --api-key-file PATH or TESSERA_API_KEY, or listen on 127.0.0.1",
            if self.admin_keys.is_empty() {
                ""
            } else {
                " (admin routes do need the admin key)"
            }
        ))
    }

    fn identify(&self, headers: &HeaderMap) -> Presented {
        let Some(value) = headers.get(header::AUTHORIZATION) else {
            return Presented::Nothing;
        };
        let Some(key) = value.to_str().ok().and_then(bearer_token) else {
            return Presented::Malformed;
        };
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Every key is compared, whatever matched first, so timing does not tell which did.
        let any = |keys: &mut dyn Iterator<Item = &ApiKey>| {
            keys.fold(Choice::from(0), |found, k| found | k.matches(&presented))
        };
        let admin = any(&mut self.admin_keys.iter());
        let user = any(&mut self.user_keys.iter());
        let metrics = any(&mut self.metrics_key.iter());
        if bool::from(admin) {
            Presented::Admin
        } else if bool::from(user) {
            Presented::User
        } else if bool::from(metrics) {
            Presented::Metrics
        } else {
            Presented::Unknown
        }
    }

    /// Lets the request into `area`, or says why not.
    pub(crate) fn check(&self, area: Access, headers: &HeaderMap) -> Result<(), ApiError> {
        if self.is_open() {
            return Ok(());
        }
        let presented = self.identify(headers);
        let allowed: &[Presented] = match area {
            Access::User if self.api_is_open() => return Ok(()),
            Access::User => &[Presented::User, Presented::Admin],
            Access::Metrics if self.metrics_key.is_none() => return Ok(()),
            Access::Metrics => &[Presented::Metrics, Presented::Admin],
            Access::Admin if self.admin_keys.is_empty() => {
                return Err(ApiError::forbidden(
                    "admin routes are disabled: this server has API keys but no admin key; \
                     restart it with --admin-key KEY (or TESSERA_ADMIN_KEY) and send that key",
                ));
            }
            Access::Admin => &[Presented::Admin],
        };
        if allowed.contains(&presented) {
            return Ok(());
        }
        let needed = match area {
            Access::User => "an API key (--api-key) or an admin key (--admin-key)",
            Access::Admin => "an admin key (--admin-key)",
            Access::Metrics => "the metrics key (--metrics-key) or an admin key (--admin-key)",
        };
        Err(match presented {
            Presented::Nothing => ApiError::unauthorized(format!(
                "no API key: this route needs {needed}, sent as `Authorization: Bearer KEY`"
            )),
            Presented::Malformed => ApiError::unauthorized(format!(
                "the Authorization header is not `Bearer KEY`; this route needs {needed}"
            )),
            Presented::Unknown => ApiError::unauthorized(format!(
                "invalid API key: the key sent is not one this server accepts; this route needs {needed}"
            )),
            Presented::User | Presented::Metrics | Presented::Admin => {
                let sent = match presented {
                    Presented::User => "a user API key",
                    Presented::Metrics => "the metrics key",
                    _ => "an admin key",
                };
                ApiError::forbidden(format!(
                    "the key sent is {sent}, but this route needs {needed}"
                ))
            }
        })
    }
}

/// `Bearer <token>` (scheme case-insensitive, RFC 7235) to the token.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim_start();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The state of one area's guard: the keys and the area.
#[derive(Clone)]
pub(crate) struct Guard {
    config: Arc<AuthConfig>,
    area: Access,
}

/// A middleware that admits a request into `area` or answers 401/403 before the body is read.
pub(crate) fn guard(config: &Arc<AuthConfig>, area: Access) -> Guard {
    Guard {
        config: config.clone(),
        area,
    }
}

/// The guard as a middleware function for `axum::middleware::from_fn_with_state`.
pub(crate) async fn require(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    match guard.config.check(guard.area, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn key(text: &str) -> ApiKey {
        ApiKey::new(text).unwrap()
    }

    fn bearer(token: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        headers
    }

    fn status(config: &AuthConfig, area: Access, headers: &HeaderMap) -> u16 {
        match config.check(area, headers) {
            Ok(()) => 200,
            Err(e) => e.status().as_u16(),
        }
    }

    fn full() -> AuthConfig {
        AuthConfig {
            user_keys: vec![key("user-1"), key("user-2")],
            admin_keys: vec![key("admin")],
            metrics_key: Some(key("metrics")),
        }
    }

    #[test]
    fn without_keys_everything_is_open() {
        let open = AuthConfig::default();
        for area in [Access::User, Access::Admin, Access::Metrics] {
            assert_eq!(status(&open, area, &HeaderMap::new()), 200);
            assert_eq!(status(&open, area, &bearer("anything")), 200);
        }
    }

    #[test]
    fn each_area_takes_its_keys() {
        let config = full();
        let none = HeaderMap::new();
        let table = [
            // (area, headers, status)
            (Access::User, none.clone(), 401),
            (Access::User, bearer("wrong"), 401),
            (Access::User, bearer("user-1"), 200),
            (Access::User, bearer("user-2"), 200),
            (Access::User, bearer("admin"), 200),
            (Access::User, bearer("metrics"), 403),
            (Access::Admin, none.clone(), 401),
            (Access::Admin, bearer("wrong"), 401),
            (Access::Admin, bearer("user-1"), 403),
            (Access::Admin, bearer("metrics"), 403),
            (Access::Admin, bearer("admin"), 200),
            (Access::Metrics, none.clone(), 401),
            (Access::Metrics, bearer("user-1"), 403),
            (Access::Metrics, bearer("metrics"), 200),
            (Access::Metrics, bearer("admin"), 200),
        ];
        for (area, headers, expected) in table {
            assert_eq!(
                status(&config, area, &headers),
                expected,
                "{area:?} {headers:?}"
            );
        }
    }

    #[test]
    fn keys_without_an_admin_key_close_the_admin_area() {
        let config = AuthConfig {
            user_keys: vec![key("user")],
            ..AuthConfig::default()
        };
        let error = config.check(Access::Admin, &bearer("user")).unwrap_err();
        assert_eq!(error.status(), 403);
        assert!(
            error.message().contains("--admin-key"),
            "{}",
            error.message()
        );
        // /metrics stays open without a metrics key.
        assert_eq!(status(&config, Access::Metrics, &HeaderMap::new()), 200);
    }

    #[test]
    fn an_admin_key_alone_leaves_the_user_api_open() {
        let config = AuthConfig {
            admin_keys: vec![key("admin")],
            ..AuthConfig::default()
        };
        assert_eq!(status(&config, Access::User, &HeaderMap::new()), 200);
        assert_eq!(status(&config, Access::Admin, &HeaderMap::new()), 401);
        assert_eq!(status(&config, Access::Admin, &bearer("admin")), 200);
    }

    #[test]
    fn the_authorization_header_is_parsed_leniently_but_must_be_bearer() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer   abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Bearer "), None);
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("user-1"));
        let error = full().check(Access::User, &headers).unwrap_err();
        assert_eq!(error.status(), 401);
        assert!(error.message().contains("Bearer"), "{}", error.message());
    }

    #[test]
    fn messages_and_debug_never_show_a_key() {
        let config = AuthConfig {
            user_keys: vec![key("sk-user-1"), key("sk-user-2")],
            admin_keys: vec![key("sk-admin")],
            metrics_key: Some(key("sk-metrics")),
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("sk-"), "{debug}");
        assert!(debug.contains("2 redacted"), "{debug}");
        let debug = format!(
            "{:?}",
            crate::ServerConfig {
                auth: config.clone(),
                ..crate::ServerConfig::default()
            }
        );
        assert!(!debug.contains("sk-"), "{debug}");
        let error = config
            .check(Access::User, &bearer("guess-123"))
            .unwrap_err();
        assert!(!error.message().contains("guess-123"));
        assert_eq!(format!("{:?}", key("s3cret")), "ApiKey(<redacted>)");
    }

    #[test]
    fn keys_must_be_visible_ascii() {
        assert_eq!(ApiKey::new("").unwrap_err(), InvalidKey::Empty);
        assert_eq!(ApiKey::new("a b").unwrap_err(), InvalidKey::BadCharacter(2));
        assert_eq!(ApiKey::new("é").unwrap_err(), InvalidKey::BadCharacter(1));
        assert!(matches!(
            ApiKey::new(&"k".repeat(300)),
            Err(InvalidKey::TooLong(300))
        ));
        assert!(ApiKey::new("sk-ABC_123.~+/=").is_ok());
    }

    #[test]
    fn key_files_skip_blanks_and_comments() {
        let keys = parse_keys("# team keys\n\n  alpha  \n#beta\nbeta\n").unwrap();
        assert_eq!(keys.len(), 2);
        let config = AuthConfig {
            user_keys: keys,
            ..AuthConfig::default()
        };
        assert_eq!(status(&config, Access::User, &bearer("alpha")), 200);
        assert_eq!(status(&config, Access::User, &bearer("beta")), 200);
        assert_eq!(status(&config, Access::User, &bearer("#beta")), 401);
        assert_eq!(
            parse_keys("ok\nnot ok\n").unwrap_err(),
            (2, InvalidKey::BadCharacter(4))
        );
    }

    #[test]
    fn missing_or_empty_key_files_are_errors() {
        let missing = read_key_file(Path::new("/nonexistent/tessera-keys")).unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/tessera-keys"),
            "{missing}"
        );
        let dir = std::env::temp_dir().join(format!("tessera-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty");
        std::fs::write(&empty, "# nothing yet\n\n").unwrap();
        assert!(matches!(
            read_key_file(&empty),
            Err(KeyFileError::NoKeys { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn only_an_open_api_off_loopback_warns() {
        let open = AuthConfig::default();
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        for local in ["127.0.0.1:8080", "127.8.9.10:1", "[::1]:8080"] {
            assert_eq!(open.exposure_warning(local.parse().unwrap()), None);
        }
        let warning = open.exposure_warning(public).expect("a warning");
        assert!(
            warning.contains("open to the network") && warning.contains("--api-key"),
            "{warning}"
        );
        assert!(open.exposure_warning("[::]:80".parse().unwrap()).is_some());
        assert_eq!(full().exposure_warning(public), None);
    }
}
