//! The decoding of 30-second windows: prompts, temperature fallback, silence checks, segments
//! from timestamp tokens, where to resume, and word timings from the cross-attention alignment.

use std::io::Write;

use serde::Serialize;
use tessera_engines::ct2::{DecodeOptions, Decoded, EncoderOutput, WhisperModel};

use super::mel::{HOP, MelExtractor, SAMPLE_RATE, WINDOW_FRAMES, WINDOW_SAMPLES};
use super::tokens::{self, Vocabulary};
use crate::TaskError;

/// A window whose text compresses better than this (zlib) repeats itself: decode it again.
const COMPRESSION_RATIO_LIMIT: f64 = 2.4;
/// A window whose tokens average a log-probability below this is unsure: decode it again.
const LOGPROB_LIMIT: f64 = -1.0;
/// Above this no-speech probability, an unsure window is silence, not speech.
const NO_SPEECH_LIMIT: f32 = 0.6;
/// Candidates sampled per window at a temperature above 0.
const BEST_OF: usize = 5;
/// The prompt keeps at most this many tokens of the caller's text (half the decoder's context).
const PROMPT_TOKENS: usize = 223;
/// A remainder of a chunk shorter than this is not decoded again (samples: 0.2 s).
const MIN_REMAINDER: usize = 3200;
/// Mel frames of padding the encoder reads after a short window's audio (2 s) before the
/// encoding of silence takes over (see [`DecodeSettings::short_window`]).
const SHORT_WINDOW_PADDING: usize = 200;

/// Transcribe in the spoken language, or translate into English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WhisperTask {
    /// Text in the language spoken.
    #[default]
    Transcribe,
    /// English text, whatever the language spoken.
    Translate,
}

impl WhisperTask {
    /// The name OpenAI's API uses (`transcribe`, `translate`).
    pub fn as_str(self) -> &'static str {
        match self {
            WhisperTask::Transcribe => "transcribe",
            WhisperTask::Translate => "translate",
        }
    }

    /// The decoder's token for the task.
    fn token(self) -> &'static str {
        match self {
            WhisperTask::Transcribe => tokens::TRANSCRIBE,
            WhisperTask::Translate => tokens::TRANSLATE,
        }
    }
}

/// How one request is decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeSettings {
    /// Transcribe or translate.
    pub task: WhisperTask,
    /// The spoken language's code; `None` detects it from the first speech.
    pub language: Option<&'static str>,
    /// Text that comes before the audio (names, spelling, style).
    pub prompt: Option<String>,
    /// The temperatures tried in turn while a window's text looks wrong (first: 0, greedy or
    /// beam search).
    pub temperatures: Vec<f32>,
    /// Beams at temperature 0 (1: greedy).
    pub beam_size: usize,
    /// Decode timestamp tokens, which cut a window into timed segments. Without them a window
    /// is one segment: fewer tokens to decode, for callers that want only the text.
    pub timestamps: bool,
    /// Time each word too.
    pub word_timestamps: bool,
    /// Encode a window whose audio ends before 28 s only up to 2 s after its audio, with the
    /// encoder's output for a silent window standing in for the rest of the 30 s, instead of
    /// running the encoder over the whole window as Whisper was trained. 3–4 times faster on
    /// audio of a few seconds, with the same words on the LibriVox clips and on short spoken
    /// commands, but not always the same on the edges (a clipped first word, a translation
    /// that falls back to sampling), so it is for the voice loop, where the encoder's 30 s
    /// were most of the transcript's latency (docs/benchmarks.md). Off by default.
    pub short_window: bool,
}

impl Default for DecodeSettings {
    fn default() -> Self {
        DecodeSettings {
            task: WhisperTask::Transcribe,
            language: None,
            prompt: None,
            temperatures: fallback_temperatures(0.0),
            beam_size: 1,
            timestamps: true,
            word_timestamps: false,
            short_window: false,
        }
    }
}

/// The temperatures tried from `first` up to 1 in steps of 0.2 (OpenAI's fallback).
pub fn fallback_temperatures(first: f32) -> Vec<f32> {
    let mut temperatures = vec![first];
    let mut t = first;
    while t + 0.2 <= 1.0 + 1e-6 {
        t += 0.2;
        temperatures.push((t * 10.0).round() / 10.0);
    }
    temperatures
}

