//! `tessera embed`: vectors for texts, as JSON on standard output.

use std::io::{BufRead, Read};

use anyhow::{Context, bail};
use tessera_runtime::EmbedInput;

use crate::cli::EmbedArgs;

pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    let mut texts = args.texts.clone();
    if let Some(path) = &args.file {
        let mut content = String::new();
        if path.as_os_str() == "-" {
            std::io::stdin()
                .read_to_string(&mut content)
                .context("could not read standard input")?;
        } else {
            content = std::fs::read_to_string(path)
                .with_context(|| format!("could not read {}", path.display()))?;
        }
        texts.extend(
            content
                .as_bytes()
                .lines()
                .map_while(Result::ok)
                .filter(|line| !line.trim().is_empty()),
        );
    }
    if texts.is_empty() {
        bail!("nothing to embed: give texts as arguments or --file FILE (one text per line)");
    }
    let manager = super::model_manager(&args.engine)?;
    let handle = manager.embedder(&args.model)?;
    let encodings = handle.tokenize(&EmbedInput::Texts(texts), args.truncate)?;
    let tokens: usize = encodings.iter().map(|e| e.len()).sum();
    let vectors = handle.embed_blocking(encodings)?;
    let output = serde_json::json!({
        "model": handle.id(),
        "dimensions": handle.dimensions(),
        "tokens": tokens,
        "embeddings": vectors,
    });
    println!("{output}");
    Ok(())
}
