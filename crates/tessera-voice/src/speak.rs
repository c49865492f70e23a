//! The speak pipeline: newline-delimited JSON events (Claude Code's `stream-json`) in, the
//! assistant's text spoken out, clause by clause, while later lines still arrive.
//!
//! Reading and speaking run side by side: a line is parsed and its text cut into clauses at
//! once; each clause is cleaned for speech, translated when asked, and synthesized in order.
//! A line that is not valid JSON is reported and skipped; nothing else stops the pipeline but
//! the end of its input.

use std::time::{Duration, Instant};

use tessera_runtime::Runtime;
use tessera_tasks::chat::ChatMessage;
use tessera_tasks::llm::{Event, Generate, GenerateRequest, Prompt, Sampling};
use tessera_tasks::speech::{SpeechEvent, SpeechFrontend, SpeechRequest};
use tessera_tasks::transcribe::tokens::language_name;
use tokio::sync::mpsc;

use crate::text::clauses::{ClauseChunker, ClauseOptions};
use crate::text::clean;
use crate::text::stream_json::{Speakable, StreamJsonReader};

/// Translation of the text before it is spoken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    /// The LLM that translates.
    pub llm: String,
    /// The language to speak, as a code (`de`) or an English name (`German`).
    pub language: String,
}

/// How the pipeline speaks.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeakSettings {
    /// The voice (a Piper model).
    pub tts: String,
    /// A speaker of a multi-speaker voice.
    pub speaker: Option<String>,
    /// Speaking rate; 1 is the voice's own.
    pub speed: f32,
    /// Variation of the voice (default: the voice's).
    pub noise_scale: Option<f32>,
    /// Variation of phoneme lengths (default: the voice's).
    pub noise_w: Option<f32>,
    /// Translate before speaking.
    pub translate: Option<Translation>,
}

/// What the pipeline reports, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum SpeakEvent {
    /// A clause is about to be spoken (cleaned, and translated when asked).
    Clause(String),
    /// Audio: mono samples at `sample_rate`.
    Audio {
        /// The samples.
        samples: Vec<f32>,
        /// Their rate.
        sample_rate: u32,
    },
    /// The time from the arrival of the line that completed a clause to its first sample.
    FirstAudio(Duration),
    /// A line was skipped: it is not what the reader understands.
    BadLine {
        /// Its number, from 1.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A clause could not be translated or spoken; the pipeline went on.
    Failed(String),
}

/// A clause and the arrival of the line that completed it.
struct Pending {
    text: String,
    arrived: Instant,
}

/// Runs the pipeline until `lines` ends and everything read has been spoken. Each line comes
/// with the time it arrived, which the latency is measured from.
pub async fn run(
    runtime: Runtime,
    settings: SpeakSettings,
    lines: mpsc::Receiver<(String, Instant)>,
    events: mpsc::UnboundedSender<SpeakEvent>,
) {
    let (clauses_in, clauses_out) = mpsc::unbounded_channel();
    tokio::join!(
        read(lines, clauses_in, &events),
        speak(&runtime, &settings, clauses_out, &events)
    );
}

async fn read(
    mut lines: mpsc::Receiver<(String, Instant)>,
    clauses: mpsc::UnboundedSender<Pending>,
    events: &mpsc::UnboundedSender<SpeakEvent>,
) {
    let mut reader = StreamJsonReader::new();
    let mut chunker = ClauseChunker::new(ClauseOptions::default());
    let mut number = 0;
    let send = |text: String, arrived: Instant| {
        let _ = clauses.send(Pending { text, arrived });
    };
    while let Some((line, arrived)) = lines.recv().await {
        number += 1;
        match reader.line(&line) {
            Ok(speakables) => {
                for speakable in speakables {
                    match speakable {
                        Speakable::Text(text) => chunker
                            .push(&text)
                            .into_iter()
                            .for_each(|clause| send(clause, arrived)),
                        Speakable::BlockEnd => {
                            chunker
                                .finish()
                                .into_iter()
                                .for_each(|clause| send(clause, arrived));
                        }
                    }
                }
            }
            Err(error) => {
                let _ = events.send(SpeakEvent::BadLine {
                    line: number,
                    message: error.to_string(),
                });
            }
        }
    }
    if let Some(rest) = chunker.finish() {
        send(rest, Instant::now());
    }
}

