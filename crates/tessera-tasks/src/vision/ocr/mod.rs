//! Optical character recognition with PP-OCR on ONNX Runtime: the lines of text in a picture,
//! each with its text, confidence and box, in reading order.
//!
//! Three graphs run in turn. The detector (DB) turns the picture into a map of how likely each
//! pixel is text; `detect` makes boxes of it and puts them in reading order. Each box is cut
//! out as a level strip (`pixels::crop`); the angle classifier turns strips that read upside
//! down; the recognizer reads each strip into per-column character probabilities, which
//! `ctc` decodes with the character list stored in the recognizer's own metadata.
//!
//! Pre- and post-processing follow RapidOCR 1.4.4 (`rapidocr-onnxruntime` on PyPI), the
//! reference these ONNX files ship with: its picture size limits and letterbox, its thresholds,
//! and its batching of strips by aspect ratio. The detector's input size is PaddleOCR's own
//! default instead (the long side at most 960, sides multiples of 32): RapidOCR raises the short
//! side to at least 736, which makes a one-line strip a 2944 × 736 input and costs 80 % of the
//! time for the same text found (both are options: `det_limit_type`, `det_limit_side_len`).
//! Pictures go to the graphs in blue-green-red order, as OpenCV reads them and as the models
//! were trained.
//!
//! The picture is decoded and resized for the detector off the worker thread; the box finding and
//! cropping between the graphs run on it, since they need the detector's answer.

mod ctc;
mod detect;
mod pixels;

use std::time::Instant;

use image::{Rgb, RgbImage};
use serde::Deserialize;
use tessera_core::{EngineKind, Task};
use tessera_engines::onnx::{OnnxModel, SessionConfig, TensorInput};
use tessera_hub::LocalModel;

use self::ctc::Dictionary;
use self::detect::{DbSettings, ProbabilityMap};
pub use self::detect::{Point, Quad};
use self::pixels::Normalise;
use super::image::{Picture, decode};
use crate::TaskError;
use crate::registry::{
    Batching, Cancelled, Family, Frontend, LoadContext, LoadedModel, Prepared, Runner, each_job,
    file_bytes, has_file,
};

/// PP-OCR (detector, angle classifier, recognizer) on ONNX Runtime.
pub static FAMILY: Family = Family {
    name: "ppocr-onnx",
    task: Task::Ocr,
    engine: EngineKind::Onnx,
    batching: Batching::Single,
    recognises: |model| {
        ["det", "rec"].iter().all(|part| {
            has_file(model, |name| {
                let name = name.to_ascii_lowercase();
                name.ends_with(".onnx") && name.contains(part)
            })
        })
    },
    load,
    // Three small graphs, and the detector's activations on a page (about 500 MB at its peak).
    estimate_bytes: |model| file_bytes(model).saturating_mul(2) + 500_000_000,
};

/// Pictures wider than this (or taller) are shrunk first.
const MAX_SIDE: u32 = 2000;
/// Pictures narrower than this (or shorter) are enlarged first.
const MIN_SIDE: u32 = 30;
/// A picture this short or lower, or more than [`WIDE`] times as wide as high, gets black bands
/// above and below before detection: the detector finds nothing in a thin sliver.
const MIN_HEIGHT: u32 = 30;
/// See [`MIN_HEIGHT`].
const WIDE: f32 = 8.0;
/// Strips per classifier and recognizer call.
const STRIPS_PER_BATCH: usize = 6;
/// Boxes whose tops are this close (in pixels) are on one line for the reading order.
const SAME_LINE: f32 = 10.0;

/// Settings from the catalog's `[model.options]`; RapidOCR 1.4.4's values by default, but for
/// the detector's size (PaddleOCR's).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct OcrOptions {
    det: String,
    rec: String,
    cls: String,
    /// `onnx-metadata:KEY` (the character list is in rec.onnx's metadata under KEY) or the name
    /// of a file of the model, one character per line.
    rec_dict: String,
    det_limit_side_len: u32,
    det_limit_type: LimitType,
    det_thresh: f32,
    det_box_thresh: f32,
    det_unclip_ratio: f32,
    det_max_candidates: usize,
    det_mean: [f32; 3],
    det_std: [f32; 3],
    rec_image_shape: [usize; 3],
    cls_image_shape: [usize; 3],
    cls_thresh: f32,
    cls_labels: Vec<String>,
    /// Lines read with a lower confidence are dropped.
    text_score: f32,
}

