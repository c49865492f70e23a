//! `tessera bench chat`: how fast an LLM reads prompts and writes tokens, alone, over HTTP, with
//! concurrent streams and with the prefix cache. `bench/chat_vs_llama_cpp_python.py` runs it next
//! to llama-cpp-python on the same GGUF and threads.
//!
//! Generation runs in completion mode with the end-of-text tokens banned (`logit_bias`), so every
//! stream writes exactly `--tokens` tokens; prompts start with a round number so no round reuses
//! another's cache unless it is meant to.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use tessera_runtime::Runtime;
use tessera_tasks::chat::{ChatMessage, Role};
use tessera_tasks::llm::{Event, Generate, GenerateRequest, Prompt, Sampling, ToolChoice};

use super::bench::{Lcg, LocalServer, sentence};
use crate::cli::BenchChatArgs;

/// One figure.
#[derive(Debug, Serialize)]
struct Figure {
    metric: &'static str,
    value: f64,
    unit: &'static str,
}

/// What one stream measured.
#[derive(Debug, Clone, Copy)]
struct Timing {
    first_token: Duration,
    total: Duration,
    generated: usize,
    prompt: usize,
}

impl Timing {
    fn generation_rate(&self) -> f64 {
        let writing = (self.total - self.first_token).as_secs_f64();
        (self.generated.saturating_sub(1)) as f64 / writing.max(1e-9)
    }
}

