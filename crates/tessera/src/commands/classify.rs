//! `tessera classify`: what each photo shows, as the most likely classes with probabilities.

use tessera_tasks::vision::classify::{ClassifyFrontend, ClassifyRequest};

use super::photos::each_photo;
use crate::cli::ClassifyArgs;

pub fn run(args: ClassifyArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.top_k >= 1, "--top-k must be at least 1");
    let runtime = super::local_runtime(&args.engine)?;
    let request = |image| ClassifyRequest {
        image,
        top_k: args.top_k,
    };
    // Submitted together, the photos share forward passes.
    each_photo::<ClassifyFrontend>(
        &runtime,
        &args.model,
        &args.images,
        request,
        |path, _, found| {
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
            Ok(())
        },
    )
}
