//! The `tessera` command: serve models over HTTP, pull them into the cache, run them from the shell.

mod cli;
mod commands;
mod config;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The version names the engines, and llama.cpp's line says which CPU kernels it runs with
    // (AVX2, AVX-512 …), which needs its backend started: only when asked.
    if args.len() == 2 && (args[1] == "--version" || args[1] == "-V") {
        println!("tessera {}", cli::version());
        println!("llama.cpp: {}", tessera_engines::llama::system_info());
        return ExitCode::SUCCESS;
    }
    // The settings file shapes the parser (its values become the flags' defaults), so it is read first.
    let file = match config::FileConfig::load(&args).and_then(|file| {
        let command = file.apply(cli::Cli::command())?;
        Ok((file, command))
    }) {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(2);
        }
    };
    let (file, command) = file;
    let cli = match cli::Cli::from_arg_matches(&command.get_matches_from(args)) {
        Ok(cli) => cli,
        Err(error) => error.exit(),
    };
    // The server and downloads report progress; one-shot commands keep stderr for problems.
    let chatty = matches!(
        cli.command,
        cli::Command::Serve(_) | cli::Command::Pull { .. }
    );
    init_logging(cli.verbose, chatty);
    if let Some(path) = &file.path {
        tracing::info!(file = %path.display(), "settings read");
    }
    match commands::run(cli, file) {
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
        // llama.cpp narrates every load at its info level; its warnings are what matter.
        0 if chatty => "info,ort=warn,llama-cpp-2=warn",
        0 => "warn",
        1 => "debug,ort=info,llama-cpp-2=info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("TESSERA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in files or journald.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
