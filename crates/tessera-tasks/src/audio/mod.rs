//! Audio in and out: decode what symphonia reads (WAV, FLAC, MP3, OGG/Vorbis, ADPCM) and Ogg
//! Opus (libopus), mix down to mono, resample with rubato (whole clips, or streams in pieces),
//! and encode WAV, raw 16-bit PCM, FLAC, MP3 and Ogg Opus, whole or chunk by chunk.
//!
//! Every problem with a caller's audio is a [`TaskError::InvalidInput`] whose message says what is
//! wrong (empty, unreadable, truncated, too long, too short), so the server answers 400.

mod encode;
mod mp3;
mod ogg_opus;
mod resample;

pub use encode::{AudioFormat, FORMAT_NAMES, StreamEncoder, encode, pcm16, wav_header};
pub use resample::StreamResampler;

use std::io::Cursor;

use symphonia::core::codecs::audio::AudioDecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, TrackType};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;

use crate::TaskError;

/// Mono audio as 32-bit float samples in [-1, 1].
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// The samples.
    pub samples: Vec<f32>,
    /// Samples per second.
    pub sample_rate: u32,
}

impl Audio {
    /// Its length in seconds.
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / f64::from(self.sample_rate.max(1))
    }
}

/// The shortest audio worth decoding: 20 ms, a single window of most speech models.
pub const MIN_SECONDS: f64 = 0.02;

/// Whether a WAV's RIFF size says "unknown length": the largest size, which streaming writers
/// (tessera's own speech route among them) put there before they know the length.
fn streamed_wav(bytes: &[u8]) -> bool {
    bytes
        .get(4..8)
        .and_then(|size| size.try_into().ok())
        .map(u32::from_le_bytes)
        .is_some_and(|size| size >= u32::MAX - 64)
}

/// Decodes a whole audio file from memory into mono samples at its own rate.
///
/// `max_seconds` bounds the work: a header that announces more is refused before decoding, and
/// decoding stops with an error once the samples pass it. A WAV whose data ends before its header
/// says is refused as truncated; other formats keep what decodes.
pub fn decode(bytes: Vec<u8>, max_seconds: f64) -> Result<Audio, TaskError> {
    if bytes.is_empty() {
        return Err(invalid("the audio file is empty (0 bytes)"));
    }
    // Symphonia reads Ogg but has no Opus decoder; libopus does.
    if ogg_opus::is_ogg_opus(&bytes) {
        return long_enough(ogg_opus::decode(bytes, max_seconds)?);
    }
    let is_wav = bytes.starts_with(b"RIFF");
    let open_ended = is_wav && streamed_wav(&bytes);
    let source = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let mut format = symphonia::default::get_probe()
        .probe(
            &Hint::new(),
            source,
            FormatOptions::default(),
            MetadataOptions::default(),
        )
        .map_err(|error| {
            invalid(format!(
                "could not read the audio ({error}); send WAV, FLAC, MP3, OGG/Vorbis or Ogg Opus"
            ))
        })?;
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| invalid("the file holds no audio track"))?;
    let track_id = track.id;
    // A streamed WAV (as `/v1/audio/speech` sends it) declares the largest size, not its length.
    let declared_frames = track.num_frames.filter(|_| !open_ended);
    let params = track
        .codec_params
        .as_ref()
        .and_then(|params| params.audio())
        .ok_or_else(|| invalid("the file's audio track has no codec parameters"))?
        .clone();
    let sample_rate = params
        .sample_rate
        .filter(|rate| *rate > 0)
        .ok_or_else(|| invalid("the audio does not say its sample rate"))?;
    if let Some(frames) = declared_frames {
        let seconds = frames as f64 / f64::from(sample_rate);
        if seconds > max_seconds {
            return Err(too_long(seconds, max_seconds, "its header says"));
        }
    }
    let mut decoder = symphonia::default::get_codecs()
        .make_audio_decoder(&params, &AudioDecoderOptions::default())
        .map_err(|error| invalid(format!("cannot decode this audio codec: {error}")))?;

    let max_frames = (max_seconds * f64::from(sample_rate)).ceil() as usize;
    let mut samples: Vec<f32> = Vec::new();
    let mut interleaved: Vec<f32> = Vec::new();
    loop {
        let packet = match format.next_packet() {
            Ok(Some(packet)) => packet,
            Ok(None) => break,
            Err(SymphoniaError::IoError(error))
                if error.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                break;
            }
            Err(error) => return Err(corrupt(&samples, sample_rate, error)),
        };
        if packet.track_id != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            // A damaged packet is skipped, as players do.
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(error) => return Err(corrupt(&samples, sample_rate, error)),
        };
        let channels = decoded.spec().channels().count().max(1);
        interleaved.resize(decoded.samples_interleaved(), 0.0);
        decoded.copy_to_slice_interleaved(&mut interleaved);
        samples.extend(
            interleaved
                .chunks_exact(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
        if samples.len() > max_frames {
            let seconds = samples.len() as f64 / f64::from(sample_rate);
            return Err(too_long(seconds, max_seconds, "at least"));
        }
    }
    if is_wav
        && let Some(declared) = declared_frames
        && (samples.len() as u64) < declared
    {
        return Err(invalid(format!(
            "the WAV file is truncated: its header promises {:.2} s of audio but the data holds {:.2} s",
            declared as f64 / f64::from(sample_rate),
            samples.len() as f64 / f64::from(sample_rate)
        )));
    }
    long_enough(Audio {
        samples,
        sample_rate,
    })
}

