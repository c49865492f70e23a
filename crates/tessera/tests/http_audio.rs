//! The audio routes over HTTP on the real models: voice activity detection (Silero).

mod common;

use common::{Part, Server, assert_error, clip_samples, librivox, noise, wav};
use tessera_tasks::audio::{AudioFormat, encode, pcm16, wav_header};

fn segments(reply: &common::Reply) -> Vec<(f64, f64)> {
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["segments"]
        .as_array()
        .expect("segments")
        .iter()
        .map(|s| (s["start"].as_f64().unwrap(), s["end"].as_f64().unwrap()))
        .collect()
}

#[test]
fn vad_finds_the_speech_and_nothing_in_silence_or_noise() {
    let server = Server::start(&["--preload", ""]);

    // Speech with two seconds of silence on each side.
    let clip = clip_samples(0);
    let clip_seconds = clip.len() as f64 / 16000.0;
    let mut padded = vec![0.0; 32000];
    padded.extend(&clip);
    padded.extend(vec![0.0; 32000]);
    let reply = server.post_form(
        "/v1/vad",
        &[("file", Part::File("speech.wav", &wav(&padded)))],
    );
    let found = segments(&reply);
    assert!(!found.is_empty(), "no speech found: {}", reply.text);
    let duration = reply.body["duration"].as_f64().unwrap();
    assert!((duration - (clip_seconds + 4.0)).abs() < 0.01, "{duration}");
    let (first, last) = (found[0].0, found[found.len() - 1].1);
    assert!(
        (1.7..2.6).contains(&first),
        "speech starts at {first}: {found:?}"
    );
    let end = 2.0 + clip_seconds;
    assert!(
        last > end - 1.0 && last < end + 0.4,
        "speech ends at {last} (clip ends at {end}): {found:?}"
    );
    for window in found.windows(2) {
        assert!(window[0].1 <= window[1].0, "segments overlap: {found:?}");
    }
    let speech: f64 = found.iter().map(|(s, e)| e - s).sum();
    assert!(
        speech > 0.6 * clip_seconds,
        "only {speech} s of speech in {clip_seconds} s: {found:?}"
    );

    // Silence, and quiet noise: no speech.
    for (name, samples) in [("silence", vec![0.0; 48000]), ("noise", noise(3.0, 0.05))] {
        let reply = server.post_form("/v1/vad", &[("file", Part::File("x.wav", &wav(&samples)))]);
        assert_eq!(segments(&reply), vec![], "{name}: {}", reply.text);
    }

    // Parameters: a stricter threshold and a longer minimum still find the speech; a model
    // named explicitly works; FLAC uploads work.
    let flac = encode(&padded, 16000, AudioFormat::Flac).expect("encode FLAC");
    let reply = server.post_form(
        "/v1/vad",
        &[
            ("file", Part::File("speech.flac", &flac)),
            ("model", Part::Text("silero-vad")),
            ("threshold", Part::Text("0.7")),
            ("min_speech_duration_ms", Part::Text("500")),
        ],
    );
    assert!(!segments(&reply).is_empty(), "{}", reply.text);
}

