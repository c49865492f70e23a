//! The model's tool calls, read back out of its text as OpenAI tool calls.
//!
//! Models write calls in a few shapes, which their chat template tells apart
//! ([`tool_format_of`]):
//! - Hermes (Qwen 2.5, Hermes): `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`;
//! - Llama 3 JSON: `{"name": ..., "parameters": {...}}` as the whole answer, possibly after
//!   `<|python_tag|>`;
//! - Mistral: `[TOOL_CALLS] [{"name": ..., "arguments": {...}}, ...]`.
//!
//! One state machine, [`ToolCallStream`], does the work for streamed and whole answers alike, so
//! both always agree: [`parse_tool_calls`] is the stream fed the whole text at once. A call that
//! does not read (bad JSON, no name) stays in the content as the model wrote it.

use serde::Deserialize;
use serde_json::value::RawValue;

/// How a model writes its tool calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ToolFormat {
    /// `<tool_call>\n{"name": ..., "arguments": {...}}\n</tool_call>`, one block per call
    /// (Qwen 2.5, Hermes).
    Hermes,
    /// `{"name": ..., "parameters": {...}}` at the start of the answer, possibly after
    /// `<|python_tag|>` (Llama 3.1 and later).
    Llama3Json,
    /// `[TOOL_CALLS] [{"name": ..., "arguments": {...}}]` (Mistral).
    MistralJson,
    /// None recognised: any of the above is accepted.
    Generic,
}

/// Guesses the tool-call format from a chat template's source, by the markers it teaches the
/// model.
pub fn tool_format_of(template_source: &str) -> ToolFormat {
    if template_source.contains(TOOL_CALL_OPEN) {
        ToolFormat::Hermes
    } else if template_source.contains(PYTHON_TAG)
        || template_source.contains("Environment: ipython")
    {
        ToolFormat::Llama3Json
    } else if template_source.contains(TOOL_CALLS) {
        ToolFormat::MistralJson
    } else {
        ToolFormat::Generic
    }
}

/// One tool call read from the model's text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedCall {
    /// The function called.
    pub name: String,
    /// The arguments as compact JSON text of an object, numbers and escapes as the model wrote
    /// them; `{}` when the model gave none.
    pub arguments: String,
}

/// A whole answer split into text and tool calls.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ParsedOutput {
    /// The text outside the calls, trimmed; `None` when there is none.
    pub content: Option<String>,
    /// The calls, in order.
    pub tool_calls: Vec<ParsedCall>,
}

/// Splits a whole answer into text and tool calls. Never fails: what does not read as a call is
/// content. An answer that is nothing but one Markdown code block (small models often fence
/// their call in ```json) is read inside the fence when that gives calls and no other text.
pub fn parse_tool_calls(format: ToolFormat, text: &str) -> ParsedOutput {
    if let Some(inner) = fenced(text) {
        let parsed = parse_unfenced(format, inner);
        if parsed.content.is_none() && !parsed.tool_calls.is_empty() {
            return parsed;
        }
    }
    parse_unfenced(format, text)
}

/// The inside of a text that is exactly one fenced code block.
fn fenced(text: &str) -> Option<&str> {
    let body = text.trim().strip_prefix("```")?.strip_suffix("```")?;
    // The info string (`json`) runs to the end of the first line.
    let (_, inside) = body.split_once('\n')?;
    (!inside.contains("```")).then_some(inside)
}

fn parse_unfenced(format: ToolFormat, text: &str) -> ParsedOutput {
    let mut stream = ToolCallStream::new(format);
    let mut pieces = stream.push(text);
    pieces.extend(stream.finish());
    let mut content = String::new();
    let mut tool_calls = Vec::new();
    for piece in pieces {
        match piece {
            StreamPiece::Content(text) => content.push_str(&text),
            StreamPiece::Call(call) => tool_calls.push(call),
        }
    }
    let content = content.trim();
    ParsedOutput {
        content: (!content.is_empty()).then(|| content.to_owned()),
        tool_calls,
    }
}

