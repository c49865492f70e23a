//! tessera as a Rust library: resolve a model through the hub, load it, embed two sentences.
//!
//! ```sh
//! scripts/setup.sh   # the ONNX Runtime library, once
//! cargo run -p tessera-runtime --example embed -- all-minilm-l6-v2-int8 "The cat sleeps." "A kitten naps."
//! ```
//!
//! Prints each text's vector length and the cosine similarity of every text with the first.

use tessera_hub::Hub;
use tessera_runtime::{EmbedInput, ModelManager, RuntimeConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .unwrap_or_else(|| "all-minilm-l6-v2-int8".to_string());
    let mut texts: Vec<String> = args.collect();
    if texts.is_empty() {
        texts = vec![
            "The cat sleeps on the sofa.".into(),
            "A kitten naps on the couch.".into(),
            "Stocks fell today.".into(),
        ];
    }

    // The hub pulls the model into the cache on first use; the manager loads it on a worker thread.
    let manager = ModelManager::new(Hub::from_env()?, RuntimeConfig::default());
    let embedder = manager.embedder(&model)?;
    let encodings = embedder.tokenize(&EmbedInput::Texts(texts.clone()), false)?;
    let vectors = embedder.embed_blocking(encodings)?;

    for (text, vector) in texts.iter().zip(&vectors) {
        // Vectors are unit length, so the dot product is the cosine similarity.
        let similarity: f32 = vector.iter().zip(&vectors[0]).map(|(a, b)| a * b).sum();
        println!("{similarity:>6.3}  {} dims  {text}", vector.len());
    }
    Ok(())
}
