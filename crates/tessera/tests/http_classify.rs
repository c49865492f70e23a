//! `/v1/vision/classify` and `tessera classify` with real weights: EfficientNet-Lite0 (PyPI,
//! converted from PyTorch at pull time) on photos from Debian's darknet package and scikit-image
//! (fetched by scripts/fetch-models.sh into `$TESSERA_HOME/fixtures`).

mod common;

use std::process::Command;

use base64::Engine as _;
use common::{Part, Server, assert_error, fixture, python_script, read_fixture, tessera_home};
use serde_json::{Value, json};

const CLASSIFY: &str = "/v1/vision/classify";

/// ImageNet-1k class ranges: the dog breeds, the domestic cats.
const DOGS: std::ops::RangeInclusive<u64> = 151..=268;
const CATS: std::ops::RangeInclusive<u64> = 281..=285;
/// espresso, cup, coffee mug.
const COFFEE: [u64; 3] = [967, 968, 504];

fn top(found: &Value) -> (u64, String, f64) {
    let first = &found["labels"][0];
    (
        first["class_id"].as_u64().expect("class_id"),
        first["label"].as_str().expect("label").to_string(),
        first["score"].as_f64().expect("score"),
    )
}

/// The top-1 classes and probabilities of a numpy reference (the same weights, read from the
/// .pth without torch, with PIL's bicubic resize; development only, recorded here):
/// dog.jpg malamute 0.378, German shepherd 0.280; chelsea.png tiger cat 0.386, Egyptian cat
/// 0.356, tabby 0.169; coffee.png espresso 0.951.
#[test]
fn photos_get_their_classes_in_one_request() {
    let server = Server::start(&[]);
    let dog = read_fixture("dog.jpg");
    let cat = read_fixture("chelsea.png");
    let coffee = read_fixture("coffee.png");
    let reply = server.post_form(
        CLASSIFY,
        &[
            ("image", Part::File("dog.jpg", &dog)),
            ("image", Part::File("chelsea.png", &cat)),
            ("image", Part::File("coffee.png", &coffee)),
            ("top_k", Part::Text("3")),
        ],
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["object"], "list");
    assert_eq!(reply.body["model"], "efficientnet-lite0");
    let data = reply.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    for (i, found) in data.iter().enumerate() {
        assert_eq!(found["index"], i);
        let labels = found["labels"].as_array().unwrap();
        assert_eq!(labels.len(), 3, "{found}");
        let scores: Vec<f64> = labels
            .iter()
            .map(|l| l["score"].as_f64().unwrap())
            .collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        assert!(scores.iter().sum::<f64>() <= 1.0 + 1e-4);
    }
    assert_eq!(
        (data[0]["width"].as_u64(), data[0]["height"].as_u64()),
        (Some(768), Some(576))
    );

    let (id, label, score) = top(&data[0]);
    assert!(DOGS.contains(&id), "dog.jpg: {label} ({id})");
    assert!(score > 0.25, "dog.jpg: {label} {score}");
    // Both of the reference's first two breeds lead here too.
    let dog_ids: Vec<u64> = data[0]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["class_id"].as_u64().unwrap())
        .collect();
    assert!(
        dog_ids.contains(&249) && dog_ids.contains(&235),
        "{dog_ids:?}"
    );

    let (id, label, _) = top(&data[1]);
    assert!(CATS.contains(&id), "chelsea.png: {label} ({id})");
    let cat_mass: f64 = data[1]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| CATS.contains(&l["class_id"].as_u64().unwrap()))
        .map(|l| l["score"].as_f64().unwrap())
        .sum();
    assert!(cat_mass > 0.8, "cat classes hold {cat_mass}");

    let (id, label, score) = top(&data[2]);
    assert_eq!((id, label.as_str()), (967, "espresso"));
    assert!(
        (score - 0.951).abs() < 0.03,
        "espresso {score}, reference 0.951"
    );
    assert!(COFFEE.contains(&data[2]["labels"][1]["class_id"].as_u64().unwrap()));
}

