//! Using a local file or folder as a model without a catalog entry: the engine and task are read
//! off the files that are there.
//!
//! | found | engine | task |
//! |---|---|---|
//! | a pulled model folder (`.tessera-model.json`) | as pulled | as pulled |
//! | `*.gguf` | gguf | chat |
//! | `model.bin` + `vocabulary.txt` (CTranslate2) | ctranslate2 | transcribe |
//! | `*.onnx` + `tokenizer.json` | onnx | embed |
//! | `X.onnx` + `X.onnx.json` (Piper) | onnx | speech |
//! | `*det*.onnx` + `*rec*.onnx` | onnx | ocr |
//! | `*vad*.onnx` | onnx | vad |
//! | `*yolo*.onnx` | onnx | detect |
//! | `config.json` `architectures` `Bert…`/`…Model` + `*.safetensors` | candle | embed |
//! | `config.json` `WhisperForConditionalGeneration` | candle | transcribe |
//! | `config.json` `…ForCausalLM` | candle | chat |
//!
//! The main weights file comes first in [`LocalModel::files`]; the rest follow sorted by name.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tessera_core::{EngineKind, Task};

use crate::catalog::Options;
use crate::error::{HubError, Result};
use crate::model::LocalModel;
use crate::store::Store;

const NEEDS: &str = "need one of: a .gguf file; a CTranslate2 folder (model.bin, vocabulary.txt, config.json); \
an .onnx file with tokenizer.json (embeddings), X.onnx.json (Piper voice), det/rec .onnx (OCR), a *vad*.onnx or *yolo*.onnx; \
or a Hugging Face folder with config.json `architectures`, *.safetensors and tokenizer.json";

/// Works out what model a local file or folder holds.
pub fn detect(path: &Path) -> Result<LocalModel> {
    let meta = fs::metadata(path).map_err(|e| HubError::io(path, e))?;
    if meta.is_dir() {
        detect_folder(path)
    } else {
        detect_file(path)
    }
}

fn detect_file(path: &Path) -> Result<LocalModel> {
    let fail = |message: String| HubError::Detect {
        path: path.to_path_buf(),
        message,
    };
    let name = file_name(path);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let id = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| name.clone());
    let model = |task, engine, files: Vec<PathBuf>, options| LocalModel {
        id: id.clone(),
        task,
        engine,
        dir: dir.clone(),
        options,
        files,
    };
    match extension(&name).as_str() {
        "gguf" => Ok(model(
            Task::Chat,
            EngineKind::Gguf,
            vec![path.to_path_buf()],
            Options::new(),
        )),
        "onnx" => {
            let sibling = |n: &str| Some(dir.join(n)).filter(|p| p.is_file());
            if let Some(tokenizer) = sibling("tokenizer.json") {
                let mut files = vec![path.to_path_buf(), tokenizer];
                files.extend(sibling("config.json"));
                return Ok(model(
                    Task::Embed,
                    EngineKind::Onnx,
                    files,
                    embed_options(&dir),
                ));
            }
            if let Some(config) = sibling(&format!("{name}.json")) {
                return Ok(model(
                    Task::Speech,
                    EngineKind::Onnx,
                    vec![path.to_path_buf(), config],
                    Options::new(),
                ));
            }
            match task_from_onnx_name(&name) {
                Some(task) => Ok(model(
                    task,
                    EngineKind::Onnx,
                    vec![path.to_path_buf()],
                    Options::new(),
                )),
                None => Err(fail(format!(
                    "found the ONNX file {name} but cannot tell its task: put tokenizer.json beside it \
                     for embeddings or {name}.json for a Piper voice, or name it *vad* (VAD) or *yolo* (detection)"
                ))),
            }
        }
        _ => Err(fail(format!(
            "{name} is not a model file tessera knows; point at a .gguf or .onnx file or at a model folder ({NEEDS})"
        ))),
    }
}

