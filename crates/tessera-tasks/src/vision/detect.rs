//! Object detection with YOLOv8/YOLO11-style ONNX graphs (Ultralytics exports): boxes, classes
//! and confidences in the photo's own coordinates.
//!
//! Such a graph takes `[batch, 3, size, size]` RGB in 0–1 and answers `[batch, 4 + classes,
//! anchors]`: per anchor a box (centre x, centre y, width, height, in input pixels) and one score
//! per class. The photo is letterboxed into the square (scaled to fit, centred, padded with grey
//! 114 as Ultralytics trains), the boxes are mapped back, and overlapping boxes of one class are
//! suppressed (class-aware NMS). Class names come from the catalog's options, else from the
//! graph's `names` metadata (Ultralytics writes a Python dict there).

use std::sync::Arc;

use image::{Rgb, RgbImage};
use serde::Deserialize;
use tessera_core::{EngineKind, Task};
use tessera_engines::onnx::{ElementType, OnnxModel, TensorInput};
use tessera_hub::LocalModel;

use super::image::decode;
use crate::TaskError;
use crate::registry::{
    Batching, Cancelled, Family, Frontend, LoadContext, LoadedModel, Prepared, Runner, file_bytes,
    path_mentions,
};

/// YOLOv8/YOLO11 detection graphs on ONNX Runtime.
pub static FAMILY: Family = Family {
    name: "yolo-onnx",
    task: Task::Detect,
    engine: EngineKind::Onnx,
    batching: Batching::Pixels,
    recognises: |model| path_mentions(model, "yolo"),
    load,
    // The weights, and the activations of a batch at the default pixel budget.
    estimate_bytes: |model| file_bytes(model).saturating_mul(2) + 300_000_000,
};

/// The grey Ultralytics pads letterboxed images with.
const PAD: u8 = 114;
/// Candidates kept for suppression, best first: bounds NMS's quadratic cost on a noisy image.
const MAX_CANDIDATES: usize = 30_000;

/// The catalog's settings for a detector; every one has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct DetectOptions {
    /// The square input side, when the graph's input is dynamic.
    input_size: Option<u32>,
    /// The default confidence a box needs.
    score_threshold: f32,
    /// The default overlap (IoU) above which the weaker of two boxes of one class is dropped.
    nms_threshold: f32,
    /// Class names by class index; else the graph's metadata names them.
    labels: Option<Vec<String>>,
    /// The most boxes one image answers.
    max_detections: usize,
}

impl Default for DetectOptions {
    fn default() -> Self {
        DetectOptions {
            input_size: None,
            score_threshold: 0.25,
            nms_threshold: 0.45,
            labels: None,
            max_detections: 300,
        }
    }
}

/// A photo to search, and optionally thresholds other than the model's defaults.
#[derive(Debug, Clone, Default)]
pub struct DetectRequest {
    /// The image file's bytes (JPEG, PNG, WebP, BMP or GIF).
    pub image: Vec<u8>,
    /// The confidence a box needs, 0 to 1.
    pub confidence: Option<f32>,
    /// The overlap (intersection over union, 0 to 1) above which the weaker of two boxes of one
    /// class is dropped.
    pub iou: Option<f32>,
    /// The most boxes to answer.
    pub max_detections: Option<usize>,
}

/// A box in image pixels: left, top, right, bottom.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    /// Left edge.
    pub x1: f32,
    /// Top edge.
    pub y1: f32,
    /// Right edge.
    pub x2: f32,
    /// Bottom edge.
    pub y2: f32,
}

impl BoundingBox {
    fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    /// Intersection over union with `other`.
    pub fn iou(&self, other: &BoundingBox) -> f32 {
        let width = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let height = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = width * height;
        let union = self.area() + other.area() - inter;
        if union > 0.0 { inter / union } else { 0.0 }
    }
}

/// One object found.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    /// The class name.
    pub label: String,
    /// The class index in the model's output.
    pub class_id: usize,
    /// The class score, 0 to 1.
    pub confidence: f32,
    /// Where it is, in the photo's pixels (after its EXIF orientation).
    pub bbox: BoundingBox,
}

