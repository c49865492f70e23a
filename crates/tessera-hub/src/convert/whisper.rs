//! Whisper in both layouts. The mapping follows CTranslate2's `WhisperLoader` (in
//! `python/ctranslate2/converters/transformers.py`) and `WhisperSpec`
//! (`python/ctranslate2/specs/whisper_spec.py`):
//!
//! - every transformers tensor keeps its shape (linear weights are `[out, in]` in both, conv
//!   weights `[out, in, 3]`), and is renamed: `weight`/`bias` of layer norms become
//!   `gamma`/`beta`, `embed_positions` becomes `position_encodings/encodings`, …;
//! - self-attention `q_proj`, `k_proj`, `v_proj` are stacked into one `linear_0` (`[3d, d]`),
//!   cross-attention `k_proj`, `v_proj` into `attention/linear_1`; transformers' `k_proj` has no
//!   bias, so its part of the stacked bias is zeros;
//! - `proj_out` is tied to the token embeddings, so `decoder/projection/weight` is stored as an
//!   alias of `decoder/embeddings/weight` (as is any variable equal to an earlier one);
//! - a few scalars describe the decoder (GELU, pre-norm, unscaled embeddings, heads).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::model_bin::{Ct2Dtype, Ct2Variable, ModelBin, ModelBinWriter};
use super::tensors::{self, PlannedTensor, StoredTensor, WEIGHTS, WEIGHTS_INDEX};
use super::{ConvertError, read_json, write_folder_atomically, write_json};
use crate::error::{HubError, Result};

const SPEC_NAME: &str = "WhisperSpec";
const SPEC_REVISION: u32 = 3;
/// `Activation.GELU` in CTranslate2's `common_spec.py`.
const GELU: u8 = 3;
/// transformers' rule: multilingual Whisper vocabularies have 51865 tokens or more (English-only
/// ones 51864).
const MULTILINGUAL_VOCAB_SIZE: usize = 51865;

const MODEL_BIN: &str = "model.bin";
const CONFIG: &str = "config.json";
const TOKENIZER: &str = "tokenizer.json";
const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
const GENERATION_CONFIG: &str = "generation_config.json";
const PREPROCESSOR_CONFIG: &str = "preprocessor_config.json";
const VOCABULARY_TXT: &str = "vocabulary.txt";
const VOCABULARY_JSON: &str = "vocabulary.json";

const HF_NEEDS: &str = "a Hugging Face Whisper checkpoint needs config.json, tokenizer.json and \
model.safetensors (or model.safetensors.index.json and its shards)";

/// The sizes of a Whisper model, as transformers' `WhisperConfig` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WhisperDims {
    /// Width of every layer (`d_model`).
    pub d_model: usize,
    /// Mel bins of the input features (`num_mel_bins`): 80, or 128 for large-v3.
    pub n_mels: usize,
    /// Encoder layers.
    pub encoder_layers: usize,
    /// Attention heads per encoder layer.
    pub encoder_heads: usize,
    /// Width of the encoder's feed-forward layers.
    pub encoder_ffn: usize,
    /// Decoder layers.
    pub decoder_layers: usize,
    /// Attention heads per decoder layer.
    pub decoder_heads: usize,
    /// Width of the decoder's feed-forward layers.
    pub decoder_ffn: usize,
    /// Tokens in the vocabulary, timestamp tokens included.
    pub vocab_size: usize,
    /// Encoder positions (audio frames after the convolutions; 1500 for 30 s).
    pub max_source_positions: usize,
    /// Decoder positions (the longest token sequence).
    pub max_target_positions: usize,
}

impl WhisperDims {
    /// Whether the model knows many languages (its vocabulary has the language tokens' full
    /// set), by transformers' rule.
    pub fn is_multilingual(&self) -> bool {
        self.vocab_size >= MULTILINGUAL_VOCAB_SIZE
    }

    fn describe(&self) -> String {
        format!(
            "d_model {}, num_mel_bins {}, encoder_ffn_dim {}, decoder_ffn_dim {}, vocab_size {}, \
             max_source_positions {}, max_target_positions {}",
            self.d_model,
            self.n_mels,
            self.encoder_ffn,
            self.decoder_ffn,
            self.vocab_size,
            self.max_source_positions,
            self.max_target_positions
        )
    }
}

/// A finished conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted {
    /// The folder written.
    pub dir: PathBuf,
    /// The model's sizes.
    pub dims: WhisperDims,
    /// The float type of the weights (that of the token embeddings).
    pub dtype: Ct2Dtype,
}

/// Converts the Hugging Face Whisper checkpoint in `hf_dir` into a new CTranslate2 model folder
/// `out_dir`: `model.bin` (weights in the checkpoint's float type), `config.json` (the suppressed
/// tokens, language token ids and alignment heads), `vocabulary.txt`, and copies of
/// `tokenizer.json` and, if present, `preprocessor_config.json`.
///
/// `out_dir` must not exist; it appears only once the conversion succeeded.
pub fn hf_to_ct2(hf_dir: &Path, out_dir: &Path) -> Result<Converted> {
    let config_path = require(hf_dir, CONFIG, HF_NEEDS)?;
    let config: Value = read_json(&config_path, "config.json")?;
    match config.get("model_type").and_then(Value::as_str) {
        Some("whisper") => {}
        other => {
            return Err(ConvertError::NotWhisper {
                path: config_path,
                found: other.map_or("of no model_type".to_string(), |t| {
                    format!("model_type {t:?}")
                }),
            }
            .into());
        }
    }
    let tokenizer_path = require(hf_dir, TOKENIZER, HF_NEEDS)?;
    let tensors = tensors::checkpoint_tensors(hf_dir)?;
    let weights = if hf_dir.join(WEIGHTS).is_file() {
        hf_dir.join(WEIGHTS)
    } else {
        hf_dir.join(WEIGHTS_INDEX)
    };
    // Saved from WhisperForConditionalGeneration, names start with `model.`; from WhisperModel not.
    let prefix = if tensors.contains_key("model.encoder.conv1.weight") {
        "model."
    } else if tensors.contains_key("encoder.conv1.weight") {
        ""
    } else {
        return Err(ConvertError::MissingTensor {
            file: weights,
            tensor: "model.encoder.conv1.weight".to_string(),
        }
        .into());
    };
    let checkpoint = Checkpoint {
        config: &config,
        config_path: &config_path,
        tensors: &tensors,
        weights: &weights,
        prefix,
    };
    let dims = checkpoint.dims()?;
    let plan = checkpoint.plan(&dims)?;

    let tokenizer: TokenizerJson = read_json(&tokenizer_path, "tokenizer.json")?;
    let vocabulary = tokenizer.vocabulary(dims.vocab_size, &tokenizer_path)?;
    let generation_path = hf_dir.join(GENERATION_CONFIG);
    let generation: HfGenerationConfig = if generation_path.is_file() {
        read_json(&generation_path, "generation_config.json")?
    } else {
        HfGenerationConfig::default()
    };
    let ct2_config = Ct2Config::from_hf(&config, &generation, &tokenizer, &dims);
    let preprocessor = hf_dir.join(PREPROCESSOR_CONFIG);
    let preprocessor = preprocessor.is_file().then_some(preprocessor);
    if let Some(path) = &preprocessor {
        check_feature_size(path, dims.n_mels)?;
    }
    let dtype = plan
        .iter()
        .find(|v| v.name == "decoder/embeddings/weight")
        .map_or(Ct2Dtype::F32, |v| v.dtype);

    write_folder_atomically(out_dir, |dir| {
        write_model_bin(&dir.join(MODEL_BIN), &plan)?;
        write_json(&dir.join(CONFIG), &ct2_config)?;
        write_vocabulary(&dir.join(VOCABULARY_TXT), &vocabulary)?;
        copy(&tokenizer_path, &dir.join(TOKENIZER))?;
        match &preprocessor {
            Some(path) => copy(path, &dir.join(PREPROCESSOR_CONFIG)),
            None => Ok(()),
        }
    })?;
    tracing::debug!(from = %hf_dir.display(), to = %out_dir.display(), "wrote a CTranslate2 Whisper model");
    Ok(Converted {
        dir: out_dir.to_path_buf(),
        dims,
        dtype,
    })
}

