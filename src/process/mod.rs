//! Child processes of steps: the layer under the DSL's `exec`, `sh` and `ps`.
//!
//! A [`ProcessSpec`] says what to run; [`run_process`] runs it without a shell, in
//! a process group of its own, streaming its output line by line into the step's
//! [`StepLog`](crate::step_log::StepLog) while keeping a bounded capture for the
//! script. A step's timeout or Ctrl-C (its [`CancelToken`](crate::cancel::CancelToken))
//! stops the whole group — grandchildren included — with SIGTERM, then SIGKILL
//! (SPEC §2). A non-zero exit is a result, not an error: the DSL decides (`check`).
//!
//! Architecture invariant: this module knows nothing about Rhai or the scheduler;
//! it takes plain values and a cancel token.

mod capture;
mod child_io;
mod error;
mod gate;
pub(crate) mod group;
mod lookup;
pub(crate) mod powershell;
mod run;
#[cfg(target_os = "linux")]
mod spawn;
mod spec;
mod start;

pub(crate) use error::ProcessError;
pub(crate) use gate::die_with_parent;
pub(crate) use gate::{with_spawn_hook, SpawnHook, SpawnedGroup};
pub(crate) use powershell::{find_powershell, ps_spec};
pub(crate) use run::{run_process, ProcessOutput, KILL_GRACE};
pub(crate) use spec::{describe, sh_spec, ProcessSpec};
