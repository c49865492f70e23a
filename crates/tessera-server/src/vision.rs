//! The vision routes. Each takes images either as a multipart upload (one or more fields named
//! `image`, plus text fields) or as JSON (`image`: base64 or a `data:` URL, or `images`: several).

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tessera_runtime::RuntimeError;
use tessera_tasks::vision::ocr::{OcrFrontend, OcrRequest};
use tessera_tasks::vision::segment::{SegmentFrontend, SegmentRequest};
use utoipa::ToSchema;

use crate::extract::ApiJson;
use crate::metrics_layer::ModelLabel;
use crate::{ApiError, AppState};

/// The most images one request may carry.
const MAX_IMAGES: usize = 16;

/// Images and the model, however they were sent.
struct ImagesIn {
    model: Option<String>,
    images: Vec<Vec<u8>>,
}

/// A vision request as JSON.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct VisionJson {
    /// A catalog id (see `GET /v1/models`); each route has a default.
    #[schema(example = "isnet-general-small")]
    model: Option<String>,
    /// One image: base64, or a `data:image/...;base64,` URL.
    image: Option<String>,
    /// Several images, each as `image` takes it; answered in order.
    images: Option<Vec<String>>,
}

/// A vision request as a multipart form.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the multipart fields; `read_images` reads them
pub(crate) struct VisionForm {
    /// The image: JPEG, PNG, WebP, BMP or GIF (its first frame). Repeat the field for several.
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
    /// A catalog id; each route has a default.
    model: Option<String>,
}

/// Reads the images of a multipart or JSON request.
async fn read_images(request: Request, state: &AppState) -> Result<ImagesIn, ApiError> {
    let multipart = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let found = if multipart {
        let mut form = Multipart::from_request(request, state).await?;
        let mut found = ImagesIn {
            model: None,
            images: Vec::new(),
        };
        while let Some(field) = form.next_field().await? {
            match field.name().unwrap_or_default() {
                "image" | "file" => found.images.push(field.bytes().await?.to_vec()),
                "model" => {
                    found.model = Some(field.text().await.map_err(|_| {
                        ApiError::bad_request("the form field `model` is not UTF-8 text")
                    })?)
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown form field `{other}`; send `image` (repeatable) and `model`"
                    )));
                }
            }
        }
        found
    } else {
        let ApiJson(body) = ApiJson::<VisionJson>::from_request(request, state).await?;
        let texts = match (body.image, body.images) {
            (Some(one), None) => vec![one],
            (None, Some(many)) => many,
            (Some(_), Some(_)) => {
                return Err(
                    ApiError::bad_request("send `image` or `images`, not both").param("images")
                );
            }
            (None, None) => Vec::new(),
        };
        let several = texts.len() > 1;
        let images = texts
            .iter()
            .enumerate()
            .map(|(i, text)| {
                decode_base64(text).map_err(|e| match several {
                    true => e.param("images").about_input(i),
                    false => e.param("image"),
                })
            })
            .collect::<Result<_, _>>()?;
        ImagesIn {
            model: body.model,
            images,
        }
    };
    if found.images.is_empty() {
        return Err(ApiError::bad_request(
            "no image: send it as a multipart field named `image` (curl: -F image=@photo.jpg) or as base64 in JSON `image`",
        )
        .param("image"));
    }
    if found.images.len() > MAX_IMAGES {
        return Err(ApiError::bad_request(format!(
            "{} images in one request; send at most {MAX_IMAGES}",
            found.images.len()
        ))
        .param("images"));
    }
    Ok(found)
}

/// The bytes of a base64 image or `data:` URL.
fn decode_base64(text: &str) -> Result<Vec<u8>, ApiError> {
    let payload = match text.strip_prefix("data:") {
        Some(url) => match url.split_once(";base64,") {
            Some((_, data)) => data,
            None => {
                return Err(ApiError::bad_request(
                    "a data URL must be base64: `data:image/png;base64,...`",
                ));
            }
        },
        None => text,
    };
    let payload: String = payload
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(payload.as_bytes())
        .map_err(|e| ApiError::bad_request(format!("the image is not valid base64: {e}")))
}

/// A problem with an image names the `image` field.
fn blame_the_image(error: RuntimeError) -> ApiError {
    let image = matches!(error, RuntimeError::InvalidInput(_));
    let error = ApiError::from(error);
    if image { error.param("image") } else { error }
}

/// One image's foreground.
#[derive(Serialize, ToSchema)]
pub(crate) struct SegmentationOut {
    /// The image's place in the request, from 0.
    index: usize,
    /// Its width in pixels (after its EXIF orientation).
    width: u32,
    /// Its height in pixels.
    height: u32,
    /// The share of pixels in the foreground, 0 to 1.
    foreground: f32,
    /// The mask, an 8-bit grey PNG (white: foreground), in base64.
    mask: String,
    /// The image with the mask as its alpha channel, an RGBA PNG, in base64.
    cutout: String,
}