/// The objects found in one photo, best first.
#[derive(Debug, Clone)]
pub struct Detections {
    /// The photo's width in pixels (after its EXIF orientation).
    pub width: u32,
    /// Its height.
    pub height: u32,
    /// What was found, by confidence, highest first.
    pub objects: Vec<Detection>,
}

/// How a photo sits in the letterboxed square: input = photo × scale + pad.
#[derive(Debug, Clone, Copy)]
struct Letterbox {
    scale: f32,
    pad_x: f32,
    pad_y: f32,
    width: u32,
    height: u32,
}

/// A photo letterboxed for the graph, with the request's settings.
#[derive(Debug)]
pub struct DetectJob {
    input: Vec<f32>,
    letterbox: Letterbox,
    settings: Settings,
}

/// The graph's raw answer for one photo: `4 + classes` rows of `anchors` values.
#[derive(Debug)]
pub struct DetectOutput {
    rows: Vec<f32>,
    anchors: usize,
    letterbox: Letterbox,
    settings: Settings,
}

#[derive(Debug, Clone, Copy)]
struct Settings {
    confidence: f32,
    iou: f32,
    max_detections: usize,
}

/// Letterboxes photos off the worker thread; turns the graph's rows into boxes after it.
pub struct DetectFrontend {
    size: u32,
    labels: Arc<[String]>,
    defaults: Settings,
    max_pixels: u64,
}

impl Frontend for DetectFrontend {
    const TASK: Task = Task::Detect;
    type Request = DetectRequest;
    type Input = DetectJob;
    type Output = DetectOutput;
    type Response = Detections;

    fn prepare(&self, request: DetectRequest) -> Result<Prepared<DetectJob>, TaskError> {
        let settings = self.settings(&request)?;
        let picture = decode(&request.image, self.max_pixels)?;
        let (input, letterbox) = letterbox(&picture.rgb, self.size)?;
        Ok(Prepared {
            input: DetectJob {
                input,
                letterbox,
                settings,
            },
            cost: (self.size as usize) * (self.size as usize),
        })
    }

    fn finish(&self, output: DetectOutput) -> Result<Detections, TaskError> {
        let classes = (output.rows.len() / output.anchors.max(1)).saturating_sub(4);
        let candidates = candidates(&output, classes);
        let kept = suppress(
            candidates,
            output.settings.iou,
            output.settings.max_detections,
        );
        let objects = kept
            .into_iter()
            .map(|candidate| Detection {
                label: self.label(candidate.class_id),
                class_id: candidate.class_id,
                confidence: candidate.confidence,
                bbox: candidate.bbox,
            })
            .collect();
        Ok(Detections {
            width: output.letterbox.width,
            height: output.letterbox.height,
            objects,
        })
    }
}

impl DetectFrontend {
    fn settings(&self, request: &DetectRequest) -> Result<Settings, TaskError> {
        let fraction = |value: Option<f32>, default: f32, what: &str| match value {
            None => Ok(default),
            Some(v) if (0.0..=1.0).contains(&v) => Ok(v),
            Some(v) => Err(TaskError::InvalidInput(format!(
                "{what} must be between 0 and 1, not {v}"
            ))),
        };
        let max_detections = match request.max_detections {
            Some(0) => {
                return Err(TaskError::InvalidInput(
                    "max_detections must be at least 1".into(),
                ));
            }
            Some(n) => n,
            None => self.defaults.max_detections,
        };
        Ok(Settings {
            confidence: fraction(request.confidence, self.defaults.confidence, "confidence")?,
            iou: fraction(request.iou, self.defaults.iou, "iou")?,
            max_detections,
        })
    }

    fn label(&self, class_id: usize) -> String {
        self.labels
            .get(class_id)
            .cloned()
            .unwrap_or_else(|| format!("class {class_id}"))
    }
}

