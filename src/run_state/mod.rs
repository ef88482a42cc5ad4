//! The state of a run, derived by replaying its journal: the one place that says what
//! the records mean for `status`, `runs` and `resume`.
//!
//! Nothing here is stored: the journal is the truth and [`RunState::replay`] is a pure
//! function of its records plus one fact the journal cannot hold, whether a process still
//! holds the run's lock. That fact separates a live run (`running`, its in-flight steps
//! `running`) from a dead one (`crashed`, its in-flight steps `unknown`).
//!
//! The files follow the concepts: [`RunStatus`] and [`StepState`] (`states.rs`), one
//! step's derived state (`step.rs`), the replay that builds them (`replay.rs`), the
//! `status --json` document (`status_json.rs`), the run-level [`RunSummary`]
//! (`summary.rs`) and the listing of a state directory's runs (`listing.rs`).

mod listing;
mod replay;
mod states;
mod status_json;
mod step;
mod summary;
#[cfg(test)]
pub(crate) mod tests;

pub(crate) use listing::list_runs;
pub(crate) use states::{RunStatus, StepState};
pub(crate) use step::StepStatus;
pub(crate) use summary::RunSummary;

use crate::hashing::FastMap;
use crate::journal::record::Record;
use crate::journal::JournalError;
use crate::state::Run;
use replay::Replay;
use std::collections::BTreeMap;

/// The derived state of a run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunState {
    /// The run's id.
    pub run_id: String,
    /// The runbook's declared name.
    pub runbook: String,
    /// What the user passed as RUNBOOK, to reload it on resume.
    pub source: String,
    /// Parameters recorded at start.
    pub params: BTreeMap<String, String>,
    /// Inventory file recorded at start.
    pub inventory: Option<String>,
    /// Who started the run.
    pub user: String,
    /// Where it was started.
    pub host: String,
    /// Fingerprint of the plan as of the latest start or resume.
    pub plan_fingerprint: String,
    /// When the run started.
    pub started_at: Option<String>,
    /// When it last finished; cleared by a resume.
    pub finished_at: Option<String>,
    /// Where the run stands.
    pub status: RunStatus,
    /// Every step, in plan order, then steps first seen later (added on resume).
    pub steps: Vec<StepStatus>,
    /// Why the run paused, while it is paused.
    pub paused_reason: Option<String>,
    /// What a paused run waits on.
    pub waiting_on: Vec<String>,
    /// How many times the run was resumed.
    pub resumes: u32,
    /// Sequence number of the last record replayed.
    pub last_seq: u64,
    /// The latest source snapshot: (main file, file → text), for diffs of changed steps.
    pub sources: Option<(String, BTreeMap<String, String>)>,
    /// Step name → position in `steps`, so lookups stay O(1) on 10,000-step runs.
    pub(super) index: FastMap<String, usize>,
}

impl RunState {
    /// Derive a run's state from its records; `lock_held` says whether a process drives it.
    pub(crate) fn replay(records: &[Record], lock_held: bool) -> RunState {
        let mut replay = Replay::default();
        for record in records {
            replay.apply(record);
        }
        replay.finish(lock_held)
    }

    /// This state — replayed from a journal nobody was writing, as `resume` reopens it —
    /// carried on through `records`, the ones appended since (sequence numbers after
    /// [`RunState::last_seq`]): once the run has stopped again (a `run_finished` or
    /// `run_paused` last), the same state a replay of the whole journal gives, without
    /// decoding and replaying the run's earlier records a second time. (While the run is
    /// live, a step the crash left in flight and nobody touched since stays `unknown`
    /// here, where a full replay would call it `running`: which it is not.)
    pub(crate) fn advance(self, records: &[Record], lock_held: bool) -> RunState {
        let mut replay = Replay::continuing(self);
        for record in records {
            replay.apply(record);
        }
        replay.finish(lock_held)
    }

    /// Read, verify and replay `run`; also returns the journal's warnings.
    pub(crate) fn load(run: &Run) -> Result<(RunState, Vec<String>), JournalError> {
        let contents = run.read_journal()?;
        let state = RunState::replay(&contents.records, run.is_held());
        Ok((state, contents.warnings))
    }

    /// The step or gate called `name`.
    pub(crate) fn step(&self, name: &str) -> Option<&StepStatus> {
        self.index.get(name).map(|&i| &self.steps[i])
    }

    /// Where the step or gate called `name` is in [`RunState::steps`]; `hint` is tried
    /// first (a plan's order is the journal's while the runbook is unchanged), so matching
    /// a whole plan costs no hashing.
    pub(crate) fn position(&self, name: &str, hint: usize) -> Option<usize> {
        match self.steps.get(hint) {
            Some(s) if s.name == name => Some(hint),
            _ => self.index.get(name).copied(),
        }
    }
}
