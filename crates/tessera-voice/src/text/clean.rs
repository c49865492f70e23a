//! Text written to be read, made fit to be spoken.
//!
//! [`for_speech`] takes what an LLM or an assistant writes (markdown, usually) and returns plain
//! English sentences for a TTS voice such as Piper: code is not read out, markup is not spelled
//! out, and the structure a reader sees (list items, headings, table rows) becomes sentence
//! ends, so the voice pauses where a reader's eye would.
//!
//! It works line by line on markdown's block structure (tracked by a small state machine that
//! [`super::clauses`] shares, so both agree on where code is), then on each block's inline
//! markup. It never fails: text that is not markdown passes through with its whitespace
//! collapsed.

/// What a URL is spoken as, wherever one stands on its own (a bare URL, an autolink `<…>`, or
/// inline code holding only a URL). A link with text (`[the docs](https://…)`) is spoken as
/// its text instead.
pub const LINK: &str = "a link";

/// Turns text written to be read (markdown from an LLM or an assistant) into text for a TTS
/// voice. Never fails; returns an empty string when nothing is left to say.
///
/// - Fenced code blocks (```` ``` ```` or `~~~`, fences included, at any indentation) and
///   indented code blocks (4 spaces or a tab after a blank line, outside a list) are dropped.
/// - Inline code keeps its words when it is short and word-like: up to four identifiers
///   (`` `cargo test` `` → "cargo test", `` `serde_json::from_slice` `` → "serde json from
///   slice", `` `Vec<u8>` `` → "Vec u8", `` `parse()` `` → "parse"), a number or version
///   (`` `0.8` ``), a URL, file name or path (said as below); anything else
///   (`` `fn main() {}` ``, `` `--release` ``, `` `x = 1` ``) is dropped.
/// - Emphasis, headings, blockquote markers, strikethrough, HTML tags and table pipes are
///   removed and their words kept; a table row's cells are read as a list ("Name, Value.").
/// - `[text](url)` keeps the text; images and footnote marks are dropped; a bare URL
///   (`http://`, `https://`, `ftp://`, `mailto:`, `www.`) becomes "a link" ([`LINK`]).
/// - Emoji and pictographs go: emoticons, symbols and pictographs, dingbats, arrows, geometric
///   shapes, box drawing, flags (regional indicators and tag sequences), skin tones, variation
///   selectors, zero-width joiners and keycaps.
/// - List markers (`- `, `* `, `+ `, `• `, `1. `, `1) `, and `[ ]` task boxes) are removed and
///   each item, heading and table row ends as a sentence of its own: a period is added when it
///   does not end with punctuation. A paragraph followed by more speech gets one the same way.
/// - A file path (`/usr/lib/x.so`, `./src/main.rs`, `C:\foo\bar.txt`,
///   `crates/tessera/src/lib.rs`) is said as its last component, and a file name's dots are
///   said as "dot", its underscores and hyphens as spaces: "main dot rs", "x dot so", "dot
///   env". A listener hears which file is meant; the voice neither spells the path out nor
///   takes the dot for the end of a sentence. Bare domain names read the same ("example dot
///   com"); numbers (`3.14`) and abbreviations (`e.g.`) are left alone.
/// - `#42` becomes "number 42", `C#` "C sharp", `~5` "about 5", a standalone `->` or `→` "to".
/// - Whitespace collapses to single spaces and sentence punctuation is kept.
///
/// The result holds no `*`, `#`, `` ` ``, `|`, `_`, `[`, `]` or HTML tags.
pub fn for_speech(text: &str) -> String {
    let mut blocks = BlockState::new();
    let mut pieces: Vec<Piece> = Vec::new();
    // Whether the last piece takes the next prose line as its continuation.
    let mut open = false;
    for line in text.lines() {
        if blocks.advance(line, true) != Some(LineKind::Text) {
            open = false;
            continue;
        }
        match line_role(line) {
            LineRole::Break => open = false,
            LineRole::Single(text) => {
                pieces.push(Piece::new(Role::Stop, &text));
                open = false;
            }
            LineRole::Item(text) => {
                pieces.push(Piece::new(Role::Stop, text));
                open = true;
            }
            LineRole::Plain(text) => match pieces.last_mut() {
                Some(last) if open => {
                    last.raw.push(' ');
                    last.raw.push_str(text);
                }
                _ => {
                    pieces.push(Piece::new(Role::Flow, text));
                    open = true;
                }
            },
        }
    }
    let spoken: Vec<(Role, String)> = pieces
        .into_iter()
        .map(|piece| (piece.role, inline(&piece.raw)))
        .filter(|(_, text)| text.chars().any(char::is_alphanumeric))
        .collect();
    let count = spoken.len();
    let mut out = String::new();
    for (index, (role, mut text)) in spoken.into_iter().enumerate() {
        if role == Role::Stop || index + 1 < count {
            end_sentence(&mut text);
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&text);
    }
    out
}