#[test]
fn bad_audio_gets_a_400_and_the_server_keeps_serving() {
    let server = Server::start(&["--preload", ""]);
    let good = wav(&clip_samples(1));
    let mut ten_hours = wav_header(16000, Some(10 * 3600 * 16000 * 2));
    ten_hours.extend(pcm16(&noise(1.0, 0.1)));
    let random: Vec<u8> = noise(1.0, 1.0)
        .iter()
        .map(|x| (x * 127.0) as i8 as u8)
        .collect();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated WAV",
            good[..good.len() / 2].to_vec(),
            "truncated",
        ),
        ("random bytes", random, "could not read the audio"),
        ("zero length", Vec::new(), "empty"),
        ("ten-hour header", ten_hours, "over the limit"),
        ("one sample", wav(&[0.25]), "too short"),
    ];
    for (name, bytes, needle) in cases {
        let reply = server.post_form("/v1/vad", &[("file", Part::File("bad.wav", &bytes))]);
        assert_error(&reply, 400, needle);
        assert_eq!(reply.body["error"]["param"], "file", "{name}");
        eprintln!("{name}: {}", reply.body["error"]["message"]);
    }
    // No file, a bad parameter, an unknown model, not multipart.
    let reply = server.post_form("/v1/vad", &[("model", Part::Text("silero-vad"))]);
    assert_error(&reply, 400, "multipart field named `file`");
    let reply = server.post_form(
        "/v1/vad",
        &[
            ("file", Part::File("a.wav", &good)),
            ("threshold", Part::Text("loud")),
        ],
    );
    assert_error(&reply, 400, "`threshold` is `loud`");
    assert_eq!(reply.body["error"]["param"], "threshold");
    let reply = server.post_form(
        "/v1/vad",
        &[
            ("file", Part::File("a.wav", &good)),
            ("threshold", Part::Text("1.5")),
        ],
    );
    assert_error(&reply, 400, "between 0 and 1");
    let reply = server.post_form(
        "/v1/vad",
        &[
            ("file", Part::File("a.wav", &good)),
            ("model", Part::Text("no-such-vad")),
        ],
    );
    assert_eq!(reply.status, 404, "{}", reply.text);
    let reply = server.post_raw("/v1/vad", "{}");
    assert_error(&reply, 400, "multipart/form-data");

    // Still serving.
    let reply = server.post_form("/v1/vad", &[("file", Part::File("a.wav", &good))]);
    assert!(!segments(&reply).is_empty(), "{}", reply.text);
}

/// The streaming API the voice loop uses: pieces of 100 ms in, events out, and the same
/// segments as the whole clip at once.
#[test]
fn vad_stream_reports_speech_as_it_arrives() {
    use tessera_engines::onnx::SessionConfig;
    use tessera_tasks::vad::{SileroVad, VadEvent, VadOptions, VadStream, segments};

    let path = common::tessera_home().join("models/silero-vad/model.onnx");
    let mut vad = SileroVad::load(&path, &SessionConfig::default()).expect("load Silero");
    let mut samples = vec![0.0; 16000];
    samples.extend(clip_samples(2));
    samples.extend(vec![0.0; 16000]);

    let whole = segments(&mut vad, &samples, VadOptions::default()).expect("whole clip");
    let mut stream = VadStream::new(vad, VadOptions::default());
    let mut events = Vec::new();
    for (index, piece) in samples.chunks(1600).enumerate() {
        for event in stream.push(piece).expect("push") {
            events.push((index, event));
        }
    }
    let ends_at = samples.len() / 1600;
    events.extend(
        stream
            .finish()
            .expect("finish")
            .into_iter()
            .map(|e| (ends_at, e)),
    );

    // Speech is announced while the clip plays, well before the audio ends.
    let (announced_at, first) = events.first().copied().expect("events");
    let VadEvent::SpeechStart { start } = first else {
        panic!("the first event is not a start: {events:?}");
    };
    assert!(announced_at < 20, "announced at piece {announced_at}");
    // The clip itself opens with a breath of silence.
    assert!(
        (15000..32000).contains(&start),
        "speech starts at sample {start}"
    );
    let streamed: Vec<(f64, f64)> = events
        .iter()
        .filter_map(|(_, e)| match e {
            VadEvent::SpeechEnd { start, end } => {
                Some((*start as f64 / 16000.0, *end as f64 / 16000.0))
            }
            VadEvent::SpeechStart { .. } => None,
        })
        .collect();
    let offline: Vec<(f64, f64)> = whole.segments.iter().map(|s| (s.start, s.end)).collect();
    assert_eq!(streamed, offline);
}

const VOICE: &str = "piper-en-us-joe-medium";

/// Seconds of speech Silero finds in 22.05 kHz mono samples, and their length in seconds.
fn speech_in(server: &Server, samples: &[f32]) -> (f64, f64) {
    let wav = encode(samples, 22050, AudioFormat::Wav).expect("encode");
    let reply = server.post_form("/v1/vad", &[("file", Part::File("tts.wav", &wav))]);
    let speech = segments(&reply).iter().map(|(s, e)| e - s).sum();
    (speech, samples.len() as f64 / 22050.0)
}

fn pcm_samples(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(2)
        .map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect()
}