/// Converts the CTranslate2 Whisper folder `ct2_dir` (`model.bin`, `vocabulary.txt` or
/// `vocabulary.json`, `tokenizer.json`, `config.json`) into a new Hugging Face checkpoint folder
/// `out_dir` that transformers' `WhisperForConditionalGeneration` loads: `model.safetensors`,
/// `config.json`, `generation_config.json`, `tokenizer.json`, `tokenizer_config.json` and
/// `preprocessor_config.json`. The weights keep their float type; quantized models do not
/// convert.
///
/// `out_dir` must not exist; it appears only once the conversion succeeded.
pub fn ct2_to_hf(ct2_dir: &Path, out_dir: &Path) -> Result<Converted> {
    let ct2_needs = "a CTranslate2 Whisper folder has model.bin, config.json, vocabulary.txt and \
                     tokenizer.json (copy tokenizer.json from the model's Hugging Face repository)";
    let model_path = require(ct2_dir, MODEL_BIN, ct2_needs)?;
    let model = ModelBin::open(&model_path)?;
    if model.spec_name != SPEC_NAME {
        return Err(ConvertError::NotWhisper {
            path: model_path,
            found: format!("the CTranslate2 spec {:?}", model.spec_name),
        }
        .into());
    }
    if model.spec_revision > SPEC_REVISION {
        return Err(ConvertError::Unsupported {
            file: model_path,
            message: format!(
                "WhisperSpec revision {} is newer than the {SPEC_REVISION} this converter knows",
                model.spec_revision
            ),
        }
        .into());
    }
    let tokenizer_path = require(ct2_dir, TOKENIZER, ct2_needs)?;
    let vocabulary = read_ct2_vocabulary(ct2_dir)?;
    let config_path = ct2_dir.join(CONFIG);
    let ct2_config: Ct2Config = if config_path.is_file() {
        read_json(&config_path, "CTranslate2 config.json")?
    } else {
        Ct2Config::default()
    };
    let dims = ct2_dims(&model)?;
    if let Some(v) = model
        .variables
        .iter()
        .find(|v| !v.is_scalar() && (!v.dtype.is_float() || v.name.ends_with("_scale")))
    {
        return Err(ConvertError::TensorDtype {
            file: model_path,
            tensor: v.name.clone(),
            dtype: format!("{} (a quantized model)", v.dtype),
        }
        .into());
    }
    let (planned, tied) = plan_hf(&model, &dims)?;
    let dtype = model
        .variable("decoder/embeddings/weight")
        .map_or(Ct2Dtype::F32, |v| v.dtype);
    let specials = SpecialTokens::find(&vocabulary, &ct2_dir.join(VOCABULARY_TXT))?;
    let lang_to_id = ct2_config
        .lang_ids
        .iter()
        .flatten()
        .map(|&id| {
            let token = usize::try_from(id).ok().and_then(|i| vocabulary.get(i));
            token.map(|t| (t.clone(), id)).ok_or_else(|| {
                HubError::from(ConvertError::Malformed {
                    file: config_path.clone(),
                    message: format!(
                        "lang_ids holds {id}, past the vocabulary's {} tokens",
                        vocabulary.len()
                    ),
                })
            })
        })
        .collect::<Result<BTreeMap<String, i64>>>()?;
    let hf = HfFiles {
        dims: &dims,
        specials: &specials,
        config: &ct2_config,
        lang_to_id: &lang_to_id,
        dtype,
        tied,
    };

    write_folder_atomically(out_dir, |dir| {
        tensors::write_safetensors(&dir.join(WEIGHTS), &planned, |tensor| {
            let (variable, start) = &tensor.source;
            model.read_range(variable, *start, tensor.byte_len())
        })?;
        write_json(&dir.join(CONFIG), &hf.config())?;
        write_json(&dir.join(GENERATION_CONFIG), &hf.generation_config())?;
        copy(&tokenizer_path, &dir.join(TOKENIZER))?;
        write_json(&dir.join(TOKENIZER_CONFIG), &hf.tokenizer_config())?;
        let preprocessor = ct2_dir.join(PREPROCESSOR_CONFIG);
        if preprocessor.is_file() {
            copy(&preprocessor, &dir.join(PREPROCESSOR_CONFIG))
        } else {
            write_json(&dir.join(PREPROCESSOR_CONFIG), &hf.preprocessor_config())
        }
    })?;
    tracing::debug!(from = %ct2_dir.display(), to = %out_dir.display(), "wrote a Hugging Face Whisper checkpoint");
    Ok(Converted {
        dir: out_dir.to_path_buf(),
        dims,
        dtype,
    })
}

/// Whether `dir` is a Hugging Face Whisper checkpoint for [`hf_to_ct2`]: no `model.bin` (a
/// CTranslate2 folder is used as it is) and a `config.json` whose `model_type` is `whisper`.
/// Reads only `config.json`.
pub(crate) fn is_hf_whisper(dir: &Path) -> bool {
    // config.json files are a few kB; anything huge is not one.
    const MAX_CONFIG: u64 = 1 << 20;
    let path = dir.join(CONFIG);
    if dir.join(MODEL_BIN).exists()
        || !fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() <= MAX_CONFIG)
    {
        return false;
    }
    fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
        .is_some_and(|config| config.get("model_type").and_then(Value::as_str) == Some("whisper"))
}

/// The sizes and weight type of the CTranslate2 Whisper model in `dir`, from `model.bin`'s index.
pub(crate) fn ct2_whisper_summary(dir: &Path) -> Result<(WhisperDims, Ct2Dtype)> {
    let model = ModelBin::open(&dir.join(MODEL_BIN))?;
    let dims = ct2_dims(&model)?;
    let dtype = model
        .variable("decoder/embeddings/weight")
        .map_or(Ct2Dtype::F32, |v| v.dtype);
    Ok((dims, dtype))
}

