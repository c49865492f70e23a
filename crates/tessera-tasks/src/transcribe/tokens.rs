//! Whisper's vocabulary: token strings (CTranslate2 prompts are strings), the special tokens
//! the decoder is steered with, text decoding, and the languages the model knows.

use std::collections::HashMap;
use std::path::Path;

use tokenizers::Tokenizer;

use crate::TaskError;

/// Whisper's languages: code and English name, in the order of their tokens.
pub const LANGUAGES: &[(&str, &str)] = &[
    ("en", "english"),
    ("zh", "chinese"),
    ("de", "german"),
    ("es", "spanish"),
    ("ru", "russian"),
    ("ko", "korean"),
    ("fr", "french"),
    ("ja", "japanese"),
    ("pt", "portuguese"),
    ("tr", "turkish"),
    ("pl", "polish"),
    ("ca", "catalan"),
    ("nl", "dutch"),
    ("ar", "arabic"),
    ("sv", "swedish"),
    ("it", "italian"),
    ("id", "indonesian"),
    ("hi", "hindi"),
    ("fi", "finnish"),
    ("vi", "vietnamese"),
    ("he", "hebrew"),
    ("uk", "ukrainian"),
    ("el", "greek"),
    ("ms", "malay"),
    ("cs", "czech"),
    ("ro", "romanian"),
    ("da", "danish"),
    ("hu", "hungarian"),
    ("ta", "tamil"),
    ("no", "norwegian"),
    ("th", "thai"),
    ("ur", "urdu"),
    ("hr", "croatian"),
    ("bg", "bulgarian"),
    ("lt", "lithuanian"),
    ("la", "latin"),
    ("mi", "maori"),
    ("ml", "malayalam"),
    ("cy", "welsh"),
    ("sk", "slovak"),
    ("te", "telugu"),
    ("fa", "persian"),
    ("lv", "latvian"),
    ("bn", "bengali"),
    ("sr", "serbian"),
    ("az", "azerbaijani"),
    ("sl", "slovenian"),
    ("kn", "kannada"),
    ("et", "estonian"),
    ("mk", "macedonian"),
    ("br", "breton"),
    ("eu", "basque"),
    ("is", "icelandic"),
    ("hy", "armenian"),
    ("ne", "nepali"),
    ("mn", "mongolian"),
    ("bs", "bosnian"),
    ("kk", "kazakh"),
    ("sq", "albanian"),
    ("sw", "swahili"),
    ("gl", "galician"),
    ("mr", "marathi"),
    ("pa", "punjabi"),
    ("si", "sinhala"),
    ("km", "khmer"),
    ("sn", "shona"),
    ("yo", "yoruba"),
    ("so", "somali"),
    ("af", "afrikaans"),
    ("oc", "occitan"),
    ("ka", "georgian"),
    ("be", "belarusian"),
    ("tg", "tajik"),
    ("sd", "sindhi"),
    ("gu", "gujarati"),
    ("am", "amharic"),
    ("yi", "yiddish"),
    ("lo", "lao"),
    ("uz", "uzbek"),
    ("fo", "faroese"),
    ("ht", "haitian creole"),
    ("ps", "pashto"),
    ("tk", "turkmen"),
    ("nn", "nynorsk"),
    ("mt", "maltese"),
    ("sa", "sanskrit"),
    ("lb", "luxembourgish"),
    ("my", "myanmar"),
    ("bo", "tibetan"),
    ("tl", "tagalog"),
    ("mg", "malagasy"),
    ("as", "assamese"),
    ("tt", "tatar"),
    ("haw", "hawaiian"),
    ("ln", "lingala"),
    ("ha", "hausa"),
    ("ba", "bashkir"),
    ("jw", "javanese"),
    ("su", "sundanese"),
    ("yue", "cantonese"),
];

/// The English name of a language code (`en` → `english`).
pub fn language_name(code: &str) -> Option<&'static str> {
    LANGUAGES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, name)| *name)
}

/// A language code from a code or an English name, any case (`German`, `de` → `de`).
pub fn language_code(language: &str) -> Option<&'static str> {
    let wanted = language.trim().to_ascii_lowercase();
    LANGUAGES
        .iter()
        .find(|(code, name)| *code == wanted || *name == wanted)
        .map(|(code, _)| *code)
}

/// The vocabulary of one Whisper model.
pub struct Vocabulary {
    strings: Vec<String>,
    /// Each token string's id.
    index: HashMap<String, u32>,
    tokenizer: Tokenizer,
    /// End of text: ids below it are text.
    pub eot: u32,
    /// The first timestamp token, `<|0.00|>`; each next one is 20 ms later.
    pub timestamp_begin: u32,
    /// Languages this model has tokens for (codes).
    languages: Vec<&'static str>,
}

