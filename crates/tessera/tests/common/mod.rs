//! A real `tessera serve` on a loopback port, and a small HTTP client for it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

pub const MODEL: &str = "all-minilm-l6-v2-int8";

/// Runs `tests/python/<script>` with `args` under python3 (its packages come from .ci/run) and
/// returns what it printed; a script that fails fails the test with its output.
pub fn python_script<S: AsRef<std::ffi::OsStr>>(
    script: &str,
    args: impl IntoIterator<Item = S>,
) -> String {
    let path = format!("{}/tests/python/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("python3")
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("python3 for {script}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A `tessera serve` child process, killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
    agent: ureq::Agent,
}

impl Server {
    /// Starts `tessera serve --port 0` with extra flags and waits until it listens.
    pub fn start(extra: &[&str]) -> Server {
        Server::start_with_env(extra, &[])
    }

    /// Like [`Server::start`], with extra environment variables.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tessera"))
            .args(["serve", "--host", "127.0.0.1", "--port", "0"])
            .args(extra)
            // Tests run servers side by side on few cores: OpenMP threads that spin while they
            // wait (libgomp's default) would stall each other (see README, Speech to text).
            .env("OMP_WAIT_POLICY", "PASSIVE")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tessera serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("server exited before listening")
                .expect("read stdout");
            if let Some(url) = line.strip_prefix("tessera listening on ") {
                break url.trim().to_string();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Server { child, base, agent }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs a raw body; returns the status, the Retry-After header and the body as JSON (or Null).
    pub fn post_raw(&self, path: &str, body: &str) -> Reply {
        self.post_with(path, body, &[])
    }

    /// POSTs a raw JSON body with extra headers, such as `Authorization`.
    pub fn post_with(&self, path: &str, body: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self
            .agent
            .post(&self.url(path))
            .header("Content-Type", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        reply(&mut request.send(body).expect("request"))
    }

    /// GETs with extra headers, such as `Authorization`.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self.agent.get(&self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        reply(&mut request.call().expect("request"))
    }

    /// POSTs a `multipart/form-data` form, as OpenAI's audio routes take it.
    pub fn post_form(&self, path: &str, parts: &[(&str, Part<'_>)]) -> Reply {
        let boundary = "tessera-test-boundary-7d1f3c";
        let mut body: Vec<u8> = Vec::new();
        for (name, part) in parts {
            body.extend(format!("--{boundary}\r\n").as_bytes());
            match part {
                Part::Text(text) => {
                    body.extend(
                        format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                            .as_bytes(),
                    );
                    body.extend(text.as_bytes());
                }
                Part::File(file_name, bytes) => {
                    body.extend(
                        format!(
                            "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    body.extend(*bytes);
                }
            }
            body.extend(b"\r\n");
        }
        body.extend(format!("--{boundary}--\r\n").as_bytes());
        let mut response = self
            .agent
            .post(&self.url(path))
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .send(&body[..])
            .expect("request");
        reply(&mut response)
    }

    pub fn post(&self, path: &str, body: &Value) -> Reply {
        self.post_raw(path, &body.to_string())
    }

    pub fn get(&self, path: &str) -> (u16, String) {
        let mut response = self.agent.get(&self.url(path)).call().expect("request");
        let status = response.status().as_u16();
        (
            status,
            response.body_mut().read_to_string().unwrap_or_default(),
        )
    }

    /// The entry of `/v1/models` for `id`.
    pub fn model(&self, id: &str) -> Value {
        let (status, body) = self.get("/v1/models");
        assert_eq!(status, 200, "{body}");
        let list: Value = serde_json::from_str(&body).expect("JSON model list");
        list["data"]
            .as_array()
            .expect("data")
            .iter()
            .find(|m| m["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not listed in {body}"))
    }

    /// The value of a Prometheus counter or gauge whose line starts with `prefix` (name and
    /// labels), or 0 when absent.
    pub fn metric(&self, prefix: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0.0)
    }

    /// The server process's resident memory in bytes (Linux).
    pub fn resident_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("/proc/<pid>/status");
        let kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmRSS");
        kb * 1024
    }

    pub fn embed_with(&self, model: &str, input: Value) -> Reply {
        self.post(
            "/v1/embeddings",
            &serde_json::json!({ "model": model, "input": input }),
        )
    }

    pub fn embed(&self, input: Value) -> Vec<Vec<f32>> {
        let reply = self.post(
            "/v1/embeddings",
            &serde_json::json!({ "model": MODEL, "input": input }),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        vectors(&reply.body)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One field of a multipart form.
pub enum Part<'a> {
    Text(&'a str),
    /// A file name and its bytes.
    File(&'a str, &'a [u8]),
}

pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub headers: ureq::http::HeaderMap,
    /// The body as text.
    pub text: String,
    /// The body as JSON, or Null when it is not JSON.
    pub body: Value,
}

impl Reply {
    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

fn reply(response: &mut ureq::http::Response<ureq::Body>) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let retry_after = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let text = response.body_mut().read_to_string().unwrap_or_default();
    Reply {
        status,
        retry_after,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

pub fn vectors(body: &Value) -> Vec<Vec<f32>> {
    body["data"]
        .as_array()
        .expect("data array")
        .iter()
        .map(|item| {
            item["embedding"]
                .as_array()
                .expect("float embedding")
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (norm(a) * norm(b))
}

/// Asserts an OpenAI error object with this status whose message contains `needle`.
pub fn assert_error(reply: &Reply, status: u16, needle: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    let message = reply.body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no error object in {}", reply.body));
    assert!(
        message.contains(needle),
        "message `{message}` lacks `{needle}`"
    );
    assert!(reply.body["error"]["type"].is_string(), "{}", reply.body);
}

/// The tessera cache the test models were fetched into.
pub fn tessera_home() -> PathBuf {
    match std::env::var_os("TESSERA_HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/tessera"),
    }
}

/// A vision fixture: `$TESSERA_HOME/fixtures/name` (scripts/fetch-models.sh puts them there).
pub fn fixture(name: &str) -> PathBuf {
    tessera_home().join("fixtures").join(name)
}

/// A vision fixture's bytes.
pub fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name))
        .unwrap_or_else(|e| panic!("{name} (run scripts/fetch-models.sh): {e}"))
}

/// Copies the cached int8 MiniLM into `dir/name`, a model folder the server detects by its files.
pub fn copy_model(dir: &Path, name: &str) -> PathBuf {
    let source = tessera_home().join("models").join(MODEL);
    let target = dir.join(name);
    std::fs::create_dir_all(&target).unwrap();
    for file in ["model.onnx", "tokenizer.json", "config.json"] {
        std::fs::copy(source.join(file), target.join(file))
            .unwrap_or_else(|e| panic!("copy {file} (run scripts/fetch-models.sh): {e}"));
    }
    target
}

/// Debian's pocketsphinx-testdata: LibriVox clips (16 kHz mono WAV) and their transcripts.
pub const LIBRIVOX: &str = "/usr/share/pocketsphinx/test/data/librivox";

/// The LibriVox clips, each with its reference transcript (lower case, no punctuation).
pub fn librivox() -> Vec<(PathBuf, String)> {
    let transcripts = std::fs::read_to_string(Path::new(LIBRIVOX).join("transcription"))
        .expect("pocketsphinx-testdata is installed (.ci/run installs it)");
    transcripts
        .lines()
        .filter_map(|line| {
            // "text (file-id)"
            let (text, id) = line.rsplit_once(" (")?;
            let id = id.trim_end_matches(')');
            let text = text
                .trim()
                .trim_start_matches("<s>")
                .trim_end_matches("</s>");
            Some((
                Path::new(LIBRIVOX).join(format!("{id}.wav")),
                text.trim().to_lowercase(),
            ))
        })
        .collect()
}

/// 16 kHz mono samples as a WAV file.
pub fn wav(samples: &[f32]) -> Vec<u8> {
    tessera_tasks::audio::encode(samples, 16000, tessera_tasks::audio::AudioFormat::Wav)
        .expect("encode a WAV")
}

/// Noise from a fixed-seed generator, so a test is the same every run.
pub fn noise(seconds: f32, amplitude: f32) -> Vec<f32> {
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    (0..(seconds * 16000.0) as usize)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * amplitude
        })
        .collect()
}

/// The samples of LibriVox clip `index` (16 kHz mono).
pub fn clip_samples(index: usize) -> Vec<f32> {
    let bytes = std::fs::read(&librivox()[index].0).expect("read a LibriVox clip");
    tessera_tasks::audio::decode(bytes, 600.0)
        .expect("decode")
        .samples
}

/// Lower case, words only: punctuation and hyphens become spaces.
pub fn normalize(text: &str) -> Vec<String> {
    text.to_lowercase()
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Word edits (substitutions, insertions, deletions) between two texts, and the reference's
/// word count.
pub fn word_errors(hypothesis: &str, reference: &str) -> (usize, usize) {
    let (h, r) = (normalize(hypothesis), normalize(reference));
    let mut previous: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut current = vec![i; h.len() + 1];
        for j in 1..=h.len() {
            let substitution = previous[j - 1] + usize::from(r[i - 1] != h[j - 1]);
            current[j] = substitution.min(previous[j] + 1).min(current[j - 1] + 1);
        }
        previous = current;
    }
    (previous[h.len()], r.len())
}

pub fn wer(hypothesis: &str, reference: &str) -> f64 {
    let (errors, words) = word_errors(hypothesis, reference);
    errors as f64 / words.max(1) as f64
}
