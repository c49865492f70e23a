//! `tessera.toml`: the flags' long names as keys, plus `[models."id"]` tables for single models.
//!
//! ```toml
//! idle_unload = "10m"
//! memory_budget = "8GiB"
//! model_dir = ["/srv/models"]
//! api_key = ["sk-local-1"]
//!
//! [models.all-minilm-l6-v2-int8]
//! pin = true
//!
//! [models."my-bert"]
//! idle_unload = "30s"
//! ```
//!
//! File values become the flags' defaults, so a flag wins over its `TESSERA_*` variable, which
//! wins over the file, which wins over the built-in default. A key that no flag has is an error
//! that lists the keys there are.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tessera_runtime::ModelSettings;

/// The default file, read when it exists and no other is named.
const DEFAULT_FILE: &str = "tessera.toml";

/// A parsed settings file.
#[derive(Debug, Default)]
pub struct FileConfig {
    /// Where it came from, if anywhere.
    pub path: Option<PathBuf>,
    /// Flag values by flag name (`idle-unload`), as command-line strings.
    flags: Vec<(String, Vec<String>)>,
    /// Per-model settings.
    pub models: HashMap<String, ModelSettings>,
}

impl FileConfig {
    /// The file named by `--config` in `args` or by `TESSERA_CONFIG`, else `./tessera.toml` if it
    /// exists, else nothing.
    pub fn load(args: &[OsString]) -> anyhow::Result<FileConfig> {
        let named =
            config_argument(args).or_else(|| std::env::var_os("TESSERA_CONFIG").map(PathBuf::from));
        let path = match named {
            Some(path) => path,
            None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
            None => return Ok(FileConfig::default()),
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("could not read the settings file {}", path.display()))?;
        FileConfig::parse(&text)
            .with_context(|| format!("in {}", path.display()))
            .map(|mut config| {
                config.path = Some(path);
                config
            })
    }

    /// Parses the text of a settings file.
    pub fn parse(text: &str) -> anyhow::Result<FileConfig> {
        let table: toml::Table = toml::from_str(text)?;
        let mut config = FileConfig::default();
        for (key, value) in table {
            if key == "models" {
                config.models = parse_models(&value)?;
                continue;
            }
            config
                .flags
                .push((key.replace('_', "-"), flag_values(&key, &value)?));
        }
        Ok(config)
    }

    /// Makes the file's values the defaults of the flags they name, in every subcommand that has
    /// the flag. Fails on a key that no subcommand has.
    pub fn apply(&self, mut command: clap::Command) -> anyhow::Result<clap::Command> {
        for (flag, values) in &self.flags {
            let mut used = false;
            let names: Vec<String> = command
                .get_subcommands()
                .map(|s| s.get_name().to_string())
                .collect();
            for name in names {
                let has_flag = command
                    .find_subcommand(&name)
                    .is_some_and(|sub| sub.get_arguments().any(|a| a.get_long() == Some(flag)));
                if !has_flag {
                    continue;
                }
                used = true;
                let values = values.clone();
                let flag = flag.clone();
                command = command.mut_subcommand(name, move |sub| {
                    let id = sub
                        .get_arguments()
                        .find(|a| a.get_long() == Some(&flag))
                        .map(|a| a.get_id().clone());
                    match id {
                        Some(id) => sub.mut_arg(id, |arg| arg.default_values(values)),
                        None => sub,
                    }
                });
            }
            if !used {
                let mut keys: Vec<String> = command
                    .find_subcommand("serve")
                    .into_iter()
                    .flat_map(|s| s.get_arguments())
                    .filter_map(|a| a.get_long())
                    .filter(|l| *l != "help" && *l != "config")
                    .map(|l| l.replace('-', "_"))
                    .collect();
                keys.sort();
                bail!(
                    "unknown key `{}`; keys are the long flags of `tessera serve` ({}) and [models.\"id\"] tables",
                    flag.replace('-', "_"),
                    keys.join(", ")
                );
            }
        }
        Ok(command)
    }
}

