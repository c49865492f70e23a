//! `tessera bench voice`: spoken questions fed at real-time pace to one voice session; the time
//! from each question's last voiced frame to each stage of its answer, p50 and p95 over the turns.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use tessera_tasks::audio::{Audio, resample};
use tessera_tasks::speech::{SpeechEvent, SpeechFrontend, SpeechRequest};
use tessera_voice::{
    Command, SAMPLE_RATE, TurnDetection, TurnLatency, VoiceEvent, VoiceSession, VoiceSettings,
};
use tokio::sync::mpsc;

use crate::cli::BenchVoiceArgs;

/// The questions asked in turn; each turn is answered before the next is asked.
const QUESTIONS: [&str; 5] = [
    "What is the capital of France?",
    "How many days are in a week?",
    "What color is the sky?",
    "Can you name a large animal?",
    "What do bees make?",
];

/// 20 ms frames, as a capture device would deliver them.
const FRAME: usize = SAMPLE_RATE as usize / 50;

pub fn run(args: BenchVoiceArgs) -> anyhow::Result<()> {
    let local = super::local_runtime(&args.engine)?;
    let runtime = local.clone();
    let models = args.models.models();
    let settings = VoiceSettings {
        turn_detection: Some(TurnDetection {
            silence_duration_ms: args.silence_ms,
            ..TurnDetection::default()
        }),
        max_output_tokens: Some(args.max_tokens),
        partial_every: (args.partial_ms > 0).then(|| Duration::from_millis(args.partial_ms)),
        ..VoiceSettings::default()
    };
    let turns = args.turns.max(1);
    let latencies = super::block_on(async move {
        let mut questions = Vec::new();
        for question in QUESTIONS {
            questions.push(speak(&runtime, &models.tts, question).await?);
        }
        let (events_in, mut events) = mpsc::unbounded_channel();
        let session = VoiceSession::start(runtime, models, settings, events_in).await?;
        let (commands, commands_out) = mpsc::channel(64);
        let session = tokio::spawn(session.run(commands_out));
        let mut ticks = tokio::time::interval(Duration::from_millis(20));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        let silence = vec![0.0f32; FRAME];
        let mut latencies = Vec::new();
        for turn in 0..turns {
            let question = &questions[turn % questions.len()];
            // The question, then silence until its answer has ended.
            let mut frames = question.chunks(FRAME);
            let mut answered = None;
            while answered.is_none() {
                ticks.tick().await;
                let frame = frames.next().unwrap_or(&silence);
                commands
                    .send(Command::Audio(frame.to_vec()))
                    .await
                    .context("the session ended")?;
                while let Ok(event) = events.try_recv() {
                    match event {
                        VoiceEvent::Latency(latency) => answered = Some(latency),
                        VoiceEvent::Error { message, .. } => bail!("turn {turn}: {message}"),
                        _ => {}
                    }
                }
            }
            if let Some(latency) = answered {
                if args.per_turn {
                    eprintln!("turn {turn}: {latency}");
                }
                latencies.push(latency);
            }
        }
        drop(commands);
        session.await.context("the voice session stopped")?;
        anyhow::Ok(latencies)
    })??;
    report(&latencies, &args)
}

/// A question in tessera's own voice, at 16 kHz, with a little silence before it.
async fn speak(
    runtime: &tessera_runtime::Runtime,
    voice: &str,
    text: &str,
) -> anyhow::Result<Vec<f32>> {
    let request = SpeechRequest {
        text: text.into(),
        speaker: None,
        speed: 1.0,
        noise_scale: None,
        noise_w: None,
    };
    let mut speech = runtime.run::<SpeechFrontend>(voice, request).await?;
    let mut samples = Vec::new();
    loop {
        match speech.events.recv().await {
            Some(SpeechEvent::Audio(chunk)) => samples.extend(chunk),
            Some(SpeechEvent::Done) => break,
            Some(SpeechEvent::Failed(message)) => bail!("speech failed: {message}"),
            None => bail!("the voice stopped early"),
        }
    }
    let audio = resample(
        Audio {
            samples,
            sample_rate: speech.sample_rate,
        },
        SAMPLE_RATE,
    )?;
    let mut question = vec![0.0; SAMPLE_RATE as usize / 5];
    question.extend(audio.samples);
    Ok(question)
}

fn report(latencies: &[TurnLatency], args: &BenchVoiceArgs) -> anyhow::Result<()> {
    let mut stages: BTreeMap<usize, (&'static str, Vec<f64>)> = BTreeMap::new();
    for latency in latencies {
        for (order, (stage, time)) in latency.named().enumerate() {
            stages
                .entry(order)
                .or_insert((stage, Vec::new()))
                .1
                .push(time.as_secs_f64() * 1000.0);
        }
    }
    if !args.json {
        println!(
            "{} turns, end-of-turn silence {} ms; ms from the last voiced frame:",
            latencies.len(),
            args.silence_ms
        );
    }
    for (stage, mut times) in stages.into_values() {
        times.sort_by(f64::total_cmp);
        let (p50, p95) = (percentile(&times, 0.50), percentile(&times, 0.95));
        if args.json {
            println!(
                "{}",
                serde_json::json!({"stage": stage, "p50_ms": p50, "p95_ms": p95, "turns": times.len()})
            );
        } else {
            println!("  {stage:<13} p50 {p50:>6.0}  p95 {p95:>6.0}");
        }
    }
    Ok(())
}

/// The value below which `share` of the sorted `values` fall (nearest rank).
pub(super) fn percentile(values: &[f64], share: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let rank = ((share * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}
