//! `tessera bench speak`: how soon the first audio comes and how fast the rest follows.

use std::time::{Duration, Instant};

use anyhow::bail;
use tessera_tasks::speech::{SpeechEvent, SpeechFrontend, SpeechRequest};
use tessera_voice::speak::{SpeakEvent, SpeakSettings};
use tokio::sync::mpsc;

use super::bench_chat::median;
use crate::cli::BenchSpeakArgs;

/// The texts measured; `bench/speak_vs_piper.py` speaks the same ones.
pub const TEXTS: [(&str, &str); 2] = [
    (
        "10 words",
        "The quick brown fox jumps over the lazy dog today.",
    ),
    (
        "60 words",
        "The old lighthouse keeper climbed the narrow stairs every evening, carrying a lamp and a book. \
         From the top he could see the harbour, the fishing boats and the long grey line of the coast. \
         He liked the quiet hours before dawn best, when the sea was calm and the gulls were still asleep. \
         Then he wrote a few lines in his journal and waited.",
    ),
];

pub fn run(args: BenchSpeakArgs) -> anyhow::Result<()> {
    if let Some(lines) = args.pipeline {
        return pipeline(&args, lines);
    }
    let runtime = super::local_runtime(&args.engine)?;
    super::block_on(runtime.load(&args.model))??;
    for (name, text) in TEXTS {
        let mut first = Vec::new();
        let mut rtf = Vec::new();
        let mut audio_seconds = 0.0;
        // One round more than asked: the first warms the session up and is not counted.
        for round in 0..=args.rounds.max(1) {
            let request = SpeechRequest {
                text: text.to_string(),
                speaker: None,
                speed: 1.0,
                noise_scale: None,
                noise_w: None,
            };
            let started = Instant::now();
            let (first_audio, samples, sample_rate) = super::block_on(async {
                let mut speech = runtime.run::<SpeechFrontend>(&args.model, request).await?;
                let mut first_audio = None;
                let mut samples = 0usize;
                loop {
                    match speech.events.recv().await {
                        Some(SpeechEvent::Audio(chunk)) => {
                            first_audio.get_or_insert_with(|| started.elapsed());
                            samples += chunk.len();
                        }
                        Some(SpeechEvent::Done) => break,
                        Some(SpeechEvent::Failed(message)) => bail!("speech failed: {message}"),
                        None => bail!("the voice stopped early"),
                    }
                }
                anyhow::Ok((first_audio.unwrap_or_default(), samples, speech.sample_rate))
            })??;
            let total = started.elapsed().as_secs_f64();
            audio_seconds = samples as f64 / f64::from(sample_rate);
            if round > 0 {
                first.push(first_audio.as_secs_f64() * 1000.0);
                rtf.push(total / audio_seconds);
            }
        }
        let (first, rtf) = (median(first), median(rtf));
        if args.json {
            println!(
                "{}",
                serde_json::json!({"text": name, "first_audio_ms": first, "rtf": rtf, "audio_seconds": audio_seconds})
            );
        } else {
            println!(
                "{name}: first audio {first:.0} ms, real-time factor {rtf:.3} ({audio_seconds:.1} s of audio), median of {}",
                args.rounds
            );
        }
    }
    Ok(())
}

/// Sentences the pipeline bench sends, one assistant message each.
const LINES: [&str; 5] = [
    "I checked the project files and the build is ready.",
    "All the tests pass on this machine.",
    "Next, I will update the readme.",
    "Then I open a pull request for review.",
    "Thank you for waiting.",
];

/// `--pipeline N`: stream-json lines fed 1.5 s apart (each is spoken before the next comes);
/// the time from each line's arrival to its first audio sample.
fn pipeline(args: &BenchSpeakArgs, count: usize) -> anyhow::Result<()> {
    let local = super::local_runtime(&args.engine)?;
    let runtime = local.clone();
    let settings = SpeakSettings {
        tts: args.model.clone(),
        speaker: None,
        speed: 1.0,
        noise_scale: None,
        noise_w: None,
        translate: None,
    };
    let latencies = super::block_on(async move {
        runtime.load(&settings.tts).await?;
        let (lines, lines_out) = mpsc::channel(16);
        let (events_in, mut events) = mpsc::unbounded_channel();
        let pipeline = tokio::spawn(tessera_voice::speak::run(
            runtime, settings, lines_out, events_in,
        ));
        // One line more than asked: the first warms the voice up and is not counted.
        let feeder = tokio::spawn(async move {
            for i in 0..=count {
                let text = LINES[i % LINES.len()];
                let line = serde_json::json!({
                    "type": "assistant",
                    "message": {"id": format!("msg_{i}"), "role": "assistant",
                                "content": [{"type": "text", "text": text}]}
                })
                .to_string();
                if lines.send((line, Instant::now())).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(1500)).await;
            }
        });
        let mut latencies = Vec::new();
        while let Some(event) = events.recv().await {
            match event {
                SpeakEvent::FirstAudio(latency) => latencies.push(latency.as_secs_f64() * 1000.0),
                SpeakEvent::Failed(message) => bail!("speech failed: {message}"),
                _ => {}
            }
        }
        feeder.await?;
        pipeline.await?;
        anyhow::Ok(latencies)
    })??;
    let mut measured: Vec<f64> = latencies.into_iter().skip(1).collect();
    measured.sort_by(f64::total_cmp);
    let (p50, p95) = (
        super::bench_voice::percentile(&measured, 0.5),
        super::bench_voice::percentile(&measured, 0.95),
    );
    if args.json {
        println!(
            "{}",
            serde_json::json!({"stage": "line_to_first_audio", "p50_ms": p50, "p95_ms": p95, "lines": measured.len()})
        );
    } else {
        println!(
            "speak pipeline, {} lines: line to first audio p50 {p50:.0} ms, p95 {p95:.0} ms",
            measured.len()
        );
    }
    Ok(())
}
