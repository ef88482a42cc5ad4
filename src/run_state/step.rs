//! The derived state of one step or gate: attempts, outcome, approvals, undo attempts
//! and the process groups of its latest attempt.

use super::states::StepState;
use crate::dsl::StepKind;
use crate::journal::record::GateInfo;
use serde_json::Value;

/// One person's approval (or rejection) of a gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Approval {
    /// Display name of who decided (`--by`, else the account).
    pub by: String,
    /// The OS account that decided (`by` in journals older than the field).
    pub account: String,
    /// When it was given (for older journals: when it was journaled).
    pub at: String,
    /// Their note, if any.
    pub note: Option<String>,
    /// The host they decided on.
    pub host: String,
}

/// The derived state of one step or gate.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepStatus {
    /// Step or gate name.
    pub name: String,
    /// Step or gate.
    pub kind: StepKind,
    /// Fingerprint recorded in the plan at run start (`None` for steps added later).
    pub fingerprint: Option<String>,
    /// Where it stands.
    pub state: StepState,
    /// Attempts started over the whole run, resumes included.
    pub attempts: u32,
    /// When its latest attempt started (or the gate began waiting).
    pub started_at: Option<String>,
    /// When it last reached an end state.
    pub finished_at: Option<String>,
    /// The latest attempt's error, a gate's rejection, or a failed undo.
    pub error: Option<String>,
    /// The output of its successful attempt.
    pub output: Option<Value>,
    /// Approvals of a gate, in the order journaled.
    pub approvals: Vec<Approval>,
    /// Rejections of a gate, in the order journaled.
    pub rejections: Vec<Approval>,
    /// A gate's declaration as last recorded (absent in older journals).
    pub gate: Option<GateInfo>,
    /// Success was established by a `check` probe on resume, not by running it.
    pub verified: bool,
    /// An operator declared it done (`--mark-done`); who, if so.
    pub marked_done: Option<String>,
    /// Why it was skipped.
    pub skip_reason: Option<String>,
    /// Sequence number of the record that completed it (rollback undoes newest first).
    pub completed_seq: Option<u64>,
    /// Every run of its `undo`, oldest first: when, and the error if it failed.
    pub undo_attempts: Vec<UndoAttempt>,
    /// Process groups its latest attempt started, `(pgid, leader start time)`: after a
    /// crash, the ones still alive are orphans (`crate::orphans`).
    pub processes: Vec<(u32, u64)>,
    /// The host whose waymark started `processes`: only there can they be looked for.
    pub processes_host: Option<String>,
    /// A gate's latest rehearsal (a lab playing the operator's part), if it had one.
    pub rehearsal: Option<Rehearsal>,
    /// The last failure said another attempt follows.
    pub(super) retry_pending: bool,
}

/// A gate's latest rehearsal, from its `rehearsal_started` and `rehearsal_ended`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rehearsal {
    /// Rehearsals started over the whole run (more than one: a crash caught one in
    /// flight, or a failed one ran again on resume).
    pub runs: u32,
    /// When the latest one started.
    pub started_at: String,
    /// When it ended; `None`: it never did (the process died or was interrupted while it
    /// ran).
    pub ended_at: Option<String>,
    /// Why it failed (which rejected the gate); `None` with `ended_at`: it passed.
    pub error: Option<String>,
}

impl Rehearsal {
    /// It ran to its end and passed: its part is played and never runs again.
    pub(crate) fn passed(&self) -> bool {
        self.ended_at.is_some() && self.error.is_none()
    }
}

/// One run of a step's `undo` by `waymark rollback`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UndoAttempt {
    /// When it ended.
    pub at: String,
    /// Why it failed; `None`: it succeeded.
    pub error: Option<String>,
}

impl StepStatus {
    pub(super) fn new(name: &str, kind: StepKind, fingerprint: Option<String>) -> Self {
        StepStatus {
            name: name.to_string(),
            kind,
            fingerprint,
            state: StepState::Pending,
            attempts: 0,
            started_at: None,
            finished_at: None,
            error: None,
            output: None,
            approvals: Vec::new(),
            rejections: Vec::new(),
            gate: None,
            verified: false,
            marked_done: None,
            skip_reason: None,
            completed_seq: None,
            undo_attempts: Vec::new(),
            processes: Vec::new(),
            processes_host: None,
            rehearsal: None,
            retry_pending: false,
        }
    }

    pub(super) fn finish(&mut self, state: StepState, ts: &str) {
        self.state = state;
        self.finished_at = Some(ts.to_string());
        self.retry_pending = false;
    }
}

/// A journal's `kind` of a planned step: `"gate"`, else a step (what older journals and
/// `run_started` write for everything that is not a gate).
pub(super) fn kind_of(journaled: &str) -> StepKind {
    if journaled == "gate" {
        StepKind::Gate
    } else {
        StepKind::Step
    }
}
