//! `tessera bench transcribe`: Whisper's time per file, in process, model loaded once.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use tessera_tasks::transcribe::{TranscribeFrontend, TranscribeRequest};

use super::bench_chat::median;
use crate::cli::BenchTranscribeArgs;

/// The LibriVox clips of Debian's pocketsphinx-testdata.
const LIBRIVOX: &str = "/usr/share/pocketsphinx/test/data/librivox";

pub fn run(args: BenchTranscribeArgs) -> anyhow::Result<()> {
    let files = if args.files.is_empty() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(LIBRIVOX)
            .with_context(|| format!("no files given and no clips in {LIBRIVOX} (apt-get install pocketsphinx-testdata)"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wav"))
            .collect();
        files.sort();
        files
    } else {
        args.files.clone()
    };
    let runtime = super::local_runtime(&args.engine)?;
    let request = |audio: Vec<u8>| TranscribeRequest {
        audio,
        language: Some(args.language.clone()),
        beam_size: args.beam_size,
        // The text is what is compared; segments' times are not.
        timestamps: false,
        short_window: args.short_window,
        ..TranscribeRequest::default()
    };
    let transcribe = |audio: Vec<u8>| {
        super::block_on(async {
            runtime
                .run::<TranscribeFrontend>(&args.model, request(audio))
                .await?
                .collect()
                .await
                .map_err(anyhow::Error::from)
        })?
    };
    let load = Instant::now();
    // The first call loads the model and warms the engine up.
    let first = std::fs::read(&files[0])
        .with_context(|| format!("could not read {}", files[0].display()))?;
    transcribe(first)?;
    let load_seconds = load.elapsed().as_secs_f64();
    let (mut total_audio, mut total_seconds) = (0.0, 0.0);
    for path in &files {
        let audio =
            std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
        let mut times = Vec::new();
        let mut transcript = None;
        for _ in 0..args.rounds.max(1) {
            let started = Instant::now();
            transcript = Some(transcribe(audio.clone())?);
            times.push(started.elapsed().as_secs_f64());
        }
        let Some(transcript) = transcript else {
            continue;
        };
        let seconds = median(times);
        total_audio += transcript.duration;
        total_seconds += seconds;
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "file": path.display().to_string(),
                    "model": args.model,
                    "audio_seconds": transcript.duration,
                    "seconds": seconds,
                    "rtf": seconds / transcript.duration,
                    "segments": transcript.segments.len(),
                    "text": transcript.text,
                })
            );
        } else {
            println!(
                "{}: {:.2} s of audio in {seconds:.3} s (RTF {:.3})  {}",
                path.display(),
                transcript.duration,
                seconds / transcript.duration,
                transcript.text
            );
        }
    }
    if !args.json {
        println!(
            "{}: {} files, {total_audio:.1} s of audio in {total_seconds:.2} s (RTF {:.3}); first call with load {load_seconds:.2} s",
            args.model,
            files.len(),
            total_seconds / total_audio
        );
    }
    Ok(())
}
