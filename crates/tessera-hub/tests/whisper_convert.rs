//! Converting Whisper between CTranslate2 and Hugging Face layouts, on the registry's
//! CTranslate2 models (`scripts/fetch-models.sh` puts them in `$TESSERA_HOME/models`): each goes
//! to a transformers checkpoint and back, and must come back variable for variable.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use safetensors::SafeTensors;
use safetensors::tensor::TensorView;
use serde_json::Value;
use tessera_core::{EngineKind, Task};
use tessera_hub::convert::model_bin::{Ct2Dtype, ModelBin};
use tessera_hub::convert::{ConvertError, ct2_to_hf, hf_to_ct2};
use tessera_hub::{Catalog, ErrorCategory, Hub, HubConfig, HubError, Scope};

/// The tessera cache the test models were fetched into.
fn tessera_home() -> PathBuf {
    match std::env::var_os("TESSERA_HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/tessera"),
    }
}

/// The registry's CTranslate2 folder of `id`.
fn registry_model(id: &str) -> PathBuf {
    let dir = tessera_home().join("models").join(id);
    assert!(
        dir.join("model.bin").is_file(),
        "{} has no model.bin; run scripts/fetch-models.sh",
        dir.display()
    );
    dir
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).expect("read JSON")).expect("parse JSON")
}

/// Asserts two model.bin files hold the same variables (names, shapes, types, bytes) and aliases.
fn assert_same_model_bin(expected: &Path, actual: &Path) {
    let expected = ModelBin::open(expected).expect("open the original model.bin");
    let actual = ModelBin::open(actual).expect("open the converted model.bin");
    assert_eq!(
        (&actual.spec_name, actual.spec_revision),
        (&expected.spec_name, expected.spec_revision)
    );
    let header = |model: &ModelBin| -> Vec<(String, Vec<usize>, Ct2Dtype)> {
        model
            .variables
            .iter()
            .map(|v| (v.name.clone(), v.shape.clone(), v.dtype))
            .collect()
    };
    assert_eq!(header(&actual), header(&expected));
    for (want, got) in expected.variables.iter().zip(&actual.variables) {
        let (want_bytes, got_bytes) = (
            expected.read(want).expect("read"),
            actual.read(got).expect("read"),
        );
        assert!(want_bytes == got_bytes, "{} differs", want.name);
    }
    assert_eq!(actual.aliases, expected.aliases);
}

fn round_trip(id: &str) {
    let started = Instant::now();
    let original = registry_model(id);
    let work = tempfile::tempdir().expect("a temporary directory");
    let hf = work.path().join("hf");
    let ct2 = work.path().join("ct2");

    let exported = ct2_to_hf(&original, &hf).expect("CTranslate2 to Hugging Face");
    let converted = hf_to_ct2(&hf, &ct2).expect("Hugging Face to CTranslate2");
    assert_eq!(converted.dims, exported.dims);
    assert_eq!(converted.dtype, Ct2Dtype::F16);

    assert_same_model_bin(&original.join("model.bin"), &ct2.join("model.bin"));
    let (want, got) = (
        json(&original.join("config.json")),
        json(&ct2.join("config.json")),
    );
    for key in [
        "suppress_ids",
        "suppress_ids_begin",
        "lang_ids",
        "alignment_heads",
    ] {
        assert_eq!(got[key], want[key], "{key}");
    }
    // Written as CTranslate2's converter writes them, the files come back byte for byte.
    for file in [
        "model.bin",
        "config.json",
        "vocabulary.txt",
        "tokenizer.json",
    ] {
        assert!(
            fs::read(original.join(file)).expect("read") == fs::read(ct2.join(file)).expect("read"),
            "{file} differs"
        );
    }
    eprintln!("{id}: round trip in {:.1?}", started.elapsed());
}

#[test]
fn whisper_tiny_en_comes_back_variable_for_variable() {
    round_trip("whisper-tiny.en");
}

#[test]
fn whisper_base_comes_back_variable_for_variable() {
    round_trip("whisper-base");
}

/// The registry's tiny.en as a transformers checkpoint in `dir/hf`.
fn tiny_en_checkpoint(dir: &Path) -> PathBuf {
    let hf = dir.join("hf");
    ct2_to_hf(&registry_model("whisper-tiny.en"), &hf).expect("CTranslate2 to Hugging Face");
    hf
}