#[test]
fn speech_is_audio_that_holds_speech_in_every_format() {
    let server = Server::start(&["--preload", ""]);
    let text =
        "The quick brown fox jumps over the lazy dog. It was a sunny day, and everyone was happy.";
    let body = serde_json::json!({"model": VOICE, "input": text, "voice": "alloy"});

    // WAV (the default), streamed with an open-ended header.
    let reply = server.post("/v1/audio/speech", &body);
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.header("content-type"), Some("audio/wav"));
    let mut client = ureq::Agent::new_with_defaults()
        .post(&server.url("/v1/audio/speech"))
        .header("content-type", "application/json")
        .send(body.to_string())
        .expect("speech");
    let bytes = client.body_mut().read_to_vec().expect("audio bytes");
    assert_eq!(&bytes[..4], b"RIFF");
    let samples = pcm_samples(&bytes[44..]);
    let (speech, seconds) = speech_in(&server, &samples);
    // 17 words: between 1.5 and 5 words a second, and speech nearly all the way through.
    assert!((3.4..11.5).contains(&seconds), "{seconds} s");
    assert!(
        speech > 0.7 * seconds,
        "{speech} s of speech in {seconds} s"
    );

    // Raw PCM is the same audio without the header; FLAC decodes to it too.
    let mut pcm_body = body.clone();
    pcm_body["response_format"] = "pcm".into();
    let mut response = ureq::Agent::new_with_defaults()
        .post(&server.url("/v1/audio/speech"))
        .header("content-type", "application/json")
        .send(pcm_body.to_string())
        .expect("speech");
    let pcm = response.body_mut().read_to_vec().expect("pcm bytes");
    assert!((pcm.len() as f64 - (bytes.len() - 44) as f64).abs() < 0.2 * pcm.len() as f64);
    let mut flac_body = body.clone();
    flac_body["response_format"] = "flac".into();
    let mut response = ureq::Agent::new_with_defaults()
        .post(&server.url("/v1/audio/speech"))
        .header("content-type", "application/json")
        .send(flac_body.to_string())
        .expect("speech");
    let flac = response.body_mut().read_to_vec().expect("flac bytes");
    let decoded = tessera_tasks::audio::decode(flac, 600.0).expect("a valid FLAC");
    assert_eq!(decoded.sample_rate, 22050);
    let (speech, seconds) = speech_in(&server, &decoded.samples);
    assert!(
        speech > 0.7 * seconds,
        "{speech} s of speech in {seconds} s"
    );

    // Slower speech is longer.
    let mut slow = body.clone();
    slow["speed"] = 0.5.into();
    slow["response_format"] = "pcm".into();
    let mut response = ureq::Agent::new_with_defaults()
        .post(&server.url("/v1/audio/speech"))
        .header("content-type", "application/json")
        .send(slow.to_string())
        .expect("speech");
    let slow_pcm = response.body_mut().read_to_vec().expect("pcm");
    assert!(
        slow_pcm.len() as f64 > 1.6 * pcm.len() as f64,
        "{} vs {}",
        slow_pcm.len(),
        pcm.len()
    );
}

