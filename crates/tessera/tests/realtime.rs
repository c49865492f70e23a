//! `/v1/realtime` over a real WebSocket against a real server: a spoken question streamed in
//! 20 ms frames at real-time pace is answered in speech, in the GA event order; speech during the
//! reply cancels it; protocol errors answer error events and the session goes on; the beta shape
//! works behind its header; the official OpenAI Python client drives it too.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use common::{Server, normalize};
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn connect(server: &Server, beta: bool) -> Socket {
    let url = format!("{}/v1/realtime", server.base.replace("http://", "ws://"));
    let mut request =
        tungstenite::client::IntoClientRequest::into_client_request(url).expect("a request");
    if beta {
        request
            .headers_mut()
            .insert("OpenAI-Beta", "realtime=v1".parse().expect("a header"));
    }
    let (mut socket, _) = tungstenite::connect(request).expect("connect to /v1/realtime");
    if let MaybeTlsStream::Plain(stream) = socket.get_mut() {
        stream
            .set_read_timeout(Some(Duration::from_millis(2)))
            .expect("a read timeout");
    }
    socket
}

fn send(socket: &mut Socket, event: Value) {
    socket
        .send(Message::text(event.to_string()))
        .expect("send an event");
}

/// The next event, if one comes within `wait`.
fn next(socket: &mut Socket, wait: Duration) -> Option<Value> {
    let deadline = Instant::now() + wait;
    loop {
        match socket.read() {
            Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).expect("JSON")),
            Ok(_) => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("the socket failed: {e}"),
        }
        if Instant::now() > deadline {
            return None;
        }
    }
}

/// Events until one of type `until` (included), failing after `wait`.
fn until(socket: &mut Socket, until: &str, wait: Duration) -> Vec<Value> {
    let deadline = Instant::now() + wait;
    let mut events = Vec::new();
    while Instant::now() < deadline {
        if let Some(event) = next(socket, Duration::from_millis(50)) {
            let done = event["type"] == until;
            events.push(event);
            if done {
                return events;
            }
        }
    }
    panic!("no {until} within {wait:?}; got {:?}", types(&events));
}

fn types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or("?").to_string())
        .collect()
}

/// Speech of `text` in tessera's voice, as 24 kHz PCM16 (the wire's default format); without
/// Piper's random variation, so every run sends the same audio.
fn spoken(text: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("q.wav");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["speak", text, "--noise-scale", "0", "--noise-w", "0", "-o"])
        .arg(&path)
        .output()
        .expect("run tessera speak");
    assert!(output.status.success());
    let audio =
        tessera_tasks::audio::decode_at(std::fs::read(&path).expect("the WAV"), 24_000, 60.0)
            .expect("decode");
    tessera_tasks::audio::pcm16(&audio.samples)
}

/// Streams PCM16 at 24 kHz in 20 ms frames at real-time pace, collecting the events that
/// arrive meanwhile.
fn stream_audio(socket: &mut Socket, pcm: &[u8], events: &mut Vec<Value>) {
    let frame = 24_000 / 50 * 2;
    let started = Instant::now();
    for (i, chunk) in pcm.chunks(frame).enumerate() {
        send(
            socket,
            json!({"type": "input_audio_buffer.append", "audio": B64.encode(chunk)}),
        );
        let due = started + Duration::from_millis(20 * (i as u64 + 1));
        while Instant::now() < due {
            if let Some(event) = next(socket, due.saturating_duration_since(Instant::now())) {
                events.push(event);
            }
        }
    }
}

fn silence(ms: usize) -> Vec<u8> {
    vec![0; 24_000 * ms / 1000 * 2]
}

fn position(events: &[Value], kind: &str) -> usize {
    events
        .iter()
        .position(|e| e["type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:?}", types(events)))
}

