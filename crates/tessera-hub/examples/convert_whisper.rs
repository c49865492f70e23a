//! Converts a Whisper model between a Hugging Face checkpoint and a CTranslate2 folder.
//!
//! ```text
//! cargo run -p tessera-hub --example convert_whisper -- to-ct2 ./whisper-small ./whisper-small-ct2
//! cargo run -p tessera-hub --example convert_whisper -- to-hf ~/.cache/tessera/models/whisper-base ./whisper-base-hf
//! ```

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use tessera_hub::convert::{ct2_to_hf, hf_to_ct2};

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [direction, from, to] = args.as_slice() else {
        eprintln!("usage: convert_whisper to-ct2|to-hf FROM_DIR NEW_DIR");
        return ExitCode::FAILURE;
    };
    let convert = match direction.as_str() {
        "to-ct2" => hf_to_ct2,
        "to-hf" => ct2_to_hf,
        other => {
            eprintln!("unknown direction {other:?}: use to-ct2 or to-hf");
            return ExitCode::FAILURE;
        }
    };
    let started = Instant::now();
    match convert(Path::new(from), Path::new(to)) {
        Ok(converted) => {
            println!(
                "{}: {:?}, {} ({:.1?})",
                converted.dir.display(),
                converted.dims,
                converted.dtype,
                started.elapsed()
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
