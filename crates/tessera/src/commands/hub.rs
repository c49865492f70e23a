//! `pull`, `list`, `rm`: the model cache from the shell.

use anyhow::Context;
use tessera_hub::Hub;

pub fn pull(models: &[String]) -> anyhow::Result<()> {
    let hub = Hub::from_env()?;
    for id in models {
        let model = hub
            .pull(id)
            .with_context(|| format!("could not pull `{id}`"))?;
        println!("{id}: ready in {}", model.dir.display());
    }
    Ok(())
}

pub fn list(json: bool) -> anyhow::Result<()> {
    let hub = Hub::from_env()?;
    let statuses = hub.status();
    if json {
        for status in &statuses {
            let line = serde_json::json!({
                "id": status.id,
                "task": status.task,
                "engine": status.engine,
                "license": status.license,
                "size_bytes": status.total_size,
                "cached_bytes": status.cached_bytes,
                "cached": status.complete,
            });
            println!("{line}");
        }
        for conversion in hub.conversions() {
            let line = serde_json::json!({
                "id": conversion.id,
                "size_bytes": conversion.bytes,
                "cached_bytes": conversion.bytes,
                "cached": true,
                "converted": true,
                "dir": conversion.dir,
            });
            println!("{line}");
        }
        return Ok(());
    }
    println!(
        "{:<32} {:<11} {:<12} {:>10}  {:<11} cached",
        "MODEL", "TASK", "ENGINE", "SIZE", "LICENCE"
    );
    for status in &statuses {
        let cached = if status.complete {
            "yes".to_string()
        } else if status.cached_bytes > 0 {
            format!("partly ({})", human_size(status.cached_bytes))
        } else {
            "no".to_string()
        };
        println!(
            "{:<32} {:<11} {:<12} {:>10}  {:<11} {cached}",
            status.id,
            status.task.to_string(),
            status.engine.to_string(),
            human_size(status.total_size),
            short_licence(&status.license),
        );
    }
    if statuses.iter().any(|s| copyleft(&s.license)) {
        println!(
            "\n* copyleft (AGPL): serving it over a network obliges you to offer the source; `tessera list --json` has each licence in full"
        );
    }
    let conversions = hub.conversions();
    if !conversions.is_empty() {
        println!(
            "\nconversions (Hugging Face checkpoints, PyTorch weights, TFLite models; made again on next use when removed):"
        );
        for conversion in &conversions {
            println!("{:<57} {:>10}", conversion.id, human_size(conversion.bytes));
        }
    }
    println!("\ncache: {}", hub.home().display());
    Ok(())
}

/// A licence's name for the table: its first word, starred when any part of it is AGPL (a model
/// whose weights are MIT may still run an AGPL architecture).
fn short_licence(licence: &str) -> String {
    let name = licence
        .split([' ', ';', ','])
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("?");
    if copyleft(licence) {
        format!("{name}*")
    } else {
        name.to_string()
    }
}

fn copyleft(licence: &str) -> bool {
    licence.contains("AGPL")
}

pub fn remove(models: &[String]) -> anyhow::Result<()> {
    let hub = Hub::from_env()?;
    for id in models {
        let freed = hub
            .remove(id)
            .with_context(|| format!("could not remove `{id}`"))?;
        println!("{id}: removed, {} freed", human_size(freed));
    }
    Ok(())
}

pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}
