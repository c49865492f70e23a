//! `/v1/realtime`: the voice loop over a WebSocket, in the shape of OpenAI's Realtime API (GA;
//! the beta shape behind `OpenAI-Beta: realtime=v1`).
//!
//! [`protocol`] parses client events and writes server events, [`beta`] translates the beta
//! shape, [`codec`] carries audio on the wire (base64 PCM16 at 24 kHz, G.711 μ-law and A-law at
//! 8 kHz). This module connects them to a [`VoiceSession`]: client events become session
//! commands, session events become server events. Audio is resampled to the session's 16 kHz on
//! the way in and from the voice's rate to the wire's on the way out. A protocol error answers an
//! `error` event and the session goes on; a cap on concurrent sessions refuses the upgrade with a
//! 503 that says so.

mod beta;
mod codec;
mod protocol;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response as HttpResponse;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tessera_runtime::RuntimeError;
use tessera_tasks::audio::StreamResampler;
use tessera_tasks::chat::Role as ChatRole;
use tessera_voice::{
    Command, ItemId, ResponseId, ResponseStatus as VoiceStatus, SAMPLE_RATE, TurnDetection,
    VoiceEvent, VoiceModels, VoiceSession, VoiceSettings,
};
use tokio::sync::{Semaphore, mpsc};

use crate::error::ApiError;
use crate::{AppState, ErrorResponse};

use beta::Dialect;
use codec::AudioFormat;
use protocol::{
    ClientEvent, ClientEventKind, ContentPart, ContentRef, Item, ItemStatus, MaxOutputTokens,
    Modality, ProtocolError, Response, ResponseCreateParams, ResponseStatus, Role, ServerEvent,
    Session, SessionConfig, StatusReason, TranscriptionUsage,
};

/// Longest reply when the client sets no limit (`"inf"`).
const DEFAULT_MAX_TOKENS: u32 = 1024;

/// The realtime endpoint's models and its cap on concurrent sessions.
#[derive(Clone)]
pub struct Realtime {
    models: VoiceModels,
    sessions: Arc<Semaphore>,
    max_sessions: usize,
}

impl Realtime {
    /// At most `max_sessions` sessions at once, each running `models`.
    pub fn new(models: VoiceModels, max_sessions: usize) -> Realtime {
        Realtime {
            models,
            sessions: Arc::new(Semaphore::new(max_sessions)),
            max_sessions,
        }
    }
}

impl Default for Realtime {
    fn default() -> Self {
        Realtime::new(VoiceModels::default(), 4)
    }
}

/// The query of a connection.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct ConnectQuery {
    /// An LLM to answer with (a chat model of this server); other names (such as OpenAI's
    /// `gpt-realtime`) use the server's voice LLM.
    model: Option<String>,
}

