//! Turning sampled tokens into text: UTF-8 assembled across token boundaries, and stop
//! sequences matched across them too, never emitted.

/// Collects token pieces into text that is safe to send: whole characters only, and never a
/// part that could still become a stop sequence.
#[derive(Debug, Clone, Default)]
pub struct TextAssembler {
    /// Bytes of a character not complete yet.
    partial: Vec<u8>,
    /// Decoded text not sent yet, because it might be the start of a stop sequence.
    held: String,
    stops: Vec<String>,
}

/// What one piece gave.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Assembled {
    /// Text to send now.
    pub text: String,
    /// Whether a stop sequence was reached; `text` ends just before it.
    pub stopped: bool,
}

impl TextAssembler {
    /// An assembler that ends at the first of `stops` (empty strings are ignored).
    pub fn new(stops: Vec<String>) -> TextAssembler {
        TextAssembler {
            stops: stops.into_iter().filter(|s| !s.is_empty()).collect(),
            ..TextAssembler::default()
        }
    }

    /// Adds one token's bytes.
    pub fn push(&mut self, piece: &[u8]) -> Assembled {
        self.partial.extend_from_slice(piece);
        self.decode_complete();
        if let Some(at) = self.first_stop() {
            let text = self.held[..at].to_string();
            self.held.clear();
            return Assembled {
                text,
                stopped: true,
            };
        }
        let keep = self.stop_prefix_len();
        let send = self.held.len() - keep;
        let text: String = self.held.drain(..send).collect();
        Assembled {
            text,
            stopped: false,
        }
    }

    /// Everything still held, at the end of generation (an unfinished character becomes U+FFFD).
    pub fn flush(&mut self) -> String {
        let mut text = std::mem::take(&mut self.held);
        if !self.partial.is_empty() {
            text.push_str(&String::from_utf8_lossy(&self.partial));
            self.partial.clear();
        }
        text
    }

    /// Moves every complete character from `partial` to `held`; invalid bytes become U+FFFD.
    fn decode_complete(&mut self) {
        loop {
            match std::str::from_utf8(&self.partial) {
                Ok(text) => {
                    self.held.push_str(text);
                    self.partial.clear();
                    return;
                }
                Err(error) => {
                    let valid = error.valid_up_to();
                    // SAFETY-free: the prefix was just checked to be UTF-8.
                    self.held
                        .push_str(&String::from_utf8_lossy(&self.partial[..valid]));
                    match error.error_len() {
                        // Incomplete at the end: wait for the next piece.
                        None => {
                            self.partial.drain(..valid);
                            return;
                        }
                        Some(bad) => {
                            self.held.push(char::REPLACEMENT_CHARACTER);
                            self.partial.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    /// Where the earliest stop sequence starts in `held`.
    fn first_stop(&self) -> Option<usize> {
        self.stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
    }

    /// The length of the longest end of `held` that begins some stop sequence.
    fn stop_prefix_len(&self) -> usize {
        let mut longest = 0;
        for stop in &self.stops {
            for (at, _) in stop.char_indices().skip(1) {
                let prefix = &stop[..at];
                if at > longest && self.held.ends_with(prefix) {
                    longest = at;
                }
            }
        }
        longest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(stops: &[&str], pieces: &[&[u8]]) -> (String, bool) {
        let mut assembler = TextAssembler::new(stops.iter().map(|s| s.to_string()).collect());
        let mut out = String::new();
        for piece in pieces {
            let got = assembler.push(piece);
            out.push_str(&got.text);
            if got.stopped {
                return (out, true);
            }
        }
        out.push_str(&assembler.flush());
        (out, false)
    }

    #[test]
    fn a_stop_split_across_tokens_is_cut_and_never_sent() {
        assert_eq!(
            run(&["END"], &[b"one two E", b"N", b"D three"]),
            ("one two ".to_string(), true)
        );
    }

    #[test]
    fn a_false_start_of_a_stop_is_sent_once_it_cannot_match() {
        let mut assembler = TextAssembler::new(vec!["END".into()]);
        assert_eq!(assembler.push(b"a E").text, "a ");
        assert_eq!(assembler.push(b"N").text, "");
        assert_eq!(assembler.push(b"x").text, "ENx");
    }

    #[test]
    fn the_earliest_of_several_stops_wins() {
        assert_eq!(
            run(&["\n\n", "b"], &[b"a\n", b"\nb"]),
            ("a".to_string(), true)
        );
    }

    #[test]
    fn characters_split_across_tokens_are_joined() {
        let snowman = "☃".as_bytes();
        assert_eq!(
            run(&[], &[&snowman[..1], &snowman[1..2], &snowman[2..], b"!"]),
            ("☃!".to_string(), false)
        );
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        assert_eq!(
            run(&[], &[b"a\xff", b"b", b"\xe2\x98"]),
            ("a\u{fffd}b\u{fffd}".to_string(), false)
        );
    }

    #[test]
    fn no_stops_sends_everything_at_once() {
        let mut assembler = TextAssembler::new(vec![String::new()]);
        assert_eq!(assembler.push(b"hello").text, "hello");
    }
}
