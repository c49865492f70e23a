//! `tessera speak`: a text spoken into an audio file, to standard output as it is synthesized,
//! or out loud (`--play`, with the `play` feature).

use std::io::{Read, Write};
use std::path::Path;

use anyhow::{Context, bail};
use tessera_tasks::audio::{AudioFormat, StreamEncoder, encode};
use tessera_tasks::speech::{SpeechEvent, SpeechFrontend, SpeechRequest};

use super::play::Player;
use crate::cli::SpeakArgs;

/// Where the audio goes besides the speakers.
enum Sink<'a> {
    None,
    /// Chunk by chunk, as they are synthesized.
    Stdout(StreamEncoder),
    /// Whole at the end, so a WAV states its length.
    File(&'a Path, Vec<f32>),
}

pub fn run(args: SpeakArgs) -> anyhow::Result<()> {
    let play = args.play();
    let output = args.output.as_deref();
    if output.is_none() && !play {
        bail!("say where the audio goes: -o FILE (or -o - for standard output)");
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
        noise_scale: None,
        noise_w: None,
    };
    let (sink, player, seconds, sample_rate) = super::block_on(async {
        let mut speech = runtime.run::<SpeechFrontend>(&args.model, request).await?;
        let sample_rate = speech.sample_rate;
        let mut sink = match output {
            None => Sink::None,
            Some(path) if path.as_os_str() == "-" => {
                Sink::Stdout(StreamEncoder::new(format, sample_rate)?)
            }
            Some(path) => Sink::File(path, Vec::new()),
        };
        let mut player = if play {
            Some(Player::open(sample_rate)?)
        } else {
            None
        };
        let mut samples = 0usize;
        loop {
            match speech.events.recv().await {
                Some(SpeechEvent::Audio(chunk)) => {
                    samples += chunk.len();
                    if let Some(player) = player.as_mut() {
                        player.push(&chunk)?;
                    }
                    match &mut sink {
                        Sink::None => {}
                        Sink::Stdout(encoder) => write_stdout(&encoder.push(&chunk)?)?,
                        Sink::File(_, all) => all.extend(chunk),
                    }
                }
                Some(SpeechEvent::Done) => break,
                Some(SpeechEvent::Failed(message)) => bail!("speech failed: {message}"),
                None => bail!("the voice stopped before the text ended"),
            }
        }
        let seconds = samples as f64 / f64::from(sample_rate);
        anyhow::Ok((sink, player, seconds, sample_rate))
    })??;
    match sink {
        Sink::None => {}
        Sink::Stdout(encoder) => write_stdout(&encoder.finish()?)?,
        Sink::File(path, samples) => {
            let bytes = encode(&samples, sample_rate, format)?;
            std::fs::write(path, &bytes)
                .with_context(|| format!("could not write {}", path.display()))?;
            eprintln!(
                "{}: {seconds:.1} s of audio at {sample_rate} Hz",
                path.display()
            );
        }
    }
    if let Some(player) = player {
        player.finish()?;
        eprintln!("played {seconds:.1} s of audio");
    }
    Ok(())
}

/// `--format`, else the file's extension, else WAV.
fn output_format(format: Option<&str>, output: Option<&Path>) -> anyhow::Result<AudioFormat> {
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
