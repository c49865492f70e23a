//! A voice session: audio in, turns detected, transcribed, answered by the LLM and spoken back,
//! with the conversation kept between turns.
//!
//! The caller drives a session with [`Command`]s (audio, commits, messages, replies, cancels)
//! and reads [`VoiceEvent`]s; it knows nothing of any wire format, so the CLI and the
//! `/v1/realtime` WebSocket drive the same session. Inference runs on the runtime's workers;
//! the session's own loop only routes, so audio keeps being heard (and a reply can be
//! interrupted) while a transcript or a reply is being computed.

use std::time::Instant;

use tessera_runtime::{Runtime, RuntimeError};
use tessera_tasks::audio::{AudioFormat, encode};
use tessera_tasks::chat::{ChatMessage, Role};
use tessera_tasks::llm::{FinishReason, Generate, GenerateRequest, Prompt};
use tessera_tasks::speech::{SpeechEvent, SpeechFrontend, SpeechRequest};
use tessera_tasks::transcribe::stream::LocalAgreement;
use tessera_tasks::transcribe::{TranscribeFrontend, TranscribeRequest};
use tessera_tasks::vad::SileroVad;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::VoiceError;
use crate::config::{VoiceModels, VoiceSettings};
use crate::latency::{TurnClock, TurnLatency};
use crate::reply::{self, ReplyEvent, ReplyJob};
use crate::turn::{Heard, Listener, SAMPLE_RATE, samples_to_ms};

/// A conversation item's number, unique within its session.
pub type ItemId = u64;
/// A reply's number, unique within its session.
pub type ResponseId = u64;

/// What a caller tells a session.
#[derive(Debug, Clone)]
pub enum Command {
    /// Input audio: 16 kHz mono samples.
    Audio(Vec<f32>),
    /// Push-to-talk: the audio since the last commit is a user turn.
    Commit,
    /// Drops the audio not yet committed.
    Clear,
    /// Adds a text message to the conversation.
    Message {
        /// Who says it (user, assistant or system).
        role: Role,
        /// What is said.
        text: String,
    },
    /// Answers now; `instructions` replace the session's for this reply only.
    Respond {
        /// Instructions for this reply.
        instructions: Option<String>,
    },
    /// Stops the reply being given.
    Cancel,
    /// The listener heard only the first `audio_end_ms` of an assistant item: the conversation
    /// keeps only what was heard.
    Truncate {
        /// The assistant item.
        item: ItemId,
        /// Milliseconds of its audio that were played.
        audio_end_ms: u32,
    },
    /// Removes an item from the conversation.
    Delete(ItemId),
    /// New settings (they apply from the next turn or reply).
    Configure(Box<VoiceSettings>),
    /// No more input: an utterance still open is answered, then the session ends once every
    /// reply has finished.
    Finish,
}

/// How a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseStatus {
    /// It said all it had to say.
    Completed,
    /// It was cancelled, or interrupted by the user speaking.
    Cancelled,
    /// It reached its token limit.
    Incomplete,
    /// A stage failed.
    Failed,
}

impl ResponseStatus {
    /// OpenAI's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseStatus::Completed => "completed",
            ResponseStatus::Cancelled => "cancelled",
            ResponseStatus::Incomplete => "incomplete",
            ResponseStatus::Failed => "failed",
        }
    }
}

/// What a session reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum VoiceEvent {
    /// Speech began; it will become user item `item`.
    SpeechStarted {
        /// The item it becomes.
        item: ItemId,
        /// Where, in the session's input audio.
        audio_start_ms: u64,
    },
    /// Speech ended.
    SpeechStopped {
        /// Its item.
        item: ItemId,
        /// Where, in the session's input audio.
        audio_end_ms: u64,
    },
    /// Input audio became user item `item` (its transcript follows).
    Committed {
        /// The new item.
        item: ItemId,
        /// The item before it.
        previous: Option<ItemId>,
    },
    /// The uncommitted audio was dropped.
    Cleared,
    /// A text item was added to the conversation.
    ItemAdded {
        /// The new item.
        item: ItemId,
        /// The item before it.
        previous: Option<ItemId>,
        /// Who says it.
        role: Role,
        /// What is said.
        text: String,
    },
    /// More words of the input transcript that will not change (while the user speaks).
    InputTranscriptDelta {
        /// The user item.
        item: ItemId,
        /// The new words.
        delta: String,
    },
    /// The input transcript, final.
    InputTranscript {
        /// The user item.
        item: ItemId,
        /// The text.
        text: String,
        /// Seconds of audio transcribed.
        seconds: f64,
    },
    /// The input could not be transcribed; the item is dropped from the conversation.
    TranscriptionFailed {
        /// The user item.
        item: ItemId,
        /// Why.
        message: String,
    },
    /// A reply began; it becomes assistant item `item`.
    ResponseStarted {
        /// The reply.
        response: ResponseId,
        /// Its item.
        item: ItemId,
    },
    /// More of the reply's text, as the LLM writes it (text-only replies).
    ResponseText {
        /// The reply.
        response: ResponseId,
        /// Its item.
        item: ItemId,
        /// The new text.
        delta: String,
    },
    /// The words of the audio that follows.
    ResponseTranscript {
        /// The reply.
        response: ResponseId,
        /// Its item.
        item: ItemId,
        /// The new words.
        delta: String,
    },
    /// More of the reply's audio.
    ResponseAudio {
        /// The reply.
        response: ResponseId,
        /// Its item.
        item: ItemId,
        /// Mono samples.
        samples: Vec<f32>,
        /// Their rate.
        sample_rate: u32,
    },
    /// A reply ended.
    ResponseDone {
        /// The reply.
        response: ResponseId,
        /// Its item.
        item: ItemId,
        /// How.
        status: ResponseStatus,
        /// What the conversation keeps of it: all of it, or what was heard before it stopped.
        text: String,
        /// The words spoken (audio replies).
        transcript: String,
    },
    /// Where the turn's time went (after each reply that had an origin).
    Latency(TurnLatency),
    /// An item was cut to what was heard.
    Truncated {
        /// The item.
        item: ItemId,
        /// Milliseconds heard.
        audio_end_ms: u32,
    },
    /// An item was removed.
    Deleted {
        /// The item.
        item: ItemId,
    },
    /// Something failed or was asked wrongly; the session goes on.
    Error {
        /// A short machine-readable cause.
        code: &'static str,
        /// What went wrong and what to do.
        message: String,
    },
}

