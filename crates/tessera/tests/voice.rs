//! The real-time programs from the command line, on real weights: `tessera voice` answers a
//! spoken question with speech, and `tessera speak --stdin-json` speaks a recorded Claude Code
//! session's text and nothing of its tool calls.

mod common;

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{normalize, wer};

fn tessera(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .output()
        .expect("run tessera")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// What Whisper (base, not the tiny model the voice loop listens with) hears in a file.
fn transcribe(path: &Path) -> String {
    let path = path.to_str().expect("a UTF-8 path");
    let output = tessera(&["transcribe", "--model", "whisper-base", path]);
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

/// Speaks `text` into a WAV with tessera's own voice.
/// Piper's speech of `text`, without its random variation: the same audio on every run, so a
/// word Whisper hears only sometimes cannot make a test flaky.
fn say(text: &str, path: &Path) {
    let output = tessera(&[
        "speak",
        text,
        "--noise-scale",
        "0",
        "--noise-w",
        "0",
        "-o",
        path.to_str().expect("a UTF-8 path"),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn voice_answers_a_spoken_question() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let question = dir.path().join("question.wav");
    let answer = dir.path().join("answer.wav");
    say("What is the capital of France?", &question);

    let output = tessera(&[
        "voice",
        "--input",
        question.to_str().expect("path"),
        "--output",
        answer.to_str().expect("path"),
        "--target-ms",
        "5000",
    ]);
    let log = stderr(&output);
    eprintln!("{log}");
    assert!(output.status.success(), "{}: {log}", output.status);
    // The question was heard, and the turn's stages were timed in order.
    let heard = log
        .lines()
        .find_map(|line| line.strip_prefix("you: "))
        .expect("the transcript of the question");
    assert!(
        normalize(heard).join(" ").contains("capital of france"),
        "{heard}"
    );
    let turn = log
        .lines()
        .find_map(|line| line.strip_prefix("turn: "))
        .expect("the turn's latency line");
    let stages: Vec<&str> = turn
        .split(", ")
        .filter_map(|stage| stage.split(' ').next())
        .collect();
    assert_eq!(
        stages,
        [
            "speech_end",
            "transcript",
            "first_token",
            "first_clause",
            "first_audio",
            "total"
        ],
        "{turn}"
    );

    let spoken = transcribe(&answer);
    eprintln!("the answer says: {spoken}");
    assert!(
        normalize(&spoken).iter().any(|word| word == "paris"),
        "the answer does not say Paris: {spoken}"
    );
}

/// A pause inside the question (shorter than the end-of-turn window) starts a guessed transcript
/// and a reply to it, which the rest of the question must overturn: one answer, to the whole
/// question.
#[test]
fn a_pause_inside_a_question_does_not_answer_half_of_it() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let first = dir.path().join("first.wav");
    let second = dir.path().join("second.wav");
    say("What is the capital", &first);
    say("of France?", &second);
    let at_16k = |path: &Path| {
        tessera_tasks::audio::decode_at(std::fs::read(path).expect("read"), 16_000, 60.0)
            .expect("decode")
            .samples
    };
    let mut question = at_16k(&first);
    question.extend(vec![0.0; 16_000 * 350 / 1000]);
    question.extend(at_16k(&second));
    let input = dir.path().join("question.wav");
    std::fs::write(&input, common::wav(&question)).expect("write");
    let answer = dir.path().join("answer.wav");
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "voice",
            "--input",
            input.to_str().expect("path"),
            "--output",
        ])
        .arg(&answer)
        .args(["--silence-ms", "500"])
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .env("TESSERA_LOG", "tessera_voice=debug")
        .output()
        .expect("run tessera voice");
    let log = stderr(&output);
    eprintln!("{log}");
    assert!(output.status.success(), "{}: {log}", output.status);
    let answers: Vec<&str> = log
        .lines()
        .filter_map(|line| line.strip_prefix("assistant: "))
        .collect();
    assert_eq!(answers.len(), 1, "{log}");
    let heard = log
        .lines()
        .find_map(|line| line.strip_prefix("you: "))
        .expect("the question's transcript");
    let words = normalize(heard);
    assert!(
        words.iter().any(|w| w == "capital") && words.iter().any(|w| w == "france"),
        "{heard}"
    );
    assert!(answers[0].contains("Paris"), "{log}");
    // The pause did start a guess of the transcript (and, when it was quick enough, a reply
    // to half the question), and speech overturned it.
    assert!(log.contains("the guessed transcript is dropped"), "{log}");
}

#[test]
fn voice_says_what_is_wrong_with_its_input() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let missing = dir.path().join("missing.wav");
    let output = tessera(&[
        "voice",
        "--input",
        missing.to_str().expect("path"),
        "--output",
        "answer.wav",
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("could not read"),
        "{}",
        stderr(&output)
    );

    // Silence holds no turn to answer.
    let silence = dir.path().join("silence.wav");
    std::fs::write(&silence, common::wav(&vec![0.0; 16_000])).expect("write");
    let output = tessera(&[
        "voice",
        "--input",
        silence.to_str().expect("path"),
        "--output",
        dir.path().join("a.wav").to_str().expect("path"),
        "--fast",
    ]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no turn was answered"),
        "{}",
        stderr(&output)
    );
}

/// `tessera speak --stdin-json ARGS` with `input` on standard input.
fn speak_json(args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["speak", "--stdin-json"])
        .args(args)
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tessera speak --stdin-json");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write standard input");
    child.wait_with_output().expect("wait")
}

