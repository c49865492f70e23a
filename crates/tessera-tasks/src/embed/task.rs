//! Embeddings as a registered task: the two families (BERT on ONNX Runtime, BERT on candle), the
//! frontend that tokenizes and normalizes, and the runner that packs sequences into engine calls.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tessera_core::{Embedder, EngineKind, Task};
use tessera_hub::LocalModel;

use super::{EmbedderSpec, Pooling, TextTokenizer, l2_normalize, load_embedder};
use crate::TaskError;
use crate::packing::{Budget, pack};
use crate::registry::{
    Batching, Cancelled, Family, Frontend, LoadContext, LoadedModel, Prepared, RequestLimits,
    Runner, abandoned, file_bytes,
};
use tessera_core::Encoding;

/// BERT-family encoders exported to ONNX.
pub static ONNX_FAMILY: Family = Family {
    name: "bert-onnx",
    task: Task::Embed,
    engine: EngineKind::Onnx,
    batching: Batching::Budget,
    recognises: |model| single_onnx_graph(model) && has_tokenizer(model),
    load,
    estimate_bytes,
};

/// BERT-family encoders from safetensors, on candle.
pub static CANDLE_FAMILY: Family = Family {
    name: "bert-candle",
    task: Task::Embed,
    engine: EngineKind::Candle,
    batching: Batching::Budget,
    recognises: |model| is_bert(model) && has_tokenizer(model),
    load,
    estimate_bytes,
};

/// What to embed: texts, or sequences of token ids of the model's own vocabulary.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbedInput {
    /// Texts.
    Texts(Vec<String>),
    /// Token ids; the model's special tokens are added around each sequence.
    Tokens(Vec<Vec<u32>>),
}

impl EmbedInput {
    /// The number of inputs.
    pub fn len(&self) -> usize {
        match self {
            EmbedInput::Texts(texts) => texts.len(),
            EmbedInput::Tokens(tokens) => tokens.len(),
        }
    }

    /// Whether there is nothing to embed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One embeddings request.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedRequest {
    /// What to embed.
    pub input: EmbedInput,
    /// Cut inputs over the model's token limit instead of failing.
    pub truncate: bool,
    /// The vector length the caller expects, if it said; anything but the model's is refused.
    pub dimensions: Option<usize>,
}

/// The vectors of one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedded {
    /// One vector per input, in order.
    pub vectors: Vec<Vec<f32>>,
    /// Tokens embedded, special tokens included.
    pub tokens: usize,
}

/// The embeddings frontend: a model's tokenizer, limits and output settings.
pub struct Embeddings {
    tokenizer: TextTokenizer,
    dimensions: usize,
    normalize: bool,
    limits: RequestLimits,
}

impl Embeddings {
    /// The length of each vector.
    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    /// The longest input the model takes, in tokens, special tokens included.
    pub fn max_tokens(&self) -> usize {
        self.tokenizer.max_tokens()
    }
}

impl Frontend for Embeddings {
    const TASK: Task = Task::Embed;
    type Request = EmbedRequest;
    type Input = Vec<Encoding>;
    type Output = Embedded;
    type Response = Embedded;

    fn prepare(&self, request: EmbedRequest) -> Result<Prepared<Vec<Encoding>>, TaskError> {
        let EmbedRequest {
            input,
            truncate,
            dimensions,
        } = request;
        if let Some(asked) = dimensions
            && asked != self.dimensions
        {
            return Err(TaskError::InvalidParam {
                param: "dimensions",
                message: format!(
                    "this model makes {}-dimensional vectors and was not trained to be truncated; omit `dimensions` or set it to {}",
                    self.dimensions, self.dimensions
                ),
            });
        }
        if input.is_empty() {
            return Err(TaskError::InvalidInput(
                "`input` is empty; send at least one string".into(),
            ));
        }
        if input.len() > self.limits.max_inputs {
            return Err(TaskError::InvalidInput(format!(
                "`input` has {} items, over the cap of {} inputs per request; split it into several requests",
                input.len(),
                self.limits.max_inputs
            )));
        }
        let first_empty = match &input {
            EmbedInput::Texts(texts) => texts.iter().position(String::is_empty),
            EmbedInput::Tokens(tokens) => tokens.iter().position(Vec::is_empty),
        };
        if let Some(index) = first_empty {
            return Err(TaskError::InvalidInput(format!(
                "input[{index}] is empty; every input needs at least one character or token"
            )));
        }
        let encodings = match &input {
            EmbedInput::Texts(texts) => self.tokenizer.encode(texts, truncate)?,
            EmbedInput::Tokens(tokens) => self.tokenizer.encode_ids(tokens, truncate)?,
        };
        let cost: usize = encodings.iter().map(Encoding::len).sum();
        if cost > self.limits.max_tokens {
            return Err(TaskError::InvalidInput(format!(
                "the inputs total {cost} tokens, over the cap of {} tokens per request; split it into several requests",
                self.limits.max_tokens
            )));
        }
        Ok(Prepared {
            input: encodings,
            cost,
        })
    }