pub(super) fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn chat(args: BenchChatArgs) -> anyhow::Result<()> {
    if args.rounds == 0 || args.tokens < 2 {
        bail!("--rounds must be at least 1 and --tokens at least 2");
    }
    let runtime = super::local_runtime(&args.engine)?;
    let driver = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    driver.block_on(runtime.load(&args.model))?;
    let (ends, words) = driver.block_on(runtime.with_frontend::<Generate, _>(&args.model, {
        let target = args.prompt_tokens;
        move |frontend| {
            // Enough words for the prompt size asked for, counted by the model's tokenizer.
            let mut rng = Lcg(0x5eed);
            let mut text = String::new();
            while frontend.tokenize(&text, true).len() < target {
                text.push_str(&sentence(&mut rng, 12));
                text.push(' ');
            }
            Ok((frontend.end_tokens(), text))
        }
    }))?;
    if args.print_prompt {
        println!("{}", words.trim_end());
        return Ok(());
    }
    let bench = Bench {
        model: args.model.clone(),
        runtime: runtime.clone(),
        driver: &driver,
        ends,
        tokens: args.tokens,
    };
    let server = LocalServer::start(runtime.clone(), "/v1/chat/completions")?;
    let mut figures = Vec::new();
    let mut push = |metric, value, unit| {
        let figure = Figure {
            metric,
            value,
            unit,
        };
        if args.json {
            println!("{}", serde_json::to_string(&figure).unwrap_or_default());
        }
        figures.push(figure);
    };

    // Alone, in-process and over HTTP, on fresh prompts.
    let words = words.trim_end();
    let prompt = |round: usize| format!("Round {round}. {words}");
    let alone: Vec<Timing> = (0..args.rounds)
        .map(|round| bench.stream(Prompt::text(prompt(round))))
        .collect::<anyhow::Result<_>>()?;
    let http: Vec<Timing> = (0..args.rounds)
        .map(|round| server.stream(&bench, &prompt(1000 + round)))
        .collect::<anyhow::Result<_>>()?;
    let prompt_tokens = alone[0].prompt;
    push(
        "prompt_tokens_per_s",
        median(
            alone
                .iter()
                .map(|t| t.prompt as f64 / t.first_token.as_secs_f64())
                .collect(),
        ),
        "tokens/s",
    );
    push(
        "generated_tokens_per_s",
        median(alone.iter().map(Timing::generation_rate).collect()),
        "tokens/s",
    );
    push(
        "first_token_ms",
        median(alone.iter().map(|t| ms(t.first_token)).collect()),
        "ms",
    );
    push(
        "http_first_token_ms",
        median(http.iter().map(|t| ms(t.first_token)).collect()),
        "ms",
    );
    push(
        "http_generated_tokens_per_s",
        median(http.iter().map(Timing::generation_rate).collect()),
        "tokens/s",
    );
    let per_token = |timings: &[Timing]| {
        median(
            timings
                .iter()
                .map(|t| {
                    ms(t.total - t.first_token) / (t.generated.saturating_sub(1)).max(1) as f64
                })
                .collect(),
        )
    };
    push(
        "http_overhead_ms_per_token",
        per_token(&http) - per_token(&alone),
        "ms",
    );
    push("prompt_tokens", prompt_tokens as f64, "tokens");

    // Several streams at once: continuous batching. Short prompts, so the figure is about
    // writing tokens (the 200-token prompts above would make it mostly prompt reading); the
    // single-stream rate for the same prompts is measured alongside, as the baseline.
    let short = |i: usize| format!("Story {i}. Once upon a time, in a small town by the sea,");
    let single: Vec<f64> = (0..args.rounds)
        .map(|round| bench.aggregate(1, &|i| short(90_000 + 100 * round + i)))
        .collect::<anyhow::Result<_>>()?;
    push("short_prompt_tokens_per_s_1", median(single), "tokens/s");
    for &streams in &args.streams {
        let rates: Vec<f64> = (0..args.rounds)
            .map(|round| bench.aggregate(streams, &|i| short(10_000 * (round + 1) + i)))
            .collect::<anyhow::Result<_>>()?;
        push(
            match streams {
                4 => "aggregate_tokens_per_s_4",
                8 => "aggregate_tokens_per_s_8",
                _ => "aggregate_tokens_per_s",
            },
            median(rates),
            "tokens/s",
        );
    }

    // A conversation's second turn starts from the first turn's cache.
    let mut first = Vec::new();
    let mut second = Vec::new();
    for round in 0..args.rounds {
        let system = ChatMessage::system(format!("Conversation {round}. {words}"));
        let question = ChatMessage::user("Summarise the text above in one sentence.");
        let turn = bench.stream(Prompt::chat(vec![system.clone(), question.clone()]))?;
        first.push(ms(turn.first_token));
        let reply = ChatMessage::new(Role::Assistant, "It describes a model that runs fast.");
        let follow = ChatMessage::user("Now say it in five words.");
        let turn = bench.stream(Prompt::chat(vec![system, question, reply, follow]))?;
        second.push(ms(turn.first_token));
    }
    let (first, second) = (median(first), median(second));
    push("first_turn_first_token_ms", first, "ms");
    push("second_turn_first_token_ms", second, "ms");
    push("second_turn_ratio", second / first, "×");

    if !args.json {
        println!(
            "{} on {} threads, {prompt_tokens}-token prompts, {} generated tokens per stream, median of {} rounds",
            args.model,
            args.engine
                .llm_threads
                .map_or("all physical core".into(), |t| t.to_string()),
            args.tokens,
            args.rounds
        );
        for figure in &figures {
            println!(
                "  {:<32} {:>10.2} {}",
                figure.metric, figure.value, figure.unit
            );
        }
    }
    Ok(())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

trait PromptExt {
    fn text(prompt: String) -> Prompt;
    fn chat(messages: Vec<ChatMessage>) -> Prompt;
}

impl PromptExt for Prompt {
    fn text(prompt: String) -> Prompt {
        Prompt::Text {
            prompt,
            suffix: None,
        }
    }
    fn chat(messages: Vec<ChatMessage>) -> Prompt {
        Prompt::Chat {
            messages,
            tools: Vec::new(),
            tool_choice: ToolChoice::None,
        }
    }
}

/// The measured model, in-process.
struct Bench<'a> {
    model: String,
    runtime: Runtime,
    driver: &'a tokio::runtime::Runtime,
    ends: Vec<i32>,
    tokens: u32,
}

