//! Diagnostics: every error waymark reports — about a script, a plan, an input file or a
//! command line — with its position when it has one, rendered in one place as
//! `error: …`, `path:line:col`, the source line and a caret. [`error_line`] is the only
//! code that writes `error:`; [`did_you_mean`] the only typo matcher; errors that travel
//! as one line (a step's error, a thrown estate error) use [`Diagnostic::inline`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// A position in a source file (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SrcPos {
    /// Display name of the file (a path, or `stdlib/NAME.rhai` for embedded modules).
    pub file: Arc<str>,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
}

impl std::fmt::Display for SrcPos {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A position with a short message shown under the caret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Where.
    pub pos: SrcPos,
    /// What is there (may be empty).
    pub message: String,
}

/// One problem found in the input, with enough context to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// One-line statement of the problem.
    pub message: String,
    /// The main position, when the problem has one.
    pub primary: Option<Label>,
    /// Other relevant positions (the first declaration of a duplicate, cycle members).
    pub secondary: Vec<Label>,
    /// How to fix it.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with no position (command-line problems).
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            primary: None,
            secondary: Vec::new(),
            help: None,
        }
    }

    /// A diagnostic at `pos`.
    pub fn at(pos: Option<SrcPos>, message: impl Into<String>) -> Self {
        let mut d = Self::new(message);
        d.primary = pos.map(|pos| Label {
            pos,
            message: String::new(),
        });
        d
    }

    /// Add a fix suggestion.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Add a secondary position.
    pub fn also(mut self, pos: Option<SrcPos>, message: impl Into<String>) -> Self {
        if let Some(pos) = pos {
            self.secondary.push(Label {
                pos,
                message: message.into(),
            });
        }
        self
    }

    /// One line for places that carry text rather than print it (a step's error in the
    /// journal, an estate error thrown into a script): the message, then `; help`.
    pub fn inline(&self) -> String {
        match &self.help {
            Some(h) => format!("{}; {h}", self.message),
            None => self.message.clone(),
        }
    }

    /// Label the primary position.
    pub fn label(mut self, message: impl Into<String>) -> Self {
        if let Some(p) = self.primary.as_mut() {
            p.message = message.into();
        }
        self
    }
}

/// One source file's text with an index of where its lines start.
#[derive(Debug)]
struct SourceFile {
    text: Arc<str>,
    line_starts: Vec<usize>,
}

/// The texts of every file a load read, for rendering source lines.
#[derive(Debug, Clone, Default)]
pub struct SourceMap {
    files: HashMap<Arc<str>, Arc<SourceFile>>,
}

impl SourceMap {
    /// Remember `text` as the content of `file`.
    pub fn insert(&mut self, file: Arc<str>, text: Arc<str>) {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        self.files
            .insert(file, Arc::new(SourceFile { text, line_starts }));
    }

    /// Every file read, with its text.
    pub fn files(&self) -> impl Iterator<Item = (&Arc<str>, &Arc<str>)> {
        self.files.iter().map(|(k, f)| (k, &f.text))
    }

    /// The content of `file`, if it was read.
    pub fn get(&self, file: &str) -> Option<&Arc<str>> {
        self.files.get(file).map(|f| &f.text)
    }

    /// Line `line` (1-based) of `file`, without its newline.
    pub fn line(&self, file: &str, line: usize) -> Option<&str> {
        self.files.get(file)?.line(line)
    }

    /// Number of lines of `file`.
    pub fn line_count(&self, file: &str) -> usize {
        self.files.get(file).map_or(0, |f| f.line_starts.len())
    }

    /// Byte offset of a (line, column) position; Rhai columns count characters.
    pub fn offset(&self, file: &str, line: usize, col: usize) -> Option<usize> {
        self.files.get(file)?.offset(line, col)
    }

    /// Text between two positions (inclusive of the end column), used for closure source.
    /// The file is looked up once: this runs for every closure of a load.
    pub fn slice(&self, file: &str, start: (usize, usize), end: (usize, usize)) -> Option<String> {
        let f = self.files.get(file)?;
        let text = &f.text;
        let a = f.offset(start.0, start.1)?;
        let b = f.offset(end.0, end.1)?;
        let b = (b + text[b..].chars().next().map_or(0, char::len_utf8)).min(text.len());
        (a <= b).then(|| text[a..b].to_string())
    }
}

impl SourceFile {
    fn line(&self, line: usize) -> Option<&str> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |e| e - 1);
        self.text.get(start..end).map(|l| l.trim_end_matches('\r'))
    }

    fn offset(&self, line: usize, col: usize) -> Option<usize> {
        let start = *self.line_starts.get(line.checked_sub(1)?)?;
        let l = self.line(line)?;
        let before = col.saturating_sub(1);
        // Where the characters before the column are ASCII, their count is their length,
        // checked in bulk rather than walked one by one (every closure is sliced).
        let idx = match l.as_bytes().get(..before) {
            Some(b) if b.is_ascii() => before,
            _ => l.char_indices().nth(before).map_or(l.len(), |(b, _)| b),
        };
        Some(start + idx)
    }
}

