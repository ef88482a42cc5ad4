//! The runbook language: a sandboxed Rhai engine, the declaration functions and the
//! primitives available inside steps. Loading evaluates a script once and yields typed
//! declarations; nothing here schedules or persists anything.

pub(crate) mod callees;
pub(crate) mod clock;
pub(crate) mod declaration;
pub mod engine;
pub mod estate_ops;
pub mod exec;
pub(crate) mod inventory_fns;
pub(crate) mod loader;
pub mod options;
pub(crate) mod positions;
pub mod primitives;
pub(crate) mod recent;
pub(crate) mod remote;
pub(crate) mod resolver;
pub mod rollout;
pub(crate) mod step_env;
pub mod strict;
pub(crate) mod unknown;

pub use declaration::{Callable, Dep, ParamDecl, RunbookDecl, StepDecl, StepKind, When, CLOSURES};
pub use loader::{load, LoadError, LoadRequest, Runbook, RunbookRef};
