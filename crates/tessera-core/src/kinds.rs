//! Small closed sets of names shared by the catalog, the CLI and the wire.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The error for a name that is not one of a closed set; it lists the names that are.
#[derive(Debug, thiserror::Error)]
#[error("unknown {kind} `{given}`; expected one of: {expected}")]
pub struct ParseKindError {
    kind: &'static str,
    given: String,
    expected: String,
}

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The lowercase name used in the catalog, on the command line and on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseKindError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let lower = s.to_ascii_lowercase();
                $name::ALL.iter().copied().find(|v| v.as_str() == lower).ok_or_else(|| ParseKindError {
                    kind: $what,
                    given: s.to_string(),
                    expected: $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", "),
                })
            }
        }
    };
}

named_enum! {
    /// A kind of work a model does; one task trait each.
    Task, "task" {
        /// Text to a fixed-size vector.
        Embed => "embed",
        /// Chat, completion and fill-in-the-middle generation.
        Chat => "chat",
        /// Speech to text.
        Transcribe => "transcribe",
        /// Text to speech.
        Speech => "speech",
        /// Voice activity detection.
        Vad => "vad",
        /// Optical character recognition.
        Ocr => "ocr",
        /// Object detection.
        Detect => "detect",
        /// Foreground (background removal) segmentation.
        Segment => "segment",
        /// Image classification: labels with scores for a whole picture.
        Classify => "classify",
        /// Human pose: people and their body landmarks.
        Pose => "pose",
    }
}

named_enum! {
    /// The engine that runs a model's weights.
    EngineKind, "engine" {
        /// ONNX Runtime, through `ort`.
        Onnx => "onnx",
        /// candle, for safetensors weights.
        Candle => "candle",
        /// llama.cpp, for GGUF weights.
        Gguf => "gguf",
        /// CTranslate2 folders, converted at pull time for candle.
        Ctranslate2 => "ctranslate2",
    }
}

named_enum! {
    /// Where inference runs. Anything but `cpu` falls back to the CPU with a log line that says why.
    #[derive(Default)]
    Device, "device" {
        /// The best device compiled in and present.
        #[default]
        Auto => "auto",
        /// The CPU.
        Cpu => "cpu",
        /// An NVIDIA GPU through CUDA.
        Cuda => "cuda",
        /// An NVIDIA GPU through TensorRT.
        TensorRt => "tensorrt",
        /// Apple's CoreML.
        CoreMl => "coreml",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_list_the_choices() {
        for task in Task::ALL {
            assert_eq!(task.as_str().parse::<Task>().unwrap(), *task);
        }
        assert_eq!("TensorRT".parse::<Device>().unwrap(), Device::TensorRt);
        let err = "gpu".parse::<Device>().unwrap_err().to_string();
        assert!(err.contains("unknown device `gpu`"), "{err}");
        assert!(err.contains("cuda"), "{err}");
    }
}
