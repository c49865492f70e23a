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
/// A first clause longer than [`FIRST_CLAUSE_WORDS`] is cut after this many words, so the first
/// audio is short and comes fast (a VITS call costs about as much as the audio it makes).
const FIRST_WORDS: usize = 3;
const FIRST_CLAUSE_WORDS: usize = 5;
/// Later sentences are joined into chunks of about this many words: fewer engine calls cost
/// less in all, and by then the audio already sent covers the wait.
const CHUNK_WORDS: usize = 30;
const CLAUSE_END: &[char] = &[',', ';', ':'];

/// Splits text into chunks: the first sentence cut at its clauses (and a long first clause
/// after its first few words), so the first audio can be heard while the rest is computed; then
/// the later sentences, whole, about [`CHUNK_WORDS`] words a chunk.
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
        for (index, piece) in first.into_iter().enumerate() {
            let words: Vec<&str> = piece.text.split_whitespace().collect();
            if index == 0 && words.len() > FIRST_CLAUSE_WORDS {
                chunks.push(Chunk {
                    pieces: vec![Piece {
                        text: words[..FIRST_WORDS].join(" "),
                        punctuation: None,
                    }],
                });
                chunks.push(Chunk {
                    pieces: vec![Piece {
                        text: words[FIRST_WORDS..].join(" "),
                        punctuation: piece.punctuation,
                    }],
                });
            } else {
                chunks.push(Chunk {
                    pieces: vec![piece],
                });
            }
        }
    }
    let mut pending: Vec<Piece> = Vec::new();
    for sentence in sentences {
        pending.extend(sentence);
        let words: usize = pending
            .iter()
            .map(|piece| piece.text.split_whitespace().count())
            .sum();
        if words >= CHUNK_WORDS {
            chunks.push(Chunk {
                pieces: std::mem::take(&mut pending),
            });
        }
    }
    if !pending.is_empty() {
        chunks.push(Chunk { pieces: pending });
    }
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
    fn first_sentence_by_clause_then_later_sentences_together() {
        let chunks = shape("Well, hello there. How are you, friend? Fine!");
        assert_eq!(
            chunks,
            vec![
                vec![("Well".into(), Some(','))],
                vec![("hello there".into(), Some('.'))],
                vec![
                    ("How are you".into(), Some(',')),
                    ("friend".into(), Some('?')),
                    ("Fine".into(), Some('!')),
                ],
            ]
        );
    }

    #[test]
    fn a_long_first_clause_is_cut_after_three_words() {
        assert_eq!(
            shape("The quick brown fox jumps over the dog. Then it sleeps."),
            vec![
                vec![("The quick brown".into(), None)],
                vec![("fox jumps over the dog".into(), Some('.'))],
                vec![("Then it sleeps".into(), Some('.'))],
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