impl std::fmt::Debug for Vocabulary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vocabulary")
            .field("tokens", &self.strings.len())
            .field("eot", &self.eot)
            .field("timestamp_begin", &self.timestamp_begin)
            .finish_non_exhaustive()
    }
}

/// Start of transcript.
pub const SOT: &str = "<|startoftranscript|>";
/// Marks the previous text (the prompt) before the start of transcript.
pub const SOT_PREV: &str = "<|startofprev|>";
/// Task token: transcribe in the spoken language.
pub const TRANSCRIBE: &str = "<|transcribe|>";
/// Task token: translate to English.
pub const TRANSLATE: &str = "<|translate|>";
const EOT: &str = "<|endoftext|>";
/// Asks for text without timestamp tokens.
pub const NO_TIMESTAMPS: &str = "<|notimestamps|>";

impl Vocabulary {
    /// Reads `vocabulary.txt` (one token string per line, as CTranslate2 writes it) and
    /// `tokenizer.json` from a model folder.
    pub fn load(dir: &Path) -> Result<Vocabulary, TaskError> {
        let path = dir.join("vocabulary.txt");
        let text = std::fs::read_to_string(&path).map_err(|e| TaskError::ModelFile {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let strings: Vec<String> = text.lines().map(str::to_string).collect();
        let tokenizer_path = dir.join("tokenizer.json");
        let tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| TaskError::ModelFile {
                path: tokenizer_path,
                message: e.to_string(),
            })?;
        let index: HashMap<String, u32> = strings
            .iter()
            .enumerate()
            .map(|(id, token)| (token.clone(), id as u32))
            .collect();
        let find = |token: &str| {
            index
                .get(token)
                .copied()
                .ok_or_else(|| TaskError::ModelFile {
                    path: path.clone(),
                    message: format!("no {token} token: not a Whisper vocabulary"),
                })
        };
        let eot = find(EOT)?;
        let timestamp_begin = find(NO_TIMESTAMPS)? + 1;
        let languages = LANGUAGES
            .iter()
            .filter(|(code, _)| index.contains_key(&format!("<|{code}|>")))
            .map(|(code, _)| *code)
            .collect();
        Ok(Vocabulary {
            strings,
            index,
            tokenizer,
            eot,
            timestamp_begin,
            languages,
        })
    }

    /// The string of token `id` (byte-level BPE: `Ġ` stands for a space).
    pub fn string(&self, id: u32) -> &str {
        self.strings.get(id as usize).map_or("", String::as_str)
    }

    /// Whether `id` is a timestamp token.
    pub fn is_timestamp(&self, id: u32) -> bool {
        id >= self.timestamp_begin
    }

    /// The time of timestamp token `id`, in seconds from its window's start.
    pub fn timestamp_seconds(&self, id: u32) -> f64 {
        f64::from(id.saturating_sub(self.timestamp_begin)) * 0.02
    }

    /// Whether the model has a token for language `code`.
    pub fn knows_language(&self, code: &str) -> bool {
        self.languages.contains(&code)
    }

    /// The text of tokens, special and timestamp tokens left out.
    pub fn text(&self, tokens: &[u32]) -> Result<String, TaskError> {
        let text: Vec<u32> = tokens.iter().copied().filter(|&t| t < self.eot).collect();
        self.tokenizer
            .decode(&text, true)
            .map_err(|e| TaskError::Internal(format!("decoding Whisper tokens: {e}")))
    }

    /// Token strings of `text`, as a prompt carries them.
    pub fn encode(&self, text: &str) -> Result<Vec<String>, TaskError> {
        let encoding = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| TaskError::Internal(format!("encoding a Whisper prompt: {e}")))?;
        Ok(encoding
            .get_ids()
            .iter()
            .map(|&id| self.string(id).to_string())
            .collect())
    }

    /// Whether token `id` begins a new word (its string starts with a space).
    pub fn starts_word(&self, id: u32) -> bool {
        self.string(id).starts_with('Ġ')
    }

    /// The id of a token string.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.index.get(token).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_by_code_or_name() {
        assert_eq!(language_code("de"), Some("de"));
        assert_eq!(language_code("German"), Some("de"));
        assert_eq!(language_code(" EN "), Some("en"));
        assert_eq!(language_code("klingon"), None);
        assert_eq!(language_name("yue"), Some("cantonese"));
        assert_eq!(LANGUAGES.len(), 100);
    }
}
