//! Exit codes of SPEC §3 and the error type commands return.

/// Process exit codes, fixed by the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
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

/// A command's failure: what to print (already rendered) and the exit code.
#[derive(Debug)]
pub struct CliError {
    /// Exit code.
    pub exit: Exit,
    /// Rendered message for stderr.
    pub message: String,
}

impl CliError {
    /// Bad input (exit 2).
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self {
            exit: Exit::BadInput,
            message: message.into(),
        }
    }
}

impl From<crate::diagnostic::Diagnostic> for CliError {
    fn from(d: crate::diagnostic::Diagnostic) -> Self {
        Self::bad_input(crate::diagnostic::render(&[d], &Default::default()))
    }
}