/// What a [`ToolCallStream`] lets out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StreamPiece {
    /// Text that is not part of a call.
    Content(String),
    /// A complete call.
    Call(ParsedCall),
}

const TOOL_CALL_OPEN: &str = "<tool_call>";
const TOOL_CALL_CLOSE: &str = "</tool_call>";
const TOOL_CALLS: &str = "[TOOL_CALLS]";
const PYTHON_TAG: &str = "<|python_tag|>";

/// Where the stream is inside a call. The block's text so far is the stream's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Block {
    /// After `<tool_call>`, until `</tool_call>`.
    Tagged,
    /// After `marker`, until the JSON value that follows it is complete. An empty marker is a
    /// bare JSON object at the start of the answer, its `{` still in the buffer.
    Json(&'static str),
}

/// Splits streamed text into content and tool calls as it arrives.
///
/// Content is let out as soon as it cannot be the start of a call marker (a possible marker
/// prefix such as `<tool` at the end of a delta is held back); a call is let out once its block
/// is complete. The pieces do not depend on how the text was cut into deltas.
#[derive(Clone, Debug)]
pub struct ToolCallStream {
    format: ToolFormat,
    /// Text received and not yet let out: content that may start a marker, or the current
    /// block's text.
    buf: String,
    block: Option<Block>,
    /// Only whitespace has been let out as content so far, so a bare JSON object would still be
    /// a call (Llama 3 and generic formats).
    at_start: bool,
    /// At least one call has been let out.
    calls_seen: bool,
    /// A `;` (and the whitespace after it) following a call, held to see whether another call
    /// follows, as Llama 3 separates them.
    separator: String,
}

impl ToolCallStream {
    /// A stream for a model that writes calls in `format`.
    pub fn new(format: ToolFormat) -> Self {
        ToolCallStream {
            format,
            buf: String::new(),
            block: None,
            at_start: true,
            calls_seen: false,
            separator: String::new(),
        }
    }

    /// Takes the next piece of text; returns what can be let out now.
    pub fn push(&mut self, delta: &str) -> Vec<StreamPiece> {
        self.buf.push_str(delta);
        let mut out = Vec::new();
        self.drain(&mut out, false);
        coalesce(out)
    }

    /// Ends the text and lets out the rest: held text as content, an unterminated call block as a
    /// call when its JSON is complete, else as content.
    pub fn finish(mut self) -> Vec<StreamPiece> {
        let mut out = Vec::new();
        self.drain(&mut out, true);
        coalesce(out)
    }

