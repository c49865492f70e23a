//! `POST /v1/vad`: where the speech is in an upload.

use axum::extract::{Multipart, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tessera_tasks::vad::{VadFrontend, VadOptions, VadRequest};
use utoipa::ToSchema;

use super::Form;
use crate::metrics_layer::ModelLabel;
use crate::{ApiError, AppState};

/// The model used when the form names none.
const DEFAULT_MODEL: &str = "silero-vad";

/// The form `/v1/vad` takes.
#[derive(ToSchema)]
#[allow(dead_code)] // documents the multipart fields; `Form` reads them
pub(crate) struct VadForm {
    /// The audio: WAV, FLAC, MP3 or OGG/Vorbis, any rate and channel count.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// A VAD model (default `silero-vad`).
    #[schema(example = "silero-vad")]
    model: Option<String>,
    /// Speech probability at or above which a 32 ms window is speech (default 0.5).
    #[schema(minimum = 0.0, maximum = 1.0)]
    threshold: Option<f32>,
    /// Speech shorter than this is dropped (default 250).
    min_speech_duration_ms: Option<u32>,
    /// Speech ends after this much silence (default 100).
    min_silence_duration_ms: Option<u32>,
    /// Added before and after each segment (default 30).
    speech_pad_ms: Option<u32>,
}

/// A stretch of speech.
#[derive(Serialize, ToSchema)]
pub(crate) struct Segment {
    /// Seconds from the start of the audio.
    start: f64,
    /// Seconds from the start of the audio.
    end: f64,
}

/// The speech found.
#[derive(Serialize, ToSchema)]
pub(crate) struct VadResponse {
    /// The model that listened.
    model: String,
    /// The audio's length in seconds.
    duration: f64,
    /// The speech segments, in order.
    segments: Vec<Segment>,
}

/// Find the speech in an audio file.
#[utoipa::path(
    post,
    path = "/v1/vad",
    tag = "audio",
    request_body(content = VadForm, content_type = "multipart/form-data"),
    operation_id = "detectSpeech",
    responses(
        (status = 200, description = "The speech segments, in order", body = VadResponse),
        crate::openapi::ModelErrors,
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn vad(
    State(state): State<AppState>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    let mut form = Form::read(multipart?).await?;
    let audio = form.file()?;
    let defaults = VadOptions::default();
    let options = VadOptions {
        threshold: form
            .parse("threshold", "0.5")?
            .unwrap_or(defaults.threshold),
        min_speech_ms: form
            .parse("min_speech_duration_ms", "250")?
            .unwrap_or(defaults.min_speech_ms),
        min_silence_ms: form
            .parse("min_silence_duration_ms", "100")?
            .unwrap_or(defaults.min_silence_ms),
        speech_pad_ms: form
            .parse("speech_pad_ms", "30")?
            .unwrap_or(defaults.speech_pad_ms),
    };
    let model = form.text("model").unwrap_or(DEFAULT_MODEL).to_string();
    let result = state
        .runtime
        .run::<VadFrontend>(&model, VadRequest { audio, options })
        .await
        .map_err(super::blame_the_file)?;
    let body = VadResponse {
        model: model.clone(),
        duration: result.duration,
        segments: result
            .segments
            .into_iter()
            .map(|s| Segment {
                start: s.start,
                end: s.end,
            })
            .collect(),
    };
    let mut response = axum::Json(body).into_response();
    response.extensions_mut().insert(ModelLabel(model));
    Ok(response)
}
