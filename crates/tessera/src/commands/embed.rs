//! `tessera embed`: vectors for texts, as JSON on standard output.

use std::io::{BufRead, Read};

use anyhow::{Context, bail};
use tessera_tasks::embed::{EmbedInput, EmbedRequest, Embeddings};

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
    let runtime = super::local_runtime(&args.engine)?;
    let request = EmbedRequest {
        input: EmbedInput::Texts(texts),
        truncate: args.truncate,
        dimensions: None,
    };
    let embedded = super::block_on(runtime.run::<Embeddings>(&args.model, request))??;
    let output = serde_json::json!({
        "model": args.model,
        "dimensions": embedded.vectors.first().map_or(0, Vec::len),
        "tokens": embedded.tokens,
        "embeddings": embedded.vectors,
    });
    println!("{output}");
    Ok(())
}
