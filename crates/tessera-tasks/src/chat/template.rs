//! Renders a model's chat template (`tokenizer.chat_template` in a GGUF) the way Hugging Face
//! transformers' `apply_chat_template` does, on MiniJinja.
//!
//! What transformers sets up, and so what templates are written against:
//! - `trim_blocks` and `lstrip_blocks` on, `keep_trailing_newline` off, loop controls on;
//! - the context holds `messages` (dicts: `role`, `content`, and when present `name`,
//!   `tool_calls` in OpenAI's nested shape with `arguments` as a dict, `tool_call_id`), `tools`
//!   (OpenAI's `{"type": "function", "function": {...}}` list, or none), `documents` (none),
//!   `add_generation_prompt`, `bos_token` and `eos_token`;
//! - `tojson` is `json.dumps` with transformers' defaults (`ensure_ascii` off, `", "` and `": "`
//!   separators, keys in insertion order), not Jinja's HTML-safe one;
//! - `raise_exception(msg)` aborts the render, `strftime_now(fmt)` formats the local time.
//!
//! Python's string and dict methods (`.strip()`, `.items()`, `.get()` ...) come from
//! `minijinja_contrib::pycompat`, and printed values look like Python's (`None`, `True`, `1e+16`).

use std::fmt::{self, Write as _};

use minijinja::value::{Kwargs, Rest, Serde, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Output, State, Value, context};

use super::messages::{ChatMessage, Role, ToolSpec};
use super::tools::{ToolFormat, tool_format_of};

/// The name the template is registered under; minijinja's messages mention it.
const TEMPLATE_NAME: &str = "chat_template";

/// What can go wrong with a chat template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template is not valid Jinja.
    #[error("the chat template does not compile{}: {message}", at_line(*.line))]
    Syntax {
        /// The line of the template at fault, when known.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// The template failed while rendering this conversation.
    #[error("the chat template failed to render{}: {message}", at_line(*.line))]
    Render {
        /// The line of the template at fault, when known.
        line: Option<usize>,
        /// What went wrong, as MiniJinja tells it.
        message: String,
    },
    /// The template called `raise_exception(message)`: it refuses this conversation (for example
    /// roles that do not alternate). The message is the template's own, meant for the caller.
    #[error("{0}")]
    Raised(String),
}

fn at_line(line: Option<usize>) -> String {
    match line {
        Some(line) => format!(" at line {line}"),
        None => String::new(),
    }
}

/// A compiled chat template with the special tokens it is rendered with.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    /// Whether the template mentions the `developer` role; if not, `developer` renders as
    /// `system`.
    knows_developer: bool,
    tool_format: ToolFormat,
}

impl fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatTemplate")
            .field("bos_token", &self.bos_token)
            .field("eos_token", &self.eos_token)
            .field("knows_developer", &self.knows_developer)
            .field("tool_format", &self.tool_format)
            .finish_non_exhaustive()
    }
}

impl ChatTemplate {
    /// Compiles `source` once. A syntax error is a [`TemplateError::Syntax`] naming the line.
    pub fn new(
        source: &str,
        bos_token: &str,
        eos_token: &str,
    ) -> Result<ChatTemplate, TemplateError> {
        let mut env = environment();
        env.add_template_owned(TEMPLATE_NAME, source.to_owned())
            .map_err(|err| TemplateError::Syntax {
                line: err.line(),
                message: describe(&err),
            })?;
        Ok(ChatTemplate {
            env,
            bos_token: bos_token.to_owned(),
            eos_token: eos_token.to_owned(),
            knows_developer: source.contains("developer"),
            tool_format: tool_format_of(source),
        })
    }

