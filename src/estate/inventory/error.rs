//! Problems found in an inventory file, gathered in one pass with their positions.

use std::fmt;

/// One problem in an inventory file.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryDiagnostic {
    /// 1-based line, 0 when the problem has no position.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

/// Every problem found in an inventory file; renders as `FILE:LINE:COL: message` + `help:`.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryError {
    /// The file (or `<demo>`).
    pub file: String,
    /// The problems, in file order.
    pub diagnostics: Vec<InventoryDiagnostic>,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if d.line == 0 {
                write!(f, "{}: {}", self.file, d.message)?;
            } else {
                write!(f, "{}:{}:{}: {}", self.file, d.line, d.col, d.message)?;
            }
            if let Some(h) = &d.help {
                write!(f, "\n  help: {h}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for InventoryError {}

/// Gathers the problems of one inventory text, each at a byte offset of it.
pub(super) struct Collector<'s> {
    pub(super) source: &'s str,
    diags: Vec<(usize, InventoryDiagnostic)>,
}

impl<'s> Collector<'s> {
    pub(super) fn new(source: &'s str) -> Self {
        Collector {
            source,
            diags: Vec::new(),
        }
    }

    /// Record a problem at byte `offset` of the source.
    pub(super) fn at(&mut self, offset: usize, message: String, help: Option<String>) {
        let (line, col) = line_col(self.source, offset);
        self.diags.push((
            offset,
            InventoryDiagnostic {
                line,
                col,
                message,
                help,
            },
        ));
    }

    /// 1-based line of a byte offset of the source.
    pub(super) fn line_of(&self, offset: usize) -> usize {
        line_col(self.source, offset).0
    }

    /// Every problem recorded, in file order, as the error of `file`; `Ok` when none.
    pub(super) fn finish(mut self, file: &str) -> Result<(), InventoryError> {
        if self.diags.is_empty() {
            return Ok(());
        }
        self.diags.sort_by_key(|(o, _)| *o);
        Err(InventoryError {
            file: file.to_string(),
            diagnostics: self.diags.into_iter().map(|(_, d)| d).collect(),
        })
    }
}

/// 1-based line and column of a byte offset.
pub(super) fn line_col(source: &str, offset: usize) -> (usize, usize) {
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
