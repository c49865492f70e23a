//! The vision routes. Each takes images either as a multipart upload (one or more fields named
//! `image`, plus text fields) or as JSON (`image`: base64 or a `data:` URL, or `images`: several),
//! with the route's own settings beside them (text fields, or JSON members).

use std::str::FromStr;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tessera_runtime::RuntimeError;
use tessera_tasks::Frontend;
use tessera_tasks::vision::classify::{ClassifyFrontend, ClassifyRequest, DEFAULT_TOP_K};
use tessera_tasks::vision::detect::{DetectFrontend, DetectRequest, Detections};
use tessera_tasks::vision::ocr::{OcrFrontend, OcrRequest};
use tessera_tasks::vision::pose::{PoseFrontend, PoseRequest, Poses};
use tessera_tasks::vision::segment::{SegmentFrontend, SegmentRequest};
use utoipa::ToSchema;

use crate::extract::ApiJson;
use crate::metrics_layer::ModelLabel;
use crate::{ApiError, AppState};

/// The most images one request may carry.
const MAX_IMAGES: usize = 16;

/// Images, the model and the route's settings, however they were sent.
struct ImagesIn<P> {
    model: Option<String>,
    images: Vec<Vec<u8>>,
    params: P,
}

/// The settings a route takes beside its images: JSON members (flattened into the body) or
/// multipart text fields of the same names.
trait RouteParams: DeserializeOwned + Default + Send {
    /// The settings' names, beside `image`, `images` and `model`.
    const FIELDS: &'static [&'static str];

    /// Takes the multipart text field `name`; `Ok(false)` when the route has no such setting.
    fn set_field(&mut self, name: &str, value: &str) -> Result<bool, ApiError>;
}

/// A route with no settings beside its images.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct NoParams {}

impl RouteParams for NoParams {
    const FIELDS: &'static [&'static str] = &[];

    fn set_field(&mut self, _name: &str, _value: &str) -> Result<bool, ApiError> {
        Ok(false)
    }
}

