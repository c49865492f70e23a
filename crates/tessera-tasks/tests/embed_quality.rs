//! Real weights, real engines: the MiniLM encoder on ONNX Runtime (int8) and on candle (f32).
//! The models come from the cache that `scripts/fetch-models.sh` fills (or are pulled here).

use tessera_core::{Embedder, Encoding, EngineKind};
use tessera_engines::onnx::SessionConfig;
use tessera_hub::Hub;
use tessera_tasks::embed::{EmbedderSpec, Pooling, TextTokenizer, l2_normalize, load_embedder};

struct Loaded {
    tokenizer: TextTokenizer,
    embedder: Box<dyn Embedder>,
}

fn load(id: &str) -> Loaded {
    load_pooled(id, Pooling::Mean)
}

fn load_pooled(id: &str, pooling: Pooling) -> Loaded {
    let hub = Hub::from_env().expect("hub");
    let model = hub.pull(id).expect("pull (run scripts/fetch-models.sh)");
    let tokenizer = TextTokenizer::from_file(&model.file("tokenizer.json").unwrap(), 256).unwrap();
    let extension = if model.engine == EngineKind::Onnx {
        "onnx"
    } else {
        "safetensors"
    };
    let weights = model.file_with_extension(extension).unwrap();
    let spec = EmbedderSpec {
        engine: model.engine,
        weights,
        config: model.file("config.json").ok(),
        session: SessionConfig {
            device: tessera_core::Device::Cpu,
            ..SessionConfig::default()
        },
        pooling,
    };
    Loaded {
        tokenizer,
        embedder: load_embedder(&spec).unwrap(),
    }
}

impl Loaded {
    fn embed(&mut self, texts: &[&str]) -> Vec<Vec<f32>> {
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        let encodings = self.tokenizer.encode(&texts, false).unwrap();
        let refs: Vec<&Encoding> = encodings.iter().collect();
        let mut vectors = self.embedder.embed(&refs).unwrap();
        vectors.iter_mut().for_each(|v| l2_normalize(v));
        vectors
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// (anchor, related, unrelated): the related sentence must score higher.
const TRIPLES: &[(&str, &str, &str)] = &[
    (
        "A man is playing a guitar.",
        "Someone strums an acoustic guitar on stage.",
        "The stock market fell sharply today.",
    ),
    (
        "How do I bake bread at home?",
        "A simple recipe for homemade bread dough.",
        "The spacecraft entered orbit around Mars.",
    ),
    (
        "The cat is sleeping on the sofa.",
        "A kitten naps on the couch.",
        "Interest rates were raised by the central bank.",
    ),
    (
        "Python is a popular programming language.",
        "Many developers write software in Python.",
        "The river flooded the village after heavy rain.",
    ),
    (
        "She is running a marathon this weekend.",
        "The athlete trains for a long-distance race.",
        "He ordered a pizza with extra cheese.",
    ),
    (
        "The train to Paris was delayed.",
        "Rail services to France are running late.",
        "My tomato plants need more sunlight.",
    ),
    (
        "Vaccines help prevent infectious diseases.",
        "Immunization protects people against illness.",
        "The orchestra played a symphony by Beethoven.",
    ),
    (
        "The laptop battery drains quickly.",
        "My notebook computer loses charge fast.",
        "Penguins live in the southern hemisphere.",
    ),
];

fn assert_ranks_related_first(loaded: &mut Loaded, engine: &str) {
    for (anchor, related, unrelated) in TRIPLES {
        let v = loaded.embed(&[anchor, related, unrelated]);
        let (good, bad) = (cosine(&v[0], &v[1]), cosine(&v[0], &v[2]));
        assert!(
            good > bad + 0.2,
            "{engine}: `{anchor}` scored {good:.3} with `{related}` but {bad:.3} with `{unrelated}`"
        );
    }
}

#[test]
fn onnx_int8_ranks_the_related_sentence_first() {
    assert_ranks_related_first(&mut load("all-minilm-l6-v2-int8"), "onnx");
}

#[test]
fn candle_f32_ranks_the_related_sentence_first() {
    assert_ranks_related_first(&mut load("all-minilm-l6-v2"), "candle");
}

#[test]
fn onnx_int8_and_candle_f32_agree() {
    let mut onnx = load("all-minilm-l6-v2-int8");
    let mut candle = load("all-minilm-l6-v2");
    let sentences: Vec<&str> = TRIPLES.iter().flat_map(|(a, b, c)| [*a, *b, *c]).collect();
    let a = onnx.embed(&sentences);
    let b = candle.embed(&sentences);
    for ((x, y), sentence) in a.iter().zip(&b).zip(&sentences) {
        let similarity = cosine(x, y);
        assert!(
            similarity >= 0.99,
            "onnx and candle disagree on `{sentence}`: cosine {similarity:.4}"
        );
    }
}

#[test]
fn a_row_in_a_padded_batch_equals_the_same_input_alone() {
    for id in ["all-minilm-l6-v2-int8", "all-minilm-l6-v2"] {
        let mut loaded = load(id);
        let short = "Short one.";
        let long = "This is a much longer sentence that forces the short one to be padded in the same batch.";
        let batched = loaded.embed(&[short, long]);
        let alone = loaded.embed(&[short]);
        let similarity = cosine(&batched[0], &alone[0]);
        assert!(
            similarity > 0.9999,
            "{id}: padded row differs from the row alone (cosine {similarity})"
        );
    }
}

#[test]
fn over_long_input_is_an_error_unless_truncated() {
    let loaded = load("all-minilm-l6-v2-int8");
    let long = vec!["word ".repeat(400)];
    let error = loaded
        .tokenizer
        .encode(&long, false)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("over this model's limit of 256") && error.contains("truncate"),
        "{error}"
    );
    let truncated = loaded.tokenizer.encode(&long, true).unwrap();
    assert_eq!(truncated[0].len(), 256);
    // Special tokens survive truncation: [CLS] first, [SEP] last.
    assert_eq!(truncated[0].ids[0], 101);
    assert_eq!(truncated[0].ids[255], 102);
}

#[test]
fn token_ids_get_the_model_special_tokens() {
    let loaded = load("all-minilm-l6-v2-int8");
    let from_text = loaded
        .tokenizer
        .encode(&["hello world".to_string()], false)
        .unwrap();
    let inner = from_text[0].ids[1..from_text[0].len() - 1].to_vec();
    let from_ids = loaded.tokenizer.encode_ids(&[inner], false).unwrap();
    assert_eq!(from_ids[0], from_text[0]);
    let error = loaded
        .tokenizer
        .encode_ids(&[vec![10_000_000]], false)
        .unwrap_err()
        .to_string();
    assert!(error.contains("vocabulary"), "{error}");
}

fn sentences() -> Vec<&'static str> {
    TRIPLES.iter().flat_map(|(a, b, c)| [*a, *b, *c]).collect()
}