/// One CTranslate2 variable and the transformers tensors it is made of, stacked along the first
/// dimension.
struct Link {
    ct2: String,
    shape: Vec<usize>,
    pieces: Vec<Piece>,
}

/// A transformers tensor, or `None` for the key bias transformers leaves out (zeros in
/// CTranslate2).
struct Piece {
    hf: Option<String>,
    shape: Vec<usize>,
}

/// Builds the list of [`Link`]s of a model.
struct Layout {
    links: Vec<Link>,
    d: usize,
}

impl Layout {
    /// Every weight of a Whisper model of `dims` but the output projection; transformers names
    /// start with `prefix` (`model.`).
    fn of(dims: &WhisperDims, prefix: &str) -> Vec<Link> {
        let d = dims.d_model;
        let mut layout = Layout {
            links: Vec::new(),
            d,
        };
        let encoder = format!("{prefix}encoder");
        layout.tensor(
            "encoder/conv1/weight",
            &format!("{encoder}.conv1.weight"),
            vec![d, dims.n_mels, 3],
        );
        layout.tensor(
            "encoder/conv1/bias",
            &format!("{encoder}.conv1.bias"),
            vec![d],
        );
        layout.tensor(
            "encoder/conv2/weight",
            &format!("{encoder}.conv2.weight"),
            vec![d, d, 3],
        );
        layout.tensor(
            "encoder/conv2/bias",
            &format!("{encoder}.conv2.bias"),
            vec![d],
        );
        layout.tensor(
            "encoder/position_encodings/encodings",
            &format!("{encoder}.embed_positions.weight"),
            vec![dims.max_source_positions, d],
        );
        for i in 0..dims.encoder_layers {
            let (ct2, hf) = (
                format!("encoder/layer_{i}"),
                format!("{encoder}.layers.{i}"),
            );
            layout.self_attention(&ct2, &hf);
            layout.ffn(&ct2, &hf, dims.encoder_ffn);
        }
        layout.norm("encoder/layer_norm", &format!("{encoder}.layer_norm"));

        let decoder = format!("{prefix}decoder");
        layout.tensor(
            "decoder/embeddings/weight",
            &format!("{decoder}.embed_tokens.weight"),
            vec![dims.vocab_size, d],
        );
        layout.tensor(
            "decoder/position_encodings/encodings",
            &format!("{decoder}.embed_positions.weight"),
            vec![dims.max_target_positions, d],
        );
        for i in 0..dims.decoder_layers {
            let (ct2, hf) = (
                format!("decoder/layer_{i}"),
                format!("{decoder}.layers.{i}"),
            );
            layout.self_attention(&ct2, &hf);
            let (attention, cross) = (format!("{ct2}/attention"), format!("{hf}.encoder_attn"));
            layout.stacked(&format!("{attention}/linear_0"), &cross, &["q"]);
            layout.stacked(&format!("{attention}/linear_1"), &cross, &["k", "v"]);
            layout.linear(
                &format!("{attention}/linear_2"),
                &format!("{cross}.out_proj"),
                d,
                d,
            );
            layout.norm(
                &format!("{attention}/layer_norm"),
                &format!("{hf}.encoder_attn_layer_norm"),
            );
            layout.ffn(&ct2, &hf, dims.decoder_ffn);
        }
        layout.norm("decoder/layer_norm", &format!("{decoder}.layer_norm"));
        layout.links
    }

    fn tensor(&mut self, ct2: &str, hf: &str, shape: Vec<usize>) {
        self.links.push(Link {
            ct2: ct2.to_string(),
            shape: shape.clone(),
            pieces: vec![Piece {
                hf: Some(hf.to_string()),
                shape,
            }],
        });
    }

    fn linear(&mut self, ct2: &str, hf: &str, outputs: usize, inputs: usize) {
        self.tensor(
            &format!("{ct2}/weight"),
            &format!("{hf}.weight"),
            vec![outputs, inputs],
        );
        self.tensor(&format!("{ct2}/bias"), &format!("{hf}.bias"), vec![outputs]);
    }

    fn norm(&mut self, ct2: &str, hf: &str) {
        self.tensor(
            &format!("{ct2}/gamma"),
            &format!("{hf}.weight"),
            vec![self.d],
        );
        self.tensor(&format!("{ct2}/beta"), &format!("{hf}.bias"), vec![self.d]);
    }

    /// The projections `{p}_proj` of `hf` stacked into one linear layer `ct2`.
    fn stacked(&mut self, ct2: &str, hf: &str, projections: &[&str]) {
        let d = self.d;
        let weights = projections
            .iter()
            .map(|p| Piece {
                hf: Some(format!("{hf}.{p}_proj.weight")),
                shape: vec![d, d],
            })
            .collect();
        let biases = projections
            .iter()
            .map(|p| Piece {
                hf: (*p != "k").then(|| format!("{hf}.{p}_proj.bias")),
                shape: vec![d],
            })
            .collect();
        let rows = d * projections.len();
        self.links.push(Link {
            ct2: format!("{ct2}/weight"),
            shape: vec![rows, d],
            pieces: weights,
        });
        self.links.push(Link {
            ct2: format!("{ct2}/bias"),
            shape: vec![rows],
            pieces: biases,
        });
    }

    fn self_attention(&mut self, ct2: &str, hf: &str) {
        let (attention, hf_attention) =
            (format!("{ct2}/self_attention"), format!("{hf}.self_attn"));
        self.stacked(
            &format!("{attention}/linear_0"),
            &hf_attention,
            &["q", "k", "v"],
        );
        self.linear(
            &format!("{attention}/linear_1"),
            &format!("{hf_attention}.out_proj"),
            self.d,
            self.d,
        );
        self.norm(
            &format!("{attention}/layer_norm"),
            &format!("{hf}.self_attn_layer_norm"),
        );
    }

    fn ffn(&mut self, ct2: &str, hf: &str, width: usize) {
        self.linear(
            &format!("{ct2}/ffn/linear_0"),
            &format!("{hf}.fc1"),
            width,
            self.d,
        );
        self.linear(
            &format!("{ct2}/ffn/linear_1"),
            &format!("{hf}.fc2"),
            self.d,
            width,
        );
        self.norm(
            &format!("{ct2}/ffn/layer_norm"),
            &format!("{hf}.final_layer_norm"),
        );
    }
}

/// A CTranslate2 variable to write, in name order.
struct Ct2Planned {
    name: String,
    shape: Vec<usize>,
    dtype: Ct2Dtype,
    data: Ct2Data,
}

enum Ct2Data {
    /// Stacked transformers tensors.
    Pieces(Vec<PieceData>),
    /// A scalar setting's bytes.
    Scalar(Vec<u8>),
    /// The same data as this other variable.
    Alias(String),
}

