//! Image classification with EfficientNet-Lite0 on candle: the most likely ImageNet classes of a
//! photo, with their probabilities.
//!
//! Pre-processing follows how the network was trained and evaluated (the catalog's options say
//! it): the short side is resized to `resize_short_side` (bicubic), the centre
//! `image_size` × `image_size` square is cut out, and each channel becomes `(value − mean) / std`
//! on the 0–255 scale. Several photos go through the network in one forward pass.

use image::imageops::{self, FilterType};
use serde::Deserialize;
use tessera_core::{EngineKind, Task};
use tessera_engines::candle::EfficientNetLite;
use tessera_hub::LocalModel;

use super::image::decode;
use crate::TaskError;
use crate::registry::{
    Batching, Cancelled, Family, Frontend, LoadContext, LoadedModel, Prepared, Runner, abandoned,
    file_bytes, path_mentions,
};

/// EfficientNet-Lite on candle.
pub static FAMILY: Family = Family {
    name: "efficientnet-lite-candle",
    task: Task::Classify,
    engine: EngineKind::Candle,
    batching: Batching::Pixels,
    recognises: |model| path_mentions(model, "efficientnet"),
    load,
    // The weights (twice while BatchNorm is folded) and the activations of a full batch.
    estimate_bytes: |model| file_bytes(model).saturating_mul(2) + 400_000_000,
};

/// Most images in one forward pass: bounds the activations (about 15 MB an image at 224 px).
const MAX_BATCH: usize = 16;
/// How many classes are answered when the request does not say.
pub const DEFAULT_TOP_K: usize = 5;

/// A photo to classify.
#[derive(Debug, Clone)]
pub struct ClassifyRequest {
    /// The image file's bytes (JPEG, PNG, WebP, BMP or GIF).
    pub image: Vec<u8>,
    /// How many of the most likely classes to answer (at least 1; more than the model has
    /// answers them all).
    pub top_k: usize,
}

/// A photo ready for the network.
#[derive(Debug)]
pub struct ClassifyJob {
    width: u32,
    height: u32,
    top_k: usize,
    /// The cropped, normalized photo, channels first.
    pixels: Vec<f32>,
}

/// The network's answer for one photo.
#[derive(Debug)]
pub struct ClassifyOutput {
    width: u32,
    height: u32,
    top_k: usize,
    logits: Vec<f32>,
}

/// One class and its probability.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassScore {
    /// The class's name (its first WordNet lemma for ImageNet, e.g. `tabby`).
    pub label: String,
    /// Its index among the model's classes.
    pub class_id: usize,
    /// Its softmax probability, 0 to 1.
    pub score: f32,
}

/// The most likely classes of one photo.
#[derive(Debug, Clone)]
pub struct Classification {
    /// The photo's width in pixels (after its EXIF orientation).
    pub width: u32,
    /// Its height.
    pub height: u32,
    /// The `top_k` most likely classes, most likely first.
    pub labels: Vec<ClassScore>,
}

/// The catalog options of a classifier.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    /// Only `efficientnet-lite0` today.
    #[serde(default = "default_architecture")]
    architecture: String,
    /// The network's square input, in pixels.
    #[serde(default = "default_image_size")]
    image_size: u32,
    /// The short side is resized to this before the centre crop.
    #[serde(default = "default_resize")]
    resize_short_side: u32,
    /// Per-channel mean and standard deviation, on the 0–255 scale.
    #[serde(default = "default_mean")]
    mean: [f32; 3],
    #[serde(default = "default_std")]
    std: [f32; 3],
    /// A file of one WordNet synset per line, in class order.
    synsets: Option<String>,
    /// A file of `synset<TAB>lemma, lemma, ...` lines naming the synsets.
    lemmas: Option<String>,
}

fn default_architecture() -> String {
    "efficientnet-lite0".into()
}
fn default_image_size() -> u32 {
    224
}
fn default_resize() -> u32 {
    256
}
fn default_mean() -> [f32; 3] {
    [127.0; 3]
}
fn default_std() -> [f32; 3] {
    [128.0; 3]
}

/// Decodes and crops photos off the worker thread; ranks the classes after it.
pub struct ClassifyFrontend {
    size: u32,
    resize_short_side: u32,
    mean: [f32; 3],
    std: [f32; 3],
    max_pixels: u64,
    labels: Vec<String>,
}

impl ClassifyFrontend {
    /// The names of the classes, in class order.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }
}

impl Frontend for ClassifyFrontend {
    const TASK: Task = Task::Classify;
    type Request = ClassifyRequest;
    type Input = ClassifyJob;
    type Output = ClassifyOutput;
    type Response = Classification;

