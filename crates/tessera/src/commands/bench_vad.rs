//! `tessera bench vad`: the cost of one 32 ms Silero window, in process, for a whole clip and
//! one window at a time.

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
    let mut samples = audio::decode_at(bytes, SAMPLE_RATE, f64::MAX)?.samples;
    let windows = samples.len() / WINDOW;
    anyhow::ensure!(windows > 0, "the audio is shorter than one window");
    // Whole windows only, as the Python peer judges them.
    samples.truncate(windows * WINDOW);
    // Whole clips (what `tessera vad` and `/v1/vad` do: many windows per call) and one window
    // at a time (what the voice loop's stream does with 32 ms of audio), each warmed up once.
    let whole = |vad: &mut SileroVad| vad.probabilities(&samples);
    let streamed = |vad: &mut SileroVad| {
        vad.reset();
        samples
            .chunks_exact(WINDOW)
            .map(|window| vad.probability(window))
            .collect::<Result<Vec<f32>, _>>()
    };
    let (microseconds, speech) = time_passes(&mut vad, args.rounds, windows, whole)?;
    let (streaming, _) = time_passes(&mut vad, args.rounds, windows, streamed)?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "model": args.model,
                "windows": windows,
                "speech_windows": speech,
                "us_per_window": microseconds,
                "us_per_window_streaming": streaming,
            })
        );
    } else {
        println!(
            "{}: {windows} windows of 32 ms ({speech} speech), median of {} passes: {microseconds:.1} µs per window for the whole clip, {streaming:.1} µs one window at a time",
            args.model, args.rounds
        );
    }
    Ok(())
}

/// The median microseconds per window over `rounds` passes of `pass` (after one unmeasured
/// pass), and the windows the last pass judged speech.
fn time_passes(
    vad: &mut SileroVad,
    rounds: usize,
    windows: usize,
    mut pass: impl FnMut(&mut SileroVad) -> Result<Vec<f32>, tessera_tasks::TaskError>,
) -> anyhow::Result<(f64, usize)> {
    pass(vad)?;
    let mut per_window = Vec::new();
    let mut speech = 0;
    for _ in 0..rounds.max(1) {
        let started = Instant::now();
        let probabilities = pass(vad)?;
        per_window.push(started.elapsed().as_secs_f64() * 1e6 / windows as f64);
        speech = probabilities.iter().filter(|&&p| p >= 0.5).count();
    }
    Ok((median(per_window), speech))
}
