//! `tessera transcribe`: Whisper on audio files, as text, JSON or subtitles.

use std::path::Path;

use anyhow::Context;
use tessera_tasks::transcribe::tokens::language_name;
use tessera_tasks::transcribe::{
    TranscribeFrontend, TranscribeRequest, Transcript, WhisperTask, subtitles,
};

use crate::cli::{TranscribeArgs, TranscriptFormat};

pub fn run(args: TranscribeArgs) -> anyhow::Result<()> {
    let runtime = super::local_runtime(&args.engine)?;
    if let Some(dir) = &args.output_dir {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
    }
    let several = args.files.len() > 1;
    for path in &args.files {
        let audio =
            std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
        let request = TranscribeRequest {
            audio,
            task: if args.translate {
                WhisperTask::Translate
            } else {
                WhisperTask::Transcribe
            },
            language: args.language.clone(),
            prompt: args.prompt.clone(),
            temperature: args.temperature,
            beam_size: args.beam_size,
            timestamps: args.format != TranscriptFormat::Text,
            word_timestamps: args.word_timestamps,
            vad: !args.no_vad,
            short_window: args.short_window,
        };
        let transcript = super::block_on(async {
            runtime
                .run::<TranscribeFrontend>(&args.model, request)
                .await?
                .collect()
                .await
                .map_err(anyhow::Error::from)
        })?
        .with_context(|| format!("{}", path.display()))?;
        let output = render(&transcript, path, args.format);
        match &args.output_dir {
            Some(dir) => {
                let stem = path.file_stem().unwrap_or(path.as_os_str());
                let target = dir.join(stem).with_extension(match args.format {
                    TranscriptFormat::Text => "txt",
                    TranscriptFormat::Json => "json",
                    TranscriptFormat::Srt => "srt",
                    TranscriptFormat::Vtt => "vtt",
                });
                std::fs::write(&target, output)
                    .with_context(|| format!("could not write {}", target.display()))?;
                eprintln!("{} → {}", path.display(), target.display());
            }
            None => {
                if several && args.format != TranscriptFormat::Json {
                    println!("# {}", path.display());
                }
                print!("{output}");
            }
        }
    }
    Ok(())
}

fn render(transcript: &Transcript, path: &Path, format: TranscriptFormat) -> String {
    match format {
        TranscriptFormat::Text => format!("{}\n", transcript.text),
        TranscriptFormat::Srt => subtitles::srt(&transcript.segments),
        TranscriptFormat::Vtt => subtitles::vtt(&transcript.segments),
        TranscriptFormat::Json => {
            let words: Vec<_> = transcript
                .segments
                .iter()
                .flat_map(|s| s.words.iter())
                .collect();
            let language = transcript.language;
            let json = serde_json::json!({
                "file": path.display().to_string(),
                "task": transcript.task.as_str(),
                "language": language.map(|l| l.code),
                "language_name": language.and_then(|l| language_name(l.code)),
                "language_probability": language.map(|l| l.probability),
                "duration": transcript.duration,
                "text": transcript.text,
                "segments": transcript.segments,
                "words": words,
            });
            format!("{json}\n")
        }
    }
}
