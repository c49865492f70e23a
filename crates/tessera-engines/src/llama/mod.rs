//! llama.cpp through `llama-cpp-2`: GGUF models, one decoding context per model, samplers and
//! grammars.
//!
//! [`GgufModel`] is a loaded model (weights by mmap), shared by every thread: it tokenizes,
//! detokenizes, reads the GGUF's metadata and builds samplers. [`GgufContext`] is the one
//! decoding context of a model, with a KV cache that several sequences share; it is not `Sync`
//! and lives on the model's worker thread. The engine half lives in `enabled.rs` (with the
//! `gguf` feature) or its stand-in `disabled.rs`; everything public here is the same in both.
//!
//! ggml's CPU kernels are loaded at run time: the build compiles one CPU backend per x86-64
//! generation (SSE4.2, AVX, AVX2, AVX-512, AMX …) and llama.cpp picks the best one the machine
//! supports when the backend starts, so one binary runs everywhere and fast. [`system_info`]
//! says which one runs.

#[cfg(feature = "gguf")]
mod enabled;
#[cfg(feature = "gguf")]
use enabled as backend;

#[cfg(not(feature = "gguf"))]
mod disabled;
#[cfg(not(feature = "gguf"))]
use disabled as backend;

pub use backend::{GgufContext, GgufModel, Sampler, json_schema_to_grammar, system_info};

/// A token id in a model's vocabulary.
pub type Token = i32;

/// How a GGUF file is loaded.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GgufOptions {
    /// Layers offloaded to the GPU; `None` offloads every layer when a GPU backend is present.
    pub gpu_layers: Option<u32>,
    /// Lock the weights in RAM so the OS cannot page them out.
    pub mlock: bool,
}

/// The element type of the KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KvCacheType {
    /// 16-bit floats: llama.cpp's default.
    #[default]
    F16,
    /// 32-bit floats.
    F32,
    /// 16-bit brain floats.
    Bf16,
    /// 8-bit quantized: half the memory, needs flash attention for the V cache.
    Q8_0,
    /// 4-bit quantized.
    Q4_0,
}

impl std::str::FromStr for KvCacheType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f16" => Ok(Self::F16),
            "f32" => Ok(Self::F32),
            "bf16" => Ok(Self::Bf16),
            "q8_0" => Ok(Self::Q8_0),
            "q4_0" => Ok(Self::Q4_0),
            _ => Err(format!(
                "unknown KV cache type `{s}`; expected f16, f32, bf16, q8_0 or q4_0"
            )),
        }
    }
}

impl std::fmt::Display for KvCacheType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F16 => "f16",
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
            Self::Q8_0 => "q8_0",
            Self::Q4_0 => "q4_0",
        })
    }
}

/// Whether attention uses llama.cpp's fused flash-attention kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FlashAttention {
    /// llama.cpp decides per backend.
    #[default]
    Auto,
    /// Always.
    On,
    /// Never.
    Off,
}

impl std::str::FromStr for FlashAttention {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "on" | "true" | "1" => Ok(Self::On),
            "off" | "false" | "0" => Ok(Self::Off),
            _ => Err(format!(
                "unknown flash attention setting `{s}`; expected auto, on or off"
            )),
        }
    }
}

/// The decoding context of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextOptions {
    /// KV cache cells shared by all sequences: the most tokens held at once.
    pub context: u32,
    /// Sequences decoded together.
    pub sequences: u32,
    /// Most tokens in one decode call (prompt chunks plus one token per generating sequence).
    pub batch: u32,
    /// Threads for generation; 0 means one per physical core.
    pub threads: u32,
    /// Threads for prompt processing; 0 means as many as `threads`.
    pub threads_batch: u32,
    /// The KV cache's element type (keys and values).
    pub kv_type: KvCacheType,
    /// Flash attention.
    pub flash_attention: FlashAttention,
}

impl Default for ContextOptions {
    fn default() -> Self {
        ContextOptions {
            context: 8192,
            sequences: 8,
            batch: 512,
            threads: 0,
            threads_batch: 0,
            kv_type: KvCacheType::F16,
            flash_attention: FlashAttention::Auto,
        }
    }
}

