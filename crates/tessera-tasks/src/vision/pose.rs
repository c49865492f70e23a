//! Human pose with MediaPipe BlazePose (TFLite converted to ONNX at pull time): people found by
//! the pose detector, a rotated square region around each, and 33 landmarks per person with
//! visibility, in the photo's pixels.
//!
//! The pipeline follows MediaPipe's pose graphs (`pose_detection_cpu`, `pose_detection_to_roi`,
//! `pose_landmark_by_roi_cpu`):
//! 1. The photo is letterboxed into the detector's 224 × 224 input, values −1 to 1. The detector
//!    answers 2,254 SSD anchors (strides 8, 16, 32, 32, 32; two anchors a cell), each a box and
//!    four keypoints; scores go through a sigmoid, and overlapping detections are merged by
//!    score-weighted averaging (MediaPipe's weighted NMS).
//! 2. Keypoint 0 is the middle of the hips, keypoint 1 a point that gives the body's scale and
//!    tilt ("Vitruvian man"): the region is a square centred on the hips, twice their distance,
//!    enlarged 1.25×, turned so the body stands upright.
//! 3. That region is sampled into the landmark model's 256 × 256 input (values 0 to 1); its 39
//!    landmarks (33 of the body, 6 MediaPipe uses for tracking) are mapped back through the same
//!    rotation. Visibility and presence go through a sigmoid; the model's pose flag says whether
//!    a person is there at all.
//!
//! Left out: MediaPipe's heatmap refinement of landmark positions, and tracking across frames
//! (every photo is detected afresh, as MediaPipe's static image mode does).

use std::f32::consts::PI;

use image::RgbImage;
use serde::Deserialize;
use tessera_core::{EngineKind, Task};
use tessera_engines::onnx::{OnnxModel, SessionConfig, TensorInput};
use tessera_hub::LocalModel;

use super::image::{Picture, decode, letterbox};
use crate::TaskError;
use crate::registry::{
    Batching, Cancelled, Family, Frontend, LoadContext, LoadedModel, Prepared, Runner, each_job,
    file_bytes, has_file,
};

/// BlazePose on ONNX Runtime.
pub static FAMILY: Family = Family {
    name: "blazepose-onnx",
    task: Task::Pose,
    engine: EngineKind::Onnx,
    batching: Batching::Single,
    recognises: |model| has_file(model, |name| name.starts_with("pose_landmark")),
    load,
    estimate_bytes: |model| file_bytes(model).saturating_mul(2) + 100_000_000,
};

/// The 33 body landmarks, in the model's order.
pub const LANDMARKS: [&str; 33] = [
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
];

/// Pairs of landmarks joined when a skeleton is drawn.
pub const SKELETON: [(usize, usize); 35] = [
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 7),
    (0, 4),
    (4, 5),
    (5, 6),
    (6, 8),
    (9, 10),
    (11, 12),
    (11, 13),
    (13, 15),
    (15, 17),
    (15, 19),
    (15, 21),
    (17, 19),
    (12, 14),
    (14, 16),
    (16, 18),
    (16, 20),
    (16, 22),
    (18, 20),
    (11, 23),
    (12, 24),
    (23, 24),
    (23, 25),
    (24, 26),
    (25, 27),
    (26, 28),
    (27, 29),
    (28, 30),
    (29, 31),
    (30, 32),
    (27, 31),
    (28, 32),
];

/// The detector's square input side.
const DETECTOR_SIZE: usize = 224;
/// The landmark model's square input side.
const LANDMARK_SIZE: usize = 256;
/// Landmarks the model answers (33 of the body, 6 auxiliary).
const MODEL_LANDMARKS: usize = 39;
/// Values per anchor: a box (centre x, centre y, width, height) and four keypoints (x, y).
const VALUES_PER_ANCHOR: usize = 12;

/// The catalog's settings; each has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
struct PoseOptions {
    /// The detector file.
    detector: String,
    /// The landmark model file.
    landmarks: String,
    /// The detector score a person needs.
    detection_threshold: f32,
    /// Overlap above which detections are merged.
    nms_threshold: f32,
    /// The landmark model's pose flag a person needs.
    presence_threshold: f32,
    /// The most people per photo.
    max_people: usize,
}