/// Opens a realtime voice session (WebSocket).
#[utoipa::path(
    get,
    path = "/v1/realtime",
    tag = "audio",
    operation_id = "realtime",
    params(ConnectQuery),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol: client events in, server events out, as OpenAI's Realtime API (GA; the beta shape with `OpenAI-Beta: realtime=v1`)"),
        (status = 400, description = "Not a WebSocket upgrade", body = ErrorResponse),
        (status = 401, response = crate::openapi::Unauthorized),
        (status = 403, response = crate::openapi::Forbidden),
        (status = 503, description = "As many sessions as the server allows are open", body = ErrorResponse),
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn connect(
    State(state): State<AppState>,
    query: Result<Query<ConnectQuery>, QueryRejection>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<HttpResponse, ApiError> {
    let upgrade = upgrade.map_err(|rejection| {
        ApiError::bad_request(format!(
            "/v1/realtime is a WebSocket: connect with a WebSocket client (ws://…/v1/realtime) ({rejection})"
        ))
    })?;
    let Query(query) = query.map_err(|rejection| {
        ApiError::bad_request(format!("bad query string: {rejection}")).param("model")
    })?;
    let realtime = state.realtime.clone();
    let permit = realtime.sessions.clone().try_acquire_owned().map_err(|_| {
        ApiError::from(RuntimeError::Overloaded {
            reason: "realtime_sessions",
            message: format!(
                "{} realtime sessions are open, as many as this server allows (--max-realtime-sessions); retry when one closes",
                realtime.max_sessions
            ),
        })
    })?;
    let dialect = Dialect::from_header(headers.get("openai-beta").and_then(|v| v.to_str().ok()));
    let mut models = realtime.models.clone();
    if let Some(model) = query.model.filter(|name| is_chat_model(&state, name)) {
        models.llm = model;
    }
    Ok(upgrade.on_upgrade(move |socket| async move {
        run(socket, state, models, dialect).await;
        drop(permit);
    }))
}

/// Whether `name` is one of the server's chat models (catalog or loaded).
fn is_chat_model(state: &AppState, name: &str) -> bool {
    let known = state
        .runtime
        .models()
        .iter()
        .any(|m| m.id == name && m.task == Some(tessera_core::Task::Chat));
    known
        || state
            .runtime
            .hub()
            .catalog()
            .get(name)
            .is_some_and(|entry| entry.task == tessera_core::Task::Chat)
}

async fn run(socket: WebSocket, state: AppState, models: VoiceModels, dialect: Dialect) {
    let (mut sink, mut stream) = socket.split();
    let mut wire = Wire::new(dialect, &models);
    let (events_in, mut events) = mpsc::unbounded_channel();
    let session = VoiceSession::start(
        state.runtime.clone(),
        models,
        wire.voice_settings(),
        events_in,
    )
    .await;
    let session = match session {
        Ok(session) => session,
        Err(error) => {
            let event =
                ProtocolError::server_error(format!("the voice session could not start: {error}"));
            let _ = send(&mut sink, dialect, &event.to_event()).await;
            let _ = sink.send(Message::Close(None)).await;
            return;
        }
    };
    let (commands, commands_out) = mpsc::channel(256);
    let session = tokio::spawn(session.run(commands_out));
    let created = ServerEvent::SessionCreated {
        session: wire.session.to_wire(),
    };
    if send(&mut sink, dialect, &created).await.is_err() {
        return;
    }
    loop {
        let out = tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => wire.client(text.as_str(), &commands).await,
                Some(Ok(Message::Binary(_))) => vec![ProtocolError::invalid_request(
                    "invalid_json",
                    None,
                    "binary frames are not events: send each event as a JSON text frame",
                )
                .to_event()],
                Some(Ok(_)) => Vec::new(),
                Some(Err(_)) | None => break,
            },
            event = events.recv() => match event {
                Some(event) => wire.voice(event),
                None => break,
            },
        };
        for event in out {
            if send(&mut sink, dialect, &event).await.is_err() {
                break;
            }
        }
    }
    drop(commands);
    session.abort();
}

async fn send(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    dialect: Dialect,
    event: &ServerEvent,
) -> Result<(), axum::Error> {
    let Some(value) = dialect.outgoing(event.to_value()) else {
        return Ok(());
    };
    sink.send(Message::Text(value.to_string().into())).await
}

/// A response on the wire.
struct WireResponse {
    response: Response,
    item: String,
    /// Resamples the voice to the wire's output rate.
    resampler: Option<StreamResampler>,
}

/// The state of one connection between the wire and the session: the protocol session, ids
/// both ways, the input resampler and the responses in progress.
struct Wire {
    dialect: Dialect,
    session: Session,
    conversation: String,
    input: Option<StreamResampler>,
    input_format: AudioFormat,
    items: HashMap<ItemId, String>,
    ids: HashMap<String, ItemId>,
    /// Ids of client-created items, for the session's ItemAdded events that follow in order.
    created: VecDeque<String>,
    /// The options of the next response the client asked for.
    requested: VecDeque<ResponseCreateParams>,
    responses: HashMap<ResponseId, WireResponse>,
    /// The client sent `response.cancel` since the last response ended.
    cancel_requested: bool,
}

impl Wire {
    fn new(dialect: Dialect, models: &VoiceModels) -> Wire {
        let mut config = SessionConfig::new(models.llm.clone());
        config.instructions = tessera_voice::config::DEFAULT_INSTRUCTIONS.into();
        let input_format = config.input.format;
        Wire {
            dialect,
            session: Session::new(config),
            conversation: protocol::conversation_id(),
            input: None,
            input_format,
            items: HashMap::new(),
            ids: HashMap::new(),
            created: VecDeque::new(),
            requested: VecDeque::new(),
            responses: HashMap::new(),
            cancel_requested: false,
        }
    }

