//! The table of estate operations: names, arguments, results. Both drivers implement
//! exactly this table, and the DSL registers one Rhai function per row without any
//! per-operation code, so this table *is* the estate's contract with runbooks.
//!
//! `docs/estate-ops.md` is generated from it ([`ops_markdown`]) and a test keeps the two equal.
//! Layout: `table` is the rows, `args` checks a call's arguments against its row,
//! `docs` renders the table for `docs/estate-ops.md`; this file is the row's types.

mod args;
#[cfg(test)]
mod docs;
mod table;
#[cfg(test)]
mod tests;

pub(crate) use self::args::Args;
pub use self::table::OPS;

use super::error::EstateError;
use super::itms::Role;
use super::op::Op;
use crate::diagnostic::did_you_mean;

/// The JSON type an argument takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A string (no `"` or control characters: it may reach a native command line).
    Str,
    /// A Windows path (no characters Windows forbids in paths).
    Path,
    /// `true` / `false`.
    Bool,
    /// An integer.
    Int,
    /// A duration string such as `"24h"`.
    Duration,
    /// An array of strings (or of objects with an `"id"` string, for policy lists).
    List,
    /// An object.
    Map,
}

impl ArgKind {
    #[cfg(test)]
    fn name(self) -> &'static str {
        match self {
            ArgKind::Str => "string",
            ArgKind::Path => "path",
            ArgKind::Bool => "bool",
            ArgKind::Int => "int",
            ArgKind::Duration => "duration",
            ArgKind::List => "list",
            ArgKind::Map => "map",
        }
    }

    fn with_article(self) -> &'static str {
        match self {
            ArgKind::Int => "an int",
            ArgKind::Str => "a string",
            ArgKind::Path => "a path (string)",
            ArgKind::Bool => "a bool",
            ArgKind::Duration => "a duration string",
            ArgKind::List => "a list",
            ArgKind::Map => "a map",
        }
    }
}

/// One documented argument of an operation.
#[derive(Debug, Clone, Copy)]
pub struct ArgInfo {
    /// Key in the argument map.
    pub name: &'static str,
    /// JSON type.
    pub kind: ArgKind,
    /// Must be given.
    pub required: bool,
    /// Default used when absent (machine-read for scalar kinds; prose for lists).
    pub default: Option<&'static str>,
    /// What it means.
    pub help: &'static str,
}

/// One estate operation.
#[derive(Debug, Clone, Copy)]
pub struct OpInfo {
    /// Name, as called from runbooks.
    pub name: &'static str,
    /// One line: what it does.
    pub summary: &'static str,
    /// Changes the estate (false = read-only probe, safe to repeat).
    pub mutating: bool,
    /// No scriptable form is known on real servers: the windows driver refuses it and a
    /// runbook must make it a gate (whose `rehearse` may call it in the lab).
    pub manual_on_windows: bool,
    /// Roles of the server it applies to (empty = any role).
    pub roles: &'static [Role],
    /// Documented arguments; any other key is an error.
    pub args: &'static [ArgInfo],
    /// Shape of the JSON result.
    pub result: &'static str,
}

impl OpInfo {
    /// The argument names, in table order.
    pub fn arg_names(&self) -> Vec<&'static str> {
        self.args.iter().map(|a| a.name).collect()
    }

    /// The operation of this row (rows come from the table, so this fails only when
    /// the table and [`Op`] disagree, which a test rules out).
    pub(crate) fn op(&self) -> Result<Op, EstateError> {
        Op::from_name(self.name).ok_or_else(|| EstateError::UnknownOp {
            op: self.name.to_string(),
            suggestion: None,
        })
    }
}

/// The operation called `name`.
pub(crate) fn op_info(name: &str) -> Option<&'static OpInfo> {
    OPS.iter().find(|o| o.name == name)
}

/// Look an operation up, or explain which names exist.
pub(crate) fn lookup(name: &str) -> Result<&'static OpInfo, EstateError> {
    op_info(name).ok_or_else(|| EstateError::UnknownOp {
        op: name.to_string(),
        suggestion: did_you_mean(name, OPS.iter().map(|o| o.name)).map(str::to_string),
    })
}