fn detect_folder(dir: &Path) -> Result<LocalModel> {
    if let Some(entry) = Store::read_manifest(dir) {
        return Ok(LocalModel::from_entry(&entry, dir.to_path_buf()));
    }
    let fail = |message: String| HubError::Detect {
        path: dir.to_path_buf(),
        message,
    };
    let names = list_files(dir)?;
    let has = |n: &str| names.iter().any(|m| m == n);
    let with_ext =
        |ext: &str| -> Vec<&String> { names.iter().filter(|n| extension(n) == ext).collect() };
    let id = dir
        .canonicalize()
        .ok()
        .as_deref()
        .and_then(Path::file_name)
        .or_else(|| dir.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".to_string());
    let model = |task, engine, main: &[&String], options| LocalModel {
        id: id.clone(),
        task,
        engine,
        dir: dir.to_path_buf(),
        options,
        files: main
            .iter()
            .map(|n| n.as_str())
            .chain(
                names
                    .iter()
                    .map(String::as_str)
                    .filter(|n| !main.iter().any(|m| m.as_str() == *n)),
            )
            .map(|n| dir.join(n))
            .collect(),
    };

    let ggufs = with_ext("gguf");
    if !ggufs.is_empty() {
        let first_split = ggufs.iter().find(|n| n.contains("-00001-of-"));
        let main = match (ggufs.len(), first_split) {
            (1, _) => ggufs[0],
            (_, Some(first)) => first,
            _ => {
                return Err(fail(format!(
                    "found several GGUF files ({}); point at the one to use",
                    join(&ggufs)
                )));
            }
        };
        return Ok(model(Task::Chat, EngineKind::Gguf, &[main], Options::new()));
    }

    let vocabulary = ["vocabulary.txt", "vocabulary.json", "shared_vocabulary.txt"]
        .into_iter()
        .find(|v| has(v));
    if has("model.bin") {
        let Some(vocabulary) = vocabulary else {
            return Err(fail(format!(
                "found model.bin but no vocabulary.txt; a CTranslate2 Whisper folder needs model.bin, \
                 vocabulary.txt and config.json (found: {})",
                join_all(&names)
            )));
        };
        let main = names.iter().find(|n| *n == "model.bin");
        let vocab = names.iter().find(|n| *n == vocabulary);
        let main: Vec<&String> = main.into_iter().chain(vocab).collect();
        return Ok(model(
            Task::Transcribe,
            EngineKind::Ctranslate2,
            &main,
            Options::new(),
        ));
    }

    let onnx = with_ext("onnx");
    if !onnx.is_empty() {
        return detect_onnx(dir, &names, &onnx, |task, main| {
            let options = if task == Task::Embed {
                embed_options(dir)
            } else {
                Options::new()
            };
            model(task, EngineKind::Onnx, main, options)
        });
    }

    if has("config.json") {
        return detect_transformers(dir, &names, |task, main| {
            let options = if task == Task::Embed {
                embed_options(dir)
            } else {
                Options::new()
            };
            model(task, EngineKind::Candle, main, options)
        });
    }

    Err(fail(format!(
        "found {}; {NEEDS}",
        if names.is_empty() {
            "no files".to_string()
        } else {
            join_all(&names)
        }
    )))
}

fn detect_onnx(
    dir: &Path,
    names: &[String],
    onnx: &[&String],
    model: impl Fn(Task, &[&String]) -> LocalModel,
) -> Result<LocalModel> {
    let fail = |message: String| HubError::Detect {
        path: dir.to_path_buf(),
        message,
    };
    let has = |n: &str| names.iter().any(|m| m == n);
    let preferred = onnx
        .iter()
        .find(|n| n.as_str() == "model.onnx")
        .or_else(|| (onnx.len() == 1).then(|| &onnx[0]))
        .copied();

    if has("tokenizer.json") {
        let Some(main) = preferred else {
            return Err(fail(format!(
                "found tokenizer.json and several ONNX files ({}); name the embedding model model.onnx \
                 or point at the .onnx file to use",
                join(onnx)
            )));
        };
        return Ok(model(Task::Embed, &[main]));
    }
    if let Some(voice) = onnx.iter().find(|n| has(&format!("{n}.json"))) {
        return Ok(model(Task::Speech, &[voice]));
    }
    let det = onnx.iter().find(|n| n.to_ascii_lowercase().contains("det"));
    let rec = onnx.iter().find(|n| n.to_ascii_lowercase().contains("rec"));
    if let (Some(det), Some(rec)) = (det, rec) {
        let cls = onnx.iter().find(|n| n.to_ascii_lowercase().contains("cls"));
        let main: Vec<&String> = [Some(*det), Some(*rec), cls.copied()]
            .into_iter()
            .flatten()
            .collect();
        return Ok(model(Task::Ocr, &main));
    }
    for candidate in onnx {
        if let Some(task) = task_from_onnx_name(candidate) {
            return Ok(model(task, &[candidate]));
        }
    }
    Err(fail(format!(
        "found ONNX files ({}) but cannot tell their task: add tokenizer.json for embeddings, \
         X.onnx.json for a Piper voice, det/rec .onnx for OCR, or name the file *vad* or *yolo*",
        join(onnx)
    )))
}

fn detect_transformers(
    dir: &Path,
    names: &[String],
    model: impl Fn(Task, &[&String]) -> LocalModel,
) -> Result<LocalModel> {
    let fail = |message: String| HubError::Detect {
        path: dir.to_path_buf(),
        message,
    };
    let config_path = dir.join("config.json");
    let text = fs::read_to_string(&config_path).map_err(|e| HubError::io(&config_path, e))?;
    let config: Value = serde_json::from_str(&text)
        .map_err(|e| fail(format!("config.json is not valid JSON: {e}")))?;
    let architectures: Vec<&str> = config
        .get("architectures")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(architecture) = architectures.first().copied() else {
        return Err(fail(format!(
            "config.json has no `architectures` list, so the model type is unknown (found: {})",
            join_all(names)
        )));
    };
    let task = if architecture == "WhisperForConditionalGeneration" {
        Task::Transcribe
    } else if architecture.ends_with("ForCausalLM") {
        Task::Chat
    } else if architecture.ends_with("Model") || architecture.ends_with("ForMaskedLM") {
        Task::Embed
    } else {
        return Err(fail(format!(
            "config.json names the architecture {architecture}, which tessera does not run with candle \
             (it knows BERT-like encoders (…Model, …ForMaskedLM), …ForCausalLM and WhisperForConditionalGeneration)"
        )));
    };
    let weights: Vec<&String> = names
        .iter()
        .filter(|n| extension(n) == "safetensors")
        .collect();
    let mut missing = Vec::new();
    if weights.is_empty() {
        missing.push("*.safetensors weights");
    }
    if !names.iter().any(|n| n == "tokenizer.json") {
        missing.push("tokenizer.json");
    }
    if !missing.is_empty() {
        return Err(fail(format!(
            "config.json names {architecture} but the folder lacks {} (found: {})",
            missing.join(" and "),
            join_all(names)
        )));
    }
    Ok(model(task, &weights))
}

/// Embedding settings read from a sentence-transformers folder, where present.
fn embed_options(dir: &Path) -> Options {
    let read = |name: &str| -> Option<Value> {
        serde_json::from_slice(&fs::read(dir.join(name)).ok()?).ok()
    };
    let mut options = Options::new();
    if let Some(max) = read("sentence_bert_config.json")
        .as_ref()
        .and_then(|v| v.get("max_seq_length"))
        .and_then(Value::as_u64)
    {
        options.insert("max_tokens".into(), max.into());
    }
    if let Some(pooling) = read("1_Pooling/config.json") {
        let on = |key: &str| pooling.get(key).and_then(Value::as_bool) == Some(true);
        let mode = if on("pooling_mode_cls_token") {
            Some("cls")
        } else if on("pooling_mode_mean_tokens") {
            Some("mean")
        } else if on("pooling_mode_max_tokens") {
            Some("max")
        } else {
            None
        };
        if let Some(mode) = mode {
            options.insert("pooling".into(), mode.into());
        }
    }
    if let Some(modules) = read("modules.json") {
        let normalize = modules.as_array().is_some_and(|m| {
            m.iter().any(|module| {
                module
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.ends_with("Normalize"))
            })
        });
        options.insert("normalize".into(), normalize.into());
    }
    if let Some(hidden) = read("config.json")
        .as_ref()
        .and_then(|v| v.get("hidden_size"))
        .and_then(Value::as_u64)
    {
        options.insert("dimensions".into(), hidden.into());
    }
    options
}

fn task_from_onnx_name(name: &str) -> Option<Task> {
    let lower = name.to_ascii_lowercase();
    if lower.contains("vad") {
        Some(Task::Vad)
    } else if lower.contains("yolo") {
        Some(Task::Detect)
    } else {
        None
    }
}

/// Plain files in `dir` (following symbolic links), sorted, hidden ones left out.
fn list_files(dir: &Path) -> Result<Vec<String>> {
    let read = fs::read_dir(dir).map_err(|e| HubError::io(dir, e))?;
    let mut names: Vec<String> = read
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn extension(name: &str) -> String {
    Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn join_all(names: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut text = names
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}
