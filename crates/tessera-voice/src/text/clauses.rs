//! Streamed text cut into clauses, so speech can start before the text is complete.
//!
//! An LLM's answer arrives a few characters at a time; a TTS voice wants whole phrases. The
//! [`ClauseChunker`] takes the pieces as they come and hands back each clause as soon as it is
//! known to be complete: at a sentence end, at a comma, semicolon, colon or dash once the
//! clause is long enough, at a line break, or, failing all of those, after
//! [`ClauseOptions::max_words`] words. A clause is decided only by the text, never by how it
//! was split into pieces: a boundary that needs the next character waits for it.
//!
//! Code is never cut: a fenced code block (or an indented one) goes out whole, and inline code
//! and link text are not cut at their commas. Each clause is meant to go through
//! [`super::clean::for_speech`], which drops the code.

use super::clean::{BlockState, LineKind, is_line_marker};

/// How eagerly a [`ClauseChunker`] cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClauseOptions {
    /// Words the first clause of a text needs before a comma, semicolon, colon or dash may end
    /// it. Low, because the first clause decides how soon the voice starts.
    pub first_min_words: usize,
    /// Words a later clause needs before a comma, semicolon, colon or dash may end it.
    pub min_words: usize,
    /// Words after which the first clause of a text is cut between two words when no boundary
    /// came first: the voice starts on them instead of waiting for the sentence to end.
    pub first_max_words: usize,
    /// Words after which text with no boundary is cut between two words anyway (outside code).
    pub max_words: usize,
}

impl Default for ClauseOptions {
    /// 2, 6, 30 and 30 words: the first clause is cut like the others. The voice loop cuts it
    /// after 3 (see [`ClauseOptions::voice_reply`]).
    fn default() -> Self {
        Self {
            first_min_words: 2,
            min_words: 6,
            first_max_words: 30,
            max_words: 30,
        }
    }
}

impl ClauseOptions {
    /// For an LLM's spoken reply, where every token waited for delays the first audio: the
    /// first clause is cut after 3 words. Piper cuts a first clause of more than 5 words there
    /// too, so for those the audio is the same, only sooner; one of 4 or 5 words is now spoken
    /// in two pieces where Piper would have kept it whole.
    pub fn voice_reply() -> Self {
        Self {
            first_max_words: 3,
            ..Self::default()
        }
    }
}

/// Cuts text that arrives in pieces into clauses for a voice.
///
/// Boundaries, each taken only when the clause so far has a word (a letter or digit):
/// - a sentence end: `.`, `!`, `?` or `…`, possibly followed by closing quotes, brackets or
///   emphasis (`."`, `.)`, `.**`), and then whitespace. So "3.14" and "e.g." inside a word
///   never end one, nor do the abbreviations Mr. Mrs. Ms. Dr. St. Jr. Sr. Prof. e.g. i.e. etc.
///   vs. cf. approx., nor a list marker such as "1.";
/// - a clause mark: `,`, `;`, `:`, `—` (or a spaced `-`, `–`, `--`), then whitespace, once the
///   clause has [`ClauseOptions::first_min_words`] words (the first clause of the text) or
///   [`ClauseOptions::min_words`] (later ones);
/// - a line break (paragraphs, list items, headings, table rows);
/// - before the word that would pass [`ClauseOptions::max_words`] (for the first clause of a
///   text, [`ClauseOptions::first_max_words`] when that is lower).
///
/// None of these apply inside inline code or the text of a link on the same line, and nothing
/// at all cuts a fenced code block: it goes out whole, from its opening fence to the line
/// break after its closing fence (or to the end of the text). An indented code block (after a
/// blank line, outside a list) is likewise whole, and keeps its indentation so
/// [`super::clean::for_speech`] still knows it for code.
///
/// Clauses keep their punctuation and markup and are trimmed; none is empty.
#[derive(Debug, Clone)]
pub struct ClauseChunker {
    options: ClauseOptions,
    /// Text not yet handed out; it starts where the next clause starts.
    pending: String,
    scan: Scan,
}

