//! Human pose over HTTP with real weights: MediaPipe BlazePose from npm, converted from TFLite to
//! ONNX when pulled, on photos scikit-image ships (scripts/fetch-models.sh).

mod common;

use std::collections::HashMap;
use std::process::Command;

use base64::Engine as _;
use common::{Part, Server, assert_error, fixture, read_fixture};
use serde_json::{Value, json};
use tessera_tasks::vision::image::{decode, png};

const POSE: &str = "/v1/vision/pose";

/// A person's landmarks by name: (x, y, visibility).
fn landmarks(person: &Value) -> HashMap<String, (f64, f64, f64)> {
    let list = person["landmarks"].as_array().expect("landmarks");
    assert_eq!(list.len(), 33, "{person}");
    list.iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                (
                    l["x"].as_f64().unwrap(),
                    l["y"].as_f64().unwrap(),
                    l["visibility"].as_f64().unwrap(),
                ),
            )
        })
        .collect()
}

/// The body reads as a person standing or sitting upright inside `body` (left, top, right,
/// bottom, read off the photo by eye): the nose in `face`, the shoulders well above the hips,
/// the nose and shoulders seen. (Not the nose above the shoulders: the cameraman leans into his
/// camera, his nose level with his far shoulder.)
fn assert_upright(person: &Value, body: [f64; 4], face: [f64; 4]) {
    let at = landmarks(person);
    let inside = |(x, y, _): (f64, f64, f64), r: [f64; 4]| {
        (r[0]..=r[2]).contains(&x) && (r[1]..=r[3]).contains(&y)
    };
    assert!(inside(at["nose"], face), "nose {:?}: {person}", at["nose"]);
    let joints = [
        "nose",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_hip",
        "right_hip",
    ];
    for name in joints {
        assert!(
            inside(at[name], body),
            "{name} {:?} outside the body",
            at[name]
        );
    }
    for name in ["nose", "left_shoulder", "right_shoulder"] {
        assert!(at[name].2 > 0.9, "{name} {:?} not seen", at[name]);
    }
    for shoulder in ["left_shoulder", "right_shoulder"] {
        for hip in ["left_hip", "right_hip"] {
            assert!(
                at[shoulder].1 + 50.0 < at[hip].1,
                "{shoulder} {:?} not above {hip} {:?}",
                at[shoulder],
                at[hip]
            );
        }
    }
}

const CAMERAMAN_BODY: [f64; 4] = [0.0, 60.0, 340.0, 512.0];
const CAMERAMAN_FACE: [f64; 4] = [183.0, 128.0, 266.0, 198.0];
// Her hips are under the frame's bottom edge (512): the model places them there, barely visible.
const ASTRONAUT_BODY: [f64; 4] = [20.0, 10.0, 370.0, 620.0];
const ASTRONAUT_FACE: [f64; 4] = [175.0, 80.0, 275.0, 182.0];

#[test]
fn the_cameraman_and_the_astronaut_stand_upright_in_multipart_and_json() {
    let server = Server::start(&[]);
    let camera = read_fixture("camera.png");
    let reply = server.post_form(POSE, &[("image", Part::File("camera.png", &camera))]);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["model"], "blazepose-full");
    let people = reply.body["data"][0]["people"].as_array().unwrap();
    assert_eq!(people.len(), 1, "{}", reply.text);
    assert_upright(&people[0], CAMERAMAN_BODY, CAMERAMAN_FACE);

    let b64 = base64::engine::general_purpose::STANDARD.encode(read_fixture("astronaut.png"));
    let reply = server.post(POSE, &json!({ "image": b64 }));
    assert_eq!(reply.status, 200, "{}", reply.text);
    let people = reply.body["data"][0]["people"].as_array().unwrap();
    assert_eq!(people.len(), 1, "{}", reply.text);
    assert_upright(&people[0], ASTRONAUT_BODY, ASTRONAUT_FACE);
    let b = &people[0]["box"];
    assert!(b["x1"].as_f64() < b["x2"].as_f64() && b["y1"].as_f64() < b["y2"].as_f64());

    // Nobody in a cup of coffee.
    let coffee = read_fixture("coffee.png");
    let reply = server.post_form(POSE, &[("image", Part::File("coffee.png", &coffee))]);
    assert_eq!(reply.body["data"][0]["people"], json!([]), "{}", reply.text);
}

