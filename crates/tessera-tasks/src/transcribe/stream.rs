//! Transcription of audio that arrives while it is spoken, for the voice loop.
//!
//! Samples are pushed as they come. Silero VAD finds where each utterance starts and ends.
//! While an utterance goes on, its audio so far is decoded again every
//! [`StreamOptions::update_every`] of new audio; the words two decodings in a row agree on form
//! the committed prefix, which only grows: later audio never changes it. When the utterance
//! ends, it is decoded once more with the full settings (temperature fallback included) and the
//! final text is sent. Every update says what it cost, so a caller can tune the interval.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::decode::{DecodeSettings, Language, Whisper, Window};
use super::join_text;
use super::mel::{SAMPLE_RATE, WINDOW_SAMPLES};
use crate::TaskError;
use crate::vad::{SileroVad, VadEvent, VadOptions, VadStream};

/// How a stream decodes.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamOptions {
    /// Language, task, prompt, beams and temperatures of the final decoding (partial ones use
    /// the first temperature only). Both decode without timestamps: an utterance is one text.
    pub settings: DecodeSettings,
    /// New audio between two partial decodings.
    pub update_every: Duration,
    /// How speech is told from silence.
    pub vad: VadOptions,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            settings: DecodeSettings::default(),
            update_every: Duration::from_millis(1000),
            vad: VadOptions {
                min_silence_ms: 500,
                speech_pad_ms: 100,
                ..VadOptions::default()
            },
        }
    }
}

/// What a stream reports.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// The utterance so far: `committed` will not change; `tentative` may.
    Partial {
        /// Words that later audio does not change.
        committed: String,
        /// The rest of the current guess.
        tentative: String,
        /// Time spent decoding this update.
        cost: Duration,
    },
    /// An utterance ended (or reached 30 s): its final text.
    Final {
        /// The text.
        text: String,
        /// Seconds from the start of the stream.
        start: f64,
        /// Seconds from the start of the stream.
        end: f64,
        /// Time spent decoding it.
        cost: Duration,
    },
}

/// A transcription fed piece by piece.
pub struct TranscribeStream {
    whisper: Arc<Whisper>,
    vad: VadStream<SileroVad>,
    options: StreamOptions,
    language: Option<Language>,
    /// Audio from `buffer_start` on (samples since the stream began).
    buffer: Vec<f32>,
    buffer_start: usize,
    /// Where the current utterance starts, while one is open.
    utterance: Option<usize>,
    /// Samples pushed so far.
    pushed: usize,
    /// `pushed` at the last partial decoding.
    last_update: usize,
    /// The words partial decodings agree on.
    agreement: LocalAgreement,
}

impl std::fmt::Debug for TranscribeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TranscribeStream")
            .field("pushed", &self.pushed)
            .field("utterance", &self.utterance)
            .finish_non_exhaustive()
    }
}

/// Audio kept before speech is heard, so the VAD's padding before a start is still there.
const LOOKBACK: usize = SAMPLE_RATE as usize;

impl TranscribeStream {
    /// A stream over a loaded Whisper and a Silero graph of its own.
    pub fn new(whisper: Arc<Whisper>, vad: SileroVad, options: StreamOptions) -> TranscribeStream {
        let language = options.settings.language.map(|code| Language {
            code,
            probability: 1.0,
        });
        TranscribeStream {
            whisper,
            vad: VadStream::new(vad, options.vad),
            options,
            language,
            buffer: Vec::new(),
            buffer_start: 0,
            utterance: None,
            pushed: 0,
            last_update: 0,
            agreement: LocalAgreement::default(),
        }
    }

    /// The language decoded in (given, or detected on the first utterance).
    pub fn language(&self) -> Option<Language> {
        self.language
    }

    /// Feeds 16 kHz mono samples; returns what they produced.
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<StreamEvent>, TaskError> {
        self.buffer.extend_from_slice(samples);
        self.pushed += samples.len();
        let mut events = Vec::new();
        for event in self.vad.push(samples)? {
            match event {
                VadEvent::SpeechStart { start } => {
                    self.utterance = Some(start.max(self.buffer_start));
                    self.last_update = self.pushed;
                }
                VadEvent::SpeechEnd { start, end } => {
                    events.push(self.finalize(start.max(self.buffer_start), end)?);
                }
            }
        }
        if let Some(start) = self.utterance {
            if self.pushed - start >= WINDOW_SAMPLES - SAMPLE_RATE as usize {
                // Whisper reads 30 s at most: close this part and go on with a new one.
                let end = self.pushed;
                events.push(self.finalize(start, end)?);
                self.utterance = Some(end);
            } else if self.pushed - self.last_update
                >= (self.options.update_every.as_secs_f64() * f64::from(SAMPLE_RATE)) as usize
            {
                events.push(self.partial(start)?);
            }
        }
        self.trim();
        Ok(events)
    }