#[test]
fn speech_streams_chunks_as_sse_and_bad_requests_get_400() {
    let server = Server::start(&["--preload", ""]);
    let body = serde_json::json!({
        "model": VOICE,
        "input": "First, a short clause. Then a whole sentence follows it. And one more.",
        "stream_format": "sse",
        "response_format": "pcm",
    });
    let reply = server.post("/v1/audio/speech", &body);
    assert_eq!(reply.status, 200, "{}", reply.text);
    let events: Vec<serde_json::Value> = reply
        .text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).expect("JSON event"))
        .collect();
    let deltas: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["type"] == "speech.audio.delta")
        .collect();
    // The first clause alone, then the rest together: two chunks.
    assert_eq!(deltas.len(), 2, "{events:?}");
    assert_eq!(events.last().expect("events")["type"], "speech.audio.done");
    assert!(events.last().unwrap()["usage"]["input_tokens"].as_u64() > Some(10));
    use base64::Engine as _;
    let mut samples = Vec::new();
    for delta in deltas {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(delta["audio"].as_str().expect("audio"))
            .expect("base64");
        assert!(!bytes.is_empty());
        samples.extend(pcm_samples(&bytes));
    }
    let (speech, seconds) = speech_in(&server, &samples);
    assert!(
        speech > 0.6 * seconds,
        "{speech} s of speech in {seconds} s"
    );

    for (patch, status, needle) in [
        (serde_json::json!({"input": ""}), 400, "`input` is empty"),
        (
            serde_json::json!({"input": "x".repeat(5000)}),
            400,
            "over the limit of 4096",
        ),
        (
            serde_json::json!({"speed": 9.0}),
            400,
            "`speed` is 9; give a value from 0.25 to 4",
        ),
        (
            serde_json::json!({"response_format": "mp3"}),
            400,
            "use wav, pcm or flac",
        ),
        (
            serde_json::json!({"stream_format": "video"}),
            400,
            "use `audio` or `sse`",
        ),
        (
            serde_json::json!({"instructions": "Speak like a pirate"}),
            400,
            "not supported",
        ),
        (
            serde_json::json!({"input": "?!..."}),
            400,
            "nothing speakable",
        ),
        (
            serde_json::json!({"model": "no-such-voice"}),
            404,
            "no-such-voice",
        ),
    ] {
        let mut bad = serde_json::json!({"model": VOICE, "input": "Hello."});
        for (key, value) in patch.as_object().unwrap() {
            bad[key] = value.clone();
        }
        let reply = server.post("/v1/audio/speech", &bad);
        assert_error(&reply, status, needle);
    }
    // Still serving.
    let reply = server.post(
        "/v1/audio/speech",
        &serde_json::json!({"model": VOICE, "input": "Still here.", "response_format": "pcm"}),
    );
    assert_eq!(reply.status, 200);
}

/// espeak-ng's IPA is what Piper's own phonemizer gives for the same text (checked against
/// piper-tts 1.8.0), so the voices hear what they were trained on.
#[test]
fn espeak_phonemes_match_pipers() {
    let clauses = tessera_tasks::speech::espeak::phonemize(
        "The quick brown fox jumps over the lazy dog",
        "en-us",
    )
    .expect("espeak-ng");
    assert_eq!(
        clauses,
        vec!["ðə kwˈɪk bɹˈaʊn fˈɑːks dʒˈʌmps ˌoʊvɚ ðə lˈeɪzi dˈɑːɡ".to_string()]
    );
}

/// A long clip is judged in parallel lanes; it finds the same speech as one stream does.
#[test]
fn long_audio_judged_in_lanes_finds_what_one_stream_finds() {
    use tessera_engines::onnx::SessionConfig;
    use tessera_tasks::vad::{SileroVad, VadEvent, VadOptions, VadStream, segments};

    let path = common::tessera_home().join("models/silero-vad/model.onnx");
    let mut vad = SileroVad::load(&path, &SessionConfig::default()).expect("load Silero");
    // About 100 s: every clip three times, each after 2.5 s of silence.
    let mut samples = Vec::new();
    for _ in 0..3 {
        for index in 0..librivox().len() {
            samples.extend(vec![0.0; 40000]);
            samples.extend(clip_samples(index));
        }
    }
    assert!(samples.len() > 90 * 16000);
    let options = VadOptions::default();
    let lanes = segments(&mut vad, &samples, options).expect("in lanes");
    let mut stream = VadStream::new(vad, options);
    let mut events = stream.push(&samples).expect("push");
    events.extend(stream.finish().expect("finish"));
    let streamed: Vec<(f64, f64)> = events
        .into_iter()
        .filter_map(|e| match e {
            VadEvent::SpeechEnd { start, end } => {
                Some((start as f64 / 16000.0, end as f64 / 16000.0))
            }
            VadEvent::SpeechStart { .. } => None,
        })
        .collect();
    let speech = |s: &[(f64, f64)]| s.iter().map(|(a, b)| b - a).sum::<f64>();
    let laned: Vec<(f64, f64)> = lanes.segments.iter().map(|s| (s.start, s.end)).collect();
    assert!(
        (speech(&laned) - speech(&streamed)).abs() < 0.03 * speech(&streamed),
        "{laned:?}\n{streamed:?}"
    );
    assert!(
        laned.len().abs_diff(streamed.len()) <= 2,
        "{laned:?}\n{streamed:?}"
    );
    // Every stretch found in lanes overlaps one the stream found.
    for (start, end) in &laned {
        assert!(
            streamed.iter().any(|(s, e)| s < end && start < e),
            "{start}-{end} is not in {streamed:?}"
        );
    }
}
