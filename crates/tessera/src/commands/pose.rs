//! `tessera pose`: the people in photos and their body landmarks, optionally drawn.

use std::path::Path;

use tessera_tasks::vision::draw;
use tessera_tasks::vision::image::RgbImage;
use tessera_tasks::vision::pose::{PoseFrontend, PoseRequest, Poses, SKELETON};

use super::photos::{each_photo, one_drawing, write_drawing};
use crate::cli::PoseArgs;

/// Landmarks less likely visible than this are not drawn.
const DRAWN_VISIBILITY: f32 = 0.5;

pub fn run(args: PoseArgs) -> anyhow::Result<()> {
    one_drawing(args.draw.as_deref(), args.images.len())?;
    let runtime = super::local_runtime(&args.engine)?;
    let request = |image| PoseRequest {
        image,
        max_people: args.max_people,
    };
    each_photo::<PoseFrontend>(
        &runtime,
        &args.model,
        &args.images,
        request,
        |path, photo, found| {
            if args.json {
                println!("{}", json(path, &found));
            } else {
                print_people(path, &found);
            }
            if let Some(out) = &args.draw {
                write_drawing(photo, out, |picture| draw_skeletons(picture, &found))?;
                eprintln!("{}: {} people drawn", out.display(), found.people.len());
            }
            Ok(())
        },
    )
}

fn print_people(path: &Path, found: &Poses) {
    if found.people.is_empty() {
        println!("{}: nobody found", path.display());
    }
    for (i, person) in found.people.iter().enumerate() {
        let [x1, y1, x2, y2] = person.bbox;
        println!(
            "{}: person {} score {:.2} box {x1:.0},{y1:.0},{x2:.0},{y2:.0}",
            path.display(),
            i + 1,
            person.score
        );
        for l in &person.landmarks {
            println!(
                "  {:<17} {:>7.1} {:>7.1}  {:.2}",
                l.name, l.x, l.y, l.visibility
            );
        }
    }
}

fn json(path: &Path, found: &Poses) -> serde_json::Value {
    let people: Vec<_> = found
        .people
        .iter()
        .map(|person| {
            let landmarks: Vec<_> = person
                .landmarks
                .iter()
                .map(|l| {
                    serde_json::json!({
                        "name": l.name, "x": l.x, "y": l.y, "z": l.z,
                        "visibility": l.visibility, "presence": l.presence,
                    })
                })
                .collect();
            let [x1, y1, x2, y2] = person.bbox;
            serde_json::json!({
                "score": person.score,
                "presence": person.presence,
                "box": {"x1": x1, "y1": y1, "x2": x2, "y2": y2},
                "landmarks": landmarks,
            })
        })
        .collect();
    serde_json::json!({
        "image": path.display().to_string(),
        "width": found.width,
        "height": found.height,
        "people": people,
    })
}

/// Each person's visible joints and bones, in their own colour.
fn draw_skeletons(picture: &mut RgbImage, found: &Poses) {
    let thickness = draw::stroke(picture);
    for (i, person) in found.people.iter().enumerate() {
        let colour = draw::colour(i);
        let seen = |j: usize| &person.landmarks[j];
        for &(a, b) in &SKELETON {
            let (a, b) = (seen(a), seen(b));
            if a.visibility >= DRAWN_VISIBILITY && b.visibility >= DRAWN_VISIBILITY {
                draw::line(picture, (a.x, a.y), (b.x, b.y), thickness, colour);
            }
        }
        for l in person
            .landmarks
            .iter()
            .filter(|l| l.visibility >= DRAWN_VISIBILITY)
        {
            draw::dot(picture, (l.x, l.y), thickness * 3, colour);
        }
    }
}