enum PieceData {
    Tensor(StoredTensor),
    /// This many zero elements.
    Zeros(usize),
}

/// A transformers checkpoint being read.
struct Checkpoint<'a> {
    config: &'a Value,
    config_path: &'a Path,
    tensors: &'a BTreeMap<String, StoredTensor>,
    weights: &'a Path,
    prefix: &'a str,
}

impl Checkpoint<'_> {
    /// The sizes from config.json, or where it leaves one out, from the tensors' shapes. Only
    /// the numbers of heads cannot be told from the weights.
    fn dims(&self) -> Result<WhisperDims> {
        if let Some(activation) = self
            .config
            .get("activation_function")
            .and_then(Value::as_str)
            .filter(|a| *a != "gelu")
        {
            return Err(self.unsupported(format!(
                "activation_function is {activation:?}; CTranslate2's Whisper computes gelu only"
            )));
        }
        if self.config.get("scale_embedding") == Some(&Value::Bool(true)) {
            return Err(self.unsupported(
                "scale_embedding is true; CTranslate2's Whisper does not scale embeddings"
                    .to_string(),
            ));
        }
        let p = self.prefix;
        let dims = WhisperDims {
            d_model: self.size("d_model", &format!("{p}encoder.conv1.weight"), 0)?,
            n_mels: self.size("num_mel_bins", &format!("{p}encoder.conv1.weight"), 1)?,
            encoder_layers: self.layers("encoder_layers", &format!("{p}encoder.layers."))?,
            encoder_heads: self.heads("encoder_attention_heads")?,
            encoder_ffn: self.size(
                "encoder_ffn_dim",
                &format!("{p}encoder.layers.0.fc1.weight"),
                0,
            )?,
            decoder_layers: self.layers("decoder_layers", &format!("{p}decoder.layers."))?,
            decoder_heads: self.heads("decoder_attention_heads")?,
            decoder_ffn: self.size(
                "decoder_ffn_dim",
                &format!("{p}decoder.layers.0.fc1.weight"),
                0,
            )?,
            vocab_size: self.size("vocab_size", &format!("{p}decoder.embed_tokens.weight"), 0)?,
            max_source_positions: self.size(
                "max_source_positions",
                &format!("{p}encoder.embed_positions.weight"),
                0,
            )?,
            max_target_positions: self.size(
                "max_target_positions",
                &format!("{p}decoder.embed_positions.weight"),
                0,
            )?,
        };
        for (key, heads) in [
            ("encoder_attention_heads", dims.encoder_heads),
            ("decoder_attention_heads", dims.decoder_heads),
        ] {
            if !dims.d_model.is_multiple_of(heads) {
                return Err(self.malformed(format!(
                    "{key} {heads} does not divide d_model {}",
                    dims.d_model
                )));
            }
        }
        Ok(dims)
    }

    /// `config[key]`, else axis `axis` of the tensor `tensor`.
    fn size(&self, key: &str, tensor: &str, axis: usize) -> Result<usize> {
        if let Some(value) = self.number(key)? {
            return Ok(value);
        }
        let stored = self.tensor(tensor)?;
        stored.shape.get(axis).copied().ok_or_else(|| {
            ConvertError::TensorShape {
                file: stored.file.clone(),
                tensor: tensor.to_string(),
                expected: vec![0; axis + 1],
                actual: stored.shape.clone(),
                from: format!("a Whisper model ({key} is not in config.json)"),
            }
            .into()
        })
    }

    /// `config[key]`, else one more than the highest layer index among the tensor names.
    fn layers(&self, key: &str, names: &str) -> Result<usize> {
        if let Some(value) = self.number(key)? {
            return Ok(value);
        }
        Ok(self
            .tensors
            .keys()
            .filter_map(|name| name.strip_prefix(names)?.split('.').next()?.parse().ok())
            .map(|i: usize| i + 1)
            .max()
            .unwrap_or(0))
    }

    fn heads(&self, key: &str) -> Result<usize> {
        match self.number(key)? {
            Some(heads) if heads > 0 => Ok(heads),
            _ => Err(self.malformed(format!(
                "no {key} (a positive number); the weights do not tell the number of heads, \
                 add it as transformers' WhisperConfig writes it"
            ))),
        }
    }

    fn number(&self, key: &str) -> Result<Option<usize>> {
        match self.config.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .and_then(|v| usize::try_from(v).ok())
                .map(Some)
                .ok_or_else(|| self.malformed(format!("{key} is {value}, not a whole number"))),
        }
    }

    fn tensor(&self, name: &str) -> Result<&StoredTensor> {
        self.tensors.get(name).ok_or_else(|| {
            ConvertError::MissingTensor {
                file: self.weights.to_path_buf(),
                tensor: name.to_string(),
            }
            .into()
        })
    }

    /// Every CTranslate2 variable, checked against `dims`, sorted by name.
    fn plan(&self, dims: &WhisperDims) -> Result<Vec<Ct2Planned>> {
        let from = format!("{} ({})", self.config_path.display(), dims.describe());
        let mut plan = Vec::new();
        let mut used: HashSet<String> = HashSet::new();
        for link in Layout::of(dims, self.prefix) {
            let mut dtype = None;
            let mut pieces = Vec::new();
            for piece in &link.pieces {
                let Some(name) = &piece.hf else {
                    pieces.push(PieceData::Zeros(piece.shape.iter().product()));
                    continue;
                };
                let tensor = self.tensor(name)?;
                if tensor.shape != piece.shape {
                    return Err(ConvertError::TensorShape {
                        file: tensor.file.clone(),
                        tensor: name.clone(),
                        expected: piece.shape.clone(),
                        actual: tensor.shape.clone(),
                        from: from.clone(),
                    }
                    .into());
                }
                let piece_dtype = tensor
                    .ct2_dtype()
                    .ok_or_else(|| ConvertError::TensorDtype {
                        file: tensor.file.clone(),
                        tensor: name.clone(),
                        dtype: format!("{:?}", tensor.dtype),
                    })?;
                if dtype.is_some_and(|d| d != piece_dtype) {
                    return Err(ConvertError::Unsupported {
                        file: tensor.file.clone(),
                        message: format!(
                            "`{name}` is {piece_dtype} but the tensors stacked with it into \
                             `{}` are not; save the checkpoint in one float type",
                            link.ct2
                        ),
                    }
                    .into());
                }
                dtype = Some(piece_dtype);
                used.insert(name.clone());
                pieces.push(PieceData::Tensor(tensor.clone()));
            }
            plan.push(Ct2Planned {
                name: link.ct2,
                shape: link.shape,
                dtype: dtype.unwrap_or(Ct2Dtype::F32),
                data: Ct2Data::Pieces(pieces),
            });
        }

        // transformers ties proj_out to the token embeddings and usually leaves it out of the file.
        let projection = "decoder/projection/weight".to_string();
        match self.tensors.get("proj_out.weight") {
            Some(tensor) => {
                let expected = vec![dims.vocab_size, dims.d_model];
                if tensor.shape != expected {
                    return Err(ConvertError::TensorShape {
                        file: tensor.file.clone(),
                        tensor: "proj_out.weight".to_string(),
                        expected,
                        actual: tensor.shape.clone(),
                        from,
                    }
                    .into());
                }
                let dtype = tensor
                    .ct2_dtype()
                    .ok_or_else(|| ConvertError::TensorDtype {
                        file: tensor.file.clone(),
                        tensor: "proj_out.weight".to_string(),
                        dtype: format!("{:?}", tensor.dtype),
                    })?;
                used.insert("proj_out.weight".to_string());
                plan.push(Ct2Planned {
                    name: projection,
                    shape: tensor.shape.clone(),
                    dtype,
                    data: Ct2Data::Pieces(vec![PieceData::Tensor(tensor.clone())]),
                });
            }
            None if self.config.get("tie_word_embeddings") == Some(&Value::Bool(false)) => {
                return Err(ConvertError::MissingTensor {
                    file: self.weights.to_path_buf(),
                    tensor: "proj_out.weight".to_string(),
                }
                .into());
            }
            None => plan.push(Ct2Planned {
                name: projection,
                shape: vec![dims.vocab_size, dims.d_model],
                dtype: Ct2Dtype::F32,
                data: Ct2Data::Alias("decoder/embeddings/weight".to_string()),
            }),
        }

        let unused: Vec<&String> = self
            .tensors
            .keys()
            .filter(|name| !used.contains(name.as_str()))
            .collect();
        if !unused.is_empty() {
            tracing::warn!(
                count = unused.len(),
                first = %unused[0],
                weights = %self.weights.display(),
                "tensors that a Whisper model does not use are left out"
            );
        }

        plan.extend(scalars(dims, self.config_path)?);
        plan.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(plan)
    }

    fn malformed(&self, message: String) -> HubError {
        ConvertError::Malformed {
            file: self.config_path.to_path_buf(),
            message,
        }
        .into()
    }

    fn unsupported(&self, message: String) -> HubError {
        ConvertError::Unsupported {
            file: self.config_path.to_path_buf(),
            message,
        }
        .into()
    }
}

