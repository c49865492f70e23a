//! OCR over HTTP and from the command line with real weights (PP-OCRv4 from RapidOCR's wheel):
//! text drawn here in DejaVu Sans must come back exactly, upside down too, and a paragraph in
//! reading order.

mod common;

use std::process::Command;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use base64::Engine as _;
use common::{Part, Server, assert_error};
use image::{Rgb, RgbImage};
use serde_json::{Value, json};

const OCR: &str = "/v1/vision/ocr";
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
// The angle classifier is sure of this line both ways up (1.00); some lines it is not sure of
// (PP-OCR's classifier gives the fox-and-dog pangram 0.71 upright and misreads it at some sizes).
const LINE: &str = "Tessera reads text on this machine";
const PARAGRAPH: [&str; 4] = [
    "Local models run on this machine.",
    "Every answer stays private.",
    "Reading order is top to bottom.",
    "Lines keep their own boxes.",
];
/// Where the first line's text starts, and its size (pixels per em, as Pillow's font size).
const MARGIN: f32 = 40.0;
const SIZE: f32 = 32.0;

/// Black text on white, one line every two text heights, on a page `width × height`.
fn draw(lines: &[&str], width: u32, height: u32) -> RgbImage {
    draw_sized(lines, width, height, SIZE)
}

/// [`draw`] with text of `size` pixels per em.
fn draw_sized(lines: &[&str], width: u32, height: u32, size: f32) -> RgbImage {
    let bytes = std::fs::read(FONT)
        .unwrap_or_else(|e| panic!("{FONT} (apt-get install fonts-dejavu-core): {e}"));
    let font = FontRef::try_from_slice(&bytes).expect("a TrueType font");
    // ab_glyph's scale is the font's whole height (ascent to descent), not its em.
    let units_per_em = font.units_per_em().expect("a scalable font");
    let scale = PxScale::from(size * font.height_unscaled() / units_per_em);
    let scaled = font.as_scaled(scale);
    let mut page = RgbImage::from_pixel(width, height, Rgb([255; 3]));
    for (row, line) in lines.iter().enumerate() {
        let baseline = MARGIN + scaled.ascent() + row as f32 * 2.0 * size;
        let mut x = MARGIN;
        let mut previous = None;
        for c in line.chars() {
            let id = font.glyph_id(c);
            if let Some(previous) = previous {
                x += scaled.kern(previous, id);
            }
            let glyph = id.with_scale_and_position(scale, point(x, baseline));
            x += scaled.h_advance(id);
            previous = Some(id);
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            outline.draw(|gx, gy, coverage| {
                let (px, py) = (
                    bounds.min.x as i64 + i64::from(gx),
                    bounds.min.y as i64 + i64::from(gy),
                );
                if (0..i64::from(width)).contains(&px) && (0..i64::from(height)).contains(&py) {
                    let pixel = page.get_pixel_mut(px as u32, py as u32);
                    let ink = (255.0 * (1.0 - coverage.clamp(0.0, 1.0))).round() as u8;
                    pixel.0 = pixel.0.map(|v| v.min(ink));
                }
            });
        }
    }
    page
}

fn png(image: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Png)
        .expect("encode a PNG");
    out.into_inner()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The lines of one image's answer as (text, confidence, box).
fn lines(found: &Value) -> Vec<(String, f64, Vec<[f64; 2]>)> {
    found["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|line| {
            let corners = line["box"]
                .as_array()
                .expect("a box")
                .iter()
                .map(|p| [p[0].as_f64().unwrap(), p[1].as_f64().unwrap()])
                .collect();
            (
                line["text"].as_str().unwrap().to_string(),
                line["confidence"].as_f64().unwrap(),
                corners,
            )
        })
        .collect()
}

#[test]
fn a_drawn_line_is_read_back_exactly_with_its_box() {
    let server = Server::start(&[]);
    let page = png(&draw(&[LINE], 960, 736));
    let reply = server.post_form(OCR, &[("image", Part::File("line.png", &page))]);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["object"], "list");
    assert_eq!(reply.body["model"], "pp-ocrv4");
    let found = &reply.body["data"][0];
    assert_eq!(
        (found["width"].as_u64(), found["height"].as_u64()),
        (Some(960), Some(736))
    );
    assert_eq!(found["text"], LINE, "{}", reply.text);
    let read = lines(found);
    assert_eq!(read.len(), 1, "{read:?}");
    let (text, confidence, corners) = &read[0];
    assert_eq!(text, LINE);
    assert!(*confidence > 0.9, "{confidence}");
    // The box holds the ink: it starts near the margin and is about one text height tall.
    let [top_left, top_right, bottom_right, bottom_left] =
        [corners[0], corners[1], corners[2], corners[3]];
    assert!(
        (top_left[0] - f64::from(MARGIN)).abs() < 15.0,
        "{corners:?}"
    );
    assert!(
        (top_left[1] - f64::from(MARGIN)).abs() < 15.0,
        "{corners:?}"
    );
    assert!(top_right[0] > 550.0 && top_right[0] < 700.0, "{corners:?}");
    let height = bottom_left[1] - top_left[1];
    assert!((25.0..60.0).contains(&height), "{corners:?}");
    assert!(
        (bottom_right[1] - top_right[1] - height).abs() < 3.0,
        "{corners:?}"
    );
}

