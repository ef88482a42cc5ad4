//! Why an estate operation did not succeed: one error type with stable kinds, shared by
//! every driver so runbooks handle a lab failure and a real one the same way, and
//! rendered as a [`Diagnostic`] like every other error.

use std::fmt;

use super::inventory::InventoryError;
use crate::cancel::CancelReason;
use crate::diagnostic::{Diagnostic, SourceMap};

/// One reason an operation was refused, with what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// What is wrong (names the server).
    pub message: String,
    /// How to fix it.
    pub fix: String,
}

impl Problem {
    /// A problem and its fix.
    pub fn new(message: impl Into<String>, fix: impl Into<String>) -> Problem {
        Problem {
            message: message.into(),
            fix: fix.into(),
        }
    }
}

/// Why an estate operation did not succeed.
#[derive(Debug)]
pub enum EstateError {
    /// No operation by that name.
    UnknownOp {
        /// The name asked for.
        op: String,
        /// A close name, if any.
        suggestion: Option<String>,
    },
    /// No server by that name in the inventory.
    UnknownServer {
        /// The name asked for.
        server: String,
        /// A close name, if any.
        suggestion: Option<String>,
    },
    /// The operation does not apply to this kind of server.
    WrongRole {
        /// Operation.
        op: String,
        /// Server.
        server: String,
        /// What it is ("a sql server", "a `web` server").
        role: String,
    },
    /// Arguments do not match the operation's table row.
    BadArgs {
        /// Operation.
        op: String,
        /// What is wrong.
        message: String,
    },
    /// A rule of ITMS.md forbids it now (a blocker); nothing was changed.
    Refused {
        /// Operation.
        op: String,
        /// Server.
        server: String,
        /// Every rule that was violated.
        problems: Vec<Problem>,
    },
    /// A fault that may go away on retry (network blip, injected lab fault).
    Transient {
        /// Operation.
        op: String,
        /// Server.
        server: String,
        /// What happened.
        message: String,
    },
    /// No scriptable form is known on this driver: the runbook must use a gate.
    Manual {
        /// Operation.
        op: String,
        /// Server.
        server: String,
        /// Why, and what the operator does instead.
        reason: String,
    },
    /// Stopped by timeout or Ctrl-C.
    Cancelled(CancelReason),
    /// The server could not be reached (no PowerShell, ssh failed, ...).
    Transport {
        /// Server.
        server: String,
        /// What happened.
        message: String,
    },
    /// The generated script ran and failed, or printed something unexpected.
    Script {
        /// Operation.
        op: String,
        /// Server.
        server: String,
        /// What happened (script error text included).
        message: String,
    },
    /// The lab state file could not be read or written.
    State {
        /// The file.
        path: String,
        /// What happened.
        message: String,
    },
    /// The inventory is invalid.
    Inventory(InventoryError),
    /// An estate operation was called on an inventory without a `driver`.
    NoDriver {
        /// Operation.
        op: String,
        /// The inventory file.
        inventory: String,
    },
}

impl EstateError {
    /// A stable short name of the error kind, for runbooks and the journal.
    pub fn kind(&self) -> &'static str {
        match self {
            EstateError::UnknownOp { .. } => "unknown_op",
            EstateError::UnknownServer { .. } => "unknown_server",
            EstateError::WrongRole { .. } => "wrong_role",
            EstateError::BadArgs { .. } => "bad_args",
            EstateError::Refused { .. } => "refused",
            EstateError::Transient { .. } => "transient",
            EstateError::Manual { .. } => "manual",
            EstateError::Cancelled(_) => "cancelled",
            EstateError::Transport { .. } => "transport",
            EstateError::Script { .. } => "script",
            EstateError::State { .. } => "state",
            EstateError::Inventory(_) => "inventory",
            EstateError::NoDriver { .. } => "no_driver",
        }
    }

    /// What to do about it: the fix of each problem of a refusal, else what the
    /// message itself says to do (empty when it says nothing more).
    pub fn fixes(&self) -> Vec<String> {
        match self {
            EstateError::Refused { problems, .. } => {
                problems.iter().map(|p| p.fix.clone()).collect()
            }
            EstateError::Manual { reason, .. } => vec![reason.clone()],
            EstateError::UnknownOp {
                suggestion: Some(s),
                ..
            }
            | EstateError::UnknownServer {
                suggestion: Some(s),
                ..
            } => vec![format!("did you mean `{s}`?")],
            _ => Vec::new(),
        }
    }

    /// True when retrying the same call may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, EstateError::Transient { .. })
    }
}

