//! The runbook language: a sandboxed Rhai engine, the declaration functions and the
//! primitives available inside steps. Loading evaluates a script once and yields typed
//! declarations; nothing here schedules or persists anything.

pub mod callees;
pub mod clock;
pub mod declaration;
pub mod engine;
pub mod estate_ops;
pub mod exec;
pub mod inventory_fns;
pub mod loader;
pub mod options;
pub mod positions;
pub mod primitives;
pub mod remote;
pub mod resolver;
pub mod rollout;
pub mod step_env;
pub mod strict;
pub mod unknown;

pub use declaration::{Callable, Dep, ParamDecl, RunbookDecl, StepDecl, StepKind, When};
pub use loader::{load, LoadError, LoadRequest, Runbook, RunbookRef};
