//! The beta realtime protocol as a shim over the GA one.
//!
//! A client that sends the header `OpenAI-Beta: realtime=v1` speaks the beta dialect: flat
//! session fields (`modalities`, `voice`, `input_audio_format: "pcm16"`, `turn_detection`…),
//! assistant content typed `text` and `audio`, and server events such as
//! `response.audio.delta` and `conversation.item.created`. Everything inside tessera is GA:
//! [`to_ga`] rewrites an incoming beta event into its GA form before it is parsed, and
//! [`from_ga`] rewrites an outgoing GA event for the beta client. [`Dialect`] puts the two
//! behind one switch, chosen once per connection from the header.
//!
//! Session updates stay partial across the translation: only the beta fields present are
//! mapped, so the GA deep merge keeps what the client left out. Beta fields with no GA
//! counterpart (`temperature`, `client_secret`) are dropped. GA events with no beta
//! counterpart are either passed through unchanged (beta clients ignore unknown types) or,
//! for `conversation.item.done`, dropped: the beta protocol announced an item once, with
//! `conversation.item.created`.

use serde_json::{Map, Value, json};

use super::protocol::{self, ClientEvent, ProtocolError};

/// Which protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// OpenAI's GA realtime protocol (the default).
    #[default]
    Ga,
    /// The beta protocol, asked for with `OpenAI-Beta: realtime=v1`.
    Beta,
}

impl Dialect {
    /// The dialect an `OpenAI-Beta` header value selects: `Beta` when it lists `realtime=v1`
    /// (the header may carry several comma-separated flags), `Ga` otherwise or when absent.
    pub fn from_header(openai_beta: Option<&str>) -> Self {
        let beta = openai_beta.is_some_and(|value| {
            value
                .split(',')
                .any(|flag| flag.trim().eq_ignore_ascii_case("realtime=v1"))
        });
        if beta { Dialect::Beta } else { Dialect::Ga }
    }

    /// Parses a text frame from a client of this dialect into a (GA) client event.
    pub fn parse_client_event(self, text: &str) -> Result<ClientEvent, ProtocolError> {
        match self {
            Dialect::Ga => protocol::parse_client_event(text),
            Dialect::Beta => {
                let value: Value = serde_json::from_str(text).map_err(|e| {
                    ProtocolError::invalid_request(
                        "invalid_json",
                        None,
                        format!(
                            "The event is not valid JSON ({e}); send one JSON object per text frame."
                        ),
                    )
                })?;
                protocol::parse_client_value(&to_ga(value))
            }
        }
    }

    /// A GA server event (from `ServerEvent::to_value`) as this dialect sends it; `None` when
    /// the dialect has no such event and it must not be sent.
    pub fn outgoing(self, event: Value) -> Option<Value> {
        match self {
            Dialect::Ga => Some(event),
            Dialect::Beta => from_ga(event),
        }
    }
}

/// Rewrites a beta client event into its GA form. Events that are the same in both dialects,
/// and anything malformed, pass through for the GA parser to judge.
pub fn to_ga(mut event: Value) -> Value {
    let Some(map) = event.as_object_mut() else {
        return event;
    };
    match map.get("type").and_then(Value::as_str) {
        Some("session.update") => {
            if let Some(Value::Object(session)) = map.get_mut("session") {
                *session = session_to_ga(std::mem::take(session));
            }
        }
        Some("conversation.item.create") => {
            if let Some(item) = map.get_mut("item") {
                item_to_ga(item);
            }
        }
        Some("response.create") => {
            if let Some(Value::Object(response)) = map.get_mut("response") {
                *response = response_to_ga(std::mem::take(response));
            }
        }
        _ => {}
    }
    event
}