/// What a line of markdown is, as far as speech cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineKind {
    /// Nothing but whitespace.
    Blank,
    /// Prose: a paragraph, heading, list item, quote or table row.
    Text,
    /// A line of a code block: a fenced one (its fences included) or an indented one.
    Code,
}

/// Where a run of lines stands in markdown's block structure: inside a fence, inside an
/// indented code block, in a list. Fed one line at a time, by [`for_speech`] with whole lines
/// and by the clause chunker with lines still arriving.
#[derive(Debug, Clone)]
pub(super) struct BlockState {
    inside: Inside,
    previous_blank: bool,
    in_list: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inside {
    Prose,
    Fence { marker: char, len: usize },
    IndentedCode,
}

impl BlockState {
    /// The state at the start of a text (which counts as following a blank line).
    pub(super) fn new() -> Self {
        Self {
            inside: Inside::Prose,
            previous_blank: true,
            in_list: false,
        }
    }

    /// Whether the last line opened, or was inside, a fence that has not closed.
    pub(super) fn in_fence(&self) -> bool {
        matches!(self.inside, Inside::Fence { .. })
    }

    /// Whether the last non-blank line was a line of an indented code block.
    pub(super) fn in_indented_code(&self) -> bool {
        self.inside == Inside::IndentedCode
    }

