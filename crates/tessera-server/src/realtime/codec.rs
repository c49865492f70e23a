//! Audio on the realtime wire: base64 text carrying 16-bit little-endian PCM, G.711 μ-law or
//! G.711 A-law.
//!
//! Events carry audio as base64 strings (`input_audio_buffer.append`'s `audio`,
//! `response.output_audio.delta`'s `delta`). This module turns those into `f32` samples in
//! `[-1, 1]` at the wire's sample rate and back; resampling to and from a model's rate is the
//! caller's job. The G.711 companders are written from ITU-T G.711 (11/1988), tables 1 and 2:
//! both split a sign-magnitude sample into eight segments of sixteen equal quantization
//! intervals, each segment's interval twice as wide as the one before, and decode to the middle
//! of an interval. On the 16-bit scale used here μ-law decodes to at most ±32124 and A-law to at
//! most ±32256.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

/// The only PCM rate OpenAI's realtime API accepts (`audio/pcm` is always 24 kHz).
pub const PCM_RATE: u32 = 24_000;

/// The sample rate of G.711 (`audio/pcmu`, `audio/pcma`).
pub const G711_RATE: u32 = 8_000;

/// Standard base64 that takes input with or without `=` padding: clients differ, and a missing
/// pad is no reason to drop audio. Output is always padded.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// How audio is laid out on the wire: one channel, one of three encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// `audio/pcm`: signed 16-bit little-endian samples at `rate` Hz (OpenAI allows only 24000).
    Pcm16 {
        /// Samples per second.
        rate: u32,
    },
    /// `audio/pcmu`: G.711 μ-law, one byte a sample, 8 kHz.
    Pcmu,
    /// `audio/pcma`: G.711 A-law, one byte a sample, 8 kHz.
    Pcma,
}

impl Default for AudioFormat {
    /// 24 kHz PCM16, OpenAI's default for both directions.
    fn default() -> Self {
        AudioFormat::Pcm16 { rate: PCM_RATE }
    }
}

impl AudioFormat {
    /// Samples per second on the wire.
    pub fn sample_rate(self) -> u32 {
        match self {
            AudioFormat::Pcm16 { rate } => rate,
            AudioFormat::Pcmu | AudioFormat::Pcma => G711_RATE,
        }
    }

    /// Bytes per sample on the wire: 2 for PCM16, 1 for G.711.
    #[cfg(test)]
    pub fn bytes_per_sample(self) -> usize {
        match self {
            AudioFormat::Pcm16 { .. } => 2,
            AudioFormat::Pcmu | AudioFormat::Pcma => 1,
        }
    }

    /// The GA `type` of this format: `audio/pcm`, `audio/pcmu` or `audio/pcma`.
    pub fn wire_type(self) -> &'static str {
        match self {
            AudioFormat::Pcm16 { .. } => "audio/pcm",
            AudioFormat::Pcmu => "audio/pcmu",
            AudioFormat::Pcma => "audio/pcma",
        }
    }

    /// How long `byte_len` bytes of this format play, in whole milliseconds (rounded down).
    #[cfg(test)]
    pub fn duration_ms(self, byte_len: usize) -> u64 {
        let samples = (byte_len / self.bytes_per_sample()) as u64;
        samples.saturating_mul(1000) / u64::from(self.sample_rate().max(1))
    }
}

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The text is not base64.
    #[error("the audio is not valid base64 ({0}); send the raw audio bytes base64-encoded")]
    Base64(String),
    /// PCM16 needs two bytes a sample; the payload ended mid-sample.
    #[error("PCM16 audio has two bytes per sample but {0} bytes were sent; send whole samples")]
    OddLength(usize),
}

/// Decodes a base64 payload into its bytes.
pub fn decode_base64(text: &str) -> Result<Vec<u8>, CodecError> {
    BASE64
        .decode(text)
        .map_err(|e| CodecError::Base64(e.to_string()))
}