    /// Renders a conversation into the prompt text. `tools` empty means no tools (the template
    /// sees `tools` as none); `add_generation_prompt` opens the assistant's turn.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        tools: &[ToolSpec],
        add_generation_prompt: bool,
    ) -> Result<String, TemplateError> {
        let messages: Vec<serde_json::Value> = messages
            .iter()
            .map(|m| hf_message(m, self.knows_developer))
            .collect();
        let tools = if tools.is_empty() {
            Value::from(())
        } else {
            Value::from(Serde(tools.iter().map(hf_tool).collect::<Vec<_>>()))
        };
        let ctx = context! {
            messages => Value::from(Serde(&messages)),
            tools => tools,
            documents => Value::from(()),
            add_generation_prompt => add_generation_prompt,
            bos_token => &self.bos_token,
            eos_token => &self.eos_token,
        };
        self.render_context(ctx)
    }

    /// The tool-call format the model most likely writes, guessed from the template source.
    pub fn tool_format(&self) -> ToolFormat {
        self.tool_format
    }

    fn render_context(&self, ctx: Value) -> Result<String, TemplateError> {
        let template =
            self.env
                .get_template(TEMPLATE_NAME)
                .map_err(|err| TemplateError::Render {
                    line: err.line(),
                    message: describe(&err),
                })?;
        template.render(ctx).map_err(render_error)
    }
}

/// One message as transformers hands it to the template.
fn hf_message(message: &ChatMessage, knows_developer: bool) -> serde_json::Value {
    let role = match message.role {
        Role::Developer if !knows_developer => Role::System,
        role => role,
    };
    let mut out = serde_json::Map::new();
    out.insert("role".into(), role.as_str().into());
    out.insert("content".into(), message.content.clone().into());
    if let Some(name) = &message.name {
        out.insert("name".into(), name.clone().into());
    }
    if !message.tool_calls.is_empty() {
        let calls = message
            .tool_calls
            .iter()
            .map(|call| {
                // Templates expect a dict (`arguments | tojson`, `arguments.items()`); text that is
                // not a JSON object is passed on as it came rather than refused.
                let arguments = match serde_json::from_str::<serde_json::Value>(&call.arguments) {
                    Ok(value @ serde_json::Value::Object(_)) => value,
                    _ => call.arguments.clone().into(),
                };
                serde_json::json!({
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": arguments},
                })
            })
            .collect();
        out.insert("tool_calls".into(), serde_json::Value::Array(calls));
    }
    if let Some(id) = &message.tool_call_id {
        out.insert("tool_call_id".into(), id.clone().into());
    }
    serde_json::Value::Object(out)
}

/// One tool in OpenAI's shape, which is what templates are written against.
fn hf_tool(tool: &ToolSpec) -> serde_json::Value {
    let mut function = serde_json::Map::new();
    function.insert("name".into(), tool.name.clone().into());
    if let Some(description) = &tool.description {
        function.insert("description".into(), description.clone().into());
    }
    function.insert("parameters".into(), tool.parameters.clone());
    serde_json::json!({"type": "function", "function": function})
}

/// The MiniJinja environment transformers' settings translate to.
fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    let mut syntax = minijinja::syntax::SyntaxConfig::builder();
    syntax
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(false);
    // The builder only fails on bad custom delimiters, and these are the defaults.
    if let Ok(syntax) = syntax.build() {
        env.set_syntax(syntax);
    }
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    env.set_formatter(python_formatter);
    env.add_filter("tojson", tojson_filter);
    env.add_function("raise_exception", raise_exception);
    env.add_function("strftime_now", strftime_now);
    env
}

/// Marks an error as coming from `raise_exception`, so [`render_error`] can tell it apart.
#[derive(Debug)]
struct Raised(String);

impl fmt::Display for Raised {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

fn raise_exception(message: Value) -> Result<Value, Error> {
    let message = match message.as_str() {
        Some(text) => text.to_owned(),
        None => message.to_string(),
    };
    Err(Error::new(ErrorKind::InvalidOperation, message.clone()).with_source(Raised(message)))
}

fn strftime_now(format: &str) -> Result<String, Error> {
    let now = chrono::Local::now();
    let mut out = String::new();
    // chrono reports a bad specifier as a formatting error rather than text.
    write!(out, "{}", now.format(format)).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("strftime_now: invalid format {format:?}"),
        )
    })?;
    Ok(out)
}

fn render_error(err: Error) -> TemplateError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(current) = source {
        if let Some(raised) = current.downcast_ref::<Raised>() {
            return TemplateError::Raised(raised.0.clone());
        }
        source = current.source();
    }
    TemplateError::Render {
        line: err.line(),
        message: describe(&err),
    }
}

/// MiniJinja's message without its own "(in name:line)" suffix; the line is kept apart.
fn describe(err: &Error) -> String {
    match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    }
}