    /// Classifies the line that begins with `prefix` (the text of the line so far, without its
    /// newline) and moves past it. `complete` says `prefix` is the whole line. Returns `None`,
    /// changing nothing, when more of the line is needed to tell: a prose line needs its first
    /// word, a possible opening fence or any line inside a fence needs all of it.
    pub(super) fn advance(&mut self, prefix: &str, complete: bool) -> Option<LineKind> {
        let prefix = if complete {
            prefix.strip_suffix('\r').unwrap_or(prefix)
        } else {
            prefix
        };
        let (indent, rest) = indentation(prefix);
        if let Inside::Fence { marker, len } = self.inside {
            if !complete {
                return None;
            }
            let run = rest.chars().take_while(|&c| c == marker).count();
            if run >= len && rest[run * marker.len_utf8()..].trim().is_empty() {
                self.inside = Inside::Prose;
            }
            self.previous_blank = false;
            return Some(LineKind::Code);
        }
        if rest.trim().is_empty() {
            if !complete {
                return None;
            }
            // A blank line does not end an indented code block: the next line decides.
            self.previous_blank = true;
            return Some(LineKind::Blank);
        }
        let starts_code =
            self.inside == Inside::IndentedCode || (self.previous_blank && !self.in_list);
        if indent >= 4 && starts_code {
            self.inside = Inside::IndentedCode;
            self.previous_blank = false;
            return Some(LineKind::Code);
        }
        if let Some(marker) = rest.chars().next().filter(|&c| c == '`' || c == '~') {
            let run = rest.chars().take_while(|&c| c == marker).count();
            if run == rest.len() && !complete {
                return None;
            }
            if run >= 3 {
                // A backtick fence's info string holds no backtick (else it is inline code).
                let opens = if marker == '`' {
                    if !complete {
                        return None;
                    }
                    !rest[run..].contains('`')
                } else {
                    true
                };
                if opens {
                    self.inside = Inside::Fence { marker, len: run };
                    self.previous_blank = false;
                    return Some(LineKind::Code);
                }
            }
        }
        let first = match rest.find(char::is_whitespace) {
            Some(end) => &rest[..end],
            None if complete => rest,
            None => return None,
        };
        if is_list_marker(first) {
            self.in_list = true;
        } else if is_heading_marker(first) || (indent < 2 && self.previous_blank) {
            self.in_list = false;
        }
        self.inside = Inside::Prose;
        self.previous_blank = false;
        Some(LineKind::Text)
    }
}

/// The width of a line's leading whitespace in columns (a tab reaches the next multiple of
/// four), and the rest of the line.
fn indentation(line: &str) -> (usize, &str) {
    let mut columns = 0;
    for (at, c) in line.char_indices() {
        match c {
            ' ' => columns += 1,
            '\t' => columns += 4 - columns % 4,
            _ => return (columns, &line[at..]),
        }
    }
    (columns, "")
}

/// Whether a line's first word is a list marker: `-`, `*`, `+`, `•`, or 1 to 9 digits and
/// `.` or `)`.
pub(super) fn is_list_marker(word: &str) -> bool {
    if matches!(word, "-" | "*" | "+" | "•") {
        return true;
    }
    let digits = word.trim_end_matches(['.', ')']);
    word.len() == digits.len() + 1
        && (1..=9).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
}

fn is_heading_marker(word: &str) -> bool {
    (1..=6).contains(&word.len()) && word.bytes().all(|b| b == b'#')
}

/// Whether a word at the start of a line is markup rather than speech: a list marker, a
/// heading's `#`s or a blockquote's `>`s.
pub(super) fn is_line_marker(word: &str) -> bool {
    is_list_marker(word)
        || is_heading_marker(word)
        || (!word.is_empty() && word.bytes().all(|b| b == b'>'))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A paragraph: ends with a period only when more speech follows.
    Flow,
    /// A list item, heading or table row: always ends as a sentence.
    Stop,
}

#[derive(Debug)]
struct Piece {
    role: Role,
    raw: String,
}

impl Piece {
    fn new(role: Role, raw: &str) -> Self {
        Self {
            role,
            raw: raw.to_owned(),
        }
    }
}

enum LineRole<'a> {
    /// A thematic break, setext underline or table separator: ends what came before.
    Break,
    /// A heading or a table row: one line, its own sentence.
    Single(String),
    /// A list item's first line; later prose lines continue it.
    Item(&'a str),
    /// A line of a paragraph.
    Plain(&'a str),
}

/// Strips a prose line's block markers: blockquote `>`s, then a heading's `#`s, a list
/// marker and task box, or a table row's pipes.
fn line_role(line: &str) -> LineRole<'_> {
    let mut rest = line.trim();
    while let Some(quoted) = rest.strip_prefix('>') {
        rest = quoted.trim_start();
    }
    if is_rule(rest) {
        return LineRole::Break;
    }
    let (first, after) = rest
        .split_once(char::is_whitespace)
        .map_or((rest, ""), |(first, after)| (first, after.trim_start()));
    if is_heading_marker(first) {
        // A closing sequence of `#`s counts only after a space ("C#" keeps its sharp).
        let trimmed = after.trim_end_matches('#');
        let title = if trimmed.is_empty() || trimmed.ends_with(char::is_whitespace) {
            trimmed.trim_end()
        } else {
            after
        };
        return LineRole::Single(title.to_owned());
    }
    if is_list_marker(first) {
        let item = ["[ ]", "[x]", "[X]"]
            .iter()
            .find_map(|task| after.strip_prefix(task))
            .map_or(after, str::trim_start);
        return LineRole::Item(item);
    }
    if rest.starts_with('|') {
        let cells: Vec<&str> = rest
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .filter(|cell| !cell.is_empty())
            .collect();
        return LineRole::Single(cells.join(", "));
    }
    LineRole::Plain(rest)
}

/// A thematic break (`---`, `***`, `___`), a setext underline (`===`) or a table separator
/// (`|---|:--:|`).
fn is_rule(line: &str) -> bool {
    let marks = line
        .chars()
        .filter(|c| matches!(c, '-' | '*' | '_' | '='))
        .count();
    marks >= 3
        && line
            .chars()
            .all(|c| matches!(c, '-' | '*' | '_' | '=' | '|' | ':' | ' ' | '\t'))
}

/// Adds a period unless the text already ends with punctuation (before closing quotes and
/// brackets).
fn end_sentence(text: &mut String) {
    let core = text.trim_end_matches(['"', '\'', '”', '’', ')', ']', '}']);
    if !core.ends_with(['.', '!', '?', '…', ':', ';', ',']) {
        text.push('.');
    }
}

/// One block's inline markup → speech: structure first (code spans, links, tags, emoji), then
/// words (URLs, paths, file names), then the markup characters left, then spacing.
fn inline(raw: &str) -> String {
    let chars: Vec<char> = raw.chars().collect();
    let structured = structure(&chars);
    let worded: Vec<String> = structured.split_whitespace().map(spoken_word).collect();
    tidy(&markup_chars(&worded.join(" ")))
}

/// Resolves code spans, links, images, footnotes, HTML tags and autolinks, backslash escapes,
/// and removes pictographs.
fn structure(chars: &[char]) -> String {
    let mut out = String::with_capacity(chars.len());
    let mut at = 0;
    while let Some(&c) = chars.get(at) {
        match c {
            '`' => {
                let run = run_length(chars, at, '`');
                match closing_run(chars, at + run, run) {
                    Some(close) => {
                        let code: String = chars[at + run..close].iter().collect();
                        if let Some(spoken) = spoken_code(&code) {
                            out.push(' ');
                            out.push_str(&spoken);
                            out.push(' ');
                        }
                        at = close + run;
                    }
                    // An unmatched run is literal backticks: drop them.
                    None => at += run,
                }
            }
            '!' if chars.get(at + 1) == Some(&'[') => match link(chars, at + 1) {
                Some((_, end)) => at = end,
                None => {
                    out.push('!');
                    at += 1;
                }
            },
            '[' => match link(chars, at) {
                Some((text, end)) => {
                    out.push_str(&structure(text));
                    at = end;
                }
                None => at += 1,
            },
            '<' => match tag(chars, at) {
                Some((replacement, end)) => {
                    out.push(' ');
                    out.push_str(replacement);
                    out.push(' ');
                    at = end;
                }
                None => {
                    out.push('<');
                    at += 1;
                }
            },
            '\\' if chars
                .get(at + 1)
                .is_some_and(|&next| next.is_ascii_punctuation() && next != '<') =>
            {
                // An escaped markup character is still markup to a listener (it goes later);
                // an escaped tag is still a tag.
                if let Some(&escaped) = chars.get(at + 1) {
                    out.push(escaped);
                }
                at += 2;
            }
            // An arrow between words reads "to" (see `spoken_word`); other arrows go below.
            '→' => {
                out.push_str(" -> ");
                at += 1;
            }
            _ if is_pictograph(c) => {
                out.push(' ');
                at += 1;
            }
            _ => {
                out.push(c);
                at += 1;
            }
        }
    }
    out
}

fn run_length(chars: &[char], from: usize, c: char) -> usize {
    chars[from.min(chars.len())..]
        .iter()
        .take_while(|&&x| x == c)
        .count()
}

/// The start of the next run of exactly `len` backticks at or after `from`.
fn closing_run(chars: &[char], from: usize, len: usize) -> Option<usize> {
    let mut at = from;
    while at < chars.len() {
        if chars[at] == '`' {
            let run = run_length(chars, at, '`');
            if run == len {
                return Some(at);
            }
            at += run;
        } else {
            at += 1;
        }
    }
    None
}

/// The index of the bracket that closes the one at `open`.
fn matching(chars: &[char], open: usize, left: char, right: char) -> Option<usize> {
    let mut depth = 0usize;
    for (at, &c) in chars.iter().enumerate().skip(open) {
        if c == left {
            depth += 1;
        } else if c == right {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                return Some(at);
            }
        }
    }
    None
}

