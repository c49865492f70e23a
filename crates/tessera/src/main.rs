//! The `tessera` command: serve models over HTTP, pull them into the cache, run them from the shell.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // The server and downloads report progress; one-shot commands keep stderr for problems.
    let chatty = matches!(
        cli.command,
        cli::Command::Serve(_) | cli::Command::Pull { .. }
    );
    init_logging(cli.verbose, chatty);
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // The whole cause chain, once.
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(verbose: u8, chatty: bool) {
    let default = match verbose {
        0 if chatty => "info,ort=warn",
        0 => "warn",
        1 => "debug,ort=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
