//! `POST /v1/audio/speech`: text to speech, streamed as it is synthesized.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use tessera_tasks::audio::{AudioFormat, StreamEncoder, pcm16};
use tessera_tasks::speech::{Speech, SpeechEvent, SpeechFrontend, SpeechRequest};
use utoipa::ToSchema;

use crate::extract::ApiJson;
use crate::llm::{data, sse_response, stream_error};
use crate::metrics_layer::ModelLabel;
use crate::{ApiError, AppState};

/// OpenAI's speech request.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"model": "piper-en-us-joe-medium", "input": "Hello there.", "voice": "alloy"}))]
pub(crate) struct SpeechBody {
    /// A text-to-speech model (see `GET /v1/models`).
    model: String,
    /// The text, at most 4096 characters.
    input: String,
    /// A speaker of a multi-speaker voice; single-speaker voices take any value (so OpenAI's
    /// voice names work).
    voice: Option<String>,
    /// `wav` (default), `pcm` (16-bit little-endian mono at the voice's rate), `flac`, `mp3`
    /// (64 kbit/s at the voice's rate) or `opus` (Ogg Opus, 48 kHz). All but `flac` stream.
    #[schema(example = "mp3")]
    response_format: Option<String>,
    /// 0.25 to 4.0 (default 1.0).
    #[schema(minimum = 0.25, maximum = 4.0)]
    speed: Option<f32>,
    /// `audio` (default): the file's bytes, sent as they are made; `sse`: events whose `audio`
    /// is base64 16-bit PCM, then a done event.
    stream_format: Option<String>,
    /// Not supported by Piper voices; sending it is a 400.
    instructions: Option<String>,
}

/// Speak a text.
#[utoipa::path(
    post,
    path = "/v1/audio/speech",
    operation_id = "createSpeech",
    tag = "audio",
    request_body = SpeechBody,
    responses(
        (status = 200, description = "The audio (wav, pcm, flac, mp3 or opus), streamed as it is synthesized (flac is sent whole); or SSE events with `stream_format: sse`",
            content((String = "audio/wav"), (String = "audio/pcm"), (String = "audio/flac"),
                (String = "audio/mpeg"), (String = "audio/ogg"), (String = "text/event-stream"))),
        crate::openapi::ModelErrors,
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn speech(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<SpeechBody>,
) -> Result<Response, ApiError> {
    if body.instructions.is_some() {
        return Err(ApiError::bad_request(
            "`instructions` is not supported: Piper voices cannot be steered by a prompt; leave it out",
        )
        .param("instructions"));
    }
    let format: AudioFormat = body
        .response_format
        .as_deref()
        .unwrap_or("wav")
        .parse()
        .map_err(|message: String| ApiError::bad_request(message).param("response_format"))?;
    let sse = match body.stream_format.as_deref() {
        None | Some("audio") => false,
        Some("sse") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`stream_format` is `{other}`; use `audio` or `sse`"
            ))
            .param("stream_format"));
        }
    };
    if sse && !matches!(format, AudioFormat::Pcm | AudioFormat::Wav) {
        return Err(ApiError::bad_request(
            "SSE audio deltas are 16-bit PCM; use `response_format` pcm or wav with `stream_format` sse, or `stream_format` audio for other formats",
        )
        .param("response_format"));
    }
    let request = SpeechRequest {
        text: body.input,
        speaker: body.voice,
        speed: body.speed.unwrap_or(1.0),
        noise_scale: None,
        noise_w: None,
    };
    let mut speech = state
        .runtime
        .run::<SpeechFrontend>(&body.model, request)
        .await?;
    // The first chunk is awaited before answering, so a failure is still a proper error.
    let first = match speech.events.recv().await {
        Some(SpeechEvent::Audio(samples)) => samples,
        Some(SpeechEvent::Failed(message)) => return Err(ApiError::internal(message)),
        Some(SpeechEvent::Done) | None => {
            return Err(ApiError::internal("the voice stopped before any audio"));
        }
    };
    let model = body.model;
    if sse {
        return Ok(sse_response(model, sse_events(first, speech)));
    }
    let encoder = StreamEncoder::new(format, speech.sample_rate)
        .map_err(|error| ApiError::internal(error.to_string()))?;
    let mut response = if format.streams() {
        let (encoder, first_bytes) = encode_chunk(encoder, first)
            .await
            .map_err(ApiError::internal)?;
        let rest = stream::unfold(Some((speech, encoder)), |state| async move {
            let (mut speech, encoder) = state?;
            match speech.events.recv().await {
                Some(SpeechEvent::Audio(samples)) => match encode_chunk(encoder, samples).await {
                    Ok((encoder, bytes)) => Some((Ok(Bytes::from(bytes)), Some((speech, encoder)))),
                    Err(message) => Some((Err(streaming_failed(message)), None)),
                },
                Some(SpeechEvent::Failed(message)) => Some((Err(streaming_failed(message)), None)),
                // The encoder's last bytes: MP3's final frames, Opus's last page.
                Some(SpeechEvent::Done) | None => match finish(encoder).await {
                    Ok(bytes) => Some((Ok(Bytes::from(bytes)), None)),
                    Err(message) => Some((Err(streaming_failed(message)), None)),
                },
            }
        });
        let body = stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(first_bytes)) })
            .chain(rest);
        (
            [(header::CONTENT_TYPE, format.mime())],
            Body::from_stream(body),
        )
            .into_response()
    } else {
        let samples = collect(first, speech).await?;
        let (encoder, mut bytes) = encode_chunk(encoder, samples)
            .await
            .map_err(ApiError::internal)?;
        bytes.extend(finish(encoder).await.map_err(ApiError::internal)?);
        ([(header::CONTENT_TYPE, format.mime())], bytes).into_response()
    };
    response.extensions_mut().insert(ModelLabel(model));
    Ok(response)
}

