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
    // The first clause alone (its first 0.28 s sent before the rest of it when it is long enough
    // to stream), then the rest together.
    assert!((2..=3).contains(&deltas.len()), "{events:?}");
    assert_eq!(events.last().expect("events")["type"], "speech.audio.done");
    assert!(events.last().unwrap()["usage"]["input_tokens"].as_u64() > Some(10));
    use base64::Engine as _;
    let mut samples = Vec::new();
    for (index, delta) in deltas.iter().enumerate() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(delta["audio"].as_str().expect("audio"))
            .expect("base64");
        assert!(!bytes.is_empty());
        if index == 0 {
            // 16-bit samples at 22,050 Hz: the first delta is short, so it came early.
            assert!(bytes.len() < 2 * 22_050, "{} bytes first", bytes.len());
        }
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
            serde_json::json!({"response_format": "aac"}),
            400,
            "use wav, pcm, flac, mp3 or opus",
        ),
        (
            serde_json::json!({"response_format": "ogg"}),
            400,
            "unknown audio format `ogg`; use wav, pcm, flac, mp3 or opus",
        ),
        (
            serde_json::json!({"response_format": "mp3", "stream_format": "sse"}),
            400,
            "SSE audio deltas are 16-bit PCM",
        ),
        (
            serde_json::json!({"response_format": "opus", "stream_format": "sse"}),
            400,
            "SSE audio deltas are 16-bit PCM",
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

/// MP3 and Ogg Opus: the right type, sent as the speech is made, decoded to audio as long as the
/// PCM of the same text, and Whisper hears the text in it.
#[test]
fn speech_in_mp3_and_opus_streams_and_transcribes_back() {
    let server = Server::start(&["--preload", ""]);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(120)))
        .build()
        .into();
    let speak = |input: &str, format: &str| {
        agent
            .post(&server.url("/v1/audio/speech"))
            .header("content-type", "application/json")
            .send(
                serde_json::json!({"model": VOICE, "input": input, "response_format": format})
                    .to_string(),
            )
            .expect("speech")
    };
    let sentences = [
        "The quick brown fox jumps over the lazy dog.",
        "Please send the report to the office before Friday afternoon.",
        "It was a bright cold day in April, and the clocks were striking thirteen.",
    ];
    for (format, mime, rate) in [
        ("mp3", "audio/mpeg", 22050),
        ("opus", "audio/ogg; codecs=opus", 48000),
    ] {
        let (mut errors, mut words) = (0, 0);
        for sentence in sentences {
            let mut response = speak(sentence, format);
            assert_eq!(
                response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok()),
                Some(mime)
            );
            let bytes = response.body_mut().read_to_vec().expect("audio bytes");
            match format {
                // Frame sync: eleven set bits (no ID3 tag is written).
                "mp3" => assert!(
                    bytes[0] == 0xff && bytes[1] & 0xe0 == 0xe0,
                    "{:?}",
                    &bytes[..4]
                ),
                _ => assert!(bytes.starts_with(b"OggS") && bytes[28..36] == *b"OpusHead"),
            }
            let audio = tessera_tasks::audio::decode(bytes.clone(), 600.0).expect("decodes");
            assert_eq!(audio.sample_rate, rate, "{format}");
            // As long as the same sentence in PCM (the voice's timing varies a little between
            // runs; MP3 adds under 0.1 s of encoder delay and padding).
            let pcm = speak(sentence, "pcm")
                .body_mut()
                .read_to_vec()
                .expect("pcm");
            let pcm_seconds = pcm.len() as f64 / 2.0 / 22050.0;
            assert!(
                (audio.seconds() - pcm_seconds).abs() < 0.1 * pcm_seconds + 0.1,
                "{format}: {} s against {pcm_seconds} s of PCM",
                audio.seconds()
            );
            let (speech, seconds) = speech_in(
                &server,
                &tessera_tasks::audio::resample(audio, 22050)
                    .expect("resample")
                    .samples,
            );
            assert!(
                speech > 0.7 * seconds,
                "{format}: {speech} s of speech in {seconds} s"
            );
            // Whisper reads the encoded file itself.
            let reply = server.post_form(
                "/v1/audio/transcriptions",
                &[
                    ("file", Part::File("speech.bin", &bytes)),
                    ("model", Part::Text("whisper-base")),
                ],
            );
            assert_eq!(reply.status, 200, "{}", reply.text);
            let text = reply.body["text"].as_str().expect("text");
            let (e, n) = common::word_errors(text, sentence);
            eprintln!("{format}: {sentence} → {text} ({e}/{n})");
            errors += e;
            words += n;
        }
        // The bound of the WAV round trip in http_transcribe.rs.
        let rate = errors as f64 / words as f64;
        assert!(
            rate <= 0.20,
            "{format}: round trip word error rate {rate:.3}"
        );
    }

    // Streamed: the first bytes (a whole MP3 frame, or Opus's header pages) come while the
    // rest of a long text is still being synthesized.
    let long = "This is the first clause. Then comes a much longer sentence that takes the voice a while to say, with several parts. After that, another sentence follows, and then one more, so the whole text is long enough to measure. Finally, the last sentence closes it.";
    for format in ["mp3", "opus"] {
        let started = std::time::Instant::now();
        let mut response = speak(long, format);
        assert!(
            response.headers().get("content-length").is_none(),
            "{format}"
        );
        let mut reader = response.body_mut().as_reader();
        let mut first = [0u8; 64];
        let got = std::io::Read::read(&mut reader, &mut first).expect("first bytes");
        let first_at = started.elapsed();
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut rest).expect("the rest");
        let all_at = started.elapsed();
        assert!(
            got > 0 && rest.len() > 10_000,
            "{format}: {got} + {} bytes",
            rest.len()
        );
        assert!(
            first_at.as_secs_f64() < 0.6 * all_at.as_secs_f64(),
            "{format}: first bytes after {first_at:?}, the end after {all_at:?}"
        );
        let mut bytes = first[..got].to_vec();
        bytes.extend(rest);
        let audio = tessera_tasks::audio::decode(bytes, 600.0).expect("the stream decodes");
        assert!(
            (10.0..40.0).contains(&audio.seconds()),
            "{format}: {} s",
            audio.seconds()
        );
    }
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

