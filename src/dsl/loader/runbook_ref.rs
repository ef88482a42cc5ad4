//! Where a runbook comes from: a file, a shipped name, or the sources a run's journal
//! recorded — and how each is named in messages and the journal.

use crate::diagnostic::{did_you_mean, Diagnostic};
use crate::shipped;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a runbook comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunbookRef {
    /// A file on disk.
    Path(PathBuf),
    /// A runbook shipped inside the binary (`itms-7.6/onbox`).
    Shipped(String),
    /// The sources a run's journal recorded: `main` among `files` (file → text). Imports
    /// resolve among `files` only, so the definitions a run started with can be rebuilt
    /// after the files (or the binary's stdlib) changed, to show what changed.
    Recorded {
        /// The runbook's own file, a key of `files`.
        main: String,
        /// Every file the run's load read.
        files: Arc<BTreeMap<String, String>>,
    },
}

impl RunbookRef {
    /// What a run's journal records so `resume` finds the same runbook from any working
    /// directory: a file's absolute path, or the shipped name.
    pub fn journal_source(&self) -> String {
        match self {
            RunbookRef::Path(p) => std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string(),
            RunbookRef::Shipped(name) => name.clone(),
            RunbookRef::Recorded { main, .. } => main.clone(),
        }
    }

    /// Interpret a RUNBOOK argument: an existing file wins, then a shipped name.
    pub fn from_arg(arg: &str) -> Result<Self, Diagnostic> {
        let p = Path::new(arg);
        if p.is_file() {
            return Ok(RunbookRef::Path(p.to_path_buf()));
        }
        if shipped::runbook(arg).is_some() {
            return Ok(RunbookRef::Shipped(
                arg.strip_suffix(".rhai").unwrap_or(arg).to_string(),
            ));
        }
        let names = shipped::runbook_names();
        let mut d = Diagnostic::new(format!(
            "no runbook file `{arg}` and no shipped runbook of that name"
        ));
        d.help = Some(match did_you_mean(arg, names.iter().copied()) {
            Some(n) => {
                format!("did you mean the shipped runbook `{n}`? (`waymark list` shows them all)")
            }
            None if p.exists() => format!("`{arg}` is not a file"),
            None => "give the path of a .rhai file, or a name from `waymark list`".into(),
        });
        Err(d)
    }

    /// How the runbook is named in messages and the journal.
    pub fn display(&self) -> String {
        match self {
            RunbookRef::Path(p) => p.display().to_string(),
            RunbookRef::Shipped(n) => n.clone(),
            RunbookRef::Recorded { main, .. } => format!("{main} (as recorded)"),
        }
    }
}
