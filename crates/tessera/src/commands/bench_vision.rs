//! `tessera bench vision`: milliseconds per image through the whole path a request takes
//! (decoding, resizing, the network, the answer: a mask and PNGs, or ranked classes), model
//! loaded once. The model's task picks which.

use std::time::Instant;

use anyhow::Context;
use tessera_core::Task;
use tessera_hub::{Hub, Scope};
use tessera_runtime::Runtime;
use tessera_tasks::vision::classify::{ClassifyFrontend, ClassifyRequest, DEFAULT_TOP_K};
use tessera_tasks::vision::segment::{SegmentFrontend, SegmentRequest};

use super::bench_chat::median;
use crate::cli::BenchVisionArgs;

pub fn run(args: BenchVisionArgs) -> anyhow::Result<()> {
    let task = Hub::from_env()?
        .locate(&args.model, &Scope::AnyPath)?
        .task
        .unwrap_or(Task::Segment);
    anyhow::ensure!(
        matches!(task, Task::Segment | Task::Classify),
        "model `{}` is a {task} model; bench vision measures segmentation and classification",
        args.model
    );
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
    let batch = args.batch.max(1);
    super::block_on(async {
        let started = Instant::now();
        runtime.load(&args.model).await?;
        let load = started.elapsed().as_secs_f64();
        // One pass to warm the engine up.
        for (_, bytes) in &images {
            run_batch(&runtime, task, &args.model, bytes, batch).await?;
        }
        for (path, bytes) in &images {
            let mut times = Vec::new();
            let mut summary = serde_json::Value::Null;
            for _ in 0..args.rounds.max(1) {
                let started = Instant::now();
                summary = run_batch(&runtime, task, &args.model, bytes, batch).await?;
                times.push(started.elapsed().as_secs_f64() * 1000.0 / batch as f64);
            }
            let ms = median(times);
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "task": task.to_string(),
                        "model": args.model,
                        "image": path.display().to_string(),
                        "batch": batch,
                        "ms_per_image": ms,
                        "result": summary,
                        "load_seconds": load,
                    })
                );
            } else {
                let what = match task {
                    Task::Classify => {
                        format!("top-1 {}", summary["label"].as_str().unwrap_or_default())
                    }
                    _ => format!(
                        "{:.0} % foreground",
                        summary["foreground"].as_f64().unwrap_or_default() * 100.0
                    ),
                };
                println!(
                    "{}: {ms:.1} ms per image ({what}), batch {batch}, median of {}",
                    path.display(),
                    args.rounds
                );
            }
        }
        anyhow::Ok(())
    })?
}

/// Sends `batch` copies of the image at once; a summary of the first answer.
async fn run_batch(
    runtime: &Runtime,
    task: Task,
    model: &str,
    bytes: &[u8],
    batch: usize,
) -> anyhow::Result<serde_json::Value> {
    Ok(match task {
        Task::Classify => {
            let runs = (0..batch).map(|_| {
                let request = ClassifyRequest {
                    image: bytes.to_vec(),
                    top_k: DEFAULT_TOP_K,
                };
                runtime.run::<ClassifyFrontend>(model, request)
            });
            let mut found = futures_util::future::join_all(runs).await;
            let first = found.swap_remove(0)?;
            let top = first.labels.first().context("no classes")?;
            serde_json::json!({"label": top.label, "class_id": top.class_id, "score": top.score})
        }
        _ => {
            let runs = (0..batch).map(|_| {
                let request = SegmentRequest {
                    image: bytes.to_vec(),
                };
                runtime.run::<SegmentFrontend>(model, request)
            });
            let mut found = futures_util::future::join_all(runs).await;
            let first = found.swap_remove(0)?;
            serde_json::json!({"foreground": first.foreground})
        }
    })
}
