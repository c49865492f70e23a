//! The vision routes over HTTP with real weights: IS-Net (from npm) on photos scikit-image ships
//! (fetched by scripts/fetch-models.sh into `$TESSERA_HOME/fixtures`).

mod common;

use std::process::Command;

use base64::Engine as _;
use common::{Part, Server, assert_error, fixture, python_script, read_fixture, tessera_home};
use serde_json::json;
use tessera_tasks::vision::image::decode;

const SEGMENT: &str = "/v1/vision/segment";

/// A base64 PNG from a response, as one 8-bit channel (masks are grey).
fn mask_of(b64: &serde_json::Value) -> (u32, u32, Vec<u8>) {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.as_str().expect("a base64 string"))
        .expect("base64");
    let picture = decode(&bytes, u64::MAX).expect("a PNG");
    let (w, h) = picture.rgb.dimensions();
    (w, h, picture.rgb.pixels().map(|p| p.0[0]).collect())
}

/// Intersection over union of two masks cut at half opacity.
fn iou(a: &[u8], b: &[u8]) -> f64 {
    let (mut both, mut either) = (0usize, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (x >= 128, y >= 128);
        both += usize::from(x && y);
        either += usize::from(x || y);
    }
    both as f64 / either.max(1) as f64
}

#[test]
fn the_astronaut_is_cut_out_as_onnxruntime_cuts_her() {
    let server = Server::start(&[]);
    let photo = read_fixture("astronaut.png");
    let reply = server.post_form(SEGMENT, &[("image", Part::File("astronaut.png", &photo))]);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["model"], "isnet-general-small");
    let found = &reply.body["data"][0];
    assert_eq!(
        (found["width"].as_u64(), found["height"].as_u64()),
        (Some(512), Some(512))
    );
    let (w, h, mask) = mask_of(&found["mask"]);
    assert_eq!((w, h), (512, 512));
    let at = |x: usize, y: usize| mask[y * 512 + x];
    // Her face and helmet are foreground; the dark corners of the room and of space are not.
    for (x, y) in [(230, 80), (230, 130), (150, 350), (400, 420)] {
        assert!(at(x, y) > 200, "({x}, {y}) is {}", at(x, y));
    }
    for (x, y) in [(10, 10), (500, 10), (480, 150)] {
        assert!(at(x, y) < 50, "({x}, {y}) is {}", at(x, y));
    }
    let share = found["foreground"].as_f64().unwrap();
    assert!((0.35..0.75).contains(&share), "{share}");
    // The cut-out keeps the photo and carries the mask as its alpha.
    let cutout = base64::engine::general_purpose::STANDARD
        .decode(found["cutout"].as_str().unwrap())
        .unwrap();
    let cutout = decode(&cutout, u64::MAX).unwrap();
    assert!(cutout.had_alpha);
    assert_eq!(cutout.rgb.dimensions(), (512, 512));

    // The same graph from Python's onnxruntime with IMG.LY's reference processing.
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("reference.png");
    python_script(
        "isnet_reference.py",
        [
            tessera_home().join("models/isnet-general-small/model.onnx"),
            fixture("astronaut.png"),
            reference.clone(),
        ],
    );
    let reference = decode(&std::fs::read(&reference).unwrap(), u64::MAX).unwrap();
    let reference: Vec<u8> = reference.rgb.pixels().map(|p| p.0[0]).collect();
    let overlap = iou(&mask, &reference);
    eprintln!("IoU against onnxruntime from Python: {overlap:.4}");
    assert!(overlap >= 0.98, "IoU {overlap}");
}

#[test]
fn images_come_as_base64_or_data_urls_several_at_once() {
    let server = Server::start(&[]);
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let cat = read_fixture("chelsea.png");
    let rocket = read_fixture("rocket.jpg");
    let reply = server.post(
        SEGMENT,
        &json!({
            "images": [b64(&cat), format!("data:image/jpeg;base64,{}", b64(&rocket))],
        }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let data = reply.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(
        (data[0]["index"].as_u64(), data[0]["width"].as_u64()),
        (Some(0), Some(451))
    );
    assert_eq!(
        (data[1]["index"].as_u64(), data[1]["width"].as_u64()),
        (Some(1), Some(640))
    );
    // Each mask holds some foreground (the cat; the rocket) and not the whole picture.
    for found in data {
        let share = found["foreground"].as_f64().unwrap();
        assert!((0.05..0.9).contains(&share), "{share}");
    }
}

#[test]
fn bad_images_get_a_400_that_says_what_is_wrong_and_the_server_keeps_serving() {
    let server = Server::start(&[]);
    let rocket = read_fixture("rocket.jpg");
    let truncated = &rocket[..rocket.len() / 3];
    let mut bomb = read_fixture("astronaut.png");
    bomb[16..20].copy_from_slice(&50_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&50_000u32.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for (bytes, says) in [
        (truncated, "truncated"),
        (&random[..], "signature"),
        (&bomb[..], "50000 × 50000"),
        (&[][..], "empty"),
    ] {
        let reply = server.post_form(SEGMENT, &[("image", Part::File("x.png", bytes))]);
        assert_error(&reply, 400, says);
        assert_eq!(reply.body["error"]["param"], "image", "{}", reply.text);
    }
    for (body, says) in [
        (json!({}), "no image"),
        (json!({"image": "not base64 at all!"}), "base64"),
        (json!({"image": "data:image/png,rawtext"}), "data URL"),
        (json!({"image": "aGk=", "images": ["aGk="]}), "not both"),
        (json!({"images": ["aGk=", "aGk="]}), "input 0"),
    ] {
        assert_error(&server.post(SEGMENT, &body), 400, says);
    }
    let small = Server::start(&["--max-image-pixels", "100000"]);
    let reply = small.post_form(SEGMENT, &[("image", Part::File("rocket.jpg", &rocket))]);
    assert_error(
        &reply,
        400,
        "640 × 427 = 273280 pixels, over the limit of 100000",
    );
    let reply = server.post_form(SEGMENT, &[("picture", Part::File("x.png", &rocket))]);
    assert_error(&reply, 400, "unknown form field `picture`");
    // Still serving.
    let reply = server.post_form(SEGMENT, &[("image", Part::File("rocket.jpg", &rocket))]);
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[test]
fn tessera_segment_writes_the_cutout_and_the_mask() {
    let dir = tempfile::tempdir().unwrap();
    let (cutout, mask) = (dir.path().join("cut.png"), dir.path().join("mask.png"));
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("segment")
        .arg(fixture("astronaut.png"))
        .arg("-o")
        .arg(&cutout)
        .arg("--mask")
        .arg(&mask)
        .output()
        .expect("run tessera segment");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("512 × 512"), "{stderr}");
    assert!(
        decode(&std::fs::read(&cutout).unwrap(), u64::MAX)
            .unwrap()
            .had_alpha
    );
    let mask = decode(&std::fs::read(&mask).unwrap(), u64::MAX).unwrap();
    assert!(mask.rgb.get_pixel(230, 80).0[0] > 200);

    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["segment", "/no/such/photo.jpg", "-o"])
        .arg(&cutout)
        .output()
        .expect("run tessera segment");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("could not read /no/such/photo.jpg"));
}