/// The answer's audio deltas, decoded, transcribed by Whisper base over HTTP.
fn transcribe_deltas(server: &Server, events: &[Value], delta_type: &str) -> String {
    let mut pcm = Vec::new();
    for event in events.iter().filter(|e| e["type"] == delta_type) {
        pcm.extend(
            B64.decode(event["delta"].as_str().expect("delta"))
                .expect("base64 audio"),
        );
    }
    assert!(pcm.len() > 24_000, "under half a second of answer");
    let mut wav = tessera_tasks::audio::wav_header(24_000, Some(pcm.len() as u32));
    wav.extend(pcm);
    let reply = server.post_form(
        "/v1/audio/transcriptions",
        &[
            ("file", common::Part::File("answer.wav", &wav)),
            ("model", common::Part::Text("whisper-base")),
        ],
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["text"].as_str().expect("text").to_string()
}

#[test]
fn a_spoken_question_is_answered_in_order_and_speech_interrupts_the_answer() {
    let server = Server::start(&["--preload", ""]);
    let mut socket = connect(&server, false);
    let first = until(&mut socket, "session.created", Duration::from_secs(120));
    let session = &first.last().expect("session.created")["session"];
    assert_eq!(session["type"], "realtime");
    assert_eq!(session["audio"]["input"]["format"]["rate"], 24_000);
    assert_eq!(
        session["audio"]["input"]["turn_detection"]["type"],
        "server_vad"
    );

    let question = spoken("What is the capital of France?");
    let mut events = Vec::new();
    stream_audio(&mut socket, &silence(300), &mut events);
    stream_audio(&mut socket, &question, &mut events);
    stream_audio(&mut socket, &silence(900), &mut events);
    // The answer may be complete already: the reply starts while the turn's silence is sent.
    if !events.iter().any(|e| e["type"] == "response.done") {
        events.extend(until(&mut socket, "response.done", Duration::from_secs(60)));
    }
    let order = [
        "input_audio_buffer.speech_started",
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.input_audio_transcription.completed",
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_audio_transcript.delta",
        "response.output_audio.delta",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ];
    let positions: Vec<usize> = order.iter().map(|kind| position(&events, kind)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "out of order: {:?}",
        types(&events)
    );
    let transcript = &events[position(
        &events,
        "conversation.item.input_audio_transcription.completed",
    )]["transcript"];
    assert!(
        normalize(transcript.as_str().expect("transcript"))
            .join(" ")
            .contains("capital of france"),
        "{transcript}"
    );
    let done = &events[position(&events, "response.done")]["response"];
    assert_eq!(done["status"], "completed", "{done}");
    let heard = transcribe_deltas(&server, &events, "response.output_audio.delta");
    assert!(
        normalize(&heard).iter().any(|w| w == "paris"),
        "the answer does not say Paris: {heard}"
    );

    // Ask for a long answer, and speak as soon as its audio starts: it is cancelled.
    send(
        &mut socket,
        json!({"type": "session.update", "session": {"type": "realtime", "instructions": "You tell long, detailed stories of at least ten sentences."}}),
    );
    let question = spoken("Tell me a long story about a dragon and a brave knight.");
    let mut events = Vec::new();
    stream_audio(&mut socket, &question, &mut events);
    stream_audio(&mut socket, &silence(700), &mut events);
    if !events
        .iter()
        .any(|e| e["type"] == "response.output_audio.delta")
    {
        events.extend(until(
            &mut socket,
            "response.output_audio.delta",
            Duration::from_secs(60),
        ));
    }
    let interruption = spoken("Wait, stop, never mind.");
    stream_audio(&mut socket, &interruption, &mut events);
    stream_audio(&mut socket, &silence(900), &mut events);
    let cancelled = events
        .iter()
        .find(|e| e["type"] == "response.done")
        .cloned()
        .or_else(|| until(&mut socket, "response.done", Duration::from_secs(30)).pop())
        .expect("response.done");
    assert_eq!(cancelled["response"]["status"], "cancelled", "{cancelled}");
    assert_eq!(
        cancelled["response"]["status_details"]["reason"], "turn_detected",
        "{cancelled}"
    );
    let restarted = events
        .iter()
        .rposition(|e| e["type"] == "input_audio_buffer.speech_started")
        .expect("the interruption was heard");
    assert!(restarted > position(&events, "response.output_audio.delta"));
}

#[test]
fn protocol_errors_answer_error_events_and_the_session_goes_on() {
    let server = Server::start(&["--preload", ""]);
    let mut socket = connect(&server, false);
    until(&mut socket, "session.created", Duration::from_secs(120));
    let error = |socket: &mut Socket, event: Value| {
        send(socket, event);
        let events = until(socket, "error", Duration::from_secs(10));
        events.last().expect("an error")["error"].clone()
    };
    let unknown = error(
        &mut socket,
        json!({"type": "session.dance", "event_id": "e1"}),
    );
    assert_eq!(unknown["code"], "unknown_event_type", "{unknown}");
    assert_eq!(unknown["event_id"], "e1", "{unknown}");
    let bad_audio = error(
        &mut socket,
        json!({"type": "input_audio_buffer.append", "audio": "not base64!"}),
    );
    assert_eq!(bad_audio["type"], "invalid_request_error", "{bad_audio}");
    let odd = error(
        &mut socket,
        json!({"type": "input_audio_buffer.append", "audio": B64.encode([1u8, 2, 3])}),
    );
    assert!(
        odd["message"]
            .as_str()
            .unwrap_or("")
            .contains("bytes per sample"),
        "{odd}"
    );
    let rate = error(
        &mut socket,
        json!({"type": "session.update", "session": {"type": "realtime", "audio": {"input": {"format": {"type": "audio/pcm", "rate": 16000}}}}}),
    );
    assert!(
        rate["param"].as_str().unwrap_or("").contains("rate"),
        "{rate}"
    );
    send(&mut socket, json!("not an object"));
    until(&mut socket, "error", Duration::from_secs(10));

    // A reply cancelled by the client before it said anything: cancelled, no error.
    send(
        &mut socket,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Tell me a story."}]}}),
    );
    send(&mut socket, json!({"type": "response.create"}));
    send(&mut socket, json!({"type": "response.cancel"}));
    let events = until(&mut socket, "response.done", Duration::from_secs(60));
    assert!(!types(&events).contains(&"error".to_string()), "{events:?}");
    let done = &events.last().expect("response.done")["response"];
    assert_eq!(done["status"], "cancelled", "{done}");
    assert_eq!(
        done["status_details"]["reason"], "client_cancelled",
        "{done}"
    );

    // Still serving: an update applies, and a typed question is answered in text.
    send(
        &mut socket,
        json!({"type": "session.update", "session": {"type": "realtime", "output_modalities": ["text"], "audio": {"input": {"turn_detection": null}}}}),
    );
    let updated = until(&mut socket, "session.updated", Duration::from_secs(10));
    let session = &updated.last().expect("session.updated")["session"];
    assert_eq!(session["output_modalities"], json!(["text"]));
    assert!(session["audio"]["input"]["turn_detection"].is_null());
    // Push-to-talk: committed silence is an empty transcript (not invented words), no reply.
    send(
        &mut socket,
        json!({"type": "input_audio_buffer.append", "audio": B64.encode(silence(1500))}),
    );
    send(&mut socket, json!({"type": "input_audio_buffer.commit"}));
    let events = until(
        &mut socket,
        "conversation.item.input_audio_transcription.completed",
        Duration::from_secs(30),
    );
    let transcript = &events.last().expect("completed")["transcript"];
    assert_eq!(transcript, "", "{transcript}");
    assert!(!types(&events).contains(&"response.created".to_string()));
    send(
        &mut socket,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What is the capital of France?"}]}}),
    );
    send(&mut socket, json!({"type": "response.create"}));
    let events = until(&mut socket, "response.done", Duration::from_secs(60));
    let text: String = events
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    assert!(text.contains("Paris"), "{text}");
}

#[test]
fn the_beta_shape_works_behind_its_header() {
    let server = Server::start(&["--preload", ""]);
    let mut socket = connect(&server, true);
    let created = until(&mut socket, "session.created", Duration::from_secs(120));
    let session = &created.last().expect("session.created")["session"];
    assert_eq!(session["input_audio_format"], "pcm16", "{session}");
    send(
        &mut socket,
        json!({"type": "session.update", "session": {"modalities": ["text", "audio"], "turn_detection": null, "voice": "alloy"}}),
    );
    until(&mut socket, "session.updated", Duration::from_secs(10));
    send(
        &mut socket,
        json!({"type": "conversation.item.create", "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What is the capital of France?"}]}}),
    );
    send(&mut socket, json!({"type": "response.create"}));
    let events = until(&mut socket, "response.done", Duration::from_secs(60));
    let kinds = types(&events);
    assert!(
        kinds.contains(&"conversation.item.created".to_string()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"response.audio.delta".to_string()),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&"response.audio_transcript.delta".to_string()),
        "{kinds:?}"
    );
    assert!(
        !kinds.iter().any(|k| k.starts_with("response.output_audio")),
        "{kinds:?}"
    );
    let heard = transcribe_deltas(&server, &events, "response.audio.delta");
    assert!(normalize(&heard).iter().any(|w| w == "paris"), "{heard}");
}