    fn voice_settings(&self) -> VoiceSettings {
        let config = self.session.config();
        let transcription = config.input.transcription.as_ref();
        VoiceSettings {
            instructions: config.instructions.clone(),
            turn_detection: config.input.turn_detection.as_ref().map(|t| TurnDetection {
                threshold: t.threshold as f32,
                prefix_padding_ms: t.prefix_padding_ms,
                silence_duration_ms: t.silence_duration_ms,
                create_response: t.create_response,
                interrupt_response: t.interrupt_response,
            }),
            audio_output: config.output_modality == Modality::Audio,
            voice: Some(config.output.voice.clone()),
            speed: config.output.speed as f32,
            language: transcription.and_then(|t| t.language.clone()),
            transcription_prompt: transcription.and_then(|t| t.prompt.clone()),
            max_output_tokens: Some(max_tokens(config.max_output_tokens)),
            ..VoiceSettings::default()
        }
    }

    fn wire_item(&mut self, item: ItemId) -> String {
        if let Some(id) = self.items.get(&item) {
            return id.clone();
        }
        let id = protocol::item_id();
        self.name(item, id.clone());
        id
    }

    fn name(&mut self, item: ItemId, id: String) {
        self.items.insert(item, id.clone());
        self.ids.insert(id, item);
    }

    fn previous(&mut self, previous: Option<ItemId>) -> Option<String> {
        previous.map(|p| self.wire_item(p))
    }

    fn session_item(&self, id: &str, param: &str) -> Result<ItemId, ProtocolError> {
        self.ids.get(id).copied().ok_or_else(|| {
            ProtocolError::invalid_request(
                "item_not_found",
                Some(param),
                format!("there is no item '{id}' in this conversation"),
            )
        })
    }

    /// A client frame: commands to the session, and what to answer at once.
    async fn client(&mut self, text: &str, commands: &mpsc::Sender<Command>) -> Vec<ServerEvent> {
        let event = match self.dialect.parse_client_event(text) {
            Ok(event) => event,
            Err(error) => return vec![error.to_event()],
        };
        let ClientEvent { event_id, kind } = event;
        match self.handle(kind, commands).await {
            Ok(events) => events,
            Err(error) => vec![error.with_event_id(event_id).to_event()],
        }
    }

    async fn handle(
        &mut self,
        kind: ClientEventKind,
        commands: &mpsc::Sender<Command>,
    ) -> Result<Vec<ServerEvent>, ProtocolError> {
        let command = |command: Command| async move {
            commands.send(command).await.map_err(|_| {
                ProtocolError::server_error("the voice session has ended; open a new connection")
            })
        };
        match kind {
            ClientEventKind::SessionUpdate { session } => {
                self.session.update(&session)?;
                let format = self.session.config().input.format;
                if format != self.input_format {
                    self.input_format = format;
                    self.input = None;
                }
                command(Command::Configure(Box::new(self.voice_settings()))).await?;
                Ok(vec![ServerEvent::SessionUpdated {
                    session: self.session.to_wire(),
                }])
            }
            ClientEventKind::InputAudioBufferAppend { audio } => {
                let samples = codec::decode_samples(self.input_format, &audio).map_err(|e| {
                    ProtocolError::invalid_request("invalid_value", Some("audio"), e.to_string())
                })?;
                let samples = self.resample_input(&samples)?;
                if !samples.is_empty() {
                    command(Command::Audio(samples)).await?;
                }
                Ok(Vec::new())
            }
            ClientEventKind::InputAudioBufferCommit => {
                command(Command::Commit).await?;
                Ok(Vec::new())
            }
            ClientEventKind::InputAudioBufferClear => {
                self.input = None;
                command(Command::Clear).await?;
                Ok(Vec::new())
            }
            ClientEventKind::ConversationItemCreate {
                previous_item_id: _,
                item,
            } => {
                let text = item_text(&item)?;
                let role = match item.role {
                    Role::User => ChatRole::User,
                    Role::Assistant => ChatRole::Assistant,
                    Role::System => ChatRole::System,
                };
                self.created.push_back(item.id.clone());
                command(Command::Message { role, text }).await?;
                Ok(Vec::new())
            }
            ClientEventKind::ConversationItemTruncate {
                item_id,
                audio_end_ms,
                ..
            } => {
                let item = self.session_item(&item_id, "item_id")?;
                let audio_end_ms = u32::try_from(audio_end_ms).unwrap_or(u32::MAX);
                command(Command::Truncate { item, audio_end_ms }).await?;
                Ok(Vec::new())
            }
            ClientEventKind::ConversationItemDelete { item_id } => {
                let item = self.session_item(&item_id, "item_id")?;
                command(Command::Delete(item)).await?;
                Ok(Vec::new())
            }
            ClientEventKind::ConversationItemRetrieve { item_id } => {
                self.session_item(&item_id, "item_id")?;
                Err(ProtocolError::invalid_request(
                    "unsupported",
                    Some("type"),
                    "conversation.item.retrieve is not served: items are sent whole in conversation.item.done",
                ))
            }
            ClientEventKind::ResponseCreate { response } => {
                let instructions = response.instructions.clone();
                self.requested.push_back(response);
                command(Command::Respond { instructions }).await?;
                Ok(Vec::new())
            }
            ClientEventKind::ResponseCancel { .. } => {
                self.cancel_requested = true;
                command(Command::Cancel).await?;
                Ok(Vec::new())
            }
        }
    }