/// Rewrites a GA server event for a beta client; `None` for events the beta protocol lacks
/// and that would mislead a beta client (`conversation.item.done`).
pub fn from_ga(mut event: Value) -> Option<Value> {
    let Some(map) = event.as_object_mut() else {
        return Some(event);
    };
    let Some(kind) = map.get("type").and_then(Value::as_str).map(str::to_owned) else {
        return Some(event);
    };
    let rename = match kind.as_str() {
        "conversation.item.added" => Some("conversation.item.created"),
        "conversation.item.done" => return None,
        "response.output_audio.delta" => Some("response.audio.delta"),
        "response.output_audio.done" => Some("response.audio.done"),
        "response.output_audio_transcript.delta" => Some("response.audio_transcript.delta"),
        "response.output_audio_transcript.done" => Some("response.audio_transcript.done"),
        "response.output_text.delta" => Some("response.text.delta"),
        "response.output_text.done" => Some("response.text.done"),
        _ => None,
    };
    if let Some(beta) = rename {
        map.insert("type".to_owned(), json!(beta));
    }
    match kind.as_str() {
        "session.created" | "session.updated" => {
            if let Some(Value::Object(session)) = map.get_mut("session") {
                *session = session_from_ga(session);
            }
        }
        "conversation.item.added"
        | "conversation.item.retrieved"
        | "response.output_item.added"
        | "response.output_item.done" => {
            if let Some(item) = map.get_mut("item") {
                item_from_ga(item);
            }
        }
        "response.content_part.added" | "response.content_part.done" => {
            if let Some(part) = map.get_mut("part") {
                retype_part(part, output_type_from_ga);
            }
        }
        "response.created" | "response.done" => {
            if let Some(Value::Object(response)) = map.get_mut("response") {
                response_from_ga(response);
            }
        }
        _ => {}
    }
    Some(event)
}

/// Beta `modalities` → GA `output_modalities`: any list with `audio` is audio (which carries
/// its transcript), `["text"]` is text; anything else passes through to be refused.
fn modalities_to_ga(value: Value) -> Value {
    match value.as_array() {
        Some(list) if list.iter().any(|m| m == "audio") => json!(["audio"]),
        Some(list) if !list.is_empty() && list.iter().all(|m| m == "text") => json!(["text"]),
        _ => value,
    }
}

/// GA `output_modalities` → beta `modalities`: audio came with text in the beta protocol.
fn modalities_from_ga(value: &Value) -> Value {
    if value == &json!(["text"]) {
        json!(["text"])
    } else {
        json!(["text", "audio"])
    }
}

/// Beta format names → GA format objects; an unknown name becomes `{"type": name}`, which
/// the GA validator refuses by name.
fn format_to_ga(value: Value) -> Value {
    match value.as_str() {
        Some("pcm16") => json!({"type": "audio/pcm", "rate": 24000}),
        Some("g711_ulaw") => json!({"type": "audio/pcmu"}),
        Some("g711_alaw") => json!({"type": "audio/pcma"}),
        Some(other) => json!({"type": other}),
        None => value,
    }
}

/// GA format objects → beta format names.
fn format_from_ga(value: &Value) -> Value {
    match value.get("type").and_then(Value::as_str) {
        Some("audio/pcmu") => json!("g711_ulaw"),
        Some("audio/pcma") => json!("g711_alaw"),
        _ => json!("pcm16"),
    }
}

/// Sets `map.a.b.….leaf = value`, creating objects on the way.
fn set_path(map: &mut Map<String, Value>, path: &[&str], value: Value) {
    let Some((leaf, parents)) = path.split_last() else {
        return;
    };
    let mut node = map;
    for key in parents {
        let slot = node
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        let Value::Object(next) = slot else {
            return;
        };
        node = next;
    }
    node.insert((*leaf).to_owned(), value);
}

/// A (partial) beta session object as a (partial) GA one.
fn session_to_ga(beta: Map<String, Value>) -> Map<String, Value> {
    let mut ga = Map::new();
    for (key, value) in beta {
        match key.as_str() {
            "modalities" => set_path(&mut ga, &["output_modalities"], modalities_to_ga(value)),
            "voice" => set_path(&mut ga, &["audio", "output", "voice"], value),
            "speed" => set_path(&mut ga, &["audio", "output", "speed"], value),
            "input_audio_format" => {
                set_path(&mut ga, &["audio", "input", "format"], format_to_ga(value));
            }
            "output_audio_format" => {
                set_path(&mut ga, &["audio", "output", "format"], format_to_ga(value));
            }
            "input_audio_transcription" => {
                set_path(&mut ga, &["audio", "input", "transcription"], value);
            }
            "input_audio_noise_reduction" => {
                set_path(&mut ga, &["audio", "input", "noise_reduction"], value);
            }
            "turn_detection" => set_path(&mut ga, &["audio", "input", "turn_detection"], value),
            "max_response_output_tokens" => set_path(&mut ga, &["max_output_tokens"], value),
            // No GA counterpart.
            "temperature" | "client_secret" | "id" | "object" | "expires_at" => {}
            // The same in both (instructions, model, tools, tool_choice, tracing, include…),
            // or unknown and left for the GA validator to refuse by name.
            _ => {
                ga.insert(key, value);
            }
        }
    }
    ga
}