/// One clause of an assistant item's audio.
#[derive(Debug, Clone)]
struct Clause {
    text: String,
    samples: usize,
}

/// An entry of the conversation.
#[derive(Debug, Clone)]
struct Item {
    id: ItemId,
    role: Role,
    /// `None` while a user item's transcript is being computed.
    text: Option<String>,
    /// An assistant item's audio, clause by clause, at `sample_rate`.
    clauses: Vec<Clause>,
    sample_rate: u32,
}

/// The reply being given.
struct Active {
    id: ResponseId,
    item: ItemId,
    task: JoinHandle<()>,
    clock: Option<TurnClock>,
    text: String,
    clauses: Vec<Clause>,
    audio_started: Option<Instant>,
    samples_out: usize,
    sample_rate: u32,
    /// A reply started on a guessed transcript before its turn has ended: (the user item, where
    /// its silence began) and its events so far, held back until the turn ends there.
    held: Option<((ItemId, usize), Vec<ReplyEvent>)>,
}

/// Results of work the session started.
enum Internal {
    Partial {
        item: ItemId,
        text: Result<String, String>,
    },
    Final {
        item: ItemId,
        text: Result<String, String>,
        seconds: f64,
        clock: Option<TurnClock>,
    },
    Reply {
        response: ResponseId,
        event: ReplyEvent,
    },
    Guess {
        item: ItemId,
        end: usize,
        text: Result<String, String>,
    },
    /// A prefill started by [`VoiceSession::prefill_while_speaking`] ended.
    Prefilled,
}

/// The utterance being spoken, while partial transcripts are made of it.
struct Speaking {
    item: ItemId,
    agreement: LocalAgreement,
    sent: String,
    partial_in_flight: bool,
    last_partial: usize,
    /// The final transcript, guessed as soon as silence began (see [`Guess`]).
    guess: Option<Guess>,
}

/// The final transcript of the utterance up to where silence began, started as soon as it
/// began: if the silence lasts until the turn ends there, the transcript is ready (or nearly)
/// instead of starting then. Speech that resumes makes it stale.
struct Guess {
    end: usize,
    seconds: f64,
    text: Option<Result<String, String>>,
}

/// A voice session over a runtime's models. See the module's documentation.
pub struct VoiceSession {
    runtime: Runtime,
    models: VoiceModels,
    settings: VoiceSettings,
    listener: Listener,
    items: Vec<Item>,
    next_id: u64,
    active: Option<Active>,
    speaking: Option<Speaking>,
    transcribing: usize,
    /// A reply asked for while transcripts were still being made: given when they are done.
    deferred: Option<(Option<String>, Option<TurnClock>)>,
    finishing: bool,
    /// The last finished reply whose audio may still be playing: its item, when its first
    /// audio went out, and its rate.
    playing: Option<(ItemId, Instant, u32)>,
    /// A turn that ended where its guess began, waiting for the guessed transcript.
    awaiting: Option<(ItemId, usize, f64, TurnClock)>,
    /// A prefill of the reply's prompt runs (see [`VoiceSession::prefill_while_speaking`]).
    prefilling: bool,
    internal_in: mpsc::UnboundedSender<Internal>,
    internal_out: mpsc::UnboundedReceiver<Internal>,
    events: mpsc::UnboundedSender<VoiceEvent>,
}

impl VoiceSession {
    /// Starts a session: checks that the models fit the runtime's memory budget, loads them
    /// and warms each with a small job (the system prompt's KV cache included), so the first
    /// turn is as fast as the others.
    pub async fn start(
        runtime: Runtime,
        models: VoiceModels,
        settings: VoiceSettings,
        events: mpsc::UnboundedSender<VoiceEvent>,
    ) -> Result<VoiceSession, VoiceError> {
        check_settings(&settings)?;
        check_budget(&runtime, &models).await?;
        let vad = load_vad(&runtime, &models.vad).await?;
        warm(&runtime, &models, &settings).await?;
        let (internal_in, internal_out) = mpsc::unbounded_channel();
        Ok(VoiceSession {
            listener: Listener::new(vad, settings.turn_detection),
            runtime,
            models,
            settings,
            items: Vec::new(),
            next_id: 1,
            active: None,
            speaking: None,
            transcribing: 0,
            deferred: None,
            finishing: false,
            playing: None,
            awaiting: None,
            prefilling: false,
            internal_in,
            internal_out,
            events,
        })
    }

    /// The settings in force.
    pub fn settings(&self) -> &VoiceSettings {
        &self.settings
    }

