//! The realtime protocol in OpenAI's GA shape: client events in, server events out, and the
//! session they configure.
//!
//! A text frame becomes a [`ClientEvent`] through [`parse_client_event`], which checks every
//! field a client sends and answers a [`ProtocolError`] carrying OpenAI's error fields (`type`,
//! `code`, `message`, `param` and the client's `event_id`); nothing a client sends can panic.
//! The session is a [`Session`]: its state is a JSON object into which each `session.update`
//! is deep-merged and then validated into a typed [`SessionConfig`]; an update that does not
//! validate leaves the session as it was. Server events are [`ServerEvent`]s, serialized by
//! [`ServerEvent::to_value`] with a fresh `event_id`. The beta dialect is translated to and
//! from these shapes by `super::beta`; audio payloads are decoded by `super::codec`.
//!
//! What tessera does not implement is refused with a message saying so, never ignored
//! silently: function calling (non-empty `tools`, `function_call` items), transcription-only
//! sessions, image input, custom voice objects and PCM rates other than 24 kHz. What changes
//! nothing for tessera is accepted, kept and echoed: `tracing`, `truncation`, `include`,
//! `prompt`, `tool_choice` and `audio.input.noise_reduction` (tessera filters no noise).
//! `semantic_vad` is accepted and approximated by the energy VAD (see [`VadMode::Semantic`]).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};
use serde_json::{Map, Value, json};

use super::codec::{self, AudioFormat, PCM_RATE};

// ---------------------------------------------------------------------------------------------
// Identifiers
// ---------------------------------------------------------------------------------------------

/// Counts every id this process hands out; ids are unique because this never repeats.
static ID_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Two random words per process: one scrambles the counter, one tags the process.
fn id_seed() -> [u64; 2] {
    static SEED: OnceLock<[u64; 2]> = OnceLock::new();
    *SEED.get_or_init(|| {
        // `RandomState` is keyed from the OS's randomness: random words without a dependency.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let word = |salt: u64| {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u64(nanos ^ salt);
            hasher.write_u32(std::process::id());
            hasher.finish()
        };
        [word(1), word(2)]
    })
}

/// SplitMix64's finalizer: a bijection on `u64`, so distinct counters give distinct ids.
fn scramble(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `value` in base 62, always 11 digits (62^11 > 2^64).
fn base62(mut value: u64) -> String {
    const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 11];
    for slot in out.iter_mut().rev() {
        *slot = DIGITS[(value % 62) as usize];
        value /= 62;
    }
    out.iter().map(|&b| char::from(b)).collect()
}

/// A new id, `{prefix}_` and 22 base-62 digits, unique within this process and unlikely to
/// repeat across processes: `new_id("item")` gives `item_…` like OpenAI's.
pub fn new_id(prefix: &str) -> String {
    let [key, tag] = id_seed();
    let n = ID_COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}{}", base62(scramble(n ^ key)), base62(tag))
}

/// A new server event id, `event_…`.
pub fn event_id() -> String {
    new_id("event")
}

/// A new conversation item id, `item_…`.
pub fn item_id() -> String {
    new_id("item")
}

/// A new response id, `resp_…`.
pub fn response_id() -> String {
    new_id("resp")
}

/// A new session id, `sess_…`.
pub fn session_id() -> String {
    new_id("sess")
}

/// A new conversation id, `conv_…`.
pub fn conversation_id() -> String {
    new_id("conv")
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// OpenAI's realtime error object, sent in an `error` event.
///
/// `code` is one of: `invalid_json` (the frame is not a JSON object), `unknown_event_type`,
/// `missing_field`, `unknown_parameter`, `invalid_value` (a field of the wrong type or out of
/// range), `unsupported` (valid for OpenAI but not implemented by tessera), or a code the caller
/// chooses for session-state errors (e.g. `item_not_found`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    /// `invalid_request_error` for the client's mistakes, `server_error` for tessera's.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// A machine-readable code (see the type's docs).
    pub code: Option<&'static str>,
    /// What went wrong and what to send instead.
    pub message: String,
    /// The field at fault as a dotted path, e.g. `session.audio.input.format.rate`.
    pub param: Option<String>,
    /// The `event_id` of the client event that caused the error, when it could be read.
    pub event_id: Option<String>,
}

impl ProtocolError {
    /// An `invalid_request_error` with this code, param and message.
    pub fn invalid_request(
        code: &'static str,
        param: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        ProtocolError {
            kind: "invalid_request_error",
            code: Some(code),
            message: message.into(),
            param: param.map(str::to_owned),
            event_id: None,
        }
    }

    /// A `server_error`: tessera failed, not the client.
    pub fn server_error(message: impl Into<String>) -> Self {
        ProtocolError {
            kind: "server_error",
            code: None,
            message: message.into(),
            param: None,
            event_id: None,
        }
    }

    /// Tags the error with the client event it answers (no change when `event_id` is `None`).
    pub fn with_event_id(mut self, event_id: Option<String>) -> Self {
        if event_id.is_some() {
            self.event_id = event_id;
        }
        self
    }

    /// The `error` server event carrying this error.
    pub fn to_event(&self) -> ServerEvent {
        ServerEvent::Error {
            error: self.clone(),
        }
    }

    /// `invalid_value`: "Invalid value for '{param}': {detail}".
    fn invalid_value(param: &str, detail: impl std::fmt::Display) -> Self {
        Self::invalid_request(
            "invalid_value",
            Some(param),
            format!("Invalid value for '{param}': {detail}"),
        )
    }

    fn missing(param: &str) -> Self {
        Self::invalid_request(
            "missing_field",
            Some(param),
            format!("Missing required parameter: '{param}'."),
        )
    }

    fn unsupported(param: &str, message: impl Into<String>) -> Self {
        Self::invalid_request("unsupported", Some(param), message)
    }

    fn unknown_parameter(param: &str, hint: Option<&str>) -> Self {
        let mut message = format!("Unknown parameter: '{param}'.");
        if let Some(hint) = hint {
            message.push(' ');
            message.push_str(hint);
        }
        Self::invalid_request("unknown_parameter", Some(param), message)
    }

    fn wrong_type(param: &str, expected: &str, got: &Value) -> Self {
        Self::invalid_request(
            "invalid_value",
            Some(param),
            format!(
                "Invalid type for '{param}': expected {expected}, but got {}.",
                kind_of(got)
            ),
        )
    }
}

/// The JSON type of a value, for error messages.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `path.key`, or `key` at the top of an event.
fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// A JSON object under validation and its dotted path in the event, for `param`.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Obj<'a> {
    fn new(value: &'a Value, path: &str) -> Result<Self, ProtocolError> {
        match value {
            Value::Object(map) => Ok(Obj {
                map,
                path: path.to_owned(),
            }),
            other => Err(ProtocolError::wrong_type(path, "an object", other)),
        }
    }

    fn param(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// `invalid_value` for `key`: "Invalid value for '{path.key}': {detail}".
    fn invalid(&self, key: &str, detail: impl std::fmt::Display) -> ProtocolError {
        ProtocolError::invalid_value(&self.param(key), detail)
    }

    /// Refuses keys outside `known`; `hint` may add advice for a key (e.g. a beta name).
    fn allow(&self, known: &[&str], hint: fn(&str) -> Option<String>) -> Result<(), ProtocolError> {
        match self.map.keys().find(|k| !known.contains(&k.as_str())) {
            Some(key) => Err(ProtocolError::unknown_parameter(
                &self.param(key),
                hint(key).as_deref(),
            )),
            None => Ok(()),
        }
    }

    /// The value at `key`; `null` counts as absent.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Whether `key` is present, `null` included.
    fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>, ProtocolError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ProtocolError::wrong_type(
                &self.param(key),
                "a string",
                other,
            )),
        }
    }

    fn required_string(&self, key: &str) -> Result<&'a str, ProtocolError> {
        self.string(key)?
            .ok_or_else(|| ProtocolError::missing(&self.param(key)))
    }

    fn boolean(&self, key: &str) -> Result<Option<bool>, ProtocolError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(ProtocolError::wrong_type(
                &self.param(key),
                "a boolean",
                other,
            )),
        }
    }

    fn number(&self, key: &str) -> Result<Option<f64>, ProtocolError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            Some(other) => Err(ProtocolError::wrong_type(
                &self.param(key),
                "a number",
                other,
            )),
        }
    }

    /// A whole number in `min..=max`.
    fn integer(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ProtocolError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let param = self.param(key);
        let Some(n) = value.as_u64() else {
            return Err(match value {
                Value::Number(_) => ProtocolError::invalid_value(
                    &param,
                    format!("expected a whole number from {min} to {max}, got {value}."),
                ),
                other => ProtocolError::wrong_type(&param, "an integer", other),
            });
        };
        if !(min..=max).contains(&n) {
            return Err(ProtocolError::invalid_value(
                &param,
                format!("{n} is out of range; send a whole number from {min} to {max}."),
            ));
        }
        Ok(Some(n))
    }

    fn required_integer(&self, key: &str, min: u64, max: u64) -> Result<u64, ProtocolError> {
        self.integer(key, min, max)?
            .ok_or_else(|| ProtocolError::missing(&self.param(key)))
    }

    fn object(&self, key: &str) -> Result<Option<Obj<'a>>, ProtocolError> {
        self.get(key)
            .map(|value| Obj::new(value, &self.param(key)))
            .transpose()
    }

    fn array(&self, key: &str) -> Result<Option<&'a Vec<Value>>, ProtocolError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items)),
            Some(other) => Err(ProtocolError::wrong_type(
                &self.param(key),
                "an array",
                other,
            )),
        }
    }
}

/// No hint for unknown keys.
fn no_hint(_: &str) -> Option<String> {
    None
}

// ---------------------------------------------------------------------------------------------
// Session configuration
// ---------------------------------------------------------------------------------------------

/// What the model answers with. OpenAI allows exactly one: audio (with its transcript) or text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Modality {
    /// `["audio"]`: speech plus its transcript (the default).
    #[default]
    Audio,
    /// `["text"]`: text only.
    Text,
}

impl Modality {
    fn as_str(self) -> &'static str {
        match self {
            Modality::Audio => "audio",
            Modality::Text => "text",
        }
    }

    fn parse(value: &Value, param: &str) -> Result<Self, ProtocolError> {
        let Value::Array(items) = value else {
            return Err(ProtocolError::wrong_type(param, "an array", value));
        };
        let names: Vec<&str> = items.iter().filter_map(Value::as_str).collect();
        match names.as_slice() {
            _ if names.len() != items.len() => Err(ProtocolError::invalid_value(
                param,
                "every entry must be a string.",
            )),
            ["audio"] => Ok(Modality::Audio),
            ["text"] => Ok(Modality::Text),
            _ => Err(ProtocolError::invalid_value(
                param,
                "send [\"audio\"] (speech and its transcript) or [\"text\"]; both at once \
                 is not possible.",
            )),
        }
    }
}

impl Serialize for Modality {
    /// As OpenAI's one-entry list, `["audio"]` or `["text"]`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        [self.as_str()].serialize(serializer)
    }
}

/// The most tokens one response may generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MaxOutputTokens {
    /// `"inf"`: as many as the model allows (the default).
    #[default]
    Inf,
    /// A limit of at least 1.
    Limit(u32),
}

impl MaxOutputTokens {
    fn parse(value: &Value, param: &str) -> Result<Self, ProtocolError> {
        match value {
            Value::Null => Ok(MaxOutputTokens::Inf),
            Value::String(s) if s == "inf" => Ok(MaxOutputTokens::Inf),
            Value::Number(n) => match n.as_u64().and_then(|n| u32::try_from(n).ok()) {
                Some(limit) if limit >= 1 => Ok(MaxOutputTokens::Limit(limit)),
                _ => Err(ProtocolError::invalid_value(
                    param,
                    "send a whole number of at least 1, or \"inf\".",
                )),
            },
            other => Err(ProtocolError::invalid_value(
                param,
                format!("expected an integer or \"inf\", got {}.", kind_of(other)),
            )),
        }
    }
}

impl Serialize for MaxOutputTokens {
    /// `"inf"` or the number.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            MaxOutputTokens::Inf => serializer.serialize_str("inf"),
            MaxOutputTokens::Limit(n) => serializer.serialize_u32(*n),
        }
    }
}