#[test]
fn the_checkpoint_has_the_tensors_and_config_transformers_expects() {
    let work = tempfile::tempdir().expect("a temporary directory");
    let hf = tiny_en_checkpoint(work.path());
    let bytes = fs::read(hf.join("model.safetensors")).expect("read the weights");
    let weights = SafeTensors::deserialize(&bytes).expect("a safetensors file");
    let shape = |name: &str| -> Vec<usize> {
        weights
            .tensor(name)
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .shape()
            .to_vec()
    };
    assert_eq!(shape("model.encoder.conv1.weight"), [384, 80, 3]);
    assert_eq!(shape("model.encoder.conv2.weight"), [384, 384, 3]);
    assert_eq!(shape("model.encoder.embed_positions.weight"), [1500, 384]);
    assert_eq!(shape("model.decoder.embed_tokens.weight"), [51864, 384]);
    assert_eq!(shape("model.decoder.embed_positions.weight"), [448, 384]);
    for attention in [
        "model.encoder.layers.0.self_attn",
        "model.decoder.layers.3.self_attn",
        "model.decoder.layers.3.encoder_attn",
    ] {
        for projection in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            assert_eq!(
                shape(&format!("{attention}.{projection}.weight")),
                [384, 384]
            );
        }
        assert_eq!(shape(&format!("{attention}.q_proj.bias")), [384]);
        assert!(
            weights.tensor(&format!("{attention}.k_proj.bias")).is_err(),
            "transformers' k_proj has no bias"
        );
    }
    assert_eq!(shape("model.encoder.layers.2.fc1.weight"), [1536, 384]);
    assert_eq!(shape("model.decoder.layers.1.fc2.weight"), [384, 1536]);
    assert_eq!(
        shape("model.decoder.layers.0.encoder_attn_layer_norm.weight"),
        [384]
    );
    assert_eq!(shape("model.encoder.layer_norm.bias"), [384]);
    // Tied to the embeddings, as transformers saves it.
    assert!(weights.tensor("proj_out.weight").is_err());
    assert_eq!(weights.len(), 167);

    let config = json(&hf.join("config.json"));
    for (key, value) in [
        ("model_type", Value::from("whisper")),
        ("d_model", 384.into()),
        ("num_mel_bins", 80.into()),
        ("encoder_layers", 4.into()),
        ("decoder_layers", 4.into()),
        ("encoder_attention_heads", 6.into()),
        ("decoder_attention_heads", 6.into()),
        ("encoder_ffn_dim", 1536.into()),
        ("vocab_size", 51864.into()),
        ("max_source_positions", 1500.into()),
        ("max_target_positions", 448.into()),
        ("decoder_start_token_id", 50257.into()),
        ("eos_token_id", 50256.into()),
        ("tie_word_embeddings", true.into()),
        ("torch_dtype", "float16".into()),
    ] {
        assert_eq!(config[key], value, "config.json {key}");
    }
    let generation = json(&hf.join("generation_config.json"));
    assert_eq!(generation["no_timestamps_token_id"], 50362);
    assert_eq!(generation["is_multilingual"], false);
    assert_eq!(
        generation["begin_suppress_tokens"],
        serde_json::json!([220, 50256])
    );
    assert_eq!(
        json(&hf.join("preprocessor_config.json"))["feature_size"],
        80
    );
}

/// Rewrites `hf`'s weights through `edit`, which may change, add or drop tensors.
fn edit_weights(
    hf: &Path,
    edit: impl FnOnce(&mut HashMap<String, (safetensors::Dtype, Vec<usize>, Vec<u8>)>),
) {
    let path = hf.join("model.safetensors");
    let bytes = fs::read(&path).expect("read the weights");
    let mut tensors: HashMap<String, (safetensors::Dtype, Vec<usize>, Vec<u8>)> =
        SafeTensors::deserialize(&bytes)
            .expect("a safetensors file")
            .tensors()
            .into_iter()
            .map(|(name, view)| {
                (
                    name,
                    (view.dtype(), view.shape().to_vec(), view.data().to_vec()),
                )
            })
            .collect();
    edit(&mut tensors);
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(name, (dtype, shape, data))| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), data).expect("a tensor view"),
            )
        })
        .collect();
    let metadata = Some(HashMap::from([("format".to_string(), "pt".to_string())]));
    safetensors::serialize_to_file(views, metadata, &path).expect("write the weights");
}

