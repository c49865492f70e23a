//! Whisper's log-mel spectrogram, computed in Rust: the same numbers as openai/whisper's
//! `log_mel_spectrogram` (and faster-whisper's feature extractor) to float32 rounding.
//!
//! A periodic Hann window of 400 samples every 160 samples (10 ms) over 16 kHz audio, centred
//! with reflected edges; the power spectrum through a Slaney-style mel filterbank (librosa's
//! `htk=False, norm="slaney"`); log10, floored at 8 below the window's maximum, then scaled by
//! `(x + 4) / 4`. The last STFT frame is dropped, as the reference does.

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};

use crate::TaskError;

/// Audio rate Whisper reads.
pub const SAMPLE_RATE: u32 = 16_000;
/// FFT size and window length.
const N_FFT: usize = 400;
/// Samples between frames (10 ms).
pub const HOP: usize = 160;
/// Frames in one 30-second window.
pub const WINDOW_FRAMES: usize = 3000;
/// Samples in one 30-second window.
pub const WINDOW_SAMPLES: usize = WINDOW_FRAMES * HOP;

/// One mel filter: the first FFT bin it covers and its weights from there (the rest are zero).
struct Filter {
    first_bin: usize,
    weights: Vec<f32>,
}

/// Computes log-mel windows for one bin count (80, or 128 for large-v3).
pub struct MelExtractor {
    filters: Vec<Filter>,
    hann: Vec<f32>,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl std::fmt::Debug for MelExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MelExtractor")
            .field("n_mels", &self.filters.len())
            .finish_non_exhaustive()
    }
}

impl MelExtractor {
    /// An extractor for `n_mels` bins.
    pub fn new(n_mels: usize) -> MelExtractor {
        let hann = (0..N_FFT)
            .map(|n| {
                let phase = 2.0 * std::f64::consts::PI * n as f64 / N_FFT as f64;
                (0.5 - 0.5 * phase.cos()) as f32
            })
            .collect();
        MelExtractor {
            filters: slaney_filters(n_mels),
            hann,
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(N_FFT),
        }
    }

    /// Mel bins per frame.
    pub fn n_mels(&self) -> usize {
        self.filters.len()
    }

    /// Features of one 30-second window, row-major `[n_mels][3000]`: `audio` (at most 30 s of
    /// 16 kHz samples) is zero-padded to the window first, as Whisper was trained.
    pub fn window(&self, audio: &[f32]) -> Result<Vec<f32>, TaskError> {
        let mut features = vec![0.0; self.n_mels() * WINDOW_FRAMES];
        self.window_into(audio, &mut features)?;
        Ok(features)
    }

    /// [`MelExtractor::window`] into a slice of `n_mels * 3000` values (one window of a batch).
    pub fn window_into(&self, audio: &[f32], out: &mut [f32]) -> Result<(), TaskError> {
        let n_mels = self.n_mels();
        if out.len() != n_mels * WINDOW_FRAMES {
            return Err(TaskError::Internal(format!(
                "a mel window needs {} values, not {}",
                n_mels * WINDOW_FRAMES,
                out.len()
            )));
        }
        let audio = &audio[..audio.len().min(WINDOW_SAMPLES)];
        // The padded window with N_FFT/2 reflected samples on each side ("reflect": the edge
        // sample itself is not repeated).
        let pad = N_FFT / 2;
        let at = |i: usize| audio.get(i).copied().unwrap_or(0.0);
        let mut padded = Vec::with_capacity(WINDOW_SAMPLES + 2 * pad);
        padded.extend((0..pad).map(|j| at(pad - j)));
        padded.extend((0..WINDOW_SAMPLES).map(at));
        padded.extend((0..pad).map(|j| at(WINDOW_SAMPLES - 2 - j)));

        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f32; spectrum.len()];
        let mut max = f32::NEG_INFINITY;
        // Frames that read only the zero padding after short audio have no energy: their value
        // is the floor, without an FFT (most of a short clip's window).
        let silent_from = (audio.len() + pad).div_ceil(HOP).min(WINDOW_FRAMES);
        let floor = 1e-10f32.log10();
        for bin in 0..n_mels {
            out[bin * WINDOW_FRAMES + silent_from..(bin + 1) * WINDOW_FRAMES].fill(floor);
        }
        if silent_from < WINDOW_FRAMES {
            max = floor;
        }
        for frame in 0..silent_from {
            let samples = &padded[frame * HOP..frame * HOP + N_FFT];
            for ((x, &s), &w) in input.iter_mut().zip(samples).zip(&self.hann) {
                *x = s * w;
            }
            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .map_err(|e| TaskError::Internal(format!("mel FFT: {e}")))?;
            for (p, c) in power.iter_mut().zip(&spectrum) {
                *p = c.norm_sqr();
            }
            for (bin, filter) in self.filters.iter().enumerate() {
                let energy: f32 = filter
                    .weights
                    .iter()
                    .zip(&power[filter.first_bin..])
                    .map(|(w, p)| w * p)
                    .sum();
                let log = energy.max(1e-10).log10();
                max = max.max(log);
                out[bin * WINDOW_FRAMES + frame] = log;
            }
        }
        for value in out.iter_mut() {
            *value = (value.max(max - 8.0) + 4.0) / 4.0;
        }
        Ok(())
    }
}

