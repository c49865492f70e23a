//! The llama.cpp engine proper (feature `gguf`).

use std::ffi::CStr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::{KvCacheType as LlamaKvType, LlamaContextParams};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::token::logit_bias::LlamaLogitBias;

use super::{
    BatchEntry, ContextOptions, DecodeError, FimTokens, FlashAttention, GgufOptions, KvCacheType,
    SamplerConfig, Token,
};
use crate::{Device, EngineError};

/// The process-wide llama.cpp backend: initialised once, with its logs sent to `tracing` and
/// the best CPU kernels this machine supports loaded.
fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            load_kernels();
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|message| EngineError::RuntimeLibrary {
            message: format!("llama.cpp did not start: {message}"),
        })
}

/// Loads ggml's backends (one CPU library per x86-64 generation, plus GPU backends when built)
/// from the first folder that has them: `TESSERA_GGML_BACKENDS`, the executable's folder, then
/// the folder the build put them in. ggml keeps the best CPU variant the machine can run.
///
/// The AMX variant (`sapphirerapids`) is left out unless `TESSERA_GGML_AMX=1`: virtual machines
/// report AMX and grant the permission for it, yet some do not keep the tile state, and its
/// first matrix multiplication dies with SIGILL (seen on this project's CI machines). The
/// AVX-512 variants below it are almost as fast for the quantized models tessera runs.
fn load_kernels() {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("TESSERA_GGML_BACKENDS") {
        candidates.push(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
    {
        candidates.push(dir);
    }
    if let Some(dir) = llama_cpp_sys_2::BACKENDS_DIR {
        candidates.push(PathBuf::from(dir));
    }
    let Some(dir) = candidates.into_iter().find(|dir| has_cpu_backend(dir)) else {
        tracing::warn!(
            "no ggml CPU backend library found (libggml-cpu-*.so); set TESSERA_GGML_BACKENDS to the folder that has them"
        );
        return;
    };
    let amx = std::env::var("TESSERA_GGML_AMX").is_ok_and(|v| v == "1");
    let chosen = if amx { None } else { without_amx(&dir) };
    let from = chosen.as_ref().map_or(dir.as_path(), |t| t.path());
    tracing::debug!(dir = %dir.display(), amx, "loading ggml backends");
    llama_cpp_2::llama_backend::load_backends_from_path(from);
}

/// A temporary folder of links to every backend library in `dir` but the AMX one; `None` when
/// there is no AMX library to leave out (or the links cannot be made).
fn without_amx(dir: &Path) -> Option<tempfile::TempDir> {
    let libraries: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("libggml-"))
        })
        .collect();
    if !libraries
        .iter()
        .any(|p| p.to_string_lossy().contains("sapphirerapids"))
    {
        return None;
    }
    let links = tempfile::Builder::new()
        .prefix("tessera-ggml-")
        .tempdir()
        .ok()?;
    for library in libraries
        .iter()
        .filter(|p| !p.to_string_lossy().contains("sapphirerapids"))
    {
        let name = library.file_name()?;
        #[cfg(unix)]
        std::os::unix::fs::symlink(library, links.path().join(name)).ok()?;
    }
    Some(links)
}

fn has_cpu_backend(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.filter_map(Result::ok).any(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            name.contains("ggml-cpu")
        })
    })
}

/// llama.cpp's system information: the CPU features its loaded kernels use, per backend.
pub fn system_info() -> String {
    if let Err(error) = backend() {
        return error.to_string();
    }
    // SAFETY: llama.cpp returns a pointer to a static, NUL-terminated buffer.
    let info = unsafe { CStr::from_ptr(llama_cpp_sys_2::llama_print_system_info()) };
    info.to_string_lossy().trim().to_string()
}

/// Converts a JSON schema into a GBNF grammar with llama.cpp's own converter.
pub fn json_schema_to_grammar(schema: &str) -> Result<String, EngineError> {
    llama_cpp_2::json_schema_to_grammar(schema).map_err(|e| EngineError::Input {
        path: PathBuf::new(),
        tensor: "json_schema".into(),
        message: e.to_string(),
    })
}