/// `--config PATH` or `--config=PATH`, found before clap parses (the file shapes the parser).
fn config_argument(args: &[OsString]) -> Option<PathBuf> {
    let mut args = args.iter().skip(1);
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if text == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = text.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

fn flag_values(key: &str, value: &toml::Value) -> anyhow::Result<Vec<String>> {
    let scalar = |value: &toml::Value| -> anyhow::Result<String> {
        Ok(match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => bail!(
                "`{key}` must be a string, number, boolean or array of them, not {}",
                other.type_str()
            ),
        })
    };
    match value {
        toml::Value::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

fn parse_models(value: &toml::Value) -> anyhow::Result<HashMap<String, ModelSettings>> {
    let Some(table) = value.as_table() else {
        bail!("`models` must be a table of tables: [models.\"id\"]");
    };
    let mut models = HashMap::new();
    for (id, settings) in table {
        let Some(settings) = settings.as_table() else {
            bail!("[models.\"{id}\"] must be a table");
        };
        let mut parsed = ModelSettings::default();
        for (key, value) in settings {
            match (key.as_str(), value) {
                ("idle_unload", toml::Value::String(text)) => {
                    parsed.idle_unload = Some(
                        tessera_core::parse_duration(text)
                            .with_context(|| format!("[models.\"{id}\"] idle_unload"))?,
                    );
                }
                ("idle_unload", toml::Value::Integer(seconds)) => {
                    let seconds = u64::try_from(*seconds).with_context(|| {
                        format!("[models.\"{id}\"] idle_unload must not be negative")
                    })?;
                    parsed.idle_unload = Some(std::time::Duration::from_secs(seconds));
                }
                ("pin", toml::Value::Boolean(pin)) => parsed.pin = *pin,
                _ => bail!(
                    "[models.\"{id}\"] `{key}` is not a model setting; a model takes idle_unload = \"10m\" and pin = true"
                ),
            }
        }
        models.insert(id.clone(), parsed);
    }
    Ok(models)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;
    use crate::cli::Cli;

    #[test]
    fn file_values_are_defaults_that_flags_override() {
        let file = FileConfig::parse(
            "idle_unload = \"7s\"\nport = 9999\npin = [\"a\", \"b\"]\n[models.m]\npin = true\nidle_unload = \"1m\"\n",
        )
        .unwrap();
        let command = file.apply(Cli::command()).unwrap();
        let matches = command
            .clone()
            .try_get_matches_from(["tessera", "serve", "--port", "1234"])
            .unwrap();
        let serve = matches.subcommand_matches("serve").unwrap();
        assert_eq!(serve.get_one::<u16>("port"), Some(&1234));
        assert_eq!(
            serve.get_one::<std::time::Duration>("idle_unload"),
            Some(&std::time::Duration::from_secs(7))
        );
        let pins: Vec<&String> = serve.get_many::<String>("pin").unwrap().collect();
        assert_eq!(pins, ["a", "b"]);
        assert!(file.models["m"].pin);
        assert_eq!(
            file.models["m"].idle_unload,
            Some(std::time::Duration::from_secs(60))
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_say_what_is_accepted() {
        let file = FileConfig::parse("idle_unlaod = \"7s\"").unwrap();
        let error = file.apply(Cli::command()).unwrap_err().to_string();
        assert!(error.contains("unknown key `idle_unlaod`"), "{error}");
        assert!(error.contains("idle_unload"), "{error}");
        let error = FileConfig::parse("[models.m]\ncolour = 1")
            .unwrap_err()
            .to_string();
        assert!(error.contains("idle_unload"), "{error}");
    }

    #[test]
    fn the_config_flag_is_found_before_parsing() {
        let args: Vec<OsString> = ["tessera", "serve", "--config", "x.toml"]
            .into_iter()
            .map(OsString::from)
            .collect();
        assert_eq!(config_argument(&args), Some(PathBuf::from("x.toml")));
        let args: Vec<OsString> = ["tessera", "--config=y.toml"]
            .into_iter()
            .map(OsString::from)
            .collect();
        assert_eq!(config_argument(&args), Some(PathBuf::from("y.toml")));
    }
}
