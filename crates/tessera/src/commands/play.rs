//! `tessera speak --play`: speech played on the default audio output through cpal while the rest
//! is still being synthesized.
//!
//! The voice's chunks go into a lock-free single-producer ring buffer (`rtrb`) that the device's
//! callback drains: synthesis never holds a lock the audio thread waits on, and when the voice
//! falls behind the callback plays silence rather than a glitch. The stream starts with the first
//! chunk, so nothing is heard (or sent to the device) before there is speech. A device that does
//! not take the voice's rate gets the audio resampled to its own.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, OutputCallbackInfo, SampleFormat, SizedSample, StreamConfig};
use rtrb::{Consumer, Producer, RingBuffer};
use tessera_tasks::audio::StreamResampler;

/// Seconds of audio the ring holds; a producer further ahead waits for the device.
const RING_SECONDS: usize = 30;
/// `Shared::tail_nanos` before the callback has played the last sample.
const NOT_DRAINED: u64 = u64::MAX;

/// The default output device, playing one voice.
pub struct Player {
    stream: cpal::Stream,
    /// Dropped at [`Player::finish`]: the callback sees the ring abandoned and reports when it
    /// has played the last sample.
    ring: Option<Producer<f32>>,
    shared: Arc<Shared>,
    resampler: StreamResampler,
    started: bool,
}

/// What the producer and the callback tell each other.
struct Shared {
    /// Set by [`Player::clear`]: the callback drops what the ring holds, then resets it.
    flush: AtomicBool,
    /// How long until the last sample written is heard, once the ring is abandoned and empty.
    tail_nanos: AtomicU64,
    /// The device's first error (set from cpal's error callback, never the audio callback).
    error: Mutex<Option<String>>,
}

impl Player {
    /// Opens the default output device for mono audio at `sample_rate`. Nothing plays until
    /// the first [`push`](Player::push).
    pub fn open(sample_rate: u32) -> anyhow::Result<Player> {
        let host = cpal::default_host();
        let device = host
            .default_output_device()
            .context("there is no audio output device (--play needs one)")?;
        let name = device
            .description()
            .map(|d| d.name().to_string())
            .unwrap_or_else(|_| "the default device".into());
        let (config, format) = choose_config(&device, sample_rate)
            .with_context(|| format!("{name} offers no output configuration"))?;
        let shared = Arc::new(Shared {
            flush: AtomicBool::new(false),
            tail_nanos: AtomicU64::new(NOT_DRAINED),
            error: Mutex::new(None),
        });
        let (producer, consumer) = RingBuffer::new(config.sample_rate as usize * RING_SECONDS);
        let stream = match format {
            SampleFormat::F32 => build::<f32>(&device, &config, consumer, &shared),
            SampleFormat::I16 => build::<i16>(&device, &config, consumer, &shared),
            SampleFormat::I32 => build::<i32>(&device, &config, consumer, &shared),
            SampleFormat::U16 => build::<u16>(&device, &config, consumer, &shared),
            SampleFormat::U8 => build::<u8>(&device, &config, consumer, &shared),
            other => bail!("{name} takes {other} samples, which tessera does not write"),
        }
        .with_context(|| format!("could not open {name} for playback"))?;
        eprintln!(
            "playing on {name}: {} Hz, {} channel(s), {format}{}",
            config.sample_rate,
            config.channels,
            if config.sample_rate == sample_rate {
                String::new()
            } else {
                format!(" (resampled from {sample_rate} Hz)")
            }
        );
        Ok(Player {
            stream,
            ring: Some(producer),
            shared,
            resampler: StreamResampler::new(sample_rate, config.sample_rate)?,
            started: false,
        })
    }

