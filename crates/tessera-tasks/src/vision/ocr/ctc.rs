//! CTC greedy decoding with a PaddleOCR character dictionary.

/// The recognizer's classes: index 0 is the CTC blank, then the dictionary's characters in order,
/// then a space (PaddleOCR appends it when `use_space_char` is on, as it is for PP-OCR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dictionary {
    classes: Vec<String>,
}

impl Dictionary {
    /// A dictionary from its text, one character per line.
    pub fn from_lines(text: &str) -> Dictionary {
        let mut classes = vec![String::new()];
        classes.extend(text.lines().map(str::to_string));
        classes.push(" ".to_string());
        Dictionary { classes }
    }

    /// How many classes the recognizer must output: blank, characters, space.
    pub fn classes(&self) -> usize {
        self.classes.len()
    }
}

/// Best-path decoding of one line: at each time step the likeliest class; repeats merged, blanks
/// dropped. The confidence is the mean probability of the steps that gave a character (0 when
/// none did). `probabilities` is `steps × classes`, rows summing to 1.
pub fn decode(probabilities: &[f32], dictionary: &Dictionary) -> (String, f32) {
    let classes = dictionary.classes();
    let mut text = String::new();
    let (mut sum, mut kept) = (0.0f32, 0usize);
    let mut previous = None;
    for step in probabilities.chunks_exact(classes) {
        let (best, probability) =
            step.iter()
                .copied()
                .enumerate()
                .fold(
                    (0, f32::MIN),
                    |best, (i, p)| if p > best.1 { (i, p) } else { best },
                );
        if best != 0 && previous != Some(best) {
            text.push_str(&dictionary.classes[best]);
            sum += probability;
            kept += 1;
        }
        previous = Some(best);
    }
    let confidence = if kept == 0 { 0.0 } else { sum / kept as f32 };
    (text, confidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Steps that each put `p` on one class and share the rest.
    fn steps(classes: usize, picks: &[(usize, f32)]) -> Vec<f32> {
        let mut out = Vec::new();
        for &(class, p) in picks {
            let rest = (1.0 - p) / (classes - 1) as f32;
            out.extend((0..classes).map(|c| if c == class { p } else { rest }));
        }
        out
    }

    #[test]
    fn repeats_merge_blanks_separate_and_the_space_is_last() {
        let dictionary = Dictionary::from_lines("a\nb\nl");
        assert_eq!(dictionary.classes(), 5);
        // a a _ b _ b l l <space> a  →  "abbl a"
        let picks = [
            (1, 0.9),
            (1, 0.8),
            (0, 0.99),
            (2, 0.7),
            (0, 0.9),
            (2, 0.6),
            (3, 0.5),
            (3, 0.9),
            (4, 0.8),
            (1, 1.0),
        ];
        let (text, confidence) = decode(&steps(5, &picks), &dictionary);
        assert_eq!(text, "abbl a");
        // The first step of each kept run counts: 0.9, 0.7, 0.6, 0.5, 0.8, 1.0.
        assert!((confidence - 4.5 / 6.0).abs() < 1e-6, "{confidence}");
    }

    #[test]
    fn all_blank_is_empty_with_no_confidence() {
        let dictionary = Dictionary::from_lines("x\r\ny\n");
        assert_eq!(
            dictionary.classes(),
            4,
            "CRLF lines and a final newline add no class"
        );
        assert_eq!(
            decode(&steps(4, &[(0, 0.9), (0, 0.9)]), &dictionary),
            (String::new(), 0.0)
        );
    }
}
