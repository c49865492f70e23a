//! Command-line flags. Every flag also reads a `TESSERA_*` variable; doc comments are the help.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use tessera_core::Device;
use tessera_engines::onnx::OptimizationLevel;

const ABOUT: &str = "Run local models behind an OpenAI-compatible API, a CLI and a Rust library.";

const EXAMPLES: &str = "Examples:
  tessera serve                                  # serve the default embedding model on 127.0.0.1:8080
  tessera pull all-minilm-l6-v2-int8             # fetch and verify a model from the catalog
  tessera embed all-minilm-l6-v2-int8 \"hello\"    # print an embedding as JSON
  tessera list                                   # what the catalog has and what is cached";

#[derive(Debug, Parser)]
#[command(name = "tessera", version = version(), about = ABOUT, after_help = EXAMPLES)]
pub struct Cli {
    /// More log output (-v debug, -vv trace). TESSERA_LOG overrides, e.g. TESSERA_LOG=tessera=debug.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// A settings file with the same keys as the flags (`idle_unload = "10m"`) plus per-model
    /// tables (`[models.my-model] pin = true`). Default: ./tessera.toml when it exists. Flags win
    /// over TESSERA_* variables, which win over the file.
    #[arg(long, env = "TESSERA_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

pub fn version() -> String {
    format!(
        "{} (engines: {})",
        env!("CARGO_PKG_VERSION"),
        tessera_engines::compiled_engines().join(", ")
    )
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve models over an OpenAI-compatible HTTP API.
    #[command(after_help = "Examples:
  tessera serve
  tessera serve --port 9000 --preload all-minilm-l6-v2-int8 --pin all-minilm-l6-v2-int8
  tessera serve --model-dir /srv/models --idle-unload 10m --memory-budget 8GiB
  curl http://127.0.0.1:8080/v1/embeddings -H 'Content-Type: application/json' \\
       -d '{\"model\": \"all-minilm-l6-v2-int8\", \"input\": [\"hello\", \"world\"]}'
  TESSERA_API_KEY=sk-team TESSERA_ADMIN_KEY=sk-admin tessera serve --host 0.0.0.0
  curl http://127.0.0.1:8080/v1/models -H 'Authorization: Bearer sk-team'
  curl http://127.0.0.1:8080/openapi.json     # every route, its statuses and the key scheme")]
    Serve(Box<ServeArgs>),
    /// Fetch catalog models into the cache and verify their checksums.
    #[command(after_help = "Examples:
  tessera pull all-minilm-l6-v2-int8
  TESSERA_HOME=/data/models tessera pull whisper-base smollm2-135m-instruct")]
    Pull {
        /// Catalog ids (see `tessera list`).
        #[arg(required = true)]
        models: Vec<String>,
    },
    /// List the catalog with each model's size and whether it is cached.
    #[command(after_help = "Example:\n  tessera list")]
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a model from the cache (files shared with another model stay), or a converted
    /// checkpoint (`converted/NAME`, as `tessera list` shows it).
    #[command(
        after_help = "Examples:\n  tessera rm whisper-base\n  tessera rm converted/whisper-small-3f2a9c1b7d04"
    )]
    Rm {
        /// Catalog ids or converted/NAME.
        #[arg(required = true)]
        models: Vec<String>,
    },
    /// Embed texts and print the vectors as JSON.
    #[command(after_help = "Examples:
  tessera embed all-minilm-l6-v2-int8 \"The cat sits outside\" \"A man is playing guitar\"
  tessera embed all-minilm-l6-v2 --file sentences.txt --truncate > vectors.json
  tessera embed ./my-bert-folder \"local folders work too\"")]
    Embed(EmbedArgs),
    /// Chat with an LLM: interactive, or one answer with --prompt (or from standard input).
    #[command(after_help = "Examples:
  tessera chat smollm2-135m-instruct                       # interactive; /reset, /system TEXT, /exit
  tessera chat qwen2.5-coder-0.5b-instruct --prompt \"Write a haiku about Rust\"
  echo \"What is 2+2?\" | tessera chat smollm2-135m-instruct --temperature 0

In the interactive chat, Ctrl-C stops the answer being written (not the program); Ctrl-D or
/exit quits.")]
    Chat(ChatArgs),
    /// Continue a text with an LLM, or fill the middle between --prompt and --suffix.
    #[command(after_help = "Examples:
  tessera complete smollm2-135m-instruct --prompt \"Once upon a time\" --max-tokens 40
  tessera complete qwen2.5-coder-0.5b-instruct --prompt \"def fib(n):\\n    \" --suffix \"\\n\\nprint(fib(10))\\n\"")]
    Complete(CompleteArgs),
    /// Find the speech in audio files: segments with start and end times.
    #[command(after_help = "Examples:
  tessera vad meeting.wav
  tessera vad --json --threshold 0.6 clip1.flac clip2.mp3

Reads WAV, FLAC, MP3 and OGG/Vorbis at any rate; the audio is resampled to 16 kHz.")]
    Vad(VadArgs),
    /// Cut the foreground (people, objects) out of a photo: an RGBA PNG with the background
    /// transparent, and the mask.
    #[command(after_help = "Examples:
  tessera segment portrait.jpg -o cutout.png
  tessera segment photo.webp -o cutout.png --mask mask.png