#[test]
fn base64_json_answers_like_multipart_and_top_k_defaults_to_5() {
    let server = Server::start(&[]);
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let eagle = read_fixture("eagle.jpg");
    let giraffe = read_fixture("giraffe.jpg");
    let reply = server.post(
        CLASSIFY,
        &json!({
            "model": "efficientnet-lite0",
            "images": [b64(&eagle), format!("data:image/jpeg;base64,{}", b64(&giraffe))],
        }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let data = reply.body["data"].as_array().unwrap();
    assert_eq!(data[0]["labels"].as_array().unwrap().len(), 5);
    // The eagle: kite (the bird of prey, 21) and bald eagle (22) lead.
    let ids: Vec<u64> = data[0]["labels"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|l| l["class_id"].as_u64().unwrap())
        .collect();
    assert!(ids.contains(&22) && ids.contains(&21), "{}", data[0]);
    // ImageNet-1k has no giraffe; the photo's zebra wins.
    assert_eq!(top(&data[1]).1, "zebra");

    // One image as JSON answers as the same image sent in a form.
    let one = server.post(CLASSIFY, &json!({"image": b64(&eagle), "top_k": 2}));
    let form = server.post_form(
        CLASSIFY,
        &[
            ("image", Part::File("eagle.jpg", &eagle)),
            ("top_k", Part::Text("2")),
        ],
    );
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(
        one.body["data"][0]["labels"],
        form.body["data"][0]["labels"]
    );
    // Batched with another photo or alone, the scores agree.
    let alone = one.body["data"][0]["labels"][0]["score"].as_f64().unwrap();
    let batched = data[0]["labels"][0]["score"].as_f64().unwrap();
    assert!((alone - batched).abs() < 1e-4, "{alone} vs {batched}");
}

#[test]
fn bad_images_and_options_get_a_400_and_the_server_keeps_serving() {
    let server = Server::start(&[]);
    let dog = read_fixture("dog.jpg");
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for (bytes, says) in [
        (&dog[..dog.len() / 2], "truncated"),
        (&random[..], "signature"),
        (&[][..], "empty"),
    ] {
        let reply = server.post_form(CLASSIFY, &[("image", Part::File("x.jpg", bytes))]);
        assert_error(&reply, 400, says);
        assert_eq!(reply.body["error"]["param"], "image", "{}", reply.text);
    }
    // The second of two images is bad: the error names it.
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let reply = server.post(CLASSIFY, &json!({"images": [b64(&dog), b64(&random)]}));
    assert_error(&reply, 400, "input 1");
    // The image first: a refusal at a field before it would leave the image unread as the
    // server answers, and the client could see the connection close mid-upload.
    for (field, value, says) in [
        ("top_k", "0", "top_k"),
        ("top_k", "many", "top_k"),
        ("labels", "5", "unknown form field `labels`"),
    ] {
        let parts = [
            ("image", Part::File("dog.jpg", &dog)),
            (field, Part::Text(value)),
        ];
        let reply = server.post_form(CLASSIFY, &parts);
        assert_error(&reply, 400, says);
    }
    let reply = server.post(CLASSIFY, &json!({"image": b64(&dog), "top_k": 0}));
    assert_error(&reply, 400, "top_k");
    // `top_k` means nothing to segmentation.
    let reply = server.post(
        "/v1/vision/segment",
        &json!({"image": b64(&dog), "top_k": 3}),
    );
    assert_error(&reply, 400, "unknown member `top_k`");
    let small = Server::start(&["--max-image-pixels", "100000"]);
    let reply = small.post_form(CLASSIFY, &[("image", Part::File("dog.jpg", &dog))]);
    assert_error(
        &reply,
        400,
        "768 × 576 = 442368 pixels, over the limit of 100000",
    );
    // Still serving, and a very large top_k answers every class.
    let reply = server.post(CLASSIFY, &json!({"image": b64(&dog), "top_k": 5000}));
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.body["data"][0]["labels"].as_array().unwrap().len(),
        1000
    );
}

#[test]
fn tessera_classify_prints_the_classes() {
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["classify", "--top-k", "2"])
        .arg(fixture("dog.jpg"))
        .arg(fixture("coffee.png"))
        .output()
        .expect("run tessera classify");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("dog.jpg (768 × 576)"), "{stdout}");
    assert!(stdout.contains("malamute (249)"), "{stdout}");
    assert!(stdout.contains("espresso (967)"), "{stdout}");

    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["classify", "--json"])
        .arg(fixture("chelsea.png"))
        .output()
        .expect("run tessera classify");
    assert!(output.status.success());
    let line: Value = serde_json::from_slice(&output.stdout).expect("one JSON object");
    assert_eq!(line["labels"].as_array().unwrap().len(), 5);
    assert!(
        CATS.contains(&line["labels"][0]["class_id"].as_u64().unwrap()),
        "{line}"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["classify", "/no/such/photo.jpg"])
        .output()
        .expect("run tessera classify");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("could not read /no/such/photo.jpg"));
}

/// Given the same pixels, the candle network answers as a numpy reference that reads the
/// PyTorch checkpoint itself (tests/python/efficientnet_reference.py): every one of the 1000
/// probabilities within 1e-4 (measured: about 1e-6).
#[test]
fn the_network_matches_a_numpy_reference_on_the_same_pixels() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    for photo in ["chelsea.png", "dog.jpg"] {
        let square = dir.path().join(format!("{photo}.png"));
        let stdout = python_script(
            "efficientnet_reference.py",
            [
                tessera_home().join("models/efficientnet-lite0/model.pth"),
                fixture(photo),
                square.clone(),
            ],
        );
        let reference: Value = serde_json::from_str(&stdout).expect("JSON");
        let reference: Vec<f64> = reference["probs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_f64().unwrap())
            .collect();
        let bytes = std::fs::read(&square).unwrap();
        let reply = server.post_form(
            CLASSIFY,
            &[
                ("image", Part::File("square.png", &bytes)),
                ("top_k", Part::Text("1000")),
            ],
        );
        assert_eq!(reply.status, 200, "{}", reply.text);
        let mut ours = vec![f64::NAN; 1000];
        for label in reply.body["data"][0]["labels"].as_array().unwrap() {
            ours[label["class_id"].as_u64().unwrap() as usize] = label["score"].as_f64().unwrap();
        }
        let worst = ours
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        eprintln!("{photo}: largest probability difference from numpy {worst:.2e}");
        assert!(worst < 1e-4, "{photo}: {worst}");
    }
}
