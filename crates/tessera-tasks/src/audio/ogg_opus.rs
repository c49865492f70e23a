//! Ogg Opus (RFC 7845), written and read: libopus through the `opus` crate (its `opusic-sys`
//! builds libopus from the source it bundles), pages through the pure-Rust `ogg` crate.
//!
//! The file is what OpenAI's `opus` format is: an `OpusHead` page, an `OpusTags` page, then
//! 20 ms packets of 48 kHz audio. Opus codes 8 to 48 kHz only, so other rates (Piper's
//! 22.05 kHz) are resampled to 48 kHz first; the header keeps the original rate for players.

use std::io::Cursor;

use ogg::{PacketReader, PacketWriteEndInfo, PacketWriter};
use opus::{Application, Bitrate, Channels, Signal};

use super::{Audio, StreamResampler};
use crate::TaskError;

/// Opus's own clock: granule positions count 48 kHz samples whatever the input was.
const RATE: u32 = 48_000;
/// 20 ms at 48 kHz.
const FRAME: usize = 960;
/// The largest packet libopus is asked for (its recommended bound).
const MAX_PACKET: usize = 4000;
/// 32 kbit/s: transparent for mono speech.
const BITRATE: i32 = 32_000;
/// The logical stream's serial number; a file holds one stream, so any fixed value does.
const SERIAL: u32 = 0x7465_7373;

/// An Opus encoder and an Ogg page writer kept across the chunks of one stream.
pub(super) struct OpusStream {
    encoder: opus::Encoder,
    resampler: StreamResampler,
    writer: PacketWriter<'static, Vec<u8>>,
    /// 48 kHz samples waiting for a whole frame.
    pending: Vec<f32>,
    /// The encoder's look-ahead: decoders drop this many samples from the start.
    pre_skip: u64,
    /// 48 kHz samples given to the encoder as input (not counting padding).
    samples_in: u64,
    /// Packets written.
    packets: u64,
}

impl OpusStream {
    pub(super) fn new(sample_rate: u32) -> Result<Self, TaskError> {
        let mut encoder = opus::Encoder::new(RATE, Channels::Mono, Application::Audio)
            .map_err(|error| failed(format!("setting up libopus: {error}")))?;
        encoder
            .set_bitrate(Bitrate::Bits(BITRATE))
            .and_then(|()| encoder.set_signal(Signal::Voice))
            .map_err(|error| failed(format!("setting up libopus: {error}")))?;
        let pre_skip = encoder
            .get_lookahead()
            .map_err(|error| failed(format!("asking libopus its look-ahead: {error}")))?;
        let pre_skip = u16::try_from(pre_skip)
            .map_err(|_| failed(format!("a look-ahead of {pre_skip} samples")))?;
        let mut stream = OpusStream {
            encoder,
            resampler: StreamResampler::new(sample_rate, RATE)?,
            writer: PacketWriter::new(Vec::new()),
            pending: Vec::new(),
            pre_skip: u64::from(pre_skip),
            samples_in: 0,
            packets: 0,
        };
        // Each header packet on a page of its own, granule 0 (RFC 7845, section 3).
        let head = opus_head(pre_skip, sample_rate);
        stream.write(head, PacketWriteEndInfo::EndPage, 0)?;
        stream.write(opus_tags(), PacketWriteEndInfo::EndPage, 0)?;
        Ok(stream)
    }

    pub(super) fn push(&mut self, samples: &[f32]) -> Result<Vec<u8>, TaskError> {
        let resampled = self.resampler.push(samples)?;
        self.samples_in += resampled.len() as u64;
        self.pending.extend(resampled);
        self.encode_frames(false)?;
        Ok(std::mem::take(self.writer.inner_mut()))
    }

    pub(super) fn finish(mut self) -> Result<Vec<u8>, TaskError> {
        let tail = self.resampler.finish()?;
        self.samples_in += tail.len() as u64;
        self.pending.extend(tail);
        // Enough padding to push the look-ahead out, and at least one packet to end on.
        let total = self.samples_in + self.pre_skip;
        let frames = total.div_ceil(FRAME as u64).max(self.packets + 1);
        let needed = (frames - self.packets) as usize * FRAME;
        self.pending.resize(needed, 0.0);
        self.encode_frames(true)?;
        Ok(self.writer.into_inner())
    }

    /// Encodes every whole frame pending. The last packet of a call ends its page, so what was
    /// encoded can be sent now; at the end of the stream it ends the stream, and its granule
    /// position trims the padding.
    fn encode_frames(&mut self, last: bool) -> Result<(), TaskError> {
        let frames = self.pending.len() / FRAME;
        for index in 0..frames {
            let frame = &self.pending[index * FRAME..(index + 1) * FRAME];
            let packet = self
                .encoder
                .encode_vec_float(frame, MAX_PACKET)
                .map_err(|error| failed(error.to_string()))?;
            self.packets += 1;
            let end = if index + 1 < frames {
                PacketWriteEndInfo::NormalPacket
            } else if last {
                PacketWriteEndInfo::EndStream
            } else {
                PacketWriteEndInfo::EndPage
            };
            let mut granule = self.packets * FRAME as u64;
            if end == PacketWriteEndInfo::EndStream {
                granule = granule.min(self.samples_in + self.pre_skip);
            }
            self.write(packet, end, granule)?;
        }
        self.pending.drain(..frames * FRAME);
        Ok(())
    }

