//! `tessera speak --play` and `tessera voice --mic` on a real ALSA device (built with `--features
//! play`): ALSA's configuration is pointed at a file whose default PCM is the `file` plugin, which
//! writes every sample cpal sends to a file (and, for `--mic`, reads what the device captures from
//! another), over a `null` device. The tests read the samples back: speech of the right length,
//! not silence, and Whisper hears the text in it.
#![cfg(all(feature = "play", target_os = "linux"))]

mod common;

use std::process::Command;

use common::{Part, Server, wav, word_errors};

const SENTENCE: &str = "The quick brown fox jumps over the lazy dog.";

#[test]
fn speak_play_sends_the_speech_to_the_audio_device() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let raw = dir.path().join("played.raw");
    let config = dir.path().join("asound.conf");
    // Only this file is read (no system alsa.conf), so it defines the `null` PCM too.
    std::fs::write(
        &config,
        format!(
            "pcm.null {{ type null }}\npcm.!default {{\n  type file\n  slave.pcm \"null\"\n  file \"{}\"\n  format \"raw\"\n}}\n",
            raw.display()
        ),
    )
    .expect("write the ALSA configuration");

    let started = std::time::Instant::now();
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["speak", SENTENCE, "--play"])
        .env("ALSA_CONFIG_PATH", &config)
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .output()
        .expect("run tessera speak --play");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    eprintln!("{stderr}(in {:?})", started.elapsed());

    // The device took the voice's rate, mono, float samples: the file holds them as they are.
    assert!(
        stderr.contains("22050 Hz, 1 channel(s), f32"),
        "unexpected device configuration: {stderr}"
    );
    let bytes = std::fs::read(&raw).expect("the file plugin's output");
    let samples: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    // The device also got silence (exact zeros) whenever it was ahead of the voice: ALSA's
    // `null` device takes samples faster than real time, so it runs dry between chunks. The
    // speech is what is left without runs of zeros longer than 50 ms.
    let speech = without_gaps(&samples, 22050 / 20);
    let seconds = speech.len() as f64 / 22050.0;
    let played = stderr
        .lines()
        .find_map(|line| line.strip_prefix("played "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse::<f64>().ok())
        .expect("tessera says how much it played");
    assert!(
        (seconds - played).abs() < 0.1,
        "{seconds} s of speech in the file, {played} s played"
    );
    // Nine words: between 1.5 and 5 words a second.
    assert!((1.8..6.0).contains(&seconds), "{seconds} s");
    let loudest = speech.iter().fold(0.0f32, |m, s| m.max(s.abs()));
    assert!(loudest > 0.1, "near silence: peak {loudest}");

    // What the device got is the sentence.
    let text = transcribe(speech);
    let (errors, words) = word_errors(&text, SENTENCE);
    eprintln!("the device got: {text} ({errors}/{words} words wrong, {seconds:.2} s)");
    assert!(
        errors as f64 / words as f64 <= 0.2,
        "{text} ({errors}/{words} words wrong)"
    );
}

/// What Whisper (base, over HTTP) hears in the voice's samples as played (22.05 kHz).
fn transcribe(speech: Vec<f32>) -> String {
    let server = Server::start(&["--preload", ""]);
    let audio = tessera_tasks::audio::resample(
        tessera_tasks::audio::Audio {
            samples: speech,
            sample_rate: 22050,
        },
        16000,
    )
    .expect("resample");
    let reply = server.post_form(
        "/v1/audio/transcriptions",
        &[
            ("file", Part::File("played.wav", &wav(&audio.samples))),
            ("model", Part::Text("whisper-base")),
        ],
    );
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.body["text"].as_str().expect("text").to_string()
}

/// `samples` without the runs of exact zeros longer than `longest`.
fn without_gaps(samples: &[f32], longest: usize) -> Vec<f32> {
    let mut kept = Vec::with_capacity(samples.len());
    let mut zeros = 0;
    for &sample in samples {
        if sample == 0.0 {
            zeros += 1;
            continue;
        }
        if zeros > 0 && zeros <= longest && !kept.is_empty() {
            kept.extend(std::iter::repeat_n(0.0, zeros));
        }
        zeros = 0;
        kept.push(sample);
    }
    kept
}

#[test]
fn output_or_play_is_needed() {
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["speak", "Hello."])
        .output()
        .expect("run tessera speak");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("required") && stderr.contains("--output"),
        "{stderr}"
    );
    let help = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["speak", "--help"])
        .output()
        .expect("run tessera speak --help");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--play") && help.contains("optional with --play"),
        "{help}"
    );
}

/// `tessera voice --mic`: ALSA's `file` plugin reads the "microphone" from a file (a spoken
/// question, float stereo at 48 kHz as the default device takes it) and records what is played.
#[test]
fn voice_mic_hears_the_microphone_and_answers_on_the_speakers() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().expect("a temp dir");
    let question = dir.path().join("question.wav");
    let spoken = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["speak", "What is the capital of France?", "-o"])
        .arg(&question)
        .output()
        .expect("run tessera speak");
    assert!(spoken.status.success());
    let audio = tessera_tasks::audio::decode_at(
        std::fs::read(&question).expect("the question"),
        48_000,
        60.0,
    )
    .expect("decode");
    let silence = vec![0.0f32; 48_000];
    let mut input = Vec::new();
    for sample in silence
        .iter()
        .chain(&audio.samples)
        .chain(&silence)
        .chain(&silence)
    {
        input.extend(sample.to_le_bytes());
        input.extend(sample.to_le_bytes());
    }
    let infile = dir.path().join("mic.raw");
    std::fs::write(&infile, input).expect("write the microphone's input");
    let played = dir.path().join("played.raw");
    let config = dir.path().join("asound.conf");
    std::fs::write(
        &config,
        format!(
            "pcm.null {{ type null }}\npcm.!default {{\n  type file\n  slave.pcm \"null\"\n  file \"{}\"\n  infile \"{}\"\n  format \"raw\"\n}}\n",
            played.display(),
            infile.display()
        ),
    )
    .expect("write the ALSA configuration");

    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["voice", "--mic"])
        .env("ALSA_CONFIG_PATH", &config)
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tessera voice --mic");
    let stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut log = String::new();
    for line in stderr.lines() {
        let line = line.expect("a line");
        log.push_str(&line);
        log.push('\n');
        if line.starts_with("turn: ") {
            break;
        }
    }
    // Let the answer play out, then Ctrl-C.
    std::thread::sleep(std::time::Duration::from_secs(4));
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = child.wait().expect("wait");
    eprintln!("{log}");
    assert!(status.success() || status.code().is_none(), "{log}");
    assert!(log.contains("you: What is the capital of France"), "{log}");
    assert!(log.contains("assistant: "), "{log}");

    let bytes = std::fs::read(&played).expect("the file plugin's output");
    let samples: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let text = transcribe(without_gaps(&samples, 22050 / 20));
    assert!(
        text.contains("Paris"),
        "the speakers did not say Paris: {text}"
    );
}
