//! `tessera ocr`: the text in pictures, line by line in reading order.

use anyhow::Context;
use tessera_tasks::vision::ocr::{OcrFrontend, OcrRequest};

use crate::cli::OcrArgs;

pub fn run(args: OcrArgs) -> anyhow::Result<()> {
    let images = args
        .images
        .iter()
        .map(|path| {
            std::fs::read(path)
                .with_context(|| format!("could not read {}", path.display()))
                .map(|bytes| (path, bytes))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runtime = super::local_runtime(&args.engine)?;
    let several = images.len() > 1;
    super::block_on(async {
        for (path, image) in images {
            let reading = runtime
                .run::<OcrFrontend>(&args.model, OcrRequest { image })
                .await
                .with_context(|| format!("{}", path.display()))?;
            if args.json {
                let lines: Vec<serde_json::Value> = reading
                    .lines
                    .iter()
                    .map(|line| {
                        serde_json::json!({
                            "text": line.text,
                            "confidence": line.confidence,
                            "box": line.corners,
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "image": path.display().to_string(),
                        "width": reading.width,
                        "height": reading.height,
                        "text": reading.text(),
                        "lines": lines,
                    })
                );
            } else {
                if several {
                    println!("==> {} <==", path.display());
                }
                println!("{}", reading.text());
            }
        }
        anyhow::Ok(())
    })?
}