/// The value at `path` in `map`, or `null`.
fn lookup(map: &Map<String, Value>, path: &[&str]) -> Value {
    let Some((first, rest)) = path.split_first() else {
        return Value::Null;
    };
    rest.iter()
        .try_fold(map.get(*first), |node, key| Some(node?.get(*key)))
        .flatten()
        .cloned()
        .unwrap_or(Value::Null)
}

/// A GA session object (`Session::to_wire`) in the beta shape.
fn session_from_ga(ga: &Map<String, Value>) -> Map<String, Value> {
    let at = |path: &[&str]| lookup(ga, path);
    let mut beta = Map::new();
    for key in ["id", "object", "model"] {
        beta.insert(key.to_owned(), at(&[key]));
    }
    beta.insert(
        "modalities".to_owned(),
        modalities_from_ga(&at(&["output_modalities"])),
    );
    beta.insert("instructions".to_owned(), at(&["instructions"]));
    beta.insert("voice".to_owned(), at(&["audio", "output", "voice"]));
    beta.insert(
        "input_audio_format".to_owned(),
        format_from_ga(&at(&["audio", "input", "format"])),
    );
    beta.insert(
        "output_audio_format".to_owned(),
        format_from_ga(&at(&["audio", "output", "format"])),
    );
    beta.insert(
        "input_audio_transcription".to_owned(),
        at(&["audio", "input", "transcription"]),
    );
    beta.insert(
        "turn_detection".to_owned(),
        at(&["audio", "input", "turn_detection"]),
    );
    beta.insert(
        "input_audio_noise_reduction".to_owned(),
        at(&["audio", "input", "noise_reduction"]),
    );
    beta.insert("tools".to_owned(), at(&["tools"]));
    beta.insert("tool_choice".to_owned(), at(&["tool_choice"]));
    // Beta sessions report a temperature; GA has none, and 0.8 was the beta default.
    beta.insert("temperature".to_owned(), json!(0.8));
    beta.insert(
        "max_response_output_tokens".to_owned(),
        at(&["max_output_tokens"]),
    );
    beta.insert("speed".to_owned(), at(&["audio", "output", "speed"]));
    beta.insert("tracing".to_owned(), at(&["tracing"]));
    beta.insert("prompt".to_owned(), at(&["prompt"]));
    beta.insert("include".to_owned(), at(&["include"]));
    beta
}

/// GA assistant content types → beta ones; others unchanged.
fn output_type_from_ga(kind: &str) -> Option<&'static str> {
    match kind {
        "output_text" => Some("text"),
        "output_audio" => Some("audio"),
        _ => None,
    }
}

/// Rewrites a content part's `type` with `map` (no change where it gives `None`).
fn retype_part(part: &mut Value, map: impl Fn(&str) -> Option<&'static str>) {
    let new = part.get("type").and_then(Value::as_str).and_then(map);
    if let (Some(new), Some(part)) = (new, part.as_object_mut()) {
        part.insert("type".to_owned(), json!(new));
    }
}

/// Rewrites every content part of a message item with `map`.
fn retype_content(item: &mut Value, map: impl Fn(&str) -> Option<&'static str>) {
    if let Some(Value::Array(parts)) = item.get_mut("content") {
        for part in parts {
            retype_part(part, &map);
        }
    }
}

/// A beta item in GA terms: assistant `text`/`audio` become `output_text`/`output_audio`,
/// and a user or system `text`/`audio` becomes `input_text`/`input_audio`.
fn item_to_ga(item: &mut Value) {
    let assistant = item.get("role").and_then(Value::as_str) == Some("assistant");
    retype_content(item, |kind| match (kind, assistant) {
        ("text", true) => Some("output_text"),
        ("audio", true) => Some("output_audio"),
        ("text", false) => Some("input_text"),
        ("audio", false) => Some("input_audio"),
        _ => None,
    });
}

/// A GA item in beta terms.
fn item_from_ga(item: &mut Value) {
    retype_content(item, output_type_from_ga);
}

/// A beta `response.create` response object in GA terms.
fn response_to_ga(beta: Map<String, Value>) -> Map<String, Value> {
    let mut ga = Map::new();
    for (key, mut value) in beta {
        match key.as_str() {
            "modalities" => set_path(&mut ga, &["output_modalities"], modalities_to_ga(value)),
            "max_response_output_tokens" => set_path(&mut ga, &["max_output_tokens"], value),
            "voice" => set_path(&mut ga, &["audio", "output", "voice"], value),
            "output_audio_format" => {
                set_path(&mut ga, &["audio", "output", "format"], format_to_ga(value));
            }
            "temperature" => {}
            "input" => {
                if let Value::Array(items) = &mut value {
                    items.iter_mut().for_each(item_to_ga);
                }
                ga.insert(key, value);
            }
            _ => {
                ga.insert(key, value);
            }
        }
    }
    ga
}