/// The fixture's assistant text, as the voice should say it once cleaned.
const SPOKEN: &str = include_str!("../../tessera-voice/tests/fixtures/claude-stream.spoken.txt");
/// Words that appear only in the fixture's thinking, tool calls and tool results.
const FORBIDDEN: &[&str] = &[
    "pineapple",
    "zebra",
    "manifest",
    "carburetor",
    "walrus",
    "gearbox",
];

#[test]
fn speak_pipeline_speaks_the_assistant_text_and_nothing_else() {
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tessera-voice/tests/fixtures/claude-stream.jsonl"
    ))
    .expect("the stream-json fixture");
    let dir = tempfile::tempdir().expect("a temp dir");
    let out = dir.path().join("spoken.wav");
    // Without Piper's random variation: the same audio, so the same transcript, on every run.
    let still = ["--noise-scale", "0", "--noise-w", "0"];
    let output = speak_json(
        &[&still[..], &["-o", out.to_str().expect("path")]].concat(),
        &fixture,
    );
    let log = stderr(&output);
    eprintln!("{log}");
    assert!(output.status.success(), "{}: {log}", output.status);
    // The malformed line was reported and skipped; the lines after it were spoken.
    assert!(log.contains("skipped"), "{log}");

    let heard = transcribe(&out);
    eprintln!("heard: {heard}");
    let expected = SPOKEN.trim();
    let error_rate = wer(&heard, expected);
    assert!(
        error_rate <= 0.2,
        "WER {error_rate:.2}: heard {heard:?}, expected {expected:?}"
    );
    let words = normalize(&heard);
    for forbidden in FORBIDDEN {
        assert!(
            !words.iter().any(|w| w == forbidden),
            "{forbidden} came from a tool or thinking block: {heard}"
        );
    }
}

#[test]
fn speak_pipeline_refuses_input_with_nothing_to_say() {
    let output = speak_json(
        &["-o", "-"],
        b"not json\n{\"type\":\"system\",\"subtype\":\"init\"}\n",
    );
    let log = stderr(&output);
    assert!(!output.status.success(), "{log}");
    assert!(log.contains("line 1 skipped"), "{log}");
    assert!(log.contains("no assistant text"), "{log}");
}