impl Default for OcrOptions {
    fn default() -> Self {
        OcrOptions {
            det: "det.onnx".into(),
            rec: "rec.onnx".into(),
            cls: "cls.onnx".into(),
            rec_dict: "onnx-metadata:character".into(),
            det_limit_side_len: 960,
            det_limit_type: LimitType::Max,
            det_thresh: 0.3,
            det_box_thresh: 0.5,
            det_unclip_ratio: 1.6,
            det_max_candidates: 1000,
            det_mean: [0.5; 3],
            det_std: [0.5; 3],
            rec_image_shape: [3, 48, 320],
            cls_image_shape: [3, 48, 192],
            cls_thresh: 0.9,
            cls_labels: vec!["0".into(), "180".into()],
            text_score: 0.5,
        }
    }
}

/// How the detector's input size is bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum LimitType {
    /// The short side is enlarged to at least the limit.
    Min,
    /// The long side is shrunk to at most the limit.
    Max,
}

/// A picture to read.
#[derive(Debug, Clone)]
pub struct OcrRequest {
    /// The image file's bytes (JPEG, PNG, WebP, BMP or GIF).
    pub image: Vec<u8>,
}

/// One line of text.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLine {
    /// What it says.
    pub text: String,
    /// The recognizer's mean probability over its characters, 0 to 1.
    pub confidence: f32,
    /// Its box in the picture's pixels: top-left, top-right, bottom-right, bottom-left.
    pub corners: Quad,
}

/// The text of one picture.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The picture's width in pixels (after its EXIF orientation).
    pub width: u32,
    /// Its height.
    pub height: u32,
    /// The lines, in reading order: top to bottom, left to right.
    pub lines: Vec<TextLine>,
}

impl Reading {
    /// The lines' texts, one per line.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(|line| line.text.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// How the picture the graphs see maps back onto the one sent.
#[derive(Debug, Clone, Copy)]
struct Placement {
    /// The sent picture's size.
    width: u32,
    height: u32,
    /// Rows of black added above it.
    pad_top: f32,
    /// Sent pixels per scene pixel, across and down.
    scale_x: f32,
    scale_y: f32,
}

impl Placement {
    /// A point of the scene in the sent picture, inside its bounds.
    fn to_picture(self, [x, y]: Point) -> Point {
        [
            (x * self.scale_x).clamp(0.0, self.width as f32),
            ((y - self.pad_top) * self.scale_y).clamp(0.0, self.height as f32),
        ]
    }
}

/// A picture ready for the detector.
#[derive(Debug)]
pub struct OcrJob {
    /// The picture as the graphs see it (size limits and letterbox applied); strips are cut
    /// from it.
    scene: RgbImage,
    placement: Placement,
    /// The scene resized for the detector, normalised, channels first.
    detector_input: Vec<f32>,
    detector_width: usize,
    detector_height: usize,
}

/// The lines found, in scene coordinates.
#[derive(Debug)]
pub struct OcrOutput {
    placement: Placement,
    lines: Vec<TextLine>,
}

/// Decodes and sizes pictures off the worker thread; maps boxes back after it.
pub struct OcrFrontend {
    limit_side: u32,
    limit_type: LimitType,
    normalise: Normalise,
    max_pixels: u64,
}

impl Frontend for OcrFrontend {
    const TASK: Task = Task::Ocr;
    type Request = OcrRequest;
    type Input = OcrJob;
    type Output = OcrOutput;
    type Response = Reading;

