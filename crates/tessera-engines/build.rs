//! Puts llama.cpp's shared libraries where the binaries of this build find them.
//!
//! llama-cpp-sys-2 links llama.cpp as shared libraries (ggml's CPU kernels are chosen at run
//! time from one library per x86-64 generation) and hard-links `libggml.so` and friends into
//! `target/<profile>/`. Those are symbolic links to `libggml.so.0`, which it does not copy, so
//! they dangle there, and a second build of the crate (another feature set) fails on them. This
//! script adds the versioned names beside them, so the `$ORIGIN` run path of the binaries finds
//! the libraries and the links resolve.
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_LLAMA_BACKENDS_DIR");
    let Ok(backends) = std::env::var("DEP_LLAMA_BACKENDS_DIR") else {
        return;
    };
    let Some(lib) = Path::new(&backends).parent().map(|out| out.join("lib")) else {
        return;
    };
    let Some(profile_dir) = std::env::var_os("OUT_DIR")
        .map(PathBuf::from)
        .and_then(|out| out.ancestors().nth(3).map(Path::to_path_buf))
    else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(&lib) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let text = name.to_string_lossy();
        if !(text.starts_with("lib") && text.contains(".so")) {
            continue;
        }
        for dir in [
            profile_dir.clone(),
            profile_dir.join("deps"),
            profile_dir.join("examples"),
        ] {
            if !dir.is_dir() {
                continue;
            }
            let link = dir.join(&name);
            // `exists` follows links: a dangling one is replaced, a working one kept.
            if link.exists() {
                continue;
            }
            let _ = std::fs::remove_file(&link);
            #[cfg(unix)]
            if let Err(error) = std::os::unix::fs::symlink(entry.path(), &link) {
                println!("cargo:warning=could not link {}: {error}", link.display());
            }
        }
    }
}
