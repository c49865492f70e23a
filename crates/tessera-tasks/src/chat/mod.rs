//! Chat for LLMs: the normalized conversation types, the renderer of a model's Jinja chat
//! template into the prompt, and the reader of the model's tool calls back out of its text.
//!
//! Pure Rust: nothing here runs a model. The server turns OpenAI chat requests into
//! [`ChatMessage`]s and [`ToolSpec`]s, renders them with the model's [`ChatTemplate`], and reads
//! the answer (whole or streamed) with [`parse_tool_calls`] or [`ToolCallStream`] in the
//! template's [`ToolFormat`].

pub mod messages;
pub mod template;
pub mod tools;

pub use messages::{ChatMessage, Role, ToolCall, ToolSpec};
pub use template::{ChatTemplate, TemplateError};
pub use tools::{
    ParsedCall, ParsedOutput, StreamPiece, ToolCallStream, ToolFormat, parse_tool_calls,
    tool_format_of,
};
