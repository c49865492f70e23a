//! Object detection over HTTP with real weights: NudeNet's YOLOv8n (from PyPI) finds the faces
//! in photos scikit-image ships (fetched by scripts/fetch-models.sh into `$TESSERA_HOME/fixtures`).

mod common;

use std::process::Command;

use base64::Engine as _;
use common::{Part, Server, assert_error, fixture, read_fixture};
use serde_json::{Value, json};
use tessera_tasks::vision::image::decode;

const DETECT: &str = "/v1/vision/detect";

/// Where the faces are, read off the photos by eye: left, top, right, bottom.
const ASTRONAUT_FACE: [f64; 4] = [175.0, 80.0, 275.0, 182.0];
const CAMERAMAN_FACE: [f64; 4] = [183.0, 128.0, 266.0, 198.0];

fn corners(object: &Value) -> [f64; 4] {
    let b = &object["box"];
    ["x1", "y1", "x2", "y2"].map(|k| b[k].as_f64().expect("a box corner"))
}

fn iou(a: [f64; 4], b: [f64; 4]) -> f64 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: [f64; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    w * h / (area(a) + area(b) - w * h)
}

/// The one face in an image's answer, checked to sit on `expected`.
fn assert_face(found: &Value, label: &str, expected: [f64; 4]) {
    let objects = found["objects"].as_array().expect("objects");
    let faces: Vec<&Value> = objects
        .iter()
        .filter(|o| o["label"].as_str().is_some_and(|l| l.starts_with("FACE")))
        .collect();
    assert_eq!(faces.len(), 1, "{found}");
    assert_eq!(faces[0]["label"], label, "{found}");
    assert!(faces[0]["confidence"].as_f64().unwrap() > 0.5, "{found}");
    let overlap = iou(corners(faces[0]), expected);
    assert!(overlap > 0.7, "IoU {overlap} with the face: {found}");
}