/// The audio, unless it is too short to hold anything.
fn long_enough(audio: Audio) -> Result<Audio, TaskError> {
    if audio.seconds() < MIN_SECONDS {
        return Err(invalid(format!(
            "the audio is too short: {} samples ({:.4} s); send at least {} ms",
            audio.samples.len(),
            audio.seconds(),
            MIN_SECONDS * 1000.0
        )));
    }
    Ok(audio)
}

/// The same audio at `sample_rate`, through rubato's FFT resampler (a fixed ratio, so the
/// synchronous resampler: exact, and faster than sinc interpolation).
pub fn resample(audio: Audio, sample_rate: u32) -> Result<Audio, TaskError> {
    use rubato::audioadapter_buffers::direct::InterleavedSlice;
    use rubato::{Fft, FixedSync, Resampler};

    if audio.sample_rate == sample_rate || audio.samples.is_empty() {
        return Ok(Audio {
            samples: audio.samples,
            sample_rate,
        });
    }
    let failed = |error: &dyn std::fmt::Display| {
        TaskError::Internal(format!(
            "resampling {} Hz to {sample_rate} Hz failed: {error}",
            audio.sample_rate
        ))
    };
    let mut resampler = Fft::<f32>::new(
        audio.sample_rate as usize,
        sample_rate as usize,
        1024,
        1,
        FixedSync::Input,
    )
    .map_err(|error| failed(&error))?;
    let frames = audio.samples.len();
    let input = InterleavedSlice::new(&audio.samples[..], 1, frames).map_err(|e| failed(&e))?;
    let output = resampler
        .process_all(&input, frames, None)
        .map_err(|error| failed(&error))?;
    Ok(Audio {
        samples: output.take_data(),
        sample_rate,
    })
}

/// Decodes, then resamples to what the model takes.
pub fn decode_at(bytes: Vec<u8>, sample_rate: u32, max_seconds: f64) -> Result<Audio, TaskError> {
    resample(decode(bytes, max_seconds)?, sample_rate)
}

fn invalid(message: impl Into<String>) -> TaskError {
    TaskError::InvalidInput(message.into())
}

fn too_long(seconds: f64, max_seconds: f64, how: &str) -> TaskError {
    invalid(format!(
        "the audio lasts {} ({how}), over the limit of {}; send a shorter file or raise the limit (--max-audio-seconds)",
        clock(seconds),
        clock(max_seconds)
    ))
}

fn corrupt(samples: &[f32], sample_rate: u32, error: SymphoniaError) -> TaskError {
    invalid(format!(
        "the audio is corrupt after {:.2} s: {error}",
        samples.len() as f64 / f64::from(sample_rate)
    ))
}