/// The scalar settings CTranslate2's converter writes for Whisper (`TransformerDecoderSpec` with
/// GELU, pre-norm, no ALiBi; `WhisperSpec` turns embedding scaling off). Newer converters add
/// `decoder/alibi_use_positive_positions` and `decoder/scale_alibi`, which CTranslate2 reads only
/// when `decoder/alibi` is on and otherwise defaults.
fn scalars(dims: &WhisperDims, config_path: &Path) -> Result<Vec<Ct2Planned>> {
    let heads = |heads: usize| {
        i16::try_from(heads).map_err(|_| ConvertError::Unsupported {
            file: config_path.to_path_buf(),
            message: format!("{heads} attention heads are more than CTranslate2 can store"),
        })
    };
    let (encoder_heads, decoder_heads) = (heads(dims.encoder_heads)?, heads(dims.decoder_heads)?);
    let scalar = |name: &str, dtype, bytes: &[u8]| Ct2Planned {
        name: name.to_string(),
        shape: Vec::new(),
        dtype,
        data: Ct2Data::Scalar(bytes.to_vec()),
    };
    Ok(vec![
        scalar("decoder/activation", Ct2Dtype::I8, &[GELU]),
        scalar("decoder/alibi", Ct2Dtype::I8, &[0]),
        scalar(
            "decoder/alignment_heads",
            Ct2Dtype::I16,
            &1i16.to_le_bytes(),
        ),
        scalar(
            "decoder/alignment_layer",
            Ct2Dtype::I16,
            &(-1i16).to_le_bytes(),
        ),
        scalar(
            "decoder/num_heads",
            Ct2Dtype::I16,
            &decoder_heads.to_le_bytes(),
        ),
        scalar("decoder/pre_norm", Ct2Dtype::I8, &[1]),
        scalar("decoder/scale_embeddings", Ct2Dtype::I8, &[0]),
        scalar("decoder/start_from_zero_embedding", Ct2Dtype::I8, &[0]),
        scalar(
            "encoder/num_heads",
            Ct2Dtype::I16,
            &encoder_heads.to_le_bytes(),
        ),
    ])
}

/// Writes `plan` (sorted by name) to `path`. As CTranslate2's converter does, a variable equal
/// to an earlier one (same type, shape and bytes) is stored once and named again as an alias.
fn write_model_bin(path: &Path, plan: &[Ct2Planned]) -> Result<()> {
    let mut writer = ModelBinWriter::create(path, SPEC_NAME, SPEC_REVISION)?;
    let mut stored: HashMap<(Ct2Dtype, Vec<usize>, [u8; 32]), String> = HashMap::new();
    let mut aliases: HashMap<&str, String> = HashMap::new();
    for variable in plan {
        match &variable.data {
            Ct2Data::Scalar(bytes) => {
                writer.write_variable(&variable.name, &[], variable.dtype, bytes)?;
            }
            Ct2Data::Alias(target) => {
                let target = aliases.get(target.as_str()).unwrap_or(target);
                writer.write_alias(&variable.name, target)?;
            }
            Ct2Data::Pieces(pieces) => {
                let bytes = assemble(pieces, variable.dtype)?;
                let key = (
                    variable.dtype,
                    variable.shape.clone(),
                    Sha256::digest(&bytes).into(),
                );
                match stored.get(&key) {
                    Some(first) => {
                        writer.write_alias(&variable.name, first)?;
                        aliases.insert(&variable.name, first.clone());
                    }
                    None => {
                        writer.write_variable(
                            &variable.name,
                            &variable.shape,
                            variable.dtype,
                            &bytes,
                        )?;
                        stored.insert(key, variable.name.clone());
                    }
                }
            }
        }
    }
    writer.finish()
}

fn assemble(pieces: &[PieceData], dtype: Ct2Dtype) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    for piece in pieces {
        match piece {
            PieceData::Tensor(tensor) if pieces.len() == 1 => return tensor.read(),
            PieceData::Tensor(tensor) => bytes.extend_from_slice(&tensor.read()?),
            PieceData::Zeros(count) => bytes.resize(bytes.len() + count * dtype.size(), 0),
        }
    }
    Ok(bytes)
}