impl Default for PoseOptions {
    fn default() -> Self {
        PoseOptions {
            detector: "pose_detection.onnx".into(),
            landmarks: "pose_landmark_full.onnx".into(),
            detection_threshold: 0.5,
            nms_threshold: 0.3,
            presence_threshold: 0.5,
            max_people: 5,
        }
    }
}

/// A photo to find people in.
#[derive(Debug, Clone, Default)]
pub struct PoseRequest {
    /// The image file's bytes (JPEG, PNG, WebP, BMP or GIF).
    pub image: Vec<u8>,
    /// The most people to answer (default: the model's, 5).
    pub max_people: Option<usize>,
}

/// One landmark in the photo.
#[derive(Debug, Clone, PartialEq)]
pub struct Landmark {
    /// Its name, from [`LANDMARKS`].
    pub name: &'static str,
    /// Horizontal position in pixels.
    pub x: f32,
    /// Vertical position in pixels.
    pub y: f32,
    /// Depth relative to the hips, in the same pixel scale as `x` (smaller: nearer the camera).
    pub z: f32,
    /// How likely the point is visible (not hidden behind something), 0 to 1.
    pub visibility: f32,
    /// How likely the point is inside the photo at all, 0 to 1.
    pub presence: f32,
}

/// One person.
#[derive(Debug, Clone)]
pub struct Person {
    /// The detector's score, 0 to 1.
    pub score: f32,
    /// The landmark model's confidence that a person is there, 0 to 1.
    pub presence: f32,
    /// The box around the landmarks, in pixels: left, top, right, bottom (clamped to the photo).
    pub bbox: [f32; 4],
    /// The 33 landmarks, in [`LANDMARKS`] order.
    pub landmarks: Vec<Landmark>,
}

/// The people in one photo.
#[derive(Debug, Clone)]
pub struct Poses {
    /// The photo's width in pixels (after its EXIF orientation).
    pub width: u32,
    /// Its height.
    pub height: u32,
    /// The people, by detector score, highest first.
    pub people: Vec<Person>,
}

/// A photo ready for the detector.
#[derive(Debug)]
pub struct PoseJob {
    picture: Picture,
    detector_input: Vec<f32>,
    letterbox: Letterbox,
    max_people: usize,
}

/// Where the photo sits in the detector's square, in fractions of the square.
#[derive(Debug, Clone, Copy)]
struct Letterbox {
    /// The photo's share of the square's width and height.
    scale_x: f32,
    scale_y: f32,
    /// The padding before it, as a share of the square.
    pad_x: f32,
    pad_y: f32,
}

/// Decodes and letterboxes photos off the worker thread.
pub struct PoseFrontend {
    max_pixels: u64,
    max_people: usize,
}

impl Frontend for PoseFrontend {
    const TASK: Task = Task::Pose;
    type Request = PoseRequest;
    type Input = PoseJob;
    type Output = Poses;
    type Response = Poses;

    fn prepare(&self, request: PoseRequest) -> Result<Prepared<PoseJob>, TaskError> {
        let max_people = match request.max_people {
            Some(0) => {
                return Err(TaskError::InvalidInput(
                    "max_people must be at least 1".into(),
                ));
            }
            Some(n) => n,
            None => self.max_people,
        };
        let picture = decode(&request.image, self.max_pixels)?;
        let (detector_input, letterbox) = detector_input(&picture.rgb)?;
        Ok(Prepared {
            input: PoseJob {
                picture,
                detector_input,
                letterbox,
                max_people,
            },
            cost: DETECTOR_SIZE * DETECTOR_SIZE,
        })
    }

    fn finish(&self, output: Poses) -> Result<Poses, TaskError> {
        Ok(output)
    }
}

/// The photo letterboxed into the detector's square (black bars), NHWC, values −1 to 1.
fn detector_input(rgb: &RgbImage) -> Result<(Vec<f32>, Letterbox), TaskError> {
    let size = DETECTOR_SIZE as u32;
    let (canvas, placement) = letterbox(rgb, size, image::Rgb([0; 3]))?;
    let input = canvas
        .as_raw()
        .iter()
        .map(|&v| f32::from(v) / 127.5 - 1.0)
        .collect();
    let square = size as f32;
    let letterbox = Letterbox {
        scale_x: placement.width as f32 / square,
        scale_y: placement.height as f32 / square,
        pad_x: placement.left as f32 / square,
        pad_y: placement.top as f32 / square,
    };
    Ok((input, letterbox))
}