/// Prints values as Jinja on Python does: `None`, `True`, Python float and list reprs. Strings
/// and integers print the same either way.
fn python_formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    let text = match value.kind() {
        ValueKind::None | ValueKind::Bool | ValueKind::Seq | ValueKind::Map => python_repr(value),
        ValueKind::Number if !value.is_integer() => python_repr(value),
        _ => return minijinja::escape_formatter(out, state, value),
    };
    out.write_str(&text)
        .map_err(|_| Error::from(ErrorKind::WriteFailure))
}

/// Python's `repr` of a value, close enough for what templates print: non-ASCII text is kept
/// as is (Python escapes only the non-printable).
fn python_repr(value: &Value) -> String {
    let mut out = String::new();
    write_python_repr(&mut out, value);
    out
}

fn write_python_repr(out: &mut String, value: &Value) {
    match value.kind() {
        ValueKind::Undefined => {}
        ValueKind::None => out.push_str("None"),
        ValueKind::Bool => out.push_str(if value.is_true() { "True" } else { "False" }),
        ValueKind::Number if value.is_integer() => out.push_str(&value.to_string()),
        ValueKind::Number => match f64::try_from(value.clone()) {
            Ok(x) if x.is_nan() => out.push_str("nan"),
            Ok(x) if x.is_infinite() => out.push_str(if x > 0.0 { "inf" } else { "-inf" }),
            Ok(x) => out.push_str(&python_float(x)),
            Err(_) => out.push_str(&value.to_string()),
        },
        ValueKind::String => {
            let text = value.as_str().unwrap_or_default();
            let quote = if text.contains('\'') && !text.contains('"') {
                '"'
            } else {
                '\''
            };
            out.push(quote);
            for c in text.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                        let _ = write!(out, "\\x{:02x}", c as u32);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
        }
        ValueKind::Seq => {
            let (open, close) = if value.is_tuple() {
                ("(", ")")
            } else {
                ("[", "]")
            };
            out.push_str(open);
            let mut count = 0;
            if let Ok(items) = value.try_iter() {
                for (i, item) in items.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_python_repr(out, &item);
                    count += 1;
                }
            }
            if value.is_tuple() && count == 1 {
                out.push(',');
            }
            out.push_str(close);
        }
        ValueKind::Map => {
            out.push('{');
            if let Ok(keys) = value.try_iter() {
                for (i, key) in keys.enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write_python_repr(out, &key);
                    out.push_str(": ");
                    let item = value.get_item(&key).unwrap_or_default();
                    write_python_repr(out, &item);
                }
            }
            out.push('}');
        }
        _ => out.push_str(&value.to_string()),
    }
}

