//! What a voice session runs and how it behaves.

use std::time::Duration;

/// The models a voice session holds, by catalog id or path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceModels {
    /// Speech to text (Whisper).
    pub stt: String,
    /// The LLM that answers.
    pub llm: String,
    /// Text to speech (a Piper voice).
    pub tts: String,
    /// Voice activity detection (Silero).
    pub vad: String,
}

impl Default for VoiceModels {
    fn default() -> Self {
        VoiceModels {
            stt: "whisper-tiny.en".into(),
            llm: "smollm2-135m-instruct".into(),
            tts: "piper-en-us-joe-medium".into(),
            vad: "silero-vad".into(),
        }
    }
}

/// Server-side turn detection, with OpenAI's `server_vad` semantics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TurnDetection {
    /// Silero probability at or above which a window is speech (0 to 1).
    pub threshold: f32,
    /// Audio kept before the detected start of speech.
    pub prefix_padding_ms: u32,
    /// Silence after speech that ends the turn. The largest item of the reply's latency: the
    /// turn cannot end sooner.
    pub silence_duration_ms: u32,
    /// Answer as soon as a turn ends.
    pub create_response: bool,
    /// Speech during a reply cancels it (barge-in).
    pub interrupt_response: bool,
}

impl Default for TurnDetection {
    /// OpenAI's defaults.
    fn default() -> Self {
        TurnDetection {
            threshold: 0.5,
            prefix_padding_ms: 300,
            silence_duration_ms: 500,
            create_response: true,
            interrupt_response: true,
        }
    }
}

/// The system prompt a session starts with.
pub const DEFAULT_INSTRUCTIONS: &str = "You are a friendly voice assistant. Keep answers short: one or two spoken sentences, no lists.";

/// How a session listens and answers; may change while it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct VoiceSettings {
    /// The system prompt.
    pub instructions: String,
    /// `None` is push-to-talk: the caller commits the audio and asks for a reply.
    pub turn_detection: Option<TurnDetection>,
    /// Answer in speech (text too); off, in text only.
    pub audio_output: bool,
    /// A speaker of a multi-speaker voice.
    pub voice: Option<String>,
    /// Speaking rate; 1 is the voice's own.
    pub speed: f32,
    /// The speaker's language for Whisper (`None` detects it).
    pub language: Option<String>,
    /// Text that helps Whisper with names and spellings.
    pub transcription_prompt: Option<String>,
    /// Send partial transcripts while the user speaks, decoding again after this much new audio.
    pub partial_every: Option<Duration>,
    /// LLM sampling temperature (0 is greedy).
    pub temperature: f32,
    /// Longest reply in tokens.
    pub max_output_tokens: Option<u32>,
    /// A turn whose first audio comes later than this after the end of speech logs a warning.
    pub target: Option<Duration>,
}

impl Default for VoiceSettings {
    fn default() -> Self {
        VoiceSettings {
            instructions: DEFAULT_INSTRUCTIONS.into(),
            turn_detection: Some(TurnDetection::default()),
            audio_output: true,
            voice: None,
            speed: 1.0,
            language: None,
            transcription_prompt: None,
            partial_every: Some(Duration::from_millis(600)),
            temperature: 0.0,
            max_output_tokens: Some(200),
            target: None,
        }
    }
}
