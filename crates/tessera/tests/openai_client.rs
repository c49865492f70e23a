//! The official OpenAI Python client (`pip install openai`) against a real `tessera serve`.

mod common;

use common::{MODEL, Server};

/// Runs one of the Python scripts beside these tests against `server`; it prints `ok …`.
fn run_script(name: &str, server: &Server, models: &[&str]) {
    let script = format!("{}/tests/python/{name}", env!("CARGO_MANIFEST_DIR"));
    let output = std::process::Command::new("python3")
        .arg(script)
        .arg(&server.base)
        .args(models)
        .output()
        .expect("python3 with `openai` and `jsonschema` (installed by .ci/run)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "openai client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.starts_with("ok "), "{stdout}");
}

#[test]
fn the_official_openai_python_client_gets_the_vectors() {
    let server = Server::start(&[]);
    run_script("openai_client.py", &server, &[MODEL]);
}

#[test]
fn the_official_openai_python_client_chats_streams_calls_tools_and_follows_schemas() {
    let server = Server::start(&["--preload", ""]);
    run_script(
        "openai_chat.py",
        &server,
        &["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"],
    );
}

#[test]
fn the_official_openai_python_client_speaks_plain_and_streamed() {
    let server = Server::start(&["--preload", ""]);
    run_script("openai_audio.py", &server, &["piper-en-us-joe-medium"]);
}