/// Encodes a chunk on a blocking thread (MP3 and Opus encoding is real work); the encoder
/// travels there and back so its state carries over to the next chunk.
async fn encode_chunk(
    mut encoder: StreamEncoder,
    samples: Vec<f32>,
) -> Result<(StreamEncoder, Vec<u8>), String> {
    tokio::task::spawn_blocking(move || {
        let bytes = encoder.push(&samples).map_err(|error| error.to_string())?;
        Ok((encoder, bytes))
    })
    .await
    .map_err(|error| format!("the audio encoder stopped: {error}"))?
}

/// The encoder's last bytes, on a blocking thread.
async fn finish(encoder: StreamEncoder) -> Result<Vec<u8>, String> {
    tokio::task::spawn_blocking(move || encoder.finish().map_err(|error| error.to_string()))
        .await
        .map_err(|error| format!("the audio encoder stopped: {error}"))?
}

/// A failure after the headers went out: logged, and the body ends with an error.
fn streaming_failed(message: String) -> std::io::Error {
    tracing::error!(%message, "speech failed while streaming");
    std::io::Error::other(message)
}

/// Every sample of a synthesis.
async fn collect(first: Vec<f32>, mut speech: Speech) -> Result<Vec<f32>, ApiError> {
    let mut samples = first;
    loop {
        match speech.events.recv().await {
            Some(SpeechEvent::Audio(more)) => samples.extend(more),
            Some(SpeechEvent::Done) | None => return Ok(samples),
            Some(SpeechEvent::Failed(message)) => return Err(ApiError::internal(message)),
        }
    }
}

/// `speech.audio.delta` events with base64 PCM, then `speech.audio.done`.
fn sse_events(
    first: Vec<f32>,
    speech: Speech,
) -> impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>
{
    let delta = |samples: &[f32]| {
        data(&serde_json::json!({
            "type": "speech.audio.delta",
            "audio": base64::engine::general_purpose::STANDARD.encode(pcm16(samples)),
        }))
    };
    let characters = speech.characters;
    let first = delta(&first);
    let rest = stream::unfold(Some(speech), move |speech| async move {
        let mut speech = speech?;
        match speech.events.recv().await {
            Some(SpeechEvent::Audio(samples)) => Some((delta(&samples), Some(speech))),
            Some(SpeechEvent::Failed(message)) => Some((stream_error(&message), None)),
            Some(SpeechEvent::Done) | None => Some((
                data(&serde_json::json!({
                    "type": "speech.audio.done",
                    "usage": {"input_tokens": characters, "output_tokens": 0, "total_tokens": characters},
                })),
                None,
            )),
        }
    });
    stream::once(async move { first }).chain(rest).map(Ok)
}
