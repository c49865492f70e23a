//! Shared test helpers: a tiny HTTP/1.1 file server on 127.0.0.1:0 that can misbehave on cue,
//! hub configs pointed at a temporary home, catalog builders and wheel writers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tessera_core::{EngineKind, Task};
use tessera_hub::{Catalog, CatalogEntry, FileSpec, HubConfig, Options, Source};

/// One request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Vec<u8>>,
    /// path -> (status, how many more times)
    fail: HashMap<String, (u16, u32)>,
    /// path -> (bytes sent before the connection is cut, how many more times)
    cut: HashMap<String, (usize, u32)>,
    /// path -> (how long to stay silent before answering, how many more times)
    stall: HashMap<String, (Duration, u32)>,
    ignore_range: bool,
    chunk_delay: Option<Duration>,
    seen: Vec<Seen>,
}

/// A file server for one test. Each connection serves one request and closes.
pub struct TestServer {
    addr: std::net::SocketAddr,
    state: Arc<Mutex<State>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&shared);
                std::thread::spawn(move || handle(stream, &state));
            }
        });
        TestServer { addr, state }
    }

    /// `http://127.0.0.1:PORT` with no trailing slash.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base())
    }

    pub fn serve(&self, path: &str, bytes: &[u8]) {
        self.lock().files.insert(path.to_string(), bytes.to_vec());
    }

    /// Answer `status` the next `times` requests of `path`.
    pub fn fail_first(&self, path: &str, status: u16, times: u32) {
        self.lock().fail.insert(path.to_string(), (status, times));
    }

    /// Send only `bytes` of the body, then drop the connection, the next `times` requests.
    pub fn cut_first(&self, path: &str, bytes: usize, times: u32) {
        self.lock().cut.insert(path.to_string(), (bytes, times));
    }

    /// Say nothing for `silence` before answering, the next `times` requests of `path`.
    pub fn stall_first(&self, path: &str, silence: Duration, times: u32) {
        self.lock().stall.insert(path.to_string(), (silence, times));
    }

    /// Answer 200 with the whole file even when a range is asked for.
    pub fn ignore_range(&self, ignore: bool) {
        self.lock().ignore_range = ignore;
    }

    /// Sleep this long after each 64 KiB of body.
    pub fn slow(&self, delay: Duration) {
        self.lock().chunk_delay = Some(delay);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }

    /// How many GETs of `path` arrived.
    pub fn gets(&self, path: &str) -> usize {
        self.lock()
            .seen
            .iter()
            .filter(|s| s.method == "GET" && s.path == path)
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn handle(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    let mut range = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("range")
        {
            range = Some(value.trim().to_string());
        }
    }

    let (reply, cut, delay, stall) = {
        let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
        state.seen.push(Seen {
            method: method.clone(),
            path: path.clone(),
            range: range.clone(),
        });
        let failing = match state.fail.get_mut(&path) {
            Some((status, times)) if *times > 0 => {
                *times -= 1;
                Some(*status)
            }
            _ => None,
        };
        let cut = match state.cut.get_mut(&path) {
            Some((bytes, times)) if *times > 0 => {
                *times -= 1;
                Some(*bytes)
            }
            _ => None,
        };
        let reply = match failing {
            Some(status) => Reply::status(status),
            None => match state.files.get(&path) {
                None => Reply::status(404),
                Some(body) => Reply::file(body, range.as_deref().filter(|_| !state.ignore_range)),
            },
        };
        let stall = match state.stall.get_mut(&path) {
            Some((silence, times)) if *times > 0 => {
                *times -= 1;
                Some(*silence)
            }
            _ => None,
        };
        (reply, cut, state.chunk_delay, stall)
    };
    if let Some(silence) = stall {
        std::thread::sleep(silence);
    }
    let mut stream = stream;
    let _ = reply.send(&mut stream, cut, delay);
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    fn file(body: &[u8], range: Option<&str>) -> Reply {
        let start = range
            .and_then(|r| r.strip_prefix("bytes="))
            .and_then(|r| r.strip_suffix('-'))
            .and_then(|s| s.parse::<usize>().ok());
        match start {
            None => Reply {
                status: 200,
                headers: vec![("Accept-Ranges".into(), "bytes".into())],
                body: body.to_vec(),
            },
            Some(start) if start >= body.len() => Reply {
                status: 416,
                headers: vec![("Content-Range".into(), format!("bytes */{}", body.len()))],
                body: Vec::new(),
            },
            Some(start) => Reply {
                status: 206,
                headers: vec![(
                    "Content-Range".into(),
                    format!("bytes {start}-{}/{}", body.len() - 1, body.len()),
                )],
                body: body[start..].to_vec(),
            },
        }
    }

    fn send(
        &self,
        stream: &mut TcpStream,
        cut: Option<usize>,
        delay: Option<Duration>,
    ) -> std::io::Result<()> {
        let reason = match self.status {
            200 => "OK",
            206 => "Partial Content",
            404 => "Not Found",
            416 => "Range Not Satisfiable",
            503 => "Service Unavailable",
            _ => "Status",
        };
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.status,
            self.body.len()
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes())?;
        let body = match cut {
            Some(n) => &self.body[..n.min(self.body.len())],
            None => &self.body[..],
        };
        for chunk in body.chunks(64 * 1024) {
            stream.write_all(chunk)?;
            if let Some(delay) = delay {
                stream.flush()?;
                std::thread::sleep(delay);
            }
        }
        Ok(())
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Deterministic bytes that are not all alike, so a misplaced range changes the hash.
pub fn fixture_bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

/// A config for tests: the given home, fast retries, short timeouts, no progress bar.
pub fn test_config(home: &Path) -> HubConfig {
    let mut config = HubConfig::new(home);
    config.retries = 3;
    config.retry_base_delay = Duration::from_millis(10);
    config.timeout = Duration::from_secs(10);
    config.progress = false;
    config.hf_endpoint = "http://127.0.0.1:9".into();
    config
}

/// A file spec for `bytes` fetched from `sources`.
pub fn file_spec(name: &str, bytes: &[u8], sources: Vec<Source>) -> FileSpec {
    FileSpec {
        name: name.to_string(),
        size: bytes.len() as u64,
        sha256: sha256_hex(bytes),
        sources,
        convert: None,
    }
}

pub fn entry(id: &str, files: Vec<FileSpec>) -> CatalogEntry {
    let mut options = Options::new();
    options.insert("max_tokens".into(), 128.into());
    CatalogEntry {
        id: id.to_string(),
        task: Task::Embed,
        engine: EngineKind::Onnx,
        description: format!("test model {id}"),
        license: "MIT".to_string(),
        options,
        idle_unload: None,
        files,
    }
}

pub fn catalog(entries: Vec<CatalogEntry>) -> Catalog {
    Catalog::from_entries(entries).expect("a valid test catalog")
}

pub fn https(url: String) -> Source {
    Source::Https { url }
}

/// Every file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(read) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in read.flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// The files under `home/blobs`, the only place fetched bytes may be.
pub fn blob_files(home: &Path) -> Vec<PathBuf> {
    files_under(&home.join("blobs"))
}

/// Writes `NAME-VERSION-py3-none-any.whl` into `dir` holding `members` plus the dist-info
/// files pip reads.
pub fn write_wheel(dir: &Path, name: &str, version: &str, members: &[(&str, &[u8])]) -> PathBuf {
    use zip::write::SimpleFileOptions;
    let dist = name.replace('-', "_");
    let path = dir.join(format!("{dist}-{version}-py3-none-any.whl"));
    let file = std::fs::File::create(&path).expect("create the wheel");
    let mut zip = zip::ZipWriter::new(file);
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let info = format!("{dist}-{version}.dist-info");
    let metadata = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
    let wheel =
        "Wheel-Version: 1.0\nGenerator: tessera-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n";
    let mut record = String::new();
    let mut add = |zip: &mut zip::ZipWriter<std::fs::File>, member: &str, bytes: &[u8]| {
        zip.start_file(member, options).expect("start a member");
        zip.write_all(bytes).expect("write a member");
        record.push_str(&format!("{member},,\n"));
    };
    for (member, bytes) in members {
        add(&mut zip, member, bytes);
    }
    add(&mut zip, &format!("{info}/METADATA"), metadata.as_bytes());
    add(&mut zip, &format!("{info}/WHEEL"), wheel.as_bytes());
    record.push_str(&format!("{info}/RECORD,,\n"));
    zip.start_file(format!("{info}/RECORD"), options)
        .expect("start RECORD");
    zip.write_all(record.as_bytes()).expect("write RECORD");
    zip.finish().expect("finish the wheel");
    path
}