/// The detector's anchor centres, as fractions of its input: MediaPipe's SSD anchors with fixed
/// size for strides 8, 16, 32, 32, 32, two anchors a cell (aspect ratio 1 and the interpolated
/// scale), the three stride-32 layers sharing one grid.
fn anchors() -> Vec<(f32, f32)> {
    let mut centres = Vec::with_capacity(2254);
    // (stride, anchors per cell) after merging layers of equal stride.
    for (stride, per_cell) in [(8, 2), (16, 2), (32, 6)] {
        let cells = DETECTOR_SIZE.div_ceil(stride);
        for y in 0..cells {
            for x in 0..cells {
                let centre = (
                    (x as f32 + 0.5) / cells as f32,
                    (y as f32 + 0.5) / cells as f32,
                );
                centres.extend(std::iter::repeat_n(centre, per_cell));
            }
        }
    }
    centres
}

/// A person found by the detector, in fractions of the photo.
#[derive(Debug, Clone, Copy)]
struct Found {
    score: f32,
    /// Left, top, right, bottom.
    bbox: [f32; 4],
    keypoints: [(f32, f32); 4],
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// The anchors that clear `threshold`, decoded and taken out of the letterbox, best first.
fn decode_detections(
    boxes: &[f32],
    scores: &[f32],
    anchors: &[(f32, f32)],
    letterbox: Letterbox,
    threshold: f32,
) -> Vec<Found> {
    let size = DETECTOR_SIZE as f32;
    let unbox = |x: f32, y: f32| {
        (
            (x - letterbox.pad_x) / letterbox.scale_x,
            (y - letterbox.pad_y) / letterbox.scale_y,
        )
    };
    let mut found: Vec<Found> = anchors
        .iter()
        .enumerate()
        .filter_map(|(i, &(ax, ay))| {
            let score = sigmoid(scores[i].clamp(-100.0, 100.0));
            if score < threshold {
                return None;
            }
            let raw = &boxes[i * VALUES_PER_ANCHOR..(i + 1) * VALUES_PER_ANCHOR];
            let (cx, cy) = (raw[0] / size + ax, raw[1] / size + ay);
            let (w, h) = (raw[2] / size, raw[3] / size);
            let (x1, y1) = unbox(cx - w / 2.0, cy - h / 2.0);
            let (x2, y2) = unbox(cx + w / 2.0, cy + h / 2.0);
            let keypoints = std::array::from_fn(|k| {
                unbox(raw[4 + 2 * k] / size + ax, raw[5 + 2 * k] / size + ay)
            });
            Some(Found {
                score,
                bbox: [x1, y1, x2, y2],
                keypoints,
            })
        })
        .collect();
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    found
}

fn overlap(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = |r: &[f32; 4]| (r[2] - r[0]).max(0.0) * (r[3] - r[1]).max(0.0);
    let union = area(a) + area(b) - w * h;
    if union > 0.0 { w * h / union } else { 0.0 }
}

/// MediaPipe's weighted non-maximum suppression: the best detection and every one overlapping
/// it by more than `threshold` become one, their boxes and keypoints averaged by score; the
/// merged detection keeps the best score.
fn weighted_nms(mut remaining: Vec<Found>, threshold: f32) -> Vec<Found> {
    let mut merged = Vec::new();
    while let Some(best) = remaining.first().copied() {
        let (group, rest): (Vec<Found>, Vec<Found>) = remaining
            .into_iter()
            .partition(|d| overlap(&d.bbox, &best.bbox) > threshold);
        remaining = rest;
        let total: f32 = group.iter().map(|d| d.score).sum();
        let mut average = Found {
            score: best.score,
            bbox: [0.0; 4],
            keypoints: [(0.0, 0.0); 4],
        };
        for d in &group {
            let weight = d.score / total;
            for (sum, v) in average.bbox.iter_mut().zip(d.bbox) {
                *sum += v * weight;
            }
            for (sum, (x, y)) in average.keypoints.iter_mut().zip(d.keypoints) {
                sum.0 += x * weight;
                sum.1 += y * weight;
            }
        }
        merged.push(average);
    }
    merged
}

/// A square region of the photo, in pixels, turned by `rotation` radians.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Region {
    centre_x: f32,
    centre_y: f32,
    side: f32,
    rotation: f32,
}

