//! From per-window speech probabilities to speech segments.

use crate::{TaskError, in_range};

/// How speech is told from silence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadOptions {
    /// A window at or above this probability is speech (0 to 1; default 0.5).
    pub threshold: f32,
    /// Speech shorter than this is dropped (default 250 ms).
    pub min_speech_ms: u32,
    /// Speech ends only after this much silence (default 100 ms).
    pub min_silence_ms: u32,
    /// Added before and after each segment (default 30 ms).
    pub speech_pad_ms: u32,
}

impl Default for VadOptions {
    fn default() -> Self {
        VadOptions {
            threshold: 0.5,
            min_speech_ms: 250,
            min_silence_ms: 100,
            speech_pad_ms: 30,
        }
    }
}

impl VadOptions {
    /// Refuses values that make no sense, naming the field.
    pub fn check(&self) -> Result<(), TaskError> {
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return Err(TaskError::InvalidParam {
                param: "threshold",
                message: format!(
                    "`threshold` is {}; give a probability between 0 and 1 (exclusive), e.g. 0.5",
                    self.threshold
                ),
            });
        }
        in_range("min_speech_duration_ms", self.min_speech_ms, 0..=60_000)?;
        in_range("min_silence_duration_ms", self.min_silence_ms, 0..=60_000)?;
        in_range("speech_pad_ms", self.speech_pad_ms, 0..=60_000)
    }
}

/// What the detector decided, in samples at 16 kHz from the start of the audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VadEvent {
    /// Speech has gone on for the minimum duration; it began at `start` (padding included).
    SpeechStart {
        /// The first sample of speech.
        start: usize,
    },
    /// Speech ended: the whole segment, padding included.
    SpeechEnd {
        /// The first sample.
        start: usize,
        /// One past the last sample.
        end: usize,
    },
}

/// A state machine over window probabilities: speech begins at a window at or above the
/// threshold and ends after `min_silence_ms` of windows below `threshold - 0.15` (the gap keeps
/// a probability that wavers around the threshold from cutting speech into pieces).
#[derive(Debug, Clone)]
pub struct SpeechDetector {
    threshold: f32,
    release: f32,
    min_speech: usize,
    min_silence: usize,
    pad: usize,
    /// Samples judged so far.
    position: usize,
    /// Where the open segment started, if speech is going on.
    speech_from: Option<usize>,
    /// Whether the open segment was announced with a start event.
    announced: bool,
    /// Where the current silence inside the open segment began.
    silence_from: Option<usize>,
    /// Where the last closed segment ended (padding included), so pads never overlap.
    last_end: usize,
}

impl SpeechDetector {
    /// A detector with these options, at 16 kHz.
    pub fn new(options: VadOptions) -> SpeechDetector {
        let samples = |ms: u32| ms as usize * super::SAMPLE_RATE as usize / 1000;
        SpeechDetector {
            threshold: options.threshold,
            release: (options.threshold - 0.15).max(0.01),
            min_speech: samples(options.min_speech_ms),
            min_silence: samples(options.min_silence_ms),
            pad: samples(options.speech_pad_ms),
            position: 0,
            speech_from: None,
            announced: false,
            silence_from: None,
            last_end: 0,
        }
    }

    /// Judges the next window of `len` samples, whose speech probability is `probability`.
    pub fn push(&mut self, probability: f32, len: usize) -> Option<VadEvent> {
        let start = self.position;
        self.position += len;
        let mut event = None;
        if probability >= self.threshold {
            self.silence_from = None;
            if self.speech_from.is_none() {
                self.speech_from = Some(start);
                self.announced = false;
            }
        } else if probability < self.release
            && let Some(from) = self.speech_from
        {
            let silence = *self.silence_from.get_or_insert(start);
            if self.position - silence >= self.min_silence {
                event = self.close(from, silence);
            }
        }
        if event.is_none()
            && let Some(from) = self.speech_from
            && !self.announced
            && self.silence_from.is_none()
            && self.position - from >= self.min_speech
        {
            self.announced = true;
            event = Some(VadEvent::SpeechStart {
                start: self.padded_start(from),
            });
        }
        event
    }