/// A loaded GGUF model; clones share it.
#[derive(Clone)]
pub struct GgufModel {
    model: Arc<LlamaModel>,
    path: PathBuf,
    device: Device,
}

impl std::fmt::Debug for GgufModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufModel")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn tok(token: Token) -> LlamaToken {
    LlamaToken(token)
}

impl GgufModel {
    /// Loads a GGUF file (memory-mapped).
    pub fn load(path: &Path, options: &GgufOptions) -> Result<GgufModel, EngineError> {
        let backend = backend()?;
        let gpu_present = backend.supports_gpu_offload();
        let gpu_layers = match options.gpu_layers {
            Some(n) => n,
            None if gpu_present => u32::MAX,
            None => 0,
        };
        let params = LlamaModelParams::default()
            .with_n_gpu_layers(gpu_layers)
            .with_use_mmap(true)
            .with_use_mlock(options.mlock);
        let model =
            LlamaModel::load_from_file(backend, path, &params).map_err(|e| EngineError::Load {
                path: path.to_path_buf(),
                message: format!("llama.cpp could not load it: {e}"),
            })?;
        let device = if gpu_present && gpu_layers > 0 {
            Device::Cuda
        } else {
            Device::Cpu
        };
        Ok(GgufModel {
            model: Arc::new(model),
            path: path.to_path_buf(),
            device,
        })
    }

    /// The file it was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where its layers run.
    pub fn device(&self) -> Device {
        self.device
    }

    /// A string value of the GGUF's metadata.
    pub fn meta(&self, key: &str) -> Option<String> {
        self.model.meta_val_str(key).ok()
    }

    /// The context length the model was trained with.
    pub fn train_context(&self) -> u32 {
        self.model.n_ctx_train()
    }

    /// The vocabulary's size.
    pub fn vocab_size(&self) -> i32 {
        self.model.n_vocab()
    }