    /// Wire samples at the session's 16 kHz.
    fn resample_input(&mut self, samples: &[f32]) -> Result<Vec<f32>, ProtocolError> {
        let rate = self.input_format.sample_rate();
        if rate == SAMPLE_RATE {
            return Ok(samples.to_vec());
        }
        let resampler = match &mut self.input {
            Some(resampler) => resampler,
            None => self.input.insert(
                StreamResampler::new(rate, SAMPLE_RATE)
                    .map_err(|e| ProtocolError::server_error(e.to_string()))?,
            ),
        };
        resampler
            .push(samples)
            .map_err(|e| ProtocolError::server_error(e.to_string()))
    }

    /// A session event as server events.
    fn voice(&mut self, event: VoiceEvent) -> Vec<ServerEvent> {
        match event {
            VoiceEvent::SpeechStarted {
                item,
                audio_start_ms,
            } => vec![ServerEvent::SpeechStarted {
                audio_start_ms,
                item_id: self.wire_item(item),
            }],
            VoiceEvent::SpeechStopped { item, audio_end_ms } => vec![ServerEvent::SpeechStopped {
                audio_end_ms,
                item_id: self.wire_item(item),
            }],
            VoiceEvent::Committed { item, previous } => {
                let previous_item_id = self.previous(previous);
                let item_id = self.wire_item(item);
                let user = user_item(&item_id, None);
                vec![
                    ServerEvent::InputAudioBufferCommitted {
                        previous_item_id: previous_item_id.clone(),
                        item_id,
                    },
                    ServerEvent::ConversationItemAdded {
                        previous_item_id,
                        item: user,
                    },
                ]
            }
            VoiceEvent::Cleared => vec![ServerEvent::InputAudioBufferCleared],
            VoiceEvent::ItemAdded {
                item,
                previous,
                role,
                text,
            } => {
                let id = self.created.pop_front().unwrap_or_else(protocol::item_id);
                self.name(item, id.clone());
                let previous_item_id = self.previous(previous);
                let (role, part) = match role {
                    ChatRole::Assistant => (Role::Assistant, ContentPart::OutputText { text }),
                    ChatRole::System | ChatRole::Developer => {
                        (Role::System, ContentPart::InputText { text })
                    }
                    _ => (Role::User, ContentPart::InputText { text }),
                };
                let item = Item {
                    id,
                    status: ItemStatus::Completed,
                    role,
                    content: vec![part],
                };
                vec![
                    ServerEvent::ConversationItemAdded {
                        previous_item_id: previous_item_id.clone(),
                        item: item.clone(),
                    },
                    ServerEvent::ConversationItemDone {
                        previous_item_id,
                        item,
                    },
                ]
            }
            VoiceEvent::InputTranscriptDelta { item, delta } => {
                vec![ServerEvent::InputAudioTranscriptionDelta {
                    item_id: self.wire_item(item),
                    content_index: 0,
                    delta,
                }]
            }
            VoiceEvent::InputTranscript {
                item,
                text,
                seconds,
            } => {
                let item_id = self.wire_item(item);
                vec![
                    ServerEvent::InputAudioTranscriptionCompleted {
                        item_id: item_id.clone(),
                        content_index: 0,
                        transcript: text.clone(),
                        usage: Some(TranscriptionUsage::Duration { seconds }),
                    },
                    ServerEvent::ConversationItemDone {
                        previous_item_id: None,
                        item: user_item(&item_id, Some(text)),
                    },
                ]
            }
            VoiceEvent::TranscriptionFailed { item, message } => {
                vec![ServerEvent::InputAudioTranscriptionFailed {
                    item_id: self.wire_item(item),
                    content_index: 0,
                    error: ProtocolError::server_error(message),
                }]
            }
            VoiceEvent::ResponseStarted { response, item } => self.response_started(response, item),
            VoiceEvent::ResponseTranscript {
                response, delta, ..
            } => self
                .content_ref(response)
                .map(|at| ServerEvent::ResponseOutputAudioTranscriptDelta { at, delta })
                .into_iter()
                .collect(),
            VoiceEvent::ResponseText {
                response, delta, ..
            } => self
                .content_ref(response)
                .map(|at| ServerEvent::ResponseOutputTextDelta { at, delta })
                .into_iter()
                .collect(),
            VoiceEvent::ResponseAudio {
                response,
                samples,
                sample_rate,
                ..
            } => self.response_audio(response, &samples, sample_rate, false),
            VoiceEvent::ResponseDone {
                response,
                status,
                text,
                transcript,
                ..
            } => self.response_done(response, status, text, transcript),
            VoiceEvent::Truncated { item, audio_end_ms } => {
                vec![ServerEvent::ConversationItemTruncated {
                    item_id: self.wire_item(item),
                    content_index: 0,
                    audio_end_ms: u64::from(audio_end_ms),
                }]
            }
            VoiceEvent::Deleted { item } => {
                let item_id = self.wire_item(item);
                self.items.remove(&item);
                self.ids.remove(&item_id);
                vec![ServerEvent::ConversationItemDeleted { item_id }]
            }
            VoiceEvent::Latency(latency) => {
                tracing::debug!(%latency, "realtime turn");
                Vec::new()
            }
            VoiceEvent::Error { code, message } => {
                let error = match code {
                    "response_failed" | "vad_failed" => ProtocolError::server_error(message),
                    _ => ProtocolError::invalid_request(code, None, message),
                };
                vec![error.to_event()]
            }
        }
    }