/// Sets `key` of the JSON file `hf/file`.
fn set_config(hf: &Path, file: &str, key: &str, value: Value) {
    let path = hf.join(file);
    let mut config = json(&path);
    config[key] = value;
    fs::write(&path, serde_json::to_vec_pretty(&config).expect("JSON")).expect("write JSON");
}

#[test]
fn a_128_mel_checkpoint_keeps_its_128_input_channels() {
    let work = tempfile::tempdir().expect("a temporary directory");
    let hf = tiny_en_checkpoint(work.path());
    const OLD: usize = 80;
    const NEW: usize = 128;
    edit_weights(&hf, |tensors| {
        let (_, shape, data) = tensors
            .get_mut("model.encoder.conv1.weight")
            .expect("conv1");
        assert_eq!(shape, &[384, OLD, 3]);
        // Each output channel's [mel, 3] block grows by zeros for the new mel bins.
        let (old_row, new_row) = (OLD * 3 * 2, NEW * 3 * 2);
        let mut wide = vec![0u8; 384 * new_row];
        for (out, row) in data.chunks(old_row).enumerate() {
            wide[out * new_row..out * new_row + old_row].copy_from_slice(row);
        }
        *shape = vec![384, NEW, 3];
        *data = wide;
    });

    // config.json still says 80: the weights and the config disagree, and the error says so.
    let err = hf_to_ct2(&hf, &work.path().join("refused")).expect_err("80 vs 128 mel bins");
    let HubError::Convert(ConvertError::TensorShape {
        tensor,
        expected,
        actual,
        ..
    }) = &err
    else {
        panic!("expected a shape error, got {err:?}");
    };
    assert_eq!(
        (tensor.as_str(), expected.as_slice(), actual.as_slice()),
        (
            "model.encoder.conv1.weight",
            &[384, 80, 3][..],
            &[384, 128, 3][..]
        )
    );
    assert!(err.to_string().contains("config.json"), "{err}");

    set_config(&hf, "config.json", "num_mel_bins", NEW.into());
    let err = hf_to_ct2(&hf, &work.path().join("refused")).expect_err("80 features");
    assert!(
        err.to_string()
            .contains("preprocessor_config.json: feature_size is 80"),
        "{err}"
    );
    set_config(&hf, "preprocessor_config.json", "feature_size", NEW.into());
    let ct2 = work.path().join("ct2");
    let converted = hf_to_ct2(&hf, &ct2).expect("a 128-mel model converts");
    assert_eq!(converted.dims.n_mels, NEW);
    let model = ModelBin::open(&ct2.join("model.bin")).expect("open model.bin");
    let conv1 = model.variable("encoder/conv1/weight").expect("conv1");
    assert_eq!(conv1.shape, [384, NEW, 3]);

    let back = work.path().join("back");
    ct2_to_hf(&ct2, &back).expect("and back");
    assert_eq!(json(&back.join("config.json"))["num_mel_bins"], NEW);
    assert_eq!(
        json(&back.join("preprocessor_config.json"))["feature_size"],
        NEW
    );
}