    /// The weights' size in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.model.size()
    }

    /// Tokens of `text`. `add_special` adds the BOS token when the model wants one;
    /// `parse_special` reads special-token text (`<|im_start|>`) as those tokens.
    pub fn tokenize(&self, text: &str, add_special: bool, parse_special: bool) -> Vec<Token> {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), add_special, parse_special)
            .into_iter()
            .map(|t| t.0)
            .collect()
    }

    /// The bytes one token stands for; `special` renders control tokens as their text.
    pub fn piece(&self, token: Token, special: bool) -> Vec<u8> {
        self.model.vocab().token_to_piece(tok(token), special, None)
    }

    /// The text of a token sequence (invalid UTF-8 replaced); `special` keeps control tokens'
    /// text.
    pub fn detokenize(&self, tokens: &[Token], special: bool) -> String {
        let tokens: Vec<LlamaToken> = tokens.iter().copied().map(tok).collect();
        let bytes = self.model.vocab().detokenize(&tokens, !special, special);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// Whether a token id is in the vocabulary.
    pub fn is_token(&self, token: Token) -> bool {
        (0..self.vocab_size()).contains(&token)
    }

    /// The beginning-of-sequence token, if the model has one.
    pub fn bos(&self) -> Option<Token> {
        let t = self.model.vocab().bos().0;
        self.is_token(t).then_some(t)
    }

    /// The end-of-sequence token, if the model has one.
    pub fn eos(&self) -> Option<Token> {
        let t = self.model.vocab().eos().0;
        self.is_token(t).then_some(t)
    }

    /// Whether the tokenizer adds BOS by itself.
    pub fn adds_bos(&self) -> bool {
        self.model.vocab().should_add_bos()
    }

    /// Whether the token ends generation (EOS, EOT, `<|im_end|>` …).
    pub fn is_end_of_generation(&self, token: Token) -> bool {
        self.model.vocab().is_eog(tok(token))
    }

    /// The fill-in-the-middle tokens, when the model has all three.
    pub fn fim(&self) -> Option<FimTokens> {
        let vocab = self.model.vocab();
        let (prefix, suffix, middle) = (vocab.fim_pre().0, vocab.fim_suf().0, vocab.fim_mid().0);
        [prefix, suffix, middle]
            .iter()
            .all(|&t| self.is_token(t))
            .then_some(FimTokens {
                prefix,
                suffix,
                middle,
            })
    }

    /// A sampler for one sequence. A grammar that does not parse is an error.
    pub fn sampler(&self, config: &SamplerConfig) -> Result<Sampler, EngineError> {
        let mut chain = Vec::new();
        if !config.logit_bias.is_empty() {
            let biases: Vec<LlamaLogitBias> = config
                .logit_bias
                .iter()
                .map(|&(t, b)| LlamaLogitBias::new(tok(t), b))
                .collect();
            chain.push(LlamaSampler::logit_bias(self.vocab_size(), &biases));
        }
        if config.repeat_penalty != 1.0
            || config.frequency_penalty != 0.0
            || config.presence_penalty != 0.0
        {
            chain.push(LlamaSampler::penalties(
                self.vocab_size(),
                config.penalty_last_n,
                config.repeat_penalty,
                config.frequency_penalty,
                config.presence_penalty,
            ));
        }
        if let Some(grammar) = &config.grammar {
            let sampler = LlamaSampler::grammar(&self.model, grammar, "root").map_err(|e| {
                EngineError::Input {
                    path: self.path.clone(),
                    tensor: "grammar".into(),
                    message: format!("the grammar does not parse: {e}"),
                }
            })?;
            chain.push(sampler);
        }
        if config.temperature <= 0.0 {
            chain.push(LlamaSampler::greedy());
        } else {
            if config.top_k > 0 {
                chain.push(LlamaSampler::top_k(config.top_k));
            }
            if config.top_p < 1.0 {
                chain.push(LlamaSampler::top_p(config.top_p, 1));
            }
            if config.min_p > 0.0 {
                chain.push(LlamaSampler::min_p(config.min_p, 1));
            }
            chain.push(LlamaSampler::temp(config.temperature));
            chain.push(LlamaSampler::dist(config.seed));
        }
        Ok(Sampler {
            chain: LlamaSampler::chain_simple(chain),
        })
    }

    /// A decoding context with its own KV cache, shared by `options.sequences` sequences.
    pub fn new_context(&self, options: &ContextOptions) -> Result<GgufContext, EngineError> {
        let backend = backend()?;
        let threads = if options.threads == 0 {
            physical_cores()
        } else {
            options.threads
        };
        let threads_batch = if options.threads_batch == 0 {
            threads
        } else {
            options.threads_batch
        };
        let kv = kv_type(options.kv_type);
        let flash = match options.flash_attention {
            FlashAttention::Auto => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_AUTO,
            FlashAttention::On => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_ENABLED,
            FlashAttention::Off => llama_cpp_sys_2::LLAMA_FLASH_ATTN_TYPE_DISABLED,
        };
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(options.context))
            .with_n_batch(options.batch)
            .with_n_ubatch(options.batch)
            .with_n_seq_max(options.sequences)
            .with_n_threads(threads as i32)
            .with_n_threads_batch(threads_batch as i32)
            .with_type_k(kv)
            .with_type_v(kv)
            .with_flash_attention_policy(flash)
            // One KV stream that every sequence tags its cells in: a shared prefix is stored
            // once and copying it to another sequence costs no memory.
            .with_kv_unified(true)
            .with_no_perf(true);
        let owner = self.model.clone();
        let cell = ContextCell::try_new(owner, |model| model.new_context(backend, params))
            .map_err(|e| EngineError::Load {
                path: self.path.clone(),
                message: format!(
                    "llama.cpp could not create a context of {} tokens: {e}",
                    options.context
                ),
            })?;
        let batch_size = options.batch.max(options.sequences) as usize;
        Ok(GgufContext {
            cell,
            batch: LlamaBatch::new(batch_size, 1),
            batch_size,
        })
    }
}

