//! `tessera classify`: what each photo shows, as the most likely classes with probabilities.

use anyhow::Context;
use tessera_tasks::vision::classify::{ClassifyFrontend, ClassifyRequest};

use crate::cli::ClassifyArgs;

pub fn run(args: ClassifyArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.top_k >= 1, "--top-k must be at least 1");
    let images = args
        .images
        .iter()
        .map(|path| {
            std::fs::read(path).with_context(|| format!("could not read {}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runtime = super::local_runtime(&args.engine)?;
    // Submitted together, the photos share forward passes.
    let runs = images.into_iter().map(|image| {
        runtime.run::<ClassifyFrontend>(
            &args.model,
            ClassifyRequest {
                image,
                top_k: args.top_k,
            },
        )
    });
    let results = super::block_on(futures_util::future::join_all(runs))?;
    let mut failed = false;
    for (path, result) in args.images.iter().zip(results) {
        let found = match result {
            Ok(found) => found,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                failed = true;
                continue;
            }
        };
        if args.json {
            let labels: Vec<_> = found
                .labels
                .iter()
                .map(|c| serde_json::json!({"label": c.label, "class_id": c.class_id, "score": c.score}))
                .collect();
            println!(
                "{}",
                serde_json::json!({
                    "image": path.display().to_string(),
                    "width": found.width,
                    "height": found.height,
                    "labels": labels,
                })
            );
        } else {
            println!("{} ({} × {})", path.display(), found.width, found.height);
            for class in &found.labels {
                println!(
                    "  {:5.1} %  {} ({})",
                    class.score * 100.0,
                    class.label,
                    class.class_id
                );
            }
        }
    }
    anyhow::ensure!(!failed, "some images could not be classified");
    Ok(())
}