/// The folders in `dir`, hidden ones too (a half-written conversion would be one).
fn folders(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn bad_checkpoints_are_refused_with_what_is_wrong() {
    let work = tempfile::tempdir().expect("a temporary directory");

    let bert = work.path().join("bert");
    fs::create_dir_all(&bert).expect("mkdir");
    fs::write(bert.join("config.json"), r#"{"model_type": "bert"}"#).expect("write");
    fs::write(bert.join("model.safetensors"), b"").expect("write");
    let err = hf_to_ct2(&bert, &work.path().join("out")).expect_err("not Whisper");
    assert!(
        matches!(&err, HubError::Convert(ConvertError::NotWhisper { .. })),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("bert/config.json") && text.contains("\"bert\"") && text.contains("Whisper"),
        "{text}"
    );

    let empty = work.path().join("empty");
    fs::create_dir_all(&empty).expect("mkdir");
    let err = hf_to_ct2(&empty, &work.path().join("out")).expect_err("no files");
    assert!(
        matches!(&err, HubError::Convert(ConvertError::MissingFile { file, .. }) if file == "config.json"),
        "{err:?}"
    );
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    let hf = tiny_en_checkpoint(work.path());
    let dropped = "model.decoder.layers.1.fc2.bias";
    edit_weights(&hf, |tensors| {
        tensors.remove(dropped).expect("the tensor to drop");
    });
    let before = folders(work.path());
    let err = hf_to_ct2(&hf, &work.path().join("out")).expect_err("a tensor is missing");
    let HubError::Convert(ConvertError::MissingTensor { tensor, file }) = &err else {
        panic!("expected a missing tensor, got {err:?}");
    };
    assert_eq!(tensor, dropped);
    assert!(file.ends_with("hf/model.safetensors"), "{}", file.display());
    assert!(err.to_string().contains(dropped), "{err}");
    assert_eq!(
        folders(work.path()),
        before,
        "a failed conversion leaves nothing"
    );

    fs::remove_file(hf.join("tokenizer.json")).expect("remove");
    let err = hf_to_ct2(&hf, &work.path().join("out")).expect_err("no tokenizer");
    assert!(
        matches!(&err, HubError::Convert(ConvertError::MissingFile { file, .. }) if file == "tokenizer.json"),
        "{err:?}"
    );

    let err = ct2_to_hf(&registry_model("whisper-tiny.en"), &hf).expect_err("output exists");
    assert!(
        matches!(&err, HubError::Convert(ConvertError::OutputExists { .. })),
        "{err:?}"
    );
}

#[test]
fn the_hub_converts_a_hugging_face_whisper_folder_once_and_serves_it() {
    let work = tempfile::tempdir().expect("a temporary directory");
    let models = work.path().join("models");
    let checkpoint = models.join("tiny-hf");
    ct2_to_hf(&registry_model("whisper-tiny.en"), &checkpoint).expect("a checkpoint");
    let home = tempfile::tempdir().expect("a temporary home");
    let mut config = HubConfig::new(home.path());
    config.offline = true;
    config.progress = false;
    let hub = Hub::new(config, Catalog::builtin().expect("the catalog"));
    let converted = home.path().join("converted");

    let spec = checkpoint.to_str().expect("a UTF-8 path");
    let located = hub.locate(spec, &Scope::AnyPath).expect("located");
    assert_eq!(
        (
            located.id.as_str(),
            located.task,
            located.engine,
            located.local
        ),
        (
            "tiny-hf",
            Some(Task::Transcribe),
            Some(EngineKind::Ctranslate2),
            true
        )
    );
    assert!(!converted.exists(), "locating converts nothing");

    let started = Instant::now();
    let model = hub.materialize(&located).expect("converted");
    eprintln!("first materialize (converts): {:.1?}", started.elapsed());
    assert_eq!(
        (model.id.as_str(), model.task, model.engine),
        ("tiny-hf", Some(Task::Transcribe), EngineKind::Ctranslate2)
    );
    assert_eq!(model.dir.parent(), Some(converted.as_path()));
    let folder = model.dir.file_name().expect("a name").to_string_lossy();
    assert!(folder.starts_with("tiny-hf-"), "{folder}");
    assert_eq!(model.files[0], model.dir.join("model.bin"));
    assert_eq!(model.files[1], model.dir.join("vocabulary.txt"));
    assert_eq!(model.options["multilingual"], false);
    assert_eq!(model.options["precision"], "float16");
    assert_eq!(model.options["sample_rate"], 16000);
    assert_same_model_bin(
        &registry_model("whisper-tiny.en").join("model.bin"),
        &model.dir.join("model.bin"),
    );

    // Reused, not converted again: by the CLI's resolve and by a server's model folders.
    let modified = |dir: &Path| {
        fs::metadata(dir.join("model.bin"))
            .and_then(|m| m.modified())
            .expect("mtime")
    };
    let first = modified(&model.dir);
    let started = Instant::now();
    let again = hub.resolve(spec).expect("resolved");
    eprintln!("second resolve (reuses): {:.1?}", started.elapsed());
    assert_eq!(
        (again.dir.as_path(), modified(&again.dir)),
        (model.dir.as_path(), first)
    );
    let dirs = [models.clone()];
    let served = hub
        .locate("tiny-hf", &Scope::ModelDirs(&dirs))
        .expect("under the model folder");
    assert_eq!(served.task, Some(Task::Transcribe));
    assert_eq!(hub.materialize(&served).expect("served").dir, model.dir);
    assert_eq!(hub.model_dir_entries(&dirs), ["tiny-hf"]);
    assert_eq!(folders(&converted), [folder.to_string()]);

    // A changed checkpoint is converted anew.
    let config_path = checkpoint.join("config.json");
    let mut changed = json(&config_path);
    changed["use_cache"] = false.into();
    fs::write(&config_path, serde_json::to_vec(&changed).expect("JSON")).expect("write");
    let renewed = hub.resolve(spec).expect("converted again");
    assert_ne!(renewed.dir, model.dir);

    // A broken checkpoint is still located as Whisper; materializing says what is missing.
    fs::remove_file(checkpoint.join("model.safetensors")).expect("remove the weights");
    let located = hub.locate(spec, &Scope::AnyPath).expect("located");
    let err = hub.materialize(&located).expect_err("no weights");
    assert_eq!(err.category(), ErrorCategory::BadModel);
    assert!(
        matches!(&err, HubError::Convert(ConvertError::MissingFile { file, .. }) if file == "model.safetensors"),
        "{err:?}"
    );
    assert_eq!(folders(&converted).len(), 2, "nothing half-written is left");
}

#[test]
fn a_float32_checkpoint_in_shards_without_the_model_prefix_stays_float32() {
    let work = tempfile::tempdir().expect("a temporary directory");
    let hf = tiny_en_checkpoint(work.path());
    let path = hf.join("model.safetensors");
    let bytes = fs::read(&path).expect("read the weights");
    // As a WhisperModel saves it (no `model.` prefix), in float32, in two shards.
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = SafeTensors::deserialize(&bytes)
        .expect("a safetensors file")
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            let wide: Vec<u8> = view
                .data()
                .chunks_exact(2)
                .flat_map(|h| {
                    half::f16::from_le_bytes([h[0], h[1]])
                        .to_f32()
                        .to_le_bytes()
                })
                .collect();
            let name = name.strip_prefix("model.").unwrap_or(&name).to_string();
            (name, view.shape().to_vec(), wide)
        })
        .collect();
    fs::remove_file(&path).expect("remove the single file");
    let mut weight_map = serde_json::Map::new();
    for (shard, part) in ["encoder", "decoder"].into_iter().enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", shard + 1);
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .filter(|(name, _, _)| name.starts_with(part))
            .map(|(name, shape, data)| {
                weight_map.insert(name.clone(), file.clone().into());
                let view = TensorView::new(safetensors::Dtype::F32, shape.clone(), data)
                    .expect("a tensor view");
                (name.clone(), view)
            })
            .collect();
        safetensors::serialize_to_file(views, None, &hf.join(&file)).expect("write a shard");
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    fs::write(hf.join("model.safetensors.index.json"), index.to_string()).expect("write");
    set_config(&hf, "config.json", "torch_dtype", "float32".into());

    let ct2 = work.path().join("ct2");
    let converted = hf_to_ct2(&hf, &ct2).expect("converted");
    assert_eq!(converted.dtype, Ct2Dtype::F32);
    let original = ModelBin::open(&registry_model("whisper-tiny.en").join("model.bin"))
        .expect("open the original");
    let model = ModelBin::open(&ct2.join("model.bin")).expect("open model.bin");
    assert_eq!(model.variables.len(), original.variables.len());
    assert_eq!(model.aliases, original.aliases);
    for (want, got) in original.variables.iter().zip(&model.variables) {
        assert_eq!((&got.name, &got.shape), (&want.name, &want.shape));
        let expected_dtype = if want.is_scalar() {
            want.dtype
        } else {
            Ct2Dtype::F32
        };
        assert_eq!(got.dtype, expected_dtype, "{}", got.name);
    }
    // Same values, widened: the stacked self-attention of the last decoder layer.
    let name = "decoder/layer_3/self_attention/linear_0/bias";
    let narrow = original
        .read(original.variable(name).expect("bias"))
        .expect("read");
    let wide = model
        .read(model.variable(name).expect("bias"))
        .expect("read");
    let widened: Vec<u8> = narrow
        .chunks_exact(2)
        .flat_map(|h| {
            half::f16::from_le_bytes([h[0], h[1]])
                .to_f32()
                .to_le_bytes()
        })
        .collect();
    assert!(wide == widened, "{name} changed");
}