    fn prepare(&self, request: OcrRequest) -> Result<Prepared<OcrJob>, TaskError> {
        let picture = decode(&request.image, self.max_pixels)?;
        let (scene, placement) = scene(picture);
        let (width, height) = detector_size(
            scene.width(),
            scene.height(),
            self.limit_side,
            self.limit_type,
        );
        let mut detector_input = vec![0.0f32; 3 * width * height];
        pixels::resize_into(
            &scene,
            width,
            height,
            &mut detector_input,
            width,
            &self.normalise,
        );
        Ok(Prepared {
            input: OcrJob {
                scene,
                placement,
                detector_input,
                detector_width: width,
                detector_height: height,
            },
            cost: width * height,
        })
    }

    fn finish(&self, output: OcrOutput) -> Result<Reading, TaskError> {
        let OcrOutput { placement, lines } = output;
        Ok(Reading {
            width: placement.width,
            height: placement.height,
            lines: lines
                .into_iter()
                .map(|line| TextLine {
                    corners: line.corners.map(|point| placement.to_picture(point)),
                    ..line
                })
                .collect(),
        })
    }
}

/// A side scaled by `ratio`, truncated, then rounded to a multiple of 32 (halves to even, as
/// Python rounds), at least 32.
fn multiple_of_32(side: u32, ratio: f64) -> u32 {
    let scaled = (f64::from(side) * ratio) as u32;
    ((f64::from(scaled) / 32.0).round_ties_even() as u32 * 32).max(32)
}

/// The picture within the size limits, with the letterbox a thin picture gets, and how it maps
/// back.
fn scene(picture: Picture) -> (RgbImage, Placement) {
    let mut image = picture.rgb;
    let (width, height) = image.dimensions();
    let longest = width.max(height);
    let shortest = width.min(height);
    let ratio = if longest > MAX_SIDE {
        f64::from(MAX_SIDE) / f64::from(longest)
    } else if shortest < MIN_SIDE {
        f64::from(MIN_SIDE) / f64::from(shortest)
    } else {
        1.0
    };
    if ratio != 1.0 {
        let (w, h) = (multiple_of_32(width, ratio), multiple_of_32(height, ratio));
        image = pixels::resize(&image, w, h);
    }
    let (scaled_width, scaled_height) = image.dimensions();
    let mut pad_top = 0;
    if scaled_height <= MIN_HEIGHT || scaled_width as f32 / scaled_height as f32 > WIDE {
        let wanted = ((scaled_width as f32 / WIDE) as u32).max(MIN_HEIGHT) * 2;
        pad_top = wanted.abs_diff(scaled_height) / 2;
        let mut padded =
            RgbImage::from_pixel(scaled_width, scaled_height + 2 * pad_top, Rgb([0; 3]));
        image::imageops::replace(&mut padded, &image, 0, i64::from(pad_top));
        image = padded;
    }
    let placement = Placement {
        width,
        height,
        pad_top: pad_top as f32,
        scale_x: width as f32 / scaled_width as f32,
        scale_y: height as f32 / scaled_height as f32,
    };
    (image, placement)
}

/// The detector's input size for a scene: the short side enlarged to `limit` (or the long side
/// shrunk to it), both sides multiples of 32. With `min`, the long side stays within 8 × `limit`:
/// the reference lets a very tall sliver grow without bound (2000 × 40 pixels would become a
/// 736 × 36 800 input, gigabytes of activations); every picture its letterbox lets through (8:1
/// at most) keeps the reference's size.
fn detector_size(width: u32, height: u32, limit: u32, limit_type: LimitType) -> (usize, usize) {
    let (shortest, longest) = (f64::from(width.min(height)), f64::from(width.max(height)));
    let limit = f64::from(limit);
    let ratio = match limit_type {
        LimitType::Min if shortest < limit => (limit / shortest).min(8.0 * limit / longest),
        LimitType::Max if longest > limit => limit / longest,
        _ => 1.0,
    };
    (
        multiple_of_32(width, ratio) as usize,
        multiple_of_32(height, ratio) as usize,
    )
}

/// The angle classifier: whether a strip reads upside down.
struct AngleClassifier {
    model: OnnxModel,
    input: String,
    height: usize,
    width: usize,
    /// The class that means "turned 180°".
    upside_down: usize,
    threshold: f32,
}

/// Runs the three graphs, one picture per call.
pub struct OcrRunner {
    detector: OnnxModel,
    detector_input: String,
    db: DbSettings,
    classifier: Option<AngleClassifier>,
    recognizer: OnnxModel,
    recognizer_input: String,
    recognizer_height: usize,
    recognizer_min_width: usize,
    dictionary: Dictionary,
    text_score: f32,
}

impl Runner for OcrRunner {
    type Input = OcrJob;
    type Output = OcrOutput;

