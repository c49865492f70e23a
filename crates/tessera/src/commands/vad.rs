//! `tessera vad`: the speech segments of audio files.

use anyhow::Context;
use tessera_tasks::vad::{VadFrontend, VadOptions, VadRequest};

use crate::cli::VadArgs;

pub fn run(args: VadArgs) -> anyhow::Result<()> {
    let options = VadOptions {
        threshold: args.threshold,
        min_speech_ms: args.min_speech_ms,
        min_silence_ms: args.min_silence_ms,
        speech_pad_ms: args.speech_pad_ms,
    };
    let runtime = super::local_runtime(&args.engine)?;
    let several = args.files.len() > 1;
    for path in &args.files {
        let audio =
            std::fs::read(path).with_context(|| format!("could not read {}", path.display()))?;
        let request = VadRequest { audio, options };
        let result = super::block_on(runtime.run::<VadFrontend>(&args.model, request))?
            .with_context(|| format!("{}", path.display()))?;
        if args.json {
            let output = serde_json::json!({
                "file": path.display().to_string(),
                "duration": result.duration,
                "segments": result.segments,
            });
            println!("{output}");
            continue;
        }
        if several {
            println!("# {}", path.display());
        }
        for segment in &result.segments {
            println!("{:.3}\t{:.3}", segment.start, segment.end);
        }
    }
    Ok(())
}