/// The rebuilt Silero graph (many windows per call) gives the published graph's numbers (one
/// window per call) on a long clip, whether the clip comes whole or in uneven pieces, and the
/// same speech.
#[test]
fn many_windows_per_call_judge_as_the_published_graph_does() {
    use tessera_engines::onnx::SessionConfig;
    use tessera_tasks::vad::{SileroVad, VadEvent, VadOptions, VadStream, segments};

    let path = common::tessera_home().join("models/silero-vad/model.onnx");
    let config = SessionConfig::default();
    let mut rebuilt = SileroVad::load(&path, &config).expect("load Silero");
    assert!(rebuilt.judges_many_windows_per_call());
    let mut published = SileroVad::load_published(&path, &config).expect("load Silero");
    assert!(!published.judges_many_windows_per_call());
    // About 150 s (more than one call of 4096 windows): every clip four times, each after
    // 2.5 s of silence, and a ragged end.
    let mut samples = Vec::new();
    for _ in 0..4 {
        for index in 0..librivox().len() {
            samples.extend(vec![0.0; 40000]);
            samples.extend(clip_samples(index));
        }
    }
    samples.truncate(samples.len() - 100);
    assert!(samples.len() > 4096 * 512, "{}", samples.len());

    let whole = rebuilt.probabilities(&samples).expect("whole clip");
    published.reset();
    let one_by_one: Vec<f32> = samples
        .chunks(512)
        .map(|window| published.probability(window).expect("one window"))
        .collect();
    assert_eq!(whole.len(), one_by_one.len());
    let largest = whole
        .iter()
        .zip(&one_by_one)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(largest < 1e-5, "largest difference {largest}");
    assert!(whole.iter().filter(|&&p| p >= 0.5).count() > whole.len() / 3);

    // The stream gets the audio in pieces that do not line up with the windows.
    let options = VadOptions::default();
    let offline = segments(&mut rebuilt, &samples, options).expect("segments");
    let mut stream = VadStream::new(rebuilt, options);
    let mut events = Vec::new();
    for piece in samples.chunks(5000) {
        events.extend(stream.push(piece).expect("push"));
    }
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
    let found: Vec<(f64, f64)> = offline.segments.iter().map(|s| (s.start, s.end)).collect();
    assert_eq!(found, streamed);
    assert!(found.len() >= 9, "{found:?}");
}