    /// Where the silence that may end the open segment began, while speech is open and
    /// silence has started (the segment ends there if the silence lasts `min_silence_ms`).
    pub fn silence_since(&self) -> Option<usize> {
        self.speech_from.and(self.silence_from)
    }

    /// Ends the audio: speech still open is closed at the end.
    pub fn finish(&mut self) -> Option<VadEvent> {
        let from = self.speech_from?;
        let end = self.silence_from.unwrap_or(self.position);
        self.close(from, end)
    }

    fn padded_start(&self, from: usize) -> usize {
        from.saturating_sub(self.pad).max(self.last_end)
    }

    fn close(&mut self, from: usize, end: usize) -> Option<VadEvent> {
        self.speech_from = None;
        self.silence_from = None;
        if end - from < self.min_speech {
            return None;
        }
        let start = self.padded_start(from);
        let end = (end + self.pad).min(self.position);
        self.last_end = end;
        Some(VadEvent::SpeechEnd { start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Probabilities of 32 ms windows, and the segments they give (in windows).
    fn run(probabilities: &[f32], options: VadOptions) -> Vec<(usize, usize)> {
        let mut detector = SpeechDetector::new(options);
        let mut events: Vec<VadEvent> = probabilities
            .iter()
            .filter_map(|&p| detector.push(p, 512))
            .collect();
        events.extend(detector.finish());
        events
            .into_iter()
            .filter_map(|event| match event {
                VadEvent::SpeechEnd { start, end } => Some((start, end)),
                VadEvent::SpeechStart { .. } => None,
            })
            .collect()
    }

    const NO_PAD: VadOptions = VadOptions {
        threshold: 0.5,
        min_speech_ms: 250,
        min_silence_ms: 100,
        speech_pad_ms: 0,
    };

    #[test]
    fn speech_between_silences_is_one_segment() {
        let mut p = vec![0.0; 10];
        p.extend([0.9; 20]);
        p.extend([0.0; 10]);
        assert_eq!(run(&p, NO_PAD), vec![(10 * 512, 30 * 512)]);
    }

    #[test]
    fn short_blips_and_short_pauses_are_ignored() {
        // A 64 ms blip is under the minimum speech; a 64 ms pause is under the minimum silence.
        let mut p = vec![0.0; 5];
        p.extend([0.9; 2]);
        p.extend([0.0; 10]);
        p.extend([0.9; 10]);
        p.extend([0.0; 2]);
        p.extend([0.9; 10]);
        assert_eq!(run(&p, NO_PAD), vec![(17 * 512, 39 * 512)]);
    }

    #[test]
    fn wavering_near_the_threshold_does_not_end_speech() {
        let mut p = vec![0.9; 10];
        p.extend([0.4; 20]); // under the threshold, over the release level
        p.extend([0.9; 10]);
        assert_eq!(run(&p, NO_PAD), vec![(0, 40 * 512)]);
    }

    #[test]
    fn padding_widens_segments_without_overlap_or_overrun() {
        let options = VadOptions {
            speech_pad_ms: 30,
            ..NO_PAD
        };
        let mut p = vec![0.0; 2];
        p.extend([0.9; 10]);
        let segments = run(&p, options);
        assert_eq!(segments, vec![(2 * 512 - 480, 12 * 512)]);
    }

    #[test]
    fn start_is_announced_once_speech_lasts() {
        let mut detector = SpeechDetector::new(NO_PAD);
        let events: Vec<(usize, VadEvent)> = [0.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9]
            .iter()
            .enumerate()
            .filter_map(|(i, &p)| detector.push(p, 512).map(|e| (i, e)))
            .collect();
        // 250 ms is 7.8 windows: announced at the 8th window of speech.
        assert_eq!(events, vec![(8, VadEvent::SpeechStart { start: 512 })]);
    }
}
