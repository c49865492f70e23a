//! `tessera speak`: a text spoken into an audio file, to standard output as it is synthesized,
//! or out loud (`--play`, with the `play` feature).

use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use tessera_tasks::audio::{AudioFormat, StreamEncoder, encode};
use tessera_tasks::speech::{SpeechEvent, SpeechFrontend, SpeechRequest};
use tessera_voice::speak::{SpeakEvent, SpeakSettings, Translation};
use tokio::sync::mpsc;

use super::play::Player;
use crate::cli::SpeakArgs;

/// Where the audio goes besides the speakers.
enum Sink {
    None,
    /// Chunk by chunk, as they are synthesized.
    Stdout(StreamEncoder),
    /// Whole at the end, so a WAV states its length.
    File(PathBuf, Vec<f32>),
}

/// The speech's destinations: a file or standard output, and the speakers.
struct Output {
    sink: Sink,
    player: Option<Player>,
    samples: usize,
    sample_rate: u32,
    format: AudioFormat,
}

impl Output {
    fn open(
        output: Option<&Path>,
        play: bool,
        format: AudioFormat,
        sample_rate: u32,
    ) -> anyhow::Result<Output> {
        let sink = match output {
            None => Sink::None,
            Some(path) if path.as_os_str() == "-" => {
                Sink::Stdout(StreamEncoder::new(format, sample_rate)?)
            }
            Some(path) => Sink::File(path.to_path_buf(), Vec::new()),
        };
        let player = if play {
            Some(Player::open(sample_rate)?)
        } else {
            None
        };
        Ok(Output {
            sink,
            player,
            samples: 0,
            sample_rate,
            format,
        })
    }

    fn push(&mut self, chunk: Vec<f32>) -> anyhow::Result<()> {
        self.samples += chunk.len();
        if let Some(player) = self.player.as_mut() {
            player.push(&chunk)?;
        }
        match &mut self.sink {
            Sink::None => Ok(()),
            Sink::Stdout(encoder) => write_stdout(&encoder.push(&chunk)?),
            Sink::File(_, all) => {
                all.extend(chunk);
                Ok(())
            }
        }
    }

    /// Writes a file sink and waits for the player to have played everything.
    fn finish(self) -> anyhow::Result<()> {
        let sample_rate = self.sample_rate;
        let seconds = self.samples as f64 / f64::from(sample_rate);
        match self.sink {
            Sink::None => {}
            Sink::Stdout(encoder) => write_stdout(&encoder.finish()?)?,
            Sink::File(path, samples) => {
                let bytes = encode(&samples, sample_rate, self.format)?;
                std::fs::write(&path, &bytes)
                    .with_context(|| format!("could not write {}", path.display()))?;
                eprintln!(
                    "{}: {seconds:.1} s of audio at {sample_rate} Hz",
                    path.display()
                );
            }
        }
        if let Some(player) = self.player {
            player.finish()?;
            eprintln!("played {seconds:.1} s of audio");
        }
        Ok(())
    }
}

pub fn run(args: SpeakArgs) -> anyhow::Result<()> {
    let play = args.play();
    let output = args.output.as_deref();
    if output.is_none() && !play {
        bail!("say where the audio goes: -o FILE (or -o - for standard output)");
    }
    if args.stdin_json {
        return speak_json(args);
    }
    let text = match &args.text {
        Some(text) => text.clone(),
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("could not read standard input")?;
            text
        }
    };
    let format = output_format(args.format.as_deref(), output)?;
    let runtime = super::local_runtime(&args.engine)?;
    let request = SpeechRequest {
        text,
        speaker: args.speaker.clone(),
        speed: args.speed,
        noise_scale: args.noise_scale,
        noise_w: args.noise_w,
    };
    let out = super::block_on(async {
        let mut speech = runtime.run::<SpeechFrontend>(&args.model, request).await?;
        let mut out = Output::open(output, play, format, speech.sample_rate)?;
        loop {
            match speech.events.recv().await {
                Some(SpeechEvent::Audio(chunk)) => out.push(chunk)?,
                Some(SpeechEvent::Done) => break,
                Some(SpeechEvent::Failed(message)) => bail!("speech failed: {message}"),
                None => bail!("the voice stopped before the text ended"),
            }
        }
        anyhow::Ok(out)
    })??;
    out.finish()
}

/// `--stdin-json`: Claude Code's stream-json events from standard input, their assistant text
/// spoken as it arrives.
fn speak_json(args: SpeakArgs) -> anyhow::Result<()> {
    let play = args.play();
    let output = args.output.clone();
    let format = output_format(args.format.as_deref(), output.as_deref())?;
    let local = super::local_runtime(&args.engine)?;
    let runtime = local.clone();
    let settings = SpeakSettings {
        tts: args.model.clone(),
        speaker: args.speaker.clone(),
        speed: args.speed,
        noise_scale: args.noise_scale,
        noise_w: args.noise_w,
        translate: args.translate.clone().map(|language| Translation {
            llm: args.translate_model.clone(),
            language,
        }),
    };
    let lines = stdin_lines();
    let out = super::block_on(async {
        let (events_in, mut events) = mpsc::unbounded_channel();
        let pipeline = tokio::spawn(tessera_voice::speak::run(
            runtime, settings, lines, events_in,
        ));
        // Opened at the first audio, which says the voice's rate.
        let mut out: Option<Output> = None;
        while let Some(event) = events.recv().await {
            match event {
                SpeakEvent::Audio {
                    samples,
                    sample_rate,
                } => {
                    let out = match &mut out {
                        Some(out) => out,
                        None => {
                            out.insert(Output::open(output.as_deref(), play, format, sample_rate)?)
                        }
                    };
                    out.push(samples)?;
                }
                SpeakEvent::Clause(text) => tracing::info!(%text, "speaking"),
                SpeakEvent::FirstAudio(latency) => {
                    tracing::info!(ms = latency.as_millis() as u64, "line to first audio");
                }
                SpeakEvent::BadLine { line, message } => {
                    eprintln!("line {line} skipped: {message}");
                }
                SpeakEvent::Failed(message) => eprintln!("error: {message}"),
            }
        }
        pipeline.await.context("the speak pipeline stopped")?;
        anyhow::Ok(out)
    })??;
    match out {
        Some(out) => out.finish(),
        None => bail!("the input held no assistant text to speak"),
    }
}

/// Standard input's lines, each with the moment it arrived, read on their own thread.
fn stdin_lines() -> mpsc::Receiver<(String, Instant)> {
    let (sender, receiver) = mpsc::channel(256);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let line = match line {
                Ok(line) => line,
                Err(error) => {
                    eprintln!("standard input: {error}");
                    return;
                }
            };
            if sender.blocking_send((line, Instant::now())).is_err() {
                return;
            }
        }
    });
    receiver
}

/// `--format`, else the file's extension, else WAV.
pub(super) fn output_format(
    format: Option<&str>,
    output: Option<&Path>,
) -> anyhow::Result<AudioFormat> {
    if let Some(format) = format {
        return format.parse().map_err(anyhow::Error::msg);
    }
    match output
        .filter(|path| path.as_os_str() != "-")
        .and_then(Path::extension)
    {
        Some(extension) => extension
            .to_str()
            .unwrap_or_default()
            .to_ascii_lowercase()
            .parse()
            .map_err(anyhow::Error::msg),
        None => Ok(AudioFormat::Wav),
    }
}

fn write_stdout(bytes: &[u8]) -> anyhow::Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context("could not write the audio to standard output")
}