/// The photo letterboxed on grey, channels first, values 0 to 1.
fn letterbox(rgb: &RgbImage, size: u32) -> Result<(Vec<f32>, Letterbox), TaskError> {
    let (canvas, placement) = super::image::letterbox(rgb, size, Rgb([PAD; 3]))?;
    let plane = (size * size) as usize;
    let mut input = vec![0.0f32; 3 * plane];
    for (i, pixel) in canvas.pixels().enumerate() {
        for channel in 0..3 {
            input[channel * plane + i] = f32::from(pixel.0[channel]) / 255.0;
        }
    }
    let (width, height) = rgb.dimensions();
    let letterbox = Letterbox {
        scale: placement.scale,
        pad_x: placement.left as f32,
        pad_y: placement.top as f32,
        width,
        height,
    };
    Ok((input, letterbox))
}

/// A box before suppression.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    class_id: usize,
    confidence: f32,
    bbox: BoundingBox,
}

/// The anchors whose best class clears the confidence, as boxes in the photo, best first.
fn candidates(output: &DetectOutput, classes: usize) -> Vec<Candidate> {
    let anchors = output.anchors;
    let row = |r: usize| &output.rows[r * anchors..(r + 1) * anchors];
    let (cx, cy, w, h) = (row(0), row(1), row(2), row(3));
    let Letterbox {
        scale,
        pad_x,
        pad_y,
        width,
        height,
    } = output.letterbox;
    let mut found = Vec::new();
    for anchor in 0..anchors {
        let (class_id, confidence) = (0..classes)
            .map(|class| (class, output.rows[(4 + class) * anchors + anchor]))
            .fold(
                (0, f32::MIN),
                |best, next| {
                    if next.1 > best.1 { next } else { best }
                },
            );
        if confidence < output.settings.confidence {
            continue;
        }
        let to_photo_x = |x: f32| ((x - pad_x) / scale).clamp(0.0, width as f32);
        let to_photo_y = |y: f32| ((y - pad_y) / scale).clamp(0.0, height as f32);
        let bbox = BoundingBox {
            x1: to_photo_x(cx[anchor] - w[anchor] / 2.0),
            y1: to_photo_y(cy[anchor] - h[anchor] / 2.0),
            x2: to_photo_x(cx[anchor] + w[anchor] / 2.0),
            y2: to_photo_y(cy[anchor] + h[anchor] / 2.0),
        };
        if bbox.area() > 0.0 {
            found.push(Candidate {
                class_id,
                confidence,
                bbox,
            });
        }
    }
    found.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    found.truncate(MAX_CANDIDATES);
    found
}

/// Class-aware non-maximum suppression over candidates sorted best first: a box is kept unless a
/// kept box of its class overlaps it by more than `iou`.
fn suppress(candidates: Vec<Candidate>, iou: f32, max_detections: usize) -> Vec<Candidate> {
    let mut kept: Vec<Candidate> = Vec::new();
    for candidate in candidates {
        if kept.len() == max_detections {
            break;
        }
        let overlapped = kept.iter().any(|other| {
            other.class_id == candidate.class_id && other.bbox.iou(&candidate.bbox) > iou
        });
        if !overlapped {
            kept.push(candidate);
        }
    }
    kept
}

/// Runs batches of letterboxed photos through the graph.
pub struct DetectRunner {
    model: OnnxModel,
    input: String,
    size: usize,
}

impl Runner for DetectRunner {
    type Input = DetectJob;
    type Output = DetectOutput;