impl Region {
    /// MediaPipe's pose region: centred on the hips (keypoint 0), twice the distance to
    /// keypoint 1 across, ×1.25, rotated so keypoint 1 is straight above the hips.
    fn around(found: &Found, width: u32, height: u32) -> Region {
        let (w, h) = (width as f32, height as f32);
        let (x0, y0) = (found.keypoints[0].0 * w, found.keypoints[0].1 * h);
        let (x1, y1) = (found.keypoints[1].0 * w, found.keypoints[1].1 * h);
        let side = 2.0 * ((x1 - x0).powi(2) + (y1 - y0).powi(2)).sqrt() * 1.25;
        let rotation = normalise_angle(PI / 2.0 - (-(y1 - y0)).atan2(x1 - x0));
        Region {
            centre_x: x0,
            centre_y: y0,
            side,
            rotation,
        }
    }

    /// The photo's point for (`u`, `v`), fractions of the region's upright square.
    fn to_photo(self, u: f32, v: f32) -> (f32, f32) {
        let (x, y) = (u - 0.5, v - 0.5);
        let (sin, cos) = self.rotation.sin_cos();
        (
            self.centre_x + (cos * x - sin * y) * self.side,
            self.centre_y + (sin * x + cos * y) * self.side,
        )
    }

    /// The region sampled upright into a `size` × `size` NHWC tensor, values 0 to 1; points
    /// outside the photo take its nearest edge (MediaPipe's replicate border).
    fn crop(self, rgb: &RgbImage, size: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(size * size * 3);
        let (width, height) = rgb.dimensions();
        let (raw, stride) = (rgb.as_raw(), width as usize * 3);
        let (last_x, last_y) = ((width - 1) as f32, (height - 1) as f32);
        for row in 0..size {
            for column in 0..size {
                let u = (column as f32 + 0.5) / size as f32;
                let v = (row as f32 + 0.5) / size as f32;
                // Pixel centres: the photo's pixel (i, j) covers i..i+1.
                let (x, y) = self.to_photo(u, v);
                let x = (x - 0.5).clamp(0.0, last_x);
                let y = (y - 0.5).clamp(0.0, last_y);
                let (x0, y0) = (x.floor() as usize, y.floor() as usize);
                let x1 = (x0 + 1).min(width as usize - 1);
                let y1 = (y0 + 1).min(height as usize - 1);
                let (fx, fy) = (x - x0 as f32, y - y0 as f32);
                let (top, bottom) = (y0 * stride, y1 * stride);
                for channel in 0..3 {
                    let at =
                        |line: usize, column: usize| f32::from(raw[line + column * 3 + channel]);
                    let upper = at(top, x0) * (1.0 - fx) + at(top, x1) * fx;
                    let lower = at(bottom, x0) * (1.0 - fx) + at(bottom, x1) * fx;
                    out.push((upper * (1.0 - fy) + lower * fy) / 255.0);
                }
            }
        }
        out
    }
}

/// An angle in −π..π.
fn normalise_angle(angle: f32) -> f32 {
    angle - 2.0 * PI * ((angle + PI) / (2.0 * PI)).floor()
}

/// Runs the detector and, for each person, the landmark model.
pub struct PoseRunner {
    detector: OnnxModel,
    detector_input: String,
    landmarker: OnnxModel,
    landmarker_input: String,
    anchors: Vec<(f32, f32)>,
    options: PoseOptions,
}

impl Runner for PoseRunner {
    type Input = PoseJob;
    type Output = Poses;

    fn run(
        &mut self,
        jobs: Vec<PoseJob>,
        cancelled: &Cancelled<'_>,
    ) -> Vec<Result<Poses, TaskError>> {
        each_job(jobs, cancelled, |job| self.poses(job))
    }
}