#[test]
fn a_plain_http_request_is_told_to_use_a_websocket() {
    let server = Server::start(&["--preload", ""]);
    let (status, body) = server.get("/v1/realtime");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("WebSocket"), "{body}");
}

#[test]
fn sessions_beyond_the_cap_are_refused() {
    let server = Server::start(&["--preload", "", "--max-realtime-sessions", "1"]);
    let mut first = connect(&server, false);
    until(&mut first, "session.created", Duration::from_secs(120));
    let url = format!("{}/v1/realtime", server.base.replace("http://", "ws://"));
    match tungstenite::connect(url.as_str()) {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default());
            assert!(body.contains("max-realtime-sessions"), "{body}");
        }
        other => panic!("a second session was not refused: {:?}", other.map(|_| ())),
    }
    drop(first);
}

#[test]
fn the_official_openai_python_client_talks_over_realtime() {
    let server = Server::start(&["--preload", ""]);
    let question = spoken("What is the capital of France?");
    let dir = tempfile::tempdir().expect("a temp dir");
    let pcm = dir.path().join("question.pcm");
    std::fs::write(&pcm, &question).expect("write the question");
    let stdout = common::python_script(
        "openai_realtime.py",
        [std::ffi::OsStr::new(&server.base), pcm.as_os_str()],
    );
    assert!(stdout.starts_with("ok "), "{stdout}");
    let answer = stdout.trim_start_matches("ok ");
    assert!(answer.contains("Paris"), "{answer}");
}
