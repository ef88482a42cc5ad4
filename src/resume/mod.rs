//! What `resume` and `rollback` do with a run, decided from its replayed journal and
//! the reloaded plan alone: no terminal, no files, no clock, so every rule is unit-tested
//! here and `cli/resume_cmds.rs` keeps only the prompts, the printing and the calls.
//!
//! [`decide`] says, for a resume, which steps are kept, which run again, which a probe
//! settles and which need a person (a changed step that already succeeded, an in-flight
//! step that is neither idempotent nor probed); [`rollback`] says which undos run, in
//! which order, with which recorded outputs.

mod decide;
pub(crate) mod rollback;

pub(crate) use decide::{decide, differs, Decision, InFlight};

/// Options of `waymark resume`.
#[derive(Debug, Clone, Default)]
pub(crate) struct ResumeOptions {
    /// Re-run these in-flight steps.
    pub rerun: Vec<String>,
    /// Declare these in-flight steps done.
    pub mark_done: Vec<String>,
    /// Re-run this step and everything downstream.
    pub from: Option<String>,
    /// Accept changes to steps that already succeeded.
    pub accept_changes: bool,
    /// What to do with process groups a crashed run left running (`None`: ask in a
    /// terminal, else stop with exit 3).
    pub orphans: Option<OrphanChoice>,
    /// `--orphans-checked`: the process groups another host started were checked there
    /// and are gone (`crate::orphans::Elsewhere`).
    pub orphans_checked: bool,
}

/// `--kill-orphans` / `--wait-orphans`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrphanChoice {
    /// Stop the groups (SIGTERM, then SIGKILL).
    Kill,
    /// Wait until they end by themselves.
    Wait,
}

impl OrphanChoice {
    /// From `--kill-orphans` / `--wait-orphans` (clap makes them exclusive).
    pub(crate) fn from_flags(kill: bool, wait: bool) -> Option<Self> {
        match (kill, wait) {
            (true, _) => Some(OrphanChoice::Kill),
            (false, true) => Some(OrphanChoice::Wait),
            (false, false) => None,
        }
    }
}

/// What a resume hands to the run beyond a fresh start: approvals already journaled and
/// in-flight steps whose `check` probe decides whether they already happened.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Resumed {
    /// Who started the run, when resuming one.
    pub starter: Option<String>,
    /// (gate index, approver) pairs already in the journal.
    pub approvals: Vec<(usize, String)>,
    /// Gates that began waiting in an earlier process, and when.
    pub waiting_since: Vec<(usize, std::time::SystemTime)>,
    /// Steps found in flight that have a `check` probe.
    pub probe: Vec<usize>,
}