/// A stretch of audio decoded as one window: samples `start..end` (at most 30 s) of a speech
/// chunk that ends at `chunk_end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// First sample.
    pub start: usize,
    /// One past the last sample.
    pub end: usize,
    /// Where the chunk this window belongs to ends.
    pub chunk_end: usize,
}

impl Window {
    /// The first window of the chunk `start..chunk_end`.
    pub fn first(start: usize, chunk_end: usize) -> Window {
        Window {
            start,
            end: chunk_end.min(start + WINDOW_SAMPLES),
            chunk_end,
        }
    }

    fn seconds(sample: usize) -> f64 {
        sample as f64 / f64::from(SAMPLE_RATE)
    }
}

/// A stretch of text with its time, as OpenAI's `verbose_json` gives it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Segment {
    /// Its place in the transcript, from 0.
    pub id: usize,
    /// The mel frame (10 ms) its window started at.
    pub seek: usize,
    /// Seconds from the start of the audio.
    pub start: f64,
    /// Seconds from the start of the audio.
    pub end: f64,
    /// The text, with its leading space.
    pub text: String,
    /// Its tokens, timestamps included.
    pub tokens: Vec<u32>,
    /// The temperature its window was decoded at.
    pub temperature: f32,
    /// The window's average token log-probability.
    pub avg_logprob: f64,
    /// The window text's zlib compression ratio (high: repetitive).
    pub compression_ratio: f64,
    /// The probability that the window holds no speech.
    pub no_speech_prob: f32,
    /// The words, when word timestamps were asked for.
    #[serde(skip)]
    pub words: Vec<Word>,
}

/// A word and when it was said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Word {
    /// The word, without surrounding spaces (punctuation attached).
    pub word: String,
    /// Seconds from the start of the audio.
    pub start: f64,
    /// Seconds from the start of the audio.
    pub end: f64,
    /// The mean probability of its tokens.
    pub probability: f32,
}

/// The language decoded, and how sure the detection was (1 when it was given).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Language {
    /// Its code (`en`).
    pub code: &'static str,
    /// The detection's probability.
    pub probability: f32,
}

/// What decoding one window gave.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowResult {
    /// Its segments, in order (ids are set later).
    pub segments: Vec<Segment>,
    /// The rest of its chunk, when the window did not reach the chunk's end.
    pub next: Option<Window>,
}

/// A stretch of a window's tokens between timestamps, in seconds into the window.
struct Piece {
    start: f64,
    end: f64,
    tokens: Vec<u32>,
}

/// Whisper ready to decode: the engine, the vocabulary and the mel extractor.
pub struct Whisper {
    model: WhisperModel,
    vocab: Vocabulary,
    mel: MelExtractor,
}

impl std::fmt::Debug for Whisper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Whisper")
            .field("model", &self.model)
            .field("vocab", &self.vocab)
            .finish_non_exhaustive()
    }
}

/// A window's decoding, with the numbers that judge it.
struct Attempt {
    decoded: Decoded,
    temperature: f32,
    avg_logprob: f64,
    compression_ratio: f64,
}

impl Attempt {
    fn needs_fallback(&self) -> bool {
        let silent = self.decoded.no_speech_prob > NO_SPEECH_LIMIT;
        let unsure = self.avg_logprob < LOGPROB_LIMIT;
        (self.compression_ratio > COMPRESSION_RATIO_LIMIT || unsure) && !(silent && unsure)
    }

    fn is_silence(&self) -> bool {
        self.decoded.no_speech_prob > NO_SPEECH_LIMIT && self.avg_logprob < LOGPROB_LIMIT
    }
}

impl Whisper {
    /// Joins a loaded model and its vocabulary.
    pub fn new(model: WhisperModel, vocab: Vocabulary) -> Whisper {
        let mel = MelExtractor::new(model.n_mels());
        Whisper { model, vocab, mel }
    }

    /// The engine.
    pub fn model(&self) -> &WhisperModel {
        &self.model
    }