    fn finish(&self, mut output: Embedded) -> Result<Embedded, TaskError> {
        if self.normalize {
            output.vectors.iter_mut().for_each(|v| l2_normalize(v));
        }
        Ok(output)
    }
}

/// The embeddings runner: packs every sequence of every job into length-aware engine calls.
pub struct EmbedRunner {
    embedder: Box<dyn Embedder>,
    budget: Budget,
}

impl Runner for EmbedRunner {
    type Input = Vec<Encoding>;
    type Output = Embedded;

    fn run(
        &mut self,
        jobs: Vec<Vec<Encoding>>,
        cancelled: &Cancelled<'_>,
    ) -> Vec<Result<Embedded, TaskError>> {
        // Every sequence, tagged with its job.
        let sequences: Vec<(usize, &Encoding)> = jobs
            .iter()
            .enumerate()
            .flat_map(|(job, encodings)| encodings.iter().map(move |e| (job, e)))
            .collect();
        let lengths: Vec<usize> = sequences.iter().map(|(_, e)| e.len()).collect();
        let mut vectors: Vec<Option<Vec<f32>>> = vec![None; sequences.len()];
        let mut failures: Vec<Option<TaskError>> = (0..jobs.len()).map(|_| None).collect();
        for batch in pack(&lengths, self.budget) {
            // Callers that left while earlier engine calls ran cost no more compute.
            for &index in &batch {
                let job = sequences[index].0;
                if failures[job].is_none() && cancelled.job(job) {
                    failures[job] = Some(abandoned());
                }
            }
            // A job that already failed gains nothing from more engine calls.
            if batch.iter().all(|&i| failures[sequences[i].0].is_some()) {
                continue;
            }
            let inputs: Vec<&Encoding> = batch.iter().map(|&i| sequences[i].1).collect();
            let outcome = match self.embedder.embed(&inputs) {
                Ok(outputs) if outputs.len() == batch.len() => Ok(outputs),
                Ok(outputs) => Err(format!(
                    "the engine returned {} vectors for {} inputs",
                    outputs.len(),
                    batch.len()
                )),
                Err(e) => Err(e.to_string()),
            };
            match outcome {
                Ok(outputs) => {
                    for (index, vector) in batch.into_iter().zip(outputs) {
                        vectors[index] = Some(vector);
                    }
                }
                // Only the jobs with a sequence in the failed call see the error.
                Err(message) => {
                    for &index in &batch {
                        failures[sequences[index].0]
                            .get_or_insert_with(|| TaskError::Inference(message.clone()));
                    }
                }
            }
        }
        let mut vectors = vectors.into_iter();
        jobs.iter()
            .zip(failures)
            .map(|(encodings, failure)| {
                let mine: Vec<Option<Vec<f32>>> = vectors.by_ref().take(encodings.len()).collect();
                match failure {
                    Some(error) => Err(error),
                    None => Ok(Embedded {
                        vectors: mine.into_iter().flatten().collect(),
                        tokens: encodings.iter().map(Encoding::len).sum(),
                    }),
                }
            })
            .collect()
    }
}

fn load(model: &LocalModel, context: &LoadContext) -> Result<LoadedModel, TaskError> {
    let settings = EmbedSettings::of(model)?;
    let tokenizer = TextTokenizer::from_file(&model.file("tokenizer.json")?, settings.max_tokens)?;
    let spec = EmbedderSpec {
        engine: model.engine,
        weights: weights_file(model)?,
        config: model.file("config.json").ok(),
        session: context.session.clone(),
        pooling: settings.pooling,
    };
    let embedder = load_embedder(&spec)?;
    let frontend = Embeddings {
        tokenizer,
        dimensions: embedder.dimensions(),
        normalize: settings.normalize,
        limits: context.limits,
    };
    let runner = EmbedRunner {
        embedder,
        budget: context.budget,
    };
    let device = runner.embedder.device();
    Ok(LoadedModel::new(frontend, runner, device))
}

