//! Listening: the input audio, where speech starts and ends in it, and when each piece came.

use std::collections::VecDeque;
use std::time::Instant;

use tessera_tasks::TaskError;
use tessera_tasks::vad::{SileroVad, VadEvent, VadOptions, VadStream};

use crate::config::TurnDetection;

/// Samples per second of everything the listener holds.
pub const SAMPLE_RATE: u32 = 16_000;
/// Speech must last this long to count: a cough or a click does not cut into a reply.
const MIN_SPEECH_MS: u32 = 200;
/// Push-to-talk audio kept at most (then the oldest goes).
const MAX_BUFFER_SECONDS: usize = 600;
/// How long arrival times are remembered.
const ARRIVALS_KEPT: usize = 64;

/// What the listener heard.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Heard {
    /// Speech began at `start` (prefix padding included), in samples since the session began.
    Started { start: usize },
    /// Speech ended at `end`; `audio` is the utterance (prefix padding and the silence that
    /// ended it included); `last_voiced` is when its last voiced frame arrived (the clock a
    /// turn's latency runs on).
    Ended {
        end: usize,
        last_voiced: Instant,
        audio: Vec<f32>,
    },
}

/// The session's input: audio since the last commit (or a short look-back while nobody
/// speaks), Silero's verdicts on it, and the arrival time of each pushed piece.
pub(crate) struct Listener {
    vad: Option<VadStream<SileroVad>>,
    detection: Option<TurnDetection>,
    buffer: Vec<f32>,
    /// The sample index of `buffer[0]`.
    buffer_start: usize,
    pushed: usize,
    /// (samples pushed after a piece, when it came), oldest first.
    arrivals: VecDeque<(usize, Instant)>,
    /// Where the utterance being spoken starts.
    speaking: Option<usize>,
}

impl Listener {
    pub(crate) fn new(vad: SileroVad, detection: Option<TurnDetection>) -> Listener {
        Listener {
            vad: Some(VadStream::new(vad, vad_options(detection))),
            detection,
            buffer: Vec::new(),
            buffer_start: 0,
            pushed: 0,
            arrivals: VecDeque::new(),
            speaking: None,
        }
    }

    /// Changes turn detection; an utterance being spoken is dropped.
    pub(crate) fn configure(&mut self, detection: Option<TurnDetection>) {
        if self.detection == detection {
            return;
        }
        self.detection = detection;
        self.speaking = None;
        if let Some(stream) = self.vad.take() {
            self.vad = Some(VadStream::new(stream.into_inner(), vad_options(detection)));
        }
    }

    pub(crate) fn pushed(&self) -> usize {
        self.pushed
    }

    /// Takes 16 kHz samples; with turn detection on, says where speech started or ended.
    pub(crate) fn push(&mut self, samples: &[f32]) -> Result<Vec<Heard>, TaskError> {
        self.buffer.extend_from_slice(samples);
        self.pushed += samples.len();
        self.arrivals.push_back((self.pushed, Instant::now()));
        if self.arrivals.len() > ARRIVALS_KEPT {
            self.arrivals.pop_front();
        }
        let heard = match (&self.detection, &mut self.vad) {
            (Some(_), Some(vad)) => {
                let events = vad.push(samples)?;
                self.heard(events)
            }
            _ => Vec::new(),
        };
        self.trim();
        Ok(heard)
    }

    /// The end of the audio: speech still going on ends here.
    pub(crate) fn finish(&mut self) -> Result<Vec<Heard>, TaskError> {
        match (&self.detection, &mut self.vad) {
            (Some(_), Some(vad)) => {
                let events = vad.finish()?;
                Ok(self.heard(events))
            }
            _ => Ok(Vec::new()),
        }
    }

