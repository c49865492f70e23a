//! The vocabulary every other tessera crate speaks.
//!
//! `tessera-core` names the kinds of work ([`Task`]), the engines that do it ([`EngineKind`]), the
//! hardware they run on ([`Device`]) and the task traits that engines sit behind ([`Embedder`]). It
//! pulls in no engine, no HTTP stack and no file I/O, so every crate can depend on it cheaply.
//!
//! ```
//! use tessera_core::{Task, EngineKind};
//! assert_eq!("embed".parse::<Task>().unwrap(), Task::Embed);
//! assert_eq!(EngineKind::Onnx.to_string(), "onnx");
//! ```
#![deny(missing_docs)]

mod embed;
mod kinds;

pub use embed::{Embedder, EmbedderError, Encoding};
pub use kinds::{Device, EngineKind, ParseKindError, Task};