    /// Runs until [`Command::Finish`] has been served or the commands end.
    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        loop {
            if self.finishing && self.is_idle() {
                return;
            }
            tokio::select! {
                command = commands.recv(), if !self.finishing => match command {
                    Some(command) => self.command(command),
                    None => return,
                },
                Some(internal) = self.internal_out.recv() => self.internal(internal),
            }
        }
    }

    fn is_idle(&self) -> bool {
        self.active.is_none()
            && self.transcribing == 0
            && self.deferred.is_none()
            && self.awaiting.is_none()
    }

    fn emit(&self, event: VoiceEvent) {
        // A caller that stopped listening ends the session by closing its commands.
        let _ = self.events.send(event);
    }

    fn error(&self, code: &'static str, message: impl Into<String>) {
        self.emit(VoiceEvent::Error {
            code,
            message: message.into(),
        });
    }

    fn new_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn last_item(&self) -> Option<ItemId> {
        self.items.last().map(|item| item.id)
    }

    fn command(&mut self, command: Command) {
        match command {
            Command::Audio(samples) => self.audio(&samples),
            Command::Commit => self.commit(),
            Command::Clear => {
                self.listener.clear();
                self.speaking = None;
                self.emit(VoiceEvent::Cleared);
            }
            Command::Message { role, text } => {
                let item = self.new_id();
                let previous = self.last_item();
                self.items.push(Item {
                    id: item,
                    role,
                    text: Some(text.clone()),
                    clauses: Vec::new(),
                    sample_rate: 0,
                });
                self.emit(VoiceEvent::ItemAdded {
                    item,
                    previous,
                    role,
                    text,
                });
            }
            Command::Respond { instructions } => self.respond(instructions, None),
            Command::Cancel => {
                if self.active.is_some() {
                    self.cancel();
                } else {
                    self.deferred = None;
                }
            }
            Command::Truncate { item, audio_end_ms } => self.truncate(item, audio_end_ms),
            Command::Delete(id) => match self.items.iter().position(|item| item.id == id) {
                Some(index) => {
                    self.items.remove(index);
                    self.emit(VoiceEvent::Deleted { item: id });
                }
                None => self.error("item_not_found", format!("there is no item {id}")),
            },
            Command::Configure(settings) => match check_settings(&settings) {
                Ok(()) => {
                    self.listener.configure(settings.turn_detection);
                    if settings.turn_detection.is_none() {
                        self.speaking = None;
                    }
                    self.settings = *settings;
                }
                Err(error) => self.error("invalid_value", error.to_string()),
            },
            Command::Finish => {
                match self.listener.finish() {
                    Ok(heard) => heard.into_iter().for_each(|h| self.heard(h)),
                    Err(error) => self.error("vad_failed", error.to_string()),
                }
                self.finishing = true;
            }
        }
    }

    fn audio(&mut self, samples: &[f32]) {
        match self.listener.push(samples) {
            Ok(heard) => heard.into_iter().for_each(|h| self.heard(h)),
            Err(error) => self.error("vad_failed", error.to_string()),
        }
        self.maybe_guess();
        self.maybe_partial();
    }

    fn heard(&mut self, heard: Heard) {
        let Some(detection) = self.settings.turn_detection else {
            return;
        };
        match heard {
            Heard::Started { start } => {
                if detection.interrupt_response {
                    if self.active.is_some() {
                        tracing::debug!("speech during the reply: barge-in");
                        self.cancel();
                    } else {
                        self.interrupt_playback();
                    }
                }
                let item = self.new_id();
                self.speaking = Some(Speaking {
                    item,
                    agreement: LocalAgreement::default(),
                    sent: String::new(),
                    partial_in_flight: false,
                    last_partial: self.listener.pushed(),
                    guess: None,
                });
                self.emit(VoiceEvent::SpeechStarted {
                    item,
                    audio_start_ms: samples_to_ms(start),
                });
                self.prefill_while_speaking("");
            }
            Heard::Ended {
                end,
                last_voiced,
                audio,
            } => {
                let item = match &self.speaking {
                    Some(speaking) => speaking.item,
                    None => self.new_id(),
                };
                self.emit(VoiceEvent::SpeechStopped {
                    item,
                    audio_end_ms: samples_to_ms(end),
                });
                let mut clock = TurnClock::new(last_voiced);
                clock.stamp(|l| &mut l.speech_end);
                let guess = self
                    .speaking
                    .as_mut()
                    .and_then(|s| s.guess.take_if(|g| g.end == end));
                match guess {
                    Some(guess) => {
                        self.commit_item(item, detection.create_response);
                        match guess.text {
                            Some(text) => self.transcribed(item, text, guess.seconds, Some(clock)),
                            None => self.awaiting = Some((item, end, guess.seconds, clock)),
                        }
                    }
                    None => {
                        self.add_user_audio(item, audio, Some(clock), detection.create_response)
                    }
                }
            }
        }
    }

    /// Push-to-talk's commit.
    fn commit(&mut self) {
        let (_, audio) = self.listener.take_all();
        if audio.len() < SAMPLE_RATE as usize / 10 {
            self.error(
                "input_audio_buffer_commit_empty",
                format!(
                    "the input audio buffer holds {} ms; commit at least 100 ms of audio",
                    samples_to_ms(audio.len())
                ),
            );
            return;
        }
        let item = match self.speaking.take() {
            Some(speaking) => speaking.item,
            None => self.new_id(),
        };
        self.add_user_audio(item, audio, None, false);
    }

    /// Commits audio as user item `item` and starts its transcript; `respond` answers it once
    /// the transcript is ready.
    fn add_user_audio(
        &mut self,
        item: ItemId,
        audio: Vec<f32>,
        clock: Option<TurnClock>,
        respond: bool,
    ) {
        self.commit_item(item, respond);
        let seconds = audio.len() as f64 / f64::from(SAMPLE_RATE);
        self.transcribe_then(audio, move |text| Internal::Final {
            item,
            text,
            seconds,
            clock,
        });
    }

    /// Transcribes `audio` on the runtime and hands the result back as `done` makes it.
    fn transcribe_then(
        &self,
        audio: Vec<f32>,
        done: impl FnOnce(Result<String, String>) -> Internal + Send + 'static,
    ) {
        let runtime = self.runtime.clone();
        let model = self.models.stt.clone();
        let settings = self.settings.clone();
        let internal = self.internal_in.clone();
        tokio::spawn(async move {
            let text = transcribe(&runtime, &model, &settings, audio).await;
            let _ = internal.send(done(text));
        });
    }

    /// Adds user item `item` (its transcript to come) and says so; `respond` answers it once
    /// the transcript is ready.
    fn commit_item(&mut self, item: ItemId, respond: bool) {
        let previous = self.last_item();
        self.items.push(Item {
            id: item,
            role: Role::User,
            text: None,
            clauses: Vec::new(),
            sample_rate: 0,
        });
        self.emit(VoiceEvent::Committed { item, previous });
        self.transcribing += 1;
        if respond {
            // The reply starts the moment the transcript is ready.
            self.deferred = Some((None, None));
        }
    }

    /// Whether a turn that server VAD ends is answered (`create_response`).
    fn answers_turns(&self) -> bool {
        self.settings
            .turn_detection
            .is_some_and(|d| d.create_response)
    }

    /// Starts the reply on a guessed transcript while the silence that may end the turn goes
    /// on (when the turn will be answered and nothing else is under way); its events are held
    /// until the turn ends where the guess began.
    fn reply_to_guess(&mut self, item: ItemId, end: usize, text: String) {
        if !self.answers_turns()
            || self.active.is_some()
            || self.transcribing > 0
            || self.awaiting.is_some()
            || text.trim().is_empty()
        {
            return;
        }
        let messages = self.conversation(None, Some(&text));
        self.start_reply(messages, None, Some((item, end)));
    }

    /// Starts the final transcript as soon as silence begins inside an utterance (the turn
    /// ends there if the silence lasts); speech that resumes drops the guess.
    fn maybe_guess(&mut self) {
        let silence = self.listener.trailing_silence();
        let Some(speaking) = self.speaking.as_mut() else {
            return;
        };
        let Some(end) = silence else {
            if speaking.guess.take().is_some() {
                tracing::debug!("speech resumed: the guessed transcript is dropped");
                self.drop_held();
            }
            return;
        };
        if speaking.guess.as_ref().is_some_and(|g| g.end == end) {
            return;
        }
        if speaking.guess.is_some() {
            self.drop_held();
        }
        let Some(speaking) = self.speaking.as_mut() else {
            return;
        };
        let Some(audio) = self.listener.utterance_until(end) else {
            return;
        };
        let item = speaking.item;
        speaking.guess = Some(Guess {
            end,
            seconds: audio.len() as f64 / f64::from(SAMPLE_RATE),
            text: None,
        });
        self.transcribe_then(audio, move |text| Internal::Guess { item, end, text });
    }

    /// While the user speaks, puts the conversation so far and `heard` (the latest partial
    /// transcript) in the LLM's KV cache, so the reply's prompt is mostly computed when the
    /// final transcript comes: the history the cache lacks (earlier answers as the template
    /// writes them) and the words already heard. Skipped while a reply or another prefill runs.
    fn prefill_while_speaking(&mut self, heard: &str) {
        if !self.answers_turns() || self.prefilling || self.active.is_some() {
            return;
        }
        self.prefilling = true;
        let runtime = self.runtime.clone();
        let llm = self.models.llm.clone();
        let messages = self.conversation(None, Some(heard));
        let internal = self.internal_in.clone();
        tokio::spawn(async move {
            if let Err(error) = prefill(&runtime, &llm, messages).await {
                tracing::debug!(%error, "prefilling the reply's prompt failed");
            }
            let _ = internal.send(Internal::Prefilled);
        });
    }

    fn maybe_partial(&mut self) {
        let Some(every) = self.settings.partial_every else {
            return;
        };
        let pushed = self.listener.pushed();
        let Some(speaking) = self.speaking.as_mut() else {
            return;
        };
        let due = pushed - speaking.last_partial >= every.as_millis() as usize * 16;
        // While a guess of the final transcript runs, a partial would only slow it down.
        if speaking.partial_in_flight || speaking.guess.is_some() || !due {
            return;
        }
        let Some(audio) = self.listener.utterance_so_far() else {
            return;
        };
        speaking.partial_in_flight = true;
        speaking.last_partial = pushed;
        let item = speaking.item;
        self.transcribe_then(audio, move |text| Internal::Partial { item, text });
    }

    fn internal(&mut self, internal: Internal) {
        match internal {
            Internal::Partial { item, text } => {
                let Some(speaking) = self.speaking.as_mut().filter(|s| s.item == item) else {
                    return;
                };
                speaking.partial_in_flight = false;
                let text = match text {
                    Ok(text) => text,
                    Err(message) => {
                        tracing::debug!(%message, "a partial transcript failed");
                        return;
                    }
                };
                let (committed, _) = speaking.agreement.update(&text);
                if let Some(delta) = new_words(&speaking.sent, &committed) {
                    speaking.sent = committed;
                    self.emit(VoiceEvent::InputTranscriptDelta { item, delta });
                }
                self.prefill_while_speaking(&text);
            }
            Internal::Final {
                item,
                text,
                seconds,
                clock,
            } => self.transcribed(item, text, seconds, clock),
            Internal::Guess { item, end, text } => {
                if let Some((waiting, at, seconds, clock)) = self.awaiting.take() {
                    if waiting == item && at == end {
                        self.transcribed(item, text, seconds, Some(clock));
                        return;
                    }
                    self.awaiting = Some((waiting, at, seconds, clock));
                }
                let current = self
                    .speaking
                    .as_ref()
                    .filter(|s| s.item == item)
                    .and_then(|s| s.guess.as_ref())
                    .is_some_and(|g| g.end == end);
                if current {
                    if let Ok(guessed) = &text {
                        self.reply_to_guess(item, end, guessed.clone());
                    }
                    if let Some(guess) = self
                        .speaking
                        .as_mut()
                        .and_then(|s| s.guess.as_mut())
                        .filter(|g| g.end == end)
                    {
                        guess.text = Some(text);
                    }
                }
            }
            Internal::Prefilled => self.prefilling = false,
            Internal::Reply { response, event } => match self.active.as_mut() {
                Some(active) if active.id == response => match &mut active.held {
                    Some((_, held)) => held.push(event),
                    None => self.reply_event(event),
                },
                _ => {}
            },
        }
    }

    fn transcribed(
        &mut self,
        item: ItemId,
        text: Result<String, String>,
        seconds: f64,
        clock: Option<TurnClock>,
    ) {
        self.transcribing = self.transcribing.saturating_sub(1);
        let sent = match self.speaking.take_if(|s| s.item == item) {
            Some(speaking) => speaking.sent,
            None => String::new(),
        };
        let mut clock = clock;
        match text {
            Ok(text) => {
                if let Some(clock) = clock.as_mut() {
                    clock.stamp(|l| &mut l.transcript);
                }
                if let Some(delta) = new_words(&sent, &text) {
                    self.emit(VoiceEvent::InputTranscriptDelta { item, delta });
                }
                if let Some(entry) = self.items.iter_mut().find(|i| i.id == item) {
                    entry.text = Some(text.clone());
                }
                self.emit(VoiceEvent::InputTranscript {
                    item,
                    text,
                    seconds,
                });
            }
            Err(message) => {
                self.items.retain(|i| i.id != item);
                self.emit(VoiceEvent::TranscriptionFailed { item, message });
            }
        }
        if self.transcribing == 0
            && let Some((instructions, deferred_clock)) = self.deferred.take()
        {
            let heard_nothing = self
                .items
                .iter()
                .find(|i| i.id == item)
                .is_none_or(|i| i.text.as_deref().is_none_or(str::is_empty));
            if heard_nothing && instructions.is_none() {
                tracing::debug!("the turn held no words: no reply");
                return;
            }
            self.respond(instructions, clock.or(deferred_clock));
        }
    }

    /// Starts a reply to the conversation so far (after pending transcripts).
    fn respond(&mut self, instructions: Option<String>, clock: Option<TurnClock>) {
        if self.transcribing > 0 {
            let clock = clock.or_else(|| Some(TurnClock::new(Instant::now())));
            self.deferred = Some((instructions, clock));
            return;
        }
        if let Some(active) = self.active.as_mut()
            && active.held.is_some()
            && instructions.is_none()
        {
            // The reply to this turn started on its guessed transcript: let it out.
            let clock = clock.unwrap_or_else(|| TurnClock::new(Instant::now()));
            active.clock = Some(clock);
            let Some((_, held)) = active.held.take() else {
                return;
            };
            let (response, item) = (active.id, active.item);
            self.emit(VoiceEvent::ResponseStarted { response, item });
            for event in held {
                self.reply_event(event);
            }
            return;
        }
        if self.active.is_some() {
            self.cancel();
        }
        let clock = clock.unwrap_or_else(|| TurnClock::new(Instant::now()));
        let messages = self.conversation(instructions, None);
        self.start_reply(messages, Some(clock), None);
    }

    /// The LLM's messages: the system prompt, the conversation, and `pending` (a guessed user
    /// turn not yet in it).
    fn conversation(
        &self,
        instructions: Option<String>,
        pending: Option<&str>,
    ) -> Vec<ChatMessage> {
        let mut messages = vec![ChatMessage::system(
            instructions.unwrap_or_else(|| self.settings.instructions.clone()),
        )];
        messages.extend(self.items.iter().filter_map(|item| {
            let text = item.text.as_ref().filter(|t| !t.trim().is_empty())?;
            Some(ChatMessage::new(item.role, text.clone()))
        }));
        messages.extend(pending.map(ChatMessage::user));
        messages
    }

    /// Starts a reply to `messages`; `held` (the turn it answers before that turn has ended)
    /// keeps its events back until [`VoiceSession::respond`] lets them out.
    fn start_reply(
        &mut self,
        messages: Vec<ChatMessage>,
        clock: Option<TurnClock>,
        held: Option<(ItemId, usize)>,
    ) {
        let response = self.new_id();
        let item = self.new_id();
        let job = ReplyJob {
            runtime: self.runtime.clone(),
            llm: self.models.llm.clone(),
            tts: self.models.tts.clone(),
            messages,
            temperature: self.settings.temperature,
            max_tokens: self.settings.max_output_tokens,
            audio: self.settings.audio_output,
            voice: self.settings.voice.clone(),
            speed: self.settings.speed,
        };
        let internal = self.internal_in.clone();
        let task = tokio::spawn(async move {
            let (sender, mut receiver) = mpsc::unbounded_channel();
            let forward = async {
                while let Some(event) = receiver.recv().await {
                    if internal.send(Internal::Reply { response, event }).is_err() {
                        return;
                    }
                }
            };
            tokio::join!(reply::run(job, sender), forward);
        });
        self.active = Some(Active {
            id: response,
            item,
            task,
            clock,
            text: String::new(),
            clauses: Vec::new(),
            audio_started: None,
            samples_out: 0,
            sample_rate: 0,
            held: held.map(|turn| (turn, Vec::new())),
        });
        if held.is_none() {
            self.emit(VoiceEvent::ResponseStarted { response, item });
        }
    }

    /// Drops a reply started on a guess that speech has overturned; nobody heard of it.
    fn drop_held(&mut self) {
        if self.active.as_ref().is_some_and(|a| a.held.is_some())
            && let Some(active) = self.active.take()
        {
            tracing::debug!("speech resumed: the reply started on a guess is dropped");
            active.task.abort();
        }
    }

    fn reply_event(&mut self, event: ReplyEvent) {
        let audio_output = self.settings.audio_output;
        let Some(active) = self.active.as_mut() else {
            return;
        };
        let (response, item) = (active.id, active.item);
        match event {
            ReplyEvent::Text(delta) => {
                if let Some(clock) = active.clock.as_mut() {
                    clock.stamp(|l| &mut l.first_token);
                }
                active.text.push_str(&delta);
                if !audio_output {
                    self.emit(VoiceEvent::ResponseText {
                        response,
                        item,
                        delta,
                    });
                }
            }
            ReplyEvent::Clause { text, .. } => {
                if let Some(clock) = active.clock.as_mut() {
                    clock.stamp(|l| &mut l.first_clause);
                }
                let delta = if active.clauses.is_empty() {
                    text.clone()
                } else {
                    format!(" {text}")
                };
                active.clauses.push(Clause { text, samples: 0 });
                self.emit(VoiceEvent::ResponseTranscript {
                    response,
                    item,
                    delta,
                });
            }
            ReplyEvent::Audio {
                clause,
                samples,
                sample_rate,
            } => {
                if let Some(clock) = active.clock.as_mut() {
                    clock.stamp(|l| &mut l.first_audio);
                }
                active.audio_started.get_or_insert_with(Instant::now);
                active.samples_out += samples.len();
                active.sample_rate = sample_rate;
                if let Some(entry) = active.clauses.get_mut(clause) {
                    entry.samples += samples.len();
                }
                self.emit(VoiceEvent::ResponseAudio {
                    response,
                    item,
                    samples,
                    sample_rate,
                });
            }
            ReplyEvent::Done { text, finish } => {
                let status = match finish {
                    FinishReason::Length => ResponseStatus::Incomplete,
                    _ => ResponseStatus::Completed,
                };
                self.finish_reply(status, Some(text));
            }
            ReplyEvent::Failed(message) => {
                self.error("response_failed", message);
                self.finish_reply(ResponseStatus::Failed, None);
            }
        }
    }

    /// Stops the reply; the conversation keeps what the listener has heard of it by now
    /// (audio sent and played in real time since its first chunk).
    fn cancel(&mut self) {
        if self.active.as_ref().is_some_and(|a| a.held.is_some()) {
            self.drop_held();
            return;
        }
        let Some(active) = self.active.as_ref() else {
            return;
        };
        active.task.abort();
        let heard = match active.audio_started {
            Some(started) if self.settings.audio_output => {
                let played = started.elapsed().as_secs_f64() * f64::from(active.sample_rate);
                Some(active.samples_out.min(played as usize))
            }
            _ => None,
        };
        let text = heard.map(|heard| heard_text(&active.clauses, heard));
        self.finish_reply(ResponseStatus::Cancelled, text);
    }

    fn finish_reply(&mut self, status: ResponseStatus, text: Option<String>) {
        let Some(mut active) = self.active.take() else {
            return;
        };
        let transcript = active
            .clauses
            .iter()
            .map(|c| c.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let text = match (status, text) {
            (ResponseStatus::Failed, _) => String::new(),
            (_, Some(text)) => text,
            (_, None) => active.text.clone(),
        };
        let kept = text.trim().to_string();
        if let (Some(started), ResponseStatus::Completed | ResponseStatus::Incomplete) =
            (active.audio_started, status)
        {
            self.playing = Some((active.item, started, active.sample_rate));
        }
        if !kept.is_empty() {
            self.items.push(Item {
                id: active.item,
                role: Role::Assistant,
                text: Some(kept.clone()),
                clauses: std::mem::take(&mut active.clauses),
                sample_rate: active.sample_rate,
            });
        }
        self.emit(VoiceEvent::ResponseDone {
            response: active.id,
            item: active.item,
            status,
            text: kept,
            transcript,
        });
        if let Some(mut clock) = active.clock.take() {
            clock.stamp(|l| &mut l.total);
            let latency = clock.latency;
            latency.record();
            if let (Some(target), Some(first_audio)) = (self.settings.target, latency.first_audio)
                && first_audio > target
            {
                tracing::warn!(
                    "turn over its target: first audio after {} ms (target {} ms): {latency}",
                    first_audio.as_millis(),
                    target.as_millis()
                );
            }
            self.emit(VoiceEvent::Latency(latency));
        }
    }

    /// Speech while the last reply's audio is still being played (it was all synthesized, but
    /// plays in real time): the conversation keeps only what was heard of it.
    fn interrupt_playback(&mut self) {
        let Some((item, started, rate)) = self.playing.take() else {
            return;
        };
        let Some(entry) = self.items.iter().find(|i| i.id == item) else {
            return;
        };
        let total: usize = entry.clauses.iter().map(|c| c.samples).sum();
        let played = (started.elapsed().as_secs_f64() * f64::from(rate)) as usize;
        if played < total {
            tracing::debug!("speech during playback: the reply is cut to what was heard");
            let heard_ms = (played as u64 * 1000 / u64::from(rate.max(1))) as u32;
            self.truncate(item, heard_ms);
        }
    }

    fn truncate(&mut self, id: ItemId, audio_end_ms: u32) {
        if self.active.as_ref().is_some_and(|a| a.item == id) {
            self.cancel();
        }
        let Some(item) = self.items.iter_mut().find(|item| item.id == id) else {
            self.error(
                "item_not_found",
                format!("there is no item {id} to truncate"),
            );
            return;
        };
        if item.role != Role::Assistant || item.sample_rate == 0 {
            self.error(
                "invalid_value",
                format!("item {id} has no audio to truncate: only assistant audio can be"),
            );
            return;
        }
        let total: usize = item.clauses.iter().map(|c| c.samples).sum();
        let heard = (u64::from(audio_end_ms) * u64::from(item.sample_rate) / 1000) as usize;
        if heard > total {
            let length = total as u64 * 1000 / u64::from(item.sample_rate);
            self.error(
                "invalid_value",
                format!("audio_end_ms is {audio_end_ms} but item {id} has {length} ms of audio"),
            );
            return;
        }
        item.text = Some(heard_text(&item.clauses, heard));
        self.emit(VoiceEvent::Truncated {
            item: id,
            audio_end_ms,
        });
    }
}