/// `[text](url)`, `[text][ref]` or plain `[text]` starting at `open`: the text to say and where
/// the construct ends. A footnote mark `[^1]` says nothing.
fn link(chars: &[char], open: usize) -> Option<(&[char], usize)> {
    let close = matching(chars, open, '[', ']')?;
    let text = &chars[open + 1..close];
    if text.first() == Some(&'^') {
        return Some((&[], close + 1));
    }
    let end = match chars.get(close + 1) {
        Some('(') => matching(chars, close + 1, '(', ')').map_or(close + 1, |end| end + 1),
        Some('[') => matching(chars, close + 1, '[', ']').map_or(close + 1, |end| end + 1),
        _ => close + 1,
    };
    Some((text, end))
}

/// An HTML tag or comment (said as nothing) or an autolink (said as [`LINK`]) at `open`.
fn tag(chars: &[char], open: usize) -> Option<(&'static str, usize)> {
    let rest = &chars[open + 1..];
    let starts = |prefix: &str| {
        prefix.chars().count() <= rest.len()
            && prefix
                .chars()
                .zip(rest)
                .all(|(a, b)| a.eq_ignore_ascii_case(b))
    };
    if starts("!--") {
        let end = (open + 4..chars.len().saturating_sub(2))
            .find(|&at| chars[at] == '-' && chars[at + 1] == '-' && chars[at + 2] == '>')?;
        return Some(("", end + 3));
    }
    if ["http://", "https://", "ftp://", "mailto:", "www."]
        .iter()
        .any(|scheme| starts(scheme))
    {
        let close = rest
            .iter()
            .position(|&c| c == '>' || c.is_whitespace())
            .filter(|&at| rest[at] == '>')?;
        return Some((LINK, open + 1 + close + 1));
    }
    let name = rest.iter().position(|&c| c != '/')?;
    if name > 1 || !rest[name].is_ascii_alphabetic() {
        return None;
    }
    let close = rest
        .iter()
        .take(300)
        .position(|&c| c == '>' || c == '<' || c == '\n')
        .filter(|&at| rest[at] == '>')?;
    Some(("", open + 1 + close + 1))
}

/// Emoji, pictographs and the invisible characters that build emoji sequences.
fn is_pictograph(c: char) -> bool {
    matches!(
        u32::from(c),
        0x200B..=0x200D // zero-width space and (non-)joiners
            | 0x2060 // word joiner
            | 0x20E3 // combining keycap
            | 0x2022 // bullet (a list marker at a line's start is handled before)
            | 0x2190..=0x21FF // arrows
            | 0x2300..=0x23FF // miscellaneous technical (⌚, ⏰, ⏩)
            | 0x2500..=0x25FF // box drawing, block elements, geometric shapes
            | 0x2600..=0x26FF // miscellaneous symbols
            | 0x2700..=0x27BF // dingbats
            | 0x2B00..=0x2BFF // miscellaneous symbols and arrows
            | 0x3030 | 0x303D | 0x3297 | 0x3299 // CJK symbols used as emoji
            | 0xFE00..=0xFE0F // variation selectors
            | 0xFEFF // byte order mark
            | 0x1F000..=0x1FAFF // mahjong, cards, enclosed (flags), pictographs, emoticons,
            // transport, alchemical, supplemental symbols, chess, symbols extended
            | 0xE0000..=0xE007F // tags (subdivision flags)
            | 0xE0100..=0xE01EF // variation selectors supplement
    )
}