/// `h:mm:ss` for long spans, seconds for short ones.
fn clock(seconds: f64) -> String {
    if seconds < 60.0 {
        return format!("{seconds:.1} s");
    }
    let whole = seconds.round() as u64;
    format!("{}:{:02}:{:02}", whole / 3600, whole / 60 % 60, whole % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f64, rate: u32) -> Audio {
        let n = (seconds * f64::from(rate)) as usize;
        Audio {
            samples: (0..n)
                .map(|i| (i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 0.5)
                .collect(),
            sample_rate: rate,
        }
    }

    fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
        a.iter()
            .zip(b)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max)
    }

    #[test]
    fn wav_and_flac_round_trip() {
        let audio = tone(0.5, 22050);
        for format in [AudioFormat::Wav, AudioFormat::Flac] {
            let bytes = encode(&audio.samples, audio.sample_rate, format).expect("encode");
            let back = decode(bytes, 60.0).expect("decode");
            assert_eq!(back.sample_rate, 22050);
            assert_eq!(back.samples.len(), audio.samples.len(), "{format:?}");
            let worst = largest_difference(&audio.samples, &back.samples);
            assert!(worst < 1e-3, "{format:?}: off by {worst}");
        }
    }

    /// Sign changes of a tone, with hysteresis so that the near-silence a codec adds around it
    /// (MP3's encoder delay and padding) counts none: twice its frequency times its length.
    fn crossings(samples: &[f32]) -> usize {
        let mut positive = None;
        let mut count = 0;
        for &sample in samples {
            let now = if sample > 0.1 {
                Some(true)
            } else if sample < -0.1 {
                Some(false)
            } else {
                continue;
            };
            if positive.is_some() && positive != now {
                count += 1;
            }
            positive = now;
        }
        count
    }

    #[test]
    fn mp3_and_opus_keep_the_length_and_the_pitch() {
        let audio = tone(1.5, 22050);
        for (format, rate) in [(AudioFormat::Mp3, 22050), (AudioFormat::Opus, 48000)] {
            let bytes = encode(&audio.samples, audio.sample_rate, format).expect("encode");
            // Far smaller than 16-bit PCM (66 kB): 64 and 32 kbit/s.
            assert!(bytes.len() < 16_000, "{format:?}: {} bytes", bytes.len());
            let back = decode(bytes, 60.0).expect("decode");
            assert_eq!(back.sample_rate, rate, "{format:?}");
            // Opus trims its padding exactly; MP3 without a LAME tag keeps the encoder's delay
            // and the last frame's padding (under 0.1 s at 22.05 kHz).
            let slack = if format == AudioFormat::Opus {
                0.001
            } else {
                0.12
            };
            assert!(
                back.seconds() >= 1.5 - 0.001 && back.seconds() <= 1.5 + slack,
                "{format:?}: {} s",
                back.seconds()
            );
            // 440 Hz for 1.5 s: 1320 sign changes.
            let count = crossings(&back.samples);
            assert!((1315..=1321).contains(&count), "{format:?}: {count}");
            let peak = back.samples.iter().fold(0.0f32, |m, s| m.max(s.abs()));
            assert!((0.4..0.6).contains(&peak), "{format:?}: peak {peak}");
        }
    }

    #[test]
    fn streamed_encoding_decodes_like_the_whole() {
        let audio = tone(2.0, 22050);
        for format in [
            AudioFormat::Mp3,
            AudioFormat::Opus,
            AudioFormat::Wav,
            AudioFormat::Flac,
        ] {
            let whole = decode(encode(&audio.samples, 22050, format).expect("whole"), 60.0)
                .expect("decode whole");
            let mut encoder = StreamEncoder::new(format, 22050).expect("new");
            let mut bytes = Vec::new();
            for piece in audio.samples.chunks(7000) {
                bytes.extend(encoder.push(piece).expect("push"));
            }
            bytes.extend(encoder.finish().expect("finish"));
            let streamed = decode(bytes, 60.0).expect("decode streamed");
            assert_eq!(streamed.samples.len(), whole.samples.len(), "{format:?}");
            let worst = largest_difference(&streamed.samples, &whole.samples);
            assert!(worst < 1e-3, "{format:?}: off by {worst}");
        }
    }

    #[test]
    fn every_format_has_a_name_and_a_type() {
        for (name, mime) in [
            ("wav", "audio/wav"),
            ("pcm", "audio/pcm"),
            ("flac", "audio/flac"),
            ("mp3", "audio/mpeg"),
            ("opus", "audio/ogg; codecs=opus"),
        ] {
            let format: AudioFormat = name.parse().expect(name);
            assert_eq!(format.mime(), mime);
        }
        let error = "ogg".parse::<AudioFormat>().expect_err("ogg");
        assert!(error.contains("wav, pcm, flac, mp3 or opus"), "{error}");
    }

    #[test]
    fn resampling_keeps_the_length_and_the_pitch() {
        let audio = tone(1.0, 22050);
        let out = resample(audio, 16000).expect("resample");
        assert_eq!(out.sample_rate, 16000);
        assert!(
            (out.samples.len() as i64 - 16000).abs() <= 1,
            "{}",
            out.samples.len()
        );
        // A 440 Hz tone crosses zero 880 times a second.
        let crossings = out
            .samples
            .windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count();
        assert!((870..=890).contains(&crossings), "{crossings}");
    }

    #[test]
    fn bad_audio_says_what_is_wrong() {
        let message = |bytes: Vec<u8>| match decode(bytes, 60.0) {
            Err(TaskError::InvalidInput(message)) => message,
            other => panic!("expected an input error, got {other:?}"),
        };
        assert!(message(Vec::new()).contains("empty"));
        assert!(
            message(b"definitely not audio, just some text".repeat(20)).contains("could not read")
        );
        let wav = encode(&tone(1.0, 16000).samples, 16000, AudioFormat::Wav).expect("encode");
        assert!(message(wav[..wav.len() / 2].to_vec()).contains("truncated"));
        // A streamed WAV (unknown length in its header) is read whole, neither too long nor
        // truncated.
        let mut streamed = encode::wav_header(16000, None);
        streamed.extend(encode::pcm16(&vec![0.1; 8000]));
        let audio = decode(streamed, 3600.0).expect("a streamed WAV decodes");
        assert_eq!(audio.samples.len(), 8000);
        let one = encode(&[0.1], 16000, AudioFormat::Wav).expect("encode");
        assert!(message(one).contains("too short"));
        // A header that claims ten hours of 16 kHz mono, with one second of data.
        let mut long = wav_header(16000, Some(10 * 3600 * 16000 * 2));
        long.extend(pcm16(&tone(1.0, 16000).samples));
        assert!(message(long).contains("10:00:00"));
    }
}