/// Python's `repr(float)` for a finite value: the shortest digits that read back the same,
/// in positional notation when the exponent is in -5..16 and scientific (`1e+16`, `1e-05`)
/// otherwise.
fn python_float(x: f64) -> String {
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.to_owned();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits, as "d.ddde-5".
    let sci = format!("{:e}", x.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if x < 0.0 { "-" } else { "" };
    let point = exponent + 1; // where the decimal point falls, counted in digits
    let n = digits.len() as i32;
    if point > -4 && point <= 16 {
        if point <= 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
        } else if point >= n {
            format!("{sign}{digits}{}.0", "0".repeat((point - n) as usize))
        } else {
            let (whole, frac) = digits.split_at(point as usize);
            format!("{sign}{whole}.{frac}")
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        format!("{sign}{first}{rest}e{exponent:+03}")
    }
}

/// transformers' `tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`:
/// Python's `json.dumps` with those arguments, positional or by keyword.
fn tojson_filter(value: &Value, args: Rest<Value>, kwargs: Kwargs) -> Result<Value, Error> {
    const NAMES: [&str; 4] = ["ensure_ascii", "indent", "separators", "sort_keys"];
    if args.len() > NAMES.len() {
        return Err(Error::from(ErrorKind::TooManyArguments));
    }
    let mut params: [Option<Value>; 4] = Default::default();
    for (i, name) in NAMES.iter().enumerate() {
        let by_name: Option<Value> = kwargs.get(name)?;
        params[i] = match (args.get(i), by_name) {
            (Some(_), Some(_)) => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson got multiple values for argument '{name}'"),
                ));
            }
            (Some(positional), None) => Some(positional.clone()),
            (None, by_name) => by_name,
        };
    }
    kwargs.assert_all_used()?;
    let [ensure_ascii, indent, separators, sort_keys] = params;
    fn present(v: &Option<Value>) -> Option<&Value> {
        v.as_ref().filter(|v| !v.is_none() && !v.is_undefined())
    }
    let indent = match present(&indent) {
        None => None,
        Some(v) if v.kind() == ValueKind::String => Some(v.as_str().unwrap_or_default().to_owned()),
        Some(v) => {
            let n = i64::try_from(v.clone()).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidOperation,
                    "tojson: indent must be an integer or a string",
                )
            })?;
            Some(" ".repeat(n.max(0) as usize))
        }
    };
    let (item_sep, key_sep) = match present(&separators) {
        Some(v) => {
            let parts: Vec<String> = v
                .try_iter()?
                .map(|p| p.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .unwrap_or_default();
            match <[String; 2]>::try_from(parts) {
                Ok([item, key]) => (item, key),
                Err(_) => {
                    return Err(Error::new(
                        ErrorKind::InvalidOperation,
                        "tojson: separators must be two strings",
                    ));
                }
            }
        }
        // With an indent the item separator's space would end lines, so Python drops it.
        None if indent.is_some() => (",".to_owned(), ": ".to_owned()),
        None => (", ".to_owned(), ": ".to_owned()),
    };
    let options = JsonOptions {
        ensure_ascii: present(&ensure_ascii).is_some_and(Value::is_true),
        indent,
        item_sep,
        key_sep,
        sort_keys: present(&sort_keys).is_some_and(Value::is_true),
    };
    let mut out = String::new();
    write_json(&mut out, value, &options, 0)?;
    Ok(Value::from(out))
}

struct JsonOptions {
    ensure_ascii: bool,
    indent: Option<String>,
    item_sep: String,
    key_sep: String,
    sort_keys: bool,
}

fn not_serializable(value: &Value) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!(
            "tojson: a value of type {} is not JSON serializable",
            value.kind()
        ),
    )
}

fn write_json(
    out: &mut String,
    value: &Value,
    options: &JsonOptions,
    depth: usize,
) -> Result<(), Error> {
    match value.kind() {
        ValueKind::None => out.push_str("null"),
        ValueKind::Bool => out.push_str(if value.is_true() { "true" } else { "false" }),
        ValueKind::Number if value.is_integer() => out.push_str(&value.to_string()),
        ValueKind::Number => {
            let x = f64::try_from(value.clone()).map_err(|_| not_serializable(value))?;
            if x.is_nan() {
                out.push_str("NaN");
            } else if x.is_infinite() {
                out.push_str(if x > 0.0 { "Infinity" } else { "-Infinity" });
            } else {
                out.push_str(&python_float(x));
            }
        }
        ValueKind::String => write_json_string(
            out,
            value.as_str().unwrap_or_default(),
            options.ensure_ascii,
        ),
        ValueKind::Seq | ValueKind::Iterable => {
            let items: Vec<Value> = value.try_iter()?.collect();
            write_container(out, options, depth, ('[', ']'), items.len(), |out, i| {
                write_json(out, &items[i], options, depth + 1)
            })?;
        }
        ValueKind::Map => {
            let mut entries = Vec::new();
            for key in value.try_iter()? {
                let item = value.get_item(&key)?;
                entries.push((json_key(&key)?, item));
            }
            if options.sort_keys {
                entries.sort_by(|a, b| a.0.cmp(&b.0));
            }
            write_container(out, options, depth, ('{', '}'), entries.len(), |out, i| {
                let (key, item) = &entries[i];
                write_json_string(out, key, options.ensure_ascii);
                out.push_str(&options.key_sep);
                write_json(out, item, options, depth + 1)
            })?;
        }
        // Python cannot serialize jinja's Undefined (nor bytes, functions or other objects).
        _ => return Err(not_serializable(value)),
    }
    Ok(())
}

