//! `tessera speak --play`: speech played on the default audio output through cpal while the rest
//! is still being synthesized.
//!
//! The voice's chunks go into a queue that the device's callback drains; the stream starts with
//! the first chunk, so nothing is heard (or sent to the device) before there is speech. A device
//! that does not take the voice's rate gets the audio resampled to its own.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, bail};
use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, OutputCallbackInfo, SampleFormat, SizedSample, StreamConfig};
use tessera_tasks::audio::StreamResampler;

/// The default output device, playing one voice.
pub struct Player {
    stream: cpal::Stream,
    shared: Arc<Shared>,
    resampler: StreamResampler,
    started: bool,
}

/// What the producer and the device's callback share.
#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Rung when the last sample has gone to the device.
    drained: Condvar,
}

#[derive(Default)]
struct State {
    queue: VecDeque<f32>,
    /// No more samples will be queued.
    ended: bool,
    /// Set by the callback once it has written the last sample: how long until it is heard.
    tail: Option<Duration>,
    /// The device's first error.
    error: Option<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic in the callback leaves the queue itself intact.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
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
        let shared = Arc::new(Shared::default());
        let stream = match format {
            SampleFormat::F32 => build::<f32>(&device, &config, &shared),
            SampleFormat::I16 => build::<i16>(&device, &config, &shared),
            SampleFormat::I32 => build::<i32>(&device, &config, &shared),
            SampleFormat::U16 => build::<u16>(&device, &config, &shared),
            SampleFormat::U8 => build::<u8>(&device, &config, &shared),
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
            shared,
            resampler: StreamResampler::new(sample_rate, config.sample_rate)?,
            started: false,
        })
    }

    /// Queues samples at the voice's rate; the first call starts the stream.
    pub fn push(&mut self, samples: &[f32]) -> anyhow::Result<()> {
        let resampled = self.resampler.push(samples)?;
        self.shared.lock().queue.extend(resampled);
        if !self.started && !self.shared.lock().queue.is_empty() {
            self.stream.play().context("could not start playback")?;
            self.started = true;
        }
        Ok(())
    }

    /// Waits until everything queued has been heard, then closes the device.
    pub fn finish(mut self) -> anyhow::Result<()> {
        let tail = self.resampler.finish()?;
        self.push(&tail)?;
        if !self.started {
            return Ok(());
        }
        let rate = f64::from(self.resampler.output_rate());
        let mut state = self.shared.lock();
        state.ended = true;
        // The queue plays in real time; past that (and a margin), the device has stalled.
        let limit = Duration::from_secs_f64(state.queue.len() as f64 / rate + 5.0);
        let (state, timeout) = self
            .shared
            .drained
            .wait_timeout_while(state, limit, |state| state.tail.is_none())
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if timeout.timed_out() {
            match &state.error {
                Some(error) => bail!("playback stopped: {error}"),
                None => bail!("playback stalled: the audio device stopped taking samples"),
            }
        }
        let tail = state.tail.unwrap_or_default();
        drop(state);
        // The last samples are in the device's buffer: let them be heard before closing.
        std::thread::sleep(tail);
        drop(self.stream);
        Ok(())
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
            let mut state = feed.lock();
            let mut written = 0;
            for frame in data.chunks_mut(channels) {
                // Silence while the voice is behind (an underrun is heard as a pause).
                let sample = match state.queue.pop_front() {
                    Some(sample) => {
                        written += 1;
                        T::from_sample(sample)
                    }
                    None => T::EQUILIBRIUM,
                };
                frame.fill(sample);
            }
            if state.ended && state.queue.is_empty() && state.tail.is_none() {
                let timestamp = info.timestamp();
                let latency = timestamp.playback.duration_since(timestamp.callback);
                state.tail = Some(latency + Duration::from_secs_f64(written as f64 / rate));
                feed.drained.notify_all();
            }
        },
        move |error| {
            tracing::warn!(%error, "audio output error");
            let mut state = errors.lock();
            if state.error.is_none() {
                state.error = Some(error.to_string());
            }
        },
        None,
    )?;
    Ok(stream)
}
