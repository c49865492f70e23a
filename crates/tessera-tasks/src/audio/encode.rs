//! Encoding samples for a response: WAV, raw PCM, FLAC, MP3 and Ogg Opus, whole or as a stream.

use flacenc::component::BitRepr;
use flacenc::error::Verify;

use super::{mp3, ogg_opus};
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
    /// MP3 (LAME, 64 kbit/s constant rate, mono, at the voice's rate).
    Mp3,
    /// Opus in an Ogg file (libopus, 20 ms packets at 48 kHz, mono).
    Opus,
}

/// What `response_format` and `--format` take.
pub const FORMAT_NAMES: &str = "wav, pcm, flac, mp3 or opus";

impl AudioFormat {
    /// The response's `Content-Type`.
    pub fn mime(self) -> &'static str {
        match self {
            AudioFormat::Wav => "audio/wav",
            AudioFormat::Pcm => "audio/pcm",
            AudioFormat::Flac => "audio/flac",
            AudioFormat::Mp3 => "audio/mpeg",
            // RFC 7845: Ogg Opus files are `audio/ogg`; the codec parameter tells players which.
            AudioFormat::Opus => "audio/ogg; codecs=opus",
        }
    }

    /// Whether the format can be sent as it is made. FLAC cannot: its header holds sizes and
    /// a checksum of the whole stream.
    pub fn streams(self) -> bool {
        !matches!(self, AudioFormat::Flac)
    }
}

impl std::str::FromStr for AudioFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "wav" => Ok(AudioFormat::Wav),
            "pcm" => Ok(AudioFormat::Pcm),
            "flac" => Ok(AudioFormat::Flac),
            "mp3" => Ok(AudioFormat::Mp3),
            "opus" => Ok(AudioFormat::Opus),
            "aac" => Err(format!("`aac` output is not available; use {FORMAT_NAMES}")),
            other => Err(format!(
                "unknown audio format `{other}`; use {FORMAT_NAMES}"
            )),
        }
    }
}

/// Encodes mono samples at `sample_rate` in `format`. A WAV made here states its length (a
/// [`StreamEncoder`]'s WAV cannot).
pub fn encode(
    samples: &[f32],
    sample_rate: u32,
    format: AudioFormat,
) -> Result<Vec<u8>, TaskError> {
    match format {
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
        AudioFormat::Pcm | AudioFormat::Mp3 | AudioFormat::Opus => {
            let mut encoder = StreamEncoder::new(format, sample_rate)?;
            let mut out = encoder.push(samples)?;
            out.extend(encoder.finish()?);
            Ok(out)
        }
    }
}

/// Encodes a stream of mono samples chunk by chunk: each [`push`](StreamEncoder::push) returns
/// the bytes that are ready, [`finish`](StreamEncoder::finish) the rest. Joined, they are one
/// file. WAV gets a header that states no length (read as "until the stream ends"); FLAC is
/// held back and encoded whole at the end.
pub struct StreamEncoder {
    sample_rate: u32,
    state: State,
}

enum State {
    Wav { header_sent: bool },
    Pcm,
    Flac { samples: Vec<f32> },
    Mp3(mp3::Mp3Stream),
    Opus(Box<ogg_opus::OpusStream>),
}

impl std::fmt::Debug for StreamEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamEncoder")
            .field("format", &self.format())
            .field("sample_rate", &self.sample_rate)
            .finish()
    }
}

impl StreamEncoder {
    /// An encoder of mono samples at `sample_rate`.
    pub fn new(format: AudioFormat, sample_rate: u32) -> Result<Self, TaskError> {
        if sample_rate == 0 {
            return Err(TaskError::InvalidInput("the sample rate is 0 Hz".into()));
        }
        let state = match format {
            AudioFormat::Wav => State::Wav { header_sent: false },
            AudioFormat::Pcm => State::Pcm,
            AudioFormat::Flac => State::Flac {
                samples: Vec::new(),
            },
            AudioFormat::Mp3 => State::Mp3(mp3::Mp3Stream::new(sample_rate)?),
            AudioFormat::Opus => State::Opus(Box::new(ogg_opus::OpusStream::new(sample_rate)?)),
        };
        Ok(StreamEncoder { sample_rate, state })
    }

    /// The format it writes.
    pub fn format(&self) -> AudioFormat {
        match self.state {
            State::Wav { .. } => AudioFormat::Wav,
            State::Pcm => AudioFormat::Pcm,
            State::Flac { .. } => AudioFormat::Flac,
            State::Mp3(_) => AudioFormat::Mp3,
            State::Opus(_) => AudioFormat::Opus,
        }
    }

    /// Encodes the next samples; returns the bytes ready to send (possibly none).
    pub fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, TaskError> {
        match &mut self.state {
            State::Wav { header_sent } => {
                let mut out = Vec::new();
                if !*header_sent {
                    out = wav_header(self.sample_rate, None);
                    *header_sent = true;
                }
                out.extend(pcm16(samples));
                Ok(out)
            }
            State::Pcm => Ok(pcm16(samples)),
            State::Flac { samples: all } => {
                all.extend_from_slice(samples);
                Ok(Vec::new())
            }
            State::Mp3(stream) => stream.push(samples),
            State::Opus(stream) => stream.push(samples),
        }
    }

    /// Ends the stream: the last bytes (the whole file for FLAC).
    pub fn finish(self) -> Result<Vec<u8>, TaskError> {
        match self.state {
            // A stream with no samples is still a file: its header.
            State::Wav { header_sent } => Ok(if header_sent {
                Vec::new()
            } else {
                wav_header(self.sample_rate, None)
            }),
            State::Pcm => Ok(Vec::new()),
            State::Flac { samples } => flac(&samples, self.sample_rate),
            State::Mp3(stream) => stream.finish(),
            State::Opus(stream) => stream.finish(),
        }
    }
}

/// Samples as 16-bit little-endian integers, clipped to [-1, 1].
pub fn pcm16(samples: &[f32]) -> Vec<u8> {
    samples
        .iter()
        .flat_map(|&s| to_i16(s).to_le_bytes())
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
    let ints: Vec<i32> = samples.iter().map(|&s| i32::from(to_i16(s))).collect();
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

/// A sample as a 16-bit integer, clipped to [-1, 1].
fn to_i16(sample: f32) -> i16 {
    (sample.clamp(-1.0, 1.0) * 32767.0).round() as i16
}