impl PoseRunner {
    fn poses(&mut self, job: PoseJob) -> Result<Poses, TaskError> {
        let (width, height) = job.picture.rgb.dimensions();
        let started = std::time::Instant::now();
        let outputs = self.detector.run(&[(
            self.detector_input.as_str(),
            TensorInput::new([1, DETECTOR_SIZE, DETECTOR_SIZE, 3], &job.detector_input),
        )])?;
        let (boxes, scores) = (outputs.at(0)?.f32()?, outputs.at(1)?.f32()?);
        let anchors = self.anchors.len();
        if boxes.len() != anchors * VALUES_PER_ANCHOR || scores.len() != anchors {
            return Err(TaskError::Inference(format!(
                "the pose detector answered {} box values and {} scores; {anchors} anchors were expected",
                boxes.len(),
                scores.len()
            )));
        }
        let found = decode_detections(
            boxes,
            scores,
            &self.anchors,
            job.letterbox,
            self.options.detection_threshold,
        );
        let detections = weighted_nms(found, self.options.nms_threshold);
        tracing::debug!(
            detector_ms = started.elapsed().as_secs_f64() * 1e3,
            detections = detections.len(),
            scores = ?detections.iter().map(|d| d.score).collect::<Vec<_>>(),
            "pose detector"
        );
        let mut people = Vec::new();
        for detection in detections {
            if people.len() == job.max_people {
                break;
            }
            let region = Region::around(&detection, width, height);
            if region.side < 1.0 {
                continue;
            }
            let started = std::time::Instant::now();
            let person = self.landmarks(&job.picture.rgb, region, detection.score)?;
            tracing::debug!(
                landmarks_ms = started.elapsed().as_secs_f64() * 1e3,
                found = person.is_some(),
                "pose landmarks"
            );
            people.extend(person);
        }
        Ok(Poses {
            width,
            height,
            people,
        })
    }

    /// The landmarks in `region`, or `None` when the model sees no person there.
    fn landmarks(
        &mut self,
        rgb: &RgbImage,
        region: Region,
        score: f32,
    ) -> Result<Option<Person>, TaskError> {
        let input = region.crop(rgb, LANDMARK_SIZE);
        let outputs = self.landmarker.run(&[(
            self.landmarker_input.as_str(),
            TensorInput::new([1, LANDMARK_SIZE, LANDMARK_SIZE, 3], &input),
        )])?;
        let values = outputs.at(0)?.f32()?;
        let presence =
            outputs.at(1)?.f32()?.first().copied().ok_or_else(|| {
                TaskError::Inference("the landmark model gave no pose flag".into())
            })?;
        if values.len() != MODEL_LANDMARKS * 5 {
            return Err(TaskError::Inference(format!(
                "the landmark model answered {} values; {} (39 landmarks × 5) were expected",
                values.len(),
                MODEL_LANDMARKS * 5
            )));
        }
        if presence < self.options.presence_threshold {
            return Ok(None);
        }
        let size = LANDMARK_SIZE as f32;
        let (width, height) = (rgb.width() as f32, rgb.height() as f32);
        let landmarks: Vec<Landmark> = LANDMARKS
            .iter()
            .zip(values.chunks_exact(5))
            .map(|(name, v)| {
                let (x, y) = region.to_photo(v[0] / size, v[1] / size);
                Landmark {
                    name,
                    x,
                    y,
                    z: v[2] / size * region.side,
                    visibility: sigmoid(v[3]),
                    presence: sigmoid(v[4]),
                }
            })
            .collect();
        let bbox = landmarks.iter().fold(
            [f32::MAX, f32::MAX, f32::MIN, f32::MIN],
            |[x1, y1, x2, y2], l| [x1.min(l.x), y1.min(l.y), x2.max(l.x), y2.max(l.y)],
        );
        let bbox = [
            bbox[0].clamp(0.0, width),
            bbox[1].clamp(0.0, height),
            bbox[2].clamp(0.0, width),
            bbox[3].clamp(0.0, height),
        ];
        Ok(Some(Person {
            score,
            presence,
            bbox,
            landmarks,
        }))
    }
}