Reads JPEG, PNG, WebP, BMP and a GIF's first frame; EXIF orientation is applied. The default model,
IS-Net from @imgly/background-removal-data, is AGPL-3.0 (see `tessera list`).")]
    Segment(SegmentArgs),
    /// Find objects in photos: class, confidence and box of each, optionally drawn.
    #[command(after_help = "Examples:
  tessera detect people.jpg
  tessera detect --json --confidence 0.4 a.jpg b.png
  tessera detect group.jpg --draw boxes.png

Prints one line per object: label, confidence, and the box as x1,y1,x2,y2 in the photo's pixels
(after its EXIF orientation). The default model, NudeNet's YOLOv8n at 320 px, finds faces and
body parts (18 classes; `tessera list` shows it); any Ultralytics YOLOv8/YOLO11 detection export
(output [1, 4 + classes, anchors]) runs as well: `--model path/to/yolo11n.onnx`.")]
    Detect(DetectArgs),
    /// Find people in photos and 33 body landmarks each (MediaPipe BlazePose), optionally drawn.
    #[command(after_help = "Examples:
  tessera pose runner.jpg
  tessera pose --json team.png
  tessera pose dancer.jpg --draw skeleton.png

Prints each person's detector score and box, then each landmark as `name x y visibility` in the
photo's pixels (after its EXIF orientation); --json prints everything, depth and presence too.
The models are MediaPipe's TFLite files from npm, converted to ONNX when pulled.")]
    Pose(PoseArgs),
    /// Name what photos show: the most likely ImageNet classes, with probabilities.
    #[command(after_help = "Examples:
  tessera classify dog.jpg
  tessera classify --top-k 3 cat.png coffee.jpg
  tessera classify --json *.jpg > classes.jsonl

Reads JPEG, PNG, WebP, BMP and a GIF's first frame; EXIF orientation is applied. Photos given
together share forward passes. The default model, EfficientNet-Lite0, knows the 1000 ImageNet-1k
classes (see `tessera list`).")]
    Classify(ClassifyArgs),
    /// Read the text in pictures (OCR): the lines, top to bottom and left to right.
    #[command(after_help = "Examples:
  tessera ocr receipt.jpg                     # the text, one line per line read
  tessera ocr scan1.png scan2.png             # several pictures, each under its name
  tessera ocr --json sign.webp | jq '.lines[] | {text, confidence}'

Reads JPEG, PNG, WebP, BMP and a GIF's first frame; EXIF orientation is applied. Upside-down
lines are turned by the angle classifier. The default model, PP-OCRv4 (Apache-2.0), reads Chinese
and English; --json adds each line's confidence and box (four corners in pixels, clockwise from
top-left).")]
    Ocr(OcrArgs),
    /// Speak a text with a Piper voice into a WAV, FLAC, MP3, Opus or raw PCM file, or play it.
    #[command(after_help = "Examples:
  tessera speak \"Hello there, how are you?\" -o hello.wav
  echo \"Text from a pipe.\" | tessera speak -o piped.mp3
  tessera speak \"Small and clear.\" -o small.opus
  tessera speak \"Slowly now.\" --speed 0.8 -o - | aplay
  tessera speak \"Out loud, as it is made.\" --play

The format follows the file's extension (.wav, .flac, .mp3, .opus, .pcm), or --format. MP3 is
64 kbit/s at the voice's rate; Opus is Ogg Opus at 48 kHz. To standard output (-o -) the audio
streams as it is synthesized. --play needs a build with `--features play` (ALSA on Linux:
libasound2-dev to build). Piper voices need espeak-ng's library for phonemes (Debian/Ubuntu:
apt-get install libespeak-ng1).")]
    Speak(SpeakArgs),
    /// Talk with an LLM by voice: speech in, Whisper, the LLM, a Piper voice out, in one process.
    #[command(after_help = "Examples:
  tessera voice --input question.wav --output answer.wav
  tessera voice --input question.wav --output answer.wav --silence-ms 300 --target-ms 400 -v
  tessera voice --input two-questions.wav --output answers.wav --llm qwen2.5-coder-0.5b-instruct
  tessera voice --mic                       # a build with --features play; use headphones

The input is fed in 20 ms frames at real-time pace (--fast feeds it at once), as a microphone
would: Silero VAD finds each turn, Whisper transcribes it, the LLM answers with the
conversation's history and the voice speaks each clause as soon as the LLM has written it. Speech
during a reply interrupts it. Each turn prints where its time went, from the last voiced frame:
end of speech detected, transcript, first token, first clause, first audio.")]
    Voice(VoiceArgs),
    /// Transcribe speech with Whisper (or translate it into English): text, subtitles or JSON.
    #[command(after_help = "Examples:
  tessera transcribe interview.mp3
  tessera transcribe --format srt talk.wav > talk.srt
  tessera transcribe --format vtt --output-dir subs/ part1.flac part2.flac
  tessera transcribe --language de --translate rede.wav
  tessera transcribe --format json --word-timestamps clip.wav
  tessera transcribe --model whisper-tiny.en notes.ogg