/// Writes `[...]` or `{...}` with `len` entries, laid out as `json.dumps` does for `indent`.
fn write_container(
    out: &mut String,
    options: &JsonOptions,
    depth: usize,
    (open, close): (char, char),
    len: usize,
    mut entry: impl FnMut(&mut String, usize) -> Result<(), Error>,
) -> Result<(), Error> {
    out.push(open);
    if len == 0 {
        out.push(close);
        return Ok(());
    }
    let newline = |out: &mut String, level: usize| {
        if let Some(indent) = &options.indent {
            out.push('\n');
            for _ in 0..level {
                out.push_str(indent);
            }
        }
    };
    for i in 0..len {
        if i > 0 {
            out.push_str(&options.item_sep);
        }
        newline(out, depth + 1);
        entry(out, i)?;
    }
    newline(out, depth);
    out.push(close);
    Ok(())
}

/// A dict key as Python's json writes it: strings as they are, numbers, booleans and None
/// converted to text.
fn json_key(key: &Value) -> Result<String, Error> {
    match key.kind() {
        ValueKind::String => Ok(key.as_str().unwrap_or_default().to_owned()),
        ValueKind::None => Ok("null".to_owned()),
        ValueKind::Bool | ValueKind::Number => {
            let mut out = String::new();
            write_json(
                &mut out,
                key,
                &JsonOptions {
                    ensure_ascii: false,
                    indent: None,
                    item_sep: String::new(),
                    key_sep: String::new(),
                    sort_keys: false,
                },
                0,
            )?;
            Ok(out)
        }
        _ => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!(
                "tojson: keys must be str, int, float, bool or None, not {}",
                key.kind()
            ),
        )),
    }
}

