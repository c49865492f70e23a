//! `tessera detect`: the objects in photos, one line each (or JSON), optionally drawn.

use std::path::Path;

use tessera_tasks::vision::detect::{DetectFrontend, DetectRequest, Detections};
use tessera_tasks::vision::draw;

use super::photos::{each_photo, one_drawing, write_drawing};
use crate::cli::DetectArgs;

pub fn run(args: DetectArgs) -> anyhow::Result<()> {
    one_drawing(args.draw.as_deref(), args.images.len())?;
    let runtime = super::local_runtime(&args.engine)?;
    let several = args.images.len() > 1;
    let request = |image| DetectRequest {
        image,
        confidence: args.confidence,
        iou: args.iou,
        max_detections: None,
    };
    each_photo::<DetectFrontend>(
        &runtime,
        &args.model,
        &args.images,
        request,
        |path, photo, found| {
            if args.json {
                println!("{}", json(path, &found));
            } else {
                print_lines(path, &found, several);
            }
            if let Some(out) = &args.draw {
                write_drawing(photo, out, |picture| {
                    let thickness = draw::stroke(picture);
                    for object in &found.objects {
                        let b = object.bbox;
                        let colour = draw::colour(object.class_id);
                        draw::rectangle(picture, [b.x1, b.y1, b.x2, b.y2], thickness, colour);
                    }
                })?;
                eprintln!("{}: {} boxes drawn", out.display(), found.objects.len());
            }
            Ok(())
        },
    )
}

fn print_lines(path: &Path, found: &Detections, several: bool) {
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

fn json(path: &Path, found: &Detections) -> serde_json::Value {
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
