//! `POST /v1/audio/transcriptions` and `POST /v1/audio/translations`: Whisper, OpenAI-shaped.

use axum::extract::{Multipart, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, StreamExt};
use serde::Serialize;
use tessera_tasks::transcribe::tokens::language_name;
use tessera_tasks::transcribe::{
    Segment, TranscribeFrontend, TranscribeRequest, Transcript, TranscriptEvent, Transcription,
    WhisperTask, Word, subtitles,
};
use utoipa::ToSchema;

use super::Form;
use crate::llm::{data, sse_response, stream_error};
use crate::metrics_layer::ModelLabel;
use crate::{ApiError, AppState};

/// The model used when the form names none.
const DEFAULT_MODEL: &str = "whisper-base";

/// The form both routes take (translations ignore `language`'s task: the text is English).
#[derive(ToSchema)]
#[allow(dead_code)] // documents the multipart fields; `Form` reads them
pub(crate) struct TranscriptionForm {
    /// The audio: WAV, FLAC, MP3 or OGG/Vorbis, any rate and channel count.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// A speech-to-text model (default `whisper-base`; `whisper-tiny.en` for English only).
    #[schema(example = "whisper-base")]
    model: Option<String>,
    /// The spoken language as an ISO-639-1 code (`en`, `de`); detected when left out.
    language: Option<String>,
    /// Text that comes before the audio: names, spellings, style.
    prompt: Option<String>,
    /// `json` (default), `text`, `srt`, `vtt` or `verbose_json`.
    response_format: Option<String>,
    /// 0 to 1 (default 0). Higher temperatures are tried while the text looks wrong.
    #[schema(minimum = 0.0, maximum = 1.0)]
    temperature: Option<f32>,
    /// `segment` and/or `word` (repeat the field); words need `verbose_json`.
    #[schema(rename = "timestamp_granularities[]")]
    timestamp_granularities: Option<Vec<String>>,
    /// `true`: `transcript.text.delta` events as segments are decoded, then
    /// `transcript.text.done` (json and text formats).
    stream: Option<bool>,
    /// Beams (1 to 10, default 1: greedy).
    beam_size: Option<usize>,
    /// `false` decodes silence too instead of skipping what Silero VAD hears as no speech.
    vad: Option<bool>,
}

/// OpenAI's `json` answer.
#[derive(Serialize, ToSchema)]
pub(crate) struct TranscriptionJson {
    /// The text.
    text: String,
    /// The audio's length, which is what is billed.
    usage: Usage,
}

/// How much audio was heard.
#[derive(Serialize, ToSchema)]
pub(crate) struct Usage {
    /// Always `duration`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// Seconds of audio, rounded up.
    seconds: u64,
}

/// A segment in `verbose_json`.
#[derive(Serialize, ToSchema)]
pub(crate) struct VerboseSegment {
    id: usize,
    seek: usize,
    start: f64,
    end: f64,
    text: String,
    tokens: Vec<u32>,
    temperature: f32,
    avg_logprob: f64,
    compression_ratio: f64,
    no_speech_prob: f32,
}

/// A word in `verbose_json`.
#[derive(Serialize, ToSchema)]
pub(crate) struct VerboseWord {
    word: String,
    start: f64,
    end: f64,
    /// Not in OpenAI's answer: the mean probability of the word's tokens.
    probability: f32,
}

/// OpenAI's `verbose_json` answer.
#[derive(Serialize, ToSchema)]
pub(crate) struct TranscriptionVerbose {
    /// `transcribe` or `translate`.
    task: &'static str,
    /// The language's English name (`english`).
    language: String,
    /// Not in OpenAI's answer: how sure the language detection was (1 when it was given).
    language_probability: f32,
    /// Seconds of audio.
    duration: f64,
    /// The text.
    text: String,
    /// With the `segment` granularity (the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    segments: Option<Vec<VerboseSegment>>,
    /// With the `word` granularity.
    #[serde(skip_serializing_if = "Option::is_none")]
    words: Option<Vec<VerboseWord>>,
    usage: Usage,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Text,
    Srt,
    Vtt,
    Verbose,
}