impl Serialize for AudioFormat {
    /// OpenAI's format object: `{"type":"audio/pcm","rate":24000}`, `{"type":"audio/pcmu"}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            AudioFormat::Pcm16 { rate } => {
                json!({"type": self.wire_type(), "rate": rate}).serialize(serializer)
            }
            _ => json!({"type": self.wire_type()}).serialize(serializer),
        }
    }
}

/// Parses a GA audio format object; a missing `type` means `audio/pcm`.
fn parse_format(value: &Value, param: &str) -> Result<AudioFormat, ProtocolError> {
    let obj = Obj::new(value, param)?;
    obj.allow(&["type", "rate"], no_hint)?;
    let rate = obj.integer("rate", 0, u64::from(u32::MAX))?;
    match obj.string("type")?.unwrap_or("audio/pcm") {
        "audio/pcm" => match rate {
            None | Some(24_000) => Ok(AudioFormat::Pcm16 { rate: PCM_RATE }),
            Some(other) => Err(obj.invalid(
                "rate",
                format!(
                    "{other}; audio/pcm is 24000 Hz only. Resample to \
                     24 kHz, or use audio/pcmu or audio/pcma (8 kHz G.711)."
                ),
            )),
        },
        kind @ ("audio/pcmu" | "audio/pcma") => match rate {
            None | Some(8_000) if kind == "audio/pcmu" => Ok(AudioFormat::Pcmu),
            None | Some(8_000) => Ok(AudioFormat::Pcma),
            Some(other) => Err(obj.invalid("rate", format!("{other}; {kind} is 8000 Hz."))),
        },
        other => Err(obj.invalid(
            "type",
            format!(
                "'{other}'. Supported values are 'audio/pcm', \
                 'audio/pcmu' and 'audio/pcma'."
            ),
        )),
    }
}

/// How eager `semantic_vad` is to end the user's turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Eagerness {
    /// Waits longest.
    Low,
    /// Between the two.
    Medium,
    /// Answers soonest.
    High,
    /// OpenAI's default, the same as medium.
    #[default]
    Auto,
}

impl Eagerness {
    fn as_str(self) -> &'static str {
        match self {
            Eagerness::Low => "low",
            Eagerness::Medium => "medium",
            Eagerness::High => "high",
            Eagerness::Auto => "auto",
        }
    }

    /// The silence that ends a turn when this eagerness is approximated by the energy VAD.
    fn silence_duration_ms(self) -> u32 {
        match self {
            Eagerness::Low => 1200,
            Eagerness::Medium | Eagerness::Auto => 800,
            Eagerness::High => 400,
        }
    }
}

/// Which turn detection the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadMode {
    /// `server_vad`: energy VAD with the client's threshold, padding and silence.
    Server,
    /// `semantic_vad`. tessera has no turn-end model, so this runs the same energy VAD with
    /// OpenAI's server-VAD threshold (0.5) and padding (300 ms) and a silence chosen by
    /// eagerness: 1200 ms for low, 800 ms for medium and auto, 400 ms for high. The session
    /// still reports `semantic_vad` with the client's eagerness.
    Semantic {
        /// The eagerness the client chose.
        eagerness: Eagerness,
    },
}

/// Server-side turn detection: when the user starts and stops speaking.
///
/// The numeric fields are always the values to run: for [`VadMode::Semantic`] they are derived
/// from the eagerness.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnDetection {
    /// Which detection the client asked for.
    pub mode: VadMode,
    /// Speech probability at or above which audio counts as speech, 0.0 to 1.0 (default 0.5).
    pub threshold: f64,
    /// Audio kept before the detected start of speech (default 300 ms).
    pub prefix_padding_ms: u32,
    /// Silence that ends the turn (default 500 ms).
    pub silence_duration_ms: u32,
    /// Whether a response starts by itself when the turn ends (default true).
    pub create_response: bool,
    /// Whether speech cancels a response in progress (default true).
    pub interrupt_response: bool,
    /// Server VAD only: after this long without speech following a response's audio, respond
    /// anyway (5000 to 30000 ms; default none).
    pub idle_timeout_ms: Option<u32>,
}

impl TurnDetection {
    /// OpenAI's documented server-VAD defaults: threshold 0.5, 300 ms of prefix padding, 500 ms
    /// of silence, responses created and interrupted automatically, no idle timeout.
    pub fn server_vad() -> Self {
        TurnDetection {
            mode: VadMode::Server,
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
            create_response: true,
            interrupt_response: true,
            idle_timeout_ms: None,
        }
    }

    /// Semantic VAD at this eagerness, approximated as [`VadMode::Semantic`] describes.
    pub fn semantic_vad(eagerness: Eagerness) -> Self {
        TurnDetection {
            mode: VadMode::Semantic { eagerness },
            silence_duration_ms: eagerness.silence_duration_ms(),
            ..Self::server_vad()
        }
    }

    fn parse(obj: &Obj<'_>) -> Result<Self, ProtocolError> {
        match obj.string("type")?.unwrap_or("server_vad") {
            "server_vad" => {
                obj.allow(
                    &[
                        "type",
                        "threshold",
                        "prefix_padding_ms",
                        "silence_duration_ms",
                        "create_response",
                        "interrupt_response",
                        "idle_timeout_ms",
                    ],
                    no_hint,
                )?;
                let defaults = Self::server_vad();
                let threshold = match obj.number("threshold")? {
                    Some(t) if !(0.0..=1.0).contains(&t) => {
                        return Err(obj
                            .invalid("threshold", format!("{t}; send a number from 0.0 to 1.0.")));
                    }
                    Some(t) => t,
                    None => defaults.threshold,
                };
                let ms = |key: &str, default: u32| -> Result<u32, ProtocolError> {
                    Ok(obj.integer(key, 0, 60_000)?.map_or(default, |n| n as u32))
                };
                Ok(TurnDetection {
                    mode: VadMode::Server,
                    threshold,
                    prefix_padding_ms: ms("prefix_padding_ms", defaults.prefix_padding_ms)?,
                    silence_duration_ms: ms("silence_duration_ms", defaults.silence_duration_ms)?,
                    create_response: obj.boolean("create_response")?.unwrap_or(true),
                    interrupt_response: obj.boolean("interrupt_response")?.unwrap_or(true),
                    idle_timeout_ms: obj
                        .integer("idle_timeout_ms", 5_000, 30_000)?
                        .map(|n| n as u32),
                })
            }
            "semantic_vad" => {
                obj.allow(
                    &["type", "eagerness", "create_response", "interrupt_response"],
                    |key| {
                        matches!(
                            key,
                            "threshold"
                                | "prefix_padding_ms"
                                | "silence_duration_ms"
                                | "idle_timeout_ms"
                        )
                        .then(|| {
                            "That parameter is for server_vad; semantic_vad takes eagerness."
                                .to_owned()
                        })
                    },
                )?;
                let eagerness = match obj.string("eagerness")? {
                    None | Some("auto") => Eagerness::Auto,
                    Some("low") => Eagerness::Low,
                    Some("medium") => Eagerness::Medium,
                    Some("high") => Eagerness::High,
                    Some(other) => {
                        return Err(obj.invalid(
                            "eagerness",
                            format!(
                                "'{other}'. Supported values are 'low', \
                                 'medium', 'high' and 'auto'."
                            ),
                        ));
                    }
                };
                Ok(TurnDetection {
                    create_response: obj.boolean("create_response")?.unwrap_or(true),
                    interrupt_response: obj.boolean("interrupt_response")?.unwrap_or(true),
                    ..Self::semantic_vad(eagerness)
                })
            }
            other => Err(obj.invalid(
                "type",
                format!(
                    "'{other}'. Supported values are 'server_vad' and \
                     'semantic_vad'; send null to turn detection off (push-to-talk)."
                ),
            )),
        }
    }

    fn to_value(self) -> Value {
        match self.mode {
            VadMode::Server => json!({
                "type": "server_vad",
                "threshold": self.threshold,
                "prefix_padding_ms": self.prefix_padding_ms,
                "silence_duration_ms": self.silence_duration_ms,
                "idle_timeout_ms": self.idle_timeout_ms,
                "create_response": self.create_response,
                "interrupt_response": self.interrupt_response,
            }),
            VadMode::Semantic { eagerness } => json!({
                "type": "semantic_vad",
                "eagerness": eagerness.as_str(),
                "create_response": self.create_response,
                "interrupt_response": self.interrupt_response,
            }),
        }
    }
}

/// Transcription of the user's audio, run after each commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transcription {
    /// The transcription model; `None` lets the server choose.
    pub model: Option<String>,
    /// The input language (ISO-639-1), if the client knows it.
    pub language: Option<String>,
    /// Text to guide the transcriber.
    pub prompt: Option<String>,
}

impl Transcription {
    fn parse(obj: &Obj<'_>) -> Result<Self, ProtocolError> {
        // `delay`, `keywords` and `languages` guide particular OpenAI models: accepted, unused.
        obj.allow(
            &[
                "model",
                "language",
                "prompt",
                "delay",
                "keywords",
                "languages",
            ],
            no_hint,
        )?;
        Ok(Transcription {
            model: obj.string("model")?.map(str::to_owned),
            language: obj.string("language")?.map(str::to_owned),
            prompt: obj.string("prompt")?.map(str::to_owned),
        })
    }

    fn to_value(&self) -> Value {
        json!({"model": self.model, "language": self.language, "prompt": self.prompt})
    }
}

/// `session.audio.input`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputAudioConfig {
    /// The format of `input_audio_buffer.append` and `input_audio` content.
    pub format: AudioFormat,
    /// Transcription of committed audio; `None` is off (the default).
    pub transcription: Option<Transcription>,
    /// `null` or `{"type": "near_field" | "far_field"}`: echoed, but tessera filters no noise.
    pub noise_reduction: Value,
    /// `None` is push-to-talk: the client commits and asks for responses itself.
    pub turn_detection: Option<TurnDetection>,
}

/// `session.audio.output`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputAudioConfig {
    /// The format of `response.output_audio.delta`.
    pub format: AudioFormat,
    /// The voice to speak with.
    pub voice: String,
    /// Speaking speed, 0.25 to 1.5 (default 1.0).
    pub speed: f64,
}

/// A realtime session's configuration, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionConfig {
    /// The model the session runs.
    pub model: String,
    /// The system instructions prepended to every response.
    pub instructions: String,
    /// What responses are made of.
    pub output_modality: Modality,
    /// Input audio.
    pub input: InputAudioConfig,
    /// Output audio.
    pub output: OutputAudioConfig,
    /// The token limit of one response.
    pub max_output_tokens: MaxOutputTokens,
    /// `"auto"`, `"none"`, `"required"` or a tool object: echoed; there are no tools to choose.
    pub tool_choice: Value,
    /// Echoed, unused: tessera keeps no traces dashboard.
    pub tracing: Value,
    /// Echoed, unused: how OpenAI truncates long conversations.
    pub truncation: Value,
    /// Echoed, unused: extra fields for server events.
    pub include: Value,
    /// Echoed, unused: a stored prompt template.
    pub prompt: Value,
}

/// Keys of a GA session object, with what is accepted but ignored.
const SESSION_KEYS: &[&str] = &[
    "type",
    "model",
    "instructions",
    "output_modalities",
    "audio",
    "tools",
    "tool_choice",
    "max_output_tokens",
    "tracing",
    "truncation",
    "include",
    "prompt",
    // Accepted and ignored: reasoning models only.
    "reasoning",
    "parallel_tool_calls",
    // Accepted and ignored, so a client may send back the session it was given.
    "id",
    "object",
    "expires_at",
];

/// Advice for a beta session key sent to the GA endpoint.
fn beta_session_hint(key: &str) -> Option<String> {
    let ga = match key {
        "modalities" => "output_modalities",
        "voice" => "audio.output.voice",
        "speed" => "audio.output.speed",
        "input_audio_format" => "audio.input.format",
        "output_audio_format" => "audio.output.format",
        "input_audio_transcription" => "audio.input.transcription",
        "input_audio_noise_reduction" => "audio.input.noise_reduction",
        "turn_detection" => "audio.input.turn_detection",
        "max_response_output_tokens" => "max_output_tokens",
        "temperature" => {
            return Some("The GA realtime API has no temperature; leave it out.".into());
        }
        _ => return None,
    };
    Some(format!(
        "That is a beta parameter: use session.{ga}, or connect with the header \
         'OpenAI-Beta: realtime=v1' for the beta protocol."
    ))
}