impl EstateError {
    /// Every problem as a [`Diagnostic`], with the text their positions point into: an
    /// inventory's problems each at its line and column, anything else [`Self::diagnostic`].
    pub fn diagnostics(&self) -> (Vec<Diagnostic>, SourceMap) {
        match self {
            EstateError::Inventory(e) => (e.diagnostics.clone(), e.sources.clone()),
            other => (vec![other.diagnostic()], SourceMap::default()),
        }
    }

    /// The error as a [`Diagnostic`]: the message, and the fix as help when there is one
    /// of its own. Display is its one-line form, so a thrown estate error and a printed
    /// one read the same.
    pub fn diagnostic(&self) -> Diagnostic {
        match self {
            EstateError::UnknownOp { op, suggestion } => {
                Diagnostic::new(format!("unknown estate operation `{op}`")).help(match suggestion {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "see docs/estate-ops.md for the list".to_string(),
                })
            }
            EstateError::UnknownServer { server, suggestion } => {
                let d = Diagnostic::new(format!("no server `{server}` in the inventory"));
                match suggestion {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d,
                }
            }
            other => Diagnostic::new(other.message()),
        }
    }

    fn message(&self) -> String {
        let mut f = String::new();
        let _ = self.write_message(&mut f);
        f
    }

    fn write_message(&self, f: &mut impl fmt::Write) -> fmt::Result {
        match self {
            EstateError::UnknownOp { .. } | EstateError::UnknownServer { .. } => {
                write!(f, "{}", self.diagnostic().message)
            }
            EstateError::WrongRole { op, server, role } => write!(
                f,
                "`{op}` applies to a Notification Server; `{server}` is {role}"
            ),
            EstateError::NoDriver { op, inventory } => write!(
                f,
                "`{op}` is an estate operation, but the inventory {inventory} has no `driver`: add driver = \"lab\" (a rehearsal) or driver = \"windows\" (real ITMS servers) at its top; see docs/estate-ops.md"
            ),
            EstateError::BadArgs { op, message } => write!(f, "`{op}`: {message}"),
            EstateError::Refused {
                op,
                server,
                problems,
            } => {
                write!(f, "`{op}` on `{server}` refused:")?;
                for p in problems {
                    write!(f, "\n  - {}\n    fix: {}", p.message, p.fix)?;
                }
                Ok(())
            }
            EstateError::Transient {
                op,
                server,
                message,
            } => write!(
                f,
                "`{op}` on `{server}` failed (transient, may be retried): {message}"
            ),
            EstateError::Manual { op, server, reason } => {
                write!(f, "`{op}` on `{server}` needs an operator: {reason}")
            }
            EstateError::Cancelled(CancelReason::Timeout) => {
                write!(f, "stopped: the step timed out")
            }
            EstateError::Cancelled(CancelReason::Interrupted) => write!(f, "stopped: interrupted"),
            EstateError::Transport { server, message } => {
                write!(f, "cannot reach `{server}`: {message}")
            }
            EstateError::Script {
                op,
                server,
                message,
            } => write!(f, "`{op}` on `{server}` failed: {message}"),
            EstateError::State { path, message } => write!(f, "lab state {path}: {message}"),
            EstateError::Inventory(e) => write!(f, "{e}"),
        }
    }
}

impl fmt::Display for EstateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic().inline())
    }
}

impl std::error::Error for EstateError {}

impl From<EstateError> for crate::exit::CliError {
    fn from(e: EstateError) -> Self {
        let (diags, sources) = e.diagnostics();
        Self::diagnostics(crate::exit::Exit::BadInput, &diags, &sources)
    }
}

impl From<InventoryError> for EstateError {
    fn from(e: InventoryError) -> Self {
        EstateError::Inventory(e)
    }
}
