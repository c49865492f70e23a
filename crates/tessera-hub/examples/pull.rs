//! Pulls catalog models (or resolves local paths) and prints where their files are.
//!
//! ```text
//! TESSERA_HOME=/tmp/tessera cargo run -p tessera-hub --example pull -- silero-vad whisper-tiny.en
//! ```
//!
//! With no arguments it prints the cache status of every model.

use std::process::ExitCode;

use tessera_hub::Hub;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let hub = match Hub::from_env() {
        Ok(hub) => hub,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let specs: Vec<String> = std::env::args().skip(1).collect();
    if specs.is_empty() {
        for status in hub.status() {
            println!(
                "{:<30} {:<10} {:<12} {:>12} / {:>12} bytes{}",
                status.id,
                status.task,
                status.engine,
                status.cached_bytes,
                status.total_size,
                if status.complete { "  complete" } else { "" }
            );
        }
        return ExitCode::SUCCESS;
    }
    let mut code = ExitCode::SUCCESS;
    for spec in specs {
        match hub.resolve(&spec) {
            Ok(model) => {
                println!(
                    "{} ({} on {}) in {}",
                    model.id,
                    model
                        .task
                        .map_or("task unknown".to_string(), |t| t.to_string()),
                    model.engine,
                    model.dir.display()
                );
                for file in &model.files {
                    println!("  {}", file.display());
                }
            }
            Err(error) => {
                eprintln!("error: {error}");
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}