/// The sizes of a CTranslate2 Whisper model, from its variables' shapes and scalars.
fn ct2_dims(model: &ModelBin) -> Result<WhisperDims> {
    let shape = |name: &str| -> Result<&[usize]> {
        model
            .variable(name)
            .map(|v| v.shape.as_slice())
            .ok_or_else(|| {
                ConvertError::MissingTensor {
                    file: model.path().to_path_buf(),
                    tensor: name.to_string(),
                }
                .into()
            })
    };
    let rows = |name: &str| -> Result<usize> {
        let dims = shape(name)?;
        dims.first().copied().ok_or_else(|| {
            ConvertError::TensorShape {
                file: model.path().to_path_buf(),
                tensor: name.to_string(),
                expected: vec![0, 0],
                actual: dims.to_vec(),
                from: "a Whisper model (a matrix)".to_string(),
            }
            .into()
        })
    };
    let conv1 = shape("encoder/conv1/weight")?;
    let &[d_model, n_mels, 3] = conv1 else {
        return Err(ConvertError::TensorShape {
            file: model.path().to_path_buf(),
            tensor: "encoder/conv1/weight".to_string(),
            expected: vec![0, 0, 3],
            actual: conv1.to_vec(),
            from: "a Whisper model ([d_model, n_mels, 3])".to_string(),
        }
        .into());
    };
    let layers = |scope: &str| {
        let prefix = format!("{scope}/layer_");
        model
            .variables
            .iter()
            .map(|v| v.name.as_str())
            .chain(model.aliases.iter().map(|(alias, _)| alias.as_str()))
            .filter_map(|name| name.strip_prefix(&prefix)?.split('/').next()?.parse().ok())
            .map(|i: usize| i + 1)
            .max()
            .unwrap_or(0)
    };
    // CTranslate2 reads num_heads with a default of 8.
    let heads = |name: &str| -> Result<usize> {
        let Some(variable) = model.variable(name) else {
            return Ok(8);
        };
        let bytes = model.read(variable)?;
        let heads = match (variable.dtype, bytes.as_slice()) {
            (Ct2Dtype::I16, &[a, b]) => i64::from(i16::from_le_bytes([a, b])),
            (Ct2Dtype::I32, &[a, b, c, d]) => i64::from(i32::from_le_bytes([a, b, c, d])),
            _ => -1,
        };
        usize::try_from(heads)
            .ok()
            .filter(|h| *h > 0 && d_model.is_multiple_of(*h))
            .ok_or_else(|| {
                ConvertError::Malformed {
                    file: model.path().to_path_buf(),
                    message: format!(
                        "`{name}` is not a number of heads that divides d_model {d_model}"
                    ),
                }
                .into()
            })
    };
    Ok(WhisperDims {
        d_model,
        n_mels,
        encoder_layers: layers("encoder"),
        encoder_heads: heads("encoder/num_heads")?,
        encoder_ffn: rows("encoder/layer_0/ffn/linear_0/weight")?,
        decoder_layers: layers("decoder"),
        decoder_heads: heads("decoder/num_heads")?,
        decoder_ffn: rows("decoder/layer_0/ffn/linear_0/weight")?,
        vocab_size: rows("decoder/embeddings/weight")?,
        max_source_positions: rows("encoder/position_encodings/encodings")?,
        max_target_positions: rows("decoder/position_encodings/encodings")?,
    })
}

/// A transformers tensor to write, taken from the CTranslate2 variable's bytes from an offset.
type HfTensor = PlannedTensor<(Ct2Variable, usize)>;

/// The transformers tensors of a CTranslate2 model, each a run of rows of one variable, sorted
/// by name; and whether the output projection is tied to the embeddings.
fn plan_hf(model: &ModelBin, dims: &WhisperDims) -> Result<(Vec<HfTensor>, bool)> {
    let file = model.path().to_path_buf();
    let from = format!("the rest of model.bin ({})", dims.describe());
    let missing = |name: &str| ConvertError::MissingTensor {
        file: file.clone(),
        tensor: name.to_string(),
    };
    let mut planned = Vec::new();
    let mut used = HashSet::new();
    for link in Layout::of(dims, "model.") {
        let variable = model
            .variable(&link.ct2)
            .ok_or_else(|| missing(&link.ct2))?;
        if variable.shape != link.shape {
            return Err(ConvertError::TensorShape {
                file: file.clone(),
                tensor: link.ct2.clone(),
                expected: link.shape.clone(),
                actual: variable.shape.clone(),
                from: from.clone(),
            }
            .into());
        }
        used.insert(variable.name.clone());
        let mut start = 0;
        for piece in &link.pieces {
            let len = piece.shape.iter().product::<usize>() * variable.dtype.size();
            match &piece.hf {
                Some(name) => planned.push(PlannedTensor {
                    name: name.clone(),
                    dtype: variable.dtype,
                    shape: piece.shape.clone(),
                    source: (variable.clone(), start),
                }),
                None => {
                    // transformers has no key bias; it cannot change attention weights anyway
                    // (it adds the same amount to every key's score).
                    if model
                        .read_range(variable, start, len)?
                        .iter()
                        .any(|&b| b != 0)
                    {
                        tracing::warn!(variable = %link.ct2, "a non-zero key bias is left out");
                    }
                }
            }
            start += len;
        }
    }

    let embeddings = model
        .variable("decoder/embeddings/weight")
        .ok_or_else(|| missing("decoder/embeddings/weight"))?;
    let projection = model
        .variable("decoder/projection/weight")
        .ok_or_else(|| missing("decoder/projection/weight"))?;
    let tied = projection.name == embeddings.name;
    if !tied {
        let expected = vec![dims.vocab_size, dims.d_model];
        if projection.shape != expected {
            return Err(ConvertError::TensorShape {
                file: file.clone(),
                tensor: projection.name.clone(),
                expected,
                actual: projection.shape.clone(),
                from,
            }
            .into());
        }
        used.insert(projection.name.clone());
        planned.push(PlannedTensor {
            name: "proj_out.weight".to_string(),
            dtype: projection.dtype,
            shape: projection.shape.clone(),
            source: (projection.clone(), 0),
        });
    }
    if let Some(extra) = model
        .variables
        .iter()
        .find(|v| !v.is_scalar() && !used.contains(&v.name))
    {
        return Err(ConvertError::Unsupported {
            file,
            message: format!(
                "variable `{}` has no place in transformers' Whisper; this is not a Whisper \
                 layout this converter knows",
                extra.name
            ),
        }
        .into());
    }
    planned.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((planned, tied))
}

/// CTranslate2's Whisper `config.json` (`WhisperConfig` in `whisper_spec.py`); keys in the
/// sorted order its converter writes them.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Ct2Config {
    alignment_heads: Option<Vec<[i64; 2]>>,
    lang_ids: Option<Vec<i64>>,
    suppress_ids: Option<Vec<i64>>,
    suppress_ids_begin: Option<Vec<i64>>,
}