/// The refusal for a non-empty `tools`.
const NO_TOOLS: &str = "function calling is not supported by tessera's realtime endpoint; send \
                        an empty tools list (or none)";

impl SessionConfig {
    /// OpenAI's defaults around `model`: audio output, 24 kHz PCM both ways, server VAD with
    /// its defaults, no transcription, voice `alloy` at speed 1.0, no token limit, no
    /// instructions.
    pub fn new(model: impl Into<String>) -> Self {
        SessionConfig {
            model: model.into(),
            instructions: String::new(),
            output_modality: Modality::Audio,
            input: InputAudioConfig {
                format: AudioFormat::default(),
                transcription: None,
                noise_reduction: Value::Null,
                turn_detection: Some(TurnDetection::server_vad()),
            },
            output: OutputAudioConfig {
                format: AudioFormat::default(),
                voice: "alloy".to_owned(),
                speed: 1.0,
            },
            max_output_tokens: MaxOutputTokens::Inf,
            tool_choice: json!("auto"),
            tracing: Value::Null,
            truncation: json!("auto"),
            include: Value::Null,
            prompt: Value::Null,
        }
    }

    /// Validates a whole GA session object (params are named `session.…`).
    ///
    /// Fields absent or `null` take [`SessionConfig::new`]'s defaults, except
    /// `audio.input.turn_detection`, where `null` turns detection off; `model` is required.
    pub fn from_value(value: &Value) -> Result<Self, ProtocolError> {
        let obj = Obj::new(value, "session")?;
        obj.allow(SESSION_KEYS, beta_session_hint)?;
        match obj.string("type")? {
            None | Some("realtime") => {}
            Some("transcription") => {
                return Err(ProtocolError::unsupported(
                    "session.type",
                    "only realtime sessions are supported: set session.type to 'realtime'; \
                     for transcription alone use POST /v1/audio/transcriptions",
                ));
            }
            Some(other) => {
                return Err(ProtocolError::invalid_value(
                    "session.type",
                    format!("'{other}'. Send 'realtime'."),
                ));
            }
        }
        let model = obj.required_string("model")?;
        if model.is_empty() {
            return Err(ProtocolError::invalid_value(
                "session.model",
                "send the name of a model.",
            ));
        }
        let mut config = SessionConfig::new(model);
        if let Some(instructions) = obj.string("instructions")? {
            config.instructions = instructions.to_owned();
        }
        if let Some(modalities) = obj.get("output_modalities") {
            config.output_modality = Modality::parse(modalities, "session.output_modalities")?;
        }
        if let Some(tools) = obj.array("tools")?
            && !tools.is_empty()
        {
            return Err(ProtocolError::unsupported("session.tools", NO_TOOLS));
        }
        if let Some(choice) = obj.get("tool_choice") {
            check_tool_choice(choice, "session.tool_choice")?;
            config.tool_choice = choice.clone();
        }
        if let Some(max) = obj.get("max_output_tokens") {
            config.max_output_tokens = MaxOutputTokens::parse(max, "session.max_output_tokens")?;
        }
        config.tracing = passthrough(
            &obj,
            "tracing",
            Value::Null,
            |v| v.as_str() == Some("auto") || v.is_object(),
            "\"auto\", an object or null",
        )?;
        config.truncation = passthrough(
            &obj,
            "truncation",
            json!("auto"),
            |v| matches!(v.as_str(), Some("auto" | "disabled")) || v.is_object(),
            "\"auto\", \"disabled\" or an object",
        )?;
        config.include = passthrough(
            &obj,
            "include",
            Value::Null,
            |v| v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
            "an array of strings or null",
        )?;
        config.prompt = passthrough(
            &obj,
            "prompt",
            Value::Null,
            Value::is_object,
            "an object or null",
        )?;

        if let Some(audio) = obj.object("audio")? {
            audio.allow(&["input", "output"], no_hint)?;
            if let Some(input) = audio.object("input")? {
                parse_input_audio(&input, &mut config.input)?;
            }
            if let Some(output) = audio.object("output")? {
                parse_output_audio(&output, &mut config.output)?;
            }
        }
        Ok(config)
    }

    /// The session object as JSON, every field present (without `id` and `object`).
    pub fn to_value(&self) -> Value {
        json!({
            "type": "realtime",
            "model": self.model,
            "output_modalities": self.output_modality,
            "instructions": self.instructions,
            "tools": [],
            "tool_choice": self.tool_choice,
            "max_output_tokens": self.max_output_tokens,
            "tracing": self.tracing,
            "truncation": self.truncation,
            "prompt": self.prompt,
            "include": self.include,
            "audio": {
                "input": {
                    "format": self.input.format,
                    "transcription": self.input.transcription.as_ref().map(Transcription::to_value),
                    "noise_reduction": self.input.noise_reduction,
                    "turn_detection": self.input.turn_detection.map(TurnDetection::to_value),
                },
                "output": {
                    "format": self.output.format,
                    "voice": self.output.voice,
                    "speed": self.output.speed,
                },
            },
        })
    }
}

/// A field tessera keeps and echoes but does not act on: `default` when absent or null, the
/// value itself when `valid` accepts it.
fn passthrough(
    obj: &Obj<'_>,
    key: &str,
    default: Value,
    valid: fn(&Value) -> bool,
    expected: &str,
) -> Result<Value, ProtocolError> {
    match obj.get(key) {
        None => Ok(default),
        Some(value) if valid(value) => Ok(value.clone()),
        Some(value) => {
            Err(obj.invalid(key, format!("expected {expected}, got {}.", kind_of(value))))
        }
    }
}

/// `tool_choice`: one of the string modes, or an object naming a tool.
fn check_tool_choice(value: &Value, param: &str) -> Result<(), ProtocolError> {
    match value {
        Value::String(s) if matches!(s.as_str(), "auto" | "none" | "required") => Ok(()),
        Value::Object(_) => Ok(()),
        _ => Err(ProtocolError::invalid_value(
            param,
            "send 'auto', 'none' or 'required'.",
        )),
    }
}

fn parse_input_audio(obj: &Obj<'_>, input: &mut InputAudioConfig) -> Result<(), ProtocolError> {
    obj.allow(
        &[
            "format",
            "transcription",
            "noise_reduction",
            "turn_detection",
        ],
        no_hint,
    )?;
    if let Some(format) = obj.get("format") {
        input.format = parse_format(format, &obj.param("format"))?;
    }
    if obj.has("transcription") {
        input.transcription = obj
            .object("transcription")?
            .map(|t| Transcription::parse(&t))
            .transpose()?;
    }
    if obj.has("noise_reduction") {
        input.noise_reduction = match obj.object("noise_reduction")? {
            None => Value::Null,
            Some(nr) => {
                // `strength` is newer OpenAI tuning: accepted with the type, unused.
                nr.allow(&["type", "strength"], no_hint)?;
                match nr.string("type")? {
                    None | Some("near_field" | "far_field") => {}
                    Some(other) => {
                        return Err(nr.invalid(
                            "type",
                            format!(
                                "'{other}'. Supported values are \
                                 'near_field' and 'far_field'."
                            ),
                        ));
                    }
                }
                nr.number("strength")?;
                Value::Object(nr.map.clone())
            }
        };
    }
    if obj.has("turn_detection") {
        input.turn_detection = obj
            .object("turn_detection")?
            .map(|t| TurnDetection::parse(&t))
            .transpose()?;
    }
    Ok(())
}

fn parse_output_audio(obj: &Obj<'_>, output: &mut OutputAudioConfig) -> Result<(), ProtocolError> {
    obj.allow(&["format", "voice", "speed"], no_hint)?;
    if let Some(format) = obj.get("format") {
        output.format = parse_format(format, &obj.param("format"))?;
    }
    if let Some(voice) = parse_voice(obj)? {
        output.voice = voice;
    }
    if let Some(speed) = obj.number("speed")? {
        if !(0.25..=1.5).contains(&speed) {
            return Err(obj.invalid("speed", format!("{speed}; send a number from 0.25 to 1.5.")));
        }
        output.speed = speed;
    }
    Ok(())
}

/// A voice name; OpenAI's custom voice objects (`{"id": …}`) are refused.
fn parse_voice(obj: &Obj<'_>) -> Result<Option<String>, ProtocolError> {
    match obj.get("voice") {
        None => Ok(None),
        Some(Value::String(name)) if !name.is_empty() => Ok(Some(name.clone())),
        Some(Value::Object(_)) => Err(ProtocolError::unsupported(
            &obj.param("voice"),
            "custom voice objects are not supported by tessera; send a voice name as a string",
        )),
        Some(other) => Err(ProtocolError::wrong_type(
            &obj.param("voice"),
            "a voice name",
            other,
        )),
    }
}

/// Merges `patch` into `target`: objects merge key by key, recursively; anything else,
/// `null` included, replaces. Two objects whose `type` fields differ (a format or a turn
/// detection of another kind) do not merge: the patch replaces the whole object, so no field
/// of the old kind survives into the new one.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch))
            if match (target.get("type"), patch.get("type")) {
                (Some(old), Some(new)) => old == new,
                _ => true,
            } =>
        {
            for (key, value) in patch {
                match target.get_mut(key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        target.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}

/// A live session: its id, its configuration, and the JSON state updates merge into.
#[derive(Debug, Clone)]
pub struct Session {
    id: String,
    state: Value,
    config: SessionConfig,
    voice_locked: bool,
}

impl Session {
    /// A session with a fresh `sess_…` id and this configuration (the server's defaults).
    pub fn new(defaults: SessionConfig) -> Self {
        Session {
            id: session_id(),
            state: defaults.to_value(),
            config: defaults,
            voice_locked: false,
        }
    }

    /// The session's id.
    #[cfg(test)]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The current configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Applies a `session.update`'s `session` object: deep-merges it into the current state
    /// (see [`merge`]) and validates the result. On error nothing changes; the error names the
    /// param at fault (`session.…`) and has no `event_id` (add it with
    /// [`ProtocolError::with_event_id`]).
    pub fn update(&mut self, patch: &Value) -> Result<(), ProtocolError> {
        if !patch.is_object() {
            return Err(ProtocolError::wrong_type("session", "an object", patch));
        }
        let mut merged = self.state.clone();
        merge(&mut merged, patch);
        let config = SessionConfig::from_value(&merged)?;
        if self.voice_locked && config.output.voice != self.config.output.voice {
            return Err(ProtocolError::invalid_request(
                "cannot_update_voice",
                Some("session.audio.output.voice"),
                "the voice cannot be changed once the model has responded with audio in this \
                 session",
            ));
        }
        self.state = config.to_value();
        self.config = config;
        Ok(())
    }

    /// Freezes the voice, as OpenAI does once the model has answered with audio: later
    /// updates that change it are refused.
    pub fn lock_voice(&mut self) {
        self.voice_locked = true;
    }

    /// The full session object sent in `session.created` and `session.updated`:
    /// `"object": "realtime.session"`, the id, and every field with its current value.
    pub fn to_wire(&self) -> Value {
        let mut wire = Map::new();
        wire.insert("object".to_owned(), json!("realtime.session"));
        wire.insert("id".to_owned(), json!(self.id));
        if let Value::Object(state) = self.config.to_value() {
            wire.extend(state);
        }
        Value::Object(wire)
    }
}

// ---------------------------------------------------------------------------------------------
// Conversation items
// ---------------------------------------------------------------------------------------------

/// Who a message is from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The person talking.
    User,
    /// The model.
    Assistant,
    /// Extra instructions.
    System,
}

/// Whether an item is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// Done.
    Completed,
    /// Stopped early (cancelled, truncated or out of tokens).
    Incomplete,
    /// Still being generated.
    InProgress,
}

