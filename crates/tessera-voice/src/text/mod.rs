//! Text on its way to a voice, with no audio and no models: pure functions and small state
//! machines, each tested alone.
//!
//! - [`stream_json`]: which text of Claude Code's `stream-json` output is to be spoken.
//! - [`clauses`]: text arriving in pieces, cut into clauses as soon as each is complete, so the
//!   voice can start before the text ends.
//! - [`clean`]: a clause of markdown made into plain sentences for a TTS voice.
//!
//! The order is that of the pipelines: lines → [`stream_json::StreamJsonReader`] → text →
//! [`clauses::ClauseChunker`] → clauses → [`clean::for_speech`] → speech.

pub mod clauses;
pub mod clean;
pub mod stream_json;

#[cfg(test)]
mod tests {
    use super::clauses::{ClauseChunker, ClauseOptions};
    use super::clean::for_speech;
    use super::stream_json::{Speakable, StreamJsonReader};

    const FIXTURE: &str = include_str!("../../tests/fixtures/claude-stream.jsonl");

    /// What the speak pipeline says for the fixture, clause by clause, and how many lines it
    /// could not read.
    fn speak(lines: &str) -> (Vec<String>, usize) {
        let mut reader = StreamJsonReader::new();
        let mut chunker = ClauseChunker::new(ClauseOptions::default());
        let mut clauses = Vec::new();
        let mut bad = 0;
        for line in lines.lines() {
            let Ok(speakables) = reader.line(line) else {
                bad += 1;
                continue;
            };
            for speakable in speakables {
                match speakable {
                    Speakable::Text(text) => clauses.extend(chunker.push(&text)),
                    Speakable::BlockEnd => clauses.extend(chunker.finish()),
                }
            }
        }
        clauses.extend(chunker.finish());
        let spoken = clauses
            .iter()
            .map(|clause| for_speech(clause))
            .filter(|text| text.chars().any(char::is_alphanumeric))
            .collect();
        (spoken, bad)
    }

    #[test]
    fn the_fixture_speaks_only_the_assistant_text_once() {
        let (spoken, bad) = speak(FIXTURE);
        assert_eq!(bad, 1, "the one truncated line");
        assert_eq!(
            spoken,
            [
                "I checked the project files.",
                "The build is ready and all tests pass.",
                "Next, I will update the readme and open a pull request.",
                "Update the readme file.",
                "Run the tests again.",
                "See the notes at a link.",
                "Thank you for waiting.",
            ]
        );
        let all = spoken.join(" ").to_lowercase();
        for forbidden in [
            "pineapple",
            "zebra",
            "carburetor",
            "manifest",
            "walrus",
            "gearbox",
            "example",
            "http",
        ] {
            assert!(!all.contains(forbidden), "{forbidden:?} spoken");
        }
    }

    /// Awkward fragments of markdown, emoji and paths, to be glued together at random.
    const FRAGMENTS: &[&str] = &[
        "Hello",
        " ",
        "world",
        ".",
        ",",
        ";",
        ":",
        "!",
        "?",
        "…",
        "—",
        " - ",
        "\n",
        "\n\n",
        "```",
        "```rust\n",
        "~~~",
        "`",
        "``",
        "[",
        "]",
        "(",
        ")",
        "**",
        "*",
        "_",
        "#",
        "## ",
        "- ",
        "1. ",
        "> ",
        "|",
        " | ",
        "https://x.io/a_b",
        "www.y.com",
        "/usr/lib/x.so",
        "./src/main.rs",
        "C:\\foo\\bar.txt",
        "e.g.",
        "Mr.",
        "3.14",
        "🎉",
        "👨‍👩‍👧",
        "🇺🇸",
        "❤️",
        "é",
        "日本",
        "    ",
        "\t",
        "<b>",
        "</b>",
        "<!--",
        "-->",
        "<",
        ">",
        "\\",
        "\r\n",
        "snake_case",
        "C#",
        "#42",
        "~5",
        "->",
        "→",
        "![img](x.png)",
        "[t](u)",
        "[^1]",
        "---",
        "| a | b |",
        "|---|",
        "main.rs",
        ".env",
        "word",
        "the",
        "tests",
        "\"",
        "'",
        "”",
    ];

    #[test]
    fn random_markdown_gives_the_same_clauses_however_split_and_clean_speech() {
        // xorshift64: deterministic, so a failure names its text.
        let mut state = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % 1_000_003).unwrap_or_default()
        };
        for _ in 0..400 {
            let mut text: String = (0..1 + next() % 40)
                .map(|_| FRAGMENTS[next() % FRAGMENTS.len()])
                .collect();
            text.push_str(" end");
            let options = ClauseOptions {
                first_min_words: next() % 3,
                min_words: next() % 7,
                first_max_words: 1 + next() % 8,
                max_words: 1 + next() % 8,
            };
            let chunk = |size: usize| {
                let mut chunker = ClauseChunker::new(options);
                let chars: Vec<char> = text.chars().collect();
                let mut clauses: Vec<String> = chars
                    .chunks(size)
                    .flat_map(|piece| chunker.push(&piece.iter().collect::<String>()))
                    .collect();
                clauses.extend(chunker.finish());
                clauses
            };
            let whole = chunk(text.len());
            for size in [1, 2, 3, 7] {
                assert_eq!(chunk(size), whole, "pieces of {size} of {text:?}");
            }
            let words: Vec<&str> = whole.iter().flat_map(|c| c.split_whitespace()).collect();
            assert_eq!(
                words,
                text.split_whitespace().collect::<Vec<_>>(),
                "{text:?}"
            );
            for clause in whole.iter().chain([&text]) {
                let spoken = for_speech(clause);
                assert!(
                    !spoken.contains(['*', '#', '`', '|', '_', '[', ']'])
                        && !spoken.contains("://")
                        && !spoken.contains("<b>")
                        && !spoken.contains("  ")
                        && spoken.trim() == spoken,
                    "{spoken:?} from {clause:?}"
                );
            }
        }
    }

    #[test]
    fn the_fixture_spoken_in_tiny_pieces_says_the_same() {
        // The same text blocks, fed to the chunker a few characters at a time, as streamed.
        let (whole, _) = speak(FIXTURE);
        let mut reader = StreamJsonReader::new();
        let mut chunker = ClauseChunker::new(ClauseOptions::default());
        let mut clauses = Vec::new();
        for line in FIXTURE.lines() {
            for speakable in reader.line(line).unwrap_or_default() {
                match speakable {
                    Speakable::Text(text) => {
                        let chars: Vec<char> = text.chars().collect();
                        for piece in chars.chunks(3) {
                            clauses.extend(chunker.push(&piece.iter().collect::<String>()));
                        }
                    }
                    Speakable::BlockEnd => clauses.extend(chunker.finish()),
                }
            }
        }
        let pieces: Vec<String> = clauses
            .iter()
            .map(|clause| for_speech(clause))
            .filter(|text| !text.is_empty())
            .collect();
        assert_eq!(pieces, whole);
    }
}
