//! What to speak from Claude Code's `--output-format stream-json` output.
//!
//! Claude Code (`claude -p --output-format stream-json --verbose`) writes one JSON object per
//! line, each with a `"type"`:
//! - `"system"` (`"subtype": "init"` first, then others such as `"api_retry"`);
//! - `"assistant"`: `"message"` is an Anthropic Messages API message (`id`, `role`,
//!   `content`: blocks of type `text`, `thinking`, `redacted_thinking`, `tool_use`). A message
//!   may come as several lines with the same `message.id`, one per content block;
//! - `"user"`: the tool results (`tool_result` blocks) sent back to the model;
//! - `"result"`: the end of the run, whose `"result"` repeats the last text;
//! - with `--include-partial-messages`, `"stream_event"`: `"event"` is a raw API stream event
//!   (`message_start` with the message and its `id`, `content_block_start` with `index` and
//!   `content_block.type`, `content_block_delta` with `delta.type` `text_delta` and its `text`,
//!   `content_block_stop`, `message_delta`, `message_stop`). The whole `"assistant"` line for
//!   the message still follows its deltas;
//! - others (`rate_limit_event`, `tool_progress`, …) that say nothing to a listener.
//!
//! Lines from a subagent (a non-null `"parent_tool_use_id"`) are the subagent's working notes
//! to the main agent, not the answer, and are not spoken either.

use std::collections::{HashSet, VecDeque};

use serde_json::{Map, Value};

/// Something to do with the voice, read from one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Speakable {
    /// Text to speak: a whole text block, or the next delta of a streamed one.
    Text(String),
    /// A text block ended: a place to flush the clause chunker.
    BlockEnd,
}

/// What is wrong with a line that could not be read. Each variant carries an excerpt of the
/// line (its first characters) for the report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The line is not valid JSON (a truncated line, often).
    #[error("not valid JSON ({reason}): {excerpt}")]
    Json {
        /// The parser's message, with the column where it stopped.
        reason: String,
        /// The start of the line.
        excerpt: String,
    },
    /// The line is JSON, but not an object.
    #[error("not a JSON object: {excerpt}")]
    NotObject {
        /// The start of the line.
        excerpt: String,
    },
    /// The object has no string `"type"`.
    #[error("no \"type\" string: {excerpt}")]
    MissingType {
        /// The start of the line.
        excerpt: String,
    },
    /// A line of a known type lacks what that type must carry.
    #[error("a \"{kind}\" line without {missing}: {excerpt}")]
    Shape {
        /// The line's `"type"`.
        kind: String,
        /// What it lacks.
        missing: &'static str,
        /// The start of the line.
        excerpt: String,
    },
}

/// How many streamed message ids are remembered, so their whole `"assistant"` lines are not
/// spoken again. Those lines follow their deltas closely; a few is plenty.
const REMEMBERED_MESSAGES: usize = 64;

/// How many characters of a bad line an error quotes.
const EXCERPT_CHARS: usize = 60;

/// Reads stream-json lines one at a time and says what to speak: the assistant's text, and
/// only that. Thinking, tool calls, tool results, system lines and the final `"result"` are
/// skipped. Text that arrived as `stream_event` deltas is spoken from the deltas as they come;
/// the whole `"assistant"` line for that message (same `message.id`) is then not spoken again.
#[derive(Debug, Default)]
pub struct StreamJsonReader {
    /// The id of the message now streaming, from its `message_start`.
    streaming: Option<String>,
    /// The indexes of its text blocks that have started and not stopped.
    open_text_blocks: HashSet<u64>,
    /// Ids of recent messages whose text came through deltas.
    streamed: VecDeque<String>,
}

