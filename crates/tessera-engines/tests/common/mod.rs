//! Where the test models are: `$TESSERA_HOME/models/<id>` (default `~/.cache/tessera`), filled by
//! `scripts/fetch-models.sh`.

use std::path::PathBuf;

/// A file of a cached test model; panics with the command to run if it is missing.
pub fn model_file(id: &str, file: &str) -> PathBuf {
    let home = std::env::var_os("TESSERA_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache").join("tessera"))
        })
        .expect("TESSERA_HOME or HOME is set");
    let path = home.join("models").join(id).join(file);
    assert!(
        path.exists(),
        "{} is missing; run scripts/fetch-models.sh",
        path.display()
    );
    path
}

/// "hello world" and "hello" in MiniLM's vocabulary, the second padded to the first's length.
pub const IDS: [[u32; 4]; 2] = [[101, 7592, 2088, 102], [101, 7592, 102, 0]];
/// Real tokens per row of [`IDS`].
pub const LENGTHS: [usize; 2] = [4, 3];
/// MiniLM's hidden size.
pub const HIDDEN: usize = 384;

/// Flattened `[2, 4]` ids, type ids and attention mask for [`IDS`].
pub fn batch() -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let ids: Vec<u32> = IDS.iter().flatten().copied().collect();
    let type_ids = vec![0; ids.len()];
    let mask = LENGTHS
        .iter()
        .flat_map(|&len| (0..IDS[0].len()).map(move |i| u32::from(i < len)))
        .collect();
    (ids, type_ids, mask)
}

/// Largest absolute difference.
pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
