//! Using a local file or folder as a model without a catalog entry: the engine (the weights
//! format) is read off the names of the files that are there, and the files are listed main
//! weights first. Which *task* the model does is not decided here: the hub knows files and
//! formats, and the task crate recognises tasks (so a detected model's
//! [`LocalModel::task`] is `None` and its [`LocalModel::options`] are empty).
//!
//! | found | engine | listed first |
//! |---|---|---|
//! | a pulled model folder (`.tessera-model.json`) | as pulled (task too) | in catalog order |
//! | a `.gguf` file, or a folder with one | gguf | the one `.gguf` (of split files, `*-00001-of-*`) |
//! | `model.bin` + `vocabulary.txt`/`.json` or `shared_vocabulary.txt` (CTranslate2) | ctranslate2 | `model.bin`, the vocabulary |
//! | an `.onnx` file, or a folder with some | onnx | every `.onnx`, sorted |
//! | `config.json` + `*.safetensors` (a Hugging Face folder) | candle | every `.safetensors`, sorted |
//!
//! A Hugging Face *Whisper* checkpoint (`config.json` with `"model_type": "whisper"`, no
//! `model.bin`) is detected here like any Hugging Face folder; the [`Hub`](crate::Hub) does not
//! ask `detect` about it but converts it once into a CTranslate2 folder under
//! `$TESSERA_HOME/converted/` ([`convert`](crate::convert)) and uses that.
//!
//! After the main files, a folder's other plain files follow sorted by name (hidden ones and
//! sub-folders are left out; the model's [`dir`](LocalModel::dir) still reaches them). A single
//! file is listed alone; files beside it are reached through [`LocalModel::file`], which looks in
//! the file's folder.

use std::fs;
use std::path::Path;

use tessera_core::EngineKind;

use crate::catalog::Options;
use crate::error::{HubError, Result};
use crate::model::LocalModel;
use crate::store::Store;

const NEEDS: &str = "need one of: a .gguf file; a CTranslate2 folder (model.bin and vocabulary.txt); \
one or more .onnx files; or a Hugging Face folder with config.json and *.safetensors weights";

/// Works out which engine runs the model in a local file or folder, and lists its files.
///
/// Cheap: it reads a folder listing and, for a pulled model folder, its small manifest; never the
/// weights.
pub fn detect(path: &Path) -> Result<LocalModel> {
    let meta = fs::metadata(path).map_err(|e| HubError::io(path, e))?;
    if meta.is_dir() {
        detect_folder(path)
    } else {
        detect_file(path)
    }
}

fn detect_file(path: &Path) -> Result<LocalModel> {
    let name = file_name(path);
    let engine = match extension(&name).as_str() {
        "gguf" => EngineKind::Gguf,
        "onnx" => EngineKind::Onnx,
        _ => {
            return Err(HubError::Detect {
                path: path.to_path_buf(),
                message: format!(
                    "{name} is not a model file tessera knows; point at a .gguf or .onnx file or at a model folder ({NEEDS})"
                ),
            });
        }
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let id = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or(name);
    Ok(LocalModel {
        id,
        task: None,
        engine,
        dir,
        options: Options::new(),
        files: vec![path.to_path_buf()],
    })
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
    let model = |engine, main: &[&String]| LocalModel {
        id: folder_name(dir),
        task: None,
        engine,
        dir: dir.to_path_buf(),
        options: Options::new(),
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
        return Ok(model(EngineKind::Gguf, &[main]));
    }

    if has("model.bin") {
        let vocabulary = ["vocabulary.txt", "vocabulary.json", "shared_vocabulary.txt"]
            .into_iter()
            .find_map(|v| names.iter().find(|n| *n == v));
        let Some(vocabulary) = vocabulary else {
            return Err(fail(format!(
                "found model.bin but no vocabulary.txt; a CTranslate2 folder needs model.bin, \
                 vocabulary.txt (or vocabulary.json, shared_vocabulary.txt) and config.json (found: {})",
                join_all(&names)
            )));
        };
        let main: Vec<&String> = names
            .iter()
            .filter(|n| *n == "model.bin")
            .chain([vocabulary])
            .collect();
        return Ok(model(EngineKind::Ctranslate2, &main));
    }

    let onnx = with_ext("onnx");
    if !onnx.is_empty() {
        return Ok(model(EngineKind::Onnx, &onnx));
    }

    let safetensors = with_ext("safetensors");
    match (has("config.json"), safetensors.is_empty()) {
        (true, false) => return Ok(model(EngineKind::Candle, &safetensors)),
        (true, true) => {
            return Err(fail(format!(
                "found config.json but no *.safetensors weights; a Hugging Face folder needs both (found: {})",
                join_all(&names)
            )));
        }
        (false, false) => {
            return Err(fail(format!(
                "found safetensors weights ({}) but no config.json; a Hugging Face folder needs both",
                join(&safetensors)
            )));
        }
        (false, true) => {}
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

/// The folder's own name (of its canonical path, so `.` is named too), else `model`.
pub(crate) fn folder_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .as_deref()
        .and_then(Path::file_name)
        .or_else(|| dir.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".to_string())
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

/// Whether `name` ends in `.gguf` or `.onnx`, the model files that can be used alone.
pub(crate) fn is_model_file_name(name: &str) -> bool {
    matches!(extension(name).as_str(), "gguf" | "onnx")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_file_names_are_gguf_and_onnx_in_any_case() {
        assert!(is_model_file_name("a.gguf"));
        assert!(is_model_file_name("A.ONNX"));
        assert!(!is_model_file_name("model.safetensors"));
        assert!(!is_model_file_name("onnx"));
    }
}
