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
}

impl<'s> Collector<'s> {
    pub(super) fn new(source: &'s str, file: &str) -> Self {
        Collector {
            source,
            file: file.into(),
            diags: Vec::new(),
        }
    }

    /// Record a problem at byte `offset` of the source.
    pub(super) fn at(&mut self, offset: usize, message: String, help: Option<String>) {
        let d = at(&self.file, self.source, Some(offset), message, help);
        self.diags.push((offset, d));
    }

    /// 1-based line of a byte offset of the source.
    pub(super) fn line_of(&self, offset: usize) -> usize {
        line_col(self.source, offset).0
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
