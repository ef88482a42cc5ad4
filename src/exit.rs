//! Exit codes (docs/operator-guide.md) and the error type commands return.

use crate::diagnostic::{Diagnostic, SourceMap};

/// Process exit codes, fixed by the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Succeeded, or the command did what it was asked.
    Ok = 0,
    /// Run failed, rejected, or rolled back.
    Failed = 1,
    /// Bad input: usage, script, validation, inventory, journal, changed runbook.
    BadInput = 2,
    /// Paused: a gate awaits approval or a decision is needed.
    Paused = 3,
    /// Cancelled by Ctrl-C / SIGTERM.
    Cancelled = 130,
}

/// A command's failure: what to print and the exit code. Errors are built from
/// [`Diagnostic`]s and rendered by [`crate::diagnostic::render`], so every error reads
/// alike; [`CliError::notice`] is for a stop that is not an error (a decision needed).
#[derive(Debug)]
pub(crate) struct CliError {
    /// Exit code.
    pub exit: Exit,
    /// Rendered text for stderr.
    message: String,
}

impl CliError {
    /// Bad input (exit 2): a problem with no position.
    pub(crate) fn bad_input(message: impl Into<String>) -> Self {
        Diagnostic::new(message).into()
    }

    /// Diagnostics with the sources their positions point into, and an exit code.
    pub(crate) fn diagnostics(exit: Exit, diags: &[Diagnostic], sources: &SourceMap) -> Self {
        Self {
            exit,
            message: crate::diagnostic::render(diags, sources),
        }
    }

    /// A stop that is not an error, printed as is (e.g. a choice the operator must make).
    pub(crate) fn notice(exit: Exit, text: impl Into<String>) -> Self {
        Self {
            exit,
            message: text.into(),
        }
    }

    /// The same error with another exit code.
    pub(crate) fn with_exit(mut self, exit: Exit) -> Self {
        self.exit = exit;
        self
    }

    /// What to print on stderr.
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
}

impl From<Diagnostic> for CliError {
    fn from(d: Diagnostic) -> Self {
        Self::diagnostics(Exit::BadInput, &[d], &SourceMap::default())
    }
}