/// Decodes wire bytes into samples in `[-1, 1]` at [`AudioFormat::sample_rate`].
pub fn decode_samples(format: AudioFormat, bytes: &[u8]) -> Result<Vec<f32>, CodecError> {
    match format {
        AudioFormat::Pcm16 { .. } => {
            let (pairs, rest) = bytes.as_chunks::<2>();
            if !rest.is_empty() {
                return Err(CodecError::OddLength(bytes.len()));
            }
            Ok(pairs
                .iter()
                .map(|&pair| i16_to_f32(i16::from_le_bytes(pair)))
                .collect())
        }
        AudioFormat::Pcmu => Ok(bytes.iter().map(|&b| i16_to_f32(mulaw_decode(b))).collect()),
        AudioFormat::Pcma => Ok(bytes.iter().map(|&b| i16_to_f32(alaw_decode(b))).collect()),
    }
}

/// Decodes a base64 payload into samples in `[-1, 1]` at [`AudioFormat::sample_rate`].
#[cfg(test)]
pub fn decode(format: AudioFormat, text: &str) -> Result<Vec<f32>, CodecError> {
    decode_samples(format, &decode_base64(text)?)
}

/// Encodes samples (clamped to `[-1, 1]`; NaN becomes silence) into wire bytes.
pub fn encode_samples(format: AudioFormat, samples: &[f32]) -> Vec<u8> {
    match format {
        AudioFormat::Pcm16 { .. } => samples
            .iter()
            .flat_map(|&s| f32_to_i16(s).to_le_bytes())
            .collect(),
        AudioFormat::Pcmu => samples
            .iter()
            .map(|&s| mulaw_encode(f32_to_i16(s)))
            .collect(),
        AudioFormat::Pcma => samples
            .iter()
            .map(|&s| alaw_encode(f32_to_i16(s)))
            .collect(),
    }
}

/// Encodes samples into a base64 payload (see [`encode_samples`]).
pub fn encode(format: AudioFormat, samples: &[f32]) -> String {
    BASE64.encode(encode_samples(format, samples))
}

/// A 16-bit sample as a float: `i / 32768`, so every sample maps back to itself.
fn i16_to_f32(sample: i16) -> f32 {
    f32::from(sample) / 32768.0
}

