//! `tessera bench embed`: sentences/s and tokens/s at several batch sizes, in-process and over HTTP.
//!
//! Three sets of generated English sentences: ~20 tokens, ~128 tokens, and a mixed set of 8 to
//! 128 tokens in random order, where length-aware batching matters. `--write-sets` saves them so
//! `bench/embed_vs_python.py` runs the very same input through a Python pipeline.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tessera_runtime::Runtime;
use tessera_server::{AppState, ServerConfig};
use tessera_tasks::embed::{EmbedInput, EmbedRequest, Embeddings};

use crate::cli::BenchEmbedArgs;

/// One measurement.
#[derive(Debug, Serialize)]
struct Row {
    set: &'static str,
    mode: &'static str,
    batch: usize,
    requests: usize,
    sentences_per_s: f64,
    tokens_per_s: f64,
    ms_per_request: f64,
}

pub fn embed(args: BenchEmbedArgs) -> anyhow::Result<()> {
    if args.batches.contains(&0) {
        bail!("--batches must be positive numbers, e.g. --batches 1,8,32,64");
    }
    let sets = sentence_sets();
    if let Some(path) = &args.write_sets {
        let json: serde_json::Map<String, serde_json::Value> = sets
            .iter()
            .map(|(name, s)| (name.to_string(), serde_json::json!(s)))
            .collect();
        std::fs::write(path, serde_json::to_vec(&json)?)
            .with_context(|| format!("could not write {}", path.display()))?;
    }
    let runtime = super::local_runtime(&args.engine)?;
    let driver = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let handle = Model {
        id: args.model.clone(),
        runtime: runtime.clone(),
        driver: &driver,
    };
    driver.block_on(runtime.load(&args.model))?;
    let duration = Duration::from_secs_f64(args.seconds.max(0.0));
    let server = if args.no_http {
        None
    } else {
        Some(LocalServer::start(runtime.clone(), "/v1/embeddings")?)
    };
    let mut rows = Vec::new();
    for (set, sentences) in &sets {
        for &batch in &args.batches {
            let mut measured = vec![measure(
                set,
                "in-process",
                batch,
                sentences,
                duration,
                |texts| embed_in_process(&handle, texts),
            )?];
            if let Some(server) = &server {
                measured.push(measure(set, "http", batch, sentences, duration, |texts| {
                    server.embed(&handle, texts)
                })?);
            }
            if args.json {
                for row in &measured {
                    println!("{}", serde_json::to_string(row)?);
                }
            }
            rows.extend(measured);
        }
    }
    let mut overheads = Vec::new();
    if let Some(server) = &server {
        for (set, sentences) in &sets {
            let overhead = http_overhead(set, &handle, server, sentences, duration)?;
            if args.json {
                println!("{}", serde_json::to_string(&overhead)?);
            }
            overheads.push(overhead);
        }
    }
    if !args.json {
        print_table(&rows, &overheads);
    }
    Ok(())
}

/// The measured model, called in-process through the runtime.
struct Model<'a> {
    id: String,
    runtime: Runtime,
    driver: &'a tokio::runtime::Runtime,
}

/// Embeds through the runtime as the server would, minus HTTP; returns the tokens used.
fn embed_in_process(handle: &Model<'_>, texts: &[String]) -> anyhow::Result<usize> {
    let request = EmbedRequest {
        input: EmbedInput::Texts(texts.to_vec()),
        truncate: true,
        dimensions: None,
    };
    let embedded = handle
        .driver
        .block_on(handle.runtime.run::<Embeddings>(&handle.id, request))?;
    Ok(embedded.tokens)
}

/// HTTP's cost per request at batch 1, apart from inference.
#[derive(Debug, Serialize)]
struct Overhead {
    set: &'static str,
    mode: &'static str,
    batch: usize,
    pairs: usize,
    median_ms: f64,
}

/// Times the same sentence in-process and then over HTTP, pair after pair, and takes the median
/// difference: the pairs see the same machine load, so drift over the run cancels out.
fn http_overhead(
    set: &'static str,
    handle: &Model<'_>,
    server: &LocalServer,
    sentences: &[String],
    duration: Duration,
) -> anyhow::Result<Overhead> {
    let mut differences = Vec::new();
    let started = Instant::now();
    while differences.len() < 20 || (started.elapsed() < duration && differences.len() < 2000) {
        let text = &sentences[differences.len() % sentences.len()..][..1];
        let local = Instant::now();
        embed_in_process(handle, text)?;
        let local = local.elapsed().as_secs_f64();
        let remote = Instant::now();
        server.embed(handle, text)?;
        let remote = remote.elapsed().as_secs_f64();
        differences.push((remote - local) * 1000.0);
    }
    differences.sort_by(f64::total_cmp);
    Ok(Overhead {
        set,
        mode: "http-overhead",
        batch: 1,
        pairs: differences.len(),
        median_ms: differences[differences.len() / 2],
    })
}