/// The words of `clauses` heard in their first `heard` samples: whole clauses, then the share
/// of the next one's words that its played share of audio holds.
fn heard_text(clauses: &[Clause], heard: usize) -> String {
    let mut words: Vec<&str> = Vec::new();
    let mut before = 0;
    for clause in clauses {
        if before + clause.samples <= heard {
            words.extend(clause.text.split_whitespace());
            before += clause.samples;
            continue;
        }
        let played = heard.saturating_sub(before) as f64 / clause.samples.max(1) as f64;
        let clause_words: Vec<&str> = clause.text.split_whitespace().collect();
        let count = (clause_words.len() as f64 * played).round() as usize;
        words.extend(&clause_words[..count.min(clause_words.len())]);
        break;
    }
    words.join(" ")
}

/// The words `now` adds after `sent`, when `now` continues it.
fn new_words(sent: &str, now: &str) -> Option<String> {
    let rest = now.strip_prefix(sent)?;
    let rest = if sent.is_empty() {
        rest.trim_start()
    } else {
        rest
    };
    (!rest.trim().is_empty()).then(|| rest.to_string())
}

/// The final (or partial) transcript of 16 kHz audio.
async fn transcribe(
    runtime: &Runtime,
    model: &str,
    settings: &VoiceSettings,
    audio: Vec<f32>,
) -> Result<String, String> {
    let wav = encode(&audio, SAMPLE_RATE, AudioFormat::Wav).map_err(|e| e.to_string())?;
    let request = TranscribeRequest {
        audio: wav,
        language: settings.language.clone(),
        prompt: settings.transcription_prompt.clone(),
        timestamps: false,
        // With turn detection the speech is cut already; push-to-talk audio may hold long
        // silences, which Whisper would fill with invented words.
        vad: settings.turn_detection.is_none(),
        // The encoder over the utterance and 2 s, not Whisper's whole 30 s: the transcript is
        // ready 3-4 times sooner after the user stops.
        short_window: true,
        ..TranscribeRequest::default()
    };
    let transcription = runtime
        .run::<TranscribeFrontend>(model, request)
        .await
        .map_err(|e| format!("speech to text failed: {e}"))?;
    let transcript = transcription
        .collect()
        .await
        .map_err(|e| format!("speech to text failed: {e}"))?;
    Ok(transcript.text)
}