/// The astronaut beside her mirror image: two people in one photo.
fn two_astronauts() -> Vec<u8> {
    let photo = decode(&read_fixture("astronaut.png"), u64::MAX)
        .unwrap()
        .rgb;
    let (w, h) = photo.dimensions();
    let mut pair = image::RgbImage::new(2 * w, h);
    for (x, y, pixel) in photo.enumerate_pixels() {
        pair.put_pixel(x, y, *pixel);
        pair.put_pixel(2 * w - 1 - x, y, *pixel);
    }
    png(&pair).unwrap()
}

#[test]
fn two_people_in_one_photo_each_get_their_landmarks() {
    let server = Server::start(&[]);
    let pair = two_astronauts();
    let reply = server.post_form(POSE, &[("image", Part::File("pair.png", &pair))]);
    assert_eq!(reply.status, 200, "{}", reply.text);
    let people = reply.body["data"][0]["people"].as_array().unwrap();
    assert_eq!(people.len(), 2, "{}", reply.text);
    let mirrored = |[x1, y1, x2, y2]: [f64; 4]| [1024.0 - x2, y1, 1024.0 - x1, y2];
    let mut noses: Vec<f64> = people.iter().map(|p| landmarks(p)["nose"].0).collect();
    noses.sort_by(f64::total_cmp);
    assert!(noses[0] < 512.0 && noses[1] > 512.0, "{noses:?}");
    for person in people {
        if landmarks(person)["nose"].0 < 512.0 {
            assert_upright(person, ASTRONAUT_BODY, ASTRONAUT_FACE);
        } else {
            assert_upright(person, mirrored(ASTRONAUT_BODY), mirrored(ASTRONAUT_FACE));
        }
    }
    let reply = server.post_form(
        POSE,
        &[
            ("image", Part::File("pair.png", &pair)),
            ("max_people", Part::Text("1")),
        ],
    );
    assert_eq!(reply.body["data"][0]["people"].as_array().unwrap().len(), 1);

    let reply = server.post(POSE, &json!({"image": "aGk=", "max_people": 0}));
    assert_error(&reply, 400, "max_people must be at least 1");
    let reply = server.post_form(
        POSE,
        &[("image", Part::File("x.png", b"\x89PNG\r\n\x1a\n"))],
    );
    assert_eq!(reply.status, 400, "{}", reply.text);
    let reply = server.post_form(
        POSE,
        &[
            ("image", Part::File("pair.png", &pair)),
            ("max_people", Part::Text("two")),
        ],
    );
    assert_error(&reply, 400, "`max_people` must be a number");
    // Still serving.
    let reply = server.post_form(POSE, &[("image", Part::File("pair.png", &pair))]);
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[test]
fn tessera_pose_prints_landmarks_and_draws_the_skeleton() {
    let dir = tempfile::tempdir().unwrap();
    let drawn = dir.path().join("skeleton.png");
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("pose")
        .arg(fixture("camera.png"))
        .arg("--draw")
        .arg(&drawn)
        .output()
        .expect("run tessera pose");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("person 1 score"), "{stdout}");
    assert!(stdout.contains("left_shoulder"), "{stdout}");
    // The greyscale photo now has colour where the skeleton is.
    let picture = decode(&std::fs::read(&drawn).unwrap(), u64::MAX).unwrap();
    let coloured = picture
        .rgb
        .pixels()
        .filter(|p| p.0[0] != p.0[1] || p.0[1] != p.0[2])
        .count();
    assert!(coloured > 500, "{coloured} coloured pixels");

    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["pose", "--json"])
        .arg(fixture("astronaut.png"))
        .output()
        .expect("run tessera pose");
    assert!(output.status.success());
    let found: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_upright(&found["people"][0], ASTRONAUT_BODY, ASTRONAUT_FACE);
}
