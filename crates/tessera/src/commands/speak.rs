//! `tessera speak`: a text spoken into an audio file.

use std::io::{Read, Write};

use anyhow::{Context, bail};
use tessera_tasks::audio::{AudioFormat, encode};
use tessera_tasks::speech::{SpeechEvent, SpeechFrontend, SpeechRequest};

use crate::cli::SpeakArgs;

pub fn run(args: SpeakArgs) -> anyhow::Result<()> {
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
    let to_stdout = args.output.as_os_str() == "-";
    let format: AudioFormat = match (&args.format, args.output.extension()) {
        (Some(format), _) => format.parse().map_err(anyhow::Error::msg)?,
        (None, Some(extension)) if !to_stdout => extension
            .to_str()
            .unwrap_or_default()
            .to_ascii_lowercase()
            .parse()
            .map_err(anyhow::Error::msg)?,
        _ => AudioFormat::Wav,
    };
    let runtime = super::local_runtime(&args.engine)?;
    let request = SpeechRequest {
        text,
        speaker: args.speaker.clone(),
        speed: args.speed,
        noise_scale: None,
        noise_w: None,
    };
    let (samples, sample_rate) = super::block_on(async {
        let mut speech = runtime.run::<SpeechFrontend>(&args.model, request).await?;
        let mut samples = Vec::new();
        loop {
            match speech.events.recv().await {
                Some(SpeechEvent::Audio(more)) => samples.extend(more),
                Some(SpeechEvent::Done) => return anyhow::Ok((samples, speech.sample_rate)),
                Some(SpeechEvent::Failed(message)) => bail!("speech failed: {message}"),
                None => bail!("the voice stopped before the text ended"),
            }
        }
    })??;
    let bytes = encode(&samples, sample_rate, format)?;
    if to_stdout {
        std::io::stdout()
            .write_all(&bytes)
            .context("could not write the audio to standard output")?;
    } else {
        std::fs::write(&args.output, &bytes)
            .with_context(|| format!("could not write {}", args.output.display()))?;
        eprintln!(
            "{}: {:.1} s of audio at {sample_rate} Hz",
            args.output.display(),
            samples.len() as f64 / f64::from(sample_rate)
        );
    }
    Ok(())
}