/// How far `pending` has been read, and what was learned on the way.
#[derive(Debug, Clone)]
struct Scan {
    /// Bytes of `pending` read.
    pos: usize,
    blocks: BlockState,
    /// The kind of the line being read; `None` at a line's start, before it is known.
    line: Option<LineKind>,
    /// Where the word being read started.
    word_start: Option<usize>,
    /// Whether every word so far on this line was a marker (`-`, `1.`, `#`, `>`).
    markers_only: bool,
    /// The length of the backtick run that opened an inline code span still open.
    code_ticks: Option<usize>,
    /// `[` not yet closed on this line.
    brackets: usize,
    /// Words (with a letter or digit, markers not counted) in the clause so far.
    words: usize,
    /// Whether the clause begins with an indented code block.
    starts_in_code: bool,
    /// Whether a clause of this text has been handed out.
    emitted: bool,
}

impl Scan {
    fn new() -> Self {
        Self {
            pos: 0,
            blocks: BlockState::new(),
            line: None,
            word_start: None,
            markers_only: true,
            code_ticks: None,
            brackets: 0,
            words: 0,
            starts_in_code: false,
            emitted: false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Boundary {
    Sentence,
    Clause,
}

/// Closing quotes, brackets and emphasis that may follow a sentence's last mark.
const CLOSERS: &[char] = &['"', '\'', '”', '’', '»', ')', ']', '}', '*', '_'];

/// Abbreviations whose period does not end a sentence (lowercase).
const ABBREVIATIONS: &[&str] = &[
    "mr.", "mrs.", "ms.", "dr.", "st.", "jr.", "sr.", "prof.", "e.g.", "i.e.", "etc.", "vs.",
    "cf.", "approx.",
];

impl ClauseChunker {
    /// A chunker at the start of a text.
    pub fn new(options: ClauseOptions) -> Self {
        Self {
            options,
            pending: String::new(),
            scan: Scan::new(),
        }
    }

    /// Feeds the next piece of text, split anywhere (mid-word, mid-line, mid-fence); returns
    /// the clauses now complete, in order, possibly none.
    pub fn push(&mut self, delta: &str) -> Vec<String> {
        self.pending.push_str(delta);
        let mut clauses = Vec::new();
        self.read(&mut clauses);
        clauses
    }

    /// Ends the text: returns what is left as one clause (`None` when it holds no letter or
    /// digit), and makes the chunker ready for a new text, whose first clause again needs only
    /// [`ClauseOptions::first_min_words`].
    pub fn finish(&mut self) -> Option<String> {
        let rest = trim_clause(&self.pending, self.scan.starts_in_code).to_owned();
        self.pending.clear();
        self.scan = Scan::new();
        rest.chars().any(char::is_alphanumeric).then_some(rest)
    }

    /// Reads `pending` as far as it can be decided, cutting clauses into `out`.
    fn read(&mut self, out: &mut Vec<String>) {
        loop {
            if self.scan.line.is_none() && !self.start_line(out) {
                return;
            }
            let Some(c) = self.pending[self.scan.pos..].chars().next() else {
                return;
            };
            if self.scan.line == Some(LineKind::Text) {
                if !self.prose_char(c, out) {
                    return;
                }
            } else {
                self.code_or_blank_char(c, out);
            }
        }
    }

    /// Classifies the line starting at `pos`; false when more text is needed first.
    fn start_line(&mut self, out: &mut Vec<String>) -> bool {
        let rest = &self.pending[self.scan.pos..];
        if rest.is_empty() {
            return false;
        }
        let (line, complete) = match rest.find('\n') {
            Some(end) => (&rest[..end], true),
            None => (rest, false),
        };
        let was_indented_code = self.scan.blocks.in_indented_code();
        let Some(kind) = self.scan.blocks.advance(line, complete) else {
            return false;
        };
        let pos = self.scan.pos;
        if was_indented_code
            && !self.scan.blocks.in_indented_code()
            && has_content(&self.pending[..pos])
        {
            // An indented code block ended on the line before: it goes out whole.
            self.cut(pos, out);
        }
        if kind == LineKind::Code
            && self.scan.blocks.in_indented_code()
            && !has_content(&self.pending[..self.scan.pos])
        {
            self.scan.starts_in_code = true;
        }
        self.scan.line = Some(kind);
        self.scan.word_start = None;
        self.scan.markers_only = true;
        self.scan.code_ticks = None;
        self.scan.brackets = 0;
        true
    }

    /// A character of a code or blank line: only the line break after a closing fence cuts.
    fn code_or_blank_char(&mut self, c: char, out: &mut Vec<String>) {
        if c == '\n' {
            let closed = self.scan.line == Some(LineKind::Code)
                && !self.scan.blocks.in_fence()
                && !self.scan.blocks.in_indented_code();
            if closed && has_content(&self.pending[..self.scan.pos]) {
                self.cut(self.scan.pos, out);
            }
            self.scan.line = None;
        }
        self.scan.pos += c.len_utf8();
    }

    /// A character of a prose line; false when more text is needed first.
    fn prose_char(&mut self, c: char, out: &mut Vec<String>) -> bool {
        if c.is_whitespace() {
            if let Some(start) = self.scan.word_start.take() {
                self.end_word(start, out);
            }
            if c == '\n' {
                if self.scan.words > 0 {
                    self.cut(self.scan.pos, out);
                }
                self.scan.line = None;
            }
            self.scan.pos += c.len_utf8();
            return true;
        }
        if self.scan.word_start.is_none() {
            let max_words = if self.scan.emitted {
                self.options.max_words
            } else {
                self.options.first_max_words.min(self.options.max_words)
            };
            if self.scan.words >= max_words.max(1) {
                self.cut(self.scan.pos, out);
            }
            self.scan.word_start = Some(self.scan.pos);
        }
        if c == '`' {
            let run = self.pending[self.scan.pos..]
                .bytes()
                .take_while(|&b| b == b'`')
                .count();
            if self.scan.pos + run == self.pending.len() {
                // The run may go on in the next piece, and its length matters.
                return false;
            }
            self.scan.code_ticks = match self.scan.code_ticks {
                Some(open) if open == run => None,
                None => Some(run),
                open => open,
            };
            self.scan.pos += run;
            return true;
        }
        if self.scan.code_ticks.is_none() {
            match c {
                '[' => self.scan.brackets += 1,
                ']' => self.scan.brackets = self.scan.brackets.saturating_sub(1),
                _ => {}
            }
        }
        self.scan.pos += c.len_utf8();
        true
    }

    /// The word from `start` to `pos` ended (whitespace follows it): count it, and cut after
    /// it when it ends a sentence or a long enough clause.
    fn end_word(&mut self, start: usize, out: &mut Vec<String>) {
        let end = self.scan.pos;
        let word = &self.pending[start..end];
        if self.scan.markers_only && is_line_marker(word) {
            return;
        }
        self.scan.markers_only = false;
        if word.chars().any(char::is_alphanumeric) {
            self.scan.words += 1;
        }
        if self.scan.code_ticks.is_some() || self.scan.brackets > 0 || self.scan.words == 0 {
            return;
        }
        let needed = if self.scan.emitted {
            self.options.min_words
        } else {
            self.options.first_min_words
        };
        match boundary(word) {
            Some(Boundary::Sentence) => self.cut(end, out),
            Some(Boundary::Clause) if self.scan.words >= needed => self.cut(end, out),
            _ => {}
        }
    }

    /// Hands out `pending[..at]` as a clause and starts the next one there.
    fn cut(&mut self, at: usize, out: &mut Vec<String>) {
        let clause = trim_clause(&self.pending[..at], self.scan.starts_in_code);
        if !clause.is_empty() {
            out.push(clause.to_owned());
            self.scan.emitted = true;
        }
        self.pending.drain(..at);
        self.scan.pos -= at;
        self.scan.word_start = self.scan.word_start.map(|start| start.saturating_sub(at));
        self.scan.words = 0;
        self.scan.starts_in_code = false;
    }
}

impl Default for ClauseChunker {
    /// A chunker with [`ClauseOptions::default`].
    fn default() -> Self {
        Self::new(ClauseOptions::default())
    }
}

/// What a word ending before whitespace makes of the text before it.
fn boundary(word: &str) -> Option<Boundary> {
    if matches!(word, "-" | "–" | "--") {
        return Some(Boundary::Clause);
    }
    let core = word.trim_end_matches(CLOSERS);
    match core.chars().last()? {
        '.' if is_abbreviation(core) => None,
        '.' | '!' | '?' | '…' => Some(Boundary::Sentence),
        ',' | ';' | ':' | '—' => Some(Boundary::Clause),
        _ => None,
    }
}

fn is_abbreviation(word: &str) -> bool {
    let word = word
        .trim_start_matches(['(', '[', '"', '\'', '“', '‘', '*', '_'])
        .to_lowercase();
    ABBREVIATIONS.contains(&word.as_str())
}

fn has_content(text: &str) -> bool {
    text.chars().any(|c| !c.is_whitespace())
}

/// Trims a clause; one that begins with an indented code block keeps that block's
/// indentation (only blank lines before it go).
fn trim_clause(text: &str, keep_indent: bool) -> &str {
    let text = text.trim_end();
    if !keep_indent {
        return text.trim_start();
    }
    let first = text.len() - text.trim_start().len();
    let line_start = text[..first].rfind('\n').map_or(0, |newline| newline + 1);
    &text[line_start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `text` in pieces of `size` characters (0: whole) and finishes.
    fn chunk_with(text: &str, size: usize, options: ClauseOptions) -> Vec<String> {
        let mut chunker = ClauseChunker::new(options);
        let mut clauses = Vec::new();
        if size == 0 {
            clauses.extend(chunker.push(text));
        } else {
            let chars: Vec<char> = text.chars().collect();
            for piece in chars.chunks(size) {
                clauses.extend(chunker.push(&piece.iter().collect::<String>()));
            }
        }
        clauses.extend(chunker.finish());
        clauses
    }

    fn chunk(text: &str) -> Vec<String> {
        chunk_with(text, 0, ClauseOptions::default())
    }

    /// The same clauses whatever the pieces' size, and no word lost, added or changed.
    fn check_invariant(text: &str) -> Vec<String> {
        let whole = chunk(text);
        for size in [1, 2, 3, 5, 7, 13] {
            assert_eq!(
                chunk_with(text, size, ClauseOptions::default()),
                whole,
                "pieces of {size} chars of {text:?}"
            );
        }
        let words: Vec<&str> = whole.iter().flat_map(|c| c.split_whitespace()).collect();
        assert_eq!(
            words,
            text.split_whitespace().collect::<Vec<_>>(),
            "{text:?}"
        );
        for clause in &whole {
            assert!(!clause.trim().is_empty());
            assert!(clause.chars().any(char::is_alphanumeric), "{clause:?}");
        }
        whole
    }

    #[test]
    fn sentences_end_at_punctuation_followed_by_whitespace() {
        assert_eq!(
            check_invariant("Hello there. How are you? I am fine! Well… maybe."),
            [
                "Hello there.",
                "How are you?",
                "I am fine!",
                "Well…",
                "maybe."
            ]
        );
        assert_eq!(
            check_invariant("He said \"stop.\" Then (he left.) The end."),
            ["He said \"stop.\"", "Then (he left.)", "The end."]
        );
        assert_eq!(
            check_invariant("It is **done.** Next one."),
            ["It is **done.**", "Next one."]
        );
    }

    #[test]
    fn a_sentence_end_waits_for_the_next_character() {
        let mut chunker = ClauseChunker::default();
        assert!(chunker.push("Pi is 3.").is_empty());
        assert!(chunker.push("14 or so.").is_empty());
        assert_eq!(chunker.push(" Yes"), ["Pi is 3.14 or so."]);
        assert_eq!(chunker.finish().as_deref(), Some("Yes"));
        assert_eq!(chunker.finish(), None);
    }

    #[test]
    fn abbreviations_and_dotted_words_do_not_end_sentences() {
        assert_eq!(
            check_invariant(
                "Ask Dr. Smith and Mrs. Jones, e.g. today, i.e. now, etc. and so on vs. later. Use main.rs now."
            ),
            [
                "Ask Dr. Smith and Mrs. Jones,",
                "e.g. today, i.e. now, etc. and so on vs. later.",
                "Use main.rs now."
            ]
        );
    }

    #[test]
    fn clause_marks_need_enough_words() {
        // The first clause needs 2 words, later ones 6.
        assert_eq!(
            check_invariant(
                "Well, I think so: the build works, and the tests pass; we can ship it today, right?"
            ),
            [
                "Well, I think so:",
                "the build works, and the tests pass;",
                "we can ship it today, right?"
            ]
        );
        assert_eq!(
            check_invariant("Okay, sure — it works — and the tests — all of them — pass now."),
            [
                "Okay, sure —",
                "it works — and the tests — all of them —",
                "pass now."
            ]
        );
        let options = ClauseOptions {
            first_min_words: 1,
            min_words: 1,
            first_max_words: 30,
            max_words: 30,
        };
        assert_eq!(
            chunk_with("Yes, no, maybe.", 1, options),
            ["Yes,", "no,", "maybe."]
        );
    }

    #[test]
    fn the_first_clause_rule_starts_again_after_finish() {
        let mut chunker = ClauseChunker::default();
        assert_eq!(chunker.push("Hi there, friend. "), ["Hi there,", "friend."]);
        assert!(chunker.push("Ok so, more").is_empty());
        assert_eq!(chunker.finish().as_deref(), Some("Ok so, more"));
        assert_eq!(chunker.push("Ok so, more "), ["Ok so,"]);
    }

    #[test]
    fn line_breaks_are_boundaries_and_markers_are_not_words() {
        assert_eq!(
            check_invariant(
                "## Plan\nHere is the plan\n\n- update the readme\n- run the tests\n1. ship\n\n> quoted line\n| a | b |"
            ),
            [
                "## Plan",
                "Here is the plan",
                "- update the readme",
                "- run the tests",
                "1. ship",
                "> quoted line",
                "| a | b |"
            ]
        );
        // A line of markup alone is not a clause: it goes with the next.
        assert_eq!(
            check_invariant("Above.\n---\nBelow here\n-\nend"),
            ["Above.", "---\nBelow here", "-\nend"]
        );
        // A list marker's period is not a sentence end, nor a word for the minimum.
        assert_eq!(
            check_invariant("1. Yes, it works.\n2. Fine, ok."),
            ["1. Yes, it works.", "2. Fine, ok."]
        );
    }

    #[test]
    fn long_text_is_cut_between_words() {
        let options = ClauseOptions {
            first_min_words: 2,
            min_words: 6,
            first_max_words: 30,
            max_words: 5,
        };
        let text = "one two three four five six seven eight nine ten eleven";
        for size in [0, 1, 4] {
            assert_eq!(
                chunk_with(text, size, options),
                [
                    "one two three four five",
                    "six seven eight nine ten",
                    "eleven"
                ]
            );
        }
        let long = "word ".repeat(70);
        let clauses = check_invariant(&long);
        assert_eq!(clauses.len(), 3);
        assert_eq!(clauses[0].split_whitespace().count(), 30);
    }

    #[test]
    fn a_voice_reply_starts_on_its_first_three_words() {
        let text = "The capital of France is Paris. It lies on the Seine and has many museums.";
        for size in [0, 1, 4] {
            assert_eq!(
                chunk_with(text, size, ClauseOptions::voice_reply()),
                [
                    "The capital of",
                    "France is Paris.",
                    "It lies on the Seine and has many museums."
                ]
            );
        }
        // A first clause that ends sooner is not cut.
        assert_eq!(
            chunk_with("Yes, it is. Paris.", 2, ClauseOptions::voice_reply()),
            ["Yes, it is.", "Paris."]
        );
    }

    #[test]
    fn code_fences_are_never_cut() {
        let text =
            "Run this: \n```bash\necho one. two, three\n\nfour. five\n```\nThen check it. Done.";
        assert_eq!(
            check_invariant(text),
            [
                "Run this:",
                "```bash\necho one. two, three\n\nfour. five\n```",
                "Then check it.",
                "Done."
            ]
        );
        // A long fence is not cut at max_words either; an unclosed one runs to the end.
        let code = format!("Look:\n```\n{}\n```\nok", "x = 1, y = 2. ".repeat(40));
        let clauses = check_invariant(&code);
        assert_eq!(clauses.len(), 3);
        assert!(clauses[1].starts_with("```") && clauses[1].ends_with("```"));
        assert_eq!(
            check_invariant("Start here.\n~~~\ncode, more. code\nstill code"),
            ["Start here.", "~~~\ncode, more. code\nstill code"]
        );
        // Inline triple backticks with backticks after them are not a fence; to know, the
        // line waits until it is whole.
        let mut chunker = ClauseChunker::default();
        assert!(chunker.push("```a``` is code. Next.").is_empty());
        assert_eq!(chunker.push("\nok"), ["```a``` is code.", "Next."]);
        assert_eq!(
            check_invariant("```a``` is code. Next.\nok"),
            ["```a``` is code.", "Next.", "ok"]
        );
    }

    #[test]
    fn indented_code_stays_whole_and_keeps_its_indent() {
        let text = "Like this:\n\n    let a = 1. b\n    let c = 2, d\n\nDone now.";
        assert_eq!(
            check_invariant(text),
            [
                "Like this:",
                "    let a = 1. b\n    let c = 2, d",
                "Done now."
            ]
        );
        // In a list, indented lines are prose.
        assert_eq!(
            check_invariant("- item one\n\n    more text. here"),
            ["- item one", "more text.", "here"]
        );
    }

    #[test]
    fn inline_code_and_link_text_are_not_cut() {
        assert_eq!(
            check_invariant("Use `a, b. c` and [this, or that. ok](http://x.io/a) please. Next."),
            [
                "Use `a, b. c` and [this, or that. ok](http://x.io/a) please.",
                "Next."
            ]
        );
        assert_eq!(
            check_invariant("Type ``x ` y. z`` now. Yes."),
            ["Type ``x ` y. z`` now.", "Yes."]
        );
    }

    #[test]
    fn nothing_speakable_gives_nothing() {
        let mut chunker = ClauseChunker::default();
        assert!(chunker.push("   \n\n ").is_empty());
        assert_eq!(chunker.finish(), None);
        assert!(chunker.push("🎉 **").is_empty());
        assert_eq!(chunker.finish(), None);
        assert!(chunker.push("... ").is_empty());
        assert_eq!(chunker.finish(), None);
    }

    #[test]
    fn unicode_is_split_anywhere_safely() {
        let text = "Café — naïve, résumé: 日本語のテキスト。 Ünïcödé! 🎉 Done.";
        check_invariant(text);
    }

    #[test]
    fn property_mixed_texts_split_any_way_give_the_same_clauses() {
        let texts = [
            "I checked the project files. The build is ready and all tests pass.",
            "Next, I will update the readme and open a pull request.\n\n- **Update** the readme file\n- Run the `tests` again\n- See the notes at https://docs.example.com/setup\n\nThank you for waiting.",
            "First,\nsecond; third: fourth — fifth... sixth?! \"Seventh.\" (Eighth.) e.g. ninth",
            "Code:\n\n```rust\nfn main() {\n    println!(\"a, b. c\");\n}\n```\n\nAnd after, some words follow here, as usual.",
            "| h1 | h2 |\n|---|---|\n| a, b | c. d |\n\n> quote, with a comma, and more words here.",
            "   leading spaces. and trailing   \n\n\n",
            "A very long sentence with no punctuation at all that keeps going well past the limit of thirty words so that the chunker has to cut it somewhere between two words to keep latency low for the listener who waits",
            "Mixed\r\nline endings\r\n- item\r\n",
            "``` unclosed fence, with. words\nmore",
            "    indented first\n\nthen prose. ok",
        ];
        for text in texts {
            check_invariant(text);
        }
    }
}
