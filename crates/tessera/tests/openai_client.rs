//! The official OpenAI Python client (`pip install openai`) against a real `tessera serve`.

mod common;

use common::{MODEL, Server};

#[test]
fn the_official_openai_python_client_gets_the_vectors() {
    let server = Server::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_client.py");
    let output = std::process::Command::new("python3")
        .args([script, &server.base, MODEL])
        .output()
        .expect("python3 is needed for this test (and `pip install openai`, which .ci/run does)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "openai client failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.starts_with("ok "), "{stdout}");
}

#[test]
fn the_official_openai_python_client_chats_streams_calls_tools_and_follows_schemas() {
    let server = Server::start(&["--preload", ""]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/openai_chat.py");
    let output = std::process::Command::new("python3")
        .args([
            script,
            &server.base,
            "smollm2-135m-instruct",
            "qwen2.5-coder-0.5b-instruct",
        ])
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