fn check_settings(settings: &VoiceSettings) -> Result<(), VoiceError> {
    if let Some(detection) = settings.turn_detection {
        if !(detection.threshold > 0.0 && detection.threshold < 1.0) {
            return Err(VoiceError::Settings(format!(
                "turn detection threshold is {}; give a probability between 0 and 1 (exclusive)",
                detection.threshold
            )));
        }
        if detection.silence_duration_ms > 10_000 || detection.prefix_padding_ms > 10_000 {
            return Err(VoiceError::Settings(
                "silence_duration_ms and prefix_padding_ms take 0 to 10000 ms".into(),
            ));
        }
    }
    if !(0.25..=4.0).contains(&settings.speed) {
        return Err(VoiceError::Settings(format!(
            "speed is {}; give 0.25 to 4",
            settings.speed
        )));
    }
    if !(0.0..=2.0).contains(&settings.temperature) {
        return Err(VoiceError::Settings(format!(
            "temperature is {}; give 0 to 2",
            settings.temperature
        )));
    }
    Ok(())
}

/// Fails when the models together do not fit the memory budget, naming each one's size.
async fn check_budget(runtime: &Runtime, models: &VoiceModels) -> Result<(), VoiceError> {
    let mut sizes = Vec::new();
    for name in [&models.stt, &models.llm, &models.tts, &models.vad] {
        sizes.push((name.clone(), runtime.footprint(name).await?));
    }
    let total: u64 = sizes.iter().map(|(_, bytes)| bytes).sum();
    let budget = runtime.config().memory_budget;
    if total > budget {
        let each = sizes
            .iter()
            .map(|(name, bytes)| format!("{name} {} MB", bytes >> 20))
            .collect::<Vec<_>>()
            .join(", ");
        return Err(VoiceError::Budget(format!(
            "the voice models need {} MB together ({each}) but the memory budget is {} MB: \
             raise --memory-budget or choose smaller models",
            total >> 20,
            budget >> 20
        )));
    }
    Ok(())
}

