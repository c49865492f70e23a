//! `tessera voice`: a spoken conversation, driven by an audio file as a microphone would drive
//! it, or by the microphone itself (`--mic`, with the `play` feature).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use tessera_tasks::audio::{decode_at, encode};
use tessera_voice::{
    Command, ResponseStatus, SAMPLE_RATE, TurnDetection, VoiceEvent, VoiceSession, VoiceSettings,
};
use tokio::sync::mpsc;

use super::play::{Microphone, Player};
use crate::cli::VoiceArgs;

/// One frame of input, as a capture device would deliver it.
const FRAME: Duration = Duration::from_millis(20);

pub fn run(args: VoiceArgs) -> anyhow::Result<()> {
    if args.mic() {
        return live(args);
    }
    let (Some(input), Some(output)) = (args.input.clone(), args.output.clone()) else {
        bail!("give --input FILE and --output FILE");
    };
    let format = super::speak::output_format(None, Some(&output))?;
    let bytes =
        std::fs::read(&input).with_context(|| format!("could not read {}", input.display()))?;
    let audio = decode_at(bytes, SAMPLE_RATE, 3600.0)
        .with_context(|| format!("could not decode {}", input.display()))?;
    let local = super::local_runtime(&args.engine)?;
    let runtime = local.clone();
    let (models, settings) = session_config(&args);
    let (silence_ms, fast) = (args.silence_ms, args.fast);
    let (answer, sample_rate, turns) = super::block_on(async move {
        let (events_in, mut events) = mpsc::unbounded_channel();
        let session = VoiceSession::start(runtime, models, settings, events_in).await?;
        let (commands, commands_out) = mpsc::channel(64);
        let session = tokio::spawn(session.run(commands_out));
        let feeder = tokio::spawn(feed(audio.samples, silence_ms, fast, commands));
        let mut answer = Vec::new();
        let mut sample_rate = 0;
        let mut turns = 0;
        while let Some(event) = events.recv().await {
            if let VoiceEvent::ResponseAudio {
                samples,
                sample_rate: rate,
                ..
            } = event
            {
                sample_rate = rate;
                answer.extend(samples);
            } else {
                turns += usize::from(report(&event));
            }
        }
        feeder.await.context("the input feeder stopped")?;
        session.await.context("the voice session stopped")?;
        anyhow::Ok((answer, sample_rate, turns))
    })??;
    if turns == 0 {
        bail!(
            "no turn was answered: no speech was heard in {} (try a lower --threshold)",
            input.display()
        );
    }
    if answer.is_empty() {
        bail!("the answers had no words to speak");
    }
    write(&output, &answer, sample_rate, format, turns)
}

/// The session's models and settings from the flags.
fn session_config(args: &VoiceArgs) -> (tessera_voice::VoiceModels, VoiceSettings) {
    let models = args.models.models();
    let mut settings = VoiceSettings {
        turn_detection: Some(TurnDetection {
            threshold: args.threshold,
            silence_duration_ms: args.silence_ms,
            ..TurnDetection::default()
        }),
        voice: args.speaker.clone(),
        speed: args.speed,
        language: args.language.clone(),
        temperature: args.temperature,
        max_output_tokens: Some(args.max_tokens),
        target: args.target_ms.map(Duration::from_millis),
        ..VoiceSettings::default()
    };
    if let Some(system) = &args.system {
        settings.instructions = system.clone();
    }
    (models, settings)
}

/// Prints what the user should see of an event; says whether a reply ended.
fn report(event: &VoiceEvent) -> bool {
    match event {
        VoiceEvent::InputTranscript { text, .. } => eprintln!("you: {text}"),
        VoiceEvent::ResponseDone { status, text, .. } => {
            match status {
                ResponseStatus::Cancelled => eprintln!("assistant (interrupted): {text}"),
                _ => eprintln!("assistant: {text}"),
            }
            return true;
        }
        VoiceEvent::Latency(latency) => eprintln!("turn: {latency}"),
        VoiceEvent::Error { message, .. } | VoiceEvent::TranscriptionFailed { message, .. } => {
            eprintln!("error: {message}");
        }
        _ => {}
    }
    false
}

fn write(
    path: &Path,
    answer: &[f32],
    sample_rate: u32,
    format: tessera_tasks::audio::AudioFormat,
    turns: usize,
) -> anyhow::Result<()> {
    let bytes = encode(answer, sample_rate, format)?;
    std::fs::write(path, bytes).with_context(|| format!("could not write {}", path.display()))?;
    eprintln!(
        "{}: {turns} answer(s), {:.1} s of audio",
        path.display(),
        answer.len() as f64 / f64::from(sample_rate)
    );
    Ok(())
}

/// Sends the input in 20 ms frames (at real-time pace unless `fast`), then enough silence for
/// the last turn to end, then the end of input.
async fn feed(samples: Vec<f32>, silence_ms: u32, fast: bool, commands: mpsc::Sender<Command>) {
    let frame = (SAMPLE_RATE as usize * FRAME.as_millis() as usize) / 1000;
    let tail = vec![0.0; (silence_ms as usize + 300) * SAMPLE_RATE as usize / 1000];
    let mut ticks = tokio::time::interval(FRAME);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for chunk in samples.chunks(frame).chain(tail.chunks(frame)) {
        if !fast {
            ticks.tick().await;
        }
        if commands.send(Command::Audio(chunk.to_vec())).await.is_err() {
            return;
        }
    }
    let _ = commands.send(Command::Finish).await;
}

/// `--mic`: the microphone in, the default output out, until Ctrl-C. A reply the user
/// interrupts stops playing at once.
fn live(args: VoiceArgs) -> anyhow::Result<()> {
    let local = super::local_runtime(&args.engine)?;
    let runtime = local.clone();
    let (models, settings) = session_config(&args);
    super::block_on(async move {
        let (events_in, mut events) = mpsc::unbounded_channel();
        eprintln!("loading the voice models…");
        let session = VoiceSession::start(runtime, models, settings, events_in).await?;
        let (commands, commands_out) = mpsc::channel(64);
        let session = tokio::spawn(session.run(commands_out));
        let mut microphone = Microphone::open(SAMPLE_RATE)?;
        let mut player: Option<Player> = None;
        let mut ticks = tokio::time::interval(FRAME);
        eprintln!("speak (Ctrl-C ends)");
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    let samples = microphone.read()?;
                    if !samples.is_empty() && commands.send(Command::Audio(samples)).await.is_err() {
                        break;
                    }
                }
                event = events.recv() => match event {
                    Some(VoiceEvent::ResponseAudio { samples, sample_rate, .. }) => {
                        let player = match &mut player {
                            Some(player) => player,
                            None => player.insert(Player::open(sample_rate)?),
                        };
                        player.push(&samples)?;
                    }
                    Some(event) => {
                        let interrupted = matches!(
                            event,
                            VoiceEvent::ResponseDone { status: ResponseStatus::Cancelled, .. }
                                | VoiceEvent::Truncated { .. }
                        );
                        if interrupted && let Some(player) = &player {
                            player.clear();
                        }
                        report(&event);
                    }
                    None => break,
                },
                _ = tokio::signal::ctrl_c() => break,
            }
        }
        drop(commands);
        session.abort();
        anyhow::Ok(())
    })?
}