/// librosa's `filters.mel(sr=16000, n_fft=400, n_mels, htk=False, norm="slaney")`, computed in
/// f64 and kept as the non-zero run of each row.
fn slaney_filters(n_mels: usize) -> Vec<Filter> {
    const LINEAR_STEP: f64 = 200.0 / 3.0;
    const LOG_START_HZ: f64 = 1000.0;
    let log_start_mel = LOG_START_HZ / LINEAR_STEP;
    let log_step = 6.4f64.ln() / 27.0;
    let hz_to_mel = |hz: f64| {
        if hz >= LOG_START_HZ {
            log_start_mel + (hz / LOG_START_HZ).ln() / log_step
        } else {
            hz / LINEAR_STEP
        }
    };
    let mel_to_hz = |mel: f64| {
        if mel >= log_start_mel {
            LOG_START_HZ * (log_step * (mel - log_start_mel)).exp()
        } else {
            LINEAR_STEP * mel
        }
    };
    let rate = f64::from(SAMPLE_RATE);
    let top = hz_to_mel(rate / 2.0);
    let edges: Vec<f64> = (0..n_mels + 2)
        .map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64))
        .collect();
    let bins = N_FFT / 2 + 1;
    (0..n_mels)
        .map(|m| {
            let (low, centre, high) = (edges[m], edges[m + 1], edges[m + 2]);
            let norm = 2.0 / (high - low);
            let row: Vec<f32> = (0..bins)
                .map(|k| {
                    let hz = k as f64 * rate / N_FFT as f64;
                    let rising = (hz - low) / (centre - low);
                    let falling = (high - hz) / (high - centre);
                    (rising.min(falling).max(0.0) * norm) as f32
                })
                .collect();
            let first_bin = row.iter().position(|&w| w > 0.0).unwrap_or(0);
            let last = row.iter().rposition(|&w| w > 0.0).unwrap_or(first_bin);
            Filter {
                first_bin,
                weights: row[first_bin..=last].to_vec(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_lights_the_bins_around_its_frequency() {
        let mel = MelExtractor::new(80);
        let tone: Vec<f32> = (0..16_000)
            .map(|i| (2.0 * std::f32::consts::PI * 1000.0 * i as f32 / 16_000.0).sin() * 0.5)
            .collect();
        let features = mel.window(&tone).expect("a window");
        assert_eq!(features.len(), 80 * WINDOW_FRAMES);
        // Frame 50 (0.5 s) is inside the tone: its loudest bin is where 1 kHz falls (mel 15 of
        // 45.25 on the Slaney scale: bin 26 of 80) and sits at the window's maximum, (max + 4) / 4.
        let frame: Vec<f32> = (0..80).map(|b| features[b * WINDOW_FRAMES + 50]).collect();
        let loudest = (0..80)
            .max_by(|&a, &b| frame[a].total_cmp(&frame[b]))
            .expect("bins");
        assert!((25..=27).contains(&loudest), "loudest bin {loudest}");
        // The padding after the tone is floored at 8 below the maximum.
        let max = features.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let silent = features[10 * WINDOW_FRAMES + 2500];
        assert!(
            (max - silent - 2.0).abs() < 1e-4,
            "max {max} silent {silent}"
        );
    }

    #[test]
    fn the_padding_after_short_audio_is_what_explicit_zeros_give() {
        let mel = MelExtractor::new(80);
        let tone: Vec<f32> = (0..40_000)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / 16_000.0).sin() * 0.3)
            .collect();
        // A whole 30 s of samples runs every frame through the FFT; the short audio skips the
        // frames past its end.
        let mut zeros = tone.clone();
        zeros.resize(WINDOW_SAMPLES, 0.0);
        assert_eq!(
            mel.window(&tone).expect("short"),
            mel.window(&zeros).expect("whole")
        );
    }

    #[test]
    fn filters_are_slaney_normalised() {
        let filters = slaney_filters(80);
        assert_eq!(filters.len(), 80);
        // Slaney normalisation: each triangle's area in Hz is 1, so sum(w) * 40 Hz ≈ 1 for
        // the wide filters at the top.
        let top: f32 = filters[79].weights.iter().sum::<f32>() * 40.0;
        assert!((top - 1.0).abs() < 0.1, "top filter area {top}");
        assert!(filters.iter().all(|f| !f.weights.is_empty()));
    }
}