fn measure(
    set: &'static str,
    mode: &'static str,
    batch: usize,
    sentences: &[String],
    duration: Duration,
    mut run: impl FnMut(&[String]) -> anyhow::Result<usize>,
) -> anyhow::Result<Row> {
    let batches: Vec<&[String]> = sentences
        .chunks(batch)
        .filter(|c| c.len() == batch)
        .collect();
    if batches.is_empty() {
        bail!("the {set} set has fewer than {batch} sentences");
    }
    run(batches[0])?; // warm-up
    let (mut requests, mut sentences_done, mut tokens) = (0usize, 0usize, 0usize);
    let started = Instant::now();
    while requests == 0 || started.elapsed() < duration {
        let texts = batches[requests % batches.len()];
        tokens += run(texts)?;
        sentences_done += texts.len();
        requests += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(Row {
        set,
        mode,
        batch,
        requests,
        sentences_per_s: sentences_done as f64 / seconds,
        tokens_per_s: tokens as f64 / seconds,
        ms_per_request: seconds * 1000.0 / requests as f64,
    })
}

fn print_table(rows: &[Row], overheads: &[Overhead]) {
    println!(
        "{:<7} {:<11} {:>5} {:>12} {:>12} {:>10}",
        "SET", "MODE", "BATCH", "SENTENCES/S", "TOKENS/S", "MS/REQ"
    );
    for row in rows {
        println!(
            "{:<7} {:<11} {:>5} {:>12.1} {:>12.0} {:>10.3}",
            row.set, row.mode, row.batch, row.sentences_per_s, row.tokens_per_s, row.ms_per_request
        );
    }
    for overhead in overheads {
        println!(
            "HTTP overhead at batch 1 ({}): {:.3} ms per request (median of {} paired requests)",
            overhead.set, overhead.median_ms, overhead.pairs
        );
    }
}

/// A tessera server on a loopback port, sharing the benchmark's models, on its own runtime.
pub(super) struct LocalServer {
    pub(super) url: String,
    pub(super) agent: ureq::Agent,
    _runtime: tokio::runtime::Runtime,
}

impl LocalServer {
    /// tessera's router on a loopback port, in this process; `url` is `route` on it.
    pub(super) fn start(models: Runtime, route: &str) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("http://{}{route}", listener.local_addr()?);
        let app = tessera_server::router(
            AppState {
                runtime: models,
                metrics: None,
                realtime: Default::default(),
            },
            &ServerConfig::default(),
        );
        runtime.spawn(tessera_server::serve(listener, app, std::future::pending()));
        Ok(LocalServer {
            url,
            agent: ureq::Agent::new_with_defaults(),
            _runtime: runtime,
        })
    }

    fn embed(&self, handle: &Model<'_>, texts: &[String]) -> anyhow::Result<usize> {
        let body = serde_json::json!({ "model": handle.id, "input": texts, "truncate": true });
        let mut response = self
            .agent
            .post(&self.url)
            .send_json(&body)
            .context("HTTP request failed")?;
        let reply: serde_json::Value = response.body_mut().read_json().context("bad JSON reply")?;
        Ok(reply["usage"]["prompt_tokens"].as_u64().unwrap_or(0) as usize)
    }
}

/// The three sets, generated from a fixed seed so every run and every peer sees the same text.
fn sentence_sets() -> Vec<(&'static str, Vec<String>)> {
    let mut rng = Lcg(0x07e5_5e7a);
    let short = (0..256).map(|_| sentence(&mut rng, 18)).collect();
    let long = (0..256).map(|_| sentence(&mut rng, 120)).collect();
    let mixed = (0..256)
        .map(|_| {
            let words = 6 + rng.below(115);
            sentence(&mut rng, words)
        })
        .collect();
    vec![("short", short), ("long", long), ("mixed", mixed)]
}

pub(super) fn sentence(rng: &mut Lcg, words: usize) -> String {
    const WORDS: &[&str] = &[
        "the", "a", "model", "runs", "fast", "on", "every", "machine", "people", "write", "code",
        "that", "reads", "well", "and", "tests", "prove", "it", "works", "server", "answers",
        "requests", "with", "vectors", "from", "text", "small", "large", "city", "river", "music",
        "house", "garden", "morning", "evening", "friend", "book", "water", "light", "window",
        "street", "market", "teacher", "student", "story", "game", "team", "player", "ball",
        "field", "weather", "rain", "sun", "cold", "warm", "quick", "brown", "fox", "jumps",
        "over", "lazy", "dog", "while", "children", "play", "outside", "near", "old", "bridge",
        "new", "train",
    ];
    let mut out: Vec<&str> = (0..words).map(|_| WORDS[rng.below(WORDS.len())]).collect();
    if let Some(first) = out.first_mut() {
        *first = "This";
    }
    format!("{}.", out.join(" "))
}

/// A tiny deterministic generator; the sets must not change between runs or versions.
pub(super) struct Lcg(pub(super) u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % n as u64) as usize
    }
}