/// A GA response object in the beta shape.
fn response_from_ga(response: &mut Map<String, Value>) {
    if let Some(modalities) = response.remove("output_modalities") {
        response.insert("modalities".to_owned(), modalities_from_ga(&modalities));
    }
    if let Some(audio) = response.remove("audio") {
        let output = audio.get("output").cloned().unwrap_or(Value::Null);
        response.insert(
            "output_audio_format".to_owned(),
            format_from_ga(output.get("format").unwrap_or(&Value::Null)),
        );
        response.insert(
            "voice".to_owned(),
            output.get("voice").cloned().unwrap_or(Value::Null),
        );
    }
    if let Some(Value::Array(items)) = response.get_mut("output") {
        items.iter_mut().for_each(item_from_ga);
    }
}

#[cfg(test)]
mod tests {
    use super::super::codec::AudioFormat;
    use super::super::protocol::{
        ClientEventKind, ContentPart, ContentRef, Item, ItemStatus, MaxOutputTokens, Modality,
        ResponseCreateParams, ResponseStatus, Role, ServerEvent, Session, SessionConfig,
    };
    use super::*;

    #[test]
    fn the_header_picks_the_dialect() {
        assert_eq!(Dialect::from_header(None), Dialect::Ga);
        assert_eq!(Dialect::from_header(Some("realtime=v1")), Dialect::Beta);
        assert_eq!(
            Dialect::from_header(Some("assistants=v2, realtime=v1")),
            Dialect::Beta
        );
        assert_eq!(Dialect::from_header(Some("assistants=v2")), Dialect::Ga);
    }