    fn write(
        &mut self,
        packet: Vec<u8>,
        end: PacketWriteEndInfo,
        granule: u64,
    ) -> Result<(), TaskError> {
        self.writer
            .write_packet(packet, SERIAL, end, granule)
            .map_err(|error| failed(format!("writing an Ogg page: {error}")))
    }
}

/// The identification header: version 1, mono, pre-skip, the input's rate, no gain, mapping
/// family 0.
fn opus_head(pre_skip: u16, input_rate: u32) -> Vec<u8> {
    let mut head = Vec::with_capacity(19);
    head.extend(b"OpusHead");
    head.push(1);
    head.push(1);
    head.extend(pre_skip.to_le_bytes());
    head.extend(input_rate.to_le_bytes());
    head.extend(0i16.to_le_bytes());
    head.push(0);
    head
}

/// The comment header: the vendor string (libopus's version) and no comments.
fn opus_tags() -> Vec<u8> {
    let vendor = format!("tessera with {}", opus::version());
    let mut tags = Vec::with_capacity(16 + vendor.len());
    tags.extend(b"OpusTags");
    tags.extend((vendor.len() as u32).to_le_bytes());
    tags.extend(vendor.as_bytes());
    tags.extend(0u32.to_le_bytes());
    tags
}

/// Whether `bytes` start an Ogg stream whose first packet is an Opus header.
pub(super) fn is_ogg_opus(bytes: &[u8]) -> bool {
    // The first page: 27 header bytes, the segment table, then the packet.
    bytes.starts_with(b"OggS")
        && bytes.get(26).is_some_and(|&segments| {
            bytes
                .get(27 + usize::from(segments)..)
                .is_some_and(|packet| packet.starts_with(b"OpusHead"))
        })
}

/// Decodes an Ogg Opus file into mono samples at 48 kHz; the pre-skip and the end's padding
/// are cut as the granule positions say. Channels are mixed down.
pub(super) fn decode(bytes: Vec<u8>, max_seconds: f64) -> Result<Audio, TaskError> {
    let invalid = |message: String| TaskError::InvalidInput(message);
    let mut reader = PacketReader::new(Cursor::new(bytes));
    let read_error =
        |error: ogg::OggReadError| invalid(format!("the Ogg Opus file is corrupt: {error}"));
    let head = reader
        .read_packet()
        .map_err(read_error)?
        .ok_or_else(|| invalid("the Ogg file holds no packets".into()))?;
    let head = head.data;
    if !head.starts_with(b"OpusHead") || head.len() < 19 {
        return Err(invalid(
            "the Ogg file does not start with an Opus header".into(),
        ));
    }
    let channels = match head[9] {
        1 => Channels::Mono,
        2 => Channels::Stereo,
        n => {
            return Err(invalid(format!(
                "the Opus stream has {n} channels; mono and stereo are read"
            )));
        }
    };
    let count = channels as usize;
    let pre_skip = usize::from(u16::from_le_bytes([head[10], head[11]]));
    let mut decoder = opus::Decoder::new(RATE, channels)
        .map_err(|error| failed(format!("setting up the Opus decoder: {error}")))?;
    let max_samples = (max_seconds * f64::from(RATE)).ceil() as usize + pre_skip;
    let mut samples: Vec<f32> = Vec::new();
    // 120 ms, the longest Opus packet.
    let mut buffer = vec![0.0f32; 5760 * count];
    let mut last_granule = None;
    let mut packet_index = 0usize;
    while let Some(packet) = reader.read_packet().map_err(read_error)? {
        packet_index += 1;
        // The second packet is the comment header.
        if packet_index == 1 {
            continue;
        }
        let frames = decoder
            .decode_float(&packet.data, &mut buffer, false)
            .map_err(|error| invalid(format!("an Opus packet does not decode: {error}")))?;
        samples.extend(
            buffer[..frames * count]
                .chunks_exact(count)
                .map(|frame| frame.iter().sum::<f32>() / count as f32),
        );
        if packet.last_in_page() {
            last_granule = Some(packet.absgp_page());
        }
        if samples.len() > max_samples {
            return Err(invalid(format!(
                "the audio lasts more than {max_seconds:.1} s, over the limit; send a shorter file or raise the limit (--max-audio-seconds)"
            )));
        }
    }
    // The last page's granule position says where the audio ends (RFC 7845, section 4.5).
    if let Some(granule) = last_granule
        && let Ok(end) = usize::try_from(granule)
        && end < samples.len()
    {
        samples.truncate(end);
    }
    samples.drain(..pre_skip.min(samples.len()));
    Ok(Audio {
        samples,
        sample_rate: RATE,
    })
}

fn failed(message: String) -> TaskError {
    TaskError::Internal(format!("Opus coding failed: {message}"))
}
