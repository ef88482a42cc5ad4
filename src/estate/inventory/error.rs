//! Problems found in an inventory file, gathered in one pass with their positions, as
//! [`Diagnostic`]s: they render through `crate::diagnostic` like a script's, with the
//! source line and a caret under the column.

use std::fmt;
use std::sync::Arc;

use crate::diagnostic::{render, Diagnostic, SourceMap, SrcPos};

/// Every problem found in an inventory file, in file order, with the text they point into.
#[derive(Debug, Clone)]
pub struct InventoryError {
    /// The file (or `<demo>`).
    pub file: String,
    /// The problems, in file order.
    pub diagnostics: Vec<Diagnostic>,
    /// The inventory's text, for the source lines of the rendering.
    pub sources: SourceMap,
}

impl InventoryError {
    /// The error of `file` (whose text is `source`, when it could be read).
    pub(super) fn new(file: &str, source: Option<&str>, diagnostics: Vec<Diagnostic>) -> Self {
        let mut sources = SourceMap::default();
        if let Some(text) = source {
            sources.insert(file.into(), text.into());
        }
        InventoryError {
            file: file.to_string(),
            diagnostics,
            sources,
        }
    }

    /// As the terminal shows it: each problem with its source line, caret and help.
    pub fn render(&self) -> String {
        render(&self.diagnostics, &self.sources)
    }
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.render().trim_end())
    }
}

impl std::error::Error for InventoryError {}

/// Gathers the problems of one inventory text, each at a byte offset of it.
pub(super) struct Collector<'s> {
    pub(super) source: &'s str,
    file: Arc<str>,
    diags: Vec<(usize, Diagnostic)>,
    // Byte offset of each line's start, made on first use: every server records its
    // line, and counting newlines from the top each time made loading an inventory
    // quadratic in its size (a third of a 2,000-server lab run's time).
    line_starts: std::cell::OnceCell<Vec<usize>>,
}

impl<'s> Collector<'s> {
    pub(super) fn new(source: &'s str, file: &str) -> Self {
        Collector {
            source,
            file: file.into(),
            diags: Vec::new(),
            line_starts: std::cell::OnceCell::new(),
        }
    }

    /// 1-based line and column of a byte offset of the source ([`line_col`], indexed).
    fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.source.len());
        let starts = self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.source.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        });
        // The last line start at or before `offset`; there is always one (0).
        let line = starts.partition_point(|&s| s <= offset).max(1);
        let start = starts.get(line - 1).copied().unwrap_or(0);
        let col = self
            .source
            .get(start..offset)
            .map_or(0, |l| l.chars().count())
            + 1;
        (line, col)
    }

    /// Record a problem at byte `offset` of the source.
    pub(super) fn at(&mut self, offset: usize, message: String, help: Option<String>) {
        let d = at(&self.file, self.source, Some(offset), message, help);
        self.diags.push((offset, d));
    }

    /// 1-based line of a byte offset of the source.
    pub(super) fn line_of(&self, offset: usize) -> usize {
        self.position(offset).0
    }

    /// Every problem recorded, in file order, as the error of the file; `Ok` when none.
    pub(super) fn finish(mut self) -> Result<(), InventoryError> {
        if self.diags.is_empty() {
            return Ok(());
        }
        self.diags.sort_by_key(|(o, _)| *o);
        let diags = self.diags.into_iter().map(|(_, d)| d).collect();
        Err(InventoryError::new(&self.file, Some(self.source), diags))
    }
}

/// A problem at byte `offset` of `source` (the text of `file`), or about the file as a
/// whole when `offset` is `None`.
pub(super) fn at(
    file: &str,
    source: &str,
    offset: Option<usize>,
    message: String,
    help: Option<String>,
) -> Diagnostic {
    let pos = offset.map(|o| {
        let (line, col) = line_col(source, o);
        SrcPos {
            file: file.into(),
            line,
            col,
        }
    });
    let d = Diagnostic::at(pos, message);
    match help {
        Some(h) => d.help(h),
        None => d,
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_server_counted_lines_from_the_top_so_loading_big_inventories_went_quadratic() {
        // The indexed position of every offset agrees with counting from the top.
        let source = "name = \"é\"\n\n[[server]]\nname = \"ns-ü\"\r\nrole = \"ns\"\n";
        let c = Collector::new(source, "t.toml");
        for offset in
            (0..=source.len() + 3).filter(|&o| source.is_char_boundary(o.min(source.len())))
        {
            assert_eq!(
                c.position(offset),
                line_col(source, offset),
                "offset {offset}"
            );
        }
        assert_eq!(Collector::new("", "t.toml").position(0), (1, 1));
    }
}
