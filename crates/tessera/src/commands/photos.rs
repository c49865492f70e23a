//! What the one-shot vision commands share: reading the photos, running them together, and
//! writing a drawing.

use std::path::{Path, PathBuf};

use anyhow::Context;
use tessera_runtime::Runtime;
use tessera_tasks::Frontend;
use tessera_tasks::vision::image::{DEFAULT_MAX_PIXELS, RgbImage, decode, png};

/// Runs one request per photo on `model`, all submitted at once (the worker batches what the
/// family can), and hands each answer to `show` in order with the photo's path and bytes. A
/// photo the model refuses is reported and the others still answered; the command then fails.
pub(super) fn each_photo<F: Frontend>(
    runtime: &Runtime,
    model: &str,
    paths: &[PathBuf],
    request: impl Fn(Vec<u8>) -> F::Request,
    mut show: impl FnMut(&Path, &[u8], F::Response) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let photos = paths
        .iter()
        .map(|path| {
            std::fs::read(path).with_context(|| format!("could not read {}", path.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runs: Vec<_> = photos
        .iter()
        .map(|photo| runtime.run::<F>(model, request(photo.clone())))
        .collect();
    let results = super::block_on(futures_util::future::join_all(runs))?;
    let mut failed = 0;
    for ((path, photo), result) in paths.iter().zip(&photos).zip(results) {
        match result {
            Ok(found) => show(path, photo, found)?,
            Err(e) => {
                eprintln!("{}: {e}", path.display());
                failed += 1;
            }
        }
    }
    anyhow::ensure!(failed == 0, "{failed} of {} photos failed", paths.len());
    Ok(())
}

/// Refuses `--draw` with more than one photo.
pub(super) fn one_drawing(draw: Option<&Path>, photos: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        draw.is_none() || photos == 1,
        "--draw writes one picture: give one photo with it"
    );
    Ok(())
}

/// Decodes `photo`, lets `mark` draw on it, and writes it to `out` as a PNG.
pub(super) fn write_drawing(
    photo: &[u8],
    out: &Path,
    mark: impl FnOnce(&mut RgbImage),
) -> anyhow::Result<()> {
    let mut picture = decode(photo, DEFAULT_MAX_PIXELS)?.rgb;
    mark(&mut picture);
    std::fs::write(out, png(&picture)?)
        .with_context(|| format!("could not write {}", out.display()))
}