/// One part of a message's content, serialized as OpenAI's GA content object.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart {
    /// User or system text.
    InputText {
        /// The text.
        text: String,
    },
    /// User audio, in the session's input format. The bytes never go back on the wire.
    InputAudio {
        /// The raw audio bytes (base64-decoded), if the client sent any; decode them with
        /// `codec::decode_samples` and the session's input format.
        #[serde(skip)]
        audio: Option<Vec<u8>>,
        /// What was said, once known.
        transcript: Option<String>,
    },
    /// Assistant text (`text` in the beta protocol).
    OutputText {
        /// The text.
        text: String,
    },
    /// Assistant speech, by its transcript (`audio` in the beta protocol).
    OutputAudio {
        /// What was said.
        transcript: String,
    },
}

/// A message in the conversation, serialized as OpenAI's GA `realtime.item`.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// `item_…`, or the id the client chose.
    pub id: String,
    /// Whether it is finished.
    pub status: ItemStatus,
    /// Who it is from.
    pub role: Role,
    /// What it says.
    pub content: Vec<ContentPart>,
}

impl Serialize for Item {
    /// `{"id", "object": "realtime.item", "type": "message", "status", "role", "content"}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            id: &'a str,
            object: &'static str,
            #[serde(rename = "type")]
            kind: &'static str,
            status: ItemStatus,
            role: Role,
            content: &'a [ContentPart],
        }
        Wire {
            id: &self.id,
            object: "realtime.item",
            kind: "message",
            status: self.status,
            role: self.role,
            content: &self.content,
        }
        .serialize(serializer)
    }
}

/// The refusal for function-call items.
const NO_FUNCTION_ITEMS: &str = "function calling is not supported by tessera's realtime \
                                 endpoint: only message items can be created";

/// Parses a client's conversation item. Only messages are accepted; `status` and `object` are
/// checked and ignored (a created item is complete). A missing `type` means `message`, a
/// missing `id` gets a fresh one.
fn parse_item(value: &Value, path: &str) -> Result<Item, ProtocolError> {
    let obj = Obj::new(value, path)?;
    match obj.string("type")?.unwrap_or("message") {
        "message" => {}
        "function_call"
        | "function_call_output"
        | "mcp_call"
        | "mcp_list_tools"
        | "mcp_approval_request"
        | "mcp_approval_response" => {
            return Err(ProtocolError::unsupported(
                &obj.param("type"),
                NO_FUNCTION_ITEMS,
            ));
        }
        other => {
            return Err(obj.invalid(
                "type",
                format!("'{other}'. Only 'message' items can be created."),
            ));
        }
    }
    obj.allow(
        &["id", "type", "object", "status", "role", "content"],
        no_hint,
    )?;
    let id = match obj.string("id")? {
        Some("") => {
            return Err(obj.invalid(
                "id",
                "it must not be empty; leave it out to get a generated id.",
            ));
        }
        Some(id) => id.to_owned(),
        None => item_id(),
    };
    match obj.string("object")? {
        None | Some("realtime.item") => {}
        Some(other) => {
            return Err(obj.invalid(
                "object",
                format!("'{other}'; it is always 'realtime.item'."),
            ));
        }
    }
    match obj.string("status")? {
        None | Some("completed" | "incomplete" | "in_progress") => {}
        Some(other) => {
            return Err(obj.invalid(
                "status",
                format!(
                    "'{other}'. Supported values are 'completed', \
                     'incomplete' and 'in_progress'."
                ),
            ));
        }
    }
    let role = match obj.required_string("role")? {
        "user" => Role::User,
        "assistant" => Role::Assistant,
        "system" => Role::System,
        other => {
            return Err(obj.invalid(
                "role",
                format!(
                    "'{other}'. Supported values are 'user', \
                     'assistant' and 'system'."
                ),
            ));
        }
    };
    let parts = obj
        .array("content")?
        .ok_or_else(|| ProtocolError::missing(&obj.param("content")))?;
    let content = parts
        .iter()
        .enumerate()
        .map(|(i, part)| parse_content(part, &format!("{}[{i}]", obj.param("content")), role))
        .collect::<Result<_, _>>()?;
    Ok(Item {
        id,
        status: ItemStatus::Completed,
        role,
        content,
    })
}

/// Parses one content part, checking its type against the role.
fn parse_content(value: &Value, path: &str, role: Role) -> Result<ContentPart, ProtocolError> {
    let obj = Obj::new(value, path)?;
    let kind = obj.required_string("type")?;
    let allowed: &[&str] = match role {
        Role::User => &["input_text", "input_audio"],
        Role::System => &["input_text"],
        Role::Assistant => &["output_text", "text", "output_audio", "audio"],
    };
    if kind == "input_image" {
        return Err(ProtocolError::unsupported(
            &obj.param("type"),
            "image input is not supported by tessera's realtime endpoint",
        ));
    }
    if !allowed.contains(&kind) {
        let role_name = match role {
            Role::User => "user",
            Role::System => "system",
            Role::Assistant => "assistant",
        };
        return Err(obj.invalid(
            "type",
            format!(
                "'{kind}' is not a {role_name} content type; send one of: {}.",
                allowed.join(", ")
            ),
        ));
    }
    match kind {
        "input_text" | "output_text" | "text" => {
            obj.allow(&["type", "text"], no_hint)?;
            let text = obj.required_string("text")?.to_owned();
            Ok(if kind == "input_text" {
                ContentPart::InputText { text }
            } else {
                ContentPart::OutputText { text }
            })
        }
        "input_audio" => {
            obj.allow(&["type", "audio", "transcript"], no_hint)?;
            let audio = obj
                .string("audio")?
                .map(|text| {
                    codec::decode_base64(text).map_err(|e| {
                        ProtocolError::invalid_value(&obj.param("audio"), e.to_string())
                    })
                })
                .transpose()?;
            Ok(ContentPart::InputAudio {
                audio,
                transcript: obj.string("transcript")?.map(str::to_owned),
            })
        }
        _ => {
            if obj.has("audio") {
                return Err(ProtocolError::unsupported(
                    &obj.param("audio"),
                    "assistant audio cannot be created by the client; send its transcript",
                ));
            }
            obj.allow(&["type", "transcript"], no_hint)?;
            Ok(ContentPart::OutputAudio {
                transcript: obj.required_string("transcript")?.to_owned(),
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------------------------

/// Where a response's output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseConversation {
    /// `auto`: into the default conversation (the default).
    #[default]
    Auto,
    /// `none`: out of band; the output is not added to the conversation.
    None,
}

/// One entry of `response.input`.
#[derive(Debug, Clone, PartialEq)]
pub enum ResponseInput {
    /// A message given inline.
    Item(Item),
    /// An item of the conversation, by id (`{"type": "item_reference", "id": …}`).
    Reference(String),
}

/// `response.create`'s optional `response` object: overrides of the session for one
/// response. `None` fields fall back to the session (see [`ResponseCreateParams::resolve`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseCreateParams {
    /// Instructions for this response instead of the session's.
    pub instructions: Option<String>,
    /// The modality for this response.
    pub output_modality: Option<Modality>,
    /// The token limit for this response.
    pub max_output_tokens: Option<MaxOutputTokens>,
    /// The output audio format for this response.
    pub output_format: Option<AudioFormat>,
    /// The voice for this response.
    pub voice: Option<String>,
    /// Where the output goes.
    pub conversation: ResponseConversation,
    /// A context of its own instead of the conversation (`[]` is an empty context).
    pub input: Option<Vec<ResponseInput>>,
    /// Up to 16 string pairs echoed in the response object.
    pub metadata: Option<Map<String, Value>>,
}

/// A response's settings once the session's defaults are filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseConfig {
    /// The system instructions.
    pub instructions: String,
    /// Audio or text.
    pub output_modality: Modality,
    /// The token limit.
    pub max_output_tokens: MaxOutputTokens,
    /// The output audio format.
    pub output_format: AudioFormat,
    /// The voice.
    pub voice: String,
    /// Where the output goes.
    pub conversation: ResponseConversation,
    /// A context of its own, if given.
    pub input: Option<Vec<ResponseInput>>,
    /// Echoed in the response object.
    pub metadata: Option<Map<String, Value>>,
}

impl ResponseCreateParams {
    fn parse(obj: &Obj<'_>) -> Result<Self, ProtocolError> {
        obj.allow(
            &[
                "instructions",
                "output_modalities",
                "max_output_tokens",
                "audio",
                "conversation",
                "input",
                "metadata",
                "tools",
                "tool_choice",
                // Accepted and ignored.
                "prompt",
                "reasoning",
                "parallel_tool_calls",
            ],
            |key| match key {
                "modalities"
                | "voice"
                | "output_audio_format"
                | "max_response_output_tokens"
                | "temperature" => Some(
                    "That is a beta parameter: see the GA response.create, or connect with the \
                     header 'OpenAI-Beta: realtime=v1' for the beta protocol."
                        .to_owned(),
                ),
                _ => None,
            },
        )?;
        let mut params = ResponseCreateParams {
            instructions: obj.string("instructions")?.map(str::to_owned),
            ..Self::default()
        };
        if let Some(modalities) = obj.get("output_modalities") {
            params.output_modality = Some(Modality::parse(
                modalities,
                &obj.param("output_modalities"),
            )?);
        }
        if let Some(max) = obj.get("max_output_tokens") {
            params.max_output_tokens = Some(MaxOutputTokens::parse(
                max,
                &obj.param("max_output_tokens"),
            )?);
        }
        if let Some(audio) = obj.object("audio")? {
            audio.allow(&["output"], no_hint)?;
            if let Some(output) = audio.object("output")? {
                output.allow(&["format", "voice"], no_hint)?;
                if let Some(format) = output.get("format") {
                    params.output_format = Some(parse_format(format, &output.param("format"))?);
                }
                params.voice = parse_voice(&output)?;
            }
        }
        params.conversation = match obj.string("conversation")? {
            None | Some("auto") => ResponseConversation::Auto,
            Some("none") => ResponseConversation::None,
            Some(other) => {
                return Err(obj.invalid(
                    "conversation",
                    format!("'{other}'. Supported values are 'auto' and 'none'."),
                ));
            }
        };
        if let Some(items) = obj.array("input")? {
            let path = obj.param("input");
            params.input = Some(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| parse_response_input(item, &format!("{path}[{i}]")))
                    .collect::<Result<_, _>>()?,
            );
        }
        if let Some(metadata) = obj.object("metadata")? {
            if let Some((key, value)) = metadata.map.iter().find(|(_, v)| !v.is_string()) {
                return Err(ProtocolError::wrong_type(
                    &metadata.param(key),
                    "a string",
                    value,
                ));
            }
            params.metadata = Some(metadata.map.clone());
        }
        if let Some(tools) = obj.array("tools")?
            && !tools.is_empty()
        {
            return Err(ProtocolError::unsupported(&obj.param("tools"), NO_TOOLS));
        }
        if let Some(choice) = obj.get("tool_choice") {
            check_tool_choice(choice, &obj.param("tool_choice"))?;
        }
        Ok(params)
    }

    /// Fills what this response does not set from the session.
    pub fn resolve(self, session: &SessionConfig) -> ResponseConfig {
        ResponseConfig {
            instructions: self
                .instructions
                .unwrap_or_else(|| session.instructions.clone()),
            output_modality: self.output_modality.unwrap_or(session.output_modality),
            max_output_tokens: self.max_output_tokens.unwrap_or(session.max_output_tokens),
            output_format: self.output_format.unwrap_or(session.output.format),
            voice: self.voice.unwrap_or_else(|| session.output.voice.clone()),
            conversation: self.conversation,
            input: self.input,
            metadata: self.metadata,
        }
    }
}

/// An entry of `response.input`: an item reference (`{"type": "item_reference", "id"}`, or
/// an object with only an `id`) or an inline message.
fn parse_response_input(value: &Value, path: &str) -> Result<ResponseInput, ProtocolError> {
    let obj = Obj::new(value, path)?;
    let is_reference =
        obj.string("type")? == Some("item_reference") || (obj.map.len() == 1 && obj.has("id"));
    if is_reference {
        obj.allow(&["type", "id"], no_hint)?;
        return Ok(ResponseInput::Reference(
            obj.required_string("id")?.to_owned(),
        ));
    }
    parse_item(value, path).map(ResponseInput::Item)
}

/// A response's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseStatus {
    /// Being generated.
    InProgress,
    /// Finished.
    Completed,
    /// Cancelled by the client or by detected speech.
    Cancelled,
    /// Stopped early, e.g. at the token limit.
    Incomplete,
    /// Failed.
    Failed,
}