    #[test]
    fn a_beta_session_update_becomes_a_partial_ga_one() {
        let event = to_ga(
            json!({"type": "session.update", "event_id": "e1", "session": {
                "modalities": ["text", "audio"],
                "instructions": "Be kind.",
                "voice": "sage",
                "input_audio_format": "g711_ulaw",
                "output_audio_format": "pcm16",
                "input_audio_transcription": {"model": "whisper-1"},
                "turn_detection": {"type": "server_vad", "silence_duration_ms": 700},
                "temperature": 0.7,
                "max_response_output_tokens": 300,
                "speed": 1.1,
            }}),
        );
        assert_eq!(
            event,
            json!({"type": "session.update", "event_id": "e1", "session": {
                "output_modalities": ["audio"],
                "instructions": "Be kind.",
                "max_output_tokens": 300,
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcmu"},
                        "transcription": {"model": "whisper-1"},
                        "turn_detection": {"type": "server_vad", "silence_duration_ms": 700},
                    },
                    "output": {
                        "voice": "sage",
                        "format": {"type": "audio/pcm", "rate": 24000},
                        "speed": 1.1,
                    },
                },
            }})
        );
        // Only what was sent is mapped: the GA merge keeps the rest.
        assert_eq!(
            to_ga(json!({"type": "session.update", "session": {"turn_detection": null}})),
            json!({"type": "session.update", "session": {"audio": {"input": {"turn_detection": null}}}})
        );
    }

    #[test]
    fn beta_session_round_trips_through_the_ga_session() {
        let dialect = Dialect::Beta;
        let mut session = Session::new(SessionConfig::new("tessera-voice"));
        let event = dialect
            .parse_client_event(
                r#"{"type":"session.update","session":{"modalities":["text"],"voice":"echo",
                    "input_audio_format":"g711_alaw","output_audio_format":"g711_ulaw",
                    "turn_detection":{"type":"server_vad","threshold":0.6},"temperature":0.9,
                    "max_response_output_tokens":"inf","instructions":"hi"}}"#,
            )
            .unwrap();
        let ClientEventKind::SessionUpdate { session: patch } = event.kind else {
            panic!("not a session update");
        };
        session.update(&patch).unwrap();
        let config = session.config();
        assert_eq!(config.output_modality, Modality::Text);
        assert_eq!(config.input.format, AudioFormat::Pcma);
        assert_eq!(config.output.format, AudioFormat::Pcmu);
        assert_eq!(config.output.voice, "echo");
        assert_eq!(config.input.turn_detection.unwrap().threshold, 0.6);
        assert_eq!(
            config.input.turn_detection.unwrap().silence_duration_ms,
            500
        );

        let updated = dialect
            .outgoing(
                ServerEvent::SessionUpdated {
                    session: session.to_wire(),
                }
                .to_value(),
            )
            .unwrap();
        assert_eq!(updated["type"], json!("session.updated"));
        let beta = &updated["session"];
        assert_eq!(beta["id"], json!(session.id()));
        assert_eq!(beta["object"], json!("realtime.session"));
        assert_eq!(beta["model"], json!("tessera-voice"));
        assert_eq!(beta["modalities"], json!(["text"]));
        assert_eq!(beta["voice"], json!("echo"));
        assert_eq!(beta["input_audio_format"], json!("g711_alaw"));
        assert_eq!(beta["output_audio_format"], json!("g711_ulaw"));
        assert_eq!(beta["turn_detection"]["type"], json!("server_vad"));
        assert_eq!(beta["turn_detection"]["threshold"], json!(0.6));
        assert_eq!(beta["max_response_output_tokens"], json!("inf"));
        assert_eq!(beta["instructions"], json!("hi"));
        assert_eq!(beta["input_audio_transcription"], Value::Null);
        assert_eq!(beta["tools"], json!([]));
        assert!(beta.get("audio").is_none() && beta.get("output_modalities").is_none());

        // The beta session object read back as a beta update changes nothing.
        let before = session.to_wire();
        let echo = to_ga(json!({"type": "session.update", "session": beta.clone()}));
        let ClientEventKind::SessionUpdate { session: patch } =
            protocol::parse_client_value(&echo).unwrap().kind
        else {
            panic!("not a session update");
        };
        session.update(&patch).unwrap();
        assert_eq!(session.to_wire(), before);
    }

    #[test]
    fn beta_items_and_responses_become_ga() {
        let event = Dialect::Beta
            .parse_client_event(
                r#"{"type":"conversation.item.create","item":{"type":"message","role":"assistant",
                    "content":[{"type":"text","text":"earlier answer"}]}}"#,
            )
            .unwrap();
        let ClientEventKind::ConversationItemCreate { item, .. } = event.kind else {
            panic!("not an item");
        };
        assert_eq!(
            item.content,
            vec![ContentPart::OutputText {
                text: "earlier answer".into()
            }]
        );
        let event = Dialect::Beta
            .parse_client_event(
                r#"{"type":"conversation.item.create","item":{"type":"message","role":"user",
                    "content":[{"type":"input_text","text":"q"},{"type":"input_audio","audio":"AAA="}]}}"#,
            )
            .unwrap();
        let ClientEventKind::ConversationItemCreate { item, .. } = event.kind else {
            panic!("not an item");
        };
        assert_eq!(item.content.len(), 2);

        let event = Dialect::Beta
            .parse_client_event(
                r#"{"type":"response.create","response":{"modalities":["text"],"voice":"ash",
                    "output_audio_format":"g711_alaw","max_response_output_tokens":50,
                    "temperature":0.6,"instructions":"quick"}}"#,
            )
            .unwrap();
        let ClientEventKind::ResponseCreate { response } = event.kind else {
            panic!("not response.create");
        };
        assert_eq!(
            response,
            ResponseCreateParams {
                instructions: Some("quick".into()),
                output_modality: Some(Modality::Text),
                max_output_tokens: Some(MaxOutputTokens::Limit(50)),
                output_format: Some(AudioFormat::Pcma),
                voice: Some("ash".into()),
                ..ResponseCreateParams::default()
            }
        );

        // Errors still name the GA param and keep the event id.
        let e = Dialect::Beta
            .parse_client_event(
                r#"{"type":"session.update","event_id":"b1","session":{"input_audio_format":"pcm24"}}"#,
            )
            .and_then(|event| match event.kind {
                ClientEventKind::SessionUpdate { session } => {
                    Session::new(SessionConfig::new("m"))
                        .update(&session)
                        .map_err(|e| e.with_event_id(event.event_id))
                        .map(|()| unreachable!())
                }
                _ => unreachable!(),
            })
            .unwrap_err();
        assert_eq!(e.param.as_deref(), Some("session.audio.input.format.type"));
        assert!(e.message.contains("pcm24"));
        assert_eq!(e.event_id.as_deref(), Some("b1"));
        assert_eq!(
            Dialect::Beta.parse_client_event("nope").unwrap_err().code,
            Some("invalid_json")
        );
    }

    fn at() -> ContentRef {
        ContentRef {
            response_id: "resp_1".into(),
            item_id: "item_1".into(),
            output_index: 0,
            content_index: 0,
        }
    }

    fn beta(event: ServerEvent) -> Option<Value> {
        Dialect::Beta.outgoing(event.to_value())
    }

    #[test]
    fn ga_events_get_beta_names_and_shapes() {
        let names = [
            (
                ServerEvent::ResponseOutputAudioDelta {
                    at: at(),
                    delta: "AA==".into(),
                },
                "response.audio.delta",
            ),
            (
                ServerEvent::ResponseOutputAudioDone { at: at() },
                "response.audio.done",
            ),
            (
                ServerEvent::ResponseOutputAudioTranscriptDelta {
                    at: at(),
                    delta: "He".into(),
                },
                "response.audio_transcript.delta",
            ),
            (
                ServerEvent::ResponseOutputAudioTranscriptDone {
                    at: at(),
                    transcript: "Hey".into(),
                },
                "response.audio_transcript.done",
            ),
            (
                ServerEvent::ResponseOutputTextDelta {
                    at: at(),
                    delta: "He".into(),
                },
                "response.text.delta",
            ),
            (
                ServerEvent::ResponseOutputTextDone {
                    at: at(),
                    text: "Hey".into(),
                },
                "response.text.done",
            ),
            (
                ServerEvent::InputAudioBufferCleared,
                "input_audio_buffer.cleared",
            ),
        ];
        for (event, name) in names {
            let ga = event.to_value();
            let out = beta(event).unwrap();
            assert_eq!(out["type"], json!(name));
            // Only the type changes.
            let (mut ga, mut out) = (ga, out);
            ga.as_object_mut().unwrap().remove("type");
            ga.as_object_mut().unwrap().remove("event_id");
            out.as_object_mut().unwrap().remove("type");
            out.as_object_mut().unwrap().remove("event_id");
            assert_eq!(ga, out);
        }

        let item = Item {
            id: "item_1".into(),
            status: ItemStatus::InProgress,
            role: Role::Assistant,
            content: vec![
                ContentPart::OutputAudio {
                    transcript: "Hey".into(),
                },
                ContentPart::OutputText { text: "Hey".into() },
            ],
        };
        let added = beta(ServerEvent::ConversationItemAdded {
            previous_item_id: None,
            item: item.clone(),
        })
        .unwrap();
        assert_eq!(added["type"], json!("conversation.item.created"));
        assert_eq!(
            added["item"]["content"],
            json!([{"type": "audio", "transcript": "Hey"}, {"type": "text", "text": "Hey"}])
        );
        assert_eq!(
            beta(ServerEvent::ConversationItemDone {
                previous_item_id: None,
                item: item.clone()
            }),
            None
        );
        let part = beta(ServerEvent::ResponseContentPartAdded {
            at: at(),
            part: ContentPart::OutputAudio {
                transcript: String::new(),
            },
        })
        .unwrap();
        assert_eq!(part["part"], json!({"type": "audio", "transcript": ""}));
        let out_item = beta(ServerEvent::ResponseOutputItemDone {
            response_id: "resp_1".into(),
            output_index: 0,
            item: item.clone(),
        })
        .unwrap();
        assert_eq!(out_item["item"]["content"][0]["type"], json!("audio"));

        let config = ResponseCreateParams::default().resolve(&SessionConfig::new("m"));
        let mut response = protocol::Response::new(&config, Some("conv_1".into()));
        response.output.push(item);
        response.finish(ResponseStatus::Completed, None);
        let done = beta(ServerEvent::ResponseDone { response }).unwrap();
        let r = &done["response"];
        assert_eq!(r["object"], json!("realtime.response"));
        assert_eq!(r["modalities"], json!(["text", "audio"]));
        assert_eq!(r["voice"], json!("alloy"));
        assert_eq!(r["output_audio_format"], json!("pcm16"));
        assert_eq!(r["status"], json!("completed"));
        assert_eq!(r["output"][0]["content"][1]["type"], json!("text"));
        assert!(r.get("audio").is_none() && r.get("output_modalities").is_none());

        // GA clients get GA events untouched.
        let ga = ServerEvent::ResponseOutputAudioDone { at: at() }.to_value();
        assert_eq!(Dialect::Ga.outgoing(ga.clone()), Some(ga));
    }
}