/// Transcribe audio into the language spoken.
#[utoipa::path(
    post,
    path = "/v1/audio/transcriptions",
    tag = "audio",
    request_body(content = TranscriptionForm, content_type = "multipart/form-data"),
    operation_id = "createTranscription",
    responses(
        (status = 200, description = "The transcript: JSON (json, verbose_json), plain text (text, srt, vtt) or SSE events with `stream=true`", body = TranscriptionVerbose),
        crate::openapi::ModelErrors,
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn transcriptions(
    State(state): State<AppState>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    handle(state, multipart?, WhisperTask::Transcribe).await
}

/// Translate speech in any language into English text.
#[utoipa::path(
    post,
    path = "/v1/audio/translations",
    tag = "audio",
    request_body(content = TranscriptionForm, content_type = "multipart/form-data"),
    operation_id = "createTranslation",
    responses(
        (status = 200, description = "The English text: JSON (json, verbose_json), plain text (text, srt, vtt) or SSE events with `stream=true`", body = TranscriptionVerbose),
        crate::openapi::ModelErrors,
    ),
    security((), ("bearer" = []))
)]
pub(crate) async fn translations(
    State(state): State<AppState>,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, ApiError> {
    handle(state, multipart?, WhisperTask::Translate).await
}

async fn handle(
    state: AppState,
    multipart: Multipart,
    task: WhisperTask,
) -> Result<Response, ApiError> {
    let mut form = Form::read(multipart).await?;
    let audio = form.file()?;
    let format = match form.text("response_format").map(str::trim) {
        None | Some("json") => Format::Json,
        Some("text") => Format::Text,
        Some("srt") => Format::Srt,
        Some("vtt") => Format::Vtt,
        Some("verbose_json") => Format::Verbose,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`response_format` is `{other}`; use json, text, srt, vtt or verbose_json"
            ))
            .param("response_format"));
        }
    };
    let mut segments_wanted = false;
    let mut words_wanted = false;
    for granularity in form
        .all("timestamp_granularities[]")
        .chain(form.all("timestamp_granularities"))
    {
        match granularity.trim() {
            "segment" => segments_wanted = true,
            "word" => words_wanted = true,
            other => {
                return Err(ApiError::bad_request(format!(
                    "`timestamp_granularities[]` has `{other}`; use segment and/or word"
                ))
                .param("timestamp_granularities[]"));
            }
        }
    }
    if !words_wanted {
        segments_wanted = true;
    }
    let stream = form.parse::<bool>("stream", "true")?.unwrap_or(false);
    if stream && !matches!(format, Format::Json | Format::Text) {
        return Err(ApiError::bad_request(
            "`stream` sends text deltas; use `response_format` json or text with it",
        )
        .param("stream"));
    }
    let request = TranscribeRequest {
        audio,
        task,
        language: form.text("language").map(str::to_string),
        prompt: form.text("prompt").map(str::to_string),
        temperature: form.parse("temperature", "0")?.unwrap_or(0.0),
        beam_size: form.parse("beam_size", "1")?.unwrap_or(1),
        // Plain text needs no timed segments: decoding without timestamps is quicker. A stream
        // keeps them: each segment is a delta, sent as soon as it is decoded.
        timestamps: stream || !matches!(format, Format::Json | Format::Text),
        word_timestamps: words_wanted && format == Format::Verbose,
        vad: form.parse("vad", "true")?.unwrap_or(true),
        short_window: form.parse("short_window", "false")?.unwrap_or(false),
    };
    let model = form.text("model").unwrap_or(DEFAULT_MODEL).to_string();
    let transcription = state
        .runtime
        .run::<TranscribeFrontend>(&model, request)
        .await
        .map_err(super::blame_the_file)?;
    if stream {
        return Ok(sse_response(model, sse_events(transcription)));
    }
    let transcript = transcription
        .collect()
        .await
        .map_err(|error| ApiError::internal(error.to_string()))?;
    let mut response = match format {
        Format::Json => axum::Json(TranscriptionJson {
            usage: usage(transcript.duration),
            text: transcript.text,
        })
        .into_response(),
        Format::Text => plain("text/plain; charset=utf-8", transcript.text + "\n"),
        Format::Srt => plain(
            "application/x-subrip; charset=utf-8",
            subtitles::srt(&transcript.segments),
        ),
        Format::Vtt => plain(
            "text/vtt; charset=utf-8",
            subtitles::vtt(&transcript.segments),
        ),
        Format::Verbose => {
            axum::Json(verbose(transcript, segments_wanted, words_wanted)).into_response()
        }
    };
    response.extensions_mut().insert(ModelLabel(model));
    Ok(response)
}