    fn markers(&self) -> &'static [&'static str] {
        match self.format {
            ToolFormat::Hermes => &[TOOL_CALL_OPEN],
            ToolFormat::Llama3Json => &[PYTHON_TAG],
            ToolFormat::MistralJson => &[TOOL_CALLS],
            ToolFormat::Generic => &[TOOL_CALL_OPEN, TOOL_CALLS, PYTHON_TAG],
        }
    }

    fn bare_json(&self) -> bool {
        matches!(self.format, ToolFormat::Llama3Json | ToolFormat::Generic)
    }

    fn drain(&mut self, out: &mut Vec<StreamPiece>, at_end: bool) {
        loop {
            let progressed = match self.block {
                Some(block) => self.step_block(block, out, at_end),
                None => self.step_text(out, at_end),
            };
            if !progressed {
                break;
            }
        }
    }

    fn content(&mut self, out: &mut Vec<StreamPiece>, text: &str) {
        if text.is_empty() {
            return;
        }
        if !text.trim().is_empty() {
            self.at_start = false;
        }
        out.push(StreamPiece::Content(text.to_owned()));
    }

    fn calls(&mut self, out: &mut Vec<StreamPiece>, calls: Vec<ParsedCall>) {
        self.calls_seen = true;
        out.extend(calls.into_iter().map(StreamPiece::Call));
    }

    /// Outside a call: lets out content up to the next marker, or all but a possible marker
    /// prefix. Returns whether anything changed.
    fn step_text(&mut self, out: &mut Vec<StreamPiece>, at_end: bool) -> bool {
        if self.bare_json() && self.at_start {
            let rest = self.buf.trim_start();
            let space = self.buf.len() - rest.len();
            if space > 0 {
                let space_text: String = self.buf.drain(..space).collect();
                if self.separator.is_empty() {
                    self.content(out, &space_text);
                } else {
                    self.separator.push_str(&space_text);
                }
                return true;
            }
            match self.buf.chars().next() {
                None => {
                    if at_end && !self.separator.is_empty() {
                        let separator = std::mem::take(&mut self.separator);
                        self.content(out, &separator);
                        return true;
                    }
                    return false;
                }
                Some('{') => {
                    // A separator between two calls is dropped with them.
                    self.separator.clear();
                    self.block = Some(Block::Json(""));
                    return true;
                }
                Some(';') if self.calls_seen && self.separator.is_empty() => {
                    self.buf.drain(..1);
                    self.separator.push(';');
                    return true;
                }
                Some(_) => {
                    if !self.separator.is_empty() {
                        let separator = std::mem::take(&mut self.separator);
                        self.content(out, &separator);
                        return true;
                    }
                }
            }
        }
        if self.buf.is_empty() {
            return false;
        }
        let next = self
            .markers()
            .iter()
            .filter_map(|marker| self.buf.find(marker).map(|at| (at, *marker)))
            .min_by_key(|(at, _)| *at);
        if let Some((at, marker)) = next {
            let before: String = self.buf.drain(..at).collect();
            self.content(out, &before);
            self.buf.drain(..marker.len());
            self.block = Some(if marker == TOOL_CALL_OPEN {
                Block::Tagged
            } else {
                Block::Json(marker)
            });
            return true;
        }
        let hold = if at_end {
            0
        } else {
            self.markers()
                .iter()
                .map(|marker| partial_marker_len(&self.buf, marker))
                .max()
                .unwrap_or(0)
        };
        let ready = self.buf.len() - hold;
        if ready == 0 {
            return false;
        }
        let text: String = self.buf.drain(..ready).collect();
        self.content(out, &text);
        true
    }

    /// Inside a call: lets out the call once its block is complete. Returns whether anything
    /// changed.
    fn step_block(&mut self, block: Block, out: &mut Vec<StreamPiece>, at_end: bool) -> bool {
        match block {
            Block::Tagged => {
                if let Some(at) = self.buf.find(TOOL_CALL_CLOSE) {
                    let inner: String = self.buf.drain(..at).collect();
                    self.buf.drain(..TOOL_CALL_CLOSE.len());
                    self.block = None;
                    match parse_call_object(inner.trim()) {
                        Some(call) => self.calls(out, vec![call]),
                        None => {
                            self.content(out, &format!("{TOOL_CALL_OPEN}{inner}{TOOL_CALL_CLOSE}"))
                        }
                    }
                    return true;
                }
                if !at_end {
                    return false;
                }
                let inner = std::mem::take(&mut self.buf);
                self.block = None;
                match unterminated_call(&inner) {
                    Some(call) => self.calls(out, vec![call]),
                    None => self.content(out, &format!("{TOOL_CALL_OPEN}{inner}")),
                }
                true
            }
            Block::Json(marker) => match json_value_end(&self.buf) {
                JsonEnd::Incomplete if !at_end => false,
                JsonEnd::Incomplete => {
                    let rest = std::mem::take(&mut self.buf);
                    self.block = None;
                    self.content(out, &format!("{marker}{rest}"));
                    true
                }
                JsonEnd::NotJson => {
                    // The marker was only text: let it out and read on after it.
                    self.block = None;
                    if marker.is_empty() {
                        let brace: String = self.buf.drain(..1).collect();
                        self.content(out, &brace);
                    } else {
                        self.content(out, marker);
                    }
                    true
                }
                JsonEnd::At(end) => {
                    let raw: String = self.buf.drain(..end).collect();
                    self.block = None;
                    match parse_calls(&raw) {
                        Some(calls) => self.calls(out, calls),
                        None => self.content(out, &format!("{marker}{raw}")),
                    }
                    true
                }
            },
        }
    }
}

