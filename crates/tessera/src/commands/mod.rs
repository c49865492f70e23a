//! One module per verb; `run` dispatches.

mod bench;
mod embed;
mod hub;
mod serve;

use std::time::Duration;

use tessera_hub::Hub;
use tessera_runtime::packing::Budget;
use tessera_runtime::{BatchConfig, ModelManager, RuntimeConfig};

use crate::cli::{BenchCommand, Cli, Command, EngineArgs};

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Pull { models } => hub::pull(&models),
        Command::List { json } => hub::list(json),
        Command::Rm { models } => hub::remove(&models),
        Command::Embed(args) => embed::run(args),
        Command::Bench(BenchCommand::Embed(args)) => bench::embed(args),
    }
}

/// The runtime settings the engine flags describe.
fn runtime_config(args: &EngineArgs) -> RuntimeConfig {
    let mut config = RuntimeConfig::default();
    config.session.device = args.device;
    config.session.intra_threads = args.threads;
    config.session.inter_threads = args.inter_threads;
    config.session.optimization = args.graph_optimization;
    config.batch = BatchConfig {
        budget: Budget {
            max_tokens: args.max_batch_tokens,
            ..Budget::default()
        },
        max_wait: Duration::from_millis(args.batch_wait_ms),
        queue_capacity: args.queue_capacity,
    };
    config
}

fn model_manager(args: &EngineArgs) -> anyhow::Result<ModelManager> {
    Ok(ModelManager::new(Hub::from_env()?, runtime_config(args)))
}
