//! Converts `.tflite` files to `.onnx` files in a folder, printing each conversion's time.
//!
//! `cargo run --release -p tessera-tflite --example tflite2onnx -- OUT_DIR MODEL.tflite...`

use std::path::Path;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((out_dir, models)) = args.split_first().filter(|(_, m)| !m.is_empty()) else {
        return Err("usage: tflite2onnx OUT_DIR MODEL.tflite...".into());
    };
    std::fs::create_dir_all(out_dir)?;
    for path in models {
        let bytes = std::fs::read(path)?;
        let start = Instant::now();
        let onnx = tessera_tflite::convert(&bytes).map_err(|e| format!("{path}: {e}"))?;
        let elapsed = start.elapsed();
        let stem = Path::new(path)
            .file_stem()
            .ok_or("model path has no file name")?;
        let out = Path::new(out_dir).join(stem).with_extension("onnx");
        std::fs::write(&out, &onnx)?;
        println!(
            "{path} -> {} ({} bytes) in {:.1} ms",
            out.display(),
            onnx.len(),
            elapsed.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