/// Merges adjacent content pieces and drops empty ones.
fn coalesce(pieces: Vec<StreamPiece>) -> Vec<StreamPiece> {
    let mut out: Vec<StreamPiece> = Vec::with_capacity(pieces.len());
    for piece in pieces {
        match (out.last_mut(), piece) {
            (_, StreamPiece::Content(text)) if text.is_empty() => {}
            (Some(StreamPiece::Content(last)), StreamPiece::Content(text)) => last.push_str(&text),
            (_, piece) => out.push(piece),
        }
    }
    out
}

/// The length of the longest end of `text` that is a proper start of `marker`.
fn partial_marker_len(text: &str, marker: &str) -> usize {
    (1..marker.len())
        .rev()
        .find(|&n| text.ends_with(&marker[..n]))
        .unwrap_or(0)
}

enum JsonEnd {
    /// The value may still be completed by more text.
    Incomplete,
    /// What follows does not start (or go on as) a JSON object or array.
    NotJson,
    /// The value ends at this byte offset.
    At(usize),
}

/// Where the JSON object or array at the start of `text` (after whitespace) ends, if it does.
fn json_value_end(text: &str) -> JsonEnd {
    match text.trim_start().chars().next() {
        None => return JsonEnd::Incomplete,
        Some('{' | '[') => {}
        Some(_) => return JsonEnd::NotJson,
    }
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<serde::de::IgnoredAny>();
    match values.next() {
        Some(Ok(_)) => JsonEnd::At(values.byte_offset()),
        Some(Err(err)) if err.is_eof() => JsonEnd::Incomplete,
        Some(Err(_)) => JsonEnd::NotJson,
        None => JsonEnd::Incomplete,
    }
}

/// An unterminated `<tool_call>` block at the end of the text: a call when it holds one complete
/// JSON object, followed at most by a cut-off `</tool_call>`.
fn unterminated_call(inner: &str) -> Option<ParsedCall> {
    let JsonEnd::At(end) = json_value_end(inner) else {
        return None;
    };
    let rest = inner[end..].trim();
    if !rest.is_empty() && !TOOL_CALL_CLOSE.starts_with(rest) {
        return None;
    }
    parse_call_object(inner[..end].trim())
}

/// One call object, or an array of them (all must read).
fn parse_calls(raw: &str) -> Option<Vec<ParsedCall>> {
    if raw.trim_start().starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(raw).ok()?;
        if items.is_empty() {
            return None;
        }
        items
            .iter()
            .map(|item| parse_call_object(item.get()))
            .collect()
    } else {
        parse_call_object(raw).map(|call| vec![call])
    }
}

#[derive(Deserialize)]
struct RawCall<'a> {
    name: Option<String>,
    #[serde(borrow)]
    arguments: Option<&'a RawValue>,
    /// Llama 3 names the arguments `parameters`.
    #[serde(borrow)]
    parameters: Option<&'a RawValue>,
}

/// `{"name": ..., "arguments": {...}}` (or `"parameters"`, or the arguments as JSON text).
fn parse_call_object(raw: &str) -> Option<ParsedCall> {
    if !raw.trim_start().starts_with('{') {
        return None;
    }
    let call: RawCall = serde_json::from_str(raw).ok()?;
    let name = call.name?;
    if name.trim().is_empty() {
        return None;
    }
    let arguments = match call.arguments.or(call.parameters) {
        None => "{}".to_owned(),
        Some(arguments) => arguments_text(arguments.get())?,
    };
    Some(ParsedCall { name, arguments })
}

/// The arguments as compact JSON text of an object.
fn arguments_text(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.starts_with('{') {
        return Some(compact(raw));
    }
    // Some models write the arguments as a JSON string holding the object, as OpenAI sends it.
    let text: String = serde_json::from_str(raw).ok()?;
    let text = text.trim();
    if text.is_empty() {
        return Some("{}".to_owned());
    }
    let object: &RawValue = serde_json::from_str(text).ok()?;
    object.get().starts_with('{').then(|| compact(object.get()))
}

