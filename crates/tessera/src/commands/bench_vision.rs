//! `tessera bench vision`: milliseconds per image through the whole path a request takes
//! (decoding, resizing, the graph, the mask and the PNGs), model loaded once.

use std::time::Instant;

use anyhow::Context;
use tessera_tasks::vision::segment::{SegmentFrontend, SegmentRequest};

use super::bench_chat::median;
use crate::cli::BenchVisionArgs;

pub fn run(args: BenchVisionArgs) -> anyhow::Result<()> {
    let runtime = super::local_runtime(&args.engine)?;
    let images = args
        .images
        .iter()
        .map(|path| {
            std::fs::read(path)
                .with_context(|| format!("could not read {}", path.display()))
                .map(|bytes| (path, bytes))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!images.is_empty(), "give at least one image");
    super::block_on(async {
        let started = Instant::now();
        runtime.load(&args.model).await?;
        let load = started.elapsed().as_secs_f64();
        // One pass to warm the session up.
        for (_, bytes) in &images {
            let request = SegmentRequest {
                image: bytes.clone(),
            };
            runtime.run::<SegmentFrontend>(&args.model, request).await?;
        }
        for (path, bytes) in &images {
            let mut times = Vec::new();
            let mut foreground = 0.0;
            for _ in 0..args.rounds.max(1) {
                let request = SegmentRequest {
                    image: bytes.clone(),
                };
                let started = Instant::now();
                let found = runtime.run::<SegmentFrontend>(&args.model, request).await?;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
                foreground = found.foreground;
            }
            let ms = median(times);
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "task": "segment",
                        "model": args.model,
                        "image": path.display().to_string(),
                        "ms_per_image": ms,
                        "foreground": foreground,
                        "load_seconds": load,
                    })
                );
            } else {
                println!(
                    "{}: {ms:.1} ms per image ({:.0} % foreground), median of {}",
                    path.display(),
                    foreground * 100.0,
                    args.rounds
                );
            }
        }
        anyhow::Ok(())
    })?
}