/// The session's own Silero graph (its state is the session's), on one thread.
async fn load_vad(runtime: &Runtime, name: &str) -> Result<SileroVad, VoiceError> {
    let runtime = runtime.clone();
    let mut session = runtime.config().session.clone();
    session.intra_threads = 1;
    session.inter_threads = 0;
    let name = name.to_string();
    tokio::task::spawn_blocking(move || {
        let model = runtime
            .hub()
            .pull(&name)
            .map_err(|e| VoiceError::Model(e.to_string()))?;
        let path = model
            .file_with_extension("onnx")
            .map_err(|e| VoiceError::Model(e.to_string()))?;
        SileroVad::load(&path, &session).map_err(|e| VoiceError::Model(e.to_string()))
    })
    .await
    .map_err(|e| VoiceError::Model(format!("loading the VAD stopped: {e}")))?
}

/// Loads the models and runs one small job on each, so that no turn pays a first call's costs;
/// the LLM's job leaves the system prompt in its KV cache.
async fn warm(
    runtime: &Runtime,
    models: &VoiceModels,
    settings: &VoiceSettings,
) -> Result<(), VoiceError> {
    let started = Instant::now();
    let messages = vec![
        ChatMessage::system(settings.instructions.clone()),
        ChatMessage::user("Hello."),
    ];
    prefill(runtime, &models.llm, messages).await?;
    let speech = SpeechRequest {
        text: "Hello.".into(),
        speaker: settings.voice.clone(),
        speed: settings.speed,
        noise_scale: None,
        noise_w: None,
    };
    let mut speech = runtime.run::<SpeechFrontend>(&models.tts, speech).await?;
    while let Some(event) = speech.events.recv().await {
        if let SpeechEvent::Failed(message) = event {
            return Err(VoiceError::Model(format!("the voice failed: {message}")));
        }
    }
    transcribe(
        runtime,
        &models.stt,
        settings,
        vec![0.0; SAMPLE_RATE as usize / 2],
    )
    .await
    .map_err(VoiceError::Model)?;
    tracing::info!(
        ms = started.elapsed().as_millis() as u64,
        "voice models loaded and warm"
    );
    Ok(())
}

