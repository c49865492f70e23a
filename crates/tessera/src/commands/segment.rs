//! `tessera segment`: a photo's foreground cut out into an RGBA PNG, and its mask.

use anyhow::Context;
use tessera_tasks::vision::segment::{SegmentFrontend, SegmentRequest};

use crate::cli::SegmentArgs;

pub fn run(args: SegmentArgs) -> anyhow::Result<()> {
    let image = std::fs::read(&args.image)
        .with_context(|| format!("could not read {}", args.image.display()))?;
    let runtime = super::local_runtime(&args.engine)?;
    let result =
        super::block_on(runtime.run::<SegmentFrontend>(&args.model, SegmentRequest { image }))?
            .with_context(|| format!("{}", args.image.display()))?;
    std::fs::write(&args.output, &result.cutout_png)
        .with_context(|| format!("could not write {}", args.output.display()))?;
    if let Some(mask) = &args.mask {
        std::fs::write(mask, &result.mask_png)
            .with_context(|| format!("could not write {}", mask.display()))?;
    }
    eprintln!(
        "{}: {} × {}, {:.0} % foreground",
        args.output.display(),
        result.width,
        result.height,
        result.foreground * 100.0
    );
    Ok(())
}
