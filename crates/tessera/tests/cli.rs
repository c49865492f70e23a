//! The `tessera` command from the shell: help, embed, list, and errors that say what to do.

use std::process::{Command, Output};

fn tessera(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(args)
        // Tests run side by side on few cores: spinning OpenMP threads would stall each other.
        .env("OMP_WAIT_POLICY", "PASSIVE")
        .output()
        .expect("run tessera")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_verb_has_help_with_an_example() {
    for verb in [
        &["serve"][..],
        &["pull"],
        &["list"],
        &["rm"],
        &["embed"],
        &["chat"],
        &["complete"],
        &["bench", "embed"],
        &["bench", "chat"],
        &["vad"],
        &["speak"],
        &["transcribe"],
        &["bench", "vad"],
        &["bench", "speak"],
        &["bench", "transcribe"],
        &["ocr"],
    ] {
        let mut args = verb.to_vec();
        args.push("--help");
        let output = tessera(&args);
        assert!(output.status.success(), "{verb:?}");
        let help = text(&output.stdout);
        assert!(
            help.contains("Example"),
            "`tessera {} --help` has no example:\n{help}",
            verb.join(" ")
        );
    }
    let version = text(&tessera(&["--version"]).stdout);
    assert!(
        version.contains("onnx") && version.contains("candle") && version.contains("gguf"),
        "{version}"
    );
    // llama.cpp's own line names the CPU features its loaded kernels use.
    assert!(
        version.contains("llama.cpp: CPU :") && version.contains("SSE3 = 1"),
        "{version}"
    );
}

#[test]
fn chat_answers_one_question_from_a_flag_or_standard_input() {
    let output = tessera(&[
        "chat",
        "smollm2-135m-instruct",
        "--prompt",
        "What is the capital of France? Answer in one word.",
        "--temperature",
        "0",
        "--max-tokens",
        "20",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("Paris"),
        "{}",
        text(&output.stdout)
    );

    let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args([
            "chat",
            "smollm2-135m-instruct",
            "--temperature",
            "0",
            "--max-tokens",
            "20",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run tessera chat");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(b"What is the capital of France? Answer in one word.\n")
            .expect("write the question");
    }
    let output = child.wait_with_output().expect("tessera chat");
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("Paris"),
        "{}",
        text(&output.stdout)
    );
}

#[test]
fn complete_fills_the_middle_of_a_function() {
    let output = tessera(&[
        "complete",
        "qwen2.5-coder-0.5b-instruct",
        "--prompt",
        "def add(a, b):\\n    ",
        "--suffix",
        "\\n\\nprint(add(1, 2))\\n",
        "--temperature",
        "0",
        "--max-tokens",
        "24",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let middle = text(&output.stdout);
    assert!(middle.contains("return a + b"), "{middle}");
    // A model without fill-in-the-middle tokens says so.
    let output = tessera(&[
        "complete",
        "smollm2-135m-instruct",
        "--prompt",
        "a",
        "--suffix",
        "b",
    ]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("fill-in-the-middle"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn embed_prints_json_vectors_that_rank_the_related_text_first() {
    let output = tessera(&[
        "embed",
        "all-minilm-l6-v2-int8",
        "A dog runs in the park.",
        "A puppy plays on the grass.",
        "Tax rules changed.",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&text(&output.stdout)).expect("JSON on stdout");
    assert_eq!(json["dimensions"], 384);
    let vectors: Vec<Vec<f64>> = serde_json::from_value(json["embeddings"].clone()).unwrap();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    assert!(dot(&vectors[0], &vectors[1]) > dot(&vectors[0], &vectors[2]) + 0.2);
}

#[test]
fn an_unavailable_device_falls_back_to_the_cpu_and_says_why() {
    let output = tessera(&[
        "embed",
        "--device",
        "cuda",
        "all-minilm-l6-v2-int8",
        "still works",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let log = text(&output.stderr);
    assert!(
        log.contains("falling back to the CPU") && log.contains("cuda"),
        "{log}"
    );
    let json: serde_json::Value = serde_json::from_str(&text(&output.stdout)).unwrap();
    assert_eq!(json["dimensions"], 384);
}

#[test]
fn embed_reads_a_file_one_text_per_line() {
    let dir = std::env::temp_dir().join(format!("tessera-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("texts.txt");
    std::fs::write(&file, "first line\n\nsecond line\n").unwrap();
    let output = tessera(&[
        "embed",
        "all-minilm-l6-v2",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_str(&text(&output.stdout)).unwrap();
    assert_eq!(
        json["embeddings"].as_array().unwrap().len(),
        2,
        "blank lines are skipped"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn mistakes_fail_with_a_message_that_says_what_to_do() {
    let unknown = tessera(&["embed", "all-minilm", "hi"]);
    assert!(!unknown.status.success());
    let message = text(&unknown.stderr);
    assert!(
        message.contains("all-minilm-l6-v2"),
        "suggests close ids: {message}"
    );

    let nothing = tessera(&["embed", "all-minilm-l6-v2-int8"]);
    assert!(!nothing.status.success());
    assert!(
        text(&nothing.stderr).contains("--file"),
        "{}",
        text(&nothing.stderr)
    );

    let bad_device = tessera(&["embed", "--device", "gpu", "all-minilm-l6-v2-int8", "hi"]);
    assert!(!bad_device.status.success());
    assert!(
        text(&bad_device.stderr).contains("cuda"),
        "{}",
        text(&bad_device.stderr)
    );
}

#[test]
fn list_shows_the_catalog_and_what_is_cached() {
    let output = tessera(&["list", "--json"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let rows: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let minilm = rows
        .iter()
        .find(|r| r["id"] == "all-minilm-l6-v2-int8")
        .expect("listed");
    assert_eq!(minilm["cached"], true, "fetch-models pulled it");
    assert_eq!(minilm["task"], "embed");
    for id in [
        "qwen2.5-coder-0.5b-instruct",
        "whisper-base",
        "silero-vad",
        "pp-ocrv4",
        "piper-en-us-joe-medium",
    ] {
        assert!(rows.iter().any(|r| r["id"] == id), "{id} is in the catalog");
    }
    let table = text(&tessera(&["list"]).stdout);
    assert!(
        table.contains("MODEL") && table.contains("all-minilm-l6-v2-int8"),
        "{table}"
    );
    // IS-Net's weights come from npm (fetch-models pulled them) under the AGPL, which the table
    // marks and the JSON states in full.
    let isnet = rows
        .iter()
        .find(|r| r["id"] == "isnet-general-small")
        .expect("listed");
    assert_eq!(isnet["cached"], true, "fetch-models pulled it from npm");
    assert_eq!(isnet["task"], "segment");
    assert!(isnet["license"].as_str().unwrap().starts_with("AGPL-3.0"));
    let row = table
        .lines()
        .find(|l| l.starts_with("isnet-general-small "))
        .expect("a table row");
    assert!(row.contains("AGPL-3.0*"), "{row}");
    assert!(table.contains("* copyleft (AGPL)"), "{table}");
}

#[test]
fn pull_list_and_rm_in_a_fresh_home() {
    let home = std::env::temp_dir().join(format!("tessera-home-{}", std::process::id()));
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(args)
            .env("TESSERA_HOME", &home)
            .output()
            .unwrap()
    };
    let pulled = run(&["pull", "silero-vad"]);
    assert!(pulled.status.success(), "{}", text(&pulled.stderr));
    let listed = text(&run(&["list", "--json"]).stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.contains("\"silero-vad\"") && l.contains("\"cached\":true")),
        "{listed}"
    );
    let removed = run(&["rm", "silero-vad"]);
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    assert!(text(&removed.stdout).contains("freed"));
    let listed = text(&run(&["list", "--json"]).stdout);
    assert!(
        listed
            .lines()
            .any(|l| l.contains("\"silero-vad\"") && l.contains("\"cached\":false")),
        "{listed}"
    );
    let offline = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["pull", "silero-vad"])
        .env("TESSERA_HOME", &home)
        .env("TESSERA_OFFLINE", "1")
        .output()
        .unwrap();
    assert!(!offline.status.success());
    assert!(
        text(&offline.stderr).contains("TESSERA_OFFLINE"),
        "{}",
        text(&offline.stderr)
    );
    let _ = std::fs::remove_dir_all(home);
}

#[test]
fn logs_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    // -v logs at debug level, so stderr has log lines as well as the error.
    let output = tessera(&["-v", "embed", "no-such-model", "text"]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(stderr.contains("no-such-model"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escape in piped logs: {stderr:?}"
    );
}

/// The interactive chat in a real terminal (a pty): history carries over, `/system` and
/// `/reset` take effect, Ctrl-C stops an answer and the chat goes on, Ctrl-D quits.
#[cfg(unix)]
#[test]
fn interactive_chat_keeps_history_and_survives_ctrl_c() {
    use rexpect::process::WaitStatus;
    use rexpect::session::PtySession;

    /// Types a line and returns everything printed until the next prompt.
    fn say(chat: &mut PtySession, line: &str) -> String {
        chat.send_line(line).expect("type a line");
        chat.exp_string("\n> ")
            .unwrap_or_else(|error| panic!("no prompt after {line:?}: {error}"))
    }

    let mut command = Command::new(env!("CARGO_BIN_EXE_tessera"));
    command
        .args([
            "chat",
            "qwen2.5-coder-0.5b-instruct",
            "--temperature",
            "0",
            "--max-tokens",
            "60",
        ])
        .env("NO_COLOR", "1");
    let mut chat = rexpect::session::spawn_command(command, Some(120_000)).expect("start chat");
    chat.exp_string("/reset clears the history")
        .expect("greeting");
    chat.exp_string("> ").expect("first prompt");

    say(&mut chat, "My name is Zorblax. Remember it.");
    let answer = say(&mut chat, "What is my name? Answer with the name only.");
    assert!(answer.contains("Zorblax"), "history was not used: {answer}");

    assert!(say(&mut chat, "/reset").contains("(history cleared)"));
    let answer = say(&mut chat, "What is my name? Answer with the name only.");
    assert!(
        !answer.contains("Zorblax"),
        "history survived /reset: {answer}"
    );

    let confirmed = say(
        &mut chat,
        "/system Answer every question with the single word BANANA.",
    );
    assert!(confirmed.contains("(system prompt set"), "{confirmed}");
    let answer = say(&mut chat, "What colour is the sky?");
    assert!(
        answer.to_uppercase().contains("BANANA"),
        "system prompt was not used: {answer}"
    );
    assert!(say(&mut chat, "/system").contains("(system prompt removed"));

    // Ctrl-C in the middle of a long answer stops it; the chat goes on.
    chat.send_line("Write a long story about a dragon who learns to bake bread.")
        .expect("type");
    chat.exp_regex(r"\w+ \w+ \w+").expect("the story begins");
    chat.send_control('c').expect("Ctrl-C");
    chat.exp_string("(stopped)").expect("answer stopped");
    chat.exp_string("\n> ").expect("prompt after Ctrl-C");
    let answer = say(
        &mut chat,
        "What is the capital of France? Answer in one word.",
    );
    assert!(answer.contains("Paris"), "{answer}");

    // Ctrl-C at the prompt says how to quit; Ctrl-D quits cleanly.
    chat.send_control('c').expect("Ctrl-C");
    chat.exp_string("Ctrl-D or /exit quits")
        .expect("how to quit");
    chat.exp_string("> ")
        .expect("prompt after Ctrl-C at the prompt");
    chat.send_control('d').expect("Ctrl-D");
    chat.exp_eof().expect("chat ends");
    match chat.process().wait() {
        Ok(WaitStatus::Exited(_, 0)) => {}
        other => panic!("chat did not exit cleanly: {other:?}"),
    }
}

#[test]
fn vad_prints_the_speech_segments_of_a_file() {
    let clip =
        "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav";
    let output = tessera(&["vad", clip]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let lines: Vec<(f64, f64)> = text(&output.stdout)
        .lines()
        .map(|line| {
            let (start, end) = line.split_once('\t').expect("start<TAB>end");
            (start.parse().expect("start"), end.parse().expect("end"))
        })
        .collect();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|(s, e)| s < e && *e <= 3.5), "{lines:?}");

    let output = tessera(&["vad", "--json", clip]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert!(
        json["segments"].as_array().is_some_and(|s| !s.is_empty()),
        "{json}"
    );

    let output = tessera(&["vad", "/no/such/file.wav"]);
    assert!(!output.status.success());
    assert!(text(&output.stderr).contains("could not read /no/such/file.wav"));
}

#[test]
fn speak_writes_audio_that_vad_finds_speech_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let wav = dir.path().join("fox.wav");
    let output = tessera(&[
        "speak",
        "The quick brown fox jumps over the lazy dog.",
        "-o",
        wav.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("s of audio at 22050 Hz"));
    let output = tessera(&["vad", wav.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let speech: f64 = text(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once('\t'))
        .map(|(s, e)| e.parse::<f64>().unwrap() - s.parse::<f64>().unwrap())
        .sum();
    assert!(speech > 1.5, "{speech} s of speech");

    // MP3 and Opus by extension, and Opus to standard output by --format: files that decode
    // to about the WAV's length.
    let wav_seconds = tessera_tasks::audio::decode(std::fs::read(&wav).unwrap(), 60.0)
        .expect("the WAV decodes")
        .seconds();
    for (name, rate) in [("fox.mp3", 22050), ("fox.opus", 48000)] {
        let path = dir.path().join(name);
        let output = tessera(&[
            "speak",
            "The quick brown fox jumps over the lazy dog.",
            "-o",
            path.to_str().unwrap(),
        ]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let audio = tessera_tasks::audio::decode(std::fs::read(&path).unwrap(), 60.0)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(audio.sample_rate, rate, "{name}");
        assert!(
            (audio.seconds() - wav_seconds).abs() < 0.15 * wav_seconds + 0.1,
            "{name}: {} s against {wav_seconds} s",
            audio.seconds()
        );
    }
    let output = tessera(&["speak", "Hello there.", "--format", "opus", "-o", "-"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(output.stdout.starts_with(b"OggS"));
    let audio = tessera_tasks::audio::decode(output.stdout, 60.0).expect("streamed Opus decodes");
    assert!(audio.seconds() > 0.5, "{} s", audio.seconds());

    let output = tessera(&["speak", "Hello.", "-o", "out.aac"]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("use wav, pcm, flac, mp3 or opus"),
        "{}",
        text(&output.stderr)
    );
    // Without the voice's random variation, the same text gives the same audio; with it, not.
    let spoken = |noise: &[&str], name: &str| {
        let path = dir.path().join(name);
        let mut args = vec!["speak", "Hello there.", "-o", path.to_str().unwrap()];
        args.extend(noise);
        let output = tessera(&args);
        assert!(output.status.success(), "{}", text(&output.stderr));
        std::fs::read(&path).unwrap()
    };
    let still = ["--noise-scale", "0", "--noise-w", "0"];
    assert_eq!(spoken(&still, "a.wav"), spoken(&still, "b.wav"));
    assert_ne!(spoken(&[], "c.wav"), spoken(&[], "d.wav"));
    let output = tessera(&["speak", "Hello.", "--noise-scale", "3", "-o", "e.wav"]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("noise_scale"),
        "{}",
        text(&output.stderr)
    );

    // No output (and, in a build with the `play` feature, no --play): clap says what is missing.
    let output = tessera(&["speak", "Hello."]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("--output"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn transcribe_prints_text_subtitles_and_json_with_words() {
    let clip =
        "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0880.wav";
    let output = tessera(&["transcribe", clip]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let said = text(&output.stdout).to_lowercase();
    assert!(said.contains("not an ill"), "{said}");

    let output = tessera(&[
        "transcribe",
        "--format",
        "srt",
        "--model",
        "whisper-tiny.en",
        clip,
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let srt = text(&output.stdout);
    assert!(srt.starts_with("1\n00:00:00,"), "{srt}");

    let output = tessera(&["transcribe", "--format", "json", "--word-timestamps", clip]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(json["language"], "en", "{json}");
    let words = json["words"].as_array().expect("words");
    assert!(words.len() >= 6, "{json}");
    assert!(
        words
            .windows(2)
            .all(|w| w[0]["end"].as_f64() <= w[1]["start"].as_f64().map(|s| s + 1e-9))
    );

    // Several files into a folder.
    let dir = tempfile::tempdir().expect("temp dir");
    let output = tessera(&[
        "transcribe",
        "--format",
        "vtt",
        "--output-dir",
        dir.path().to_str().unwrap(),
        clip,
        "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0930.wav",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let vtt = std::fs::read_to_string(
        dir.path()
            .join("sense_and_sensibility_01_austen_64kb-0930.vtt"),
    )
    .expect("a .vtt per file");
    assert!(
        vtt.starts_with("WEBVTT") && vtt.to_lowercase().contains("amiable"),
        "{vtt}"
    );

    let output = tessera(&["transcribe", "--language", "xx", clip]);
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("unknown language `xx`"),
        "{}",
        text(&output.stderr)
    );
}

/// A Hugging Face Whisper checkpoint (made here from the registry's CTranslate2 weights) is
/// converted on first use and transcribes like the weights it came from.
#[test]
fn a_hugging_face_whisper_checkpoint_transcribes_after_conversion() {
    let registry = match std::env::var_os("TESSERA_HOME").filter(|h| !h.is_empty()) {
        Some(home) => std::path::PathBuf::from(home),
        None => {
            std::path::PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/tessera")
        }
    }
    .join("models/whisper-tiny.en");
    let dir = tempfile::tempdir().expect("temp dir");
    let checkpoint = dir.path().join("whisper-tiny-en-hf");
    tessera_hub::convert::ct2_to_hf(&registry, &checkpoint).expect("export to Hugging Face");
    assert!(checkpoint.join("model.safetensors").is_file());
    let clip =
        "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0930.wav";
    // A home of its own, offline: the conversion lands there, and no VAD is fetched.
    let home = dir.path().join("home");
    let output = Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["transcribe", "--no-vad", "--model"])
        .arg(&checkpoint)
        .arg(clip)
        .env("TESSERA_HOME", &home)
        .env("TESSERA_OFFLINE", "1")
        .output()
        .expect("run tessera");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let said = text(&output.stdout).to_lowercase();
    assert!(said.contains("made amiable himself"), "{said}");
    let converted: Vec<_> = std::fs::read_dir(home.join("converted"))
        .expect("a converted folder")
        .filter_map(|e| e.ok())
        .collect();
    assert_eq!(converted.len(), 1);
    assert!(converted[0].path().join("model.bin").is_file());

    // The conversion shows in `tessera list` and `tessera rm` deletes it.
    let folder = converted[0].file_name().to_string_lossy().into_owned();
    let in_home = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(args)
            .env("TESSERA_HOME", &home)
            .env("TESSERA_OFFLINE", "1")
            .output()
            .expect("run tessera")
    };
    let listed = in_home(&["list"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let id = format!("converted/{folder}");
    assert!(
        text(&listed.stdout).contains(&id),
        "{}",
        text(&listed.stdout)
    );
    let json = in_home(&["list", "--json"]);
    let line = text(&json.stdout)
        .lines()
        .find(|line| line.contains(&id))
        .map(str::to_string)
        .expect("the conversion in list --json");
    let entry: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
    assert_eq!(entry["converted"], true);
    assert!(
        entry["size_bytes"].as_u64().unwrap_or(0) > 10_000_000,
        "{entry}"
    );
    let unknown = in_home(&["rm", "converted/not-there"]);
    assert!(!unknown.status.success());
    assert!(
        text(&unknown.stderr).contains(&id),
        "{}",
        text(&unknown.stderr)
    );
    let removed = in_home(&["rm", &id]);
    assert!(removed.status.success(), "{}", text(&removed.stderr));
    assert!(
        text(&removed.stdout).contains("MB freed"),
        "{}",
        text(&removed.stdout)
    );
    assert!(!converted[0].path().exists());
    assert!(!text(&in_home(&["list"]).stdout).contains(&id));
}
