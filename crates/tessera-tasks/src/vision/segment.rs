//! Foreground segmentation (background removal) with IS-Net on ONNX Runtime: a mask of what
//! stands in front, and the photo cut out along it.
//!
//! Pre- and post-processing follow IMG.LY's reference (`@imgly/background-removal`): the photo
//! is resized to the graph's square input (1024 × 1024) bilinearly, each channel becomes
//! `(value − 128) / 256`, and the graph's one-channel output (0 to 1) is scaled to 0–255 and
//! resized back to the photo's size.

use image::{GrayImage, RgbaImage};
use tessera_core::{EngineKind, Task};
use tessera_engines::onnx::{ElementType, OnnxModel, TensorInput};
use tessera_hub::LocalModel;

use super::image::{Picture, decode, png, resize};
use crate::TaskError;
use crate::registry::{
    Batching, Cancelled, Family, Frontend, LoadContext, LoadedModel, Prepared, Runner, each_job,
    file_bytes, path_mentions,
};

/// IS-Net on ONNX Runtime.
pub static FAMILY: Family = Family {
    name: "isnet-onnx",
    task: Task::Segment,
    engine: EngineKind::Onnx,
    batching: Batching::Single,
    recognises: |model| path_mentions(model, "isnet"),
    load,
    // The weights, and the activations of a 1024 × 1024 pass (about 700 MB at its peak).
    estimate_bytes: |model| file_bytes(model).saturating_mul(2) + 700_000_000,
};

/// A photo to segment.
#[derive(Debug, Clone)]
pub struct SegmentRequest {
    /// The image file's bytes (JPEG, PNG, WebP, BMP or GIF).
    pub image: Vec<u8>,
}

/// A photo ready for the graph.
#[derive(Debug)]
pub struct SegmentJob {
    picture: Picture,
    /// The resized, normalised photo, channels first.
    input: Vec<f32>,
}

/// The graph's answer for one photo, at the graph's size.
#[derive(Debug)]
pub struct SegmentOutput {
    picture: Picture,
    mask: GrayImage,
}

/// The foreground of one photo.
#[derive(Debug, Clone)]
pub struct Segmentation {
    /// The photo's width in pixels (after its EXIF orientation).
    pub width: u32,
    /// Its height.
    pub height: u32,
    /// The share of pixels the mask holds (at least half opaque), 0 to 1.
    pub foreground: f32,
    /// The mask, one 8-bit channel at the photo's size: 255 foreground, 0 background.
    pub mask: GrayImage,
    /// The mask as a PNG.
    pub mask_png: Vec<u8>,
    /// The photo with the mask as its alpha channel, as an RGBA PNG.
    pub cutout_png: Vec<u8>,
}

/// Decodes and resizes photos off the worker thread; encodes the PNGs after it.
pub struct SegmentFrontend {
    size: u32,
    max_pixels: u64,
}

impl Frontend for SegmentFrontend {
    const TASK: Task = Task::Segment;
    type Request = SegmentRequest;
    type Input = SegmentJob;
    type Output = SegmentOutput;
    type Response = Segmentation;

    fn prepare(&self, request: SegmentRequest) -> Result<Prepared<SegmentJob>, TaskError> {
        let picture = decode(&request.image, self.max_pixels)?;
        let input = normalise(&picture, self.size)?;
        let (width, height) = picture.rgb.dimensions();
        Ok(Prepared {
            input: SegmentJob { picture, input },
            cost: (width as usize) * (height as usize),
        })
    }