    fn run(
        &mut self,
        jobs: Vec<OcrJob>,
        cancelled: &Cancelled<'_>,
    ) -> Vec<Result<OcrOutput, TaskError>> {
        each_job(jobs, cancelled, |job| self.read(job))
    }
}

/// `(v / 255 − 0.5) / 0.5`: how strips are normalised for the classifier and the recognizer.
const STRIP_NORMALISE: Normalise = Normalise {
    scale: [1.0 / 127.5; 3],
    offset: [-1.0; 3],
};

impl OcrRunner {
    fn read(&mut self, job: OcrJob) -> Result<OcrOutput, TaskError> {
        let started = Instant::now();
        let boxes = self.detect(&job)?;
        let mut strips = Vec::with_capacity(boxes.len());
        for corners in boxes {
            if let Some(strip) = pixels::crop(&job.scene, &corners) {
                strips.push((corners, strip));
            }
        }
        let detected = Instant::now();
        let turned = match &mut self.classifier {
            Some(classifier) => classifier.turn_upside_down_strips(&mut strips)?,
            None => Vec::new(),
        };
        let classified = Instant::now();
        let mut read = self.recognise(&strips)?;
        // The classifier is sometimes sure of a wrong answer: it turns some upright English lines
        // with a score of 0.98, and leaves some upside-down ones as they are. So each strip it
        // turned, and each strip read with too little confidence to keep, is read the other way
        // up too, and the likelier reading stands. Clean text costs nothing more.
        let doubtful: Vec<usize> = (0..strips.len())
            .filter(|i| turned.contains(i) || read[*i].1 < self.text_score)
            .collect();
        if !doubtful.is_empty() {
            let other_way_up: Vec<(Quad, RgbImage)> = doubtful
                .iter()
                .map(|&i| (strips[i].0, pixels::half_turn(&strips[i].1)))
                .collect();
            for (&i, other) in doubtful.iter().zip(self.recognise(&other_way_up)?) {
                if other.1 > read[i].1 {
                    read[i] = other;
                }
            }
        }
        let ms = |from: Instant, to: Instant| (to - from).as_secs_f64() * 1000.0;
        tracing::debug!(
            strips = strips.len(),
            turned = turned.len(),
            detect_ms = ms(started, detected),
            classify_ms = ms(detected, classified),
            recognise_ms = ms(classified, Instant::now()),
            "read a picture"
        );
        let lines = strips
            .into_iter()
            .zip(read)
            .filter(|(_, (_, confidence))| *confidence >= self.text_score)
            .map(|((corners, _), (text, confidence))| TextLine {
                text,
                confidence,
                corners,
            })
            .collect();
        Ok(OcrOutput {
            placement: job.placement,
            lines,
        })
    }

    /// The text boxes of the scene, in reading order.
    fn detect(&mut self, job: &OcrJob) -> Result<Vec<Quad>, TaskError> {
        let (width, height) = (job.detector_width, job.detector_height);
        let outputs = self.detector.run(&[(
            self.detector_input.as_str(),
            TensorInput::new([1, 3, height, width], &job.detector_input),
        )])?;
        let output = outputs.at(0)?;
        let values = output.f32()?;
        if values.len() != width * height {
            return Err(TaskError::Inference(format!(
                "the text detector answered {:?}; a [1, 1, {height}, {width}] map was expected",
                output.shape()
            )));
        }
        let map = ProbabilityMap {
            values,
            width,
            height,
        };
        let (scene_width, scene_height) = (job.scene.width() as usize, job.scene.height() as usize);
        let boxes = detect::text_boxes(&map, scene_width, scene_height, &self.db)
            .into_iter()
            .map(|(corners, _)| corners)
            .collect();
        let boxes = detect::fit_to_image(boxes, scene_width, scene_height);
        Ok(detect::reading_order(boxes, SAME_LINE))
    }