/// A float as a 16-bit sample: `x * 32768`, rounded and clamped (so 1.0 becomes 32767).
fn f32_to_i16(sample: f32) -> i16 {
    // `as` saturates and maps NaN to 0; the clamp states the intent.
    (sample * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

/// μ-law bias: adding 33 on G.711's 14-bit scale (132 on the 16-bit one) moves the segment
/// edges onto powers of two, so a segment is the position of the leading one.
const MULAW_BIAS: i32 = 132;

/// The largest 16-bit magnitude μ-law can code; louder samples clip to the top interval.
const MULAW_CLIP: i32 = i16::MAX as i32 - MULAW_BIAS;

/// Encodes a 16-bit sample as G.711 μ-law.
///
/// The biased magnitude lies in `[128, 32767]`; its segment (0-7) is the leading one's bit
/// position minus 7, and the interval within the segment is the four bits after the leading one.
/// The code word is sign, segment and interval, all bits inverted (G.711 table 2).
pub fn mulaw_encode(sample: i16) -> u8 {
    let value = i32::from(sample);
    let sign = if value < 0 { 0x80 } else { 0x00 };
    let biased = value.abs().min(MULAW_CLIP) + MULAW_BIAS;
    let segment = 31 - biased.leading_zeros() as i32 - 7;
    let interval = (biased >> (segment + 3)) & 0x0F;
    !((sign | (segment << 4) | interval) as u8)
}

/// Decodes a G.711 μ-law code word to the middle of its quantization interval.
///
/// `0xFF` and `0x7F` (positive and negative zero) both decode to 0.
pub fn mulaw_decode(code: u8) -> i16 {
    let word = !code;
    let segment = i32::from((word >> 4) & 0x07);
    let interval = i32::from(word & 0x0F);
    let magnitude = (((interval << 3) + MULAW_BIAS) << segment) - MULAW_BIAS;
    // At most ((15 << 3) + 132) << 7 - 132 = 32124: always an i16.
    (if word & 0x80 != 0 {
        -magnitude
    } else {
        magnitude
    }) as i16
}

/// A-law transmits every even bit of the code word inverted (G.711, table 1).
const ALAW_EVEN_BITS: u8 = 0x55;

/// Encodes a 16-bit sample as G.711 A-law.
///
/// A-law works on 13-bit samples: a 12-bit magnitude and a sign bit that is 1 for positive
/// values. Segment 0 covers magnitudes 0-31 and segment 1 covers 32-63, both in steps of 2;
/// segment `s >= 1` covers `[2^(s+4), 2^(s+5))` in steps of `2^s`. Negative samples are
/// complemented (`-x - 1`) first, which keeps the two halves symmetric and cannot overflow.
pub fn alaw_encode(sample: i16) -> u8 {
    let (sign, magnitude) = if sample >= 0 {
        (0x80, i32::from(sample >> 3))
    } else {
        (0x00, i32::from(!sample >> 3))
    };
    let (segment, interval) = if magnitude < 32 {
        (0, magnitude >> 1)
    } else {
        let segment = 31 - magnitude.leading_zeros() as i32 - 4;
        (segment, (magnitude >> segment) & 0x0F)
    };
    ((sign | (segment << 4) | interval) as u8) ^ ALAW_EVEN_BITS
}

/// Decodes a G.711 A-law code word to the middle of its quantization interval (there is no
/// zero code: the smallest magnitudes are ±8).
pub fn alaw_decode(code: u8) -> i16 {
    let word = code ^ ALAW_EVEN_BITS;
    let segment = i32::from((word >> 4) & 0x07);
    let interval = i32::from(word & 0x0F);
    // Middle of the interval on the 13-bit scale: 2k + 1 in segment 0, and
    // 2^(s+4) + k 2^s + 2^(s-1) = (2k + 33) 2^(s-1) above it.
    let magnitude = if segment == 0 {
        (interval << 1) + 1
    } else {
        ((interval << 1) + 33) << (segment - 1)
    };
    // At most 4032 << 3 = 32256: always an i16.
    let value = magnitude << 3;
    (if word & 0x80 != 0 { value } else { -value }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mulaw_known_code_points() {
        assert_eq!(mulaw_decode(0xFF), 0);
        assert_eq!(mulaw_decode(0x7F), 0);
        assert_eq!(mulaw_decode(0x80), 32124);
        assert_eq!(mulaw_decode(0x00), -32124);
        assert_eq!(mulaw_decode(0xFE), 8);
        assert_eq!(mulaw_decode(0x7E), -8);
        assert_eq!(mulaw_encode(0), 0xFF);
        assert_eq!(mulaw_encode(i16::MAX), 0x80);
        assert_eq!(mulaw_encode(i16::MIN), 0x00);
        // The first segment edge: biased magnitude 256 starts segment 1.
        assert_eq!(mulaw_encode(256 - 132), 0xEF);
        assert_eq!(mulaw_encode(255 - 132), 0xF0);
    }

    #[test]
    fn alaw_known_code_points() {
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(alaw_decode(0x55), -8);
        assert_eq!(alaw_decode(0xAA), 32256);
        assert_eq!(alaw_decode(0x2A), -32256);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(8), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
        // 13-bit magnitude 32 starts segment 1: code 0x90 before the even-bit inversion.
        assert_eq!(alaw_encode(32 << 3), 0x90 ^ 0x55);
        assert_eq!(alaw_encode(31 << 3), 0x8F ^ 0x55);
    }

    #[test]
    fn every_code_word_round_trips() {
        for code in 0..=255u8 {
            assert_eq!(alaw_encode(alaw_decode(code)), code, "A-law {code:#04x}");
            // μ-law's negative zero decodes to 0, which encodes as positive zero.
            let expected = if code == 0x7F { 0xFF } else { code };
            assert_eq!(
                mulaw_encode(mulaw_decode(code)),
                expected,
                "μ-law {code:#04x}"
            );
        }
    }

    #[test]
    fn decoding_is_monotonic_in_the_sample() {
        let mut last_mu = i16::MIN;
        let mut last_a = i16::MIN;
        for x in i16::MIN..=i16::MAX {
            let mu = mulaw_decode(mulaw_encode(x));
            let a = alaw_decode(alaw_encode(x));
            assert!(mu >= last_mu && a >= last_a, "not monotonic at {x}");
            last_mu = mu;
            last_a = a;
        }
    }

    #[test]
    fn quantization_error_is_within_half_an_interval() {
        for x in -32124..=32124i16 {
            let code = mulaw_encode(x);
            let segment = u32::from((!code >> 4) & 0x07);
            let half_step = (1i32 << (segment + 3)) / 2;
            let error = (i32::from(mulaw_decode(code)) - i32::from(x)).abs();
            assert!(error <= half_step, "μ-law {x}: error {error} > {half_step}");
        }
        for x in -32256..=32256i16 {
            let code = alaw_encode(x);
            let segment = u32::from(((code ^ 0x55) >> 4) & 0x07);
            // Interval width on the 16-bit scale: 16 in segments 0 and 1, 8 << s above.
            let step = if segment == 0 { 16 } else { 8i32 << segment };
            let error = (i32::from(alaw_decode(code)) - i32::from(x)).abs();
            assert!(error <= step / 2, "A-law {x}: error {error} > {}", step / 2);
        }
    }

    fn snr_db(format: AudioFormat) -> f64 {
        let rate = format.sample_rate() as f32;
        let tone: Vec<f32> = (0..8000)
            .map(|i| 0.5 * (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate).sin())
            .collect();
        let back = decode(format, &encode(format, &tone)).unwrap();
        assert_eq!(back.len(), tone.len());
        let signal: f64 = tone.iter().map(|&s| f64::from(s).powi(2)).sum();
        let noise: f64 = tone
            .iter()
            .zip(&back)
            .map(|(&a, &b)| f64::from(a - b).powi(2))
            .sum();
        10.0 * (signal / noise).log10()
    }

    #[test]
    fn a_tone_survives_each_format() {
        // G.711 gives about 38 dB on a half-scale sine; PCM16 about 92 dB.
        assert!(snr_db(AudioFormat::Pcmu) > 35.0);
        assert!(snr_db(AudioFormat::Pcma) > 35.0);
        assert!(snr_db(AudioFormat::default()) > 85.0);
    }

    #[test]
    fn pcm16_is_little_endian_and_exact() {
        let format = AudioFormat::Pcm16 { rate: PCM_RATE };
        assert_eq!(
            decode_samples(format, &[0x00, 0x40, 0x00, 0x80, 0xFF, 0x7F]).unwrap(),
            vec![0.5, -1.0, 32767.0 / 32768.0]
        );
        let bytes: Vec<u8> = (0..=255u8).flat_map(|b| [b, b.wrapping_mul(7)]).collect();
        let samples = decode_samples(format, &bytes).unwrap();
        assert_eq!(encode_samples(format, &samples), bytes);
    }

    #[test]
    fn encoding_clamps_and_silences_nan() {
        let format = AudioFormat::default();
        assert_eq!(
            encode_samples(format, &[1.0, 2.0, -3.0, f32::NAN]),
            vec![0xFF, 0x7F, 0xFF, 0x7F, 0x00, 0x80, 0x00, 0x00]
        );
        assert_eq!(encode_samples(AudioFormat::Pcmu, &[f32::NAN]), vec![0xFF]);
    }

    #[test]
    fn base64_round_trips_with_or_without_padding() {
        let samples = [0.25f32, -0.25, 0.0];
        let text = encode(AudioFormat::default(), &samples);
        assert_eq!(text, "ACAA4AAA");
        assert_eq!(decode(AudioFormat::default(), &text).unwrap(), samples);
        // Two G.711 bytes need one pad; clients that drop it still decode.
        let padded = encode(AudioFormat::Pcma, &[0.0, 0.0]);
        assert_eq!(padded, "1dU=");
        assert_eq!(decode_base64("1dU").unwrap(), vec![0xD5, 0xD5]);
        assert_eq!(
            decode(AudioFormat::Pcma, "1dU").unwrap(),
            vec![8.0 / 32768.0; 2]
        );
    }

    #[test]
    fn bad_payloads_are_errors() {
        assert!(matches!(
            decode(AudioFormat::default(), "not base64!"),
            Err(CodecError::Base64(_))
        ));
        assert_eq!(
            decode(AudioFormat::default(), "AAAA"),
            Err(CodecError::OddLength(3))
        );
        // One byte a sample: any length is whole samples.
        assert_eq!(decode(AudioFormat::Pcmu, "AAAA").unwrap().len(), 3);
    }

    #[test]
    fn formats_know_their_rate_and_duration() {
        assert_eq!(AudioFormat::default().sample_rate(), 24_000);
        assert_eq!(AudioFormat::Pcmu.sample_rate(), 8_000);
        assert_eq!(AudioFormat::default().duration_ms(48_000), 1000);
        assert_eq!(AudioFormat::Pcma.duration_ms(80), 10);
        assert_eq!(AudioFormat::Pcmu.wire_type(), "audio/pcmu");
    }
}