    /// The vocabulary.
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocab
    }

    /// Whether it knows several languages (and can translate).
    pub fn is_multilingual(&self) -> bool {
        self.model.is_multilingual()
    }

    /// Log-mel features of `windows` of `audio`, one after another, and their encoding; with
    /// `short_window`, of their audio and 2 s more only, when every window's audio is short.
    fn encode(
        &self,
        audio: &[f32],
        windows: &[Window],
        short_window: bool,
    ) -> Result<EncoderOutput, TaskError> {
        let n_mels = self.mel.n_mels();
        let size = n_mels * WINDOW_FRAMES;
        let mut features = vec![0.0; size * windows.len()];
        for (window, out) in windows.iter().zip(features.chunks_mut(size)) {
            self.mel
                .window_into(&audio[window.start..window.end], out)?;
        }
        let longest = windows.iter().map(|w| w.end - w.start).max().unwrap_or(0);
        // Even: the encoder's convolution halves the frames.
        let frames = (longest.div_ceil(HOP) + SHORT_WINDOW_PADDING).next_multiple_of(2);
        if short_window && frames < WINDOW_FRAMES {
            let mut short: Vec<f32> = features
                .chunks_exact(WINDOW_FRAMES)
                .flat_map(|row| &row[..frames])
                .copied()
                .collect();
            if let Some(encoded) = self.model.encode_short(&mut short, windows.len(), frames)? {
                return Ok(encoded);
            }
        }
        Ok(self
            .model
            .encode(&mut features, windows.len(), WINDOW_FRAMES)?)
    }

    /// The language of the first window of `encoded`.
    fn detect(&self, encoded: &EncoderOutput) -> Result<Language, TaskError> {
        if !self.is_multilingual() {
            return Ok(Language {
                code: "en",
                probability: 1.0,
            });
        }
        let detected = self.model.detect_language(encoded)?;
        let (token, probability) = detected
            .first()
            .and_then(|languages| languages.first())
            .ok_or_else(|| TaskError::Inference("language detection gave no language".into()))?;
        let code = token.trim_start_matches("<|").trim_end_matches("|>");
        let code = tokens::language_code(code).ok_or_else(|| {
            TaskError::Inference(format!("language detection gave an unknown token {token}"))
        })?;
        Ok(Language {
            code,
            probability: *probability,
        })
    }

    /// The token strings before the decoded text: the caller's prompt after `<|startofprev|>`,
    /// then the start of transcript, language and task.
    fn prompt(&self, settings: &DecodeSettings, language: &str) -> Result<Vec<String>, TaskError> {
        let mut prompt = Vec::new();
        if let Some(text) = settings.prompt.as_deref().filter(|t| !t.trim().is_empty()) {
            let tokens = self.vocab.encode(&format!(" {}", text.trim()))?;
            prompt.push(tokens::SOT_PREV.to_string());
            prompt.extend(
                tokens[tokens.len().saturating_sub(PROMPT_TOKENS)..]
                    .iter()
                    .cloned(),
            );
        }
        prompt.push(tokens::SOT.to_string());
        if self.is_multilingual() {
            prompt.push(format!("<|{language}|>"));
            prompt.push(settings.task.token().to_string());
        }
        if !settings.timestamps {
            prompt.push(tokens::NO_TIMESTAMPS.to_string());
        }
        Ok(prompt)
    }

    fn attempt(&self, decoded: Decoded, temperature: f32) -> Result<Attempt, TaskError> {
        let text = self.vocab.text(&decoded.tokens)?;
        // CTranslate2's score is the log-probability over the length; OpenAI's average counts
        // the end-of-text token too.
        let length = decoded.tokens.len() as f64;
        let avg_logprob = f64::from(decoded.score) * length / (length + 1.0);
        Ok(Attempt {
            compression_ratio: compression_ratio(&text),
            avg_logprob,
            temperature,
            decoded,
        })
    }

    fn options(&self, settings: &DecodeSettings, temperature: f32) -> DecodeOptions {
        DecodeOptions {
            beam_size: settings.beam_size,
            temperature,
            best_of: BEST_OF,
            ..DecodeOptions::default()
        }
    }

    /// Decodes a batch of windows of `audio` (16 kHz mono). `language` is the language to
    /// decode in; when `None`, it is detected on the first window and set.
    pub fn decode(
        &self,
        audio: &[f32],
        windows: &[Window],
        settings: &DecodeSettings,
        language: &mut Option<Language>,
    ) -> Result<Vec<WindowResult>, TaskError> {
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        let started = std::time::Instant::now();
        let encoded = self.encode(audio, windows, settings.short_window)?;
        let encoded_at = started.elapsed();
        let language = match language {
            Some(language) => *language,
            None => *language.insert(self.detect(&encoded)?),
        };
        let prompt = self.prompt(settings, language.code)?;
        let first = settings.temperatures.first().copied().unwrap_or(0.0);
        let decoded = self.model.generate(
            &encoded,
            &vec![prompt.clone(); windows.len()],
            &self.options(settings, first),
        )?;
        tracing::debug!(
            windows = windows.len(),
            encode_ms = encoded_at.as_millis() as u64,
            decode_ms = (started.elapsed() - encoded_at).as_millis() as u64,
            tokens = decoded.iter().map(|d| d.tokens.len()).sum::<usize>(),
            "decoded a batch"
        );
        let mut attempts = Vec::with_capacity(windows.len());
        for (window, decoded) in windows.iter().zip(decoded) {
            let mut attempt = self.attempt(decoded, first)?;
            if attempt.needs_fallback() && settings.temperatures.len() > 1 {
                attempt = self.fall_back(audio, *window, settings, &prompt, attempt)?;
            }
            attempts.push(attempt);
        }
        let words = if settings.word_timestamps {
            self.align(&encoded, windows, &attempts, settings.task, language)?
        } else {
            vec![Vec::new(); windows.len()]
        };
        Ok(windows
            .iter()
            .zip(attempts)
            .zip(words)
            .map(|((window, attempt), words)| self.window_result(*window, &attempt, words))
            .collect())
    }

    /// Decodes one window again at each higher temperature until its text looks right; if
    /// none does, the attempt with the best average log-probability.
    fn fall_back(
        &self,
        audio: &[f32],
        window: Window,
        settings: &DecodeSettings,
        prompt: &[String],
        first: Attempt,
    ) -> Result<Attempt, TaskError> {
        let encoded = self.encode(audio, &[window], settings.short_window)?;
        let mut best = first;
        for &temperature in &settings.temperatures[1..] {
            let decoded = self
                .model
                .generate(
                    &encoded,
                    &[prompt.to_vec()],
                    &self.options(settings, temperature),
                )?
                .into_iter()
                .next()
                .ok_or_else(|| TaskError::Inference("the decoder returned nothing".into()))?;
            let attempt = self.attempt(decoded, temperature)?;
            tracing::debug!(
                temperature,
                avg_logprob = attempt.avg_logprob,
                compression_ratio = attempt.compression_ratio,
                "temperature fallback"
            );
            if !attempt.needs_fallback() {
                return Ok(attempt);
            }
            if attempt.avg_logprob > best.avg_logprob {
                best = attempt;
            }
        }
        Ok(best)
    }

    /// Segments from a window's tokens, and where its chunk resumes.
    fn window_result(&self, window: Window, attempt: &Attempt, words: Vec<Word>) -> WindowResult {
        let offset = Window::seconds(window.start);
        let duration = Window::seconds(window.end - window.start);
        let done = |window: Window| {
            (window.end + MIN_REMAINDER < window.chunk_end)
                .then(|| Window::first(window.end, window.chunk_end))
        };
        if attempt.is_silence() {
            return WindowResult {
                segments: Vec::new(),
                next: done(window),
            };
        }
        let (pieces, resume) = self.split(&attempt.decoded.tokens, duration);
        let mut segments: Vec<Segment> = pieces
            .into_iter()
            .filter_map(|Piece { start, end, tokens }| {
                let text = self.vocab.text(&tokens).ok()?;
                if text.trim().is_empty() {
                    return None;
                }
                Some(Segment {
                    id: 0,
                    seek: window.start / HOP,
                    start: offset + start.min(duration),
                    end: offset + end.clamp(start, duration),
                    text,
                    tokens,
                    temperature: attempt.temperature,
                    avg_logprob: attempt.avg_logprob,
                    compression_ratio: attempt.compression_ratio,
                    no_speech_prob: attempt.decoded.no_speech_prob,
                    words: Vec::new(),
                })
            })
            .collect();
        attach_words(&mut segments, words);
        let next = match resume {
            // The last segment was cut off: decode again from its start.
            Some(at) if at > 0.0 => {
                let start = window.start + (at * f64::from(SAMPLE_RATE)) as usize;
                (start + MIN_REMAINDER < window.chunk_end)
                    .then(|| Window::first(start, window.chunk_end))
            }
            _ => done(window),
        };
        WindowResult { segments, next }
    }

    /// Cuts a window's tokens into pieces at consecutive timestamp tokens. Also says where to
    /// resume (seconds into the window) when the text ends with a pair of timestamps, that is,
    /// with a segment that may go on after the window.
    fn split(&self, tokens: &[u32], duration: f64) -> (Vec<Piece>, Option<f64>) {
        let is_timestamp = |i: usize| self.vocab.is_timestamp(tokens[i]);
        let n = tokens.len();
        let single_ending = n >= 2 && !is_timestamp(n - 2) && is_timestamp(n - 1);
        let mut cuts: Vec<usize> = (1..n)
            .filter(|&i| is_timestamp(i) && is_timestamp(i - 1))
            .collect();
        if cuts.is_empty() {
            // No pair: one piece for the whole window, ending at its last timestamp if any.
            let end = tokens
                .iter()
                .rev()
                .find(|&&t| self.vocab.is_timestamp(t) && t != self.vocab.timestamp_begin)
                .map_or(duration, |&t| self.vocab.timestamp_seconds(t));
            let piece = Piece {
                start: 0.0,
                end,
                tokens: tokens.to_vec(),
            };
            return (vec![piece], None);
        }
        if single_ending {
            cuts.push(n);
        }
        let mut pieces = Vec::with_capacity(cuts.len());
        let mut from = 0;
        for &cut in &cuts {
            let piece = &tokens[from..cut];
            let time = |t: Option<&u32>| {
                t.filter(|&&t| self.vocab.is_timestamp(t))
                    .map(|&t| self.vocab.timestamp_seconds(t))
            };
            let start = time(piece.first()).unwrap_or(0.0);
            let end = time(piece.last()).unwrap_or(duration);
            pieces.push(Piece {
                start,
                end,
                tokens: piece.to_vec(),
            });
            from = cut;
        }
        let resume = (!single_ending)
            .then(|| tokens.get(from.saturating_sub(1)))
            .flatten()
            .map(|&t| self.vocab.timestamp_seconds(t));
        (pieces, resume)
    }

    /// Word timings for each window's text, from the decoder's cross-attention.
    fn align(
        &self,
        encoded: &EncoderOutput,
        windows: &[Window],
        attempts: &[Attempt],
        task: WhisperTask,
        language: Language,
    ) -> Result<Vec<Vec<Word>>, TaskError> {
        let texts: Vec<Vec<u32>> = attempts
            .iter()
            .map(|a| {
                a.decoded
                    .tokens
                    .iter()
                    .copied()
                    .filter(|&t| t < self.vocab.eot)
                    .collect()
            })
            .collect();
        // The engine aligns every window of the batch; a window without text gets one token
        // whose alignment is thrown away.
        let placeholder = self.vocab.id(".").unwrap_or(0);
        let aligned_texts: Vec<Vec<u32>> = texts
            .iter()
            .map(|t| {
                if t.is_empty() {
                    vec![placeholder]
                } else {
                    t.clone()
                }
            })
            .collect();
        let mut start = vec![self.vocab.id(tokens::SOT).unwrap_or(0)];
        if self.is_multilingual() {
            start.extend(self.vocab.id(&format!("<|{}|>", language.code)));
            start.extend(self.vocab.id(task.token()));
        }
        let frames: Vec<usize> = windows
            .iter()
            .map(|w| ((w.end - w.start) / HOP).min(WINDOW_FRAMES))
            .collect();
        let alignments = self.model.align(encoded, &start, &aligned_texts, &frames)?;
        Ok(windows
            .iter()
            .zip(texts.iter().zip(alignments))
            .map(|(window, (text, alignment))| {
                self.words(text, &alignment, Window::seconds(window.start))
            })
            .collect())
    }

    /// Words from text tokens and their alignment: a word starts at a token with a leading
    /// space; its time runs from the frame where the path reaches its first token to the frame
    /// where it reaches the next word's.
    fn words(
        &self,
        text: &[u32],
        alignment: &tessera_engines::ct2::Alignment,
        offset: f64,
    ) -> Vec<Word> {
        if text.is_empty() {
            return Vec::new();
        }
        // The time at which the path first reaches each token (the end of text is the last).
        let mut reached: Vec<f64> = Vec::with_capacity(text.len() + 1);
        for &(token, frame) in &alignment.path {
            if token == reached.len() {
                reached.push(frame as f64 * 0.02);
            }
        }
        let mut bounds = vec![0];
        for (i, &token) in text.iter().enumerate().skip(1) {
            if self.vocab.starts_word(token) {
                bounds.push(i);
            }
        }
        bounds.push(text.len());
        let at = |i: usize| reached.get(i).or(reached.last()).copied().unwrap_or(0.0);
        bounds
            .windows(2)
            .filter_map(|pair| {
                let (from, to) = (pair[0], pair[1]);
                let word = self.vocab.text(&text[from..to]).ok()?;
                let word = word.trim().to_string();
                if word.is_empty() {
                    return None;
                }
                let probs = alignment.token_probs.get(from..to).unwrap_or(&[]);
                let probability = if probs.is_empty() {
                    0.0
                } else {
                    probs.iter().sum::<f32>() / probs.len() as f32
                };
                Some(Word {
                    word,
                    start: offset + at(from),
                    end: offset + at(to),
                    probability,
                })
            })
            .collect()
    }
}

