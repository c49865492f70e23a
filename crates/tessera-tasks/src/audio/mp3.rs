//! MP3 through LAME (the `mp3lame-encoder` crate, which builds LAME 3.100 from the source it
//! bundles): mono, 64 kbit/s constant rate, at the voice's own rate (LAME takes 8 to 48 kHz;
//! Piper's 22.05 kHz is MPEG-2 layer III).

use mp3lame_encoder::{Bitrate, Builder, FlushGap, Mode, MonoPcm, Quality};

use crate::TaskError;

/// 64 kbit/s keeps speech clean at every rate LAME takes mono (MPEG-2 tops out at 160).
const BITRATE: Bitrate = Bitrate::Kbps64;

/// A LAME encoder kept across the chunks of one stream.
pub(super) struct Mp3Stream {
    encoder: mp3lame_encoder::Encoder,
}

impl Mp3Stream {
    pub(super) fn new(sample_rate: u32) -> Result<Self, TaskError> {
        let mut builder = Builder::new()
            .ok_or_else(|| TaskError::Internal("LAME could not allocate an encoder".into()))?;
        let configured = builder
            .set_num_channels(1)
            .and_then(|()| builder.set_sample_rate(sample_rate))
            .and_then(|()| builder.set_mode(Mode::Mono))
            .and_then(|()| builder.set_brate(BITRATE))
            .and_then(|()| builder.set_quality(Quality::Good))
            // The Xing/LAME tag goes in the first frame and is only known at the end: a stream
            // cannot go back to write it.
            .and_then(|()| builder.set_to_write_vbr_tag(false));
        configured.map_err(|error| {
            TaskError::InvalidInput(format!(
                "MP3 cannot be written at {sample_rate} Hz: {error}"
            ))
        })?;
        let encoder = builder
            .build()
            .map_err(|error| failed(format!("setting up LAME: {error}")))?;
        Ok(Mp3Stream { encoder })
    }

    pub(super) fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, TaskError> {
        let mut out = Vec::new();
        // LAME clips nothing itself: samples are ±1.0 floats, as the voice gives them.
        let clipped: Vec<f32> = samples.iter().map(|s| s.clamp(-1.0, 1.0)).collect();
        // Room for LAME's worst case: 1.25 bytes a sample plus 7200.
        for piece in clipped.chunks(1 << 16) {
            out.reserve(piece.len() * 5 / 4 + 7200);
            self.encoder
                .encode_to_vec(MonoPcm(piece), &mut out)
                .map_err(|error| failed(error.to_string()))?;
        }
        Ok(out)
    }

    pub(super) fn finish(mut self) -> Result<Vec<u8>, TaskError> {
        let mut out = Vec::with_capacity(7200);
        self.encoder
            .flush_to_vec::<FlushGap>(&mut out)
            .map_err(|error| failed(error.to_string()))?;
        Ok(out)
    }
}

fn failed(message: String) -> TaskError {
    TaskError::Internal(format!("MP3 encoding failed: {message}"))
}