fn plain(content_type: &'static str, body: String) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn usage(duration: f64) -> Usage {
    Usage {
        kind: "duration",
        seconds: duration.ceil() as u64,
    }
}

fn verbose(
    transcript: Transcript,
    segments_wanted: bool,
    words_wanted: bool,
) -> TranscriptionVerbose {
    let (language, language_probability) = match transcript.language {
        Some(found) => (
            language_name(found.code).unwrap_or(found.code).to_string(),
            found.probability,
        ),
        None => ("english".to_string(), 0.0),
    };
    let words: Vec<VerboseWord> = transcript
        .segments
        .iter()
        .flat_map(|s| s.words.iter())
        .map(|w: &Word| VerboseWord {
            word: w.word.clone(),
            start: w.start,
            end: w.end,
            probability: w.probability,
        })
        .collect();
    TranscriptionVerbose {
        task: transcript.task.as_str(),
        language,
        language_probability,
        duration: transcript.duration,
        usage: usage(transcript.duration),
        text: transcript.text,
        segments: segments_wanted.then(|| {
            transcript
                .segments
                .into_iter()
                .map(|s: Segment| VerboseSegment {
                    id: s.id,
                    seek: s.seek,
                    start: s.start,
                    end: s.end,
                    text: s.text,
                    tokens: s.tokens,
                    temperature: s.temperature,
                    avg_logprob: s.avg_logprob,
                    compression_ratio: s.compression_ratio,
                    no_speech_prob: s.no_speech_prob,
                })
                .collect()
        }),
        words: words_wanted.then_some(words),
    }
}

/// `transcript.text.delta` per segment, then `transcript.text.done` with the whole text.
fn sse_events(
    transcription: Transcription,
) -> impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>
{
    let duration = transcription.duration;
    stream::unfold(
        Some((transcription, String::new())),
        move |state| async move {
            let (mut transcription, mut text) = state?;
            loop {
                match transcription.events.recv().await {
                    Some(TranscriptEvent::Language(_)) => continue,
                    Some(TranscriptEvent::Segment(segment)) => {
                        // The first delta carries no leading space.
                        let delta = if text.is_empty() {
                            segment.text.trim_start().to_string()
                        } else {
                            segment.text
                        };
                        text.push_str(&delta);
                        let event = data(&serde_json::json!({
                            "type": "transcript.text.delta",
                            "delta": delta,
                        }));
                        return Some((event, Some((transcription, text))));
                    }
                    Some(TranscriptEvent::Failed(message)) => {
                        return Some((stream_error(&message), None));
                    }
                    Some(TranscriptEvent::Done) | None => {
                        let event = data(&serde_json::json!({
                            "type": "transcript.text.done",
                            "text": text.trim(),
                            "usage": usage(duration),
                        }));
                        return Some((event, None));
                    }
                }
            }
        },
    )
    .map(Ok)
}
