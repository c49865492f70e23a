//! The binary finds llama.cpp's shared libraries beside itself: an installed copy carries them
//! in its folder, and a development build links them into `target/<profile>/` (see
//! tessera-engines' build script).
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,$ORIGIN");
    }
}
