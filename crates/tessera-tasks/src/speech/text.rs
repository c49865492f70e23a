//! Cutting text into the pieces that are synthesized one at a time.

/// A clause and the punctuation that ended it (kept: Piper voices were trained on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The words.
    pub text: String,
    /// `.`, `,`, `?` … or none at the end of the text.
    pub punctuation: Option<char>,
}

/// What one engine call speaks: a sentence, or one clause of the first sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Its clauses.
    pub pieces: Vec<Piece>,
}

const SENTENCE_END: &[char] = &['.', '!', '?'];
const CLAUSE_END: &[char] = &[',', ';', ':'];

/// Splits text into chunks: one per sentence, except that the first sentence is cut at its
/// clauses, so its first clause can be heard while the rest is computed.
pub fn split(text: &str) -> Vec<Chunk> {
    let mut sentences: Vec<Vec<Piece>> = Vec::new();
    let mut pieces: Vec<Piece> = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let ends_here = chars.peek().is_none_or(|next| next.is_whitespace());
        let sentence = SENTENCE_END.contains(&c) && ends_here;
        let clause = CLAUSE_END.contains(&c) && ends_here;
        if c == '\n' && chars.peek() == Some(&'\n') || sentence || clause {
            let words = current.trim();
            if speakable(words) {
                pieces.push(Piece {
                    text: words.to_string(),
                    punctuation: (c != '\n').then_some(c),
                });
            }
            current.clear();
            if (sentence || c == '\n') && !pieces.is_empty() {
                sentences.push(std::mem::take(&mut pieces));
            }
        } else {
            current.push(c);
        }
    }
    let words = current.trim();
    if speakable(words) {
        pieces.push(Piece {
            text: words.to_string(),
            punctuation: None,
        });
    }
    if !pieces.is_empty() {
        sentences.push(pieces);
    }
    let mut chunks = Vec::new();
    let mut sentences = sentences.into_iter();
    if let Some(first) = sentences.next() {
        chunks.extend(first.into_iter().map(|piece| Chunk {
            pieces: vec![piece],
        }));
    }
    chunks.extend(sentences.map(|pieces| Chunk { pieces }));
    chunks
}

/// Whether a piece has anything but punctuation and symbols in it.
fn speakable(words: &str) -> bool {
    words.chars().any(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(text: &str) -> Vec<Vec<(String, Option<char>)>> {
        split(text)
            .into_iter()
            .map(|c| {
                c.pieces
                    .into_iter()
                    .map(|p| (p.text, p.punctuation))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn first_sentence_by_clause_then_by_sentence() {
        let chunks = shape("Well, hello there. How are you, friend? Fine!");
        assert_eq!(
            chunks,
            vec![
                vec![("Well".into(), Some(','))],
                vec![("hello there".into(), Some('.'))],
                vec![
                    ("How are you".into(), Some(',')),
                    ("friend".into(), Some('?'))
                ],
                vec![("Fine".into(), Some('!'))],
            ]
        );
    }

    #[test]
    fn decimals_and_unended_text_stay_whole() {
        assert_eq!(
            shape("It costs 3.50 today"),
            vec![vec![("It costs 3.50 today".into(), None)]]
        );
        assert!(split("   ").is_empty());
        assert!(split("...").is_empty());
    }
}
