//! The official OpenAI Python client (`pip install openai`) against a real `tessera serve`.

mod common;

use common::{MODEL, Server, python_script};

/// Runs one of the Python scripts beside these tests against `server`; it prints `ok …`.
fn run_script(name: &str, server: &Server, models: &[&str]) {
    let stdout = python_script(
        name,
        std::iter::once(server.base.as_str()).chain(models.iter().copied()),
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
