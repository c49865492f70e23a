//! Encoding samples for a response: WAV, raw PCM and FLAC.

use flacenc::component::BitRepr;
use flacenc::error::Verify;

use crate::TaskError;

/// The audio formats tessera writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// 16-bit mono PCM in a RIFF/WAVE file.
    Wav,
    /// Raw 16-bit little-endian mono PCM, no header.
    Pcm,
    /// Lossless FLAC (16-bit mono).
    Flac,
}

impl AudioFormat {
    /// The response's `Content-Type`.
    pub fn mime(self) -> &'static str {
        match self {
            AudioFormat::Wav => "audio/wav",
            AudioFormat::Pcm => "audio/pcm",
            AudioFormat::Flac => "audio/flac",
        }
    }
}

impl std::str::FromStr for AudioFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wav" => Ok(AudioFormat::Wav),
            "pcm" => Ok(AudioFormat::Pcm),
            "flac" => Ok(AudioFormat::Flac),
            "mp3" | "opus" | "aac" => Err(format!(
                "`{s}` output is not available in this build; use wav, pcm or flac"
            )),
            other => Err(format!(
                "unknown audio format `{other}`; use wav, pcm or flac"
            )),
        }
    }
}

/// Encodes mono samples at `sample_rate` in `format`.
pub fn encode(
    samples: &[f32],
    sample_rate: u32,
    format: AudioFormat,
) -> Result<Vec<u8>, TaskError> {
    match format {
        AudioFormat::Pcm => Ok(pcm16(samples)),
        AudioFormat::Wav => {
            let data = pcm16(samples);
            let length = u32::try_from(data.len()).map_err(|_| {
                TaskError::InvalidInput("the audio is too long for a WAV file".into())
            })?;
            let mut out = wav_header(sample_rate, Some(length));
            out.extend(data);
            Ok(out)
        }
        AudioFormat::Flac => flac(samples, sample_rate),
    }
}

/// Samples as 16-bit little-endian integers, clipped to [-1, 1].
pub fn pcm16(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|s| ((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes())
        .collect()
}

/// The 44-byte header of a 16-bit mono WAV file with `data_bytes` of samples. A stream whose
/// length is not known yet gives `None`: the sizes are then the largest a RIFF file can state,
/// which players read as "until the stream ends". (Written here because WAV writers such as
/// hound need to seek back to patch the sizes, which a stream cannot.)
pub fn wav_header(sample_rate: u32, data_bytes: Option<u32>) -> Vec<u8> {
    let data = data_bytes.unwrap_or(u32::MAX - 36);
    let mut header = Vec::with_capacity(44);
    header.extend(b"RIFF");
    header.extend((data.saturating_add(36)).to_le_bytes());
    header.extend(b"WAVEfmt ");
    header.extend(16u32.to_le_bytes()); // fmt chunk size
    header.extend(1u16.to_le_bytes()); // PCM
    header.extend(1u16.to_le_bytes()); // mono
    header.extend(sample_rate.to_le_bytes());
    header.extend((sample_rate * 2).to_le_bytes()); // bytes per second
    header.extend(2u16.to_le_bytes()); // bytes per frame
    header.extend(16u16.to_le_bytes()); // bits per sample
    header.extend(b"data");
    header.extend(data.to_le_bytes());
    header
}

fn flac(samples: &[f32], sample_rate: u32) -> Result<Vec<u8>, TaskError> {
    let failed = |message: String| TaskError::Internal(format!("FLAC encoding failed: {message}"));
    let ints: Vec<i32> = samples
        .iter()
        .map(|s| i32::from((s.clamp(-1.0, 1.0) * 32767.0).round() as i16))
        .collect();
    let config = flacenc::config::Encoder::default()
        .into_verified()
        .map_err(|(_, error)| failed(format!("{error:?}")))?;
    let source = flacenc::source::MemSource::from_samples(&ints, 1, 16, sample_rate as usize);
    let stream = flacenc::encode_with_fixed_block_size(&config, source, config.block_size)
        .map_err(|error| failed(format!("{error:?}")))?;
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream
        .write(&mut sink)
        .map_err(|error| failed(format!("{error:?}")))?;
    let mut bytes = sink.as_slice().to_vec();
    // The FLAC format says STREAMINFO's minimum block size leaves out the last block; flacenc
    // counts the last (short) block, which makes decoders such as symphonia refuse the stream
    // as one of variable block size. Every block but the last has the maximum size here.
    if bytes.len() >= 12 && bytes.starts_with(b"fLaC") && bytes[4] & 0x7f == 0 {
        bytes.copy_within(10..12, 8);
    }
    Ok(bytes)
}
