//! Phonemes from espeak-ng, loaded at run time.
//!
//! espeak-ng is GPL-3.0, so tessera never links it: the shared library (Debian's
//! `libespeak-ng1`) is opened with `dlopen` the first time a voice needs it. Its state is global
//! and not thread-safe, so every call goes through one lock.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::{Mutex, OnceLock};

use crate::TaskError;

/// espeak-ng's `AUDIO_OUTPUT_SYNCHRONOUS`: no audio device, no background thread.
const AUDIO_OUTPUT_SYNCHRONOUS: c_int = 2;
/// `espeakCHARS_UTF8`.
const CHARS_UTF8: c_int = 1;
/// `phonememode` bit 1: IPA rather than espeak's ASCII phoneme names.
const PHONEMES_IPA: c_int = 0x02;
/// `espeakINITIALIZE_DONT_EXIT`: return an error rather than exit the process.
const INITIALIZE_DONT_EXIT: c_int = 0x8000;

type Initialize = unsafe extern "C" fn(c_int, c_int, *const c_char, c_int) -> c_int;
type SetVoiceByName = unsafe extern "C" fn(*const c_char) -> c_int;
type TextToPhonemes = unsafe extern "C" fn(*mut *const c_void, c_int, c_int) -> *const c_char;

struct Espeak {
    set_voice: SetVoiceByName,
    text_to_phonemes: TextToPhonemes,
    voice: Option<String>,
    // Keeps the library mapped while the function pointers above are used.
    _library: libloading::Library,
}

static ESPEAK: OnceLock<Result<Mutex<Espeak>, String>> = OnceLock::new();

/// The library names tried, in order: `TESSERA_ESPEAK_LIB`, then the usual sonames.
fn candidates() -> Vec<String> {
    let mut names = Vec::new();
    if let Ok(path) = std::env::var("TESSERA_ESPEAK_LIB") {
        names.push(path);
    }
    names.extend(
        [
            "libespeak-ng.so.1",
            "libespeak-ng.so",
            "libespeak-ng.1.dylib",
            "libespeak-ng.dylib",
        ]
        .map(String::from),
    );
    names
}

fn open() -> Result<Mutex<Espeak>, String> {
    let mut tried = Vec::new();
    for name in candidates() {
        // SAFETY: loading espeak-ng runs no initialisers with preconditions of ours.
        let library = match unsafe { libloading::Library::new(&name) } {
            Ok(library) => library,
            Err(error) => {
                tried.push(format!("{name}: {error}"));
                continue;
            }
        };
        // SAFETY: the symbols have these C signatures in every espeak-ng since 1.49.
        let (initialize, set_voice, text_to_phonemes) = unsafe {
            let initialize: Initialize = *library
                .get(b"espeak_Initialize\0")
                .map_err(|e| format!("{name}: {e}"))?;
            let set_voice: SetVoiceByName = *library
                .get(b"espeak_SetVoiceByName\0")
                .map_err(|e| format!("{name}: {e}"))?;
            let text_to_phonemes: TextToPhonemes = *library
                .get(b"espeak_TextToPhonemes\0")
                .map_err(|e| format!("{name}: {e}"))?;
            (initialize, set_voice, text_to_phonemes)
        };
        // SAFETY: a null data path means espeak-ng's compiled-in default.
        let rate = unsafe {
            initialize(
                AUDIO_OUTPUT_SYNCHRONOUS,
                0,
                std::ptr::null(),
                INITIALIZE_DONT_EXIT,
            )
        };
        if rate <= 0 {
            return Err(format!(
                "{name} loaded but could not initialise (is espeak-ng-data installed?)"
            ));
        }
        tracing::debug!(library = %name, "espeak-ng loaded");
        return Ok(Mutex::new(Espeak {
            set_voice,
            text_to_phonemes,
            voice: None,
            _library: library,
        }));
    }
    Err(format!(
        "espeak-ng is not installed; Piper voices need it for phonemes (Debian/Ubuntu: apt-get install libespeak-ng1; or set TESSERA_ESPEAK_LIB to the library). Tried: {}",
        tried.join("; ")
    ))
}

/// The library, opened on first use; the error says how to install it.
fn espeak() -> Result<&'static Mutex<Espeak>, TaskError> {
    ESPEAK
        .get_or_init(open)
        .as_ref()
        .map_err(|message| TaskError::Unsupported(message.clone()))
}

/// Whether espeak-ng can be loaded; the error says how to install it.
pub fn available() -> Result<(), TaskError> {
    espeak().map(|_| ())
}

/// The IPA phonemes of `text` in `voice` (an espeak-ng voice name such as `en-us`), one string
/// per clause as espeak-ng splits them, words separated by spaces. Punctuation is not kept.
pub fn phonemize(text: &str, voice: &str) -> Result<Vec<String>, TaskError> {
    // A panic while the lock was held leaves espeak's own state as good as any.
    let mut espeak = espeak()?
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    if espeak.voice.as_deref() != Some(voice) {
        let name = CString::new(voice)
            .map_err(|_| TaskError::InvalidInput(format!("bad espeak voice name {voice:?}")))?;
        // SAFETY: `name` is a valid C string for the call.
        if unsafe { (espeak.set_voice)(name.as_ptr()) } != 0 {
            return Err(TaskError::Unsupported(format!(
                "espeak-ng has no voice `{voice}` (is espeak-ng-data complete?)"
            )));
        }
        espeak.voice = Some(voice.to_string());
    }
    // Interior NULs would end the text early; they carry nothing speakable.
    let text = CString::new(text.replace('\0', " "))
        .map_err(|_| TaskError::Internal("NUL left in text".into()))?;
    let mut clauses = Vec::new();
    let mut cursor: *const c_void = text.as_ptr().cast();
    while !cursor.is_null() {
        // SAFETY: `cursor` points into `text`, which outlives the loop; espeak-ng advances it to
        // the next clause or sets it to null at the end, and returns a buffer of its own that
        // is valid until the next call, copied out at once.
        let phonemes = unsafe { (espeak.text_to_phonemes)(&mut cursor, CHARS_UTF8, PHONEMES_IPA) };
        if phonemes.is_null() {
            break;
        }
        // SAFETY: espeak-ng returns a NUL-terminated string.
        let clause = unsafe { CStr::from_ptr(phonemes) }
            .to_string_lossy()
            .trim()
            .to_string();
        if !clause.is_empty() {
            clauses.push(clause);
        }
    }
    Ok(clauses)
}