impl Ct2Config {
    /// What `WhisperLoader.set_config` takes: the generation config's lists where it has them
    /// (else config.json's), its languages (else the tokenizer's language tokens), and alignment
    /// heads defaulting to every head of the second half of the decoder layers.
    fn from_hf(
        config: &Value,
        generation: &HfGenerationConfig,
        tokenizer: &TokenizerJson,
        dims: &WhisperDims,
    ) -> Ct2Config {
        let ids = |key: &str| -> Option<Vec<i64>> {
            config
                .get(key)?
                .as_array()?
                .iter()
                .map(Value::as_i64)
                .collect()
        };
        let lang_ids = match &generation.lang_to_id {
            Some(languages) => {
                let mut ids: Vec<i64> = languages.values().copied().collect();
                ids.sort_unstable();
                ids
            }
            None => tokenizer.language_ids(),
        };
        let alignment_heads = generation.alignment_heads.clone().unwrap_or_else(|| {
            let layers = dims.decoder_layers as i64;
            (layers / 2..layers)
                .flat_map(|layer| (0..dims.decoder_heads as i64).map(move |head| [layer, head]))
                .collect()
        });
        Ct2Config {
            alignment_heads: Some(alignment_heads),
            lang_ids: Some(lang_ids),
            suppress_ids: Some(
                generation
                    .suppress_tokens
                    .clone()
                    .or_else(|| ids("suppress_tokens"))
                    .unwrap_or_default(),
            ),
            suppress_ids_begin: Some(
                generation
                    .begin_suppress_tokens
                    .clone()
                    .or_else(|| ids("begin_suppress_tokens"))
                    .unwrap_or_default(),
            ),
        }
    }
}

/// The parts of transformers' `generation_config.json` the CTranslate2 config comes from.
#[derive(Debug, Default, Deserialize)]
struct HfGenerationConfig {
    suppress_tokens: Option<Vec<i64>>,
    begin_suppress_tokens: Option<Vec<i64>>,
    alignment_heads: Option<Vec<[i64; 2]>>,
    lang_to_id: Option<BTreeMap<String, i64>>,
}

/// The parts of a `tokenizers` `tokenizer.json` the vocabulary comes from.
#[derive(Debug, Deserialize)]
struct TokenizerJson {
    model: TokenizerModel,
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
}

#[derive(Debug, Deserialize)]
struct TokenizerModel {
    #[serde(default)]
    vocab: Value,
}

#[derive(Debug, Deserialize)]
struct AddedToken {
    id: u64,
    content: String,
    #[serde(default)]
    special: bool,
}

impl TokenizerJson {
    /// Every token in id order (the BPE vocabulary and the added tokens), cut to `vocab_size`,
    /// then the timestamp tokens `<|0.00|>`, `<|0.02|>`, … up to `vocab_size`, which Whisper's
    /// tokenizer.json leaves out (as `WhisperLoader.get_vocabulary` does).
    fn vocabulary(&self, vocab_size: usize, path: &Path) -> Result<Vec<String>> {
        let malformed = |message: String| -> HubError {
            ConvertError::Malformed {
                file: path.to_path_buf(),
                message,
            }
            .into()
        };
        let Value::Object(vocab) = &self.model.vocab else {
            return Err(malformed(
                "model.vocab is not a map of tokens to ids; Whisper's tokenizer is a byte-level BPE"
                    .to_string(),
            ));
        };
        let mut by_id: BTreeMap<u64, &str> = BTreeMap::new();
        for (token, id) in vocab {
            let id = id
                .as_u64()
                .ok_or_else(|| malformed(format!("token {token:?} has id {id}")))?;
            by_id.insert(id, token);
        }
        for added in &self.added_tokens {
            by_id.insert(added.id, &added.content);
        }
        if let Some(gap) = (0..).zip(by_id.keys()).find(|(i, id)| i != *id) {
            return Err(malformed(format!(
                "no token has id {}; the ids must run from 0 without gaps",
                gap.0
            )));
        }
        let mut tokens: Vec<String> = by_id
            .into_values()
            .take(vocab_size)
            .map(str::to_string)
            .collect();
        if let Some(bad) = tokens.iter().find(|t| t.contains(['\n', '\r'])) {
            return Err(ConvertError::Unsupported {
                file: path.to_path_buf(),
                message: format!(
                    "token {bad:?} holds a line break, which vocabulary.txt cannot hold"
                ),
            }
            .into());
        }
        let timestamps = vocab_size - tokens.len();
        tokens.extend((0..timestamps).map(|i| {
            let hundredths = i * 2;
            format!("<|{}.{:02}|>", hundredths / 100, hundredths % 100)
        }));
        Ok(tokens)
    }

    /// The ids of the special tokens that name a language (`<|en|>`, `<|haw|>`, …: two or three
    /// lowercase letters; the other special tokens are longer words), sorted.
    fn language_ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self
            .added_tokens
            .iter()
            .filter(|t| t.special)
            .filter(|t| {
                t.content
                    .strip_prefix("<|")
                    .and_then(|rest| rest.strip_suffix("|>"))
                    .is_some_and(|code| {
                        (2..=3).contains(&code.len())
                            && code.bytes().all(|b| b.is_ascii_lowercase())
                    })
            })
            .filter_map(|t| i64::try_from(t.id).ok())
            .collect();
        ids.sort_unstable();
        ids
    }
}

/// The ids of Whisper's special tokens in a vocabulary.
struct SpecialTokens {
    end_of_text: usize,
    start_of_transcript: usize,
    others: BTreeMap<&'static str, usize>,
}

impl SpecialTokens {
    fn find(vocabulary: &[String], path: &Path) -> Result<SpecialTokens> {
        let id = |token: &str| vocabulary.iter().position(|t| t == token);
        let required = |token: &str| {
            id(token).ok_or_else(|| ConvertError::Malformed {
                file: path.to_path_buf(),
                message: format!("the vocabulary has no {token}; it is not Whisper's"),
            })
        };
        let others = [
            ("translate", "<|translate|>"),
            ("transcribe", "<|transcribe|>"),
            ("prev_sot", "<|startofprev|>"),
            ("no_timestamps", "<|notimestamps|>"),
        ]
        .into_iter()
        .filter_map(|(key, token)| Some((key, id(token)?)))
        .collect();
        Ok(SpecialTokens {
            end_of_text: required("<|endoftext|>")?,
            start_of_transcript: required("<|startoftranscript|>")?,
            others,
        })
    }
}

/// The small files of a transformers checkpoint written by [`ct2_to_hf`].
struct HfFiles<'a> {
    dims: &'a WhisperDims,
    specials: &'a SpecialTokens,
    config: &'a Ct2Config,
    lang_to_id: &'a BTreeMap<String, i64>,
    dtype: Ct2Dtype,
    tied: bool,
}

