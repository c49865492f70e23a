//! `tessera bench vision`: milliseconds per image through the whole path a request takes
//! (decoding, resizing, the graph, the post-processing), model loaded once. The model's task
//! picks what is measured (`--task` names a task and its default model instead); with
//! `--concurrency N`, N copies of each image go in together, as N clients would send them, and
//! the worker batches them as it batches a server's requests.

use std::time::Instant;

use anyhow::Context;
use serde_json::json;
use tessera_core::Task;
use tessera_hub::{Hub, Scope};
use tessera_runtime::Runtime;
use tessera_tasks::Frontend;
use tessera_tasks::vision::classify::{ClassifyFrontend, ClassifyRequest, DEFAULT_TOP_K};
use tessera_tasks::vision::detect::{DetectFrontend, DetectRequest};
use tessera_tasks::vision::ocr::{OcrFrontend, OcrRequest};
use tessera_tasks::vision::pose::{PoseFrontend, PoseRequest};
use tessera_tasks::vision::segment::{SegmentFrontend, SegmentRequest};

use super::bench_chat::median;
use crate::cli::{BenchVisionArgs, VisionTask};

pub fn run(args: BenchVisionArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.rounds > 0 && args.concurrency > 0,
        "--rounds and --concurrency must be at least 1"
    );
    let runtime = super::local_runtime(&args.engine)?;
    let images = args
        .images
        .iter()
        .map(|path| {
            std::fs::read(path)
                .with_context(|| format!("could not read {}", path.display()))
                .map(|bytes| (path.display().to_string(), bytes))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    // A model names its task; without one, the task (segmentation by default) names its model.
    let (task, model) = match &args.model {
        Some(model) => {
            let task = Hub::from_env()?.locate(model, &Scope::AnyPath)?.task;
            let task = match task {
                Some(Task::Segment) => VisionTask::Segment,
                Some(Task::Detect) => VisionTask::Detect,
                Some(Task::Pose) => VisionTask::Pose,
                Some(Task::Classify) => VisionTask::Classify,
                Some(Task::Ocr) => VisionTask::Ocr,
                // A local file declares no task: --task says it.
                None => args.task.unwrap_or(VisionTask::Segment),
                Some(other) => anyhow::bail!(
                    "model `{model}` is a {other} model; bench vision measures segment, detect, pose, classify and ocr models"
                ),
            };
            (task, model.clone())
        }
        None => {
            let task = args.task.unwrap_or(VisionTask::Segment);
            (task, task.default_model().to_string())
        }
    };
    let bench = Bench {
        runtime: (*runtime).clone(),
        model,
        task,
        rounds: args.rounds,
        concurrency: args.concurrency,
        json: args.json,
    };
    super::block_on(async {
        match task {
            VisionTask::Segment => {
                bench
                    .run::<SegmentFrontend>(
                        &images,
                        |image| SegmentRequest { image },
                        |found| {
                            let share = found.foreground;
                            (json!({ "foreground": share }), format!("{:.0} % foreground", share * 100.0))
                        },
                    )
                    .await
            }
            VisionTask::Detect => {
                bench
                    .run::<DetectFrontend>(
                        &images,
                        |image| DetectRequest {
                            image,
                            ..DetectRequest::default()
                        },
                        |found| {
                            let objects = found.objects.len();
                            (json!({ "objects": objects }), format!("{objects} objects"))
                        },
                    )
                    .await
            }
            VisionTask::Pose => {
                bench
                    .run::<PoseFrontend>(
                        &images,
                        |image| PoseRequest {
                            image,
                            max_people: None,
                        },
                        |found| {
                            let people = found.people.len();
                            (json!({ "people": people }), format!("{people} people"))
                        },
                    )
                    .await
            }
            VisionTask::Classify => {
                bench
                    .run::<ClassifyFrontend>(
                        &images,
                        |image| ClassifyRequest {
                            image,
                            top_k: DEFAULT_TOP_K,
                        },
                        |found| match found.labels.first() {
                            Some(top) => (
                                json!({ "label": top.label, "class_id": top.class_id, "score": top.score }),
                                format!("{} {:.2}", top.label, top.score),
                            ),
                            None => (json!({}), "no classes".into()),
                        },
                    )
                    .await
            }
            VisionTask::Ocr => {
                bench
                    .run::<OcrFrontend>(
                        &images,
                        |image| OcrRequest { image },
                        |reading| {
                            let text = reading.text();
                            let lines = reading.lines.len();
                            let summary = format!("{lines} lines, {} characters", text.chars().count());
                            (json!({ "lines": lines, "text": text }), summary)
                        },
                    )
                    .await
            }
        }
    })?
}

struct Bench {
    runtime: Runtime,
    model: String,
    task: VisionTask,
    rounds: usize,
    concurrency: usize,
    json: bool,
}

impl Bench {
    /// Times each image: one warm-up round, then `rounds` rounds of `concurrency` copies sent
    /// together; prints the median per image, the fastest round (on a shared machine the least
    /// disturbed), and what `describe` makes of the last answer (JSON fields and a phrase).
    async fn run<F: Frontend>(
        &self,
        images: &[(String, Vec<u8>)],
        request: impl Fn(Vec<u8>) -> F::Request,
        describe: impl Fn(&F::Response) -> (serde_json::Value, String),
    ) -> anyhow::Result<()> {
        let started = Instant::now();
        self.runtime.load(&self.model).await?;
        let load = started.elapsed().as_secs_f64();
        let round = |bytes: &Vec<u8>| {
            let runs: Vec<_> = (0..self.concurrency)
                .map(|_| self.runtime.run::<F>(&self.model, request(bytes.clone())))
                .collect();
            futures_util::future::join_all(runs)
        };
        for (_, bytes) in images {
            for result in round(bytes).await {
                result?;
            }
        }
        for (path, bytes) in images {
            let mut times = Vec::new();
            let mut last = (json!({}), String::new());
            for _ in 0..self.rounds {
                let started = Instant::now();
                let answers = round(bytes).await;
                times.push(started.elapsed().as_secs_f64() * 1000.0 / self.concurrency as f64);
                for answer in answers {
                    last = describe(&answer?);
                }
            }
            let best = times.iter().copied().fold(f64::INFINITY, f64::min);
            let ms = median(times);
            let (fields, phrase) = last;
            if self.json {
                let mut line = json!({
                    "task": self.task.name(),
                    "model": self.model,
                    "image": path,
                    "concurrency": self.concurrency,
                    "ms_per_image": ms,
                    "ms_best": best,
                    "images_per_second": 1000.0 / ms,
                    "load_seconds": load,
                });
                if let (Some(line), serde_json::Value::Object(fields)) =
                    (line.as_object_mut(), fields)
                {
                    line.extend(fields);
                }
                println!("{line}");
            } else {
                println!(
                    "{path}: {ms:.1} ms per image (best {best:.1}), {:.1} images/s at concurrency {} ({phrase}), median of {}",
                    1000.0 / ms,
                    self.concurrency,
                    self.rounds
                );
            }
        }
        Ok(())
    }
}