fn kv_type(kind: KvCacheType) -> LlamaKvType {
    match kind {
        KvCacheType::F16 => LlamaKvType::F16,
        KvCacheType::F32 => LlamaKvType::F32,
        KvCacheType::Bf16 => LlamaKvType::BF16,
        KvCacheType::Q8_0 => LlamaKvType::Q8_0,
        KvCacheType::Q4_0 => LlamaKvType::Q4_0,
    }
}

/// Physical cores, which is what llama.cpp's matrix kernels scale with (hyper-threads add
/// contention, not speed).
fn physical_cores() -> u32 {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let physical = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            let mut cores = std::collections::HashSet::new();
            let mut physical_id = "";
            for line in info.lines() {
                if let Some((key, value)) = line.split_once(':') {
                    match key.trim() {
                        "physical id" => physical_id = value.trim(),
                        "core id" => {
                            cores.insert(format!("{physical_id}:{}", value.trim()));
                        }
                        _ => {}
                    }
                }
            }
            (!cores.is_empty()).then_some(cores.len() as u32)
        });
    physical.unwrap_or(logical).clamp(1, logical)
}

self_cell::self_cell!(
    /// A context together with the model it borrows.
    struct ContextCell {
        owner: Arc<LlamaModel>,
        #[covariant]
        dependent: LlamaContext,
    }
);

/// The decoding context of one model: a KV cache shared by several sequences.
pub struct GgufContext {
    cell: ContextCell,
    batch: LlamaBatch<'static>,
    batch_size: usize,
}

impl std::fmt::Debug for GgufContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufContext")
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl GgufContext {
    /// The KV cache's size in tokens.
    pub fn context_size(&self) -> u32 {
        self.cell.borrow_dependent().n_ctx()
    }

    /// The most tokens one [`GgufContext::decode`] takes.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Runs the model over a batch of tokens from any sequences. Logits of the entries marked
    /// `logits` are then read by their index in `entries`.
    pub fn decode(&mut self, entries: &[BatchEntry]) -> Result<(), DecodeError> {
        self.batch.clear();
        for entry in entries {
            self.batch
                .add(
                    tok(entry.token),
                    entry.position,
                    &[entry.sequence],
                    entry.logits,
                )
                .map_err(|e| DecodeError::Failed(e.to_string()))?;
        }
        let batch = &mut self.batch;
        self.cell
            .with_dependent_mut(|_, context| context.decode(batch))
            .map_err(|e| match e {
                llama_cpp_2::DecodeError::NoKvCacheSlot => DecodeError::NoSpace,
                other => DecodeError::Failed(other.to_string()),
            })
    }

    /// The logits of entry `index` of the last decode.
    pub fn logits(&self, index: usize) -> &[f32] {
        self.cell.borrow_dependent().get_logits_ith(index as i32)
    }

    /// Forgets a sequence's cached tokens from position `from` on.
    pub fn truncate(&mut self, sequence: i32, from: u32) {
        self.cell.with_dependent_mut(|_, context| {
            let _ = context.clear_kv_cache_seq(Some(sequence as u32), Some(from), None);
        });
    }

    /// Makes `to` share the first `len` cached tokens of `from` (no copy: one KV stream).
    pub fn share_prefix(&mut self, from: i32, to: i32, len: u32) {
        self.cell.with_dependent_mut(|_, context| {
            let _ = context.clear_kv_cache_seq(Some(to as u32), None, None);
            let _ = context.copy_kv_cache_seq(from, to, Some(0), Some(len));
        });
    }
}

/// Chooses one sequence's tokens; holds its penalties' history and its grammar's state.
pub struct Sampler {
    chain: LlamaSampler,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler").finish_non_exhaustive()
    }
}

impl Sampler {
    /// Samples the next token from entry `index` of the last decode, and records it.
    pub fn sample(&mut self, context: &GgufContext, index: usize) -> Token {
        self.chain
            .sample(context.cell.borrow_dependent(), index as i32)
            .0
    }
}