    fn run(
        &mut self,
        jobs: Vec<DetectJob>,
        cancelled: &Cancelled<'_>,
    ) -> Vec<Result<DetectOutput, TaskError>> {
        // Photos whose callers left are not computed.
        let (wanted, skipped): (Vec<_>, Vec<_>) = jobs
            .into_iter()
            .enumerate()
            .partition(|(i, _)| !cancelled.job(*i));
        let mut results: Vec<Option<Result<DetectOutput, TaskError>>> =
            (0..wanted.len() + skipped.len()).map(|_| None).collect();
        for (i, _) in &skipped {
            results[*i] = Some(Err(crate::registry::abandoned()));
        }
        if !wanted.is_empty() {
            let (indices, jobs): (Vec<usize>, Vec<DetectJob>) = wanted.into_iter().unzip();
            match self.batch(jobs) {
                Ok(outputs) => {
                    for (i, output) in indices.into_iter().zip(outputs) {
                        results[i] = Some(Ok(output));
                    }
                }
                Err(error) => {
                    let message = error.to_string();
                    for i in indices {
                        results[i] = Some(Err(TaskError::Inference(message.clone())));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(TaskError::Internal("a job was lost".into()))))
            .collect()
    }
}

impl DetectRunner {
    fn batch(&mut self, jobs: Vec<DetectJob>) -> Result<Vec<DetectOutput>, TaskError> {
        let size = self.size;
        let mut input = Vec::with_capacity(jobs.len() * 3 * size * size);
        for job in &jobs {
            input.extend_from_slice(&job.input);
        }
        let outputs = self.model.run(&[(
            self.input.as_str(),
            TensorInput::new([jobs.len(), 3, size, size], &input),
        )])?;
        let output = outputs.at(0)?;
        let shape = output.shape().to_vec();
        let values = output.f32()?;
        let (rows, anchors) = match shape.as_slice() {
            [n, rows, anchors] if *n == jobs.len() && *rows > 4 => (*rows, *anchors),
            _ => {
                return Err(TaskError::Inference(format!(
                    "the detection graph answered {shape:?}; [{}, 4 + classes, anchors] was expected",
                    jobs.len()
                )));
            }
        };
        let per_image = rows * anchors;
        Ok(jobs
            .into_iter()
            .zip(values.chunks_exact(per_image))
            .map(|(job, rows)| DetectOutput {
                rows: rows.to_vec(),
                anchors,
                letterbox: job.letterbox,
                settings: job.settings,
            })
            .collect())
    }
}

/// Class names from Ultralytics' `names` metadata: a Python dict literal such as
/// `{0: 'person', 1: 'bicycle'}`. `None` when it does not read as one.
fn parse_names(text: &str) -> Option<Vec<String>> {
    let body = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut names: Vec<(usize, String)> = Vec::new();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let (index, after) = rest.split_once(':')?;
        let index: usize = index.trim().parse().ok()?;
        let after = after.trim_start();
        let quote = after.chars().next().filter(|c| *c == '\'' || *c == '"')?;
        let mut name = String::new();
        let mut chars = after[1..].char_indices();
        let mut end = None;
        while let Some((at, c)) = chars.next() {
            match c {
                '\\' => name.push(chars.next()?.1),
                c if c == quote => {
                    end = Some(at + 2);
                    break;
                }
                c => name.push(c),
            }
        }
        names.push((index, name));
        rest = after[end?..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    names.sort_by_key(|(index, _)| *index);
    let in_order = names.iter().enumerate().all(|(i, (index, _))| i == *index);
    (in_order && !names.is_empty()).then(|| names.into_iter().map(|(_, name)| name).collect())
}

fn load(model: &LocalModel, context: &LoadContext) -> Result<LoadedModel, TaskError> {
    let options: DetectOptions = model.options_as()?;
    let path = model.file_with_extension("onnx")?;
    let onnx = OnnxModel::load(&path, &context.session)?;
    let not_yolo = |message: String| TaskError::ModelFile {
        path: path.clone(),
        message,
    };
    let [input] = onnx.inputs() else {
        return Err(not_yolo(format!(
            "a detection graph takes one image batch; this one has {} inputs",
            onnx.inputs().len()
        )));
    };
    if input.element_type != ElementType::F32 {
        return Err(not_yolo(format!(
            "its input `{}` is {}; float32 was expected",
            input.name,
            input.element_type.as_str()
        )));
    }
    // The metadata's `imgsz` is `[height, width]`; only square inputs are fed here.
    let from_metadata = onnx.metadata("imgsz").and_then(|text| {
        text.trim_matches(['[', ']'])
            .split(',')
            .next()?
            .trim()
            .parse()
            .ok()
    });
    let size = match input.shape.as_slice() {
        [_, Some(3), Some(h), Some(w)] if h == w => *h as u32,
        [_, Some(3), None, None] => options.input_size.or(from_metadata).unwrap_or(640),
        shape => {
            return Err(not_yolo(format!(
                "its input `{}` has shape {shape:?}; [batch, 3, size, size] was expected",
                input.name
            )));
        }
    };
    let labels = match options.labels {
        Some(labels) => labels,
        None => onnx
            .metadata("names")
            .and_then(parse_names)
            .unwrap_or_default(),
    };
    if labels.is_empty() {
        tracing::warn!(model = %model.id, "the detector names no classes; answering `class N`");
    }
    let defaults = Settings {
        confidence: options.score_threshold,
        iou: options.nms_threshold,
        max_detections: options.max_detections.max(1),
    };
    let name = input.name.clone();
    let device = onnx.device();
    Ok(LoadedModel::new(
        DetectFrontend {
            size,
            labels: labels.into(),
            defaults,
            max_pixels: context.limits.max_image_pixels,
        },
        DetectRunner {
            model: onnx,
            input: name,
            size: size as usize,
        },
        device,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boxed(x1: f32, y1: f32, x2: f32, y2: f32) -> BoundingBox {
        BoundingBox { x1, y1, x2, y2 }
    }

    #[test]
    fn ultralytics_names_read_in_index_order() {
        let names = parse_names("{1: 'bicycle', 0: \"person\", 2: 'it\\'s'}").unwrap();
        assert_eq!(names, ["person", "bicycle", "it's"]);
        assert_eq!(parse_names("{0: 'a', 2: 'c'}"), None, "a gap");
        assert_eq!(parse_names("['a', 'b']"), None);
        assert_eq!(parse_names("{}"), None);
    }

    #[test]
    fn overlap_is_intersection_over_union() {
        let a = boxed(0.0, 0.0, 10.0, 10.0);
        assert_eq!(a.iou(&a), 1.0);
        assert_eq!(a.iou(&boxed(20.0, 20.0, 30.0, 30.0)), 0.0);
        let half = a.iou(&boxed(5.0, 0.0, 15.0, 10.0));
        assert!((half - 50.0 / 150.0).abs() < 1e-6, "{half}");
    }

    #[test]
    fn suppression_keeps_the_best_of_each_class_and_other_classes_alike() {
        let candidate = |class_id, confidence, bbox| Candidate {
            class_id,
            confidence,
            bbox,
        };
        let face = boxed(0.0, 0.0, 10.0, 10.0);
        let shifted = boxed(1.0, 0.0, 11.0, 10.0);
        let far = boxed(50.0, 50.0, 60.0, 60.0);
        let kept = suppress(
            vec![
                candidate(0, 0.9, face),
                candidate(1, 0.8, shifted), // another class: kept despite the overlap
                candidate(0, 0.7, shifted), // same class, overlapping: dropped
                candidate(0, 0.6, far),
            ],
            0.45,
            10,
        );
        let scores: Vec<f32> = kept.iter().map(|c| c.confidence).collect();
        assert_eq!(scores, [0.9, 0.8, 0.6]);
        assert_eq!(suppress(kept, 0.45, 2).len(), 2);
    }

    #[test]
    fn boxes_map_back_through_the_letterbox() {
        // A 200 × 100 photo in a 100 × 100 square: scale 0.5, 25 px of grey above and below.
        let photo = RgbImage::from_pixel(200, 100, Rgb([255, 0, 0]));
        let (input, letterbox) = letterbox(&photo, 100).unwrap();
        assert_eq!(
            (letterbox.scale, letterbox.pad_x, letterbox.pad_y),
            (0.5, 0.0, 25.0)
        );
        assert_eq!(input[0], PAD as f32 / 255.0, "the top left is padding");
        assert_eq!(input[50 * 100 + 50], 1.0, "the middle is the red photo");
        // One anchor, one class: a box centred at (50, 50), 20 × 10 in the square.
        let output = DetectOutput {
            rows: vec![50.0, 50.0, 20.0, 10.0, 0.9],
            anchors: 1,
            letterbox,
            settings: Settings {
                confidence: 0.5,
                iou: 0.45,
                max_detections: 10,
            },
        };
        let found = candidates(&output, 1);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].bbox, boxed(80.0, 40.0, 120.0, 60.0));
        let below = DetectOutput {
            rows: vec![50.0, 50.0, 20.0, 10.0, 0.4],
            ..output
        };
        assert!(candidates(&below, 1).is_empty(), "under the confidence");
    }
}
