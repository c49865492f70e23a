//! Cutting text into the pieces that are synthesized one at a time.

/// A clause and the punctuation that ended it (kept: Piper voices were trained on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The words.
    pub text: String,
    /// `.`, `,`, `?` … or none at the end of the text.
    pub punctuation: Option<char>,
}

/// What one engine call speaks: clauses, or the first words of the first one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Its clauses.
    pub pieces: Vec<Piece>,
}

const SENTENCE_END: &[char] = &['.', '!', '?'];

/// How the first chunk is cut: a first clause of up to `whole_up_to` words is spoken whole, a
/// longer one is cut after `cut_after` words, so that the first audio comes fast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstChunk {
    /// The longest first clause kept whole, in words.
    pub whole_up_to: usize,
    /// Where a longer one is cut.
    pub cut_after: usize,
}

impl FirstChunk {
    /// For a voice whose first chunk streams: its text side runs once and the decoder makes the
    /// first 0.3 s alone, so the first audio costs little more than the text side. Twelve words
    /// keep it near 60 ms on two cores, and the first clause is rarely cut.
    pub const STREAMED: FirstChunk = FirstChunk {
        whole_up_to: 12,
        cut_after: 8,
    };
    /// For a voice synthesized a chunk at a time, where the first audio costs the whole first
    /// chunk (a VITS call costs about as much as the audio it makes).
    pub const SHORT: FirstChunk = FirstChunk {
        whole_up_to: 5,
        cut_after: 3,
    };
}
/// After the first chunk, clauses are joined into chunks of about this many words (the second
/// chunk about [`SECOND_CHUNK_WORDS`]): fewer engine calls cost less in all, and the audio
/// already sent covers the wait.
const CHUNK_WORDS: usize = 30;
const SECOND_CHUNK_WORDS: usize = 12;
const CLAUSE_END: &[char] = &[',', ';', ':'];

/// Splits text into chunks: the first clause alone (cut as `first` says when it is long), so the
/// first audio can be heard while the rest is computed; then whole clauses, about
/// `SECOND_CHUNK_WORDS` words in the second chunk and `CHUNK_WORDS` in each after it.
pub fn split(text: &str, first: FirstChunk) -> Vec<Chunk> {
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
    let mut rest = sentences.into_iter().flatten();
    let Some(first_clause) = rest.next() else {
        return Vec::new();
    };
    let mut chunks = Vec::new();
    let mut pending: Vec<Piece> = Vec::new();
    let words: Vec<&str> = first_clause.text.split_whitespace().collect();
    if words.len() > first.whole_up_to {
        chunks.push(Chunk {
            pieces: vec![Piece {
                text: words[..first.cut_after].join(" "),
                punctuation: None,
            }],
        });
        pending.push(Piece {
            text: words[first.cut_after..].join(" "),
            punctuation: first_clause.punctuation,
        });
    } else {
        chunks.push(Chunk {
            pieces: vec![first_clause],
        });
    }
    let mut words = count_words(&pending);
    for piece in rest {
        // The second chunk is small, so it is ready before the first has been heard.
        let limit = if chunks.len() == 1 {
            SECOND_CHUNK_WORDS
        } else {
            CHUNK_WORDS
        };
        if words >= limit {
            chunks.push(Chunk {
                pieces: std::mem::take(&mut pending),
            });
            words = 0;
        }
        words += piece.text.split_whitespace().count();
        pending.push(piece);
    }
    if !pending.is_empty() {
        chunks.push(Chunk { pieces: pending });
    }
    chunks
}

fn count_words(pieces: &[Piece]) -> usize {
    pieces
        .iter()
        .map(|piece| piece.text.split_whitespace().count())
        .sum()
}

/// Whether a piece has anything but punctuation and symbols in it.
fn speakable(words: &str) -> bool {
    words.chars().any(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(text: &str) -> Vec<Vec<(String, Option<char>)>> {
        shape_with(text, FirstChunk::SHORT)
    }

    fn shape_with(text: &str, first: FirstChunk) -> Vec<Vec<(String, Option<char>)>> {
        split(text, first)
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
    fn the_first_clause_alone_then_clauses_together() {
        let chunks = shape("Well, hello there. How are you, friend? Fine!");
        assert_eq!(
            chunks,
            vec![
                vec![("Well".into(), Some(','))],
                vec![
                    ("hello there".into(), Some('.')),
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
                vec![
                    ("fox jumps over the dog".into(), Some('.')),
                    ("Then it sleeps".into(), Some('.')),
                ],
            ]
        );
    }

    #[test]
    fn a_streamed_first_chunk_keeps_a_clause_of_twelve_words_and_cuts_a_longer_one_after_eight() {
        let ten = "The quick brown fox jumps over the lazy dog today. Then it sleeps.";
        assert_eq!(
            split(ten, FirstChunk::STREAMED)[0].pieces[0].text,
            "The quick brown fox jumps over the lazy dog today"
        );
        let fifteen = "One two three four five six seven eight nine ten eleven twelve thirteen \
                       fourteen fifteen.";
        let chunks = shape_with(fifteen, FirstChunk::STREAMED);
        assert_eq!(
            chunks,
            vec![
                vec![("One two three four five six seven eight".into(), None)],
                vec![(
                    "nine ten eleven twelve thirteen fourteen fifteen".into(),
                    Some('.')
                )],
            ]
        );
    }

    #[test]
    fn chunks_grow_to_about_thirty_words() {
        let text = "One two. ".repeat(40);
        let sizes: Vec<usize> = split(&text, FirstChunk::SHORT)
            .iter()
            .map(|chunk| count_words(&chunk.pieces))
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), 80);
        assert_eq!(&sizes[..3], &[2, 12, 30]);
    }

    #[test]
    fn decimals_and_unended_text_stay_whole() {
        assert_eq!(
            shape("It costs 3.50 today"),
            vec![vec![("It costs 3.50 today".into(), None)]]
        );
        assert!(split("   ", FirstChunk::SHORT).is_empty());
        assert!(split("...", FirstChunk::STREAMED).is_empty());
    }
}