#[test]
fn faces_are_found_on_the_faces_in_multipart_and_in_json() {
    let server = Server::start(&[]);
    let astronaut = read_fixture("astronaut.png");
    let reply = server.post_form(
        DETECT,
        &[("image", Part::File("astronaut.png", &astronaut))],
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["model"], "yolov8n-320-nudenet");
    let found = &reply.body["data"][0];
    assert_eq!(
        (found["width"].as_u64(), found["height"].as_u64()),
        (Some(512), Some(512))
    );
    assert_face(found, "FACE_FEMALE", ASTRONAUT_FACE);

    // The cameraman is a greyscale photo; with a data URL and the astronaut beside him.
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let camera = read_fixture("camera.png");
    let reply = server.post(
        DETECT,
        &json!({"images": [format!("data:image/png;base64,{}", b64(&camera)), b64(&astronaut)]}),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_face(&reply.body["data"][0], "FACE_MALE", CAMERAMAN_FACE);
    assert_face(&reply.body["data"][1], "FACE_FEMALE", ASTRONAUT_FACE);
    assert_eq!(reply.body["data"][1]["index"], 1);

    // A cup of coffee has no face and no body.
    let coffee = read_fixture("coffee.png");
    let reply = server.post_form(DETECT, &[("image", Part::File("coffee.png", &coffee))]);
    assert_eq!(
        reply.body["data"][0]["objects"],
        json!([]),
        "{}",
        reply.text
    );
}

#[test]
fn many_images_at_once_are_batched_and_answered_as_one_at_a_time() {
    answers_many_at_once_as_one_at_a_time(&Server::start(&[]));
}

/// With two copies of the graph sharing the queue, the images are shared out between them and
/// every answer is still the image's own.
#[test]
fn two_replicas_answer_many_images_as_one_at_a_time() {
    answers_many_at_once_as_one_at_a_time(&Server::start(&["--replicas", "2"]));
}

fn answers_many_at_once_as_one_at_a_time(server: &Server) {
    let astronaut = read_fixture("astronaut.png");
    let camera = read_fixture("camera.png");
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let alone = server.post(DETECT, &json!({"image": b64(&camera)}));
    assert_eq!(alone.status, 200, "{}", alone.text);
    let images: Vec<String> = (0..16)
        .map(|i| b64(if i % 2 == 0 { &astronaut } else { &camera }))
        .collect();
    let reply = server.post(DETECT, &json!({ "images": images }));
    assert_eq!(reply.status, 200, "{}", reply.text);
    let data = reply.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 16);
    for (i, found) in data.iter().enumerate() {
        match i % 2 {
            0 => assert_face(found, "FACE_FEMALE", ASTRONAUT_FACE),
            _ => {
                // In a batch the graph computes the same boxes as alone (to float rounding).
                let (a, b) = (&found["objects"][0], &alone.body["data"][0]["objects"][0]);
                assert_eq!(a["label"], b["label"]);
                let drift = corners(a)
                    .iter()
                    .zip(corners(b))
                    .map(|(x, y)| (x - y).abs())
                    .fold(0.0, f64::max);
                assert!(drift < 0.01, "{drift}: {a} vs {b}");
            }
        }
    }
    // The worker ran the 17 images in fewer than 17 engine calls.
    let (_, metrics) = server.get("/metrics");
    let calls: f64 = metrics
        .lines()
        .find(|l| l.starts_with("tessera_batch_jobs_count") && l.contains("yolov8n-320-nudenet"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no batch metric in {metrics}"));
    assert!(calls < 17.0, "{calls} engine calls for 17 images");
}

#[test]
fn thresholds_come_as_json_members_or_form_fields_and_bad_ones_get_a_400() {
    let server = Server::start(&[]);
    let astronaut = read_fixture("astronaut.png");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&astronaut);
    // Her face scores about 0.83: above 0.5, under 0.9.
    let reply = server.post(DETECT, &json!({"image": b64, "confidence": 0.9}));
    assert_eq!(
        reply.body["data"][0]["objects"],
        json!([]),
        "{}",
        reply.text
    );
    let reply = server.post_form(
        DETECT,
        &[
            ("image", Part::File("astronaut.png", &astronaut)),
            ("confidence", Part::Text("0.5")),
            ("max_detections", Part::Text("1")),
        ],
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_face(&reply.body["data"][0], "FACE_FEMALE", ASTRONAUT_FACE);

    let reply = server.post(DETECT, &json!({"image": b64, "confidence": 1.5}));
    assert_error(&reply, 400, "confidence must be between 0 and 1, not 1.5");
    let reply = server.post_form(
        DETECT,
        &[
            ("image", Part::File("astronaut.png", &astronaut)),
            ("iou", Part::Text("high")),
        ],
    );
    assert_error(
        &reply,
        400,
        "the form field `iou` must be a number, not `high`",
    );
    assert_eq!(reply.body["error"]["param"], "iou");
    let reply = server.post_form(
        DETECT,
        &[
            ("image", Part::File("astronaut.png", &astronaut)),
            ("classes", Part::Text("face")),
        ],
    );
    assert_error(&reply, 400, "unknown form field `classes`");
    let reply = server.post(DETECT, &json!({"image": b64, "max_detections": 0}));
    assert_error(&reply, 400, "max_detections must be at least 1");
    let reply = server.post_form(DETECT, &[("image", Part::File("x.jpg", b"\xff\xd8\xff"))]);
    assert_error(&reply, 400, "truncated");
    // Still serving.
    let reply = server.post(DETECT, &json!({"image": b64}));
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[test]
fn tessera_detect_prints_the_faces_and_draws_them() {
    let dir = tempfile::tempdir().unwrap();
    let drawn = dir.path().join("boxes.png");
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("detect")
        .arg(fixture("camera.png"))
        .arg("--draw")
        .arg(&drawn)
        .output()
        .expect("run tessera detect");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.starts_with("FACE_MALE 0."), "{stdout}");
    // The box's outline is drawn in the first class colour that is not the photo's grey.
    let picture = decode(&std::fs::read(&drawn).unwrap(), u64::MAX).unwrap();
    assert_eq!(picture.rgb.dimensions(), (512, 512));
    let edge = picture.rgb.get_pixel(225, 130).0;
    assert!(edge[0] != edge[1] || edge[1] != edge[2], "{edge:?} is grey");

    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["detect", "--json", "--confidence", "0.5"])
        .arg(fixture("astronaut.png"))
        .arg(fixture("coffee.png"))
        .output()
        .expect("run tessera detect");
    assert!(output.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_face(&lines[0], "FACE_FEMALE", ASTRONAUT_FACE);
    assert_eq!(lines[1]["objects"], json!([]));

    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["detect", "--draw"])
        .arg(&drawn)
        .arg(fixture("astronaut.png"))
        .arg(fixture("coffee.png"))
        .output()
        .expect("run tessera detect");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("give one photo"));
}
