//! One reply: the LLM streams, its text is cut into clauses, each clause is spoken as soon as
//! it is complete, and audio leaves while later clauses are still being written.

use tessera_runtime::Runtime;
use tessera_tasks::chat::ChatMessage;
use tessera_tasks::llm::{Event, FinishReason, Generate, GenerateRequest, Prompt, Sampling};
use tessera_tasks::speech::{SpeechEvent, SpeechFrontend, SpeechRequest};
use tokio::sync::mpsc;

use crate::text::clauses::{ClauseChunker, ClauseOptions};
use crate::text::clean;

/// What a reply sends as it goes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ReplyEvent {
    /// The LLM's next text.
    Text(String),
    /// A clause, cleaned for speech, went to the voice.
    Clause { index: usize, text: String },
    /// Audio of clause `clause`.
    Audio {
        clause: usize,
        samples: Vec<f32>,
        sample_rate: u32,
    },
    /// The reply ended; `text` is all the LLM wrote.
    Done { text: String, finish: FinishReason },
    /// A stage failed; nothing more comes.
    Failed(String),
}

/// What a reply needs.
#[derive(Clone)]
pub(crate) struct ReplyJob {
    pub runtime: Runtime,
    pub llm: String,
    pub tts: String,
    pub messages: Vec<ChatMessage>,
    pub temperature: f32,
    pub max_tokens: Option<u32>,
    pub audio: bool,
    pub voice: Option<String>,
    pub speed: f32,
}

/// Runs a reply to its end, sending its events; cancelling the task (dropping its future) stops
/// the LLM and the voice within a token or a chunk.
pub(crate) async fn run(job: ReplyJob, events: mpsc::UnboundedSender<ReplyEvent>) {
    let (clauses_in, clauses_out) = mpsc::unbounded_channel();
    let writing = write(&job, clauses_in, &events);
    let speaking = speak(&job, clauses_out, &events);
    let (written, spoken) = tokio::join!(writing, speaking);
    let outcome = written.and_then(|done| spoken.map(|()| done));
    let _ = events.send(match outcome {
        Ok((text, finish)) => ReplyEvent::Done { text, finish },
        Err(message) => ReplyEvent::Failed(message),
    });
}

/// The LLM's side: streams its text out and its clauses to the voice.
async fn write(
    job: &ReplyJob,
    clauses: mpsc::UnboundedSender<String>,
    events: &mpsc::UnboundedSender<ReplyEvent>,
) -> Result<(String, FinishReason), String> {
    let request = GenerateRequest {
        prompt: Some(Prompt::Chat {
            messages: job.messages.clone(),
            tools: Vec::new(),
            tool_choice: Default::default(),
        }),
        sampling: Sampling {
            temperature: job.temperature,
            ..Sampling::default()
        },
        max_tokens: job.max_tokens,
        ..GenerateRequest::default()
    };
    let mut generation = job
        .runtime
        .run::<Generate>(&job.llm, request)
        .await
        .map_err(|e| format!("the LLM could not start: {e}"))?;
    let mut chunker = ClauseChunker::new(ClauseOptions::voice_reply());
    let mut text = String::new();
    let send_clause = |clause: String| {
        // The voice's side may have failed already; its error is the one reported.
        let _ = clauses.send(clause);
    };
    loop {
        match generation.events.recv().await {
            Some(Event::Text { text: piece, .. }) => {
                if piece.is_empty() {
                    continue;
                }
                text.push_str(&piece);
                let _ = events.send(ReplyEvent::Text(piece.clone()));
                if job.audio {
                    chunker.push(&piece).into_iter().for_each(send_clause);
                }
            }
            Some(Event::Done { finish, .. }) => {
                if job.audio {
                    chunker.finish().into_iter().for_each(send_clause);
                }
                return Ok((text, finish));
            }
            Some(Event::Failed(message)) => return Err(format!("the LLM failed: {message}")),
            None => return Err("the LLM stopped before its answer ended".into()),
        }
    }
}

/// The voice's side: speaks each clause in order as it comes.
async fn speak(
    job: &ReplyJob,
    mut clauses: mpsc::UnboundedReceiver<String>,
    events: &mpsc::UnboundedSender<ReplyEvent>,
) -> Result<(), String> {
    let mut index = 0;
    while let Some(clause) = clauses.recv().await {
        let text = clean::for_speech(&clause);
        if !text.chars().any(char::is_alphanumeric) {
            continue;
        }
        let _ = events.send(ReplyEvent::Clause {
            index,
            text: text.clone(),
        });
        let request = SpeechRequest {
            text,
            speaker: job.voice.clone(),
            speed: job.speed,
            noise_scale: None,
            noise_w: None,
        };
        let mut speech = job
            .runtime
            .run::<SpeechFrontend>(&job.tts, request)
            .await
            .map_err(|e| format!("the voice could not start: {e}"))?;
        loop {
            match speech.events.recv().await {
                Some(SpeechEvent::Audio(samples)) => {
                    let _ = events.send(ReplyEvent::Audio {
                        clause: index,
                        samples,
                        sample_rate: speech.sample_rate,
                    });
                }
                Some(SpeechEvent::Done) => break,
                Some(SpeechEvent::Failed(message)) => {
                    return Err(format!("the voice failed: {message}"));
                }
                None => return Err("the voice stopped before the clause ended".into()),
            }
        }
        index += 1;
    }
    Ok(())
}