    fn prepare(&self, request: ClassifyRequest) -> Result<Prepared<ClassifyJob>, TaskError> {
        if request.top_k == 0 {
            return Err(TaskError::InvalidParam {
                param: "top_k",
                message: "`top_k` is 0; ask for at least one class".into(),
            });
        }
        let picture = decode(&request.image, self.max_pixels)?;
        let (width, height) = picture.rgb.dimensions();
        let pixels = self.pixels(&picture.rgb);
        Ok(Prepared {
            input: ClassifyJob {
                width,
                height,
                top_k: request.top_k,
                pixels,
            },
            // The network's input pixels: the pixel budget (4 × 640²) gathers 32 at 224 px.
            cost: (self.size as usize) * (self.size as usize),
        })
    }

    fn finish(&self, output: ClassifyOutput) -> Result<Classification, TaskError> {
        if output.logits.len() != self.labels.len() {
            return Err(TaskError::Inference(format!(
                "the network scored {} classes; the model has {} labels",
                output.logits.len(),
                self.labels.len()
            )));
        }
        let labels = top_k(&softmax(&output.logits), output.top_k)
            .into_iter()
            .map(|(class_id, score)| ClassScore {
                label: self.labels[class_id].clone(),
                class_id,
                score,
            })
            .collect();
        Ok(Classification {
            width: output.width,
            height: output.height,
            labels,
        })
    }
}

impl ClassifyFrontend {
    /// The photo's short side resized, its centre cropped to the input size, normalized,
    /// channels first. The centre square is cut first and only it is resized: the same pixels,
    /// less work, and a bounded size whatever the photo's shape (a 1 × 40,000,000 photo resized
    /// whole would need gigabytes).
    fn pixels(&self, rgb: &image::RgbImage) -> Vec<f32> {
        let (width, height) = rgb.dimensions();
        let short = width.min(height).max(1);
        // Never smaller than the crop, whatever the options say.
        let target = self.resize_short_side.max(self.size);
        let side = (f64::from(short) * f64::from(self.size) / f64::from(target)).round() as u32;
        let side = side.clamp(1, short);
        let left = (width - side) / 2;
        let top = (height - side) / 2;
        let square = imageops::crop_imm(rgb, left, top, side, side).to_image();
        let crop = imageops::resize(&square, self.size, self.size, FilterType::CatmullRom);
        let plane = (self.size * self.size) as usize;
        let mut out = vec![0.0f32; 3 * plane];
        for (i, pixel) in crop.pixels().enumerate() {
            for channel in 0..3 {
                out[channel * plane + i] =
                    (f32::from(pixel.0[channel]) - self.mean[channel]) / self.std[channel];
            }
        }
        out
    }
}

/// Probabilities from logits, computed stably.
fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|v| (v - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|v| v / sum).collect()
}

/// The `k` highest scores with their indices, highest first; ties keep the lower index first.
fn top_k(scores: &[f32], k: usize) -> Vec<(usize, f32)> {
    let mut ranked: Vec<(usize, f32)> = scores.iter().copied().enumerate().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(k);
    ranked
}

/// Runs the network on batches of photos.
pub struct ClassifyRunner {
    model: EfficientNetLite,
    size: usize,
}

impl Runner for ClassifyRunner {
    type Input = ClassifyJob;
    type Output = ClassifyOutput;