/// A JSON string as Python escapes it: lowercase `\u00XX` for control characters and, with
/// `ensure_ascii`, for everything outside printable ASCII (astral characters as surrogate
/// pairs); never the HTML-safe escapes of Jinja's own `tojson`.
fn write_json_string(out: &mut String, text: &str, ensure_ascii: bool) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if ensure_ascii && !(' '..='~').contains(&c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::messages::ToolCall;

    fn fixtures() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/chat_templates")
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(fixtures().join(name)).unwrap()
    }

    fn cases() -> serde_json::Value {
        serde_json::from_str(&fixture("cases.json")).unwrap()
    }

    /// Renders `conversation` of cases.json with `template` and compares it with what the
    /// Python reference (render_reference.py) wrote.
    fn check(template: &str, conversation: &str) {
        let cases = cases();
        let tokens = &cases["tokens"][template];
        let chat = ChatTemplate::new(
            &fixture(&format!("{template}.jinja")),
            tokens["bos_token"].as_str().unwrap(),
            tokens["eos_token"].as_str().unwrap(),
        )
        .unwrap();
        let case = &cases["conversations"][conversation];
        let messages: Vec<ChatMessage> = serde_json::from_value(case["messages"].clone()).unwrap();
        let tools: Vec<ToolSpec> = match case.get("tools") {
            Some(tools) => serde_json::from_value(tools.clone()).unwrap(),
            None => Vec::new(),
        };
        let add = case["add_generation_prompt"].as_bool().unwrap();
        let got = chat.render(&messages, &tools, add).unwrap();
        let want = fixture(&format!("{template}.{conversation}.expected.txt"));
        assert_eq!(got, want, "{template} / {conversation}");
    }

    #[test]
    fn every_reference_render_is_listed_and_matched() {
        let cases = cases();
        let renders = cases["renders"].as_array().unwrap();
        for pair in renders {
            check(pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        }
        let expected = std::fs::read_dir(fixtures())
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                let name = name.to_str().unwrap();
                let templates = cases["tokens"].as_object().unwrap();
                name.ends_with(".expected.txt")
                    && templates.keys().any(|t| name.starts_with(&format!("{t}.")))
            })
            .count();
        assert_eq!(expected, renders.len(), "a stale or unlisted expected file");
    }

    #[test]
    fn smollm2_system_and_user_with_generation_prompt() {
        check("smollm2-135m-instruct", "system_user");
    }

    #[test]
    fn smollm2_multi_turn() {
        check("smollm2-135m-instruct", "multi_turn");
        check("smollm2-135m-instruct", "multi_turn_no_prompt");
    }

    #[test]
    fn smollm2_renders_developer_as_system() {
        check("smollm2-135m-instruct", "developer_role");
    }

    #[test]
    fn qwen_system_and_user_with_generation_prompt() {
        check("qwen2.5-coder-0.5b-instruct", "system_user");
    }

    #[test]
    fn qwen_multi_turn() {
        check("qwen2.5-coder-0.5b-instruct", "multi_turn");
        check("qwen2.5-coder-0.5b-instruct", "multi_turn_no_prompt");
    }

    #[test]
    fn qwen_default_system_prompt() {
        check("qwen2.5-coder-0.5b-instruct", "default_system");
        let out = fixture("qwen2.5-coder-0.5b-instruct.default_system.expected.txt");
        assert!(out.starts_with(
            "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        ));
    }

    #[test]
    fn qwen_tools_calls_and_results() {
        check("qwen2.5-coder-0.5b-instruct", "tools");
        check("qwen2.5-coder-0.5b-instruct", "tools_default_system");
    }

    #[test]
    fn tool_format_is_guessed_from_the_template() {
        let qwen =
            ChatTemplate::new(&fixture("qwen2.5-coder-0.5b-instruct.jinja"), "", "").unwrap();
        assert_eq!(qwen.tool_format(), ToolFormat::Hermes);
        let smol = ChatTemplate::new(&fixture("smollm2-135m-instruct.jinja"), "", "").unwrap();
        assert_eq!(smol.tool_format(), ToolFormat::Generic);
    }

    fn render_value(source: &str, value: serde_json::Value) -> Result<String, TemplateError> {
        let chat = ChatTemplate::new(source, "<s>", "</s>")?;
        chat.render_context(context! { value => Value::from(Serde(&value)) })
    }

    #[test]
    fn tojson_matches_json_dumps() {
        let cases = cases();
        let value = cases["tojson"]["value"].clone();
        let got: Vec<String> = cases["tojson"]["calls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|call| {
                render_value(
                    &format!("{{{{ {} }}}}", call.as_str().unwrap()),
                    value.clone(),
                )
                .unwrap()
            })
            .collect();
        let want = fixture("tojson.expected.txt");
        assert_eq!(got.join("\n---\n"), want);
    }

    #[test]
    fn jinja_semantics_match_python() {
        // Constructs HF templates lean on, each rendered by jinja2 in render_reference.py.
        let cases = cases();
        let semantics = &cases["semantics"];
        let messages: Vec<ChatMessage> =
            serde_json::from_value(semantics["messages"].clone()).unwrap();
        let want = fixture("semantics.expected.txt");
        let want: Vec<&str> = want.split("\n---\n").collect();
        let templates = semantics["templates"].as_array().unwrap();
        assert_eq!(templates.len(), want.len());
        let mut failures = Vec::new();
        for (source, want) in templates.iter().zip(want) {
            let source = source.as_str().unwrap();
            let got =
                ChatTemplate::new(source, "", "").and_then(|t| t.render(&messages, &[], false));
            if got.as_deref() != Ok(want) {
                failures.push(format!("{source}\n  python: {want:?}\n  rust:   {got:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn tojson_rejects_what_python_rejects() {
        let err = render_value("{{ missing | tojson }}", serde_json::json!(null)).unwrap_err();
        assert!(
            matches!(err, TemplateError::Render { line: Some(1), .. }),
            "{err:?}"
        );
        let err = render_value(
            "{{ value | tojson(indent=2, colour=1) }}",
            serde_json::json!(1),
        )
        .unwrap_err();
        assert!(matches!(err, TemplateError::Render { .. }), "{err:?}");
        // Positional arguments follow transformers' signature: ensure_ascii comes first.
        assert_eq!(
            render_value("{{ value | tojson(true) }}", serde_json::json!("é")).unwrap(),
            "\"\\u00e9\""
        );
    }

    #[test]
    fn python_float_repr() {
        for (x, want) in [
            (0.1, "0.1"),
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123456789.125, "123456789.125"),
            (1.5e300, "1.5e+300"),
            (-1.25e-10, "-1.25e-10"),
            (5e-324, "5e-324"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-0.0, "-0.0"),
        ] {
            assert_eq!(python_float(x), want, "{x}");
        }
    }

    #[test]
    fn printed_values_look_like_python() {
        let out = render_value(
            "{{ value.n }} {{ value.t }} {{ value.f }} {{ value.x }} {{ value.l }} {{ value.d }}",
            serde_json::json!({"n": null, "t": true, "f": false, "x": 1e16, "l": [1, "it's", 2.0], "d": {"a": "b"}}),
        )
        .unwrap();
        assert_eq!(out, "None True False 1e+16 [1, \"it's\", 2.0] {'a': 'b'}");
    }

    #[test]
    fn raise_exception_is_its_own_error() {
        let source = "{% for m in messages %}{% if m.role == 'user' and not m.content %}\
                      {{ raise_exception('Empty user messages are not allowed!') }}{% endif %}{% endfor %}";
        let chat = ChatTemplate::new(source, "", "").unwrap();
        let err = chat
            .render(&[ChatMessage::user("")], &[], false)
            .unwrap_err();
        assert_eq!(
            err,
            TemplateError::Raised("Empty user messages are not allowed!".into())
        );
        assert_eq!(err.to_string(), "Empty user messages are not allowed!");
        assert_eq!(
            chat.render(&[ChatMessage::user("hi")], &[], false).unwrap(),
            ""
        );
        // Raised from inside a macro too.
        let source =
            "{% macro fail(m) %}{{ raise_exception('no: ' ~ m) }}{% endmacro %}{{ fail('x') }}";
        let err = ChatTemplate::new(source, "", "")
            .unwrap()
            .render(&[], &[], false)
            .unwrap_err();
        assert_eq!(err, TemplateError::Raised("no: x".into()));
    }

    #[test]
    fn syntax_error_names_the_line() {
        let err = ChatTemplate::new("line one\n{% if x %}\n{{ x }\n", "", "").unwrap_err();
        match &err {
            TemplateError::Syntax { line, message } => {
                assert_eq!(*line, Some(3), "{message}");
            }
            other => panic!("not a syntax error: {other:?}"),
        }
        assert!(err.to_string().contains("line 3"), "{err}");
        assert!(ChatTemplate::new("{% for %}", "", "").is_err());
        assert!(ChatTemplate::new("{% endif %}", "", "").is_err());
    }

    #[test]
    fn render_error_names_the_line() {
        let chat = ChatTemplate::new("ok\n{{ messages[0].content.nope.deeper }}", "", "").unwrap();
        let err = chat
            .render(&[ChatMessage::user("hi")], &[], false)
            .unwrap_err();
        assert!(
            matches!(err, TemplateError::Render { line: Some(2), .. }),
            "{err:?}"
        );
    }

    #[test]
    fn loop_controls_work() {
        let source = "{% for m in messages %}{% if m.role == 'system' %}{% continue %}{% endif %}\
                      {% if m.content == 'stop' %}{% break %}{% endif %}[{{ m.content }}]{% endfor %}";
        let chat = ChatTemplate::new(source, "", "").unwrap();
        let messages = [
            ChatMessage::system("s"),
            ChatMessage::user("a"),
            ChatMessage::assistant("b"),
            ChatMessage::user("stop"),
            ChatMessage::user("c"),
        ];
        assert_eq!(chat.render(&messages, &[], false).unwrap(), "[a][b]");
    }

    #[test]
    fn whitespace_control_is_transformers() {
        // trim_blocks eats the newline after a block tag, lstrip_blocks the indent before it,
        // and the final newline of the template is dropped.
        let source = "{% for m in messages %}\n    {% if true %}\n{{ m.content }}\n    {% endif %}\n{% endfor %}\n";
        let chat = ChatTemplate::new(source, "", "").unwrap();
        let out = chat
            .render(
                &[ChatMessage::user("a"), ChatMessage::user("b")],
                &[],
                false,
            )
            .unwrap();
        assert_eq!(out, "a\nb\n");
    }

    #[test]
    fn context_variables() {
        let source = "{{ bos_token }}|{{ eos_token }}|{{ add_generation_prompt }}|{{ tools is none }}|\
                      {{ documents is none }}|{% for m in messages %}{{ m.role }}:{{ m.name }}:{{ m.tool_call_id }};{% endfor %}";
        let chat = ChatTemplate::new(source, "<s>", "</s>").unwrap();
        let mut named = ChatMessage::user("x");
        named.name = Some("ann".into());
        let out = chat
            .render(&[named, ChatMessage::tool("call_1", "42")], &[], true)
            .unwrap();
        assert_eq!(out, "<s>|</s>|True|True|True|user:ann:;tool::call_1;");
    }

    #[test]
    fn developer_is_kept_when_the_template_knows_it() {
        let source = "{% for m in messages %}{% if m.role == 'developer' %}D{% else %}{{ m.role }}{% endif %}{% endfor %}";
        let chat = ChatTemplate::new(source, "", "").unwrap();
        let out = chat
            .render(&[ChatMessage::new(Role::Developer, "x")], &[], false)
            .unwrap();
        assert_eq!(out, "D");
    }

    #[test]
    fn tool_call_arguments_are_dicts_in_order() {
        let source = "{% for m in messages %}{% for c in m.tool_calls %}{{ c.id }} {{ c.type }} {{ c.function.name }} \
                      {{ c.function.arguments is mapping }} {{ c.function.arguments | tojson }}\n{% endfor %}{% endfor %}";
        let chat = ChatTemplate::new(source, "", "").unwrap();
        let calls = vec![
            ToolCall {
                id: "a".into(),
                name: "f".into(),
                arguments: r#"{"z": 1, "a": [1.5, "ü"]}"#.into(),
            },
            ToolCall {
                id: "b".into(),
                name: "g".into(),
                arguments: "[1, 2]".into(),
            },
        ];
        let out = chat
            .render(&[ChatMessage::assistant_calls(None, calls)], &[], false)
            .unwrap();
        assert_eq!(
            out,
            "a function f True {\"z\": 1, \"a\": [1.5, \"ü\"]}\nb function g False \"[1, 2]\"\n"
        );
    }

    #[test]
    fn python_methods_work() {
        let source = "{{ messages[0].content.strip().split(',') | join('|') }} \
                      {{ messages[0].content.startswith('  a') }} \
                      {% for k, v in messages[0].items() %}{{ k }}{% endfor %} {{ messages[0].get('nope', 'dflt') }}";
        let chat = ChatTemplate::new(source, "", "").unwrap();
        let out = chat
            .render(&[ChatMessage::user("  a,b ")], &[], false)
            .unwrap();
        assert_eq!(out, "a|b True rolecontent dflt");
    }

    #[test]
    fn strftime_now_formats_local_time() {
        let chat = ChatTemplate::new(
            "{{ strftime_now('%Y-%m-%d') }}|{{ strftime_now('%d %b %Y') }}",
            "",
            "",
        )
        .unwrap();
        let before = chrono::Local::now().format("%Y-%m-%d").to_string();
        let out = chat.render(&[], &[], false).unwrap();
        let after = chrono::Local::now().format("%Y-%m-%d").to_string();
        let (date, human) = out.split_once('|').unwrap();
        assert!(date == before || date == after, "{out}");
        assert_eq!(human.len(), 11, "{out}");
        let bad = ChatTemplate::new("{{ strftime_now('%Q') }}", "", "").unwrap();
        assert!(matches!(
            bad.render(&[], &[], false),
            Err(TemplateError::Render { .. })
        ));
    }

    #[test]
    fn missing_content_is_none() {
        // Qwen tests `message.content` before using it, so a call-only assistant turn renders.
        let chat =
            ChatTemplate::new(&fixture("qwen2.5-coder-0.5b-instruct.jinja"), "", "").unwrap();
        let call = ToolCall {
            id: "c".into(),
            name: "f".into(),
            arguments: "{}".into(),
        };
        let out = chat
            .render(
                &[
                    ChatMessage::user("u"),
                    ChatMessage::assistant_calls(None, vec![call]),
                ],
                &[],
                false,
            )
            .unwrap();
        assert!(out.ends_with("<|im_start|>assistant\n<tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_call><|im_end|>\n"), "{out}");
        // SmolLM2 concatenates the content with `+`, which fails in Python too (str + None).
        let smol = ChatTemplate::new(&fixture("smollm2-135m-instruct.jinja"), "", "").unwrap();
        let err = smol
            .render(
                &[ChatMessage::assistant_calls(None, Vec::new())],
                &[],
                false,
            )
            .unwrap_err();
        assert!(matches!(err, TemplateError::Render { .. }), "{err:?}");
    }

    #[test]
    fn templates_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ChatTemplate>();
    }
}