impl StreamJsonReader {
    /// A reader at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// One input line → what to speak, in order. A blank line gives nothing, and so does a
    /// line of a type that is not spoken or not known. A line that is not JSON, not an object,
    /// has no `"type"`, or is an `"assistant"` or `"stream_event"` line without its message or
    /// event, is an error; the reader is unchanged by it and the next line can follow.
    pub fn line(&mut self, line: &str) -> Result<Vec<Speakable>, LineError> {
        let line = line.trim();
        if line.is_empty() {
            return Ok(Vec::new());
        }
        let value: Value = serde_json::from_str(line).map_err(|error| LineError::Json {
            reason: error.to_string(),
            excerpt: excerpt(line),
        })?;
        let Value::Object(object) = value else {
            return Err(LineError::NotObject {
                excerpt: excerpt(line),
            });
        };
        let Some(kind) = object.get("type").and_then(Value::as_str) else {
            return Err(LineError::MissingType {
                excerpt: excerpt(line),
            });
        };
        let shape = |missing| LineError::Shape {
            kind: kind.to_owned(),
            missing,
            excerpt: excerpt(line),
        };
        let from_subagent = object
            .get("parent_tool_use_id")
            .is_some_and(|parent| !parent.is_null());
        match kind {
            "assistant" => {
                let message = object
                    .get("message")
                    .and_then(Value::as_object)
                    .ok_or_else(|| shape("a \"message\" object"))?;
                if from_subagent {
                    return Ok(Vec::new());
                }
                Ok(self.assistant(message))
            }
            "stream_event" => {
                let event = object
                    .get("event")
                    .and_then(Value::as_object)
                    .ok_or_else(|| shape("an \"event\" object"))?;
                if from_subagent {
                    return Ok(Vec::new());
                }
                Ok(self.stream_event(event))
            }
            _ => Ok(Vec::new()),
        }
    }

    /// A whole assistant message (or the blocks of it this line carries).
    fn assistant(&self, message: &Map<String, Value>) -> Vec<Speakable> {
        let id = message.get("id").and_then(Value::as_str);
        if id.is_some_and(|id| self.streamed.iter().any(|seen| seen == id)) {
            return Vec::new();
        }
        let mut speak = Vec::new();
        let mut text_block = |text: &str| {
            if !text.trim().is_empty() {
                speak.push(Speakable::Text(text.to_owned()));
                speak.push(Speakable::BlockEnd);
            }
        };
        match message.get("content") {
            Some(Value::String(text)) => text_block(text),
            Some(Value::Array(blocks)) => {
                for block in blocks {
                    if block.get("type").and_then(Value::as_str) == Some("text")
                        && let Some(text) = block.get("text").and_then(Value::as_str)
                    {
                        text_block(text);
                    }
                }
            }
            _ => {}
        }
        speak
    }