    fn heard(&mut self, events: Vec<VadEvent>) -> Vec<Heard> {
        let prefix = self
            .detection
            .map_or(0, |d| ms_to_samples(d.prefix_padding_ms));
        events
            .into_iter()
            .map(|event| match event {
                VadEvent::SpeechStart { start } => {
                    let start = start.saturating_sub(prefix).max(self.buffer_start);
                    self.speaking = Some(start);
                    Heard::Started { start }
                }
                VadEvent::SpeechEnd { start, end } => {
                    let start = self
                        .speaking
                        .take()
                        .unwrap_or_else(|| start.saturating_sub(prefix).max(self.buffer_start));
                    Heard::Ended {
                        end,
                        last_voiced: self.arrival(end),
                        audio: self.audio(start, self.pushed),
                    }
                }
            })
            .collect()
    }

    /// When sample `index` arrived (the oldest time remembered for older samples).
    fn arrival(&self, index: usize) -> Instant {
        self.arrivals
            .iter()
            .find(|(pushed, _)| *pushed >= index)
            .or(self.arrivals.back())
            .map_or_else(Instant::now, |(_, at)| *at)
    }

    /// The audio of `start..end` (what of it is still held).
    pub(crate) fn audio(&self, start: usize, end: usize) -> Vec<f32> {
        let from = start
            .saturating_sub(self.buffer_start)
            .min(self.buffer.len());
        let to = end.saturating_sub(self.buffer_start).min(self.buffer.len());
        self.buffer[from..to.max(from)].to_vec()
    }

    /// Where silence began inside the utterance being spoken, while it goes on: the turn ends
    /// there if the silence lasts.
    pub(crate) fn trailing_silence(&self) -> Option<usize> {
        self.speaking?;
        self.vad.as_ref()?.silence_since()
    }

    /// The utterance being spoken, up to `end`.
    pub(crate) fn utterance_until(&self, end: usize) -> Option<Vec<f32>> {
        self.speaking.map(|start| self.audio(start, end))
    }

    /// The utterance being spoken, so far.
    pub(crate) fn utterance_so_far(&self) -> Option<Vec<f32>> {
        self.speaking.map(|start| self.audio(start, self.pushed))
    }

    /// Everything held since the last commit, and where it starts: push-to-talk's commit. The
    /// buffer is empty after.
    pub(crate) fn take_all(&mut self) -> (usize, Vec<f32>) {
        let start = self.buffer_start;
        self.buffer_start = self.pushed;
        self.speaking = None;
        (start, std::mem::take(&mut self.buffer))
    }

    /// Drops the held audio (an utterance being spoken too).
    pub(crate) fn clear(&mut self) {
        self.buffer.clear();
        self.buffer_start = self.pushed;
        self.speaking = None;
        if let Some(stream) = self.vad.take() {
            self.vad = Some(VadStream::new(
                stream.into_inner(),
                vad_options(self.detection),
            ));
        }
    }

    /// Keeps what a coming start may reach back to, or with push-to-talk everything up to a cap.
    fn trim(&mut self) {
        let keep_from = match (self.speaking, self.detection) {
            (Some(start), _) => start,
            (None, Some(detection)) => self.pushed.saturating_sub(
                ms_to_samples(detection.prefix_padding_ms + MIN_SPEECH_MS) + SAMPLE_RATE as usize,
            ),
            (None, None) => self
                .pushed
                .saturating_sub(MAX_BUFFER_SECONDS * SAMPLE_RATE as usize),
        };
        if keep_from > self.buffer_start {
            let drop = (keep_from - self.buffer_start).min(self.buffer.len());
            self.buffer.drain(..drop);
            self.buffer_start += drop;
        }
    }
}

fn vad_options(detection: Option<TurnDetection>) -> VadOptions {
    let detection = detection.unwrap_or_default();
    VadOptions {
        threshold: detection.threshold,
        min_speech_ms: MIN_SPEECH_MS,
        min_silence_ms: detection.silence_duration_ms,
        // The prefix is added here, from the buffer; the end is where silence began.
        speech_pad_ms: 0,
    }
}

/// Milliseconds as 16 kHz samples.
pub(crate) fn ms_to_samples(ms: u32) -> usize {
    ms as usize * SAMPLE_RATE as usize / 1000
}

/// 16 kHz samples as milliseconds.
pub(crate) fn samples_to_ms(samples: usize) -> u64 {
    samples as u64 * 1000 / u64::from(SAMPLE_RATE)
}