/// Gives each segment the words whose middle falls inside it, each clamped to the segment so
/// that times never go backwards.
fn attach_words(segments: &mut [Segment], words: Vec<Word>) {
    let mut words = words.into_iter().peekable();
    let count = segments.len();
    for (i, segment) in segments.iter_mut().enumerate() {
        let mut last_end = segment.start;
        while let Some(word) = words.peek() {
            let middle = (word.start + word.end) / 2.0;
            if i + 1 < count && middle >= segment.end {
                break;
            }
            let Some(mut word) = words.next() else { break };
            word.start = word.start.clamp(last_end, segment.end);
            word.end = word.end.clamp(word.start, segment.end);
            last_end = word.end;
            segment.words.push(word);
        }
    }
}

/// How much better than itself a text compresses with zlib: Whisper's loops compress well.
fn compression_ratio(text: &str) -> f64 {
    if text.is_empty() {
        return 0.0;
    }
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    let compressed = encoder
        .write_all(text.as_bytes())
        .and_then(|()| encoder.finish())
        .map_or(text.len(), |bytes| bytes.len());
    text.len() as f64 / compressed.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperatures_climb_to_one() {
        assert_eq!(
            fallback_temperatures(0.0),
            vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        );
        assert_eq!(fallback_temperatures(0.5), vec![0.5, 0.7, 0.9]);
        assert_eq!(fallback_temperatures(1.0), vec![1.0]);
    }

    #[test]
    fn repeated_text_compresses_well() {
        let sentence = "He was not an ill-disposed young man.";
        assert!(compression_ratio(sentence) < COMPRESSION_RATIO_LIMIT);
        assert!(compression_ratio(&sentence.repeat(8)) > COMPRESSION_RATIO_LIMIT);
    }

    #[test]
    fn words_stay_inside_their_segments() {
        let segment = |start: f64, end: f64| Segment {
            id: 0,
            seek: 0,
            start,
            end,
            text: String::new(),
            tokens: Vec::new(),
            temperature: 0.0,
            avg_logprob: 0.0,
            compression_ratio: 1.0,
            no_speech_prob: 0.0,
            words: Vec::new(),
        };
        let word = |word: &str, start: f64, end: f64| Word {
            word: word.into(),
            start,
            end,
            probability: 0.9,
        };
        let mut segments = vec![segment(0.0, 2.0), segment(2.0, 4.0)];
        attach_words(
            &mut segments,
            vec![
                word("a", 0.0, 1.0),
                word("b", 0.9, 2.4),
                word("c", 2.2, 3.0),
                word("d", 3.0, 4.5),
            ],
        );
        let names: Vec<Vec<&str>> = segments
            .iter()
            .map(|s| s.words.iter().map(|w| w.word.as_str()).collect())
            .collect();
        assert_eq!(names, vec![vec!["a", "b"], vec!["c", "d"]]);
        for segment in &segments {
            let mut last = segment.start;
            for word in &segment.words {
                assert!(word.start >= last && word.end >= word.start && word.end <= segment.end);
                last = word.end;
            }
        }
    }
}
