//! `tessera detect`: the objects in photos, one line each (or JSON), optionally drawn.

use anyhow::Context;
use tessera_tasks::vision::detect::{DetectFrontend, DetectRequest, Detections};
use tessera_tasks::vision::draw;
use tessera_tasks::vision::image::{DEFAULT_MAX_PIXELS, decode, png};

use crate::cli::DetectArgs;

pub fn run(args: DetectArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.draw.is_none() || args.images.len() == 1,
        "--draw writes one picture: give one photo with it"
    );
    let runtime = super::local_runtime(&args.engine)?;
    let photos = args
        .images
        .iter()
        .map(|path| {
            std::fs::read(path).with_context(|| format!("could not read {}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let requests = photos.iter().map(|image| DetectRequest {
        image: image.clone(),
        confidence: args.confidence,
        iou: args.iou,
        max_detections: None,
    });
    // All at once: the worker runs them as batches.
    let runs: Vec<_> = requests
        .map(|request| runtime.run::<DetectFrontend>(&args.model, request))
        .collect();
    let results = super::block_on(futures_util::future::join_all(runs))?;
    for ((path, result), photo) in args.images.iter().zip(results).zip(&photos) {
        let found = result.with_context(|| format!("{}", path.display()))?;
        if args.json {
            println!("{}", json(path, &found));
        } else {
            print_lines(path, &found, args.images.len() > 1);
        }
        if let Some(out) = &args.draw {
            write_drawing(photo, &found, out)?;
            eprintln!("{}: {} boxes drawn", out.display(), found.objects.len());
        }
    }
    Ok(())
}

fn print_lines(path: &std::path::Path, found: &Detections, several: bool) {
    let prefix = if several {
        format!("{}: ", path.display())
    } else {
        String::new()
    };
    if found.objects.is_empty() {
        println!("{prefix}nothing found");
    }
    for object in &found.objects {
        let b = object.bbox;
        println!(
            "{prefix}{} {:.2} {:.0},{:.0},{:.0},{:.0}",
            object.label, object.confidence, b.x1, b.y1, b.x2, b.y2
        );
    }
}

fn json(path: &std::path::Path, found: &Detections) -> serde_json::Value {
    let objects: Vec<_> = found
        .objects
        .iter()
        .map(|object| {
            serde_json::json!({
                "label": object.label,
                "class_id": object.class_id,
                "confidence": object.confidence,
                "box": {"x1": object.bbox.x1, "y1": object.bbox.y1, "x2": object.bbox.x2, "y2": object.bbox.y2},
            })
        })
        .collect();
    serde_json::json!({
        "image": path.display().to_string(),
        "width": found.width,
        "height": found.height,
        "objects": objects,
    })
}

/// The photo with each box outlined in its class's colour, as a PNG.
fn write_drawing(photo: &[u8], found: &Detections, out: &std::path::Path) -> anyhow::Result<()> {
    let mut picture = decode(photo, DEFAULT_MAX_PIXELS)?.rgb;
    let thickness = draw::stroke(&picture);
    for object in &found.objects {
        let b = object.bbox;
        draw::rectangle(
            &mut picture,
            [b.x1, b.y1, b.x2, b.y2],
            thickness,
            draw::colour(object.class_id),
        );
    }
    std::fs::write(out, png(&picture)?)
        .with_context(|| format!("could not write {}", out.display()))
}