    /// Each strip's text and confidence, in order. Strips of like aspect ratio share a call, each
    /// call as wide as its widest strip needs.
    fn recognise(&mut self, strips: &[(Quad, RgbImage)]) -> Result<Vec<(String, f32)>, TaskError> {
        let height = self.recognizer_height;
        let mut read = vec![(String::new(), 0.0); strips.len()];
        for batch in by_aspect_ratio(strips, STRIPS_PER_BATCH) {
            let widest = batch
                .iter()
                .map(|&i| aspect_ratio(&strips[i].1))
                .fold(self.recognizer_min_width as f32 / height as f32, f32::max);
            let width = (height as f32 * widest) as usize;
            let plane = height * width;
            let mut input = vec![0.0f32; batch.len() * 3 * plane];
            for (slot, &i) in batch.iter().enumerate() {
                let strip = &strips[i].1;
                let fitted = scaled_width(strip, height, width);
                pixels::resize_into(
                    strip,
                    fitted,
                    height,
                    &mut input[slot * 3 * plane..(slot + 1) * 3 * plane],
                    width,
                    &STRIP_NORMALISE,
                );
            }
            let outputs = self.recognizer.run(&[(
                self.recognizer_input.as_str(),
                TensorInput::new([batch.len(), 3, height, width], &input),
            )])?;
            let output = outputs.at(0)?;
            let classes = self.dictionary.classes();
            let probabilities = output.f32()?;
            match output.shape() {
                [n, _, c] if *n == batch.len() && *c == classes => {}
                shape => {
                    return Err(TaskError::Inference(format!(
                        "the recognizer answered {shape:?}; [{}, steps, {classes}] was expected",
                        batch.len()
                    )));
                }
            }
            let per_strip = probabilities.len() / batch.len();
            for (slot, &i) in batch.iter().enumerate() {
                read[i] = ctc::decode(
                    &probabilities[slot * per_strip..(slot + 1) * per_strip],
                    &self.dictionary,
                );
            }
        }
        Ok(read)
    }
}

impl AngleClassifier {
    /// Turns the strips the classifier sees as upside down (confidently enough) right way up;
    /// returns which.
    fn turn_upside_down_strips(
        &mut self,
        strips: &mut [(Quad, RgbImage)],
    ) -> Result<Vec<usize>, TaskError> {
        let mut turned = Vec::new();
        let (height, width) = (self.height, self.width);
        let plane = height * width;
        for batch in by_aspect_ratio(strips, STRIPS_PER_BATCH) {
            let mut input = vec![0.0f32; batch.len() * 3 * plane];
            for (slot, &i) in batch.iter().enumerate() {
                let strip = &strips[i].1;
                pixels::resize_into(
                    strip,
                    scaled_width(strip, height, width),
                    height,
                    &mut input[slot * 3 * plane..(slot + 1) * 3 * plane],
                    width,
                    &STRIP_NORMALISE,
                );
            }
            let outputs = self.model.run(&[(
                self.input.as_str(),
                TensorInput::new([batch.len(), 3, height, width], &input),
            )])?;
            let output = outputs.at(0)?;
            let scores = output.f32()?;
            let classes = scores.len() / batch.len().max(1);
            if classes == 0 || scores.len() != classes * batch.len() {
                return Err(TaskError::Inference(format!(
                    "the angle classifier answered {:?} for {} strips",
                    output.shape(),
                    batch.len()
                )));
            }
            for (slot, &i) in batch.iter().enumerate() {
                let row = &scores[slot * classes..(slot + 1) * classes];
                let (best, score) =
                    row.iter()
                        .copied()
                        .enumerate()
                        .fold(
                            (0, f32::MIN),
                            |best, (c, p)| if p > best.1 { (c, p) } else { best },
                        );
                if best == self.upside_down && score >= self.threshold {
                    strips[i].1 = pixels::half_turn(&strips[i].1);
                    turned.push(i);
                }
            }
        }
        Ok(turned)
    }
}

/// Width over height.
fn aspect_ratio(image: &RgbImage) -> f32 {
    image.width() as f32 / image.height() as f32
}

/// The width a strip takes at `height` keeping its aspect ratio, at most `max_width`.
fn scaled_width(strip: &RgbImage, height: usize, max_width: usize) -> usize {
    ((height as f32 * aspect_ratio(strip)).ceil() as usize).clamp(1, max_width)
}

/// Strip indices sorted by aspect ratio, cut into batches of `size`: neighbours in a batch need
/// about the same padded width.
fn by_aspect_ratio(strips: &[(Quad, RgbImage)], size: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..strips.len()).collect();
    order.sort_by(|&a, &b| aspect_ratio(&strips[a].1).total_cmp(&aspect_ratio(&strips[b].1)));
    order.chunks(size).map(<[usize]>::to_vec).collect()
}