Reads WAV, FLAC, MP3 and OGG/Vorbis at any rate. Silence is skipped with Silero VAD (pulled on
first use, 2 MB); the language is detected when --language is not given.")]
    Transcribe(TranscribeArgs),
    /// Measure throughput and latency.
    #[command(subcommand)]
    Bench(BenchCommand),
}

/// How models run; shared by every verb that runs one.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Where to run: auto, cpu, cuda, tensorrt or coreml. Unavailable devices fall back to the CPU with a warning.
    #[arg(long, env = "TESSERA_DEVICE", default_value = "auto")]
    pub device: Device,
    /// Threads inside one ONNX Runtime operator (0: one per physical core).
    #[arg(long, env = "TESSERA_THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Threads running independent ONNX Runtime operators in parallel (0: sequential execution).
    #[arg(long, env = "TESSERA_INTER_THREADS", default_value_t = 0)]
    pub inter_threads: usize,
    /// ONNX Runtime graph optimization: disable, basic, extended or all.
    #[arg(long, env = "TESSERA_GRAPH_OPTIMIZATION", default_value = "all")]
    pub graph_optimization: OptimizationLevel,
    /// Most padded tokens (rows × longest) in one engine call.
    #[arg(long, env = "TESSERA_MAX_BATCH_TOKENS", default_value_t = 16_384)]
    pub max_batch_tokens: usize,
    /// Most input pixels (images × the model's input size) in one vision engine call: concurrent
    /// image requests are merged up to it.
    #[arg(long, env = "TESSERA_MAX_BATCH_PIXELS", default_value_t = tessera_tasks::DEFAULT_MAX_BATCH_PIXELS)]
    pub max_batch_pixels: usize,
    /// Milliseconds the batcher waits for more requests once several arrive together.
    #[arg(long, env = "TESSERA_BATCH_WAIT_MS", default_value_t = 2)]
    pub batch_wait_ms: u64,
    /// Requests each model may queue; beyond that the server answers 503 with Retry-After.
    #[arg(long, env = "TESSERA_QUEUE_CAPACITY", default_value_t = 256)]
    pub queue_capacity: usize,
    /// Copies of each model that runs in batches (vision, embeddings, VAD, Whisper; not LLMs or
    /// voices), each with its own session and thread, sharing one queue. Under concurrent
    /// requests, N sessions of cores/N threads each get more through than one session on all
    /// the cores (detection: 1.1-1.2x with 2 on 2 cores), at the cost of each request's
    /// latency and N times the memory.
    #[arg(long, env = "TESSERA_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub replicas: u16,
    /// LLMs: KV cache size in tokens, shared by the sequences decoded together (default: the
    /// model's trained context, at most 8192; a model's catalog options may set it).
    #[arg(long, env = "TESSERA_CTX_SIZE")]
    pub ctx_size: Option<u32>,
    /// LLMs: sequences decoded together (continuous batching; default 8).
    #[arg(long, env = "TESSERA_PARALLEL")]
    pub parallel: Option<u32>,
    /// LLMs: most tokens in one decode call (prompt chunks plus one per generating sequence;
    /// default 512).
    #[arg(long, env = "TESSERA_BATCH_SIZE")]
    pub batch_size: Option<u32>,
    /// LLMs: CPU threads (default: one per physical core).
    #[arg(long, env = "TESSERA_LLM_THREADS")]
    pub llm_threads: Option<u32>,
    /// LLMs: KV cache type: f16 (default), f32, bf16, q8_0 or q4_0.
    #[arg(long, env = "TESSERA_KV_CACHE_TYPE")]
    pub kv_cache_type: Option<String>,
    /// LLMs: flash attention: auto (default), on or off.
    #[arg(long, env = "TESSERA_FLASH_ATTN")]
    pub flash_attn: Option<String>,
    /// LLMs: layers offloaded to the GPU (default: all, when built with cuda, metal or vulkan
    /// and a GPU is present; 0 keeps them on the CPU).
    #[arg(long, env = "TESSERA_GPU_LAYERS")]
    pub gpu_layers: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TESSERA_HOST", default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 picks a free one and prints it).
    #[arg(long, env = "TESSERA_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Models to pull and load at start (repeat the flag; `--preload ''` for none); others load on
    /// first request.
    #[arg(
        long = "preload",
        alias = "model",
        env = "TESSERA_PRELOAD",
        value_delimiter = ',',
        default_value = "all-minilm-l6-v2-int8"
    )]
    pub preload: Vec<String>,
    /// Largest request body, in bytes.
    #[arg(long, env = "TESSERA_BODY_LIMIT", default_value_t = 2 * 1024 * 1024)]
    pub body_limit: usize,
    /// Largest file upload (audio) on the routes that take files, in bytes.
    #[arg(long, env = "TESSERA_UPLOAD_LIMIT", default_value_t = 64 * 1024 * 1024)]
    pub upload_limit: usize,
    /// Seconds a request may take before it is answered with 504 and its work is cancelled.
    #[arg(long, env = "TESSERA_REQUEST_TIMEOUT", default_value_t = 120)]
    pub request_timeout: u64,
    /// Realtime voice sessions (`/v1/realtime`) open at once; one more is refused with 503.
    #[arg(long, env = "TESSERA_MAX_REALTIME_SESSIONS", default_value_t = 4)]
    pub max_realtime_sessions: usize,
    /// The speech-to-text model of realtime sessions.
    #[arg(long, env = "TESSERA_REALTIME_STT", default_value = "whisper-tiny.en")]
    pub realtime_stt: String,
    /// The LLM of realtime sessions (a client's `?model=` naming a chat model overrides it).
    #[arg(
        long,
        env = "TESSERA_REALTIME_LLM",
        default_value = "smollm2-135m-instruct"
    )]
    pub realtime_llm: String,
    /// The voice of realtime sessions.
    #[arg(
        long,
        env = "TESSERA_REALTIME_TTS",
        default_value = "piper-en-us-joe-medium"
    )]
    pub realtime_tts: String,
    /// Seconds to let in-flight requests finish after SIGTERM or Ctrl-C; then the server exits
    /// even if a download or a load is still running.
    #[arg(long, env = "TESSERA_SHUTDOWN_GRACE", default_value_t = 30)]
    pub shutdown_grace: u64,
    /// An API key clients send as `Authorization: Bearer KEY`; with one, every /v1 route needs a key. Repeat the flag; TESSERA_API_KEY takes several, comma-separated. Without any key every route is open.
    #[arg(
        long = "api-key",
        env = "TESSERA_API_KEY",
        value_name = "KEY",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub api_keys: Vec<Secret>,
    /// A file of API keys, one per line; blank lines and lines starting with # are ignored.
    #[arg(long, env = "TESSERA_API_KEY_FILE", value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,
    /// An admin key: opens every route, and only admin keys open the admin routes (pull, load, unload). Repeat the flag; TESSERA_ADMIN_KEY takes several, comma-separated.
    #[arg(
        long = "admin-key",
        env = "TESSERA_ADMIN_KEY",
        value_name = "KEY",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub admin_keys: Vec<Secret>,
    /// A key for /metrics alone (an admin key opens it too); without it /metrics is open.
    #[arg(
        long,
        env = "TESSERA_METRICS_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub metrics_key: Option<Secret>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Which models may be served, and how long they stay in memory.