/// Valid JSON text without the whitespace between tokens.
fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            if c == '"' {
                in_string = true;
            }
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_call_fenced_in_a_code_block_is_read() {
        let text = "```json\n{\n  \"name\": \"get_weather\",\n  \"arguments\": {\"city\": \"Berlin\"}\n}\n```";
        let parsed = parse_tool_calls(ToolFormat::Generic, text);
        assert_eq!(parsed.content, None);
        assert_eq!(parsed.tool_calls.len(), 1);
        assert_eq!(parsed.tool_calls[0].name, "get_weather");
        // A fenced block that is not a call stays text.
        let text = "```python\nprint(1)\n```";
        let parsed = parse_tool_calls(ToolFormat::Generic, text);
        assert_eq!(parsed.content.as_deref(), Some(text));
        assert!(parsed.tool_calls.is_empty());
    }

    use super::*;

    fn call(name: &str, arguments: &str) -> ParsedCall {
        ParsedCall {
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    fn output(content: Option<&str>, calls: Vec<ParsedCall>) -> ParsedOutput {
        ParsedOutput {
            content: content.map(str::to_owned),
            tool_calls: calls,
        }
    }

    #[test]
    fn formats_from_templates() {
        assert_eq!(
            tool_format_of("... <tool_call>\n{...}</tool_call>"),
            ToolFormat::Hermes
        );
        assert_eq!(
            tool_format_of("{{- \"<|python_tag|>\" }}"),
            ToolFormat::Llama3Json
        );
        assert_eq!(
            tool_format_of("Environment: ipython\n"),
            ToolFormat::Llama3Json
        );
        assert_eq!(
            tool_format_of("{{ '[TOOL_CALLS]' }}"),
            ToolFormat::MistralJson
        );
        assert_eq!(tool_format_of("{{ messages }}"), ToolFormat::Generic);
    }

    #[test]
    fn qwen_one_call() {
        let text = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich\", \"days\": 3}}\n</tool_call>";
        assert_eq!(
            parse_tool_calls(ToolFormat::Hermes, text),
            output(
                None,
                vec![call("get_weather", r#"{"city":"Zürich","days":3}"#)]
            )
        );
    }

    #[test]
    fn qwen_two_calls() {
        let text = "<tool_call>\n{\"name\": \"a\", \"arguments\": {\"x\": [1, 2.50, {\"y\": \"s p a c e\"}]}}\n</tool_call>\n\
                    <tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>";
        assert_eq!(
            parse_tool_calls(ToolFormat::Hermes, text),
            output(
                None,
                vec![
                    call("a", r#"{"x":[1,2.50,{"y":"s p a c e"}]}"#),
                    call("b", "{}")
                ]
            )
        );
    }

    #[test]
    fn qwen_content_before_a_call() {
        let text = "Let me look that up.\n<tool_call>\n{\"name\": \"search\", \"arguments\": {\"q\": \"rust \\\"minijinja\\\"\"}}\n</tool_call>";
        assert_eq!(
            parse_tool_calls(ToolFormat::Hermes, text),
            output(
                Some("Let me look that up."),
                vec![call("search", r#"{"q":"rust \"minijinja\""}"#)]
            )
        );
    }

    #[test]
    fn malformed_calls_stay_as_content() {
        let bad_json =
            "Trying.\n<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": }\n</tool_call>";
        assert_eq!(
            parse_tool_calls(ToolFormat::Hermes, bad_json),
            output(Some(bad_json), vec![])
        );
        let no_name = "<tool_call>\n{\"arguments\": {}}\n</tool_call>";
        assert_eq!(
            parse_tool_calls(ToolFormat::Hermes, no_name),
            output(Some(no_name), vec![])
        );
        let not_object_args = "<tool_call>{\"name\": \"f\", \"arguments\": [1]}</tool_call>";
        assert_eq!(
            parse_tool_calls(ToolFormat::Hermes, not_object_args),
            output(Some(not_object_args), vec![])
        );
        // A good call next to a bad one is still read.
        let mixed = "<tool_call>{\"name\": 3}</tool_call><tool_call>{\"name\": \"ok\"}</tool_call>";
        assert_eq!(
            parse_tool_calls(ToolFormat::Hermes, mixed),
            output(
                Some("<tool_call>{\"name\": 3}</tool_call>"),
                vec![call("ok", "{}")]
            )
        );
    }

    #[test]
    fn arguments_as_json_text_or_parameters() {
        let text = "<tool_call>{\"name\": \"f\", \"arguments\": \"{\\\"a\\\": 1}\"}</tool_call>";
        assert_eq!(
            parse_tool_calls(ToolFormat::Hermes, text),
            output(None, vec![call("f", r#"{"a":1}"#)])
        );
        let text = "<tool_call>{\"name\": \"f\", \"parameters\": {\"a\": 1}}</tool_call>";
        assert_eq!(
            parse_tool_calls(ToolFormat::Hermes, text),
            output(None, vec![call("f", r#"{"a":1}"#)])
        );
    }

    #[test]
    fn unterminated_blocks() {
        // The model stopped before `</tool_call>` but the JSON is whole: still a call.
        let text = "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n</tool_";
        assert_eq!(
            parse_tool_calls(ToolFormat::Hermes, text),
            output(None, vec![call("f", r#"{"a":1}"#)])
        );
        // Cut inside the JSON: content.
        let text = "<tool_call>\n{\"name\": \"f\", \"argum";
        assert_eq!(
            parse_tool_calls(ToolFormat::Hermes, text),
            output(Some(text), vec![])
        );
    }

    #[test]
    fn other_formats_ignore_hermes_markers_when_strict() {
        let text = "[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {}}]";
        assert_eq!(
            parse_tool_calls(ToolFormat::Hermes, text),
            output(Some(text), vec![])
        );
    }

    #[test]
    fn llama3_shapes() {
        let text = "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}";
        assert_eq!(
            parse_tool_calls(ToolFormat::Llama3Json, text),
            output(None, vec![call("get_weather", r#"{"city":"Paris"}"#)])
        );
        let text =
            "<|python_tag|>{\"type\": \"function\", \"name\": \"f\", \"parameters\": {\"n\": 1e5}}";
        assert_eq!(
            parse_tool_calls(ToolFormat::Llama3Json, text),
            output(None, vec![call("f", r#"{"n":1e5}"#)])
        );
        let text = "  {\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"k\": true}}";
        assert_eq!(
            parse_tool_calls(ToolFormat::Llama3Json, text),
            output(None, vec![call("a", "{}"), call("b", r#"{"k":true}"#)])
        );
        // JSON that is not a call, and JSON after text, are content.
        let text = "{\"answer\": 42}";
        assert_eq!(
            parse_tool_calls(ToolFormat::Llama3Json, text),
            output(Some(text), vec![])
        );
        let text = "Sure: {\"name\": \"f\", \"parameters\": {}}";
        assert_eq!(
            parse_tool_calls(ToolFormat::Llama3Json, text),
            output(Some(text), vec![])
        );
        let text = "{curly} braces";
        assert_eq!(
            parse_tool_calls(ToolFormat::Llama3Json, text),
            output(Some(text), vec![])
        );
        let text = "<|python_tag|>brave_search.call(query=\"x\")";
        assert_eq!(
            parse_tool_calls(ToolFormat::Llama3Json, text),
            output(Some(text), vec![])
        );
        let text = "{\"name\": \"a\", \"parameters\": {}}; and more";
        assert_eq!(
            parse_tool_calls(ToolFormat::Llama3Json, text),
            output(Some("; and more"), vec![call("a", "{}")])
        );
    }

    #[test]
    fn mistral_shapes() {
        let text = "[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"x\": \"ß\"}}, {\"name\": \"b\", \"arguments\": {\"y\": null}, \"id\": \"abc123xyz\"}]";
        assert_eq!(
            parse_tool_calls(ToolFormat::MistralJson, text),
            output(
                None,
                vec![call("a", r#"{"x":"ß"}"#), call("b", r#"{"y":null}"#)]
            )
        );
        let text = "Checking.[TOOL_CALLS][{\"name\": \"a\", \"arguments\": {}}]</s>";
        assert_eq!(
            parse_tool_calls(ToolFormat::MistralJson, text),
            output(Some("Checking.</s>"), vec![call("a", "{}")])
        );
        let text = "[TOOL_CALLS] [{\"name\": \"a\"}, {\"nom\": \"b\"}]";
        assert_eq!(
            parse_tool_calls(ToolFormat::MistralJson, text),
            output(Some(text), vec![])
        );
        let text = "[TOOL_CALLS] not json";
        assert_eq!(
            parse_tool_calls(ToolFormat::MistralJson, text),
            output(Some(text), vec![])
        );
    }

    #[test]
    fn generic_accepts_every_shape() {
        for text in [
            "<tool_call>{\"name\": \"f\", \"arguments\": {}}</tool_call>",
            "[TOOL_CALLS] [{\"name\": \"f\", \"arguments\": {}}]",
            "<|python_tag|>{\"name\": \"f\", \"parameters\": {}}",
            "{\"name\": \"f\", \"arguments\": {}}",
        ] {
            assert_eq!(
                parse_tool_calls(ToolFormat::Generic, text),
                output(None, vec![call("f", "{}")]),
                "{text}"
            );
        }
        assert_eq!(
            parse_tool_calls(ToolFormat::Generic, "just text"),
            output(Some("just text"), vec![])
        );
        assert_eq!(
            parse_tool_calls(ToolFormat::Generic, "  \n"),
            output(None, vec![])
        );
    }

    #[test]
    fn stream_holds_only_possible_markers() {
        let mut stream = ToolCallStream::new(ToolFormat::Hermes);
        assert_eq!(
            stream.push("Hello <tool"),
            vec![StreamPiece::Content("Hello ".into())]
        );
        assert_eq!(
            stream.push("s are fun"),
            vec![StreamPiece::Content("<tools are fun".into())]
        );
        assert_eq!(
            stream.push(" <tool_call>{\"name\": \"f\","),
            vec![StreamPiece::Content(" ".into())]
        );
        assert_eq!(stream.push(" \"arguments\": {}}"), vec![]);
        assert_eq!(
            stream.push("</tool_call> done <"),
            vec![
                StreamPiece::Call(call("f", "{}")),
                StreamPiece::Content(" done ".into())
            ]
        );
        assert_eq!(stream.finish(), vec![StreamPiece::Content("<".into())]);
    }

    #[test]
    fn stream_of_plain_text_is_immediate() {
        let mut stream = ToolCallStream::new(ToolFormat::Llama3Json);
        assert_eq!(stream.push("  "), vec![StreamPiece::Content("  ".into())]);
        assert_eq!(
            stream.push("Hi {x}"),
            vec![StreamPiece::Content("Hi {x}".into())]
        );
        assert_eq!(stream.finish(), vec![]);
    }

    /// Feeds `parts` to a stream and returns the content joined and the calls.
    fn streamed(format: ToolFormat, parts: &[&str]) -> (String, Vec<ParsedCall>) {
        let mut stream = ToolCallStream::new(format);
        let mut pieces = Vec::new();
        for part in parts {
            pieces.extend(stream.push(part));
        }
        pieces.extend(stream.finish());
        let mut content = String::new();
        let mut calls = Vec::new();
        for piece in pieces {
            match piece {
                StreamPiece::Content(text) => {
                    assert!(!text.is_empty(), "empty content piece");
                    content.push_str(&text);
                }
                StreamPiece::Call(call) => calls.push(call),
            }
        }
        (content, calls)
    }

    #[test]
    fn streaming_agrees_with_whole_parsing_at_every_split() {
        let inputs: &[(ToolFormat, &str)] = &[
            (
                ToolFormat::Hermes,
                "Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Zürich 🌦\", \"n\": -1.5e-3}}\n</tool_call>\n<tool_call>\n{\"name\": \"b\", \"arguments\": {}}\n</tool_call>",
            ),
            (
                ToolFormat::Hermes,
                "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": }\n</tool_call> and <tool_call>{\"name\": \"g\"}\n</tool_",
            ),
            (
                ToolFormat::Hermes,
                "a <tool b </tool_call> c <tool_call>{\"name\": \"x\", \"arguments\": {\"s\": \"\\u00e9\\\"}\"}} </tool_call>",
            ),
            (
                ToolFormat::Llama3Json,
                " {\"name\": \"a\", \"parameters\": {\"q\": \"}{\"}} ; {\"name\": \"b\", \"parameters\": {}};x",
            ),
            (
                ToolFormat::Llama3Json,
                "<|python_tag|>{\"name\": \"f\", \"parameters\": {\"n\": 12}}",
            ),
            (
                ToolFormat::Llama3Json,
                "{\"answer\": [1, 2, {\"deep\": true}]} is what I think",
            ),
            (
                ToolFormat::Llama3Json,
                "{not json} <|python_tag|>{\"name\": \"f\"}",
            ),
            (
                ToolFormat::MistralJson,
                "Sure.[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"t\": \"[TOOL_CALLS]\"}}]\n[TOOL_CALLS]oops",
            ),
            (
                ToolFormat::Generic,
                "<tool_call>{\"name\": \"a\"}</tool_call>[TOOL_CALLS][{\"name\": \"b\", \"arguments\": \"{\\\"z\\\": 0}\"}]<|python_tag|>{\"name\": \"c\", \"parameters\": {}}",
            ),
            (
                ToolFormat::Generic,
                "{\"name\": \"f\", \"arguments\": {\"a\": 1}} trailing <|python_ta",
            ),
            (
                ToolFormat::Generic,
                "no calls here, just <text> and [brackets] and {braces}.",
            ),
        ];
        for &(format, text) in inputs {
            let whole = parse_tool_calls(format, text);
            let check = |parts: &[&str]| {
                let (content, calls) = streamed(format, parts);
                let content = content.trim();
                assert_eq!(
                    (content, &calls),
                    (whole.content.as_deref().unwrap_or(""), &whole.tool_calls),
                    "{format:?} {parts:?}"
                );
            };
            let boundaries: Vec<usize> = (0..=text.len())
                .filter(|&i| text.is_char_boundary(i))
                .collect();
            for &i in &boundaries {
                check(&[&text[..i], &text[i..]]);
            }
            // Every character its own delta.
            let chars: Vec<String> = text.chars().map(String::from).collect();
            let chars: Vec<&str> = chars.iter().map(String::as_str).collect();
            check(&chars);
            // Three-way cuts, on a coarser grid to keep it quick.
            for &i in boundaries.iter().step_by(3) {
                for &j in boundaries.iter().filter(|&&j| j >= i).step_by(5) {
                    check(&[&text[..i], &text[i..j], &text[j..]]);
                }
            }
        }
    }

    #[test]
    fn whole_parsing_of_the_property_inputs() {
        // Pins what the inputs above parse to, so the property test is not vacuous.
        let out = parse_tool_calls(
            ToolFormat::Hermes,
            "<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": }\n</tool_call> and <tool_call>{\"name\": \"g\"}\n</tool_",
        );
        assert_eq!(out.tool_calls, vec![call("g", "{}")]);
        assert_eq!(
            out.content.as_deref(),
            Some("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"x\": }\n</tool_call> and")
        );
        let out = parse_tool_calls(
            ToolFormat::Llama3Json,
            "{not json} <|python_tag|>{\"name\": \"f\"}",
        );
        assert_eq!(out, output(Some("{not json}"), vec![call("f", "{}")]));
        let out = parse_tool_calls(
            ToolFormat::MistralJson,
            "Sure.[TOOL_CALLS] [{\"name\": \"a\", \"arguments\": {\"t\": \"[TOOL_CALLS]\"}}]\n[TOOL_CALLS]oops",
        );
        assert_eq!(
            out,
            output(
                Some("Sure.\n[TOOL_CALLS]oops"),
                vec![call("a", r#"{"t":"[TOOL_CALLS]"}"#)]
            )
        );
    }

    #[test]
    fn compact_keeps_strings() {
        assert_eq!(
            compact("{ \"a b\" : [ 1 , \"x \\\" y\" ] }"),
            r#"{"a b":[1,"x \" y"]}"#
        );
    }
}