/// Why a response was cancelled or is incomplete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusReason {
    /// The user started speaking (server VAD with `interrupt_response`).
    TurnDetected,
    /// The client sent `response.cancel`.
    ClientCancelled,
    /// The token limit was reached.
    MaxOutputTokens,
}

/// The error behind a failed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusError {
    /// The error type, e.g. `server_error`.
    #[serde(rename = "type")]
    pub kind: String,
    /// A code, if any.
    pub code: Option<String>,
}

/// `status_details` of a finished response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusDetails {
    /// The status these details explain.
    #[serde(rename = "type")]
    pub kind: ResponseStatus,
    /// Why it was cancelled or is incomplete.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<StatusReason>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StatusError>,
}

/// Token counts of one response, as OpenAI reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Input plus output.
    pub total_tokens: u64,
    /// Tokens read.
    pub input_tokens: u64,
    /// Tokens generated.
    pub output_tokens: u64,
    /// Input by kind.
    pub input_token_details: InputTokenDetails,
    /// Output by kind.
    pub output_token_details: OutputTokenDetails,
}

/// Input tokens by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct InputTokenDetails {
    /// Text tokens.
    pub text_tokens: u64,
    /// Audio tokens.
    pub audio_tokens: u64,
    /// Image tokens (always 0 here).
    pub image_tokens: u64,
    /// Tokens served from a prompt cache.
    pub cached_tokens: u64,
    /// Cached tokens by kind.
    pub cached_tokens_details: CachedTokenDetails,
}

/// Cached input tokens by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CachedTokenDetails {
    /// Text tokens.
    pub text_tokens: u64,
    /// Audio tokens.
    pub audio_tokens: u64,
    /// Image tokens.
    pub image_tokens: u64,
}

/// Output tokens by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OutputTokenDetails {
    /// Text tokens.
    pub text_tokens: u64,
    /// Audio tokens.
    pub audio_tokens: u64,
}

impl Usage {
    /// Usage from text and audio token counts, totals computed.
    #[cfg(test)]
    pub fn new(input_text: u64, input_audio: u64, output_text: u64, output_audio: u64) -> Self {
        let input = input_text + input_audio;
        let output = output_text + output_audio;
        Usage {
            total_tokens: input + output,
            input_tokens: input,
            output_tokens: output,
            input_token_details: InputTokenDetails {
                text_tokens: input_text,
                audio_tokens: input_audio,
                ..InputTokenDetails::default()
            },
            output_token_details: OutputTokenDetails {
                text_tokens: output_text,
                audio_tokens: output_audio,
            },
        }
    }
}

/// A response, serialized as OpenAI's `realtime.response`.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    /// `resp_…`.
    pub id: String,
    /// Where it stands.
    pub status: ResponseStatus,
    /// Why it ended as it did; `None` while in progress and when completed.
    pub status_details: Option<StatusDetails>,
    /// The items generated.
    pub output: Vec<Item>,
    /// The conversation it writes to; `None` for an out-of-band response.
    pub conversation_id: Option<String>,
    /// Audio or text.
    pub output_modality: Modality,
    /// The token limit.
    pub max_output_tokens: MaxOutputTokens,
    /// The output audio format.
    pub output_format: AudioFormat,
    /// The voice.
    pub voice: String,
    /// Token counts, once done.
    pub usage: Option<Usage>,
    /// The client's metadata.
    pub metadata: Option<Map<String, Value>>,
}

impl Response {
    /// A new in-progress response with a fresh `resp_…` id. `conversation_id` is the
    /// session's conversation, or `None` for `conversation: "none"`.
    pub fn new(config: &ResponseConfig, conversation_id: Option<String>) -> Self {
        Response {
            id: response_id(),
            status: ResponseStatus::InProgress,
            status_details: None,
            output: Vec::new(),
            conversation_id,
            output_modality: config.output_modality,
            max_output_tokens: config.max_output_tokens,
            output_format: config.output_format,
            voice: config.voice.clone(),
            usage: None,
            metadata: config.metadata.clone(),
        }
    }

    /// Ends the response: `Completed` clears the details, `Cancelled` and `Incomplete` carry
    /// `reason`.
    pub fn finish(&mut self, status: ResponseStatus, reason: Option<StatusReason>) {
        self.status = status;
        self.status_details = match status {
            ResponseStatus::InProgress | ResponseStatus::Completed => None,
            _ => Some(StatusDetails {
                kind: status,
                reason,
                error: None,
            }),
        };
    }
}

impl Serialize for Response {
    /// `{"id", "object": "realtime.response", "status", "status_details", "output",
    /// "conversation_id", "output_modalities", "max_output_tokens",
    /// "audio": {"output": {"format", "voice"}}, "usage", "metadata"}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            id: &'a str,
            object: &'static str,
            status: ResponseStatus,
            status_details: &'a Option<StatusDetails>,
            output: &'a [Item],
            conversation_id: &'a Option<String>,
            output_modalities: Modality,
            max_output_tokens: MaxOutputTokens,
            audio: Value,
            usage: &'a Option<Usage>,
            metadata: &'a Option<Map<String, Value>>,
        }
        Wire {
            id: &self.id,
            object: "realtime.response",
            status: self.status,
            status_details: &self.status_details,
            output: &self.output,
            conversation_id: &self.conversation_id,
            output_modalities: self.output_modality,
            max_output_tokens: self.max_output_tokens,
            audio: json!({"output": {"format": self.output_format, "voice": self.voice}}),
            usage: &self.usage,
            metadata: &self.metadata,
        }
        .serialize(serializer)
    }
}

// ---------------------------------------------------------------------------------------------
// Client events
// ---------------------------------------------------------------------------------------------

/// A parsed client event and the `event_id` it carried.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientEvent {
    /// The client's id for the event, to put in errors it causes.
    pub event_id: Option<String>,
    /// What the client asks.
    pub kind: ClientEventKind,
}

/// What a client event asks.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEventKind {
    /// `session.update`: the partial GA session object, for [`Session::update`] (which
    /// validates it).
    SessionUpdate {
        /// The patch.
        session: Value,
    },
    /// `input_audio_buffer.append`: audio bytes in the session's input format, base64-decoded
    /// (decode them with `codec::decode_samples`).
    InputAudioBufferAppend {
        /// The bytes.
        audio: Vec<u8>,
    },
    /// `input_audio_buffer.commit`.
    InputAudioBufferCommit,
    /// `input_audio_buffer.clear`.
    InputAudioBufferClear,
    /// `conversation.item.create`.
    ConversationItemCreate {
        /// Insert after this item (`"root"`: at the start); `None` appends.
        previous_item_id: Option<String>,
        /// The message.
        item: Item,
    },
    /// `conversation.item.retrieve`.
    ConversationItemRetrieve {
        /// The item to send back.
        item_id: String,
    },
    /// `conversation.item.truncate`: the client played only part of an assistant's audio.
    ConversationItemTruncate {
        /// The assistant item.
        item_id: String,
        /// The content part (0).
        content_index: u32,
        /// How much was played.
        audio_end_ms: u64,
    },
    /// `conversation.item.delete`.
    ConversationItemDelete {
        /// The item to delete.
        item_id: String,
    },
    /// `response.create`, with its overrides (all `None` when the event has no `response`).
    ResponseCreate {
        /// The overrides.
        response: ResponseCreateParams,
    },
    /// `response.cancel`.
    ResponseCancel {
        /// The response to cancel; `None` is the one in progress.
        response_id: Option<String>,
    },
}

/// The client events tessera understands, for the unknown-type message.
const CLIENT_EVENT_TYPES: &str = "session.update, input_audio_buffer.append, \
    input_audio_buffer.commit, input_audio_buffer.clear, conversation.item.create, \
    conversation.item.retrieve, conversation.item.truncate, conversation.item.delete, \
    response.create, response.cancel";

/// Parses a text frame as a GA client event.
pub fn parse_client_event(text: &str) -> Result<ClientEvent, ProtocolError> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ProtocolError::invalid_request(
            "invalid_json",
            None,
            format!("The event is not valid JSON ({e}); send one JSON object per text frame."),
        )
    })?;
    parse_client_value(&value)
}

/// Parses an already-decoded JSON value as a GA client event.
pub fn parse_client_value(value: &Value) -> Result<ClientEvent, ProtocolError> {
    let Value::Object(map) = value else {
        return Err(ProtocolError::invalid_request(
            "invalid_json",
            None,
            format!("A client event is a JSON object, not {}.", kind_of(value)),
        ));
    };
    let event_id = match map.get("event_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(other) => return Err(ProtocolError::wrong_type("event_id", "a string", other)),
    };
    let obj = Obj {
        map,
        path: String::new(),
    };
    parse_kind(&obj)
        .map(|kind| ClientEvent {
            event_id: event_id.clone(),
            kind,
        })
        .map_err(|e| e.with_event_id(event_id))
}