/// A multipart text field read as a number.
fn form_number<T: FromStr>(name: &'static str, value: &str) -> Result<T, ApiError> {
    value.trim().parse().map_err(|_| {
        ApiError::bad_request(format!(
            "the form field `{name}` must be a number, not `{value}`"
        ))
        .param(name)
    })
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

/// A vision request as JSON: the images, and the route's settings beside them.
#[derive(Deserialize, ToSchema)]
pub(crate) struct JsonIn<P> {
    #[serde(flatten)]
    images: VisionJson,
    #[serde(flatten)]
    params: P,
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
async fn read_images<P: RouteParams>(
    request: Request,
    state: &AppState,
) -> Result<ImagesIn<P>, ApiError> {
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
            params: P::default(),
        };
        while let Some(field) = form.next_field().await? {
            let name = field.name().unwrap_or_default().to_string();
            if name == "image" || name == "file" {
                found.images.push(field.bytes().await?.to_vec());
                continue;
            }
            let text = field.text().await.map_err(|_| {
                ApiError::bad_request(format!("the form field `{name}` is not UTF-8 text"))
            })?;
            if name == "model" {
                found.model = Some(text);
            } else if !found.params.set_field(&name, &text)? {
                return Err(ApiError::bad_request(format!(
                    "unknown form field `{name}`; {}",
                    route_reads::<P>("`image` (repeatable)")
                )));
            }
        }
        found
    } else {
        let ApiJson(value) = ApiJson::<serde_json::Value>::from_request(request, state).await?;
        let serde_json::Value::Object(members) = &value else {
            return Err(ApiError::bad_request(format!(
                "the body is {}; send a JSON object with `image` or `images`",
                crate::extract::kind(&value)
            )));
        };
        let known = ["image", "images", "model"];
        if let Some(unknown) = members
            .keys()
            .find(|k| !known.contains(&k.as_str()) && !P::FIELDS.contains(&k.as_str()))
        {
            return Err(ApiError::bad_request(format!(
                "unknown member `{unknown}`; {}",
                route_reads::<P>("`image` or `images`")
            )));
        }
        let JsonIn {
            images: body,
            params,
        } = serde_json::from_value::<JsonIn<P>>(value)
            .map_err(|e| ApiError::bad_request(format!("the JSON body does not fit: {e}")))?;
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
            params,
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

/// What a route reads, for the message that refuses anything else.
fn route_reads<P: RouteParams>(images: &str) -> String {
    let mut names: Vec<String> = vec![images.to_string(), "`model`".to_string()];
    names.extend(P::FIELDS.iter().map(|f| format!("`{f}`")));
    format!("this route reads {}", names.join(", "))
}

/// A `top_k` form field: a whole number of at least 1.
fn parse_top_k(text: &str) -> Result<usize, ApiError> {
    match text.trim().parse::<usize>() {
        Ok(k) if k >= 1 => Ok(k),
        _ => Err(ApiError::bad_request(format!(
            "`top_k` is {text:?}; send a whole number of at least 1"
        ))
        .param("top_k")),
    }
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
        (JsonIn<NoParams> = "application/json"),
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
    let found = read_images::<NoParams>(request, &state).await?;
    let model = found.model.unwrap_or_else(|| SEGMENT_MODEL.to_string());
    let requests = found
        .images
        .into_iter()
        .map(|image| SegmentRequest { image });
    let results = run_each::<SegmentFrontend>(&state, &model, requests).await?;
    let engine = base64::engine::general_purpose::STANDARD;
    let data = results
        .into_iter()
        .enumerate()
        .map(|(index, found)| SegmentationOut {
            index,
            width: found.width,
            height: found.height,
            foreground: found.foreground,
            mask: engine.encode(&found.mask_png),
            cutout: engine.encode(&found.cutout_png),
        })
        .collect();
    let body = SegmentResponse {
        object: "list",
        model: model.clone(),
        data,
    };
    Ok(labelled(model, body))
}

/// Runs one request per image on `model`, concurrently (the worker batches what the family can);
/// the answers in order, or the first error, naming its image when there are several.
async fn run_each<F: Frontend>(
    state: &AppState,
    model: &str,
    requests: impl Iterator<Item = F::Request>,
) -> Result<Vec<F::Response>, ApiError> {
    let runs: Vec<_> = requests
        .map(|request| state.runtime.run::<F>(model, request))
        .collect();
    let several = runs.len() > 1;
    let results = futures_util::future::join_all(runs).await;
    results
        .into_iter()
        .enumerate()
        .map(|(index, result)| {
            result.map_err(|e| match several {
                true => blame_the_image(e).about_input(index),
                false => blame_the_image(e),
            })
        })
        .collect()
}

/// The JSON answer, labelled with its model for the metrics.
fn labelled(model: String, body: impl Serialize) -> Response {
    let mut response = axum::Json(body).into_response();
    response.extensions_mut().insert(ModelLabel(model));
    response
}

/// Detection settings beside the images; each defaults to the model's catalog options.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct DetectParams {
    /// The confidence a box needs, 0 to 1 (default: the model's, 0.2 for the NudeNet detector).
    #[schema(example = 0.25)]
    confidence: Option<f32>,
    /// Boxes of one class overlapping more than this (intersection over union, 0 to 1) keep
    /// only the most confident (default: the model's, usually 0.45).
    #[schema(example = 0.45)]
    iou: Option<f32>,
    /// The most boxes per image (default 300).
    max_detections: Option<usize>,
}

impl RouteParams for DetectParams {
    const FIELDS: &'static [&'static str] = &["confidence", "iou", "max_detections"];

    fn set_field(&mut self, name: &str, value: &str) -> Result<bool, ApiError> {
        match name {
            "confidence" => self.confidence = Some(form_number("confidence", value)?),
            "iou" => self.iou = Some(form_number("iou", value)?),
            "max_detections" => self.max_detections = Some(form_number("max_detections", value)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A detection request as a multipart form.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the multipart fields; `read_images` reads them
pub(crate) struct DetectForm {
    /// The image: JPEG, PNG, WebP, BMP or GIF (its first frame). Repeat the field for several.
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
    /// A catalog id (default `yolov8n-320-nudenet`).
    model: Option<String>,
    /// The confidence a box needs, 0 to 1.
    confidence: Option<f32>,
    /// The overlap above which the weaker of two boxes of one class is dropped, 0 to 1.
    iou: Option<f32>,
    /// The most boxes per image.
    max_detections: Option<usize>,
}

/// A box in the image's pixels (after its EXIF orientation).
#[derive(Serialize, ToSchema)]
pub(crate) struct BoxOut {
    /// Left edge.
    x1: f32,
    /// Top edge.
    y1: f32,
    /// Right edge.
    x2: f32,
    /// Bottom edge.
    y2: f32,
}

/// One object found.
#[derive(Serialize, ToSchema)]
pub(crate) struct ObjectOut {
    /// The class name, from the model.
    #[schema(example = "FACE_FEMALE")]
    label: String,
    /// The class index in the model's output.
    class_id: usize,
    /// The class score, 0 to 1.
    confidence: f32,
    /// Where it is.
    #[serde(rename = "box")]
    bbox: BoxOut,
}

/// The objects found in one image.
#[derive(Serialize, ToSchema)]
pub(crate) struct DetectionsOut {
    /// The image's place in the request, from 0.
    index: usize,
    /// Its width in pixels (after its EXIF orientation).
    width: u32,
    /// Its height in pixels.
    height: u32,
    /// The objects, most confident first.
    objects: Vec<ObjectOut>,
}

/// The objects found in each image.
#[derive(Serialize, ToSchema)]
pub(crate) struct DetectResponse {
    /// Always `list`.
    object: &'static str,
    /// The model that detected.
    model: String,
    /// One entry per image, in order.
    data: Vec<DetectionsOut>,
}

/// The model `/v1/vision/detect` uses when the request names none.
const DETECT_MODEL: &str = "yolov8n-320-nudenet";

/// Find objects in images: boxes, class names and confidences.
#[utoipa::path(
    post,
    path = "/v1/vision/detect",
    tag = "vision",
    request_body(content(
        (DetectForm = "multipart/form-data"),
        (JsonIn<DetectParams> = "application/json"),
    )),
    operation_id = "detectObjects",
    responses(
        (status = 200, description = "The objects found in each image", body = DetectResponse),
        crate::openapi::ModelErrors,
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn detect(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let found = read_images::<DetectParams>(request, &state).await?;
    let model = found.model.unwrap_or_else(|| DETECT_MODEL.to_string());
    let params = found.params;
    let requests = found.images.into_iter().map(|image| DetectRequest {
        image,
        confidence: params.confidence,
        iou: params.iou,
        max_detections: params.max_detections,
    });
    let results = run_each::<DetectFrontend>(&state, &model, requests).await?;
    let data = results
        .into_iter()
        .enumerate()
        .map(|(index, found)| detections_out(index, found))
        .collect();
    let body = DetectResponse {
        object: "list",
        model: model.clone(),
        data,
    };
    Ok(labelled(model, body))
}

fn detections_out(index: usize, found: Detections) -> DetectionsOut {
    DetectionsOut {
        index,
        width: found.width,
        height: found.height,
        objects: found
            .objects
            .into_iter()
            .map(|object| ObjectOut {
                label: object.label,
                class_id: object.class_id,
                confidence: object.confidence,
                bbox: BoxOut {
                    x1: object.bbox.x1,
                    y1: object.bbox.y1,
                    x2: object.bbox.x2,
                    y2: object.bbox.y2,
                },
            })
            .collect(),
    }
}

/// Pose settings beside the images.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct PoseParams {
    /// The most people per image (default 5).
    #[schema(example = 2)]
    max_people: Option<usize>,
}

impl RouteParams for PoseParams {
    const FIELDS: &'static [&'static str] = &["max_people"];

    fn set_field(&mut self, name: &str, value: &str) -> Result<bool, ApiError> {
        match name {
            "max_people" => self.max_people = Some(form_number("max_people", value)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A pose request as a multipart form.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the multipart fields; `read_images` reads them
pub(crate) struct PoseForm {
    /// The image: JPEG, PNG, WebP, BMP or GIF (its first frame). Repeat the field for several.
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
    /// A catalog id (default `blazepose-full`).
    model: Option<String>,
    /// The most people per image.
    max_people: Option<usize>,
}

/// One body landmark, in the image's pixels.
#[derive(Serialize, ToSchema)]
pub(crate) struct LandmarkOut {
    /// Its name: `nose`, `left_shoulder`, `right_hip`, ... (MediaPipe's 33, in their order).
    #[schema(example = "left_shoulder")]
    name: &'static str,
    /// Horizontal position.
    x: f32,
    /// Vertical position.
    y: f32,
    /// Depth relative to the hips, same scale as `x` (smaller: nearer the camera).
    z: f32,
    /// How likely the point is visible, 0 to 1.
    visibility: f32,
    /// How likely the point is inside the image, 0 to 1.
    presence: f32,
}

/// One person.
#[derive(Serialize, ToSchema)]
pub(crate) struct PersonOut {
    /// The person detector's score, 0 to 1.
    score: f32,
    /// The landmark model's confidence that a person is there, 0 to 1.
    presence: f32,
    /// The box around the landmarks (clamped to the image).
    #[serde(rename = "box")]
    bbox: BoxOut,
    /// The 33 landmarks.
    landmarks: Vec<LandmarkOut>,
}

/// The people in one image.
#[derive(Serialize, ToSchema)]
pub(crate) struct PosesOut {
    /// The image's place in the request, from 0.
    index: usize,
    /// Its width in pixels (after its EXIF orientation).
    width: u32,
    /// Its height in pixels.
    height: u32,
    /// The people, by detector score, highest first.
    people: Vec<PersonOut>,
}

/// The people in each image.
#[derive(Serialize, ToSchema)]
pub(crate) struct PoseResponse {
    /// Always `list`.
    object: &'static str,
    /// The model that answered.
    model: String,
    /// One entry per image, in order.
    data: Vec<PosesOut>,
}

/// The model `/v1/vision/pose` uses when the request names none.
const POSE_MODEL: &str = "blazepose-full";

/// Find people and their 33 body landmarks (MediaPipe BlazePose).
#[utoipa::path(
    post,
    path = "/v1/vision/pose",
    tag = "vision",
    request_body(content(
        (PoseForm = "multipart/form-data"),
        (JsonIn<PoseParams> = "application/json"),
    )),
    operation_id = "estimatePose",
    responses(
        (status = 200, description = "The people in each image, with landmarks", body = PoseResponse),
        crate::openapi::ModelErrors,
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn pose(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let found = read_images::<PoseParams>(request, &state).await?;
    let model = found.model.unwrap_or_else(|| POSE_MODEL.to_string());
    let max_people = found.params.max_people;
    let requests = found
        .images
        .into_iter()
        .map(|image| PoseRequest { image, max_people });
    let results = run_each::<PoseFrontend>(&state, &model, requests).await?;
    let data = results
        .into_iter()
        .enumerate()
        .map(|(index, found)| poses_out(index, found))
        .collect();
    let body = PoseResponse {
        object: "list",
        model: model.clone(),
        data,
    };
    Ok(labelled(model, body))
}

fn poses_out(index: usize, found: Poses) -> PosesOut {
    PosesOut {
        index,
        width: found.width,
        height: found.height,
        people: found
            .people
            .into_iter()
            .map(|person| {
                let [x1, y1, x2, y2] = person.bbox;
                PersonOut {
                    score: person.score,
                    presence: person.presence,
                    bbox: BoxOut { x1, y1, x2, y2 },
                    landmarks: person
                        .landmarks
                        .into_iter()
                        .map(|l| LandmarkOut {
                            name: l.name,
                            x: l.x,
                            y: l.y,
                            z: l.z,
                            visibility: l.visibility,
                            presence: l.presence,
                        })
                        .collect(),
                }
            })
            .collect(),
    }
}

/// Classification settings beside the images.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub(crate) struct ClassifyParams {
    /// How many of the most likely classes to answer (default 5; more than the model has
    /// answers them all).
    #[schema(example = 5, minimum = 1)]
    top_k: Option<usize>,
}

impl RouteParams for ClassifyParams {
    const FIELDS: &'static [&'static str] = &["top_k"];

    fn set_field(&mut self, name: &str, value: &str) -> Result<bool, ApiError> {
        match name {
            "top_k" => self.top_k = Some(parse_top_k(value)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// A classification request as a multipart form.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the multipart fields; `read_images` reads them
pub(crate) struct ClassifyForm {
    /// The image: JPEG, PNG, WebP, BMP or GIF (its first frame). Repeat the field for several.
    #[schema(value_type = String, format = Binary)]
    image: Vec<u8>,
    /// A catalog id (default `efficientnet-lite0`).
    model: Option<String>,
    /// How many of the most likely classes to answer (default 5).
    top_k: Option<usize>,
}

/// One class of an image and its probability.
#[derive(Serialize, ToSchema)]
pub(crate) struct ClassLabel {
    /// The class's name, e.g. `tabby`.
    #[schema(example = "tabby")]
    label: String,
    /// Its index among the model's classes (ImageNet-1k: 0 to 999).
    #[schema(example = 281)]
    class_id: usize,
    /// Its probability, 0 to 1.
    #[schema(example = 0.42)]
    score: f32,
}

/// The most likely classes of one image.
#[derive(Serialize, ToSchema)]
pub(crate) struct ClassificationOut {
    /// The image's place in the request, from 0.
    index: usize,
    /// Its width in pixels (after its EXIF orientation).
    width: u32,
    /// Its height in pixels.
    height: u32,
    /// The `top_k` most likely classes, most likely first.
    labels: Vec<ClassLabel>,
}

/// The classes of each image.
#[derive(Serialize, ToSchema)]
pub(crate) struct ClassifyResponse {
    /// Always `list`.
    object: &'static str,
    /// The model that classified.
    model: String,
    /// One entry per image, in order.
    data: Vec<ClassificationOut>,
}

/// The model `/v1/vision/classify` uses when the request names none.
const CLASSIFY_MODEL: &str = "efficientnet-lite0";

/// Name what images show: the most likely ImageNet classes with their probabilities.
#[utoipa::path(
    post,
    path = "/v1/vision/classify",
    tag = "vision",
    request_body(content(
        (ClassifyForm = "multipart/form-data"),
        (JsonIn<ClassifyParams> = "application/json"),
    )),
    operation_id = "classifyImage",
    responses(
        (status = 200, description = "The most likely classes of each image", body = ClassifyResponse),
        crate::openapi::ModelErrors,
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn classify(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let found = read_images::<ClassifyParams>(request, &state).await?;
    let model = found.model.unwrap_or_else(|| CLASSIFY_MODEL.to_string());
    let top_k = match found.params.top_k {
        Some(0) => {
            return Err(
                ApiError::bad_request("`top_k` is 0; send a whole number of at least 1")
                    .param("top_k"),
            );
        }
        Some(k) => k,
        None => DEFAULT_TOP_K,
    };
    // Sent together, the images meet in the worker's queue and share forward passes.
    let requests = found
        .images
        .into_iter()
        .map(|image| ClassifyRequest { image, top_k });
    let results = run_each::<ClassifyFrontend>(&state, &model, requests).await?;
    let data = results
        .into_iter()
        .enumerate()
        .map(|(index, found)| ClassificationOut {
            index,
            width: found.width,
            height: found.height,
            labels: found
                .labels
                .into_iter()
                .map(|c| ClassLabel {
                    label: c.label,
                    class_id: c.class_id,
                    score: c.score,
                })
                .collect(),
        })
        .collect();
    let body = ClassifyResponse {
        object: "list",
        model: model.clone(),
        data,
    };
    Ok(labelled(model, body))
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
        (JsonIn<NoParams> = "application/json"),
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
    let found = read_images::<NoParams>(request, &state).await?;
    let model = found.model.unwrap_or_else(|| OCR_MODEL.to_string());
    let requests = found.images.into_iter().map(|image| OcrRequest { image });
    let results = run_each::<OcrFrontend>(&state, &model, requests).await?;
    let data = results
        .into_iter()
        .enumerate()
        .map(|(index, reading)| ReadingOut {
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
        })
        .collect();
    let body = OcrResponse {
        object: "list",
        model: model.clone(),
        data,
    };
    Ok(labelled(model, body))
}