/// The foreground of each image.
#[derive(Serialize, ToSchema)]
pub(crate) struct SegmentResponse {
    /// Always `list`.
    object: &'static str,
    /// The model that segmented.
    model: String,
    /// One entry per image, in order.
    data: Vec<SegmentationOut>,
}

/// The model `/v1/vision/segment` uses when the request names none.
const SEGMENT_MODEL: &str = "isnet-general-small";

/// Cut the foreground out of images (background removal).
#[utoipa::path(
    post,
    path = "/v1/vision/segment",
    tag = "vision",
    request_body(content(
        (VisionForm = "multipart/form-data"),
        (VisionJson = "application/json"),
    )),
    operation_id = "segmentImage",
    responses(
        (status = 200, description = "A mask and a cut-out per image", body = SegmentResponse),
        crate::openapi::ModelErrors,
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn segment(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let found = read_images(request, &state).await?;
    let model = found.model.unwrap_or_else(|| SEGMENT_MODEL.to_string());
    let several = found.images.len() > 1;
    let runs = found.images.into_iter().map(|image| {
        state
            .runtime
            .run::<SegmentFrontend>(&model, SegmentRequest { image })
    });
    let results = futures_util::future::join_all(runs).await;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut data = Vec::with_capacity(results.len());
    for (index, result) in results.into_iter().enumerate() {
        let found = result.map_err(|e| match several {
            true => blame_the_image(e).about_input(index),
            false => blame_the_image(e),
        })?;
        data.push(SegmentationOut {
            index,
            width: found.width,
            height: found.height,
            foreground: found.foreground,
            mask: engine.encode(&found.mask_png),
            cutout: engine.encode(&found.cutout_png),
        });
    }
    let mut response = axum::Json(SegmentResponse {
        object: "list",
        model: model.clone(),
        data,
    })
    .into_response();
    response.extensions_mut().insert(ModelLabel(model));
    Ok(response)
}

/// One line of text.
#[derive(Serialize, ToSchema)]
pub(crate) struct TextLineOut {
    /// What it says.
    #[schema(example = "Invoice 2024-117")]
    text: String,
    /// The recognizer's mean probability over the line's characters, 0 to 1.
    #[schema(example = 0.987)]
    confidence: f32,
    /// Its box in the image's pixels: top-left, top-right, bottom-right, bottom-left, each
    /// `[x, y]`.
    #[schema(example = json!([[12.0, 8.0], [212.0, 8.0], [212.0, 40.0], [12.0, 40.0]]))]
    r#box: [[f32; 2]; 4],
}

/// One image's text.
#[derive(Serialize, ToSchema)]
pub(crate) struct ReadingOut {
    /// The image's place in the request, from 0.
    index: usize,
    /// Its width in pixels (after its EXIF orientation).
    width: u32,
    /// Its height in pixels.
    height: u32,
    /// The lines' texts joined by newlines, in reading order.
    text: String,
    /// The lines in reading order: top to bottom, left to right.
    lines: Vec<TextLineOut>,
}

/// The text of each image.
#[derive(Serialize, ToSchema)]
pub(crate) struct OcrResponse {
    /// Always `list`.
    object: &'static str,
    /// The model that read.
    model: String,
    /// One entry per image, in order.
    data: Vec<ReadingOut>,
}

/// The model `/v1/vision/ocr` uses when the request names none.
const OCR_MODEL: &str = "pp-ocrv4";

/// Read the text in images (OCR): lines in reading order, each with its text, confidence and box.
#[utoipa::path(
    post,
    path = "/v1/vision/ocr",
    tag = "vision",
    request_body(content(
        (VisionForm = "multipart/form-data"),
        (VisionJson = "application/json"),
    )),
    operation_id = "readText",
    responses(
        (status = 200, description = "The lines of text in each image", body = OcrResponse),
        crate::openapi::ModelErrors,
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn ocr(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let found = read_images(request, &state).await?;
    let model = found.model.unwrap_or_else(|| OCR_MODEL.to_string());
    let several = found.images.len() > 1;
    let runs = found.images.into_iter().map(|image| {
        state
            .runtime
            .run::<OcrFrontend>(&model, OcrRequest { image })
    });
    let results = futures_util::future::join_all(runs).await;
    let mut data = Vec::with_capacity(results.len());
    for (index, result) in results.into_iter().enumerate() {
        let reading = result.map_err(|e| match several {
            true => blame_the_image(e).about_input(index),
            false => blame_the_image(e),
        })?;
        data.push(ReadingOut {
            index,
            width: reading.width,
            height: reading.height,
            text: reading.text(),
            lines: reading
                .lines
                .into_iter()
                .map(|line| TextLineOut {
                    text: line.text,
                    confidence: line.confidence,
                    r#box: line.corners,
                })
                .collect(),
        });
    }
    let mut response = axum::Json(OcrResponse {
        object: "list",
        model: model.clone(),
        data,
    })
    .into_response();
    response.extensions_mut().insert(ModelLabel(model));
    Ok(response)
}
