//! Text generation on llama.cpp: chat, completion and fill-in-the-middle, many sequences at once.
//!
//! - [`Generate`] is the frontend: it renders a chat through the model's own template
//!   ([`crate::chat::ChatTemplate`]), tokenizes, checks the request against the context, turns
//!   `response_format` and `tool_choice` into a grammar and builds the sequence's sampler.
//! - [`GenerateRunner`] owns the llama.cpp context on the model's worker: continuous batching
//!   (new sequences join between decode steps, prompts are fed in chunks beside the tokens
//!   being generated), a prefix cache (a new request starts from the longest cached prefix of
//!   any sequence), stop sequences, and a stream of [`Event`]s per request.

mod frontend;
mod runner;
pub mod text;

pub use frontend::{Generate, ModelInfo};
pub use runner::GenerateRunner;

use tessera_core::{EngineKind, Task};
use tessera_engines::llama::{
    ContextOptions, GgufModel, GgufOptions, Sampler, SamplerConfig, Token,
};
use tessera_hub::LocalModel;
use tokio::sync::mpsc;

use crate::TaskError;
use crate::chat::{ChatMessage, ToolFormat, ToolSpec};
use crate::registry::{Batching, Family, LoadContext, LoadedModel, file_bytes};

/// GGUF models on llama.cpp.
pub static FAMILY: Family = Family {
    name: "llama-gguf",
    task: Task::Chat,
    engine: EngineKind::Gguf,
    batching: Batching::Continuous,
    recognises: |model| {
        model
            .files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "gguf"))
    },
    load,
    // The weights (mmapped, so they count once resident) plus the KV cache and compute buffers,
    // which for the small models tessera ships are a fraction of the weights.
    estimate_bytes: |model| file_bytes(model) + file_bytes(model) / 2 + (64 << 20),
};

/// What to generate from.
#[derive(Debug, Clone)]
pub enum Prompt {
    /// A conversation, rendered with the model's chat template.
    Chat {
        /// The messages so far.
        messages: Vec<ChatMessage>,
        /// Functions the model may call.
        tools: Vec<ToolSpec>,
        /// Whether and which tool must be called.
        tool_choice: ToolChoice,
    },
    /// Raw text to continue; with a suffix, the middle between the two (fill-in-the-middle).
    Text {
        /// The text before.
        prompt: String,
        /// The text after the hole.
        suffix: Option<String>,
    },
}

/// OpenAI's `tool_choice`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    /// The model decides (the default when tools are given).
    #[default]
    Auto,
    /// No tool: the tools are not shown to the model.
    None,
    /// At least one tool call, forced by a grammar.
    Required,
    /// This function, forced by a grammar.
    Function(String),
}

/// OpenAI's `response_format`.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum ResponseFormat {
    /// Free text.
    #[default]
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON that validates against this schema.
    JsonSchema(serde_json::Value),
}

/// Sampling settings, as OpenAI names them (plus llama.cpp's usual extras).
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// 0 is greedy.
    pub temperature: f32,
    /// Nucleus sampling.
    pub top_p: f32,
    /// Keep the k most likely tokens (0 keeps all).
    pub top_k: i32,
    /// Relative probability floor.
    pub min_p: f32,
    /// Multiplicative repetition penalty (1 is off).
    pub repetition_penalty: f32,
    /// OpenAI's frequency penalty.
    pub frequency_penalty: f32,
    /// OpenAI's presence penalty.
    pub presence_penalty: f32,
    /// The random seed; `None` draws one.
    pub seed: Option<u64>,
    /// Bias per token id.
    pub logit_bias: Vec<(Token, f32)>,
}

impl Default for Sampling {
    fn default() -> Self {
        Sampling {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            repetition_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            seed: None,
            logit_bias: Vec::new(),
        }
    }
}

/// One generation request.
#[derive(Debug, Clone, Default)]
pub struct GenerateRequest {
    /// What to continue.
    pub prompt: Option<Prompt>,
    /// How tokens are drawn.
    pub sampling: Sampling,
    /// Most tokens to generate; `None` runs to the end of the context.
    pub max_tokens: Option<u32>,
    /// Text that ends the generation (not included).
    pub stop: Vec<String>,
    /// Return log-probabilities, with this many alternatives per token.
    pub logprobs: Option<usize>,
    /// Constrain the output's shape.
    pub response_format: ResponseFormat,
}

/// Why a generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// The model ended its answer, or a stop sequence was reached.
    Stop,
    /// `max_tokens` or the context was reached.
    Length,
    /// The model called tools (decided by the caller after parsing).
    ToolCalls,
}

impl FinishReason {
    /// OpenAI's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
        }
    }
}

/// Token counts of a finished generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Tokens of the prompt.
    pub prompt_tokens: usize,
    /// Tokens generated.
    pub completion_tokens: usize,
    /// Prompt tokens whose KV cache was reused instead of computed.
    pub cached_tokens: usize,
}