/// One token of a decode call: which sequence it belongs to, at which position, and whether
/// its logits are wanted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEntry {
    /// The token.
    pub token: Token,
    /// Its position in its sequence.
    pub position: i32,
    /// The sequence (KV cache stream tag).
    pub sequence: i32,
    /// Keep its logits for sampling.
    pub logits: bool,
}

/// Why a decode call failed.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The KV cache has no room for the batch; nothing was decoded.
    #[error("the KV cache is full")]
    NoSpace,
    /// Anything else llama.cpp reported.
    #[error("llama.cpp decode failed: {0}")]
    Failed(String),
}

/// How the next token is chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplerConfig {
    /// Softmax temperature; 0 picks the most likely token (greedy).
    pub temperature: f32,
    /// Keep only the k most likely tokens; 0 keeps all.
    pub top_k: i32,
    /// Nucleus sampling: the smallest set whose probabilities sum to `top_p`; 1 keeps all.
    pub top_p: f32,
    /// Drop tokens less likely than `min_p` times the most likely one; 0 keeps all.
    pub min_p: f32,
    /// Multiplicative penalty on tokens seen in the last `penalty_last_n`; 1 is off.
    pub repeat_penalty: f32,
    /// Subtracted once per earlier occurrence (OpenAI's frequency_penalty); 0 is off.
    pub frequency_penalty: f32,
    /// Subtracted once if the token occurred (OpenAI's presence_penalty); 0 is off.
    pub presence_penalty: f32,
    /// How many recent tokens the penalties look at.
    pub penalty_last_n: i32,
    /// Seed of the random draw: the same seed and input give the same output.
    pub seed: u32,
    /// Added to the logits of given tokens before sampling (-inf bans a token).
    pub logit_bias: Vec<(Token, f32)>,
    /// A GBNF grammar (root rule `root`) the output must follow.
    pub grammar: Option<String>,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            repeat_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            penalty_last_n: 64,
            seed: 0,
            logit_bias: Vec::new(),
            grammar: None,
        }
    }
}

/// The fill-in-the-middle tokens of a code model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FimTokens {
    /// Comes before the code before the hole.
    pub prefix: Token,
    /// Comes before the code after the hole.
    pub suffix: Token,
    /// Asks for the middle.
    pub middle: Token,
}

/// The natural log of the softmax of `logits` for the given token, and the `top` most likely
/// tokens with theirs, most likely first.
pub fn log_probabilities(logits: &[f32], token: Token, top: usize) -> (f32, Vec<(Token, f32)>) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&l| f64::from(l - max).exp()).sum();
    let log_norm = max + sum.ln() as f32;
    let chosen = usize::try_from(token)
        .ok()
        .and_then(|i| logits.get(i))
        .map_or(f32::NEG_INFINITY, |&l| l - log_norm);
    let mut best: Vec<(Token, f32)> = Vec::with_capacity(top + 1);
    if top > 0 {
        for (i, &l) in logits.iter().enumerate() {
            if best.len() == top && best.last().is_some_and(|&(_, b)| l <= b) {
                continue;
            }
            let at = best.partition_point(|&(_, b)| b >= l);
            best.insert(at, (i as Token, l));
            best.truncate(top);
        }
    }
    let best = best.into_iter().map(|(t, l)| (t, l - log_norm)).collect();
    (chosen, best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_probabilities_normalise_and_rank() {
        let logits = [1.0_f32, 3.0, 2.0, 0.0];
        let (chosen, top) = log_probabilities(&logits, 2, 2);
        let total: f32 = logits.iter().map(|&l| (l - 3.0).exp()).sum::<f32>().ln() + 3.0;
        assert!((chosen - (2.0 - total)).abs() < 1e-5);
        assert_eq!(top.iter().map(|t| t.0).collect::<Vec<_>>(), vec![1, 2]);
        assert!((top[0].1 - (3.0 - total)).abs() < 1e-5);
    }

    #[test]
    fn kv_types_and_flash_attention_parse() {
        assert_eq!("Q8_0".parse::<KvCacheType>(), Ok(KvCacheType::Q8_0));
        assert!("q5".parse::<KvCacheType>().is_err());
        assert_eq!("on".parse::<FlashAttention>(), Ok(FlashAttention::On));
    }
}
