//! `tessera serve`: the HTTP server until SIGTERM or Ctrl-C.

use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::PrometheusBuilder;
use tessera_hub::Hub;
use tessera_runtime::{Runtime, TestHooks};
use tessera_server::{ApiKey, AppState, AuthConfig, Realtime, ServerConfig};
use tessera_tasks::Registry;
use tessera_voice::VoiceModels;

use crate::cli::{Secret, ServeArgs};
use crate::config::FileConfig;

pub fn run(args: ServeArgs, file: FileConfig) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    let result = runtime.block_on(serve(args, file));
    // A download or load still running on the blocking pool must not hold the exit past the grace.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

/// The model runtime the serve flags describe.
fn model_runtime(args: &ServeArgs, file: FileConfig) -> anyhow::Result<Runtime> {
    let mut config = super::runtime_config(&args.engine);
    let flags = &args.runtime;
    config.idle_unload = Some(flags.idle_unload).filter(|d| !d.is_zero());
    if let Some(budget) = flags.memory_budget {
        config.memory_budget = budget;
    }
    config.pinned = flags
        .pin
        .iter()
        .filter(|p| !p.is_empty())
        .cloned()
        .collect();
    config.load_cooldown = flags.load_cooldown;
    if let Some(limit) = flags.max_preprocessing {
        config.max_preprocessing = limit;
    }
    config.limits.max_inputs = flags.max_inputs;
    config.limits.max_tokens = flags.max_request_tokens;
    config.limits.max_audio_seconds = flags.max_audio_seconds;
    config.limits.max_image_pixels = flags.max_image_pixels;
    for dir in &flags.model_dirs {
        let dir = dir.canonicalize().with_context(|| {
            format!(
                "--model-dir {} is not a folder this server can read",
                dir.display()
            )
        })?;
        config.model_dirs.push(dir);
    }
    config.models = file.models;
    config.hooks = TestHooks::from_env();
    tracing::info!(
        memory_budget_mb = config.memory_budget / 1_000_000,
        idle_unload_s = config.idle_unload.map_or(0, |d| d.as_secs()),
        model_dirs = config.model_dirs.len(),
        "runtime configured"
    );
    Ok(Runtime::new(Hub::from_env()?, Registry::builtin(), config))
}

async fn serve(args: ServeArgs, file: FileConfig) -> anyhow::Result<()> {
    // Bad keys stop the start before any model loads.
    let auth = auth_config(&args)?;
    let metrics = PrometheusBuilder::new()
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0,
        ])
        .context("invalid histogram buckets")?
        .install_recorder()
        .context("could not install the metrics recorder")?;
    // Load the ONNX Runtime library now, so its own memory is not counted as the first model's
    // resident size. Models on other engines still serve without it.
    match tessera_engines::onnx::init_runtime() {
        Ok(library) => tracing::debug!(library = %library.display(), "ONNX Runtime ready"),
        Err(error) => tracing::warn!(%error, "ONNX models will not load"),
    }
    let runtime = model_runtime(&args, file)?;
    for model in args.preload.iter().filter(|m| !m.is_empty()) {
        runtime.load(model).await.with_context(|| {
            format!("could not load `{model}` at start (pass --preload to choose others)")
        })?;
    }
    let config = ServerConfig {
        body_limit: args.body_limit,
        upload_limit: args.upload_limit,
        request_timeout: Duration::from_secs(args.request_timeout),
        auth,
    };
    let engines = runtime.clone();
    let app = tessera_server::router(
        AppState {
            runtime,
            metrics: Some(metrics),
            realtime: Realtime::new(
                VoiceModels {
                    stt: args.realtime_stt.clone(),
                    llm: args.realtime_llm.clone(),
                    tts: args.realtime_tts.clone(),
                    ..VoiceModels::default()
                },
                args.max_realtime_sessions.max(1),
            ),
        },
        &config,
    );
    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
        .await
        .with_context(|| format!("could not listen on {}:{}", args.host, args.port))?;
    let address = listener.local_addr()?;
    // Scripts and tests read this line to find the port.
    println!("tessera listening on http://{address}");
    tracing::info!(%address, auth = ?config.auth, "serving");
    if let Some(warning) = config.auth.exposure_warning(address) {
        tracing::warn!("{warning}");
    }
    let grace = Duration::from_secs(args.shutdown_grace);
    let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown_signal().await;
        tracing::info!("shutting down; finishing in-flight requests");
        let _ = stopping_tx.send(());
    };
    let server = tokio::spawn(tessera_server::serve(listener, app, shutdown));
    tokio::select! {
        result = server => result??,
        _ = async { let _ = stopping_rx.await; tokio::time::sleep(grace).await } => {
            tracing::warn!(seconds = grace.as_secs(), "in-flight requests did not finish in time; exiting");
        }
    }
    // The engines' threads stop before the process exits (see Runtime::shutdown).
    tokio::task::spawn_blocking(move || engines.shutdown(ENGINE_STOP))
        .await
        .context("stopping the engines")?;
    Ok(())
}

/// How long the server waits, once its requests are done or abandoned, for the engines to
/// stop computing.
const ENGINE_STOP: Duration = Duration::from_secs(2);

/// The keys of --api-key, --api-key-file, --admin-key and --metrics-key. Error messages say
/// which flag and which key is at fault, never the key.
fn auth_config(args: &ServeArgs) -> anyhow::Result<AuthConfig> {
    fn keys(secrets: &[Secret], flag: &str) -> anyhow::Result<Vec<ApiKey>> {
        secrets
            .iter()
            .enumerate()
            .map(|(i, secret)| {
                ApiKey::new(secret.expose().trim()).with_context(|| {
                    format!("{flag}: key {} of {} is not usable", i + 1, secrets.len())
                })
            })
            .collect()
    }
    let mut user_keys = keys(&args.api_keys, "--api-key (or TESSERA_API_KEY)")?;
    if let Some(path) = &args.api_key_file {
        user_keys.extend(tessera_server::read_key_file(path).context("--api-key-file")?);
    }
    let admin_keys = keys(&args.admin_keys, "--admin-key (or TESSERA_ADMIN_KEY)")?;
    let metrics_key = keys(
        args.metrics_key.as_slice(),
        "--metrics-key (or TESSERA_METRICS_KEY)",
    )?
    .pop();
    Ok(AuthConfig {
        user_keys,
        admin_keys,
        metrics_key,
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
