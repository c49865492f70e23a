//! The vocabulary every other tessera crate speaks.
//!
//! `tessera-core` names the kinds of work ([`Task`]), the engines that do it ([`EngineKind`]), the
//! hardware they run on ([`Device`]) and the task traits that engines sit behind ([`Embedder`]). It
//! also holds the few rules every crate must apply the same way: where tessera keeps its files
//! ([`tessera_home`]) and how durations and sizes are written ([`parse_duration`],
//! [`parse_size`]). It pulls in no engine, no HTTP stack and no file I/O, so every crate can
//! depend on it cheaply.
//!
//! ```
//! use tessera_core::{Task, EngineKind};
//! assert_eq!("embed".parse::<Task>().unwrap(), Task::Embed);
//! assert_eq!(EngineKind::Onnx.to_string(), "onnx");
//! ```
#![deny(missing_docs)]

mod embed;
mod home;
mod kinds;
pub mod units;

pub use embed::{Embedder, EmbedderError, Encoding};
pub use home::tessera_home;
pub use kinds::{Device, EngineKind, ParseKindError, Task};
pub use units::{ParseUnitError, format_duration, parse_duration, parse_size};
