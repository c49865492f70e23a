//! `tessera bench vad`: the cost of one 32 ms Silero window, in process.

use std::time::Instant;

use anyhow::Context;
use tessera_hub::Hub;
use tessera_tasks::audio;
use tessera_tasks::vad::{SAMPLE_RATE, SileroVad, WINDOW};

use super::bench_chat::median;
use crate::cli::BenchVadArgs;

pub fn run(args: BenchVadArgs) -> anyhow::Result<()> {
    let model = Hub::from_env()?.resolve(&args.model)?;
    let session = super::runtime_config(&args.engine).session;
    let mut vad = SileroVad::load(&model.file_with_extension("onnx")?, &session)?;
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("could not read {}", args.file.display()))?;
    let samples = audio::decode_at(bytes, SAMPLE_RATE, f64::MAX)?.samples;
    let windows = samples.len() / WINDOW;
    anyhow::ensure!(windows > 0, "the audio is shorter than one window");
    // One pass to warm the session up.
    for window in samples.chunks_exact(WINDOW) {
        vad.probability(window)?;
    }
    let mut per_window = Vec::new();
    let mut speech = 0;
    for _ in 0..args.rounds.max(1) {
        vad.reset();
        speech = 0;
        let started = Instant::now();
        for window in samples.chunks_exact(WINDOW) {
            if vad.probability(window)? >= 0.5 {
                speech += 1;
            }
        }
        per_window.push(started.elapsed().as_secs_f64() * 1e6 / windows as f64);
    }
    let microseconds = median(per_window);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "model": args.model,
                "windows": windows,
                "speech_windows": speech,
                "us_per_window": microseconds,
            })
        );
    } else {
        println!(
            "{}: {windows} windows of 32 ms ({speech} speech), median of {} passes: {microseconds:.1} µs per window",
            args.model, args.rounds
        );
    }
    Ok(())
}
