//! One module per verb; `run` dispatches.

mod bench;
mod bench_chat;
mod bench_speak;
mod bench_transcribe;
mod bench_vad;
mod bench_vision;
mod bench_voice;
mod chat;
mod classify;
mod detect;
mod embed;
mod hub;
mod ocr;
mod photos;
#[cfg(feature = "play")]
mod play;
#[cfg(not(feature = "play"))]
#[path = "play_disabled.rs"]
mod play;
mod pose;
mod segment;
mod serve;
mod speak;
mod transcribe;
mod vad;
mod voice;

use std::time::Duration;

use tessera_hub::Hub;
use tessera_runtime::packing::Budget;
use tessera_runtime::{BatchConfig, Runtime, RuntimeConfig};
use tessera_tasks::Registry;

use crate::cli::{BenchCommand, Cli, Command, EngineArgs};
use crate::config::FileConfig;

pub fn run(cli: Cli, file: FileConfig) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(*args, file),
        Command::Pull { models } => hub::pull(&models),
        Command::List { json } => hub::list(json),
        Command::Rm { models } => hub::remove(&models),
        Command::Embed(args) => embed::run(args),
        Command::Chat(args) => chat::chat(args),
        Command::Complete(args) => chat::complete(args),
        Command::Vad(args) => vad::run(args),
        Command::Segment(args) => segment::run(args),
        Command::Classify(args) => classify::run(args),
        Command::Detect(args) => detect::run(args),
        Command::Pose(args) => pose::run(args),
        Command::Ocr(args) => ocr::run(args),
        Command::Speak(args) => speak::run(args),
        Command::Transcribe(args) => transcribe::run(args),
        Command::Voice(args) => voice::run(args),
        Command::Bench(BenchCommand::Embed(args)) => bench::embed(args),
        Command::Bench(BenchCommand::Chat(args)) => bench_chat::chat(args),
        Command::Bench(BenchCommand::Vad(args)) => bench_vad::run(args),
        Command::Bench(BenchCommand::Speak(args)) => bench_speak::run(args),
        Command::Bench(BenchCommand::Transcribe(args)) => bench_transcribe::run(args),
        Command::Bench(BenchCommand::Voice(args)) => bench_voice::run(args),
        Command::Bench(BenchCommand::Vision(args)) => bench_vision::run(args),
    }
}

/// The runtime settings the engine flags describe, with the server's defaults for the rest.
fn runtime_config(args: &EngineArgs) -> RuntimeConfig {
    let mut config = RuntimeConfig::default();
    config.session.device = args.device;
    config.session.intra_threads = args.threads;
    config.session.inter_threads = args.inter_threads;
    config.session.optimization = args.graph_optimization;
    config.batch = BatchConfig {
        budget: Budget {
            max_tokens: args.max_batch_tokens,
            max_pixels: args.max_batch_pixels,
            ..Budget::default()
        },
        max_wait: Duration::from_millis(args.batch_wait_ms),
        queue_capacity: args.queue_capacity,
    };
    config.replicas = usize::from(args.replicas);
    config.llm = tessera_tasks::LlmSettings {
        context: args.ctx_size,
        sequences: args.parallel,
        batch: args.batch_size,
        threads: args.llm_threads,
        kv_type: args.kv_cache_type.clone(),
        flash_attention: args.flash_attn.clone(),
        gpu_layers: args.gpu_layers,
    };
    config
}

/// A runtime for one-shot commands: any local path is a model, no request caps, nothing unloads.
fn local_runtime(args: &EngineArgs) -> anyhow::Result<LocalRuntime> {
    let mut config = runtime_config(args);
    config.any_path = true;
    config.idle_unload = None;
    config.limits.max_inputs = usize::MAX;
    config.limits.max_tokens = usize::MAX;
    config.limits.max_audio_seconds = u32::MAX;
    Ok(LocalRuntime(Runtime::new(
        Hub::from_env()?,
        Registry::builtin(),
        config,
    )))
}

/// How long a command waits at its end for engines still computing work nobody waits for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A one-shot command's model runtime. Dropped when the command ends (after its async runtime,
/// so no caller is left), it stops the engines' threads before the process exits: one still
/// computing while the native libraries' static destructors run would crash the process.
/// Async code takes a clone of the [`Runtime`] inside.
struct LocalRuntime(Runtime);

impl std::ops::Deref for LocalRuntime {
    type Target = Runtime;

    fn deref(&self) -> &Runtime {
        &self.0
    }
}

impl Drop for LocalRuntime {
    fn drop(&mut self) {
        self.0.shutdown(SHUTDOWN_GRACE);
    }
}

/// An async runtime for one-shot commands that call the model runtime.
fn block_on<T>(future: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(runtime.block_on(future))
}
