//! Where tessera keeps its files: the one place `$TESSERA_HOME` is read.

use std::ffi::OsString;
use std::path::PathBuf;

/// The root of tessera's own files (the model cache, the ONNX Runtime library under `lib/`):
/// `$TESSERA_HOME` when it is set and not empty, else `$HOME/.cache/tessera`, else `.tessera` in
/// the current directory.
///
/// Every crate that needs this folder asks here, so the rule lives in one place.
pub fn tessera_home() -> PathBuf {
    home_from(std::env::var_os("TESSERA_HOME"), std::env::var_os("HOME"))
}

fn home_from(tessera_home: Option<OsString>, home: Option<OsString>) -> PathBuf {
    let set = |value: Option<OsString>| value.filter(|v| !v.is_empty() && !is_blank(v));
    if let Some(dir) = set(tessera_home) {
        return PathBuf::from(dir);
    }
    if let Some(home) = set(home) {
        return PathBuf::from(home).join(".cache").join("tessera");
    }
    PathBuf::from(".tessera")
}

/// Whether a value is only whitespace (an `export TESSERA_HOME=" "` is as good as unset).
fn is_blank(value: &OsString) -> bool {
    value.to_str().is_some_and(|v| v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(text: &str) -> Option<OsString> {
        Some(OsString::from(text))
    }

    #[test]
    fn tessera_home_then_home_then_the_current_directory() {
        assert_eq!(
            home_from(os("/srv/t"), os("/home/u")),
            PathBuf::from("/srv/t")
        );
        assert_eq!(
            home_from(os(""), os("/home/u")),
            PathBuf::from("/home/u/.cache/tessera")
        );
        assert_eq!(
            home_from(os("  "), os("/home/u")),
            PathBuf::from("/home/u/.cache/tessera")
        );
        assert_eq!(
            home_from(None, os("/home/u")),
            PathBuf::from("/home/u/.cache/tessera")
        );
        assert_eq!(home_from(None, os("")), PathBuf::from(".tessera"));
        assert_eq!(home_from(None, None), PathBuf::from(".tessera"));
    }
}