    fn run(
        &mut self,
        jobs: Vec<ClassifyJob>,
        cancelled: &Cancelled<'_>,
    ) -> Vec<Result<ClassifyOutput, TaskError>> {
        let mut results: Vec<Option<Result<ClassifyOutput, TaskError>>> =
            jobs.iter().map(|_| None).collect();
        // Jobs whose callers left cost no compute.
        let live: Vec<(usize, ClassifyJob)> = jobs
            .into_iter()
            .enumerate()
            .filter(|(index, _)| {
                let gone = cancelled.job(*index);
                gone.then(|| results[*index] = Some(Err(abandoned())));
                !gone
            })
            .collect();
        let mut live = live.into_iter().peekable();
        while live.peek().is_some() {
            let chunk: Vec<(usize, ClassifyJob)> = live.by_ref().take(MAX_BATCH).collect();
            let answered = self.forward(&chunk);
            match answered {
                Ok(mut rows) => {
                    for (index, job) in chunk.into_iter().rev() {
                        let logits = rows.pop().unwrap_or_default();
                        results[index] = Some(Ok(ClassifyOutput {
                            width: job.width,
                            height: job.height,
                            top_k: job.top_k,
                            logits,
                        }));
                    }
                }
                Err(error) => {
                    let message = error.to_string();
                    for (index, _) in chunk {
                        results[index] = Some(Err(TaskError::Inference(message.clone())));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(TaskError::Internal("a job was not run".into()))))
            .collect()
    }
}

impl ClassifyRunner {
    /// One forward pass over `chunk`; the logits of each photo, in order.
    fn forward(&self, chunk: &[(usize, ClassifyJob)]) -> Result<Vec<Vec<f32>>, TaskError> {
        let mut pixels = Vec::with_capacity(chunk.len() * 3 * self.size * self.size);
        for (_, job) in chunk {
            pixels.extend_from_slice(&job.pixels);
        }
        let logits = self.model.forward(&pixels, chunk.len(), self.size)?;
        let classes = self.model.classes();
        Ok(logits.chunks_exact(classes).map(<[f32]>::to_vec).collect())
    }
}

/// The class names: each synset's first lemma, or `class N` where the model has no names.
fn read_labels(
    model: &LocalModel,
    options: &Options,
    classes: usize,
) -> Result<Vec<String>, TaskError> {
    let (Some(synsets), Some(lemmas)) = (&options.synsets, &options.lemmas) else {
        return Ok((0..classes).map(|i| format!("class {i}")).collect());
    };
    let read = |name: &str| -> Result<String, TaskError> {
        let path = model.file(name)?;
        std::fs::read_to_string(&path).map_err(|e| TaskError::ModelFile {
            path,
            message: format!("could not read the labels: {e}"),
        })
    };
    let synsets_text = read(synsets)?;
    let lemmas_text = read(lemmas)?;
    let names: std::collections::HashMap<&str, &str> = lemmas_text
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .collect();
    let order: Vec<&str> = synsets_text.split_whitespace().collect();
    let bad = |message: String| TaskError::ModelFile {
        path: model.dir.join(synsets),
        message,
    };
    if order.len() != classes {
        return Err(bad(format!(
            "{} synsets listed for a network of {classes} classes",
            order.len()
        )));
    }
    order
        .iter()
        .map(|synset| {
            names
                .get(synset)
                .and_then(|lemmas| lemmas.split(',').next())
                .map(|first| first.trim().to_string())
                .ok_or_else(|| bad(format!("synset {synset} has no name in {lemmas}")))
        })
        .collect()
}

fn load(model: &LocalModel, context: &LoadContext) -> Result<LoadedModel, TaskError> {
    let options: Options = model.options_as()?;
    if options.architecture != "efficientnet-lite0" {
        return Err(TaskError::Unsupported(format!(
            "model `{}`: classifier architecture `{}`; this tessera runs efficientnet-lite0",
            model.id, options.architecture
        )));
    }
    let weights = model.file_with_extension("safetensors")?;
    let network = EfficientNetLite::load(&weights, context.session.device)?;
    let labels = read_labels(model, &options, network.classes())?;
    let device = network.device();
    let size = options.image_size.max(32);
    Ok(LoadedModel::new(
        ClassifyFrontend {
            size,
            resize_short_side: options.resize_short_side,
            mean: options.mean,
            std: options.std.map(|s| if s == 0.0 { 1.0 } else { s }),
            max_pixels: context.limits.max_image_pixels,
            labels,
        },
        ClassifyRunner {
            model: network,
            size: size as usize,
        },
        device,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_and_top_k_rank_the_classes() {
        let probs = softmax(&[1.0, 3.0, 2.0, 3.0]);
        assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let top = top_k(&probs, 3);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), [1, 3, 2]);
        assert!((top[0].1 - top[1].1).abs() < 1e-7);
        assert_eq!(top_k(&probs, 10).len(), 4);
        // Huge logits do not overflow.
        let big = softmax(&[1000.0, 0.0]);
        assert!((big[0] - 1.0).abs() < 1e-6 && big[1] >= 0.0);
    }

    #[test]
    fn the_crop_is_the_centre_of_the_resized_short_side() {
        let frontend = ClassifyFrontend {
            size: 4,
            resize_short_side: 4,
            mean: [0.0; 3],
            std: [1.0; 3],
            max_pixels: 1 << 20,
            labels: Vec::new(),
        };
        // 12 × 4: the short side is already 4, so the crop is columns 4..8, marked red.
        let rgb = image::RgbImage::from_fn(12, 4, |x, _| {
            image::Rgb(if (4..8).contains(&x) {
                [255, 0, 0]
            } else {
                [0, 0, 255]
            })
        });
        let pixels = frontend.pixels(&rgb);
        assert_eq!(pixels.len(), 3 * 16);
        assert!(pixels[..16].iter().all(|&v| v == 255.0), "{pixels:?}");
        assert!(pixels[32..].iter().all(|&v| v == 0.0), "{pixels:?}");

        // A photo one pixel wide and very tall costs no more than any other.
        let thin = image::RgbImage::from_pixel(1, 100_000, image::Rgb([9, 9, 9]));
        let pixels = frontend.pixels(&thin);
        assert_eq!(pixels.len(), 3 * 16);
        assert!(pixels.iter().all(|&v| v == 9.0), "{pixels:?}");
    }
}