/// Render diagnostics as the terminal shows them: `error: ...`, `--> file:line:col`,
/// the source line, a caret under the column, then `help:`.
pub fn render(diags: &[Diagnostic], sources: &SourceMap) -> String {
    let mut out = String::new();
    for d in diags {
        let _ = writeln!(out, "{}", error_line(&d.message));
        if let Some(p) = &d.primary {
            render_label(&mut out, p, sources);
        }
        for s in &d.secondary {
            render_label(&mut out, s, sources);
        }
        if let Some(h) = &d.help {
            let _ = writeln!(out, "  = help: {h}");
        }
        out.push('\n');
    }
    let n = diags.len();
    if n > 1 {
        let _ = writeln!(out, "{n} errors");
    }
    out
}

fn render_label(out: &mut String, label: &Label, sources: &SourceMap) {
    let p = &label.pos;
    let _ = writeln!(out, "  --> {p}");
    let line_text = sources.line(&p.file, p.line);
    if let Some(text) = line_text {
        let num = p.line.to_string();
        let pad = " ".repeat(num.len());
        let shown: String = text.replace('\t', " ");
        let caret_pad: String = shown
            .chars()
            .take(p.col.saturating_sub(1))
            .map(|c| if c.is_whitespace() { c } else { ' ' })
            .collect();
        let _ = writeln!(out, "   {pad} |");
        let _ = writeln!(out, "   {num} | {shown}");
        let msg = if label.message.is_empty() {
            String::new()
        } else {
            format!(" {}", label.message)
        };
        let _ = writeln!(out, "   {pad} | {caret_pad}^{msg}");
    } else if !label.message.is_empty() {
        let _ = writeln!(out, "       {}", label.message);
    }
}

/// `error: MESSAGE`: the one place the word is written, so every error reads alike.
pub fn error_line(message: &str) -> String {
    format!("error: {message}")
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo, for
/// "did you mean" hints. Case is ignored, and a truncated name of at least four
/// characters ("replication" for "replication_enabled") counts as one edit away.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lw = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            let lc = c.to_lowercase();
            let d = if lw.len() >= 4 && lc.starts_with(&lw) {
                1
            } else {
                strsim::damerau_levenshtein(&lw, &lc)
            };
            (d, c)
        })
        .filter(|(d, c)| *d <= 2.max(c.len() / 3) && *d < c.len().max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_caret_under_column() {
        let mut sm = SourceMap::default();
        let f: Arc<str> = "rb.rhai".into();
        sm.insert(f.clone(), "let x = 1;\n  step(\"a\", #{});\n".into());
        let d = Diagnostic::at(
            Some(SrcPos {
                file: f,
                line: 2,
                col: 3,
            }),
            "something is wrong",
        )
        .label("here")
        .help("fix it");
        let r = render(&[d], &sm);
        assert!(r.contains("error: something is wrong"), "{r}");
        assert!(r.contains("--> rb.rhai:2:3"), "{r}");
        assert!(r.contains("2 |   step(\"a\", #{});"), "{r}");
        assert!(r.contains("  |   ^ here"), "{r}");
        assert!(r.contains("= help: fix it"), "{r}");
    }

    /// A column counts characters: after a non-ASCII one the byte offset is larger; a
    /// column past the line's end is the line's end (its `\r` left out).
    #[test]
    fn offsets_count_characters_ascii_or_not() {
        let mut sm = SourceMap::default();
        sm.insert("f".into(), "ab|x\r\n\"é\" |y\nz".into());
        assert_eq!(sm.offset("f", 1, 3), Some(2));
        assert_eq!(sm.offset("f", 1, 9), Some(4));
        assert_eq!(sm.offset("f", 2, 5), Some(6 + 5));
        assert_eq!(sm.slice("f", (2, 5), (2, 6)).unwrap(), "|y");
        assert_eq!(sm.slice("f", (2, 1), (2, 3)).unwrap(), "\"é\"");
        assert_eq!(sm.offset("f", 3, 1), Some(14));
        assert_eq!(sm.offset("f", 4, 1), None);
        assert_eq!(sm.offset("g", 1, 1), None);
    }

    #[test]
    fn slices_multiline_text() {
        let mut sm = SourceMap::default();
        sm.insert("f".into(), "ab{\n  x\n}cd".into());
        assert_eq!(sm.slice("f", (1, 3), (3, 1)).unwrap(), "{\n  x\n}");
    }

    #[test]
    fn suggests_close_words_only() {
        let c = ["retries", "retry_delay", "timeout"];
        assert_eq!(did_you_mean("retires", c), Some("retries"));
        assert_eq!(did_you_mean("timout", c), Some("timeout"));
        assert_eq!(did_you_mean("banana", c), None);
        assert_eq!(did_you_mean("TIMEOUT", c), Some("timeout"));
        assert_eq!(
            did_you_mean("replication", ["replication_enabled", "iis"]),
            Some("replication_enabled")
        );
    }

    #[test]
    fn inline_joins_message_and_help() {
        let d = Diagnostic::new("no server `x`").help("did you mean `y`?");
        assert_eq!(d.inline(), "no server `x`; did you mean `y`?");
        assert_eq!(Diagnostic::new("plain").inline(), "plain");
    }
}