async fn speak(
    runtime: &Runtime,
    settings: &SpeakSettings,
    mut clauses: mpsc::UnboundedReceiver<Pending>,
    events: &mpsc::UnboundedSender<SpeakEvent>,
) {
    while let Some(Pending { text, arrived }) = clauses.recv().await {
        let mut text = clean::for_speech(&text);
        if !text.chars().any(char::is_alphanumeric) {
            continue;
        }
        if let Some(translation) = &settings.translate {
            match translate(runtime, translation, &text).await {
                Ok(translated) => text = translated,
                Err(message) => {
                    let _ = events.send(SpeakEvent::Failed(message));
                    continue;
                }
            }
        }
        let _ = events.send(SpeakEvent::Clause(text.clone()));
        if let Err(message) = synthesize(runtime, settings, text, arrived, events).await {
            let _ = events.send(SpeakEvent::Failed(message));
        }
    }
}

async fn synthesize(
    runtime: &Runtime,
    settings: &SpeakSettings,
    text: String,
    arrived: Instant,
    events: &mpsc::UnboundedSender<SpeakEvent>,
) -> Result<(), String> {
    let request = SpeechRequest {
        text,
        speaker: settings.speaker.clone(),
        speed: settings.speed,
        noise_scale: settings.noise_scale,
        noise_w: settings.noise_w,
    };
    let mut speech = runtime
        .run::<SpeechFrontend>(&settings.tts, request)
        .await
        .map_err(|e| format!("the voice could not start: {e}"))?;
    let mut first = true;
    loop {
        match speech.events.recv().await {
            Some(SpeechEvent::Audio(samples)) => {
                if first {
                    first = false;
                    let _ = events.send(SpeakEvent::FirstAudio(arrived.elapsed()));
                }
                let _ = events.send(SpeakEvent::Audio {
                    samples,
                    sample_rate: speech.sample_rate,
                });
            }
            Some(SpeechEvent::Done) => return Ok(()),
            Some(SpeechEvent::Failed(message)) => {
                return Err(format!("the voice failed: {message}"));
            }
            None => return Err("the voice stopped before the clause ended".into()),
        }
    }
}

/// The prompt that makes an LLM a translator.
fn translation_prompt(language: &str) -> String {
    let name = language_name(language).unwrap_or(language);
    // Whisper's table names languages in lower case.
    let mut letters = name.chars();
    let name: String = letters
        .next()
        .map(|first| first.to_uppercase().chain(letters).collect())
        .unwrap_or_default();
    format!(
        "Translate the user's text into {name}. Reply with the translation only: no notes, \
         no quotes, nothing else."
    )
}

/// `text` in the target language, through the LLM.
async fn translate(
    runtime: &Runtime,
    translation: &Translation,
    text: &str,
) -> Result<String, String> {
    let words = text.split_whitespace().count() as u32;
    let request = GenerateRequest {
        prompt: Some(Prompt::Chat {
            messages: vec![
                ChatMessage::system(translation_prompt(&translation.language)),
                ChatMessage::user(text),
            ],
            tools: Vec::new(),
            tool_choice: Default::default(),
        }),
        sampling: Sampling {
            temperature: 0.0,
            ..Sampling::default()
        },
        // A translation is about as long as its source; the margin covers longer languages.
        max_tokens: Some(words * 4 + 16),
        stop: vec!["\n\n".into()],
        ..GenerateRequest::default()
    };
    let mut generation = runtime
        .run::<Generate>(&translation.llm, request)
        .await
        .map_err(|e| format!("translation could not start: {e}"))?;
    let mut translated = String::new();
    loop {
        match generation.events.recv().await {
            Some(Event::Text { text, .. }) => translated.push_str(&text),
            Some(Event::Done { .. }) => break,
            Some(Event::Failed(message)) => return Err(format!("translation failed: {message}")),
            None => return Err("translation stopped before it ended".into()),
        }
    }
    let translated = translated.trim().trim_matches('"').trim().to_string();
    if translated.is_empty() {
        return Err(format!("the LLM gave no translation of \"{text}\""));
    }
    Ok(translated)
}

#[cfg(test)]
mod tests {
    use super::translation_prompt;

    #[test]
    fn the_translation_prompt_names_the_language() {
        assert!(translation_prompt("de").contains("into German."));
        assert!(translation_prompt("Klingon").contains("into Klingon."));
    }
}
