//! Resampling a stream that arrives in pieces: the Ogg Opus encoder (48 kHz) and `tessera speak
//! --play` (the device's rate) take speech chunk by chunk as the voice makes it.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use crate::TaskError;

/// Input frames per resampler call: 46 ms at 22.05 kHz, a fraction of any speech chunk.
const CHUNK: usize = 1024;

/// Mono samples in at one rate, out at another, in pieces of any length.
///
/// The output is the same audio [`super::resample`] gives for the whole clip: the resampler's
/// start-up delay is cut from the front, and [`StreamResampler::finish`] pads the tail so the
/// total length is the input's length times the ratio.
pub struct StreamResampler {
    /// `None` when the rates are equal: samples pass through.
    resampler: Option<Fft<f32>>,
    from: u32,
    to: u32,
    /// Input not yet resampled (less than one call's worth).
    pending: Vec<f32>,
    /// Output frames still to drop: the resampler's delay.
    delay_left: usize,
    frames_in: u64,
    frames_out: u64,
}

impl std::fmt::Debug for StreamResampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamResampler")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("frames_in", &self.frames_in)
            .field("frames_out", &self.frames_out)
            .finish()
    }
}

impl StreamResampler {
    /// A resampler from `from` Hz to `to` Hz.
    pub fn new(from: u32, to: u32) -> Result<Self, TaskError> {
        if from == 0 || to == 0 {
            return Err(TaskError::InvalidInput(format!(
                "cannot resample {from} Hz to {to} Hz"
            )));
        }
        let resampler = if from == to {
            None
        } else {
            let resampler = Fft::<f32>::new(from as usize, to as usize, CHUNK, 1, FixedSync::Input)
                .map_err(|error| failed(from, to, &error))?;
            Some(resampler)
        };
        let delay_left = resampler.as_ref().map_or(0, |r| r.output_delay());
        Ok(StreamResampler {
            resampler,
            from,
            to,
            pending: Vec::new(),
            delay_left,
            frames_in: 0,
            frames_out: 0,
        })
    }

    /// The output rate.
    pub fn output_rate(&self) -> u32 {
        self.to
    }

    /// Resamples `samples`; returns what is ready (a little is held back for the next call).
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<f32>, TaskError> {
        self.frames_in += samples.len() as u64;
        let Some(resampler) = self.resampler.as_mut() else {
            self.frames_out += samples.len() as u64;
            return Ok(samples.to_vec());
        };
        self.pending.extend_from_slice(samples);
        let mut out = Vec::new();
        let mut start = 0;
        while self.pending.len() - start >= resampler.input_frames_next() {
            let needed = resampler.input_frames_next();
            let input = &self.pending[start..start + needed];
            run(resampler, input, None, &mut out, self.from, self.to)?;
            start += needed;
        }
        self.pending.drain(..start);
        Ok(self.emit(out, None))
    }

    /// Resamples what is held back and ends the stream.
    pub fn finish(&mut self) -> Result<Vec<f32>, TaskError> {
        let Some(resampler) = self.resampler.as_mut() else {
            return Ok(Vec::new());
        };
        let expected =
            (self.frames_in as f64 * f64::from(self.to) / f64::from(self.from)).ceil() as u64;
        let mut out = Vec::new();
        let pending = std::mem::take(&mut self.pending);
        // The last partial chunk, then silence until the delayed tail has come out.
        let mut partial = pending.len();
        let mut input = pending;
        loop {
            let needed = resampler.input_frames_next();
            input.resize(needed, 0.0);
            let indexing = Indexing::new().partial_len(partial);
            run(
                resampler,
                &input,
                Some(&indexing),
                &mut out,
                self.from,
                self.to,
            )?;
            partial = 0;
            let made = (out.len() as u64).saturating_sub(self.delay_left as u64);
            if self.frames_out + made >= expected {
                break;
            }
        }
        Ok(self.emit(out, Some(expected)))
    }

    /// Drops what is left of the delay, and past `end` frames in all.
    fn emit(&mut self, mut out: Vec<f32>, end: Option<u64>) -> Vec<f32> {
        let skip = self.delay_left.min(out.len());
        out.drain(..skip);
        self.delay_left -= skip;
        if let Some(end) = end {
            let room = end.saturating_sub(self.frames_out);
            out.truncate(usize::try_from(room).unwrap_or(usize::MAX));
        }
        self.frames_out += out.len() as u64;
        out
    }
}

fn run(
    resampler: &mut Fft<f32>,
    input: &[f32],
    indexing: Option<&Indexing>,
    out: &mut Vec<f32>,
    from: u32,
    to: u32,
) -> Result<(), TaskError> {
    let frames = input.len();
    let buffer = InterleavedSlice::new(input, 1, frames).map_err(|e| failed(from, to, &e))?;
    let chunk = resampler
        .process(&buffer, indexing)
        .map_err(|error| failed(from, to, &error))?;
    out.extend(chunk.take_data());
    Ok(())
}

fn failed(from: u32, to: u32, error: &dyn std::fmt::Display) -> TaskError {
    TaskError::Internal(format!("resampling {from} Hz to {to} Hz failed: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audio::{Audio, resample};

    #[test]
    fn pieces_resample_like_the_whole_clip() {
        let samples: Vec<f32> = (0..22050 * 2 + 317)
            .map(|i| (i as f32 * 300.0 * std::f32::consts::TAU / 22050.0).sin() * 0.5)
            .collect();
        let whole = resample(
            Audio {
                samples: samples.clone(),
                sample_rate: 22050,
            },
            48000,
        )
        .expect("whole");
        let mut stream = StreamResampler::new(22050, 48000).expect("new");
        let mut pieces = Vec::new();
        for piece in samples.chunks(5000) {
            pieces.extend(stream.push(piece).expect("push"));
        }
        pieces.extend(stream.finish().expect("finish"));
        assert_eq!(pieces.len(), whole.samples.len());
        let worst = pieces
            .iter()
            .zip(&whole.samples)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "off by {worst}");

        let mut same = StreamResampler::new(16000, 16000).expect("new");
        assert_eq!(same.push(&[0.5, 0.25]).expect("push"), vec![0.5, 0.25]);
        assert!(same.finish().expect("finish").is_empty());
    }
}