    /// One raw API stream event.
    fn stream_event(&mut self, event: &Map<String, Value>) -> Vec<Speakable> {
        let index = event.get("index").and_then(Value::as_u64);
        match event.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                self.streaming = event
                    .get("message")
                    .and_then(|message| message.get("id"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                self.open_text_blocks.clear();
                Vec::new()
            }
            Some("content_block_start") => {
                let block = event.get("content_block");
                let is_text =
                    block.and_then(|b| b.get("type")).and_then(Value::as_str) == Some("text");
                if !is_text {
                    return Vec::new();
                }
                if let Some(index) = index {
                    self.open_text_blocks.insert(index);
                }
                // The API starts a text block empty, but a non-empty start is text too.
                let text = block
                    .and_then(|b| b.get("text"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                self.streamed_text(text)
            }
            Some("content_block_delta") => {
                let delta = event.get("delta");
                let is_text =
                    delta.and_then(|d| d.get("type")).and_then(Value::as_str) == Some("text_delta");
                if !is_text {
                    return Vec::new();
                }
                if let Some(index) = index {
                    // Also when its start was missed (reading began mid-message).
                    self.open_text_blocks.insert(index);
                }
                let text = delta
                    .and_then(|d| d.get("text"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                self.streamed_text(text)
            }
            Some("content_block_stop") => match index {
                Some(index) if self.open_text_blocks.remove(&index) => vec![Speakable::BlockEnd],
                _ => Vec::new(),
            },
            Some("message_stop") => {
                self.streaming = None;
                let open = self.open_text_blocks.len();
                self.open_text_blocks.clear();
                // A text block that never said it stopped ends with its message.
                vec![Speakable::BlockEnd; open]
            }
            _ => Vec::new(),
        }
    }

    /// Text of the message now streaming: spoken now, and its message marked as streamed.
    fn streamed_text(&mut self, text: &str) -> Vec<Speakable> {
        if text.is_empty() {
            return Vec::new();
        }
        if let Some(id) = &self.streaming
            && !self.streamed.contains(id)
        {
            if self.streamed.len() == REMEMBERED_MESSAGES {
                self.streamed.pop_front();
            }
            self.streamed.push_back(id.clone());
        }
        vec![Speakable::Text(text.to_owned())]
    }
}

/// The first characters of a line, for an error message.
fn excerpt(line: &str) -> String {
    match line.char_indices().nth(EXCERPT_CHARS) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(text: &str) -> Speakable {
        Speakable::Text(text.to_owned())
    }

    fn read_all(reader: &mut StreamJsonReader, lines: &[&str]) -> Vec<Speakable> {
        lines
            .iter()
            .flat_map(|line| reader.line(line).unwrap_or_else(|e| panic!("{line}: {e}")))
            .collect()
    }

    #[test]
    fn blank_lines_and_unknown_types_give_nothing() {
        let mut reader = StreamJsonReader::new();
        assert_eq!(reader.line(""), Ok(vec![]));
        assert_eq!(reader.line("  \r"), Ok(vec![]));
        assert_eq!(reader.line(r#"{"type":"rate_limit_event"}"#), Ok(vec![]));
        assert_eq!(
            reader.line(r#"{"type":"some_future_thing","x":1}"#),
            Ok(vec![])
        );
    }

    #[test]
    fn bad_lines_are_errors_that_say_what_is_wrong() {
        let mut reader = StreamJsonReader::new();
        let Err(LineError::Json { excerpt, .. }) =
            reader.line(r#"{"type": "assistant", "message": "#)
        else {
            panic!("truncated JSON is an error");
        };
        assert_eq!(excerpt, r#"{"type": "assistant", "message":"#);
        assert!(matches!(
            reader.line("[1, 2]"),
            Err(LineError::NotObject { .. })
        ));
        assert!(matches!(
            reader.line("42"),
            Err(LineError::NotObject { .. })
        ));
        assert!(matches!(
            reader.line(r#"{"message": {}}"#),
            Err(LineError::MissingType { .. })
        ));
        assert!(matches!(
            reader.line(r#"{"type": 7}"#),
            Err(LineError::MissingType { .. })
        ));
        let error = reader.line(r#"{"type":"assistant"}"#).unwrap_err();
        assert_eq!(
            error.to_string(),
            r#"a "assistant" line without a "message" object: {"type":"assistant"}"#
        );
        assert!(matches!(
            reader.line(r#"{"type":"stream_event","event":null}"#),
            Err(LineError::Shape { .. })
        ));
        // A long line is quoted in part.
        let long = format!("{{\"type\": \"{}", "x".repeat(200));
        let message = reader.line(&long).unwrap_err().to_string();
        assert!(message.ends_with('…') && message.len() < 200, "{message}");
        // The reader goes on after an error.
        let line = r#"{"type":"assistant","message":{"id":"m","content":[{"type":"text","text":"Still here."}]}}"#;
        assert_eq!(
            reader.line(line),
            Ok(vec![text("Still here."), Speakable::BlockEnd])
        );
    }

    #[test]
    fn only_assistant_text_is_spoken() {
        let mut reader = StreamJsonReader::new();
        let lines = [
            r#"{"type":"system","subtype":"init","session_id":"s","tools":["Bash"],"model":"claude-sonnet-4-5"}"#,
            r#"{"type":"assistant","message":{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"thinking","thinking":"secret plan","signature":"abc"},{"type":"redacted_thinking","data":"xyz"},{"type":"text","text":"First text."},{"type":"tool_use","id":"toolu_1","name":"Bash","input":{"command":"ls"}},{"type":"text","text":"Second text."}]},"parent_tool_use_id":null,"session_id":"s"}"#,
            r#"{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"file list"}]},"parent_tool_use_id":null,"session_id":"s"}"#,
            r#"{"type":"assistant","message":{"id":"msg_2","role":"assistant","content":[{"type":"text","text":"  "}]}}"#,
            r#"{"type":"result","subtype":"success","is_error":false,"result":"Second text.","session_id":"s"}"#,
        ];
        assert_eq!(
            read_all(&mut reader, &lines),
            [
                text("First text."),
                Speakable::BlockEnd,
                text("Second text."),
                Speakable::BlockEnd
            ]
        );
    }

    #[test]
    fn a_message_split_over_lines_speaks_each_text_block() {
        // Claude Code sends one line per content block, all with the message's id.
        let mut reader = StreamJsonReader::new();
        let lines = [
            r#"{"type":"assistant","message":{"id":"msg_1","content":[{"type":"text","text":"One."}]}}"#,
            r#"{"type":"assistant","message":{"id":"msg_1","content":[{"type":"tool_use","id":"t","name":"Read","input":{}}]}}"#,
            r#"{"type":"assistant","message":{"id":"msg_1","content":[{"type":"text","text":"One."}]}}"#,
            r#"{"type":"assistant","message":{"content":"A string content."}}"#,
        ];
        assert_eq!(
            read_all(&mut reader, &lines),
            [
                text("One."),
                Speakable::BlockEnd,
                text("One."),
                Speakable::BlockEnd,
                text("A string content."),
                Speakable::BlockEnd
            ]
        );
    }

    #[test]
    fn streamed_text_is_spoken_from_deltas_and_not_again() {
        let mut reader = StreamJsonReader::new();
        let lines = [
            r#"{"type":"stream_event","event":{"type":"message_start","message":{"id":"msg_A","type":"message","role":"assistant","content":[]}},"parent_tool_use_id":null,"session_id":"s","uuid":"u1"}"#,
            r#"{"type":"stream_event","event":{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}}"#,
            r#"{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}}"#,
            r#"{"type":"stream_event","event":{"type":"content_block_stop","index":0}}"#,
            r#"{"type":"assistant","message":{"id":"msg_A","content":[{"type":"thinking","thinking":"hmm"}]}}"#,
            r#"{"type":"stream_event","event":{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}}"#,
            r#"{"type":"stream_event","event":{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hello"}}}"#,
            r#"{"type":"stream_event","event":{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":" world."}}}"#,
            r#"{"type":"stream_event","event":{"type":"content_block_stop","index":1}}"#,
            r#"{"type":"assistant","message":{"id":"msg_A","content":[{"type":"text","text":"Hello world."}]}}"#,
            r#"{"type":"stream_event","event":{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"t","name":"Bash","input":{}}}}"#,
            r#"{"type":"stream_event","event":{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"command\":"}}}"#,
            r#"{"type":"stream_event","event":{"type":"content_block_stop","index":2}}"#,
            r#"{"type":"stream_event","event":{"type":"message_delta","delta":{"stop_reason":"tool_use"}}}"#,
            r#"{"type":"stream_event","event":{"type":"message_stop"}}"#,
            r#"{"type":"assistant","message":{"id":"msg_A","content":[{"type":"text","text":"Hello world."}]}}"#,
        ];
        assert_eq!(
            read_all(&mut reader, &lines),
            [text("Hello"), text(" world."), Speakable::BlockEnd]
        );
        // A later message that is not streamed is spoken whole.
        let line = r#"{"type":"assistant","message":{"id":"msg_B","content":[{"type":"text","text":"Whole."}]}}"#;
        assert_eq!(
            reader.line(line),
            Ok(vec![text("Whole."), Speakable::BlockEnd])
        );
    }

    #[test]
    fn a_text_block_without_its_stop_ends_with_the_message() {
        let mut reader = StreamJsonReader::new();
        let lines = [
            r#"{"type":"stream_event","event":{"type":"message_start","message":{"id":"msg_C"}}}"#,
            r#"{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Cut off"}}}"#,
            r#"{"type":"stream_event","event":{"type":"message_stop"}}"#,
            r#"{"type":"stream_event","event":{"type":"content_block_stop","index":0}}"#,
        ];
        assert_eq!(
            read_all(&mut reader, &lines),
            [text("Cut off"), Speakable::BlockEnd]
        );
    }

    #[test]
    fn subagent_lines_are_not_spoken() {
        let mut reader = StreamJsonReader::new();
        let lines = [
            r#"{"type":"assistant","parent_tool_use_id":"toolu_9","message":{"id":"msg_S","content":[{"type":"text","text":"Subagent notes."}]}}"#,
            r#"{"type":"stream_event","parent_tool_use_id":"toolu_9","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"sub"}}}"#,
        ];
        assert_eq!(read_all(&mut reader, &lines), []);
    }

    #[test]
    fn streamed_ids_are_remembered_within_a_bound() {
        let mut reader = StreamJsonReader::new();
        for n in 0..REMEMBERED_MESSAGES + 5 {
            let start = format!(
                r#"{{"type":"stream_event","event":{{"type":"message_start","message":{{"id":"m{n}"}}}}}}"#
            );
            let delta = r#"{"type":"stream_event","event":{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"x"}}}"#;
            read_all(&mut reader, &[&start, delta]);
        }
        assert_eq!(reader.streamed.len(), REMEMBERED_MESSAGES);
        let last = format!(
            r#"{{"type":"assistant","message":{{"id":"m{}","content":[{{"type":"text","text":"x"}}]}}}}"#,
            REMEMBERED_MESSAGES + 4
        );
        assert_eq!(reader.line(&last), Ok(vec![]));
        // The oldest are forgotten.
        let first =
            r#"{"type":"assistant","message":{"id":"m0","content":[{"type":"text","text":"x"}]}}"#;
        assert_eq!(reader.line(first), Ok(vec![text("x"), Speakable::BlockEnd]));
    }
}