#[derive(Debug, Clone, Args)]
pub struct RuntimeArgs {
    /// A folder whose models may be requested by relative name (repeat the flag). Requests can
    /// name catalog ids and models under these folders, nothing else on the file system.
    #[arg(long = "model-dir", env = "TESSERA_MODEL_DIR", value_delimiter = ',')]
    pub model_dirs: Vec<PathBuf>,
    /// Unload a model unused this long (e.g. 30s, 5m, 1h; 0 never unloads).
    #[arg(long, env = "TESSERA_IDLE_UNLOAD", default_value = "5m", value_parser = parse_duration)]
    pub idle_unload: Duration,
    /// Most memory all loaded models may hold (e.g. 8GiB, 500MB, 60%; default: 75% of physical
    /// memory). Least recently used idle models are unloaded to make room.
    #[arg(long, env = "TESSERA_MEMORY_BUDGET", value_parser = parse_budget)]
    pub memory_budget: Option<u64>,
    /// A model that is never unloaded (repeat the flag).
    #[arg(long = "pin", env = "TESSERA_PIN", value_delimiter = ',')]
    pub pin: Vec<String>,
    /// The first wait before retrying a model that failed to load; it doubles after each failure
    /// up to 5 minutes. Meanwhile requests get the failure's cause at once.
    #[arg(long, env = "TESSERA_LOAD_COOLDOWN", default_value = "2s", value_parser = parse_duration)]
    pub load_cooldown: Duration,
    /// Requests pre-processed (tokenized) at once; beyond that the server answers 503 with
    /// Retry-After (default: 16 per core).
    #[arg(long, env = "TESSERA_MAX_PREPROCESSING")]
    pub max_preprocessing: Option<usize>,
    /// Most inputs in one embeddings request.
    #[arg(long, env = "TESSERA_MAX_INPUTS", default_value_t = 2048)]
    pub max_inputs: usize,
    /// Most tokens, summed over the inputs of one request.
    #[arg(long, env = "TESSERA_MAX_REQUEST_TOKENS", default_value_t = 300_000)]
    pub max_request_tokens: usize,
    /// Longest audio accepted in one request, in seconds.
    #[arg(long, env = "TESSERA_MAX_AUDIO_SECONDS", default_value_t = 3600)]
    pub max_audio_seconds: u32,
    /// Largest image accepted, in pixels (width × height, read from the header before any pixel
    /// is decoded); bigger ones are a 400.
    #[arg(long, env = "TESSERA_MAX_IMAGE_PIXELS", default_value_t = 40_000_000)]
    pub max_image_pixels: u64,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    tessera_core::parse_duration(text).map_err(|e| e.to_string())
}

/// A size, or a percentage of physical memory.
fn parse_budget(text: &str) -> Result<u64, String> {
    if let Some(percent) = text.trim().strip_suffix('%') {
        let share: f64 = percent
            .trim()
            .parse()
            .ok()
            .filter(|p| (0.0..=100.0).contains(p) && *p > 0.0)
            .ok_or_else(|| format!("`{text}` is not a percentage between 0 and 100"))?;
        let total = tessera_runtime::physical_memory()
            .ok_or("this platform does not report its memory; give a size such as 8GiB")?;
        return Ok((total as f64 * share / 100.0) as u64);
    }
    tessera_core::parse_size(text).map_err(|e| e.to_string())
}