/// Inline code → words: a URL, path or file name as said outside code; a number or version
/// (`0.8`, `v1.2.3`) as it is; or at most four identifiers joined by spaces, `::`, `.`, `<>`,
/// `,` or `&` (`cargo test`, `serde_json::from_slice`, `Vec<u8>`, `parse()`), said as words
/// with underscores as spaces. Anything else (flags, operators, braces, longer code) is dropped.
fn spoken_code(code: &str) -> Option<String> {
    let code = code.trim();
    if code.is_empty() || code.chars().count() > 40 {
        return None;
    }
    if !code.contains(char::is_whitespace) {
        if is_url(code) {
            return Some(LINK.to_owned());
        }
        if let Some(name) = path_name(code, true) {
            return Some(spoken_name(name));
        }
        if is_file_name(code) {
            return Some(spoken_name(code));
        }
        let number = code.strip_prefix(['v', 'V']).unwrap_or(code);
        if number.starts_with(|c: char| c.is_ascii_digit())
            && number.chars().all(|c| c.is_ascii_digit() || c == '.')
        {
            return Some(code.to_owned());
        }
    }
    let code = code.strip_suffix("()").unwrap_or(code);
    let allowed = |c: char| {
        c.is_alphanumeric()
            || matches!(
                c,
                '_' | '-' | '\'' | ' ' | ':' | '<' | '>' | ',' | '.' | '&'
            )
    };
    if !code.chars().all(allowed) {
        return None;
    }
    let identifiers: Vec<&str> = code
        .split([' ', ':', '<', '>', ',', '.', '&'])
        .filter(|part| !part.is_empty())
        .collect();
    let word_like = |part: &&str| {
        part.starts_with(char::is_alphanumeric) && part.ends_with(char::is_alphanumeric)
    };
    ((1..=4).contains(&identifiers.len()) && identifiers.iter().all(word_like))
        .then(|| identifiers.join(" ").replace('_', " "))
}

/// Characters that may wrap a word without being part of it.
const LEADING: &[char] = &['(', '[', '{', '"', '\'', '“', '‘', '*', '_', '~'];
const TRAILING: &[char] = &[
    ')', ']', '}', '"', '\'', '”', '’', '*', '_', '~', '.', ',', ';', ':', '!', '?', '…',
];

/// One whitespace-separated word: a URL, a path, a file name or an arrow is replaced by what
/// is said for it; anything else is left as it is.
fn spoken_word(word: &str) -> String {
    let start = word.len() - word.trim_start_matches(LEADING).len();
    let core = word[start..].trim_end_matches(TRAILING);
    if core.is_empty() {
        return word.to_owned();
    }
    let end = start + core.len();
    if let Some(at) = embedded_url(core) {
        // A URL glued to the word before it ("see:https://…").
        let before = spoken_word(&word[..start + at]);
        return format!("{before} {LINK}{}", &word[end..]);
    }
    let spoken = if is_url(core) {
        LINK.to_owned()
    } else if let Some(name) = path_name(core, false) {
        spoken_name(name)
    } else if is_file_name(core) {
        spoken_name(core)
    } else if matches!(core, "->" | "→") {
        "to".to_owned()
    } else {
        return word.to_owned();
    };
    format!("{}{spoken}{}", &word[..start], &word[end..])
}

/// Where a URL starts inside a word that does not start with it.
fn embedded_url(word: &str) -> Option<usize> {
    let lower = word.to_ascii_lowercase();
    ["http://", "https://", "ftp://"]
        .iter()
        .filter_map(|scheme| lower.find(scheme))
        .min()
        .filter(|&at| at > 0)
}

fn is_url(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    ["http://", "https://", "ftp://", "mailto:", "www."]
        .iter()
        .any(|scheme| lower.starts_with(scheme) && lower.len() > scheme.len())
}

/// The last component of a file path, when `word` is one. Outside code a word counts as a
/// path when it is clearly one: it starts with `/`, `./`, `../`, `~/` or a drive (`C:\`), has
/// two backslashes, ends with a separator, or names a file (`src/main.rs`); so "and/or",
/// "km/h" and "24/7" are left alone. Inside code (`loose`) any separator will do.
fn path_name(word: &str, loose: bool) -> Option<&str> {
    if !word.contains(['/', '\\']) || word.contains("://") {
        return None;
    }
    let name = word.rsplit(['/', '\\']).find(|part| !part.is_empty())?;
    let plain = name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | '+'));
    if !plain || matches!(name, "." | "..") {
        return None;
    }
    let bytes = word.as_bytes();
    let drive = bytes.len() > 2
        && bytes[0].is_ascii_alphabetic()
        && bytes[1] == b':'
        && matches!(bytes[2], b'\\' | b'/');
    let rooted = ["/", "./", "../", "~/"]
        .iter()
        .any(|root| word.starts_with(root))
        && word.len() > 1;
    let clearly = loose
        || rooted
        || drive
        || word.matches('\\').count() >= 2
        || word.ends_with(['/', '\\'])
        || is_file_name(name);
    clearly.then_some(name)
}