    fn content_ref(&self, response: ResponseId) -> Option<ContentRef> {
        let state = self.responses.get(&response)?;
        Some(ContentRef {
            response_id: state.response.id.clone(),
            item_id: state.item.clone(),
            output_index: 0,
            content_index: 0,
        })
    }

    fn response_started(&mut self, response: ResponseId, item: ItemId) -> Vec<ServerEvent> {
        let params = self.requested.pop_front().unwrap_or_default();
        let config = params.resolve(self.session.config());
        let audio = config.output_modality == Modality::Audio;
        if audio {
            // As OpenAI: once the model has spoken, the voice stays.
            self.session.lock_voice();
        }
        let mut wire = Response::new(&config, Some(self.conversation.clone()));
        let item_id = self.wire_item(item);
        let previous_item_id = None;
        let part = empty_part(audio);
        let assistant = Item {
            id: item_id.clone(),
            status: ItemStatus::InProgress,
            role: Role::Assistant,
            content: Vec::new(),
        };
        let created = ServerEvent::ResponseCreated {
            response: wire.clone(),
        };
        wire.output.push(assistant.clone());
        let at = ContentRef {
            response_id: wire.id.clone(),
            item_id: item_id.clone(),
            output_index: 0,
            content_index: 0,
        };
        self.responses.insert(
            response,
            WireResponse {
                response: wire.clone(),
                item: item_id,
                resampler: None,
            },
        );
        vec![
            created,
            ServerEvent::ResponseOutputItemAdded {
                response_id: wire.id.clone(),
                output_index: 0,
                item: assistant.clone(),
            },
            ServerEvent::ConversationItemAdded {
                previous_item_id,
                item: assistant,
            },
            ServerEvent::ResponseContentPartAdded { at, part },
        ]
    }

    fn response_audio(
        &mut self,
        response: ResponseId,
        samples: &[f32],
        sample_rate: u32,
        last: bool,
    ) -> Vec<ServerEvent> {
        let format = self.session.config().output.format;
        let Some(at) = self.content_ref(response) else {
            return Vec::new();
        };
        let Some(state) = self.responses.get_mut(&response) else {
            return Vec::new();
        };
        if samples.is_empty() && state.resampler.is_none() {
            // Nothing to send and nothing held back (a reply cancelled before its audio).
            return Vec::new();
        }
        let rate = format.sample_rate();
        let resampled = if sample_rate == rate {
            Ok(samples.to_vec())
        } else {
            let resampler = match &mut state.resampler {
                Some(resampler) => Ok(resampler),
                None => StreamResampler::new(sample_rate, rate).map(|r| state.resampler.insert(r)),
            };
            resampler.and_then(|r| {
                let mut out = r.push(samples)?;
                if last {
                    out.extend(r.finish()?);
                }
                Ok(out)
            })
        };
        match resampled {
            Ok(out) if out.is_empty() => Vec::new(),
            Ok(out) => vec![ServerEvent::ResponseOutputAudioDelta {
                at,
                delta: codec::encode(format, &out),
            }],
            Err(error) => vec![ProtocolError::server_error(error.to_string()).to_event()],
        }
    }

