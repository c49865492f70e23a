//! `tessera voice`: a spoken conversation driven by an audio file, as a microphone would drive it.

use std::time::Duration;

use anyhow::{Context, bail};
use tessera_tasks::audio::{decode_at, encode};
use tessera_voice::{
    Command, ResponseStatus, SAMPLE_RATE, TurnDetection, VoiceEvent, VoiceModels, VoiceSession,
    VoiceSettings,
};
use tokio::sync::mpsc;

use crate::cli::VoiceArgs;

/// One frame of input, as a capture device would deliver it.
const FRAME: Duration = Duration::from_millis(20);

pub fn run(args: VoiceArgs) -> anyhow::Result<()> {
    let format = super::speak::output_format(None, Some(&args.output))?;
    let bytes = std::fs::read(&args.input)
        .with_context(|| format!("could not read {}", args.input.display()))?;
    let input = decode_at(bytes, SAMPLE_RATE, 3600.0)
        .with_context(|| format!("could not decode {}", args.input.display()))?;
    let runtime = super::local_runtime(&args.engine)?;
    let models = VoiceModels {
        stt: args.stt.clone(),
        llm: args.llm.clone(),
        tts: args.tts.clone(),
        vad: args.vad.clone(),
    };
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
    let silence_ms = args.silence_ms;
    let (answer, sample_rate, turns) = super::block_on(async move {
        let (events_in, mut events) = mpsc::unbounded_channel();
        let session = VoiceSession::start(runtime, models, settings, events_in).await?;
        let (commands, commands_out) = mpsc::channel(64);
        let session = tokio::spawn(session.run(commands_out));
        let feeder = tokio::spawn(feed(input.samples, silence_ms, args.fast, commands));
        let mut answer = Vec::new();
        let mut sample_rate = 0;
        let mut turns = 0;
        while let Some(event) = events.recv().await {
            match event {
                VoiceEvent::InputTranscript { text, .. } => eprintln!("you: {text}"),
                VoiceEvent::ResponseAudio {
                    samples,
                    sample_rate: rate,
                    ..
                } => {
                    sample_rate = rate;
                    answer.extend(samples);
                }
                VoiceEvent::ResponseDone { status, text, .. } => {
                    turns += 1;
                    match status {
                        ResponseStatus::Cancelled => eprintln!("assistant (interrupted): {text}"),
                        _ => eprintln!("assistant: {text}"),
                    }
                }
                VoiceEvent::Latency(latency) => eprintln!("turn: {latency}"),
                VoiceEvent::Error { message, .. }
                | VoiceEvent::TranscriptionFailed { message, .. } => eprintln!("error: {message}"),
                _ => {}
            }
        }
        feeder.await.context("the input feeder stopped")?;
        session.await.context("the voice session stopped")?;
        anyhow::Ok((answer, sample_rate, turns))
    })??;
    if turns == 0 {
        bail!(
            "no turn was answered: no speech was heard in {} (try a lower --threshold)",
            args.input.display()
        );
    }
    if answer.is_empty() {
        bail!("the answers had no words to speak");
    }
    let bytes = encode(&answer, sample_rate, format)?;
    std::fs::write(&args.output, bytes)
        .with_context(|| format!("could not write {}", args.output.display()))?;
    eprintln!(
        "{}: {turns} answer(s), {:.1} s of audio",
        args.output.display(),
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