/// Whether a word is a file or domain name: dot-separated parts of ASCII letters, digits, `_`
/// and `-`, the last starting with a letter (`main.rs`, `.env`, `Cargo.toml`, `example.com`).
/// Numbers (`3.14`, `v1.2`) and abbreviations made of single letters (`e.g`, `U.S`) are not.
fn is_file_name(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    let (Some(stem), Some(extension)) = (parts.first(), parts.last()) else {
        return false;
    };
    if parts.len() < 2 {
        return false;
    }
    let named = parts.iter().enumerate().all(|(index, part)| {
        (index == 0 && part.is_empty())
            || (!part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
    });
    let stem_is_number = !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit());
    let initials = parts.iter().all(|part| part.chars().count() <= 1);
    let title = extension.len() == 1 && extension.bytes().all(|b| b.is_ascii_uppercase());
    named
        && extension.starts_with(|c: char| c.is_ascii_alphabetic())
        && !stem_is_number
        && !initials
        && !title
}

/// A file name as said aloud: dots as "dot", underscores and hyphens as spaces.
fn spoken_name(name: &str) -> String {
    name.split('.')
        .map(|part| part.replace(['_', '-'], " ").trim().to_owned())
        .collect::<Vec<_>>()
        .join(" dot ")
        .trim()
        .to_owned()
}

/// The markup characters left after [`structure`] and [`spoken_word`]: `*` and `` ` `` go, `_`
/// goes (or separates two words, as in snake_case), `#` becomes "number" or "sharp" or goes,
/// `~` becomes "about" before a number or goes, `|` becomes a comma, `[`, `]` and `\` go.
fn markup_chars(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (at, &c) in chars.iter().enumerate() {
        let before = at.checked_sub(1).and_then(|i| chars.get(i)).copied();
        let after = chars.get(at + 1).copied();
        let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
        match c {
            '*' | '`' | '[' | ']' | '\\' => out.push(' '),
            '_' if alnum(before) && alnum(after) => out.push(' '),
            '_' => {}
            '#' if after.is_some_and(|c| c.is_ascii_digit()) => out.push_str("number "),
            '#' if before.is_some_and(char::is_alphabetic) && !alnum(after) => {
                out.push_str(" sharp");
            }
            '#' => out.push(' '),
            '~' if after.is_some_and(|c| c.is_ascii_digit()) => out.push_str("about "),
            '~' => out.push(' '),
            '|' => out.push_str(", "),
            _ => out.push(c),
        }
    }
    out
}

