//! Estates: the servers a runbook acts on, behind one interface with two drivers.
//!
//! A runbook calls estate operations by name with a JSON argument map and gets a JSON
//! result; the table of operations is [`ops::OPS`]. The `lab` driver ([`lab`]) simulates
//! an estate and enforces ITMS.md's rules, for rehearsals; the `windows` driver
//! ([`windows`]) generates and runs the real PowerShell / T-SQL / ASDK calls.
//!
//! Architecture invariant: runbooks cannot tell the drivers apart except by asking
//! [`Estate::driver`]. Both take the same arguments, return the same result shapes and
//! fail with the same [`EstateError`] kinds. Nothing here knows about Rhai.

pub mod demo;
pub mod inventory;
pub mod itms;
pub mod lab;
pub mod names;
pub(crate) mod op;
pub mod ops;
pub mod quote;
pub(crate) mod results;
pub mod windows;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::cancel::{CancelReason, CancelToken};
use crate::diagnostic::Diagnostic;

pub use inventory::{Driver, Inventory, InventoryError, Role, Server, TransportKind};
pub use lab::LabEstate;
pub use ops::{ArgInfo, ArgKind, Args, OpInfo, OPS};
pub use windows::WindowsEstate;

/// What an operation needs from the step running it.
pub struct OpContext<'a> {
    /// Stop request (timeout, Ctrl-C); operations must honour it promptly.
    pub cancel: &'a CancelToken,
    /// Append a line to the step's log.
    pub log: &'a dyn Fn(&str),
    /// The run's secrets: whatever an estate writes down (the lab's record of each
    /// operation and its arguments) is scrubbed with it first.
    pub redactor: &'a crate::redact::Redactor,
}

/// The servers a runbook acts on.
pub trait Estate: Send + Sync {
    /// `"lab"`, `"windows"`, or `"none"` for an inventory without a driver.
    fn driver(&self) -> &'static str;

    /// The estate's inventory.
    fn inventory(&self) -> &Inventory;

    /// Run one operation on one server; blocking; honours `cx.cancel`.
    fn call(
        &self,
        op: &str,
        server: &str,
        args: &Map<String, Value>,
        cx: &OpContext,
    ) -> Result<Value, EstateError>;

    /// What `call` would do, for `--dry-run`: the exact scripts for windows, a
    /// one-line description for lab. Runs nothing.
    fn describe(
        &self,
        op: &str,
        server: &str,
        args: &Map<String, Value>,
    ) -> Result<Vec<String>, EstateError>;

    /// True for the simulated estate: the output must say it is a rehearsal.
    fn is_rehearsal(&self) -> bool {
        self.driver() == "lab"
    }
}

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

impl From<InventoryError> for EstateError {
    fn from(e: InventoryError) -> Self {
        EstateError::Inventory(e)
    }
}

/// Resolve and check a call: the operation's row, the server, and validated arguments.
pub(crate) fn prepare<'i, 'a>(
    inv: &'i Inventory,
    op: &str,
    server: &str,
    args: &'a Map<String, Value>,
) -> Result<(&'static OpInfo, &'i Server, Args<'a>), EstateError> {
    let info = ops::lookup(op)?;
    let srv = inv
        .server(server)
        .ok_or_else(|| EstateError::UnknownServer {
            server: server.to_string(),
            suggestion: crate::diagnostic::did_you_mean(
                server,
                inv.servers.iter().map(|s| s.name.as_str()),
            )
            .map(str::to_string),
        })?;
    if !info.roles.is_empty() && !srv.role.is_some_and(|r| info.roles.contains(&r)) {
        return Err(EstateError::WrongRole {
            op: op.to_string(),
            server: server.to_string(),
            role: srv.describe_role(),
        });
    }
    let a = Args::check(info, args)?;
    Ok((info, srv, a))
}

/// Open the estate of `inventory` (the built-in demo lab when `None`); lab state lives
/// under `state_dir/lab/`.
pub fn open(inventory: Option<&Path>, state_dir: &Path) -> Result<Arc<dyn Estate>, EstateError> {
    let inv = load_inventory(inventory)?;
    Ok(match inv.driver {
        Some(Driver::Lab) => Arc::new(LabEstate::new(inv, state_dir)),
        Some(Driver::Windows) => Arc::new(WindowsEstate::new(inv)),
        None => Arc::new(NoDriver(inv)),
    })
}

/// The estate of an inventory without a `driver`: a team's own servers, listed for
/// runbooks that `exec`/`sh` on them. Every estate operation fails and says what to add.
struct NoDriver(Inventory);

impl NoDriver {
    fn refuse(&self, op: &str) -> EstateError {
        match ops::lookup(op) {
            Err(e) => e,
            Ok(_) => EstateError::NoDriver {
                op: op.to_string(),
                inventory: self.0.origin.clone(),
            },
        }
    }
}

impl Estate for NoDriver {
    fn driver(&self) -> &'static str {
        "none"
    }

    fn inventory(&self) -> &Inventory {
        &self.0
    }

    fn call(
        &self,
        op: &str,
        _server: &str,
        _args: &Map<String, Value>,
        _cx: &OpContext,
    ) -> Result<Value, EstateError> {
        Err(self.refuse(op))
    }

    fn describe(
        &self,
        op: &str,
        _server: &str,
        _args: &Map<String, Value>,
    ) -> Result<Vec<String>, EstateError> {
        Err(self.refuse(op))
    }
}

/// The inventory at `path`, or the built-in demo estate.
pub fn load_inventory(path: Option<&Path>) -> Result<Inventory, EstateError> {
    match path {
        Some(p) => Ok(Inventory::load(p)?),
        None => Ok(demo::inventory()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_without_inventory_is_the_demo_rehearsal() {
        let dir = tempfile::tempdir().unwrap();
        let e = open(None, dir.path()).unwrap();
        assert_eq!(e.driver(), "lab");
        assert!(e.is_rehearsal());
        assert_eq!(e.inventory().name, "demo-lab");
    }

    #[test]
    fn open_windows_inventory_is_not_a_rehearsal() {
        let dir = tempfile::tempdir().unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/estates/windows.toml");
        let e = open(Some(&path), dir.path()).unwrap();
        assert_eq!(e.driver(), "windows");
        assert!(!e.is_rehearsal());
    }

    #[test]
    fn every_example_inventory_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/estates");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().and_then(|e| e.to_str()) == Some("toml") {
                Inventory::load(&p).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 7, "expected the example estates, found {n}");
    }

    #[test]
    fn prepare_checks_server_and_role() {
        let inv = demo::inventory();
        let none = Map::new();
        let e = prepare(&inv, "ns_upgrade", "ns-emae", &none).unwrap_err();
        assert!(e.to_string().contains("did you mean `ns-emea`?"), "{e}");
        let e = prepare(&inv, "ns_upgrade", "sql-hq", &none).unwrap_err();
        assert_eq!(e.kind(), "wrong_role");
        assert!(e.to_string().contains("`sql-hq` is a sql server"), "{e}");
    }
}