/// A secret as given on the command line; `Debug` never shows it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Secret, Self::Err> {
        Ok(Secret(text.to_string()))
    }
}

#[derive(Debug, Args)]
pub struct EmbedArgs {
    /// A catalog id or a local model folder.
    pub model: String,
    /// Texts to embed.
    pub texts: Vec<String>,
    /// Read texts from a file, one per line (`-` for standard input).
    #[arg(long, short)]
    pub file: Option<PathBuf>,
    /// Cut inputs longer than the model's limit instead of failing.
    #[arg(long)]
    pub truncate: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct SpeakArgs {
    /// The text (read from standard input when left out).
    #[arg(conflicts_with = "stdin_json")]
    pub text: Option<String>,
    /// Read newline-delimited JSON events from standard input (Claude Code's `--output-format
    /// stream-json`) and speak the assistant's text as it arrives, clause by clause; tool calls,
    /// tool results and thinking are skipped, markdown, code, links and emoji are cleaned away.
    #[arg(long)]
    pub stdin_json: bool,
    /// Translate the text into this language (code or name, e.g. `de`) with --translate-model
    /// before speaking it.
    #[arg(long)]
    pub translate: Option<String>,
    /// The LLM that translates.
    #[arg(long, default_value = "qwen2.5-coder-0.5b-instruct")]
    pub translate_model: String,
    #[cfg_attr(
        feature = "play",
        doc = "Where to write the audio (`-` for standard output); optional with --play."
    )]
    #[cfg_attr(
        not(feature = "play"),
        doc = "Where to write the audio (`-` for standard output)."
    )]
    #[cfg_attr(feature = "play", arg(long, short, required_unless_present = "play"))]
    #[cfg_attr(not(feature = "play"), arg(long, short, required = true))]
    pub output: Option<PathBuf>,
    /// Play the speech on the default audio output as it is synthesized (and write -o too, if
    /// given).
    #[cfg(feature = "play")]
    #[arg(long)]
    pub play: bool,
    /// The voice.
    #[arg(long, default_value = "piper-en-us-joe-medium")]
    pub model: String,
    /// A speaker of a multi-speaker voice (name or number).
    #[arg(long)]
    pub speaker: Option<String>,
    /// 0.25 to 4.0; 1.0 is the voice's own pace.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f32,
    /// Variation of the voice, 0 to 2 (default: the voice's, usually 0.667). With --noise-w 0
    /// too, the same text gives the same audio on every run.
    #[arg(long)]
    pub noise_scale: Option<f32>,
    /// Variation of phoneme lengths, 0 to 2 (default: the voice's, usually 0.8).
    #[arg(long)]
    pub noise_w: Option<f32>,
    /// wav, flac, mp3, opus or pcm (default: from the file's extension, else wav).
    #[arg(long)]
    pub format: Option<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

impl SpeakArgs {
    /// Whether `--play` was given (never, in a build without the `play` feature).
    pub fn play(&self) -> bool {
        #[cfg(feature = "play")]
        return self.play;
        #[cfg(not(feature = "play"))]
        return false;
    }
}

#[derive(Debug, Args)]
pub struct VoiceArgs {
    /// The spoken input: a WAV, FLAC, MP3 or Ogg file (any rate; resampled to 16 kHz).
    #[cfg_attr(feature = "play", arg(long, short, required_unless_present = "mic"))]
    #[cfg_attr(not(feature = "play"), arg(long, short, required = true))]
    pub input: Option<PathBuf>,
    /// Where to write the spoken answers (WAV, FLAC, MP3, Opus or PCM by extension).
    #[cfg_attr(feature = "play", arg(long, short, required_unless_present = "mic"))]
    #[cfg_attr(not(feature = "play"), arg(long, short, required = true))]
    pub output: Option<PathBuf>,
    /// Talk through the default microphone and hear the answers on the default output, until
    /// Ctrl-C. Use headphones: without echo cancellation the voice would interrupt itself.
    #[cfg(feature = "play")]
    #[arg(long, conflicts_with_all = ["input", "output", "fast"])]
    pub mic: bool,
    /// Feed the input as fast as the session takes it instead of at real-time pace.
    #[arg(long)]
    pub fast: bool,
    #[command(flatten)]
    pub models: VoiceModelArgs,
    /// The system prompt (default: a short-answers voice assistant).
    #[arg(long)]
    pub system: Option<String>,
    /// A speaker of a multi-speaker voice.
    #[arg(long)]
    pub speaker: Option<String>,
    /// Speaking rate, 0.25 to 4.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f32,
    /// The speaker's language for Whisper (default: detected; English-only models need none).
    #[arg(long)]
    pub language: Option<String>,
    /// Silence that ends a turn, in milliseconds: the largest part of the reply's latency.
    #[arg(long, default_value_t = 500)]
    pub silence_ms: u32,
    /// Silero probability that counts as speech.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// LLM temperature (0 always picks the most likely token).
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Longest answer in tokens.
    #[arg(long, default_value_t = 200)]
    pub max_tokens: u32,
    /// Warn about turns whose first audio comes later than this after the end of speech.
    #[arg(long)]
    pub target_ms: Option<u64>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The models of a voice session.
#[derive(Debug, Clone, Args)]
pub struct VoiceModelArgs {
    /// Speech to text.
    #[arg(long, default_value = "whisper-tiny.en")]
    pub stt: String,
    /// The LLM that answers.
    #[arg(long, default_value = "smollm2-135m-instruct")]
    pub llm: String,
    /// The voice.
    #[arg(long, default_value = "piper-en-us-joe-medium")]
    pub tts: String,
    /// Voice activity detection.
    #[arg(long, default_value = "silero-vad")]
    pub vad: String,
}

impl VoiceModelArgs {
    /// The session's models.
    pub fn models(&self) -> tessera_voice::VoiceModels {
        tessera_voice::VoiceModels {
            stt: self.stt.clone(),
            llm: self.llm.clone(),
            tts: self.tts.clone(),
            vad: self.vad.clone(),
        }
    }
}

impl VoiceArgs {
    /// Whether `--mic` was given (never, in a build without the `play` feature).
    pub fn mic(&self) -> bool {
        #[cfg(feature = "play")]
        return self.mic;
        #[cfg(not(feature = "play"))]
        return false;
    }
}

/// Output formats of `tessera transcribe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TranscriptFormat {
    /// The text alone.
    Text,
    /// Language, duration, segments with times and scores, words with --word-timestamps.
    Json,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    Vtt,
}