#[test]
fn cls_pooling_is_honoured_by_both_engines() {
    let sentences = sentences();
    let onnx = load_pooled("all-minilm-l6-v2-int8", Pooling::Cls).embed(&sentences);
    let candle = load_pooled("all-minilm-l6-v2", Pooling::Cls).embed(&sentences);
    for ((x, y), sentence) in onnx.iter().zip(&candle).zip(&sentences) {
        let similarity = cosine(x, y);
        assert!(
            similarity >= 0.98,
            "cls: onnx and candle disagree on `{sentence}`: cosine {similarity:.4}"
        );
    }
    for (id, cls) in [
        ("all-minilm-l6-v2-int8", &onnx),
        ("all-minilm-l6-v2", &candle),
    ] {
        assert_differs_from_mean(id, "cls", cls, &sentences);
    }
}

#[test]
fn max_pooling_is_honoured_by_both_engines() {
    let sentences = sentences();
    let onnx = load_pooled("all-minilm-l6-v2-int8", Pooling::Max).embed(&sentences);
    let candle = load_pooled("all-minilm-l6-v2", Pooling::Max).embed(&sentences);
    for ((x, y), sentence) in onnx.iter().zip(&candle).zip(&sentences) {
        let similarity = cosine(x, y);
        assert!(
            similarity >= 0.98,
            "max: onnx and candle disagree on `{sentence}`: cosine {similarity:.4}"
        );
    }
    for (id, max) in [
        ("all-minilm-l6-v2-int8", &onnx),
        ("all-minilm-l6-v2", &candle),
    ] {
        assert_differs_from_mean(id, "max", max, &sentences);
    }
}

/// Each pooled vector is unlike the mean-pooled vector of the same sentence on the same engine,
/// so the option reached the engine.
fn assert_differs_from_mean(id: &str, pooling: &str, pooled: &[Vec<f32>], sentences: &[&str]) {
    let mean = load(id).embed(sentences);
    for ((p, m), sentence) in pooled.iter().zip(&mean).zip(sentences) {
        let similarity = cosine(p, m);
        assert!(
            similarity < 0.99,
            "{id}: {pooling} and mean pooling give the same vector for `{sentence}` (cosine {similarity:.4})"
        );
    }
}

#[test]
fn pooling_comes_from_the_catalog_name() {
    assert_eq!("cls".parse::<Pooling>().unwrap(), Pooling::Cls);
    let error = "lasttoken".parse::<Pooling>().unwrap_err().to_string();
    assert!(error.contains("mean, cls, max"), "{error}");
}