/// Weights plus the engine's working memory for a batch, which for these small encoders is
/// about the size of the weights again.
fn estimate_bytes(model: &LocalModel) -> u64 {
    file_bytes(model).saturating_mul(2)
}

/// The `.onnx` graph for ONNX Runtime, the `.safetensors` for candle.
fn weights_file(model: &LocalModel) -> Result<PathBuf, TaskError> {
    let extension = match model.engine {
        EngineKind::Onnx => "onnx",
        _ => "safetensors",
    };
    Ok(model.file_with_extension(extension)?)
}

/// The options of a catalog entry, else what a sentence-transformers folder says, else defaults.
struct EmbedSettings {
    max_tokens: usize,
    pooling: Pooling,
    normalize: bool,
}

impl EmbedSettings {
    fn of(model: &LocalModel) -> Result<EmbedSettings, TaskError> {
        let folder = FolderSettings::read(&model.dir);
        let option = |key: &str| model.options.get(key);
        let max_tokens = option("max_tokens")
            .and_then(Value::as_u64)
            .or(folder.max_tokens)
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or(512);
        let normalize = option("normalize")
            .and_then(Value::as_bool)
            .or(folder.normalize)
            .unwrap_or(true);
        let pooling = match option("pooling").and_then(Value::as_str).or(folder.pooling) {
            Some(name) => name.parse().map_err(|e| TaskError::ModelFile {
                path: model.dir.clone(),
                message: format!("model `{}`: {e}", model.id),
            })?,
            None => Pooling::default(),
        };
        Ok(EmbedSettings {
            max_tokens,
            pooling,
            normalize,
        })
    }
}

/// What a sentence-transformers folder says about itself.
#[derive(Debug, Default)]
struct FolderSettings {
    max_tokens: Option<u64>,
    pooling: Option<&'static str>,
    normalize: Option<bool>,
}

impl FolderSettings {
    fn read(dir: &Path) -> FolderSettings {
        let read = |name: &str| -> Option<Value> {
            serde_json::from_slice(&std::fs::read(dir.join(name)).ok()?).ok()
        };
        let max_tokens = read("sentence_bert_config.json")
            .as_ref()
            .and_then(|v| v.get("max_seq_length"))
            .and_then(Value::as_u64);
        let pooling = read("1_Pooling/config.json").and_then(|pooling| {
            let on = |key: &str| pooling.get(key).and_then(Value::as_bool) == Some(true);
            if on("pooling_mode_cls_token") {
                Some("cls")
            } else if on("pooling_mode_mean_tokens") {
                Some("mean")
            } else if on("pooling_mode_max_tokens") {
                Some("max")
            } else {
                None
            }
        });
        let normalize = read("modules.json").map(|modules| {
            modules.as_array().is_some_and(|m| {
                m.iter().any(|module| {
                    module
                        .get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t.ends_with("Normalize"))
                })
            })
        });
        FolderSettings {
            max_tokens,
            pooling,
            normalize,
        }
    }
}

fn has_tokenizer(model: &LocalModel) -> bool {
    model.file("tokenizer.json").is_ok()
}

fn single_onnx_graph(model: &LocalModel) -> bool {
    model
        .files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "onnx"))
        .count()
        == 1
}

fn is_bert(model: &LocalModel) -> bool {
    let Ok(config) = model.file("config.json") else {
        return false;
    };
    let Some(config) = std::fs::read(config)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
    else {
        return false;
    };
    let bert_type = config.get("model_type").and_then(Value::as_str) == Some("bert");
    let bert_architecture = config
        .get("architectures")
        .and_then(Value::as_array)
        .is_some_and(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .any(|name| name.starts_with("Bert"))
        });
    bert_type || bert_architecture
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentence_transformers_folders_describe_themselves() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
        std::fs::write(
            dir.path().join("1_Pooling/config.json"),
            r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("sentence_bert_config.json"),
            r#"{"max_seq_length": 128}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("modules.json"),
            r#"[{"type": "sentence_transformers.models.Normalize"}]"#,
        )
        .unwrap();
        let settings = FolderSettings::read(dir.path());
        assert_eq!(settings.pooling, Some("cls"));
        assert_eq!(settings.max_tokens, Some(128));
        assert_eq!(settings.normalize, Some(true));
        let empty = FolderSettings::read(&dir.path().join("missing"));
        assert_eq!(empty.pooling, None);
    }
}