#[derive(Debug, Args)]
pub struct TranscribeArgs {
    /// Audio files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The speech-to-text model.
    #[arg(long, default_value = "whisper-base")]
    pub model: String,
    /// What to print.
    #[arg(long, short = 'f', value_enum, default_value_t = TranscriptFormat::Text)]
    pub format: TranscriptFormat,
    /// The spoken language (code such as en, de, fr, or name); detected when left out.
    #[arg(long, short = 'l')]
    pub language: Option<String>,
    /// Translate into English instead of transcribing (multilingual models).
    #[arg(long)]
    pub translate: bool,
    /// Time each word (in the json format).
    #[arg(long)]
    pub word_timestamps: bool,
    /// Text that comes before the audio: names, spellings, style.
    #[arg(long)]
    pub prompt: Option<String>,
    /// Beams (1: greedy).
    #[arg(long, default_value_t = 1)]
    pub beam_size: usize,
    /// The first temperature; higher ones are tried while the text looks wrong.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,
    /// Decode silence too instead of skipping what Silero VAD hears as no speech.
    #[arg(long)]
    pub no_vad: bool,
    /// Encode audio shorter than 28 s only up to 2 s after its end, with Whisper's encoding of
    /// silence for the rest of its 30-second window: 3-4x faster on clips of a few seconds, nearly
    /// always the same words (what the voice loop does; off, the whole window is encoded, as
    /// Whisper was trained)
    #[arg(long)]
    pub short_window: bool,
    /// Write each transcript to DIR/<file stem>.<txt|json|srt|vtt> instead of printing it.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct VadArgs {
    /// Audio files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The VAD model.
    #[arg(long, default_value = "silero-vad")]
    pub model: String,
    /// Speech probability at or above which a 32 ms window is speech.
    #[arg(long, default_value_t = 0.5)]
    pub threshold: f32,
    /// Speech shorter than this is dropped.
    #[arg(long, default_value_t = 250)]
    pub min_speech_ms: u32,
    /// Speech ends after this much silence.
    #[arg(long, default_value_t = 100)]
    pub min_silence_ms: u32,
    /// Added before and after each segment.
    #[arg(long, default_value_t = 30)]
    pub speech_pad_ms: u32,
    /// Print one JSON object per file instead of lines of `start end` seconds.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// The photo.
    pub image: PathBuf,
    /// Where to write the cut-out (RGBA PNG).
    #[arg(long, short)]
    pub output: PathBuf,
    /// Also write the mask (8-bit grey PNG: white is foreground).
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// The segmentation model.
    #[arg(long, default_value = "isnet-general-small")]
    pub model: String,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct DetectArgs {
    /// The photos.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// The detection model: a catalog id or an ONNX file.
    #[arg(long, default_value = "yolov8n-320-nudenet")]
    pub model: String,
    /// The confidence a box needs, 0 to 1 (default: the model's).
    #[arg(long)]
    pub confidence: Option<f32>,
    /// Boxes of one class overlapping more than this (intersection over union) keep only the
    /// most confident, 0 to 1 (default: the model's).
    #[arg(long)]
    pub iou: Option<f32>,
    /// Write the photo with the boxes drawn on it (PNG); one photo only.
    #[arg(long, value_name = "PNG")]
    pub draw: Option<PathBuf>,
    /// Print one JSON object per photo.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct PoseArgs {
    /// The photos.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// The pose model: a catalog id, or a folder with pose_detection.onnx and
    /// pose_landmark_*.onnx.
    #[arg(long, default_value = "blazepose-full")]
    pub model: String,
    /// The most people per photo.
    #[arg(long)]
    pub max_people: Option<usize>,
    /// Write the photo with each person's skeleton drawn on it (PNG); one photo only.
    #[arg(long, value_name = "PNG")]
    pub draw: Option<PathBuf>,
    /// Print one JSON object per photo.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct ClassifyArgs {
    /// The photos.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// The classification model.
    #[arg(long, default_value = "efficientnet-lite0")]
    pub model: String,
    /// How many of the most likely classes to print per photo.
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
    /// Print one JSON object per photo.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct OcrArgs {
    /// The pictures.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// The OCR model.
    #[arg(long, default_value = "pp-ocrv4")]
    pub model: String,
    /// Print one JSON object per picture: its text and its lines with confidence and box.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// Sampling flags shared by `chat` and `complete`.
#[derive(Debug, Clone, Args)]
pub struct SamplingArgs {
    /// 0 always picks the most likely token.
    #[arg(long, default_value_t = 0.7)]
    pub temperature: f32,
    /// Nucleus sampling.
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,
    /// Most tokens to generate (default: what the context has room for).
    #[arg(long)]
    pub max_tokens: Option<u32>,
    /// The same seed and input give the same output.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Text that ends the answer (repeat the flag for several).
    #[arg(long)]
    pub stop: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ChatArgs {
    /// A catalog id (such as smollm2-135m-instruct) or a local GGUF file.
    pub model: String,
    /// Ask this and print the answer; without it, standard input is the question when it is not
    /// a terminal, else the chat is interactive.
    #[arg(long, short)]
    pub prompt: Option<String>,
    /// A system prompt.
    #[arg(long)]
    pub system: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// A catalog id or a local GGUF file.
    pub model: String,
    /// The text to continue (`\n` and `\t` are read as newline and tab); standard input when
    /// left out.
    #[arg(long, short)]
    pub prompt: Option<String>,
    /// The text after the hole: the model writes the middle (needs a model with FIM tokens).
    #[arg(long)]
    pub suffix: Option<String>,
    #[command(flatten)]
    pub sampling: SamplingArgs,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Embedding throughput at several batch sizes, in-process and over HTTP.
    #[command(after_help = "Examples:
  tessera bench embed
  tessera bench embed --batches 1,8 --seconds 2 --json
  python3 bench/embed_vs_python.py      # the same sets through onnxruntime + tokenizers in Python")]
    Embed(BenchEmbedArgs),
    /// LLM speed: prompt and generation tokens/s, time to first token in-process and over HTTP,
    /// aggregate tokens/s with concurrent streams, second-turn time with the prefix cache.
    #[command(after_help = "Examples:
  tessera bench chat
  tessera bench chat --model qwen2.5-coder-0.5b-instruct --tokens 128 --rounds 5 --json
  python3 bench/chat_vs_llama_cpp_python.py      # the same, next to llama-cpp-python")]
    Chat(BenchChatArgs),
    /// Voice activity detection: microseconds per 32 ms window (Silero, in process).
    #[command(after_help = "Examples:
  tessera bench vad
  tessera bench vad --file speech.wav --rounds 5 --json
  python3 bench/vad_vs_onnxruntime.py      # the same windows through onnxruntime in Python")]
    Vad(BenchVadArgs),
    /// Text to speech: time to first audio and real-time factor for a 10-word and a 60-word text.
    #[command(after_help = "Examples:
  tessera bench speak
  tessera bench speak --rounds 5 --json
  python3 bench/speak_vs_piper.py      # the same texts through piper-tts in Python")]
    Speak(BenchSpeakArgs),
    /// Speech to text: seconds per file and real-time factor, model loaded once.
    #[command(after_help = "Examples:
  tessera bench transcribe
  tessera bench transcribe --model whisper-tiny.en --rounds 3 --json long.wav
  python3 bench/transcribe_vs_faster_whisper.py      # the same files through faster-whisper")]
    Transcribe(BenchTranscribeArgs),
    /// The voice loop: spoken questions at real-time pace, per-stage latency p50/p95.
    #[command(after_help = "Examples:
  tessera bench voice
  tessera bench voice --turns 20 --silence-ms 300 --json

Each question (spoken by tessera's own voice) is fed in 20 ms frames at real-time pace, followed
by silence until its answer ends. Times are measured from the question's last voiced frame, so
`speech_end` includes the end-of-turn silence window (--silence-ms).")]
    Voice(BenchVoiceArgs),
    /// Vision: milliseconds per image from the file's bytes to the answer; the model's task
    /// (segment, detect, pose, classify, ocr) says what is measured.
    #[command(after_help = "Examples:
  tessera bench vision ~/.cache/tessera/fixtures/astronaut.png
  tessera bench vision --task detect --concurrency 8 --json photo.jpg
  tessera bench vision --model efficientnet-lite0 --concurrency 8 ~/.cache/tessera/fixtures/dog.jpg
  python3 bench/segment_vs_onnxruntime.py      # segmentation through onnxruntime in Python
  python3 bench/detect_vs_onnxruntime.py       # detection through onnxruntime + numpy
  python3 bench/pose_vs_litert.py              # pose through ai-edge-litert (TFLite)
  python3 bench/ocr_vs_rapidocr.py             # OCR next to RapidOCR, with character accuracy")]
    Vision(BenchVisionArgs),
}

#[derive(Debug, Args)]
pub struct BenchVisionArgs {
    /// Images to run.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// What to measure, with the task's default model, when --model is not given (a local
    /// model file declares no task: --task says it).
    #[arg(long, value_enum)]
    pub task: Option<VisionTask>,
    /// The model (default: the task's default model); its task says what is measured.
    #[arg(long)]
    pub model: Option<String>,
    /// Rounds per image; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Copies of each image sent together in a round (the worker batches them).
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    /// Print one JSON object per image.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// A vision task `tessera bench vision` measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VisionTask {
    /// Background removal.
    Segment,
    /// Object detection.
    Detect,
    /// Human pose.
    Pose,
    /// Image classification.
    Classify,
    /// Text recognition.
    Ocr,
}

impl VisionTask {
    /// The model measured when `--model` is not given.
    pub fn default_model(self) -> &'static str {
        match self {
            VisionTask::Segment => "isnet-general-small",
            VisionTask::Detect => "yolov8n-320-nudenet",
            VisionTask::Pose => "blazepose-full",
            VisionTask::Classify => "efficientnet-lite0",
            VisionTask::Ocr => "pp-ocrv4",
        }
    }

    /// Its name in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            VisionTask::Segment => "segment",
            VisionTask::Detect => "detect",
            VisionTask::Pose => "pose",
            VisionTask::Classify => "classify",
            VisionTask::Ocr => "ocr",
        }
    }
}

#[derive(Debug, Args)]
pub struct BenchVoiceArgs {
    /// Turns measured.
    #[arg(long, default_value_t = 20)]
    pub turns: usize,
    /// Silence that ends a turn, in milliseconds.
    #[arg(long, default_value_t = 500)]
    pub silence_ms: u32,
    /// Longest answer in tokens.
    #[arg(long, default_value_t = 60)]
    pub max_tokens: u32,
    /// Partial transcripts while the user speaks, every this many milliseconds of new audio
    /// (0: none, only the final transcript).
    #[arg(long, default_value_t = 600)]
    pub partial_ms: u64,
    #[command(flatten)]
    pub models: VoiceModelArgs,
    /// Print each turn's stages as well.
    #[arg(long)]
    pub per_turn: bool,
    /// Print results as JSON lines.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct BenchTranscribeArgs {
    /// Audio files (default: the LibriVox clips of Debian's pocketsphinx-testdata).
    pub files: Vec<PathBuf>,
    /// The speech-to-text model.
    #[arg(long, default_value = "whisper-base")]
    pub model: String,
    /// The spoken language (left out: detected, which costs a little).
    #[arg(long, default_value = "en")]
    pub language: String,
    /// Beams (1: greedy).
    #[arg(long, default_value_t = 1)]
    pub beam_size: usize,
    /// Rounds per file; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Encode audio shorter than 28 s only up to 2 s after its end, with Whisper's encoding of
    /// silence for the rest of its 30-second window: 3-4x faster on clips of a few seconds, nearly
    /// always the same words (what the voice loop does; off, the whole window is encoded, as
    /// Whisper was trained)
    #[arg(long)]
    pub short_window: bool,
    /// Print results as JSON lines (with each file's text).
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct BenchSpeakArgs {
    /// The voice.
    #[arg(long, default_value = "piper-en-us-joe-medium")]
    pub model: String,
    /// Measure the speak pipeline instead (`speak --stdin-json`): from a stream-json line's
    /// arrival to its first audio sample, over this many lines (a sentence each, 1.5 s apart).
    #[arg(long, value_name = "LINES")]
    pub pipeline: Option<usize>,
    /// Rounds per text; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Print results as JSON lines.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct BenchVadArgs {
    /// The VAD model.
    #[arg(long, default_value = "silero-vad")]
    pub model: String,
    /// The audio to run (default: a LibriVox clip from Debian's pocketsphinx-testdata).
    #[arg(
        long,
        default_value = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav"
    )]
    pub file: PathBuf,
    /// Passes over the audio; the median pass is reported.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct BenchChatArgs {
    /// The model to measure.
    #[arg(long, default_value = "smollm2-135m-instruct")]
    pub model: String,
    /// Tokens generated per stream.
    #[arg(long, default_value_t = 128)]
    pub tokens: u32,
    /// Tokens of the prompt for the first-token measurements.
    #[arg(long, default_value_t = 200)]
    pub prompt_tokens: usize,
    /// Rounds per measurement; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Concurrent streams for the aggregate measurements.
    #[arg(long, value_delimiter = ',', default_value = "4,8")]
    pub streams: Vec<usize>,
    /// Print results as JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Print the prompt's words (each round prefixes "Round N. ") and exit, so a peer can run
    /// the same prompt.
    #[arg(long)]
    pub print_prompt: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

#[derive(Debug, Args)]
pub struct BenchEmbedArgs {
    /// The model to measure.
    #[arg(long, default_value = "all-minilm-l6-v2-int8")]
    pub model: String,
    /// Batch sizes (sentences per request).
    #[arg(long, value_delimiter = ',', default_value = "1,8,32,64")]
    pub batches: Vec<usize>,
    /// Seconds to run each measurement for (at least one request each).
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Skip the HTTP measurements.
    #[arg(long)]
    pub no_http: bool,
    /// Print results as JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Write the sentence sets used (JSON) to this file, for peers to run the same input.
    #[arg(long)]
    pub write_sets: Option<PathBuf>,
    #[command(flatten)]
    pub engine: EngineArgs,
}
