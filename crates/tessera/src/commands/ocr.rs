//! `tessera ocr`: the text in pictures, line by line in reading order.

use tessera_tasks::vision::ocr::{OcrFrontend, OcrRequest};

use super::photos::each_photo;
use crate::cli::OcrArgs;

pub fn run(args: OcrArgs) -> anyhow::Result<()> {
    let runtime = super::local_runtime(&args.engine)?;
    let several = args.images.len() > 1;
    let request = |image| OcrRequest { image };
    each_photo::<OcrFrontend>(
        &runtime,
        &args.model,
        &args.images,
        request,
        |path, _, reading| {
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
            Ok(())
        },
    )
}