/// Collapses whitespace, attaches punctuation to the word before it, drops what removals left
/// behind (empty brackets, a comma before a period, punctuation at the very start).
fn tidy(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
            continue;
        }
        if matches!(
            c,
            ',' | '.' | ';' | ':' | '!' | '?' | '…' | ')' | ']' | '}' | '%'
        ) {
            space = false;
            if matches!(c, ')' | ']' | '}') && out.ends_with(['(', '[', '{']) {
                out.pop();
                out.truncate(out.trim_end().len());
                space = !out.is_empty();
                continue;
            }
            if out.is_empty() && c != '…' {
                continue;
            }
            if c == ',' && out.ends_with([',', ';', ':', '.', '!', '?']) {
                continue;
            }
            if matches!(c, '.' | '!' | '?' | ';' | ':') && out.ends_with([',', ';', ':']) {
                out.pop();
            }
            out.push(c);
            continue;
        }
        if space && !out.ends_with(['(', '[', '{']) {
            out.push(' ');
        }
        space = false;
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_passes_through_with_whitespace_collapsed() {
        assert_eq!(
            for_speech("  Hello,   world!\nHow are\tyou?  "),
            "Hello, world! How are you?"
        );
        assert_eq!(for_speech(""), "");
        assert_eq!(for_speech("   \n\n  "), "");
    }

    #[test]
    fn fenced_code_blocks_are_dropped_with_their_fences() {
        let text = "Run this:\n```bash\ncargo build --release\n```\nThen wait.\n~~~\nsecret tilde code\n~~~\nDone.";
        assert_eq!(for_speech(text), "Run this: Then wait. Done.");
        // A fence inside a list item, indented, and an unclosed fence at the end.
        let text = "1. Build it\n   ```\n   make all\n   ```\n2. Ship it\n```rust\nfn main() {}";
        assert_eq!(for_speech(text), "Build it. Ship it.");
        // Three backticks with more backticks after them on the line are inline code.
        assert_eq!(for_speech("```cargo``` works"), "cargo works");
    }

    #[test]
    fn indented_code_is_dropped_but_list_continuations_are_kept() {
        let text =
            "Here is the loop\n\n    for i in 0..10 {\n        print(i)\n    }\n\nThat is all.";
        assert_eq!(for_speech(text), "Here is the loop. That is all.");
        // Indented code at the very start of a text (as a clause may begin).
        assert_eq!(for_speech("    let x = 5;\n\nDone."), "Done.");
        // Inside a list, indented lines are the item's own text.
        let text = "- First step\n\n    more about the first step\n- Second step";
        assert_eq!(
            for_speech(text),
            "First step. more about the first step. Second step."
        );
    }

    #[test]
    fn inline_code_keeps_short_words_only() {
        assert_eq!(for_speech("Run `cargo test` now."), "Run cargo test now.");
        assert_eq!(
            for_speech("Use `serde_json` and `parse()`."),
            "Use serde json and parse."
        );
        assert_eq!(
            for_speech(
                "A `HashMap<String, Value>`, not a `Vec<u8>`; try `serde_json::from_slice`."
            ),
            "A HashMap String Value, not a Vec u8; try serde json from slice."
        );
        assert_eq!(
            for_speech("Bump `axum` to `0.8` or `v1.2.3`."),
            "Bump axum to 0.8 or v1.2.3."
        );
        assert_eq!(
            for_speech("Run `ls -la` or `a + b` or `x = 1`."),
            "Run or or."
        );
        assert_eq!(
            for_speech("Call `fn main() { println!(\"hi\"); }` first."),
            "Call first."
        );
        assert_eq!(for_speech("Pass `--release` to it."), "Pass to it.");
        assert_eq!(
            for_speech("Edit `src/main.rs` now."),
            "Edit main dot rs now."
        );
        assert_eq!(for_speech("Open `Cargo.toml`."), "Open Cargo dot toml.");
        assert_eq!(for_speech("A ``tick ` inside`` span."), "A span.");
        assert_eq!(for_speech("A stray ` backtick."), "A stray backtick.");
    }

    #[test]
    fn emphasis_headings_quotes_and_strikethrough_keep_their_words() {
        assert_eq!(
            for_speech("This is **very** important and _quite_ *subtle*, ~~wrong~~ right."),
            "This is very important and quite subtle, wrong right."
        );
        assert_eq!(
            for_speech("## Summary\nAll good.\n### Next steps ###\nMore."),
            "Summary. All good. Next steps. More."
        );
        assert_eq!(
            for_speech("> Quoted words here.\n> > And nested."),
            "Quoted words here. And nested."
        );
        assert_eq!(for_speech("___bold italic___ text"), "bold italic text");
    }

    #[test]
    fn tables_are_read_row_by_row() {
        let text = "| Name | Value |\n|------|:-----:|\n| speed | `fast` |\n| size | 3 MB |";
        assert_eq!(for_speech(text), "Name, Value. speed, fast. size, 3 MB.");
        assert_eq!(for_speech("left | right"), "left, right");
    }

    #[test]
    fn links_keep_their_text_and_bare_urls_become_a_link() {
        assert_eq!(
            for_speech("Read [the guide](https://example.com/guide) first."),
            "Read the guide first."
        );
        assert_eq!(
            for_speech("See https://example.com/a_b?x=1. Or www.example.org, or <https://x.io>."),
            "See a link. Or a link, or a link."
        );
        assert_eq!(
            for_speech("Docs (https://docs.rs/serde) help."),
            "Docs (a link) help."
        );
        assert_eq!(for_speech("Docs:https://docs.rs/serde."), "Docs: a link.");
        assert_eq!(
            for_speech("An image ![a chart](chart.png) and a note[^1] and [ref][1]."),
            "An image and a note and ref."
        );
    }

    #[test]
    fn html_tags_and_comments_are_removed() {
        assert_eq!(
            for_speech("<details><summary>More</summary>Hidden<br/>text</details> <!-- note -->"),
            "More Hidden text"
        );
        assert_eq!(for_speech("Keep 3 < 5 and 7 > 2."), "Keep 3 < 5 and 7 > 2.");
    }

    #[test]
    fn emoji_and_pictographs_are_removed() {
        assert_eq!(
            for_speech("Done ✅! Great work 🎉🚀. Thumbs 👍🏽 up ❤️ and 👨‍👩‍👧 family."),
            "Done! Great work. Thumbs up and family."
        );
        assert_eq!(for_speech("Flags 🇺🇸🏴󠁧󠁢󠁳󠁣󠁴󠁿 here ⚠️ ★ ⭐ 1️⃣."), "Flags here 1.");
        assert_eq!(for_speech("🎉"), "");
    }

    #[test]
    fn list_items_become_sentences() {
        let text = "Things to do:\n- update the readme\n* run the tests!\n+ [x] ship it\n1. first\n2) second,\n• bullet";
        assert_eq!(
            for_speech(text),
            "Things to do: update the readme. run the tests! ship it. first. second, bullet."
        );
        // An item's lazy continuation belongs to it.
        assert_eq!(
            for_speech("- one line\n  and more\n- two"),
            "one line and more. two."
        );
        // Not list markers.
        assert_eq!(for_speech("1.5 liters"), "1.5 liters");
    }

    #[test]
    fn paths_and_file_names_are_said_plainly() {
        assert_eq!(
            for_speech("Look in /usr/lib/x.so now."),
            "Look in x dot so now."
        );
        assert_eq!(for_speech("Edit ./src/main.rs."), "Edit main dot rs.");
        assert_eq!(
            for_speech("Open C:\\foo\\bar.txt please."),
            "Open bar dot txt please."
        );
        assert_eq!(
            for_speech("See crates/tessera/src/lib.rs and ~/notes/."),
            "See lib dot rs and notes."
        );
        assert_eq!(
            for_speech("The .env file and my_notes.tar.gz"),
            "The dot env file and my notes dot tar dot gz"
        );
        assert_eq!(
            for_speech("Visit example.com today."),
            "Visit example dot com today."
        );
        // Not paths or names.
        assert_eq!(
            for_speech("Use and/or at 24/7, e.g. 3.14 or v1.2, i.e. a Ph.D."),
            "Use and/or at 24/7, e.g. 3.14 or v1.2, i.e. a Ph.D."
        );
    }

    #[test]
    fn symbols_are_said_or_dropped() {
        assert_eq!(
            for_speech("Fix #42 in C# code, ~5 minutes, #rust: input -> output → done."),
            "Fix number 42 in C sharp code, about 5 minutes, rust: input to output to done."
        );
        assert_eq!(for_speech("the user_id field"), "the user id field");
        assert_eq!(for_speech("call __init__ twice"), "call init twice");
        assert_eq!(
            for_speech("Escaped \\*stars\\* stay quiet."),
            "Escaped stars stay quiet."
        );
    }

    #[test]
    fn paragraphs_end_as_sentences_only_when_more_follows() {
        assert_eq!(
            for_speech("First part\n\nSecond part"),
            "First part. Second part"
        );
        // A fragment, as a clause of streamed text, is left open.
        assert_eq!(for_speech("and then we"), "and then we");
        assert_eq!(for_speech("Wait,"), "Wait,");
    }

    #[test]
    fn thematic_breaks_are_dropped() {
        assert_eq!(
            for_speech("Above.\n\n---\n\nBelow.\n***\nEnd"),
            "Above. Below. End"
        );
    }

    #[test]
    fn realistic_assistant_reply() {
        let text = "## Build report 🚀\n\
            \n\
            I checked the project. Here's what I found:\n\
            \n\
            - **Tests**: all 42 pass ✅\n\
            - The config lives in `config/settings.toml`\n\
            - See [the CI run](https://github.com/org/repo/actions/runs/123) for details\n\
            \n\
            ```rust\n\
            fn main() {\n\
            \x20   println!(\"hello\");\n\
            }\n\
            ```\n\
            \n\
            | Step | Time |\n\
            |------|------|\n\
            | build | 2 min |\n\
            \n\
            > **Note:** the cache at /tmp/cache_dir/ is _not_ cleared.\n\
            \n\
            Let me know if you'd like me to open a PR at https://github.com/org/repo/pulls!";
        let spoken = for_speech(text);
        assert_eq!(
            spoken,
            "Build report. I checked the project. Here's what I found: \
             Tests: all 42 pass. The config lives in settings dot toml. \
             See the CI run for details. Step, Time. build, 2 min. \
             Note: the cache at cache dir is not cleared. \
             Let me know if you'd like me to open a PR at a link!"
        );
        for markup in ['*', '#', '`', '|', '_', '<', '>', '[', ']'] {
            assert!(!spoken.contains(markup), "{markup:?} left in {spoken:?}");
        }
        assert!(!spoken.contains("println") && !spoken.contains("github"));
    }

    #[test]
    fn block_state_waits_for_what_it_needs() {
        let mut state = BlockState::new();
        assert_eq!(state.advance("``", false), None);
        assert_eq!(state.advance("```rust", false), None);
        assert_eq!(state.advance("```rust", true), Some(LineKind::Code));
        assert!(state.in_fence());
        assert_eq!(state.advance("let x = 1;", false), None);
        assert_eq!(state.advance("```", true), Some(LineKind::Code));
        assert!(!state.in_fence());
        assert_eq!(state.advance("Hel", false), None);
        assert_eq!(state.advance("Hello there", false), Some(LineKind::Text));
        assert_eq!(state.advance("   ", false), None);
        assert_eq!(state.advance("", true), Some(LineKind::Blank));
        assert_eq!(state.advance("    code", false), Some(LineKind::Code));
        assert!(state.in_indented_code());
        assert_eq!(state.advance("~~~", false), None);
        assert_eq!(state.advance("~~~ python", false), Some(LineKind::Code));
        assert!(state.in_fence());
    }
}