    fn finish(&self, output: SegmentOutput) -> Result<Segmentation, TaskError> {
        let SegmentOutput { picture, mask } = output;
        let (width, height) = picture.rgb.dimensions();
        let mask = resize(&mask, width, height)?;
        let held = mask.pixels().filter(|p| p.0[0] >= 128).count();
        let mut cutout = RgbaImage::new(width, height);
        for ((out, rgb), alpha) in cutout
            .pixels_mut()
            .zip(picture.rgb.pixels())
            .zip(mask.pixels())
        {
            *out = image::Rgba([rgb.0[0], rgb.0[1], rgb.0[2], alpha.0[0]]);
        }
        Ok(Segmentation {
            width,
            height,
            foreground: held as f32 / (width as f32 * height as f32),
            mask_png: png(&mask)?,
            cutout_png: png(&cutout)?,
            mask,
        })
    }
}

/// The photo resized to `size` × `size`, channels first, each value `(v − 128) / 256`.
fn normalise(picture: &Picture, size: u32) -> Result<Vec<f32>, TaskError> {
    let resized = resize(&picture.rgb, size, size)?;
    let plane = (size * size) as usize;
    let mut input = vec![0.0f32; 3 * plane];
    for (i, pixel) in resized.pixels().enumerate() {
        for channel in 0..3 {
            input[channel * plane + i] = (f32::from(pixel.0[channel]) - 128.0) / 256.0;
        }
    }
    Ok(input)
}

/// Runs the graph, one photo per call.
pub struct SegmentRunner {
    model: OnnxModel,
    input: String,
    size: u32,
}

impl Runner for SegmentRunner {
    type Input = SegmentJob;
    type Output = SegmentOutput;

    fn run(
        &mut self,
        jobs: Vec<SegmentJob>,
        cancelled: &Cancelled<'_>,
    ) -> Vec<Result<SegmentOutput, TaskError>> {
        each_job(jobs, cancelled, |job| self.mask(job))
    }
}

impl SegmentRunner {
    fn mask(&mut self, job: SegmentJob) -> Result<SegmentOutput, TaskError> {
        let size = self.size as usize;
        let outputs = self.model.run(&[(
            self.input.as_str(),
            TensorInput::new([1, 3, size, size], &job.input),
        )])?;
        let output = outputs.at(0)?;
        let values = output.f32()?;
        if values.len() != size * size {
            return Err(TaskError::Inference(format!(
                "the segmentation graph answered {:?}; a [1, 1, {size}, {size}] mask was expected",
                output.shape()
            )));
        }
        let pixels = values
            .iter()
            .map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8)
            .collect();
        let mask = GrayImage::from_raw(self.size, self.size, pixels)
            .ok_or_else(|| TaskError::Internal("a mask of the wrong length".into()))?;
        Ok(SegmentOutput {
            picture: job.picture,
            mask,
        })
    }
}

fn load(model: &LocalModel, context: &LoadContext) -> Result<LoadedModel, TaskError> {
    let path = model.file_with_extension("onnx")?;
    let onnx = OnnxModel::load(&path, &context.session)?;
    let not_isnet = |message: String| TaskError::ModelFile {
        path: path.clone(),
        message,
    };
    let [input] = onnx.inputs() else {
        return Err(not_isnet(format!(
            "a segmentation graph takes one image; this one has {} inputs",
            onnx.inputs().len()
        )));
    };
    if input.element_type != ElementType::F32 {
        return Err(not_isnet(format!(
            "its input `{}` is {}; only float32 inputs are fed here (the float16 IS-Net is not run yet)",
            input.name,
            input.element_type.as_str()
        )));
    }
    let size = match input.shape.as_slice() {
        [_, Some(3), Some(h), Some(w)] if h == w => *h as u32,
        [_, Some(3), None, None] => 1024,
        shape => {
            return Err(not_isnet(format!(
                "its input `{}` has shape {shape:?}; [batch, 3, size, size] was expected",
                input.name
            )));
        }
    };
    let name = input.name.clone();
    let device = onnx.device();
    Ok(LoadedModel::new(
        SegmentFrontend {
            size,
            max_pixels: context.limits.max_image_pixels,
        },
        SegmentRunner {
            model: onnx,
            input: name,
            size,
        },
        device,
    ))
}