#[test]
fn upside_down_the_line_is_turned_and_read_exactly_and_json_takes_several_images() {
    let server = Server::start(&[]);
    let upright = draw(&[LINE], 960, 736);
    let upside_down = image::imageops::rotate180(&upright);
    let reply = server.post(
        OCR,
        &json!({
            "model": "pp-ocrv4",
            "images": [b64(&png(&upside_down)), format!("data:image/png;base64,{}", b64(&png(&upright)))],
        }),
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let data = reply.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    for (index, found) in data.iter().enumerate() {
        assert_eq!(found["index"], index);
        assert_eq!(found["text"], LINE, "image {index}: {}", reply.text);
    }
    // The upside-down line's box is where its ink is: near the bottom-right corner.
    let corners = &lines(&data[0])[0].2;
    assert!(
        corners[2][0] > 900.0 && corners[2][1] > 660.0,
        "{corners:?}"
    );

    // A line the classifier misjudges upside down (it leaves this pangram unturned at this
    // size): the recognizer's second reading, the other way up, gets it right.
    let pangram = "The quick brown fox jumps over the lazy dog";
    let page = image::imageops::rotate180(&draw_sized(&[pangram], 960, 736, 27.5));
    let reply = server.post(OCR, &json!({"image": b64(&png(&page))}));
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["data"][0]["text"], pangram, "{}", reply.text);
}

#[test]
fn a_paragraph_comes_back_line_by_line_in_reading_order() {
    let server = Server::start(&[]);
    let page = png(&draw(&PARAGRAPH, 960, 736));
    let reply = server.post_form(
        OCR,
        &[
            ("model", Part::Text("pp-ocrv4")),
            ("image", Part::File("page.png", &page)),
        ],
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    let found = &reply.body["data"][0];
    assert_eq!(found["text"], PARAGRAPH.join("\n"), "{}", reply.text);
    let read = lines(found);
    let tops: Vec<f64> = read.iter().map(|(_, _, corners)| corners[0][1]).collect();
    assert!(
        tops.windows(2).all(|pair| pair[1] - pair[0] > 50.0),
        "{tops:?}"
    );
}

#[test]
fn bad_images_get_a_400_and_the_server_keeps_serving() {
    let server = Server::start(&[]);
    let page = png(&draw(&[LINE], 960, 736));
    let random: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    for (bytes, says) in [
        (&page[..page.len() / 2], "corrupt"),
        (&random[..], "signature"),
        (&[][..], "empty"),
    ] {
        let reply = server.post_form(OCR, &[("image", Part::File("x.png", bytes))]);
        assert_error(&reply, 400, says);
        assert_eq!(reply.body["error"]["param"], "image", "{}", reply.text);
    }
    assert_error(&server.post(OCR, &json!({})), 400, "no image");
    assert_error(
        &server.post(OCR, &json!({"image": "not base64!"})),
        400,
        "base64",
    );
    // A blank page has no text: no lines, not an error.
    let blank = png(&RgbImage::from_pixel(300, 200, Rgb([255; 3])));
    let reply = server.post_form(OCR, &[("image", Part::File("blank.png", &blank))]);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["data"][0]["text"], "");
    assert_eq!(reply.body["data"][0]["lines"], json!([]));
    // Still serving.
    let reply = server.post_form(OCR, &[("image", Part::File("line.png", &page))]);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["data"][0]["text"], LINE);
}

#[test]
fn tessera_ocr_prints_the_text_or_the_lines_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let (line, page) = (dir.path().join("line.png"), dir.path().join("page.png"));
    std::fs::write(&line, png(&draw(&[LINE], 960, 736))).unwrap();
    std::fs::write(&page, png(&draw(&PARAGRAPH, 960, 736))).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .arg("ocr")
        .arg(&line)
        .output()
        .expect("run tessera ocr");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout, format!("{LINE}\n"));

    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["ocr", "--json"])
        .arg(&line)
        .arg(&page)
        .output()
        .expect("run tessera ocr --json");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0]["text"], LINE);
    assert_eq!(answers[1]["text"], PARAGRAPH.join("\n"));
    assert_eq!(lines(&answers[1]).len(), 4);

    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["ocr", "/no/such/scan.png"])
        .output()
        .expect("run tessera ocr");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("could not read /no/such/scan.png"));
}
