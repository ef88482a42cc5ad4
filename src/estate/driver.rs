//! The interface every driver implements ([`Estate`]), what an operation gets from the
//! step running it ([`OpContext`]), and the checks every call goes through first
//! ([`prepare`]): the operation's row, the server and its role, the arguments.

use serde_json::{Map, Value};

use super::error::EstateError;
use super::inventory::{Inventory, Server};
use super::ops::{self, Args, OpInfo};
use crate::cancel::CancelToken;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_checks_server_and_role() {
        let inv = crate::estate::demo::inventory();
        let none = Map::new();
        let e = prepare(&inv, "ns_upgrade", "ns-emae", &none).unwrap_err();
        assert!(e.to_string().contains("did you mean `ns-emea`?"), "{e}");
        let e = prepare(&inv, "ns_upgrade", "sql-hq", &none).unwrap_err();
        assert_eq!(e.kind(), "wrong_role");
        assert!(e.to_string().contains("`sql-hq` is a sql server"), "{e}");
    }
}