    /// Ends the audio: an utterance still open gets its final text.
    pub fn finish(&mut self) -> Result<Vec<StreamEvent>, TaskError> {
        let mut events = Vec::new();
        for event in self.vad.finish()? {
            if let VadEvent::SpeechEnd { start, end } = event {
                events.push(self.finalize(start.max(self.buffer_start), end)?);
            }
        }
        Ok(events)
    }

    fn decode(&mut self, start: usize, end: usize, full: bool) -> Result<String, TaskError> {
        let from = start - self.buffer_start;
        let to = (end - self.buffer_start).min(self.buffer.len());
        let mut settings = self.options.settings.clone();
        settings.timestamps = false;
        if !full {
            settings.temperatures.truncate(1);
            settings.word_timestamps = false;
        }
        let windows = [Window::first(0, to.saturating_sub(from))];
        let results = self.whisper.decode(
            &self.buffer[from..to],
            &windows,
            &settings,
            &mut self.language,
        )?;
        let segments: Vec<_> = results.into_iter().flat_map(|r| r.segments).collect();
        Ok(join_text(&segments))
    }

    fn partial(&mut self, start: usize) -> Result<StreamEvent, TaskError> {
        let began = Instant::now();
        let text = self.decode(start, self.pushed, false)?;
        self.last_update = self.pushed;
        let (committed, tentative) = self.agreement.update(&text);
        Ok(StreamEvent::Partial {
            committed,
            tentative,
            cost: began.elapsed(),
        })
    }

    fn finalize(&mut self, start: usize, end: usize) -> Result<StreamEvent, TaskError> {
        let began = Instant::now();
        let text = self.decode(start, end, true)?;
        self.utterance = None;
        self.agreement = LocalAgreement::default();
        let seconds = |s: usize| s as f64 / f64::from(SAMPLE_RATE);
        Ok(StreamEvent::Final {
            text,
            start: seconds(start),
            end: seconds(end),
            cost: began.elapsed(),
        })
    }

    /// Drops audio no utterance can need.
    fn trim(&mut self) {
        let keep_from = match self.utterance {
            Some(start) => start,
            None => self.pushed.saturating_sub(LOOKBACK),
        };
        if keep_from > self.buffer_start {
            self.buffer.drain(..keep_from - self.buffer_start);
            self.buffer_start = keep_from;
        }
    }
}

/// The stable prefix of a text decoded again and again as its audio grows ("local
/// agreement"): the words two guesses in a row share (punctuation and case aside) are committed
/// for good; later words are appended, earlier ones never change.
#[derive(Debug, Clone, Default)]
pub struct LocalAgreement {
    /// The words of the last guess.
    guess: Vec<String>,
    /// The words that will not change.
    committed: Vec<String>,
}

impl LocalAgreement {
    /// Takes the next guess; returns the committed text and the rest of the guess.
    pub fn update(&mut self, text: &str) -> (String, String) {
        let words: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        let agreed = self
            .guess
            .iter()
            .zip(&words)
            .take_while(|(a, b)| same_word(a, b))
            .count();
        if agreed > self.committed.len() {
            let new = words[self.committed.len()..agreed].to_vec();
            self.committed.extend(new);
        }
        let tentative = words.get(self.committed.len()..).unwrap_or(&[]).join(" ");
        self.guess = words;
        (self.committed.join(" "), tentative)
    }

    /// The committed words.
    pub fn committed(&self) -> String {
        self.committed.join(" ")
    }
}

/// Whether two spellings are the same word once case and punctuation are set aside.
fn same_word(a: &str, b: &str) -> bool {
    let letters = |w: &str| {
        w.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect::<String>()
    };
    letters(a) == letters(b)
}

#[cfg(test)]
mod tests {
    use super::{LocalAgreement, same_word};

    #[test]
    fn agreement_commits_what_two_guesses_share_and_never_takes_it_back() {
        let mut agreement = LocalAgreement::default();
        assert_eq!(
            agreement.update("what is"),
            (String::new(), "what is".into())
        );
        assert_eq!(
            agreement.update("What is the cap"),
            ("What is".into(), "the cap".into())
        );
        // A later guess that disagrees earlier on keeps what was committed.
        assert_eq!(
            agreement.update("Watt is the capital"),
            ("What is".into(), "the capital".into())
        );
    }

    #[test]
    fn words_agree_whatever_their_punctuation() {
        assert!(same_word("them.", "them,"));
        assert!(same_word("Dashwood", "dashwood"));
        assert!(!same_word("them", "then"));
    }
}