fn parse_kind(obj: &Obj<'_>) -> Result<ClientEventKind, ProtocolError> {
    let kind = obj.required_string("type")?;
    let fields = |extra: &[&str]| {
        let mut known = vec!["type", "event_id"];
        known.extend_from_slice(extra);
        obj.allow(&known, no_hint)
    };
    Ok(match kind {
        "session.update" => {
            fields(&["session"])?;
            let session = obj
                .object("session")?
                .ok_or_else(|| ProtocolError::missing("session"))?;
            ClientEventKind::SessionUpdate {
                session: Value::Object(session.map.clone()),
            }
        }
        "input_audio_buffer.append" => {
            fields(&["audio"])?;
            let audio = codec::decode_base64(obj.required_string("audio")?)
                .map_err(|e| ProtocolError::invalid_value("audio", e.to_string()))?;
            ClientEventKind::InputAudioBufferAppend { audio }
        }
        "input_audio_buffer.commit" => {
            fields(&[])?;
            ClientEventKind::InputAudioBufferCommit
        }
        "input_audio_buffer.clear" => {
            fields(&[])?;
            ClientEventKind::InputAudioBufferClear
        }
        "conversation.item.create" => {
            fields(&["previous_item_id", "item"])?;
            let item = obj
                .get("item")
                .ok_or_else(|| ProtocolError::missing("item"))?;
            ClientEventKind::ConversationItemCreate {
                previous_item_id: obj.string("previous_item_id")?.map(str::to_owned),
                item: parse_item(item, "item")?,
            }
        }
        "conversation.item.retrieve" => {
            fields(&["item_id"])?;
            ClientEventKind::ConversationItemRetrieve {
                item_id: obj.required_string("item_id")?.to_owned(),
            }
        }
        "conversation.item.truncate" => {
            fields(&["item_id", "content_index", "audio_end_ms"])?;
            ClientEventKind::ConversationItemTruncate {
                item_id: obj.required_string("item_id")?.to_owned(),
                content_index: obj.required_integer("content_index", 0, u64::from(u32::MAX))?
                    as u32,
                audio_end_ms: obj.required_integer("audio_end_ms", 0, u64::MAX)?,
            }
        }
        "conversation.item.delete" => {
            fields(&["item_id"])?;
            ClientEventKind::ConversationItemDelete {
                item_id: obj.required_string("item_id")?.to_owned(),
            }
        }
        "response.create" => {
            fields(&["response"])?;
            let response = match obj.object("response")? {
                Some(params) => ResponseCreateParams::parse(&params)?,
                None => ResponseCreateParams::default(),
            };
            ClientEventKind::ResponseCreate { response }
        }
        "response.cancel" => {
            fields(&["response_id"])?;
            ClientEventKind::ResponseCancel {
                response_id: obj.string("response_id")?.map(str::to_owned),
            }
        }
        "output_audio_buffer.clear" => {
            return Err(ProtocolError::unsupported(
                "type",
                "output_audio_buffer.clear is for WebRTC and SIP connections; over a WebSocket \
                 stop playback yourself, then send response.cancel and conversation.item.truncate",
            ));
        }
        "transcription_session.update" => {
            return Err(ProtocolError::unsupported(
                "type",
                "transcription sessions are not supported; send session.update with a \
                 realtime session",
            ));
        }
        other => {
            return Err(ProtocolError::invalid_request(
                "unknown_event_type",
                Some("type"),
                format!(
                    "Unknown event type '{other}'. Supported client events: {CLIENT_EVENT_TYPES}."
                ),
            ));
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Server events
// ---------------------------------------------------------------------------------------------

/// Where a piece of response content sits: shared by the content-level response events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContentRef {
    /// The response.
    pub response_id: String,
    /// The output item.
    pub item_id: String,
    /// The item's index in the response's output.
    pub output_index: u32,
    /// The part's index in the item's content.
    pub content_index: u32,
}

/// The usage of an input transcription: tessera reports the audio's length.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TranscriptionUsage {
    /// Billed by audio length.
    Duration {
        /// Seconds of audio transcribed.
        seconds: f64,
    },
}

/// A server event, serialized exactly as OpenAI's GA event by [`ServerEvent::to_value`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum ServerEvent {
    /// `error`.
    #[serde(rename = "error")]
    Error {
        /// The error.
        error: ProtocolError,
    },
    /// `session.created`, with [`Session::to_wire`].
    #[serde(rename = "session.created")]
    SessionCreated {
        /// The whole session.
        session: Value,
    },
    /// `session.updated`, with [`Session::to_wire`].
    #[serde(rename = "session.updated")]
    SessionUpdated {
        /// The whole session.
        session: Value,
    },
    /// `input_audio_buffer.speech_started`.
    #[serde(rename = "input_audio_buffer.speech_started")]
    SpeechStarted {
        /// Milliseconds from the start of the session's input audio.
        audio_start_ms: u64,
        /// The user item the speech will become.
        item_id: String,
    },
    /// `input_audio_buffer.speech_stopped`.
    #[serde(rename = "input_audio_buffer.speech_stopped")]
    SpeechStopped {
        /// Milliseconds from the start of the session's input audio.
        audio_end_ms: u64,
        /// The user item the speech will become.
        item_id: String,
    },
    /// `input_audio_buffer.committed`.
    #[serde(rename = "input_audio_buffer.committed")]
    InputAudioBufferCommitted {
        /// The item before the new one.
        previous_item_id: Option<String>,
        /// The new user item.
        item_id: String,
    },
    /// `input_audio_buffer.cleared`.
    #[serde(rename = "input_audio_buffer.cleared")]
    InputAudioBufferCleared,
    /// `conversation.item.added`: an item entered the conversation (maybe still in progress).
    #[serde(rename = "conversation.item.added")]
    ConversationItemAdded {
        /// The item before it.
        previous_item_id: Option<String>,
        /// The item.
        item: Item,
    },
    /// `conversation.item.done`: an item is complete.
    #[serde(rename = "conversation.item.done")]
    ConversationItemDone {
        /// The item before it.
        previous_item_id: Option<String>,
        /// The item.
        item: Item,
    },
    /// `conversation.item.input_audio_transcription.delta`.
    #[serde(rename = "conversation.item.input_audio_transcription.delta")]
    InputAudioTranscriptionDelta {
        /// The user item.
        item_id: String,
        /// Its audio part.
        content_index: u32,
        /// New text.
        delta: String,
    },
    /// `conversation.item.input_audio_transcription.completed`.
    #[serde(rename = "conversation.item.input_audio_transcription.completed")]
    InputAudioTranscriptionCompleted {
        /// The user item.
        item_id: String,
        /// Its audio part.
        content_index: u32,
        /// The whole transcript.
        transcript: String,
        /// What it cost (OpenAI always sends it; `Duration` is easy to give).
        #[serde(skip_serializing_if = "Option::is_none")]
        usage: Option<TranscriptionUsage>,
    },
    /// `conversation.item.input_audio_transcription.failed`.
    #[serde(rename = "conversation.item.input_audio_transcription.failed")]
    InputAudioTranscriptionFailed {
        /// The user item.
        item_id: String,
        /// Its audio part.
        content_index: u32,
        /// Why.
        error: ProtocolError,
    },
    /// `conversation.item.truncated`.
    #[serde(rename = "conversation.item.truncated")]
    ConversationItemTruncated {
        /// The assistant item.
        item_id: String,
        /// Its audio part.
        content_index: u32,
        /// Where the audio now ends.
        audio_end_ms: u64,
    },
    /// `conversation.item.deleted`.
    #[serde(rename = "conversation.item.deleted")]
    ConversationItemDeleted {
        /// The item.
        item_id: String,
    },
    /// `response.created`.
    #[serde(rename = "response.created")]
    ResponseCreated {
        /// The response, in progress.
        response: Response,
    },
    /// `response.done`.
    #[serde(rename = "response.done")]
    ResponseDone {
        /// The response, finished, with its output and usage.
        response: Response,
    },
    /// `response.output_item.added`.
    #[serde(rename = "response.output_item.added")]
    ResponseOutputItemAdded {
        /// The response.
        response_id: String,
        /// The item's index in the output.
        output_index: u32,
        /// The item, in progress.
        item: Item,
    },
    /// `response.output_item.done`.
    #[serde(rename = "response.output_item.done")]
    ResponseOutputItemDone {
        /// The response.
        response_id: String,
        /// The item's index in the output.
        output_index: u32,
        /// The item, finished.
        item: Item,
    },
    /// `response.content_part.added`.
    #[serde(rename = "response.content_part.added")]
    ResponseContentPartAdded {
        /// Where.
        #[serde(flatten)]
        at: ContentRef,
        /// The part, empty.
        part: ContentPart,
    },
    /// `response.content_part.done`.
    #[serde(rename = "response.content_part.done")]
    ResponseContentPartDone {
        /// Where.
        #[serde(flatten)]
        at: ContentRef,
        /// The part, whole.
        part: ContentPart,
    },
    /// `response.output_audio.delta`.
    #[serde(rename = "response.output_audio.delta")]
    ResponseOutputAudioDelta {
        /// Where.
        #[serde(flatten)]
        at: ContentRef,
        /// Base64 audio in the output format (`codec::encode`).
        delta: String,
    },
    /// `response.output_audio.done`.
    #[serde(rename = "response.output_audio.done")]
    ResponseOutputAudioDone {
        /// Where.
        #[serde(flatten)]
        at: ContentRef,
    },
    /// `response.output_audio_transcript.delta`.
    #[serde(rename = "response.output_audio_transcript.delta")]
    ResponseOutputAudioTranscriptDelta {
        /// Where.
        #[serde(flatten)]
        at: ContentRef,
        /// New text.
        delta: String,
    },
    /// `response.output_audio_transcript.done`.
    #[serde(rename = "response.output_audio_transcript.done")]
    ResponseOutputAudioTranscriptDone {
        /// Where.
        #[serde(flatten)]
        at: ContentRef,
        /// The whole transcript.
        transcript: String,
    },
    /// `response.output_text.delta`.
    #[serde(rename = "response.output_text.delta")]
    ResponseOutputTextDelta {
        /// Where.
        #[serde(flatten)]
        at: ContentRef,
        /// New text.
        delta: String,
    },
    /// `response.output_text.done`.
    #[serde(rename = "response.output_text.done")]
    ResponseOutputTextDone {
        /// Where.
        #[serde(flatten)]
        at: ContentRef,
        /// The whole text.
        text: String,
    },
}

impl ServerEvent {
    /// The event as JSON with a fresh `event_id`, ready to send (or to translate for a beta
    /// client).
    pub fn to_value(&self) -> Value {
        #[derive(Serialize)]
        struct Envelope<'a> {
            event_id: String,
            #[serde(flatten)]
            event: &'a ServerEvent,
        }
        let envelope = Envelope {
            event_id: event_id(),
            event: self,
        };
        // Every field serializes (string keys, finite numbers); report rather than panic if a
        // future field does not.
        serde_json::to_value(&envelope).unwrap_or_else(|e| {
            ProtocolError::server_error(format!("could not serialize a server event: {e}"))
                .to_event()
                .to_value()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> ProtocolError {
        match parse_client_event(text) {
            Err(e) => e,
            Ok(event) => panic!("expected an error, got {event:?}"),
        }
    }

    fn kind(text: &str) -> ClientEventKind {
        match parse_client_event(text) {
            Ok(event) => event.kind,
            Err(e) => panic!("expected an event, got {e:?}"),
        }
    }

    #[test]
    fn ids_are_unique_and_prefixed() {
        let ids: std::collections::HashSet<String> = (0..10_000).map(|_| item_id()).collect();
        assert_eq!(ids.len(), 10_000);
        let id = event_id();
        assert!(
            id.starts_with("event_") && id.len() == "event_".len() + 22,
            "{id}"
        );
        assert!(
            id["event_".len()..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric())
        );
        assert!(response_id().starts_with("resp_"));
        assert!(session_id().starts_with("sess_"));
    }

    #[test]
    fn parses_every_client_event() {
        let event = parse_client_event(
            r#"{"type":"session.update","event_id":"e1","session":{"instructions":"hi"}}"#,
        )
        .unwrap();
        assert_eq!(event.event_id.as_deref(), Some("e1"));
        assert_eq!(
            event.kind,
            ClientEventKind::SessionUpdate {
                session: json!({"instructions": "hi"})
            }
        );
        assert_eq!(
            kind(r#"{"type":"input_audio_buffer.append","audio":"AAEC"}"#),
            ClientEventKind::InputAudioBufferAppend {
                audio: vec![0, 1, 2]
            }
        );
        assert_eq!(
            kind(r#"{"type":"input_audio_buffer.commit"}"#),
            ClientEventKind::InputAudioBufferCommit
        );
        assert_eq!(
            kind(r#"{"type":"input_audio_buffer.clear","event_id":null}"#),
            ClientEventKind::InputAudioBufferClear
        );
        assert_eq!(
            kind(
                r#"{"type":"conversation.item.truncate","item_id":"item_1","content_index":0,"audio_end_ms":1500}"#
            ),
            ClientEventKind::ConversationItemTruncate {
                item_id: "item_1".into(),
                content_index: 0,
                audio_end_ms: 1500
            }
        );
        assert_eq!(
            kind(r#"{"type":"conversation.item.delete","item_id":"item_1"}"#),
            ClientEventKind::ConversationItemDelete {
                item_id: "item_1".into()
            }
        );
        assert_eq!(
            kind(r#"{"type":"conversation.item.retrieve","item_id":"item_1"}"#),
            ClientEventKind::ConversationItemRetrieve {
                item_id: "item_1".into()
            }
        );
        assert_eq!(
            kind(r#"{"type":"response.cancel"}"#),
            ClientEventKind::ResponseCancel { response_id: None }
        );
        assert_eq!(
            kind(r#"{"type":"response.cancel","response_id":"resp_1"}"#),
            ClientEventKind::ResponseCancel {
                response_id: Some("resp_1".into())
            }
        );
        assert_eq!(
            kind(r#"{"type":"response.create"}"#),
            ClientEventKind::ResponseCreate {
                response: ResponseCreateParams::default()
            }
        );
    }

    #[test]
    fn parses_conversation_items() {
        let ClientEventKind::ConversationItemCreate {
            previous_item_id,
            item,
        } = kind(
            r#"{"type":"conversation.item.create","previous_item_id":"root","item":{
                "type":"message","role":"user","content":[
                    {"type":"input_text","text":"hello"},
                    {"type":"input_audio","audio":"AAA=","transcript":"hi"}]}}"#,
        )
        else {
            panic!("not an item");
        };
        assert_eq!(previous_item_id.as_deref(), Some("root"));
        assert!(item.id.starts_with("item_"));
        assert_eq!(item.role, Role::User);
        assert_eq!(item.status, ItemStatus::Completed);
        assert_eq!(
            item.content,
            vec![
                ContentPart::InputText {
                    text: "hello".into()
                },
                ContentPart::InputAudio {
                    audio: Some(vec![0, 0]),
                    transcript: Some("hi".into())
                }
            ]
        );
        // The wire form never carries the audio back.
        assert_eq!(
            serde_json::to_value(&item).unwrap()["content"][1],
            json!({"type": "input_audio", "transcript": "hi"})
        );

        // Assistant text and audio, GA and beta spellings; a client id is kept.
        let ClientEventKind::ConversationItemCreate { item, .. } = kind(
            r#"{"type":"conversation.item.create","item":{"id":"mine","type":"message",
                "role":"assistant","status":"in_progress","content":[
                    {"type":"output_text","text":"a"},{"type":"text","text":"b"},
                    {"type":"output_audio","transcript":"c"},{"type":"audio","transcript":"d"}]}}"#,
        ) else {
            panic!("not an item");
        };
        assert_eq!(item.id, "mine");
        assert_eq!(
            serde_json::to_value(&item).unwrap(),
            json!({"id": "mine", "object": "realtime.item", "type": "message",
                   "status": "completed", "role": "assistant", "content": [
                {"type": "output_text", "text": "a"}, {"type": "output_text", "text": "b"},
                {"type": "output_audio", "transcript": "c"},
                {"type": "output_audio", "transcript": "d"}]})
        );

        let ClientEventKind::ConversationItemCreate { item, .. } = kind(
            r#"{"type":"conversation.item.create","item":{"role":"system",
                "content":[{"type":"input_text","text":"be brief"}]}}"#,
        ) else {
            panic!("not an item");
        };
        assert_eq!(item.role, Role::System);
    }

    #[test]
    fn bad_items_are_refused_with_the_param() {
        let e = error(
            r#"{"type":"conversation.item.create","event_id":"e9","item":{"type":"function_call","name":"f","arguments":"{}"}}"#,
        );
        assert_eq!(e.code, Some("unsupported"));
        assert_eq!(e.param.as_deref(), Some("item.type"));
        assert_eq!(e.event_id.as_deref(), Some("e9"));
        assert!(e.message.contains("function calling is not supported"));

        let e = error(
            r#"{"type":"conversation.item.create","item":{"type":"message","role":"system","content":[{"type":"output_text","text":"x"}]}}"#,
        );
        assert_eq!(e.param.as_deref(), Some("item.content[0].type"));
        assert!(e.message.contains("input_text"), "{}", e.message);

        let e = error(
            r#"{"type":"conversation.item.create","item":{"type":"message","role":"user","content":[{"type":"input_audio","audio":"%%%"}]}}"#,
        );
        assert_eq!(e.param.as_deref(), Some("item.content[0].audio"));
        assert_eq!(e.code, Some("invalid_value"));

        let e =
            error(r#"{"type":"conversation.item.create","item":{"type":"message","role":"user"}}"#);
        assert_eq!(e.code, Some("missing_field"));
        assert_eq!(e.param.as_deref(), Some("item.content"));

        let e = error(
            r#"{"type":"conversation.item.create","item":{"role":"user","content":[{"type":"input_image","image_url":"x"}]}}"#,
        );
        assert_eq!(e.code, Some("unsupported"));

        let e = error(
            r#"{"type":"conversation.item.create","item":{"role":"assistant","content":[{"type":"output_audio","audio":"AAAA","transcript":"x"}]}}"#,
        );
        assert_eq!(e.param.as_deref(), Some("item.content[0].audio"));
    }

    #[test]
    fn malformed_events_get_openai_errors() {
        let e = error("{not json");
        assert_eq!(e.kind, "invalid_request_error");
        assert_eq!(e.code, Some("invalid_json"));
        assert_eq!(e.event_id, None);

        assert_eq!(error("[1,2]").code, Some("invalid_json"));

        let e = error(r#"{"event_id":"e1"}"#);
        assert_eq!(e.code, Some("missing_field"));
        assert_eq!(e.param.as_deref(), Some("type"));
        assert_eq!(e.event_id.as_deref(), Some("e1"));

        let e = error(r#"{"type":"response.explode","event_id":"e2"}"#);
        assert_eq!(e.code, Some("unknown_event_type"));
        assert_eq!(e.event_id.as_deref(), Some("e2"));
        assert!(e.message.contains("response.create"));

        let e = error(r#"{"type":"input_audio_buffer.append","event_id":"e3"}"#);
        assert_eq!(e.code, Some("missing_field"));
        assert_eq!(e.param.as_deref(), Some("audio"));
        assert_eq!(e.event_id.as_deref(), Some("e3"));

        let e = error(r#"{"type":"input_audio_buffer.append","event_id":"e4","audio":"@@@@"}"#);
        assert_eq!(e.code, Some("invalid_value"));
        assert_eq!(e.param.as_deref(), Some("audio"));
        assert_eq!(e.event_id.as_deref(), Some("e4"));
        assert!(e.message.contains("base64"));

        let e = error(r#"{"type":"input_audio_buffer.append","audio":7}"#);
        assert!(e.message.contains("expected a string"), "{}", e.message);

        let e = error(r#"{"type":"input_audio_buffer.commit","extra":1}"#);
        assert_eq!(e.code, Some("unknown_parameter"));
        assert_eq!(e.param.as_deref(), Some("extra"));

        let e = error(
            r#"{"type":"conversation.item.truncate","item_id":"i","content_index":0,"audio_end_ms":-5}"#,
        );
        assert_eq!(e.param.as_deref(), Some("audio_end_ms"));

        let e = error(r#"{"type":"conversation.item.delete","event_id":"e5"}"#);
        assert_eq!(
            (e.param.as_deref(), e.event_id.as_deref()),
            (Some("item_id"), Some("e5"))
        );

        let e = error(r#"{"type":"session.update","session":"x"}"#);
        assert_eq!(e.param.as_deref(), Some("session"));

        assert_eq!(
            error(r#"{"type":"output_audio_buffer.clear"}"#).code,
            Some("unsupported")
        );
        assert_eq!(
            error(r#"{"type":"input_audio_buffer.commit","event_id":5}"#)
                .param
                .as_deref(),
            Some("event_id")
        );
    }

    #[test]
    fn response_create_takes_overrides() {
        let ClientEventKind::ResponseCreate { response } = kind(
            r#"{"type":"response.create","response":{"instructions":"short",
                "output_modalities":["text"],"max_output_tokens":200,
                "audio":{"output":{"format":{"type":"audio/pcmu"},"voice":"sage"}},
                "conversation":"none","metadata":{"topic":"x"},"tools":[],"tool_choice":"auto",
                "input":[{"type":"item_reference","id":"item_1"},
                         {"type":"message","role":"user","content":[{"type":"input_text","text":"q"}]}]}}"#,
        ) else {
            panic!("not response.create");
        };
        assert_eq!(response.instructions.as_deref(), Some("short"));
        assert_eq!(response.output_modality, Some(Modality::Text));
        assert_eq!(
            response.max_output_tokens,
            Some(MaxOutputTokens::Limit(200))
        );
        assert_eq!(response.output_format, Some(AudioFormat::Pcmu));
        assert_eq!(response.voice.as_deref(), Some("sage"));
        assert_eq!(response.conversation, ResponseConversation::None);
        let input = response.input.clone().unwrap();
        assert_eq!(input[0], ResponseInput::Reference("item_1".into()));
        assert!(matches!(&input[1], ResponseInput::Item(item) if item.role == Role::User));

        let session = SessionConfig::new("m");
        let resolved = response.resolve(&session);
        assert_eq!(resolved.voice, "sage");
        assert_eq!(resolved.output_modality, Modality::Text);

        let resolved = ResponseCreateParams::default().resolve(&session);
        assert_eq!(resolved.voice, "alloy");
        assert_eq!(resolved.max_output_tokens, MaxOutputTokens::Inf);
        assert_eq!(resolved.output_format, AudioFormat::default());

        let e = error(
            r#"{"type":"response.create","event_id":"r1","response":{"max_output_tokens":0}}"#,
        );
        assert_eq!(e.param.as_deref(), Some("response.max_output_tokens"));
        assert_eq!(e.event_id.as_deref(), Some("r1"));
        let e = error(r#"{"type":"response.create","response":{"max_output_tokens":"lots"}}"#);
        assert_eq!(e.param.as_deref(), Some("response.max_output_tokens"));
        let e = error(
            r#"{"type":"response.create","response":{"tools":[{"type":"function","name":"f"}]}}"#,
        );
        assert_eq!(e.code, Some("unsupported"));
        let e = error(r#"{"type":"response.create","response":{"modalities":["text"]}}"#);
        assert_eq!(e.code, Some("unknown_parameter"));
        assert!(e.message.contains("beta"));
        let e = error(
            r#"{"type":"response.create","response":{"output_modalities":["text","audio"]}}"#,
        );
        assert_eq!(e.param.as_deref(), Some("response.output_modalities"));
        let ClientEventKind::ResponseCreate { response } =
            kind(r#"{"type":"response.create","response":{"max_output_tokens":"inf"}}"#)
        else {
            panic!("not response.create");
        };
        assert_eq!(response.max_output_tokens, Some(MaxOutputTokens::Inf));
    }

    fn session() -> Session {
        Session::new(SessionConfig::new("tessera-voice"))
    }

    #[test]
    fn wire_session_has_every_field() {
        let session = session();
        let wire = session.to_wire();
        assert_eq!(
            wire,
            json!({
                "object": "realtime.session",
                "id": session.id(),
                "type": "realtime",
                "model": "tessera-voice",
                "output_modalities": ["audio"],
                "instructions": "",
                "tools": [],
                "tool_choice": "auto",
                "max_output_tokens": "inf",
                "tracing": null,
                "truncation": "auto",
                "prompt": null,
                "include": null,
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "transcription": null,
                        "noise_reduction": null,
                        "turn_detection": {
                            "type": "server_vad",
                            "threshold": 0.5,
                            "prefix_padding_ms": 300,
                            "silence_duration_ms": 500,
                            "idle_timeout_ms": null,
                            "create_response": true,
                            "interrupt_response": true
                        }
                    },
                    "output": {
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "voice": "alloy",
                        "speed": 1.0
                    }
                }
            })
        );
        assert!(session.id().starts_with("sess_"));
        // The wire form validates back into the same config.
        assert_eq!(&SessionConfig::from_value(&wire).unwrap(), session.config());
    }

    #[test]
    fn partial_updates_deep_merge() {
        let mut session = session();
        session
            .update(&json!({"type": "realtime", "audio": {"input": {"turn_detection": {"silence_duration_ms": 800}}}}))
            .unwrap();
        let vad = session.config().input.turn_detection.unwrap();
        assert_eq!(vad.silence_duration_ms, 800);
        assert_eq!(vad.threshold, 0.5);
        assert_eq!(vad.prefix_padding_ms, 300);
        assert!(vad.create_response && vad.interrupt_response);
        assert_eq!(session.config().output.voice, "alloy");

        session
            .update(&json!({"instructions": "Be brief.", "audio": {"output": {"voice": "verse", "speed": 1.25}}}))
            .unwrap();
        let config = session.config();
        assert_eq!(config.instructions, "Be brief.");
        assert_eq!(config.output.voice, "verse");
        assert_eq!(config.output.speed, 1.25);
        assert_eq!(
            config.input.turn_detection.unwrap().silence_duration_ms,
            800
        );

        // null turns detection off (push-to-talk); an object turns it back on with defaults
        // for what it leaves out.
        session
            .update(&json!({"audio": {"input": {"turn_detection": null}}}))
            .unwrap();
        assert_eq!(session.config().input.turn_detection, None);
        assert_eq!(
            session.to_wire()["audio"]["input"]["turn_detection"],
            Value::Null
        );
        session
            .update(&json!({"audio": {"input": {"turn_detection": {"type": "server_vad", "threshold": 0.7}}}}))
            .unwrap();
        let vad = session.config().input.turn_detection.unwrap();
        assert_eq!((vad.threshold, vad.silence_duration_ms), (0.7, 500));

        // A different kind replaces the object rather than mixing fields of both kinds.
        session
            .update(&json!({"audio": {"input": {"turn_detection": {"type": "semantic_vad", "eagerness": "high"}}}}))
            .unwrap();
        let vad = session.config().input.turn_detection.unwrap();
        assert_eq!(
            vad.mode,
            VadMode::Semantic {
                eagerness: Eagerness::High
            }
        );
        assert_eq!(vad.silence_duration_ms, 400);
        assert_eq!(
            session.to_wire()["audio"]["input"]["turn_detection"],
            json!({"type": "semantic_vad", "eagerness": "high", "create_response": true, "interrupt_response": true})
        );
        session
            .update(&json!({"audio": {"input": {"format": {"type": "audio/pcmu"}}}}))
            .unwrap();
        assert_eq!(session.config().input.format, AudioFormat::Pcmu);
        assert_eq!(
            session.to_wire()["audio"]["input"]["format"],
            json!({"type": "audio/pcmu"})
        );

        session
            .update(&json!({"audio": {"input": {"transcription": {"model": "whisper-1", "language": "en"}}}}))
            .unwrap();
        assert_eq!(
            session.config().input.transcription,
            Some(Transcription {
                model: Some("whisper-1".into()),
                language: Some("en".into()),
                prompt: None
            })
        );
        session
            .update(
                &json!({"output_modalities": ["text"], "max_output_tokens": 100, "tracing": "auto",
                            "audio": {"input": {"noise_reduction": {"type": "near_field"}}}}),
            )
            .unwrap();
        let wire = session.to_wire();
        assert_eq!(wire["output_modalities"], json!(["text"]));
        assert_eq!(wire["max_output_tokens"], json!(100));
        assert_eq!(wire["tracing"], json!("auto"));
        assert_eq!(
            wire["audio"]["input"]["noise_reduction"],
            json!({"type": "near_field"})
        );
        assert_eq!(
            wire["audio"]["input"]["transcription"]["model"],
            json!("whisper-1")
        );
    }

    #[test]
    fn invalid_updates_change_nothing() {
        let mut session = session();
        session.update(&json!({"instructions": "keep me"})).unwrap();
        let before = session.to_wire();
        let cases = [
            (
                json!({"instructions": "lost", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}),
                "session.audio.input.format.rate",
            ),
            (
                json!({"audio": {"output": {"speed": 2.0}}}),
                "session.audio.output.speed",
            ),
            (
                json!({"audio": {"input": {"turn_detection": {"threshold": 1.5}}}}),
                "session.audio.input.turn_detection.threshold",
            ),
            (
                json!({"audio": {"input": {"turn_detection": {"idle_timeout_ms": 100}}}}),
                "session.audio.input.turn_detection.idle_timeout_ms",
            ),
            (
                json!({"audio": {"input": {"turn_detection": {"type": "semantic_vad", "threshold": 0.2}}}}),
                "session.audio.input.turn_detection.threshold",
            ),
            (
                json!({"audio": {"input": {"format": {"type": "audio/opus"}}}}),
                "session.audio.input.format.type",
            ),
            (
                json!({"output_modalities": ["text", "audio"]}),
                "session.output_modalities",
            ),
            (
                json!({"tools": [{"type": "function", "name": "f"}]}),
                "session.tools",
            ),
            (json!({"type": "transcription"}), "session.type"),
            (json!({"modalities": ["text"]}), "session.modalities"),
            (
                json!({"audio": {"output": {"voice": {"id": "voice_1"}}}}),
                "session.audio.output.voice",
            ),
            (
                json!({"audio": {"input": {"noise_reduction": {"type": "loud"}}}}),
                "session.audio.input.noise_reduction.type",
            ),
            (
                json!({"max_output_tokens": -1}),
                "session.max_output_tokens",
            ),
            (json!({"model": ""}), "session.model"),
            (
                json!({"audio": {"input": {"bogus": 1}}}),
                "session.audio.input.bogus",
            ),
        ];
        for (patch, param) in cases {
            let e = session.update(&patch).expect_err(&patch.to_string());
            assert_eq!(e.param.as_deref(), Some(param), "{patch}: {}", e.message);
            assert_eq!(e.kind, "invalid_request_error");
            assert_eq!(session.to_wire(), before, "{patch} changed the session");
        }
        let e = session
            .update(&json!({"modalities": ["text"]}))
            .unwrap_err();
        assert!(e.message.contains("output_modalities") && e.message.contains("realtime=v1"));
        let e = session
            .update(&json!({"type": "transcription"}))
            .unwrap_err();
        assert!(e.message.contains("only realtime sessions"));
        let e = session
            .update(&json!({"tools": [{"type": "function"}]}))
            .unwrap_err();
        assert!(e.message.contains("function calling is not supported"));
    }

    #[test]
    fn a_locked_voice_cannot_change() {
        let mut session = session();
        session
            .update(&json!({"audio": {"output": {"voice": "sage"}}}))
            .unwrap();
        session.lock_voice();
        let e = session
            .update(&json!({"audio": {"output": {"voice": "echo"}}}))
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("session.audio.output.voice"));
        assert_eq!(session.config().output.voice, "sage");
        // Other fields, and the same voice, still update.
        session
            .update(&json!({"instructions": "x", "audio": {"output": {"voice": "sage"}}}))
            .unwrap();
    }

    #[test]
    fn client_can_send_back_the_session_it_was_given() {
        let mut session = session();
        let wire = session.to_wire();
        session.update(&wire).unwrap();
        assert_eq!(session.to_wire(), wire);
    }

    #[test]
    fn merge_follows_the_rules() {
        let mut target = json!({"a": {"b": 1, "c": 2}, "d": [1, 2], "e": {"type": "x", "k": 1}});
        merge(
            &mut target,
            &json!({"a": {"c": 3, "n": null}, "d": [3], "e": {"type": "y"}, "f": {"g": 1}}),
        );
        assert_eq!(
            target,
            json!({"a": {"b": 1, "c": 3, "n": null}, "d": [3], "e": {"type": "y"}, "f": {"g": 1}})
        );
        let mut target = json!({"a": {"b": 1}});
        merge(&mut target, &json!({"a": null}));
        assert_eq!(target, json!({"a": null}));
    }

    fn at() -> ContentRef {
        ContentRef {
            response_id: "resp_1".into(),
            item_id: "item_1".into(),
            output_index: 0,
            content_index: 0,
        }
    }

    /// The event as sent, with its generated event_id checked and removed.
    fn wire(event: ServerEvent) -> Value {
        let mut value = event.to_value();
        let id = value
            .as_object_mut()
            .and_then(|m| m.remove("event_id"))
            .unwrap();
        assert!(id.as_str().unwrap().starts_with("event_"));
        value
    }

    #[test]
    fn server_events_serialize_like_openai() {
        assert_eq!(
            wire(
                parse_client_event(r#"{"type":"nope","event_id":"c1"}"#)
                    .unwrap_err()
                    .to_event()
            ),
            json!({"type": "error", "error": {"type": "invalid_request_error", "code": "unknown_event_type",
                   "message": "Unknown event type 'nope'. Supported client events: session.update, input_audio_buffer.append, input_audio_buffer.commit, input_audio_buffer.clear, conversation.item.create, conversation.item.retrieve, conversation.item.truncate, conversation.item.delete, response.create, response.cancel.",
                   "param": "type", "event_id": "c1"}})
        );
        assert_eq!(
            wire(ServerEvent::SpeechStarted {
                audio_start_ms: 1000,
                item_id: "item_3".into()
            }),
            json!({"type": "input_audio_buffer.speech_started", "audio_start_ms": 1000, "item_id": "item_3"})
        );
        assert_eq!(
            wire(ServerEvent::InputAudioBufferCommitted {
                previous_item_id: None,
                item_id: "item_3".into()
            }),
            json!({"type": "input_audio_buffer.committed", "previous_item_id": null, "item_id": "item_3"})
        );
        assert_eq!(
            wire(ServerEvent::InputAudioBufferCleared),
            json!({"type": "input_audio_buffer.cleared"})
        );
        let user = Item {
            id: "item_3".into(),
            status: ItemStatus::Completed,
            role: Role::User,
            content: vec![ContentPart::InputAudio {
                audio: Some(vec![1, 2]),
                transcript: None,
            }],
        };
        assert_eq!(
            wire(ServerEvent::ConversationItemAdded {
                previous_item_id: Some("item_2".into()),
                item: user
            }),
            json!({"type": "conversation.item.added", "previous_item_id": "item_2", "item": {
                "id": "item_3", "object": "realtime.item", "type": "message", "status": "completed",
                "role": "user", "content": [{"type": "input_audio", "transcript": null}]}})
        );
        assert_eq!(
            wire(ServerEvent::InputAudioTranscriptionCompleted {
                item_id: "item_3".into(),
                content_index: 0,
                transcript: "hi".into(),
                usage: Some(TranscriptionUsage::Duration { seconds: 1.5 }),
            }),
            json!({"type": "conversation.item.input_audio_transcription.completed", "item_id": "item_3",
                   "content_index": 0, "transcript": "hi", "usage": {"type": "duration", "seconds": 1.5}})
        );
        assert_eq!(
            wire(ServerEvent::ResponseContentPartAdded {
                at: at(),
                part: ContentPart::OutputAudio {
                    transcript: String::new()
                }
            }),
            json!({"type": "response.content_part.added", "response_id": "resp_1", "item_id": "item_1",
                   "output_index": 0, "content_index": 0, "part": {"type": "output_audio", "transcript": ""}})
        );
        assert_eq!(
            wire(ServerEvent::ResponseOutputAudioDelta {
                at: at(),
                delta: "AAA=".into()
            }),
            json!({"type": "response.output_audio.delta", "response_id": "resp_1", "item_id": "item_1",
                   "output_index": 0, "content_index": 0, "delta": "AAA="})
        );
        assert_eq!(
            wire(ServerEvent::ResponseOutputAudioDone { at: at() }),
            json!({"type": "response.output_audio.done", "response_id": "resp_1", "item_id": "item_1",
                   "output_index": 0, "content_index": 0})
        );
        assert_eq!(
            wire(ServerEvent::ResponseOutputAudioTranscriptDone {
                at: at(),
                transcript: "Hello".into()
            })["transcript"],
            json!("Hello")
        );
        assert_eq!(
            wire(ServerEvent::ResponseOutputTextDone {
                at: at(),
                text: "Hello".into()
            })["type"],
            json!("response.output_text.done")
        );
        assert_eq!(
            wire(ServerEvent::ConversationItemTruncated {
                item_id: "item_1".into(),
                content_index: 0,
                audio_end_ms: 1500
            }),
            json!({"type": "conversation.item.truncated", "item_id": "item_1", "content_index": 0, "audio_end_ms": 1500})
        );
    }

    #[test]
    fn responses_serialize_like_openai() {
        let session = SessionConfig::new("m");
        let mut metadata = Map::new();
        metadata.insert("topic".into(), json!("x"));
        let config = ResponseCreateParams {
            metadata: Some(metadata),
            ..Default::default()
        }
        .resolve(&session);
        let mut response = Response::new(&config, Some("conv_1".into()));
        response.id = "resp_1".into();
        assert_eq!(
            wire(ServerEvent::ResponseCreated {
                response: response.clone()
            }),
            json!({"type": "response.created", "response": {
                "id": "resp_1", "object": "realtime.response", "status": "in_progress",
                "status_details": null, "output": [], "conversation_id": "conv_1",
                "output_modalities": ["audio"], "max_output_tokens": "inf",
                "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "alloy"}},
                "usage": null, "metadata": {"topic": "x"}}})
        );
        response.output.push(Item {
            id: "item_9".into(),
            status: ItemStatus::Incomplete,
            role: Role::Assistant,
            content: vec![ContentPart::OutputAudio {
                transcript: "Hel".into(),
            }],
        });
        response.usage = Some(Usage::new(10, 20, 3, 40));
        response.finish(ResponseStatus::Cancelled, Some(StatusReason::TurnDetected));
        let done = wire(ServerEvent::ResponseDone { response });
        assert_eq!(done["response"]["status"], json!("cancelled"));
        assert_eq!(
            done["response"]["status_details"],
            json!({"type": "cancelled", "reason": "turn_detected"})
        );
        assert_eq!(
            done["response"]["output"][0]["content"][0],
            json!({"type": "output_audio", "transcript": "Hel"})
        );
        assert_eq!(done["response"]["usage"]["total_tokens"], json!(73));
        assert_eq!(
            done["response"]["usage"]["input_token_details"]["audio_tokens"],
            json!(20)
        );
        assert_eq!(
            done["response"]["usage"]["output_token_details"],
            json!({"text_tokens": 3, "audio_tokens": 40})
        );
    }
}