/// The model file an option names, or else the model's one ONNX file whose name contains
/// `part` (a local RapidOCR folder keeps its long file names).
fn part_path(model: &LocalModel, named: &str, part: &str) -> Result<std::path::PathBuf, TaskError> {
    if let Ok(path) = model.file(named) {
        return Ok(path);
    }
    let found = model.files.iter().find(|file| {
        file.extension().is_some_and(|e| e == "onnx")
            && file
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.to_ascii_lowercase().contains(part))
    });
    match found {
        Some(path) => Ok(path.clone()),
        None => Ok(model.file(named)?),
    }
}

/// The single input of a graph that takes `[batch, 3, height, width]` images.
fn image_input(model: &OnnxModel, what: &str) -> Result<String, TaskError> {
    match model.inputs() {
        [input] if input.shape.len() == 4 => Ok(input.name.clone()),
        inputs => Err(TaskError::ModelFile {
            path: model.path().to_path_buf(),
            message: format!(
                "the {what} takes one image tensor [batch, 3, height, width]; this graph's inputs are {:?}",
                inputs.iter().map(|i| i.to_string()).collect::<Vec<_>>()
            ),
        }),
    }
}

fn load(model: &LocalModel, context: &LoadContext) -> Result<LoadedModel, TaskError> {
    let options: OcrOptions = model.options_as()?;
    // Box finding and cropping run between the graphs: spinning intra-op threads would hold
    // the cores they need.
    let session = SessionConfig {
        intra_op_spinning: false,
        ..context.session.clone()
    };
    let detector = OnnxModel::load(&part_path(model, &options.det, "det")?, &session)?;
    let recognizer = OnnxModel::load(&part_path(model, &options.rec, "rec")?, &session)?;
    let detector_input = image_input(&detector, "text detector")?;
    let recognizer_input = image_input(&recognizer, "text recognizer")?;

    let rec_path = recognizer.path().to_path_buf();
    let bad_rec = |message: String| TaskError::ModelFile {
        path: rec_path.clone(),
        message,
    };
    let dictionary = match options.rec_dict.strip_prefix("onnx-metadata:") {
        Some(key) => Dictionary::from_lines(recognizer.metadata(key).ok_or_else(|| {
            bad_rec(format!(
                "its metadata has no `{key}` entry, where the character list was expected"
            ))
        })?),
        None => {
            let path = model.file(&options.rec_dict)?;
            let text = std::fs::read_to_string(&path).map_err(|e| TaskError::ModelFile {
                path: path.clone(),
                message: format!("could not read the character list: {e}"),
            })?;
            Dictionary::from_lines(&text)
        }
    };
    if let Some(Some(classes)) = recognizer.outputs().first().and_then(|o| o.shape.last())
        && *classes != dictionary.classes()
    {
        return Err(bad_rec(format!(
            "it outputs {classes} classes, but the character list gives {} (blank, characters, space)",
            dictionary.classes()
        )));
    }

    let classifier = match part_path(model, &options.cls, "cls") {
        Ok(path) => {
            let classifier = OnnxModel::load(&path, &session)?;
            let input = image_input(&classifier, "angle classifier")?;
            let upside_down = options
                .cls_labels
                .iter()
                .position(|label| label == "180")
                .ok_or_else(|| TaskError::ModelFile {
                    path: path.clone(),
                    message: format!(
                        "its labels {:?} have no `180`, the class of upside-down text",
                        options.cls_labels
                    ),
                })?;
            let [_, height, width] = options.cls_image_shape;
            Some(AngleClassifier {
                model: classifier,
                input,
                height,
                width,
                upside_down,
                threshold: options.cls_thresh,
            })
        }
        Err(_) => {
            tracing::info!(model = %model.id, "no angle classifier: strips are read as they lie");
            None
        }
    };

    let [_, recognizer_height, recognizer_min_width] = options.rec_image_shape;
    let device = detector.device();
    Ok(LoadedModel::new(
        OcrFrontend {
            limit_side: options.det_limit_side_len,
            limit_type: options.det_limit_type,
            normalise: Normalise::from_mean_std(options.det_mean, options.det_std),
            max_pixels: context.limits.max_image_pixels,
        },
        OcrRunner {
            detector,
            detector_input,
            db: DbSettings {
                thresh: options.det_thresh,
                box_thresh: options.det_box_thresh,
                unclip_ratio: options.det_unclip_ratio,
                max_candidates: options.det_max_candidates,
            },
            classifier,
            recognizer,
            recognizer_input,
            recognizer_height,
            recognizer_min_width,
            dictionary,
            text_score: options.text_score,
        },
        device,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detector_sizes_follow_the_reference() {
        // A 600 × 150 letterboxed line: short side to 736 (ratio 4.9067), sides rounded to 32.
        assert_eq!(detector_size(600, 150, 736, LimitType::Min), (2944, 736));
        // A page already over the limit keeps its size, rounded.
        assert_eq!(detector_size(1000, 1414, 736, LimitType::Min), (992, 1408));
        assert_eq!(detector_size(1000, 500, 640, LimitType::Max), (640, 320));
        // The default (PaddleOCR's): an A4 page at 150 dpi to 960 rows, the line as it is.
        assert_eq!(detector_size(1240, 1754, 960, LimitType::Max), (672, 960));
        assert_eq!(detector_size(600, 150, 960, LimitType::Max), (608, 160));
        // A tall sliver is held to 8 × 736 = 5888 rows instead of 36 800.
        assert_eq!(detector_size(40, 2000, 736, LimitType::Min), (128, 5888));
    }

    #[test]
    fn a_thin_line_gets_a_letterbox_and_maps_back() {
        let picture = Picture {
            rgb: RgbImage::from_pixel(600, 60, Rgb([255; 3])),
            had_alpha: false,
        };
        let (scene, placement) = scene(picture);
        // Wider than 8:1, so padded to 2 × max(600 / 8, 30) = 150 rows.
        assert_eq!(scene.dimensions(), (600, 150));
        assert_eq!(scene.get_pixel(0, 0).0, [0; 3]);
        assert_eq!(scene.get_pixel(0, 45).0, [255; 3]);
        assert_eq!(placement.to_picture([100.0, 50.0]), [100.0, 5.0]);
        assert_eq!(placement.to_picture([100.0, 10.0]), [100.0, 0.0]);
    }

    #[test]
    fn big_pictures_shrink_and_map_back() {
        let picture = Picture {
            rgb: RgbImage::new(3000, 1000),
            had_alpha: false,
        };
        let (scene, placement) = scene(picture);
        // 2000 × 666 → 1984 × 672 (multiples of 32, 62.5 rounded to even).
        assert_eq!(scene.dimensions(), (1984, 672));
        let [x, y] = placement.to_picture([1984.0, 672.0]);
        assert!((x - 3000.0).abs() < 1e-3 && (y - 1000.0).abs() < 1e-3);
    }
}
