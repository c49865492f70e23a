//! tessera as a Rust library: a runtime over the hub, one embeddings request, cosine similarities.
//!
//! ```sh
//! scripts/setup.sh   # the ONNX Runtime library, once
//! cargo run -p tessera-runtime --example embed -- all-minilm-l6-v2-int8 "The cat sleeps." "A kitten naps."
//! ```
//!
//! Prints each text's vector length and the cosine similarity of every text with the first.

use tessera_hub::Hub;
use tessera_runtime::{Runtime, RuntimeConfig};
use tessera_tasks::Registry;
use tessera_tasks::embed::{EmbedInput, EmbedRequest, Embeddings};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
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

    // The hub pulls the model into the cache on first use; the runtime loads it onto a worker
    // thread and keeps it while it is used. The CLI may name any local folder too.
    let config = RuntimeConfig {
        any_path: true,
        ..RuntimeConfig::default()
    };
    let runtime = Runtime::new(Hub::from_env()?, Registry::builtin(), config);
    let request = EmbedRequest {
        input: EmbedInput::Texts(texts.clone()),
        truncate: false,
        dimensions: None,
    };
    let vectors = runtime.run::<Embeddings>(&model, request).await?.vectors;

    for (text, vector) in texts.iter().zip(&vectors) {
        // Vectors are unit length, so the dot product is the cosine similarity.
        let similarity: f32 = vector.iter().zip(&vectors[0]).map(|(a, b)| a * b).sum();
        println!("{similarity:>6.3}  {} dims  {text}", vector.len());
    }
    Ok(())
}