    fn response_done(
        &mut self,
        response: ResponseId,
        status: VoiceStatus,
        text: String,
        transcript: String,
    ) -> Vec<ServerEvent> {
        let mut events = self.response_audio(response, &[], 0, true);
        let Some(at) = self.content_ref(response) else {
            return events;
        };
        let Some(mut state) = self.responses.remove(&response) else {
            return events;
        };
        let audio = state.response.output_modality == Modality::Audio;
        let cancel_requested = std::mem::take(&mut self.cancel_requested);
        let (status, reason, item_status) = match status {
            VoiceStatus::Completed => (ResponseStatus::Completed, None, ItemStatus::Completed),
            VoiceStatus::Cancelled if cancel_requested => (
                ResponseStatus::Cancelled,
                Some(StatusReason::ClientCancelled),
                ItemStatus::Incomplete,
            ),
            VoiceStatus::Cancelled => (
                ResponseStatus::Cancelled,
                Some(StatusReason::TurnDetected),
                ItemStatus::Incomplete,
            ),
            VoiceStatus::Incomplete => (
                ResponseStatus::Incomplete,
                Some(StatusReason::MaxOutputTokens),
                ItemStatus::Incomplete,
            ),
            VoiceStatus::Failed => (ResponseStatus::Failed, None, ItemStatus::Incomplete),
        };
        let part = if audio {
            ContentPart::OutputAudio {
                transcript: transcript.clone(),
            }
        } else {
            ContentPart::OutputText { text: text.clone() }
        };
        let item = Item {
            id: state.item.clone(),
            status: item_status,
            role: Role::Assistant,
            content: vec![part.clone()],
        };
        if audio {
            events.push(ServerEvent::ResponseOutputAudioDone { at: at.clone() });
            events.push(ServerEvent::ResponseOutputAudioTranscriptDone {
                at: at.clone(),
                transcript,
            });
        } else {
            events.push(ServerEvent::ResponseOutputTextDone {
                at: at.clone(),
                text,
            });
        }
        events.push(ServerEvent::ResponseContentPartDone { at, part });
        events.push(ServerEvent::ResponseOutputItemDone {
            response_id: state.response.id.clone(),
            output_index: 0,
            item: item.clone(),
        });
        events.push(ServerEvent::ConversationItemDone {
            previous_item_id: None,
            item: item.clone(),
        });
        state.response.output = vec![item];
        state.response.finish(status, reason);
        events.push(ServerEvent::ResponseDone {
            response: state.response,
        });
        events
    }
}

/// A user item made of input audio, with its transcript once known.
fn user_item(id: &str, transcript: Option<String>) -> Item {
    Item {
        id: id.to_string(),
        status: ItemStatus::Completed,
        role: Role::User,
        content: vec![ContentPart::InputAudio {
            audio: None,
            transcript,
        }],
    }
}

fn empty_part(audio: bool) -> ContentPart {
    if audio {
        ContentPart::OutputAudio {
            transcript: String::new(),
        }
    } else {
        ContentPart::OutputText {
            text: String::new(),
        }
    }
}

/// The text of a client-created message item.
fn item_text(item: &Item) -> Result<String, ProtocolError> {
    let mut text = Vec::new();
    for part in &item.content {
        match part {
            ContentPart::InputText { text: t } | ContentPart::OutputText { text: t } => {
                text.push(t.as_str());
            }
            ContentPart::OutputAudio { transcript } => text.push(transcript.as_str()),
            ContentPart::InputAudio { transcript, .. } => match transcript {
                Some(transcript) => text.push(transcript.as_str()),
                None => {
                    return Err(ProtocolError::invalid_request(
                        "invalid_value",
                        Some("item.content"),
                        "input_audio content needs its transcript here; send speech through input_audio_buffer.append",
                    ));
                }
            },
        }
    }
    Ok(text.join(" "))
}

fn max_tokens(max: MaxOutputTokens) -> u32 {
    match max {
        MaxOutputTokens::Inf => DEFAULT_MAX_TOKENS,
        MaxOutputTokens::Limit(limit) => limit,
    }
}