/// The log-probability of one generated token, with the most likely alternatives.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenLogprob {
    /// The token's text.
    pub token: String,
    /// Its bytes (a token may be part of a character).
    pub bytes: Vec<u8>,
    /// Natural log of its probability.
    pub logprob: f32,
    /// The most likely tokens at this step, most likely first.
    pub top: Vec<(String, Vec<u8>, f32)>,
}

/// What a generation sends while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// More text (possibly empty when only log-probabilities are new).
    Text {
        /// The text.
        text: String,
        /// Log-probabilities of the tokens behind it, when asked for.
        logprobs: Vec<TokenLogprob>,
    },
    /// The end, with counts.
    Done {
        /// Why it ended.
        finish: FinishReason,
        /// Token counts.
        usage: Usage,
    },
    /// The engine failed; nothing more follows.
    Failed(String),
}

/// A running generation as the caller holds it: dropping it stops the generation within a token.
#[derive(Debug)]
pub struct Generation {
    /// Its events, ending with `Done` or `Failed`.
    pub events: mpsc::UnboundedReceiver<Event>,
    /// Tokens of the prompt.
    pub prompt_tokens: usize,
    /// How tool calls in the output are written, when tools were offered.
    pub tool_format: Option<ToolFormat>,
}

/// What the frontend hands the worker.
pub struct Job {
    tokens: Vec<Token>,
    sampler: Sampler,
    max_new: usize,
    stops: Vec<String>,
    logprobs: Option<usize>,
    tool_format: Option<ToolFormat>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("prompt_tokens", &self.tokens.len())
            .field("max_new", &self.max_new)
            .finish_non_exhaustive()
    }
}

/// Per-model settings from the catalog's `[model.options]`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
struct CatalogOptions {
    context: Option<u32>,
    sequences: Option<u32>,
    batch: Option<u32>,
    threads: Option<u32>,
    kv_type: Option<String>,
    flash_attention: Option<String>,
    gpu_layers: Option<u32>,
}

/// The default KV size: the trained context, at most this.
const DEFAULT_CONTEXT: u32 = 8192;

fn load(model: &LocalModel, context: &LoadContext) -> Result<LoadedModel, TaskError> {
    let path = model.file_with_extension("gguf")?;
    let catalog: CatalogOptions = model.options_as()?;
    let flags = &context.llm;
    let invalid = |setting: &str, message: String| {
        TaskError::Unsupported(format!("model `{}`: {setting}: {message}", model.id))
    };
    let kv_type = match flags.kv_type.as_ref().or(catalog.kv_type.as_ref()) {
        Some(text) => text.parse().map_err(|e| invalid("kv_type", e))?,
        None => Default::default(),
    };
    let flash_attention = match flags
        .flash_attention
        .as_ref()
        .or(catalog.flash_attention.as_ref())
    {
        Some(text) => text.parse().map_err(|e| invalid("flash_attention", e))?,
        None => Default::default(),
    };
    let gguf = GgufModel::load(
        &path,
        &GgufOptions {
            gpu_layers: flags.gpu_layers.or(catalog.gpu_layers),
            mlock: false,
        },
    )?;
    let trained = gguf.train_context().max(1);
    let options = ContextOptions {
        context: flags
            .context
            .or(catalog.context)
            .unwrap_or(trained.min(DEFAULT_CONTEXT))
            .max(64),
        sequences: flags.sequences.or(catalog.sequences).unwrap_or(8).max(1),
        batch: flags.batch.or(catalog.batch).unwrap_or(512).max(16),
        threads: flags.threads.or(catalog.threads).unwrap_or(0),
        threads_batch: 0,
        kv_type,
        flash_attention,
    };
    let llama_context = gguf.new_context(&options)?;
    let device = gguf.device();
    let frontend = Generate::new(model.id.clone(), gguf.clone(), llama_context.context_size())?;
    tracing::info!(
        model = %model.id,
        context = llama_context.context_size(),
        sequences = options.sequences,
        batch = options.batch,
        kv_type = %options.kv_type,
        "llama.cpp context ready"
    );
    let runner = GenerateRunner::new(
        model.id.clone(),
        gguf,
        llama_context,
        options.sequences as usize,
    );
    Ok(LoadedModel::stepping(frontend, runner, device))
}

/// The sampler settings of a request, as the engine takes them.
fn sampler_config(sampling: &Sampling, grammar: Option<String>) -> SamplerConfig {
    let seed = sampling.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    SamplerConfig {
        temperature: sampling.temperature,
        top_k: sampling.top_k,
        top_p: sampling.top_p,
        min_p: sampling.min_p,
        repeat_penalty: sampling.repetition_penalty,
        frequency_penalty: sampling.frequency_penalty,
        presence_penalty: sampling.presence_penalty,
        penalty_last_n: 64,
        // Fold the 64-bit seed OpenAI clients send into llama.cpp's 32 bits.
        seed: (seed ^ (seed >> 32)) as u32,
        logit_bias: sampling.logit_bias.clone(),
        grammar,
    }
}