impl HfFiles<'_> {
    /// transformers' `WhisperConfig` (its defaults for what CTranslate2 does not keep, such as
    /// dropout rates).
    fn config(&self) -> Value {
        let d = self.dims;
        let eot = self.specials.end_of_text;
        json!({
            "activation_dropout": 0.0,
            "activation_function": "gelu",
            "apply_spec_augment": false,
            "architectures": ["WhisperForConditionalGeneration"],
            "attention_dropout": 0.0,
            "begin_suppress_tokens": self.config.suppress_ids_begin.clone().unwrap_or_default(),
            "bos_token_id": eot,
            "d_model": d.d_model,
            "decoder_attention_heads": d.decoder_heads,
            "decoder_ffn_dim": d.decoder_ffn,
            "decoder_layerdrop": 0.0,
            "decoder_layers": d.decoder_layers,
            "decoder_start_token_id": self.specials.start_of_transcript,
            "dropout": 0.0,
            "encoder_attention_heads": d.encoder_heads,
            "encoder_ffn_dim": d.encoder_ffn,
            "encoder_layerdrop": 0.0,
            "encoder_layers": d.encoder_layers,
            "eos_token_id": eot,
            "init_std": 0.02,
            "is_encoder_decoder": true,
            "max_source_positions": d.max_source_positions,
            "max_target_positions": d.max_target_positions,
            "model_type": "whisper",
            "num_hidden_layers": d.encoder_layers,
            "num_mel_bins": d.n_mels,
            "pad_token_id": eot,
            "scale_embedding": false,
            "suppress_tokens": self.config.suppress_ids.clone().unwrap_or_default(),
            "tie_word_embeddings": self.tied,
            "torch_dtype": self.dtype.name(),
            "use_cache": true,
            "vocab_size": d.vocab_size,
        })
    }

    /// transformers' `GenerationConfig` for Whisper: what CTranslate2's config.json holds, under
    /// the names `WhisperLoader.set_config` reads them from, and the special token ids.
    fn generation_config(&self) -> Value {
        let eot = self.specials.end_of_text;
        let mut config = Map::new();
        let mut set = |key: &str, value: Value| {
            config.insert(key.to_string(), value);
        };
        if let Some(heads) = &self.config.alignment_heads {
            set("alignment_heads", json!(heads));
        }
        set(
            "begin_suppress_tokens",
            json!(self.config.suppress_ids_begin.clone().unwrap_or_default()),
        );
        set("bos_token_id", json!(eot));
        set(
            "decoder_start_token_id",
            json!(self.specials.start_of_transcript),
        );
        set("eos_token_id", json!(eot));
        set("is_multilingual", json!(self.dims.is_multilingual()));
        if !self.lang_to_id.is_empty() {
            set("lang_to_id", json!(self.lang_to_id));
        }
        set("max_initial_timestamp_index", json!(50));
        set("max_length", json!(self.dims.max_target_positions));
        let others = &self.specials.others;
        if let Some(id) = others.get("no_timestamps") {
            set("no_timestamps_token_id", json!(id));
        }
        set("pad_token_id", json!(eot));
        if let Some(id) = others.get("prev_sot") {
            set("prev_sot_token_id", json!(id));
        }
        set("return_timestamps", json!(false));
        set(
            "suppress_tokens",
            json!(self.config.suppress_ids.clone().unwrap_or_default()),
        );
        if let (true, Some(transcribe), Some(translate)) = (
            self.dims.is_multilingual(),
            others.get("transcribe"),
            others.get("translate"),
        ) {
            set(
                "task_to_id",
                json!({"transcribe": transcribe, "translate": translate}),
            );
        }
        Value::Object(config)
    }

    /// Enough for transformers' `WhisperTokenizer` beside tokenizer.json.
    fn tokenizer_config(&self) -> Value {
        json!({
            "add_prefix_space": false,
            "bos_token": "<|endoftext|>",
            "eos_token": "<|endoftext|>",
            "errors": "replace",
            "model_max_length": 1024,
            "pad_token": "<|endoftext|>",
            "processor_class": "WhisperProcessor",
            "tokenizer_class": "WhisperTokenizer",
            "unk_token": "<|endoftext|>",
        })
    }

    /// transformers' `WhisperFeatureExtractor`: 16 kHz, 10 ms hops, 30 s windows, and the
    /// model's mel bins.
    fn preprocessor_config(&self) -> Value {
        const SAMPLE_RATE: usize = 16_000;
        const HOP: usize = 160;
        // The encoder's convolutions halve the frames: 3000 mel frames for 1500 positions.
        let frames = self.dims.max_source_positions * 2;
        json!({
            "chunk_length": frames * HOP / SAMPLE_RATE,
            "feature_extractor_type": "WhisperFeatureExtractor",
            "feature_size": self.dims.n_mels,
            "hop_length": HOP,
            "n_fft": 400,
            "n_samples": frames * HOP,
            "nb_max_frames": frames,
            "padding_side": "right",
            "padding_value": 0.0,
            "processor_class": "WhisperProcessor",
            "return_attention_mask": false,
            "sampling_rate": SAMPLE_RATE,
        })
    }
}

/// Refuses a `preprocessor_config.json` whose `feature_size` is not the model's number of mel
/// bins: features computed by it would not fit the model.
fn check_feature_size(path: &Path, n_mels: usize) -> Result<()> {
    let preprocessor: Value = read_json(path, "preprocessor_config.json")?;
    match preprocessor.get("feature_size").and_then(Value::as_u64) {
        Some(size) if size != n_mels as u64 => Err(ConvertError::Malformed {
            file: path.to_path_buf(),
            message: format!(
                "feature_size is {size} but the model takes {n_mels} mel bins; set it to {n_mels}"
            ),
        }
        .into()),
        _ => Ok(()),
    }
}

/// A CTranslate2 folder's vocabulary: `vocabulary.json` (a list), else `vocabulary.txt` (one
/// token a line), read as CTranslate2 reads them.
fn read_ct2_vocabulary(dir: &Path) -> Result<Vec<String>> {
    let json_path = dir.join(VOCABULARY_JSON);
    if json_path.is_file() {
        return read_json(&json_path, "vocabulary.json");
    }
    let path = require(
        dir,
        VOCABULARY_TXT,
        "a CTranslate2 Whisper folder has vocabulary.txt (or vocabulary.json)",
    )?;
    let text = fs::read_to_string(&path).map_err(|e| HubError::io(&path, e))?;
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    // Only when every line ends in a carriage return is it part of the line break.
    let crlf = !lines.is_empty() && lines.iter().all(|l| l.ends_with('\r'));
    Ok(lines
        .into_iter()
        .map(|l| if crlf { &l[..l.len() - 1] } else { l })
        .map(str::to_string)
        .collect())
}

fn write_vocabulary(path: &Path, tokens: &[String]) -> Result<()> {
    let mut text = String::with_capacity(tokens.iter().map(|t| t.len() + 1).sum());
    for token in tokens {
        text.push_str(token);
        text.push('\n');
    }
    fs::write(path, text).map_err(|e| HubError::io(path, e))
}

/// `dir/file` if it is a file, else [`ConvertError::MissingFile`] with `hint`.
fn require(dir: &Path, file: &str, hint: &str) -> Result<PathBuf> {
    let path = dir.join(file);
    if path.is_file() {
        Ok(path)
    } else {
        Err(ConvertError::MissingFile {
            dir: dir.to_path_buf(),
            file: file.to_string(),
            hint: hint.to_string(),
        }
        .into())
    }
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to)
        .map(|_| ())
        .map_err(|e| HubError::io(from, e))
}
