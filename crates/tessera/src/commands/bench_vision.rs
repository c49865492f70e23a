//! `tessera bench vision`: milliseconds per image through the whole path a request takes
//! (decoding, resizing, the graphs and the post-processing), model loaded once. The model's task
//! (from the catalog, or `--task`) picks the frontend; the measuring loop is the same for all.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use serde_json::{Value, json};
use tessera_core::Task;
use tessera_tasks::registry::Frontend;
use tessera_tasks::vision::ocr::{OcrFrontend, OcrRequest, Reading};
use tessera_tasks::vision::segment::{SegmentFrontend, SegmentRequest, Segmentation};

use super::LocalRuntime;
use super::bench_chat::median;
use crate::cli::BenchVisionArgs;

pub fn run(args: BenchVisionArgs) -> anyhow::Result<()> {
    let task = match args.task {
        Some(task) => task,
        None => tessera_hub::Catalog::builtin()?
            .get(&args.model)
            .map(|entry| entry.task)
            .unwrap_or(Task::Segment),
    };
    let runtime = super::local_runtime(&args.engine)?;
    let images = args
        .images
        .iter()
        .map(|path| {
            std::fs::read(path)
                .with_context(|| format!("could not read {}", path.display()))
                .map(|bytes| (path.clone(), bytes))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(!images.is_empty(), "give at least one image");
    match task {
        Task::Segment => measure::<SegmentFrontend>(
            &runtime,
            &args,
            &images,
            |image| SegmentRequest { image },
            |found: &Segmentation| {
                (
                    json!({ "foreground": found.foreground }),
                    format!("{:.0} % foreground", found.foreground * 100.0),
                )
            },
        ),
        Task::Ocr => measure::<OcrFrontend>(
            &runtime,
            &args,
            &images,
            |image| OcrRequest { image },
            |reading: &Reading| {
                let characters = reading.text().chars().count();
                (
                    json!({ "lines": reading.lines.len(), "text": reading.text() }),
                    format!("{} lines, {characters} characters", reading.lines.len()),
                )
            },
        ),
        other => anyhow::bail!("tessera bench vision measures segment and ocr models, not {other}"),
    }
}

/// Loads the model, runs every image once to warm up, then `rounds` times each, printing the
/// median time and what `describe` makes of the last answer (JSON fields and a short phrase).
fn measure<F: Frontend>(
    runtime: &LocalRuntime,
    args: &BenchVisionArgs,
    images: &[(PathBuf, Vec<u8>)],
    request: impl Fn(Vec<u8>) -> F::Request,
    describe: impl Fn(&F::Response) -> (Value, String),
) -> anyhow::Result<()> {
    super::block_on(async {
        let started = Instant::now();
        runtime.load(&args.model).await?;
        let load = started.elapsed().as_secs_f64();
        // One pass to warm the session up.
        for (_, bytes) in images {
            runtime
                .run::<F>(&args.model, request(bytes.clone()))
                .await?;
        }
        for (path, bytes) in images {
            let mut times = Vec::new();
            let mut last = None;
            for _ in 0..args.rounds.max(1) {
                let started = Instant::now();
                let found = runtime
                    .run::<F>(&args.model, request(bytes.clone()))
                    .await?;
                times.push(started.elapsed().as_secs_f64() * 1000.0);
                last = Some(found);
            }
            // The fastest round too: on a shared machine it is the least disturbed one.
            let best = times.iter().copied().fold(f64::INFINITY, f64::min);
            let ms = median(times);
            let (fields, phrase) = match &last {
                Some(found) => describe(found),
                None => (json!({}), String::new()),
            };
            if args.json {
                let mut line = json!({
                    "task": F::TASK.as_str(),
                    "model": args.model,
                    "image": path.display().to_string(),
                    "ms_per_image": ms,
                    "ms_best": best,
                    "load_seconds": load,
                });
                if let (Value::Object(line), Value::Object(fields)) = (&mut line, fields) {
                    line.extend(fields);
                }
                println!("{line}");
            } else {
                println!(
                    "{}: {ms:.1} ms per image ({phrase}), median of {} (fastest {best:.1})",
                    path.display(),
                    args.rounds
                );
            }
        }
        anyhow::Ok(())
    })?
}