    /// Queues samples at the voice's rate; the first call starts the stream. Waits only when
    /// the ring is full (the voice is far ahead of the device).
    pub fn push(&mut self, samples: &[f32]) -> anyhow::Result<()> {
        let resampled = self.resampler.push(samples)?;
        let Some(ring) = self.ring.as_mut() else {
            bail!("the player was finished");
        };
        let mut rest = resampled.as_slice();
        while !rest.is_empty() {
            let room = ring.slots().min(rest.len());
            if room == 0 {
                check_error(&self.shared)?;
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
            if let Ok(chunk) = ring.write_chunk_uninit(room) {
                chunk.fill_from_iter(rest[..room].iter().copied());
            }
            rest = &rest[room..];
            if !self.started {
                self.stream.play().context("could not start playback")?;
                self.started = true;
            }
        }
        Ok(())
    }

    /// Drops the audio queued but not yet played (the listener interrupted it).
    pub fn clear(&self) {
        self.shared.flush.store(true, Ordering::Release);
    }

    /// Waits until everything queued has been heard, then closes the device.
    pub fn finish(mut self) -> anyhow::Result<()> {
        let tail = self.resampler.finish()?;
        self.push(&tail)?;
        let queued = self
            .ring
            .as_ref()
            .map_or(0, |ring| ring.buffer().capacity() - ring.slots());
        drop(self.ring.take());
        if !self.started {
            return Ok(());
        }
        // The ring plays in real time; past that (and a margin), the device has stalled.
        let rate = f64::from(self.resampler.output_rate());
        let deadline = Instant::now() + Duration::from_secs_f64(queued as f64 / rate + 5.0);
        let tail = loop {
            let nanos = self.shared.tail_nanos.load(Ordering::Acquire);
            if nanos != NOT_DRAINED {
                break Duration::from_nanos(nanos);
            }
            check_error(&self.shared)?;
            if Instant::now() > deadline {
                bail!("playback stalled: the audio device stopped taking samples");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        // The last samples are in the device's buffer: let them be heard before closing.
        std::thread::sleep(tail);
        drop(self.stream);
        Ok(())
    }
}

/// The device's first error, if it has failed.
fn check_error(shared: &Shared) -> anyhow::Result<()> {
    let error = shared
        .error
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .clone();
    match error {
        Some(error) => bail!("playback stopped: {error}"),
        None => Ok(()),
    }
}

/// A configuration that takes the voice's rate if the device has one (fewest channels, float
/// samples first), else the device's default.
fn choose_config(
    device: &cpal::Device,
    sample_rate: u32,
) -> anyhow::Result<(StreamConfig, SampleFormat)> {
    let rank = |format: SampleFormat| match format {
        SampleFormat::F32 => 0,
        SampleFormat::I16 => 1,
        SampleFormat::I32 => 2,
        SampleFormat::U16 => 3,
        SampleFormat::U8 => 4,
        _ => 5,
    };
    let at_voice_rate = device
        .supported_output_configs()
        .ok()
        .into_iter()
        .flatten()
        .filter(|range| range.contains_rate(sample_rate) && rank(range.sample_format()) < 5)
        .min_by_key(|range| (range.channels(), rank(range.sample_format())))
        .map(|range| range.with_sample_rate(sample_rate));
    let supported = match at_voice_rate {
        Some(config) => config,
        None => device.default_output_config()?,
    };
    Ok((supported.config(), supported.sample_format()))
}

fn build<T>(
    device: &cpal::Device,
    config: &StreamConfig,
    mut ring: Consumer<f32>,
    shared: &Arc<Shared>,
) -> anyhow::Result<cpal::Stream>
where
    T: SizedSample + FromSample<f32>,
{
    let channels = usize::from(config.channels.max(1));
    let rate = f64::from(config.sample_rate);
    let feed = Arc::clone(shared);
    let errors = Arc::clone(shared);
    let stream = device.build_output_stream::<T, _, _>(
        *config,
        move |data: &mut [T], info: &OutputCallbackInfo| {
            if feed.flush.swap(false, Ordering::AcqRel)
                && let Ok(queued) = ring.read_chunk(ring.slots())
            {
                queued.commit_all();
            }
            let mut written = 0;
            for frame in data.chunks_mut(channels) {
                // Silence while the voice is behind (an underrun is heard as a pause).
                let sample = match ring.pop() {
                    Ok(sample) => {
                        written += 1;
                        T::from_sample(sample)
                    }
                    Err(_) => T::EQUILIBRIUM,
                };
                frame.fill(sample);
            }
            if ring.is_abandoned()
                && ring.is_empty()
                && feed.tail_nanos.load(Ordering::Relaxed) == NOT_DRAINED
            {
                let timestamp = info.timestamp();
                let latency = timestamp.playback.duration_since(timestamp.callback);
                let tail = latency + Duration::from_secs_f64(written as f64 / rate);
                feed.tail_nanos.store(
                    tail.as_nanos().min(u128::from(NOT_DRAINED - 1)) as u64,
                    Ordering::Release,
                );
            }
        },
        move |error| {
            tracing::warn!(%error, "audio output error");
            let mut first = errors
                .error
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            first.get_or_insert_with(|| error.to_string());
        },
        None,
    )?;
    Ok(stream)
}

/// The default input device, read as mono at a chosen rate.
pub struct Microphone {
    _stream: cpal::Stream,
    ring: Consumer<f32>,
    resampler: StreamResampler,
}

impl Microphone {
    /// Opens the default input device (its default configuration, mixed down to mono) and
    /// starts capturing; [`Microphone::read`] gives the samples at `sample_rate`.
    pub fn open(sample_rate: u32) -> anyhow::Result<Microphone> {
        let host = cpal::default_host();
        let device = host
            .default_input_device()
            .context("there is no audio input device (--mic needs one)")?;
        let name = device
            .description()
            .map(|d| d.name().to_string())
            .unwrap_or_else(|_| "the default input".into());
        let supported = device
            .default_input_config()
            .with_context(|| format!("{name} offers no input configuration"))?;
        let config = supported.config();
        let (producer, consumer) = RingBuffer::new(config.sample_rate as usize * RING_SECONDS);
        let stream = match supported.sample_format() {
            SampleFormat::F32 => capture::<f32>(&device, &config, producer),
            SampleFormat::I16 => capture::<i16>(&device, &config, producer),
            SampleFormat::I32 => capture::<i32>(&device, &config, producer),
            SampleFormat::U16 => capture::<u16>(&device, &config, producer),
            other => bail!("{name} records {other} samples, which tessera does not read"),
        }
        .with_context(|| format!("could not open {name} for capture"))?;
        stream.play().context("could not start capture")?;
        eprintln!(
            "listening on {name}: {} Hz, {} channel(s)",
            config.sample_rate, config.channels
        );
        Ok(Microphone {
            _stream: stream,
            ring: consumer,
            resampler: StreamResampler::new(config.sample_rate, sample_rate)?,
        })
    }

    /// What was captured since the last call, at the chosen rate.
    pub fn read(&mut self) -> anyhow::Result<Vec<f32>> {
        let captured: Vec<f32> = match self.ring.read_chunk(self.ring.slots()) {
            Ok(chunk) => chunk.into_iter().collect(),
            Err(_) => Vec::new(),
        };
        Ok(self.resampler.push(&captured)?)
    }
}

fn capture<T>(
    device: &cpal::Device,
    config: &StreamConfig,
    mut ring: Producer<f32>,
) -> anyhow::Result<cpal::Stream>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels.max(1));
    let stream = device.build_input_stream::<T, _, _>(
        *config,
        move |data: &[T], _| {
            for frame in data.chunks(channels) {
                let mono =
                    frame.iter().map(|&s| s.to_sample::<f32>()).sum::<f32>() / channels as f32;
                // A device that sends garbage must not poison the resampler's FFT.
                let mono = if mono.is_finite() {
                    mono.clamp(-1.0, 1.0)
                } else {
                    0.0
                };
                // A full ring (nobody reading) drops the newest audio rather than block.
                let _ = ring.push(mono);
            }
        },
        |error| tracing::warn!(%error, "audio input error"),
        None,
    )?;
    Ok(stream)
}