/// Runs `messages` through the LLM for one token, so their prompt sits in its KV cache: a later
/// prompt that begins the same way computes only what follows.
async fn prefill(
    runtime: &Runtime,
    llm: &str,
    messages: Vec<ChatMessage>,
) -> Result<(), RuntimeError> {
    let request = GenerateRequest {
        prompt: Some(Prompt::Chat {
            messages,
            tools: Vec::new(),
            tool_choice: Default::default(),
        }),
        max_tokens: Some(1),
        ..GenerateRequest::default()
    };
    let mut generation = runtime.run::<Generate>(llm, request).await?;
    while generation.events.recv().await.is_some() {}
    Ok(())
}

impl From<RuntimeError> for VoiceError {
    fn from(error: RuntimeError) -> Self {
        VoiceError::Runtime(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clause(text: &str, samples: usize) -> Clause {
        Clause {
            text: text.into(),
            samples,
        }
    }

    #[test]
    fn what_was_heard_is_whole_clauses_then_a_share_of_the_next() {
        let clauses = [
            clause("The capital of France", 1000),
            clause("is Paris, a city of art.", 1200),
        ];
        assert_eq!(heard_text(&clauses, 0), "");
        assert_eq!(heard_text(&clauses, 1000), "The capital of France");
        assert_eq!(
            heard_text(&clauses, 1600),
            "The capital of France is Paris, a"
        );
        assert_eq!(
            heard_text(&clauses, 5000),
            "The capital of France is Paris, a city of art."
        );
    }

    #[test]
    fn new_words_continue_what_was_sent() {
        assert_eq!(new_words("", " What is").as_deref(), Some("What is"));
        assert_eq!(new_words("What is", "What is the").as_deref(), Some(" the"));
        assert_eq!(new_words("What is", "What is"), None);
        assert_eq!(new_words("What is", "Watt is the"), None);
    }

    #[test]
    fn a_session_refuses_settings_out_of_range() {
        let mut settings = VoiceSettings::default();
        assert!(check_settings(&settings).is_ok());
        settings.speed = 9.0;
        assert!(
            check_settings(&settings)
                .unwrap_err()
                .to_string()
                .contains("speed")
        );
    }
}