impl Bench<'_> {
    fn request(&self, prompt: Prompt) -> GenerateRequest {
        GenerateRequest {
            prompt: Some(prompt),
            sampling: Sampling {
                temperature: 0.0,
                logit_bias: self.ends.iter().map(|&t| (t, f32::NEG_INFINITY)).collect(),
                ..Sampling::default()
            },
            max_tokens: Some(self.tokens),
            ..GenerateRequest::default()
        }
    }

    fn stream(&self, prompt: Prompt) -> anyhow::Result<Timing> {
        let request = self.request(prompt);
        self.driver
            .block_on(timed(self.runtime.clone(), self.model.clone(), request))
    }

    /// Generated tokens per second over `streams` concurrent streams.
    fn aggregate(&self, streams: usize, prompt: &dyn Fn(usize) -> String) -> anyhow::Result<f64> {
        let started = Instant::now();
        let tasks: Vec<_> = (0..streams)
            .map(|i| {
                let request = self.request(Prompt::text(prompt(i)));
                self.driver
                    .spawn(timed(self.runtime.clone(), self.model.clone(), request))
            })
            .collect();
        let mut generated = 0;
        for task in tasks {
            generated += self.driver.block_on(task)??.generated;
        }
        Ok(generated as f64 / started.elapsed().as_secs_f64())
    }
}

/// Runs one generation and times its first token and its end.
async fn timed(
    runtime: Runtime,
    model: String,
    request: GenerateRequest,
) -> anyhow::Result<Timing> {
    let started = Instant::now();
    let mut generation = runtime.run::<Generate>(&model, request).await?;
    let prompt = generation.prompt_tokens;
    let mut first_token = None;
    while let Some(event) = generation.events.recv().await {
        match event {
            Event::Text { .. } => {
                first_token.get_or_insert_with(|| started.elapsed());
            }
            Event::Done { usage, .. } => {
                return Ok(Timing {
                    first_token: first_token.unwrap_or_else(|| started.elapsed()),
                    total: started.elapsed(),
                    generated: usage.completion_tokens,
                    prompt,
                });
            }
            Event::Failed(message) => bail!("generation failed: {message}"),
        }
    }
    bail!("the generation ended without its last event")
}

/// A streamed chat over HTTP (as the peer's figure is taken), timed at the first text chunk
/// and at `[DONE]`.
trait StreamOverHttp {
    fn stream(&self, bench: &Bench<'_>, prompt: &str) -> anyhow::Result<Timing>;
}

impl StreamOverHttp for LocalServer {
    fn stream(&self, bench: &Bench<'_>, prompt: &str) -> anyhow::Result<Timing> {
        let bias: serde_json::Map<String, serde_json::Value> = bench
            .ends
            .iter()
            .map(|t| (t.to_string(), serde_json::json!(-100)))
            .collect();
        let body = serde_json::json!({
            "model": bench.model, "messages": [{"role": "user", "content": prompt}],
            "max_tokens": bench.tokens, "temperature": 0,
            "logit_bias": bias, "stream": true, "stream_options": {"include_usage": true},
        });
        let started = Instant::now();
        let response = self
            .agent
            .post(&self.url)
            .send_json(&body)
            .context("HTTP request failed")?;
        let mut first_token = None;
        let mut usage = None;
        for line in BufReader::new(response.into_body().into_reader()).lines() {
            let line = line?;
            let Some(data) = line.strip_prefix("data: ") else {
                continue;
            };
            if data == "[DONE]" {
                break;
            }
            let chunk: serde_json::Value = serde_json::from_str(data)?;
            if chunk["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty())
            {
                first_token.get_or_insert_with(|| started.elapsed());
            }
            if chunk["usage"].is_object() {
                usage = Some(chunk["usage"].clone());
            }
        }
        let usage = usage.context("the stream sent no usage")?;
        Ok(Timing {
            first_token: first_token.unwrap_or_else(|| started.elapsed()),
            total: started.elapsed(),
            generated: usage["completion_tokens"].as_u64().unwrap_or(0) as usize,
            prompt: usage["prompt_tokens"].as_u64().unwrap_or(0) as usize,
        })
    }
}
