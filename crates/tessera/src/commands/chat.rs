//! `tessera chat` and `tessera complete`: an LLM in this process, its answer streamed to the
//! terminal.

use std::io::{IsTerminal, Read, Write};

use anyhow::{Context, bail};
use tessera_runtime::Runtime;
use tessera_tasks::chat::{ChatMessage, Role};
use tessera_tasks::llm::{Event, Generate, GenerateRequest, Prompt, Sampling, ToolChoice};

use crate::cli::{ChatArgs, CompleteArgs, SamplingArgs};

fn request(sampling: &SamplingArgs, prompt: Prompt) -> GenerateRequest {
    GenerateRequest {
        prompt: Some(prompt),
        sampling: Sampling {
            temperature: sampling.temperature,
            top_p: sampling.top_p,
            seed: sampling.seed,
            ..Sampling::default()
        },
        max_tokens: sampling.max_tokens,
        stop: sampling.stop.clone(),
        logprobs: None,
        response_format: Default::default(),
    }
}

fn message(role: Role, text: &str) -> ChatMessage {
    ChatMessage {
        role,
        content: Some(text.to_string()),
        name: None,
        tool_calls: Vec::new(),
        tool_call_id: None,
    }
}

/// How a streamed answer ended.
enum Ended {
    Finished,
    Interrupted,
}

/// Streams one answer to standard output; Ctrl-C stops it (the generation is dropped, which
/// frees its sequence) and returns what was written so far. Ctrl-C while the model loads stops
/// the wait, not the program.
async fn stream(
    runtime: &Runtime,
    model: &str,
    request: GenerateRequest,
) -> anyhow::Result<(String, Ended)> {
    let mut generation = tokio::select! {
        generation = runtime.run::<Generate>(model, request) => generation?,
        _ = tokio::signal::ctrl_c() => return Ok((String::new(), Ended::Interrupted)),
    };
    let mut text = String::new();
    let mut out = std::io::stdout();
    loop {
        let event = tokio::select! {
            event = generation.events.recv() => event,
            _ = tokio::signal::ctrl_c() => return Ok((text, Ended::Interrupted)),
        };
        match event {
            Some(Event::Text { text: piece, .. }) => {
                out.write_all(piece.as_bytes())?;
                out.flush()?;
                text.push_str(&piece);
            }
            Some(Event::Done { .. }) => return Ok((text, Ended::Finished)),
            Some(Event::Failed(message)) => bail!("generation failed: {message}"),
            None => bail!("the model stopped before the answer ended"),
        }
    }
}

/// Lines typed on standard input, read on their own thread so that the prompt can wait for a
/// line and for Ctrl-C at once. The channel closes at end of input (Ctrl-D).
fn typed_lines() -> tokio::sync::mpsc::Receiver<std::io::Result<String>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(1);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        loop {
            let mut line = String::new();
            match stdin.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) => {
                    if sender.blocking_send(Ok(line)).is_err() {
                        return;
                    }
                }
                Err(error) => {
                    // Nobody left to tell when the prompt has gone.
                    let _ = sender.blocking_send(Err(error));
                    return;
                }
            }
        }
    });
    receiver
}

fn read_stdin() -> anyhow::Result<String> {
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .context("could not read standard input")?;
    Ok(text)
}

pub fn chat(args: ChatArgs) -> anyhow::Result<()> {
    let runtime = super::local_runtime(&args.engine)?;
    let mut history: Vec<ChatMessage> = Vec::new();
    let mut system = args.system.clone();
    let one_shot = match &args.prompt {
        Some(prompt) => Some(prompt.clone()),
        None if !std::io::stdin().is_terminal() => Some(read_stdin()?),
        None => None,
    };
    super::block_on(async {
        if let Some(question) = one_shot {
            if question.trim().is_empty() {
                bail!("nothing to ask: give --prompt TEXT or text on standard input");
            }
            if let Some(system) = &system {
                history.push(message(Role::System, system));
            }
            history.push(message(Role::User, question.trim_end()));
            let prompt = Prompt::Chat {
                messages: history,
                tools: Vec::new(),
                tool_choice: ToolChoice::None,
            };
            stream(&runtime, &args.model, request(&args.sampling, prompt)).await?;
            println!();
            return Ok(());
        }
        eprintln!(
            "Chatting with {} (loading on the first question). /reset clears the history, /system TEXT sets the system prompt, /exit quits; Ctrl-C stops an answer.",
            args.model
        );
        let mut lines = typed_lines();
        loop {
            eprint!("> ");
            std::io::stderr().flush()?;
            let line = tokio::select! {
                line = lines.recv() => line,
                _ = tokio::signal::ctrl_c() => {
                    eprintln!();
                    eprintln!("(Ctrl-D or /exit quits)");
                    continue;
                }
            };
            let Some(line) = line else {
                eprintln!();
                return Ok(());
            };
            let line = line.context("could not read standard input")?;
            let line = line.trim();
            match line {
                "" => continue,
                "/exit" | "/quit" => return Ok(()),
                "/reset" => {
                    history.clear();
                    eprintln!("(history cleared)");
                    continue;
                }
                _ if line.starts_with("/system") => {
                    let text = line.trim_start_matches("/system").trim();
                    system = (!text.is_empty()).then(|| text.to_string());
                    history.clear();
                    eprintln!(
                        "(system prompt {}; history cleared)",
                        if system.is_some() { "set" } else { "removed" }
                    );
                    continue;
                }
                _ => {}
            }
            history.push(message(Role::User, line));
            let mut messages = Vec::new();
            if let Some(system) = &system {
                messages.push(message(Role::System, system));
            }
            messages.extend(history.iter().cloned());
            let prompt = Prompt::Chat {
                messages,
                tools: Vec::new(),
                tool_choice: ToolChoice::None,
            };
            match stream(&runtime, &args.model, request(&args.sampling, prompt)).await {
                Ok((answer, ended)) => {
                    println!();
                    if let Ended::Interrupted = ended {
                        eprintln!("(stopped)");
                    }
                    // What was shown is what the model said, even when cut short.
                    history.push(message(Role::Assistant, &answer));
                }
                Err(error) => {
                    history.pop();
                    eprintln!("error: {error:#}");
                }
            }
        }
    })?
}

/// `\n` and `\t` typed on a command line become newline and tab.
fn unescape(text: &str) -> String {
    text.replace("\\n", "\n").replace("\\t", "\t")
}

pub fn complete(args: CompleteArgs) -> anyhow::Result<()> {
    let prompt = match &args.prompt {
        Some(prompt) => unescape(prompt),
        None => read_stdin()?,
    };
    if prompt.is_empty() && args.suffix.is_none() {
        bail!("nothing to continue: give --prompt TEXT or text on standard input");
    }
    let runtime = super::local_runtime(&args.engine)?;
    let prompt = Prompt::Text {
        prompt,
        suffix: args.suffix.as_deref().map(unescape),
    };
    super::block_on(async {
        stream(&runtime, &args.model, request(&args.sampling, prompt)).await?;
        println!();
        anyhow::Ok(())
    })?
}