fn load(model: &LocalModel, context: &LoadContext) -> Result<LoadedModel, TaskError> {
    let options: PoseOptions = model.options_as()?;
    // CPU work runs between the two graphs (anchors, NMS, the rotated crop): spinning intra-op
    // threads would hold the cores it needs (measured: 31-41 ms a photo spinning, 21-23 not).
    let session = SessionConfig {
        intra_op_spinning: false,
        ..context.session.clone()
    };
    let detector = OnnxModel::load(&model.file(&options.detector)?, &session)?;
    let landmarker = OnnxModel::load(&model.file(&options.landmarks)?, &session)?;
    let expect_input = |onnx: &OnnxModel, side: usize| -> Result<String, TaskError> {
        match onnx.inputs() {
            [input] if input.shape == [Some(1), Some(side), Some(side), Some(3)] => {
                Ok(input.name.clone())
            }
            inputs => Err(TaskError::ModelFile {
                path: onnx.path().to_path_buf(),
                message: format!(
                    "one input of shape [1, {side}, {side}, 3] was expected; the graph has {}",
                    inputs
                        .iter()
                        .map(|i| format!("{} {:?}", i.name, i.shape))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    };
    let detector_input = expect_input(&detector, DETECTOR_SIZE)?;
    let landmarker_input = expect_input(&landmarker, LANDMARK_SIZE)?;
    let device = detector.device();
    Ok(LoadedModel::new(
        PoseFrontend {
            max_pixels: context.limits.max_image_pixels,
            max_people: options.max_people.max(1),
        },
        PoseRunner {
            detector,
            detector_input,
            landmarker,
            landmarker_input,
            anchors: anchors(),
            options,
        },
        device,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_anchors_are_mediapipes_2254() {
        let anchors = anchors();
        assert_eq!(anchors.len(), 2254);
        assert_eq!(anchors[0], (0.5 / 28.0, 0.5 / 28.0));
        assert_eq!(anchors[1], anchors[0], "two anchors a cell");
        assert_eq!(anchors[2], (1.5 / 28.0, 0.5 / 28.0));
        assert_eq!(anchors[1568], (0.5 / 14.0, 0.5 / 14.0), "stride 16 begins");
        assert_eq!(anchors[2253], (6.5 / 7.0, 6.5 / 7.0));
    }

    #[test]
    fn an_upright_body_gives_an_unturned_region() {
        // Hips at (100, 200) in a 400 × 400 photo, the scale point 80 px straight above.
        let found = Found {
            score: 0.9,
            bbox: [0.0; 4],
            keypoints: [(0.25, 0.5), (0.25, 0.3), (0.0, 0.0), (0.0, 0.0)],
        };
        let region = Region::around(&found, 400, 400);
        assert!(region.rotation.abs() < 1e-6, "{region:?}");
        assert!((region.side - 200.0).abs() < 1e-3, "{region:?}");
        assert_eq!(region.to_photo(0.5, 0.5), (100.0, 200.0));
        // Lying down, head to the right: turned a quarter.
        let lying = Found {
            keypoints: [(0.25, 0.5), (0.45, 0.5), (0.0, 0.0), (0.0, 0.0)],
            ..found
        };
        let region = Region::around(&lying, 400, 400);
        assert!(
            (region.rotation.abs() - PI / 2.0).abs() < 1e-5,
            "{region:?}"
        );
        // The top of the upright square is towards the head.
        let (x, y) = region.to_photo(0.5, 0.0);
        assert!(
            (x - 200.0).abs() < 1e-3 && (y - 200.0).abs() < 1e-3,
            "({x}, {y})"
        );
    }

    #[test]
    fn overlapping_detections_merge_by_score() {
        let found = |score, x| Found {
            score,
            bbox: [x, 0.0, x + 1.0, 1.0],
            keypoints: [(x, 0.0); 4],
        };
        let merged = weighted_nms(
            vec![found(0.75, 0.0), found(0.25, 0.2), found(0.6, 5.0)],
            0.3,
        );
        assert_eq!(merged.len(), 2);
        assert_eq!(merged[0].score, 0.75);
        assert!((merged[0].bbox[0] - 0.05).abs() < 1e-6, "{:?}", merged[0]);
        assert_eq!(merged[1].bbox[0], 5.0);
    }

    #[test]
    fn angles_wrap_into_a_half_turn_either_way() {
        assert!((normalise_angle(3.0 * PI / 2.0) + PI / 2.0).abs() < 1e-6);
        assert!((normalise_angle(-3.0 * PI / 2.0) - PI / 2.0).abs() < 1e-6);
        assert_eq!(normalise_angle(0.5), 0.5);
    }
}
