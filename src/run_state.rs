//! The state of a run, derived by replaying its journal: the one place that says what
//! the records mean for `status`, `runs` and `resume`.
//!
//! Nothing here is stored: the journal is the truth and [`RunState::replay`] is a pure
//! function of its records plus one fact the journal cannot hold, whether a process still
//! holds the run's lock. That fact separates a live run (`running`, its in-flight steps
//! `running`) from a dead one (`crashed`, its in-flight steps `unknown`).

use crate::journal::record::{Event, FinalStatus, GateInfo, Record};
use crate::journal::{self, read_journal, JournalError, JOURNAL_FILE, RUNS_DIR};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

/// Where a run stands (SPEC §3 `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// A process holds the lock and the run has not stopped.
    Running,
    /// Finished, every step succeeded, approved or skipped.
    Succeeded,
    /// Finished with a failed step or a rejected gate.
    Failed,
    /// Stopped to wait for a person: a gate approval or a decision.
    Paused,
    /// Stopped by Ctrl-C / SIGTERM.
    Cancelled,
    /// No terminal or paused record and nobody holds the lock: the process died.
    Crashed,
    /// `waymark rollback` undid the run.
    RolledBack,
}

impl RunStatus {
    /// The name used in `status` output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Paused => "paused",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Crashed => "crashed",
            RunStatus::RolledBack => "rolled_back",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<FinalStatus> for RunStatus {
    fn from(s: FinalStatus) -> Self {
        match s {
            FinalStatus::Succeeded => RunStatus::Succeeded,
            FinalStatus::Failed => RunStatus::Failed,
            FinalStatus::Cancelled => RunStatus::Cancelled,
            FinalStatus::RolledBack => RunStatus::RolledBack,
        }
    }
}

/// Where a step or gate stands (SPEC §3 `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not started.
    Pending,
    /// An attempt is running (or a retry is due) in a live run.
    Running,
    /// Its last attempt succeeded (or a check probe or an operator said it is done).
    Succeeded,
    /// Its last attempt failed and no retry follows.
    Failed,
    /// It will not run in this run.
    Skipped,
    /// A gate waiting for approvals.
    AwaitingApproval,
    /// A gate that was approved.
    Approved,
    /// A gate that was rejected.
    Rejected,
    /// Started with no end recorded and nobody running it: it may or may not have happened.
    Unknown,
    /// Its undo closure ran.
    RolledBack,
}

impl StepState {
    /// The name used in `status` output and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::AwaitingApproval => "awaiting_approval",
            StepState::Approved => "approved",
            StepState::Rejected => "rejected",
            StepState::Unknown => "unknown",
            StepState::RolledBack => "rolled_back",
        }
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One person's approval (or rejection) of a gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
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
pub struct StepStatus {
    /// Step or gate name.
    pub name: String,
    /// `"step"` or `"gate"`.
    pub kind: String,
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
    /// The last failure said another attempt follows.
    retry_pending: bool,
}

/// One run of a step's `undo` by `waymark rollback`.
#[derive(Debug, Clone, PartialEq)]
pub struct UndoAttempt {
    /// When it ended.
    pub at: String,
    /// Why it failed; `None`: it succeeded.
    pub error: Option<String>,
}

impl StepStatus {
    fn new(name: &str, kind: &str, fingerprint: Option<String>) -> Self {
        StepStatus {
            name: name.to_string(),
            kind: kind.to_string(),
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
            retry_pending: false,
        }
    }

    fn finish(&mut self, state: StepState, ts: &str) {
        self.state = state;
        self.finished_at = Some(ts.to_string());
        self.retry_pending = false;
    }
}

/// The derived state of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunState {
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
    index: HashMap<String, usize>,
}

impl RunState {
    /// Derive a run's state from its records; `lock_held` says whether a process drives it.
    pub fn replay(records: &[Record], lock_held: bool) -> RunState {
        let mut replay = Replay::default();
        for record in records {
            replay.apply(record);
        }
        replay.finish(lock_held)
    }

    /// Read, verify and replay the run in `run_dir`; also returns the journal's warnings.
    pub fn load(run_dir: &Path) -> Result<(RunState, Vec<String>), JournalError> {
        let contents = read_journal(&run_dir.join(JOURNAL_FILE))?;
        let state = RunState::replay(&contents.records, journal::is_held(run_dir));
        Ok((state, contents.warnings))
    }

    /// The step or gate called `name`.
    pub fn step(&self, name: &str) -> Option<&StepStatus> {
        self.index.get(name).map(|&i| &self.steps[i])
    }

    /// The `status --json` document (SPEC §3).
    pub fn to_status_json(&self) -> Value {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|s| {
                let approvals: Vec<Value> = s
                    .approvals
                    .iter()
                    .map(|a| {
                        json!({ "by": a.by, "account": a.account, "host": a.host, "at": a.at, "note": a.note })
                    })
                    .collect();
                let mut step = json!({
                    "name": s.name,
                    "kind": s.kind,
                    "state": s.state.as_str(),
                    "attempts": s.attempts,
                    "started_at": s.started_at,
                    "finished_at": s.finished_at,
                    "error": s.error,
                    "output": s.output.clone().unwrap_or(Value::Null),
                    "approvals": approvals,
                });
                if let Some(g) = &s.gate {
                    step["title"] = json!(g.title);
                    step["instructions"] = json!(g.instructions);
                    step["approvals_needed"] = json!(g.approvals.max(1));
                    step["separate_approver"] = json!(g.separate_approver);
                }
                if !s.rejections.is_empty() {
                    step["rejections"] = s
                        .rejections
                        .iter()
                        .map(|a| json!({ "by": a.by, "account": a.account, "host": a.host, "at": a.at, "note": a.note }))
                        .collect();
                }
                // Only rolled-back runs have them; other steps keep the contract's shape.
                if !s.undo_attempts.is_empty() {
                    step["undo_attempts"] = s
                        .undo_attempts
                        .iter()
                        .map(|u| {
                            json!({
                                "at": u.at,
                                "outcome": if u.error.is_some() { "failed" } else { "succeeded" },
                                "error": u.error,
                            })
                        })
                        .collect();
                }
                step
            })
            .collect();
        json!({
            "run_id": self.run_id,
            "runbook": self.runbook,
            "status": self.status.as_str(),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "steps": steps,
        })
    }
}

/// Record types that change where the run as a whole stands (its status, start and end);
/// every other record is about one step. [`RunSummary`] replays only these, so a step
/// record must never change the run's status (the tests compare both replays).
const RUN_LEVEL: [&str; 5] = [
    "run_started",
    "run_resumed",
    "run_paused",
    "rollback_started",
    "run_finished",
];

fn is_run_level(event: &Event) -> bool {
    matches!(
        event,
        Event::RunStarted { .. }
            | Event::RunResumed { .. }
            | Event::RunPaused { .. }
            | Event::RollbackStarted { .. }
            | Event::RunFinished { .. }
    )
}

/// A run without its steps: what `runs` lists and how `resume` finds the latest
/// unfinished run, read without decoding every step record.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// The run's id.
    pub run_id: String,
    /// The runbook's declared name.
    pub runbook: String,
    /// Where the run stands; the same as [`RunState::status`].
    pub status: RunStatus,
    /// When the run started.
    pub started_at: Option<String>,
    /// When it last finished; cleared by a resume.
    pub finished_at: Option<String>,
}

impl RunSummary {
    /// Summarize a run from its records (step records are ignored).
    pub fn replay(records: &[Record], lock_held: bool) -> RunSummary {
        let mut replay = Replay {
            run_level_only: true,
            ..Replay::default()
        };
        for record in records.iter().filter(|r| is_run_level(&r.event)) {
            replay.apply(record);
        }
        let state = replay.finish(lock_held);
        RunSummary {
            run_id: state.run_id,
            runbook: state.runbook,
            status: state.status,
            started_at: state.started_at,
            finished_at: state.finished_at,
        }
    }

    /// Read and summarize the run in `run_dir`: every line's checksum and sequence number
    /// is verified, only run-level records are decoded. Also returns the journal's warnings.
    pub fn load(run_dir: &Path) -> Result<(RunSummary, Vec<String>), JournalError> {
        let contents =
            journal::read_selected(&run_dir.join(JOURNAL_FILE), &|t| RUN_LEVEL.contains(&t))?;
        let summary = RunSummary::replay(&contents.records, journal::is_held(run_dir));
        Ok((summary, contents.warnings))
    }
}

/// Replay in progress: the state so far plus what only matters until the end.
#[derive(Default)]
struct Replay {
    /// Summarizing: keep no per-step state.
    run_level_only: bool,
    run_id: String,
    runbook: String,
    source: String,
    params: BTreeMap<String, String>,
    inventory: Option<String>,
    user: String,
    host: String,
    plan_fingerprint: String,
    started_at: Option<String>,
    finished_at: Option<String>,
    /// The last terminal or paused status; `None` while the run is (or was) live.
    stopped: Option<RunStatus>,
    steps: Vec<StepStatus>,
    index: HashMap<String, usize>,
    paused_reason: Option<String>,
    waiting_on: Vec<String>,
    resumes: u32,
    last_seq: u64,
    seen_start: bool,
    sources: Option<(String, BTreeMap<String, String>)>,
}

impl Replay {
    /// The step called `name`, added at the end if the plan at start did not have it.
    fn step(&mut self, name: &str, kind: &str) -> &mut StepStatus {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.steps.push(StepStatus::new(name, kind, None));
                self.index.insert(name.to_string(), self.steps.len() - 1);
                self.steps.len() - 1
            }
        };
        &mut self.steps[i]
    }

    fn apply(&mut self, record: &Record) {
        self.last_seq = record.seq;
        let ts = record.ts.as_str();
        match &record.event {
            Event::RunStarted {
                run_id,
                runbook,
                source,
                params,
                inventory,
                user,
                host,
                plan_fingerprint,
                steps,
                ..
            } => {
                // Only the first start counts; the reader guarantees it is record 1.
                if self.seen_start {
                    return;
                }
                self.seen_start = true;
                self.run_id = run_id.clone();
                self.runbook = runbook.clone();
                self.source = source.clone();
                self.params = params.clone();
                self.inventory = inventory.clone();
                self.user = user.clone();
                self.host = host.clone();
                self.plan_fingerprint = plan_fingerprint.clone();
                self.started_at = Some(ts.to_string());
                if self.run_level_only {
                    return;
                }
                for planned in steps {
                    if !self.index.contains_key(&planned.name) {
                        self.index.insert(planned.name.clone(), self.steps.len());
                        let mut s = StepStatus::new(
                            &planned.name,
                            &planned.kind,
                            Some(planned.fingerprint.clone()),
                        );
                        s.gate = planned.gate.clone();
                        self.steps.push(s);
                    }
                }
            }
            Event::RunSources { main, files, steps } => {
                if self.run_level_only {
                    return;
                }
                self.sources = Some((main.clone(), files.clone()));
                // Accepted changes: the new definition is what later resumes compare with.
                for planned in steps {
                    self.step(&planned.name, &planned.kind).fingerprint =
                        Some(planned.fingerprint.clone());
                }
            }
            Event::RunResumed {
                plan_fingerprint,
                gates,
                ..
            } => {
                self.live_again();
                self.resumes += 1;
                self.plan_fingerprint = plan_fingerprint.clone();
                if !self.run_level_only {
                    for planned in gates {
                        let s = self.step(&planned.name, "gate");
                        s.gate = planned.gate.clone();
                    }
                }
            }
            Event::StepStarted { step, .. } => {
                let s = self.step(step, "step");
                s.state = StepState::Running;
                s.attempts += 1;
                s.started_at = Some(ts.to_string());
                s.finished_at = None;
                s.error = None;
                s.verified = false;
                s.marked_done = None;
                s.skip_reason = None;
                s.retry_pending = false;
                s.processes.clear();
            }
            Event::ProcessStarted {
                step,
                pgid,
                start_time,
                ..
            } => {
                self.step(step, "step").processes.push((*pgid, *start_time));
            }
            Event::StepSucceeded {
                step,
                output,
                verified,
                ..
            } => {
                let seq = record.seq;
                let s = self.step(step, "step");
                let state = if s.kind == "gate" {
                    StepState::Approved
                } else {
                    StepState::Succeeded
                };
                s.finish(state, ts);
                s.error = None;
                s.output = (!output.is_null()).then(|| output.clone());
                s.verified = *verified;
                s.completed_seq = Some(seq);
            }
            Event::StepFailed {
                step,
                error,
                will_retry,
                ..
            } => {
                let s = self.step(step, "step");
                s.finish(StepState::Failed, ts);
                s.error = Some(error.clone());
                s.retry_pending = *will_retry;
            }
            Event::StepSkipped { step, reason } => {
                let s = self.step(step, "step");
                s.finish(StepState::Skipped, ts);
                s.skip_reason = Some(reason.clone());
            }
            Event::StepMarkedDone { step, by } => {
                let seq = record.seq;
                let s = self.step(step, "step");
                s.finish(StepState::Succeeded, ts);
                s.error = None;
                s.marked_done = Some(by.clone());
                s.completed_seq = Some(seq);
            }
            Event::StepUnknown { step, .. } => {
                let s = self.step(step, "step");
                s.state = StepState::Unknown;
                s.retry_pending = false;
            }
            Event::GateWaiting { gate } => {
                let s = self.step(gate, "gate");
                // Also written after an approval that is not yet enough (`approvals: N`).
                s.state = StepState::AwaitingApproval;
                s.finished_at = None;
                s.started_at.get_or_insert_with(|| ts.to_string());
            }
            // One approval is not the gate passing (it may need more, or a resume may find
            // it was given by the wrong account): only the `step_succeeded` the scheduler
            // writes once the gate is satisfied marks it approved.
            Event::GateApproved {
                gate,
                by,
                host,
                note,
                account,
                at,
                ..
            } => {
                let s = self.step(gate, "gate");
                s.approvals.push(Approval {
                    by: by.clone(),
                    account: account.clone().unwrap_or_else(|| by.clone()),
                    at: at.clone().unwrap_or_else(|| ts.to_string()),
                    note: note.clone(),
                    host: host.clone(),
                });
            }
            Event::GateRejected {
                gate,
                by,
                host,
                note,
                account,
                at,
                ..
            } => {
                let s = self.step(gate, "gate");
                s.rejections.push(Approval {
                    by: by.clone(),
                    account: account.clone().unwrap_or_else(|| by.clone()),
                    at: at.clone().unwrap_or_else(|| ts.to_string()),
                    note: note.clone(),
                    host: host.clone(),
                });
                s.finish(StepState::Rejected, ts);
                s.error = Some(match note {
                    Some(note) => format!("rejected by {by}: {note}"),
                    None => format!("rejected by {by}"),
                });
            }
            Event::RunPaused { reason, waiting_on } => {
                self.stopped = Some(RunStatus::Paused);
                self.paused_reason = Some(reason.clone());
                self.waiting_on = waiting_on.clone();
                // A gate still listed as awaited has fewer approvals than it needs.
                for name in waiting_on {
                    if let Some(&i) = self.index.get(name) {
                        let s = &mut self.steps[i];
                        if s.state == StepState::Approved {
                            s.state = StepState::AwaitingApproval;
                            s.finished_at = None;
                        }
                    }
                }
            }
            Event::RollbackStarted { .. } => self.live_again(),
            Event::UndoStarted { .. } => {}
            Event::UndoSucceeded { step } => {
                // The final outcome replaces an earlier failed undo; the attempts keep it.
                let s = self.step(step, "step");
                s.finish(StepState::RolledBack, ts);
                s.error = None;
                s.undo_attempts.push(UndoAttempt {
                    at: ts.to_string(),
                    error: None,
                });
            }
            Event::UndoFailed { step, error } => {
                let s = self.step(step, "step");
                s.error = Some(format!("undo failed: {error}"));
                s.undo_attempts.push(UndoAttempt {
                    at: ts.to_string(),
                    error: Some(error.clone()),
                });
            }
            Event::RunFinished { status } => {
                self.stopped = Some((*status).into());
                self.finished_at = Some(ts.to_string());
                self.paused_reason = None;
                self.waiting_on.clear();
            }
        }
    }

    /// A resume or rollback took the run up again after it stopped.
    fn live_again(&mut self) {
        self.stopped = None;
        self.finished_at = None;
        self.paused_reason = None;
        self.waiting_on.clear();
    }

    fn finish(mut self, lock_held: bool) -> RunState {
        let status = self.stopped.unwrap_or(if lock_held {
            RunStatus::Running
        } else {
            RunStatus::Crashed
        });
        let live = status == RunStatus::Running;
        for s in &mut self.steps {
            match s.state {
                // Between attempts of a live run the step is still in progress.
                StepState::Failed if s.retry_pending && live => s.state = StepState::Running,
                // Nobody is running it any more, so the retry will not come.
                StepState::Running if !live && s.retry_pending => s.state = StepState::Failed,
                // Started, never ended, and its process is gone: it may or may not have run.
                StepState::Running if !live => s.state = StepState::Unknown,
                _ => {}
            }
        }
        RunState {
            run_id: self.run_id,
            runbook: self.runbook,
            source: self.source,
            params: self.params,
            inventory: self.inventory,
            user: self.user,
            host: self.host,
            plan_fingerprint: self.plan_fingerprint,
            started_at: self.started_at,
            finished_at: self.finished_at,
            status,
            paused_reason: self.paused_reason,
            waiting_on: self.waiting_on,
            resumes: self.resumes,
            last_seq: self.last_seq,
            sources: self.sources,
            index: self
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| (s.name.clone(), i))
                .collect(),
            steps: self.steps,
        }
    }
}

/// The runs found under a state directory, oldest first, and the ones that were skipped.
#[derive(Debug, Clone, Default)]
pub struct RunListing {
    /// `(run id, summary)` sorted by start time.
    pub runs: Vec<(String, RunSummary)>,
    /// One message per run that could not be read, and journal warnings of the others.
    pub warnings: Vec<String>,
}

impl RunListing {
    /// The warnings to print when run `chosen` is about to be opened, which prints its
    /// own journal's warnings: everything else, so each is shown once.
    pub fn warnings_besides<'a>(
        &'a self,
        chosen: Option<&'a str>,
    ) -> impl Iterator<Item = &'a String> + 'a {
        self.warnings
            .iter()
            .filter(move |w| chosen.is_none_or(|id| !w.contains(id)))
    }
}

/// Every run under `STATE_DIR/runs/`, sorted by start time; unreadable runs become warnings.
pub fn list_runs(state_dir: &Path) -> RunListing {
    let runs_dir = state_dir.join(RUNS_DIR);
    let mut listing = RunListing::default();
    let entries = match std::fs::read_dir(&runs_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return listing,
        Err(e) => {
            listing
                .warnings
                .push(format!("cannot list runs in {}: {e}", runs_dir.display()));
            return listing;
        }
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let run_id = entry.file_name().to_string_lossy().into_owned();
        match RunSummary::load(&entry.path()) {
            Ok((state, warnings)) => {
                listing.warnings.extend(warnings);
                listing.runs.push((run_id, state));
            }
            Err(e) => listing.warnings.push(format!("skipping run {run_id}: {e}")),
        }
    }
    listing
        .runs
        .sort_by(|(a_id, a), (b_id, b)| (&a.started_at, a_id).cmp(&(&b.started_at, b_id)));
    listing
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{JournalWriter, RunLock};

    /// Builds a journal's records with increasing seqs and timestamps.
    struct Journal(Vec<Record>);

    impl Journal {
        fn start(steps: &[(&str, &str)]) -> Journal {
            let mut j = Journal(Vec::new());
            j.push(started(steps));
            j
        }

        fn push(&mut self, event: Event) -> &mut Self {
            let seq = self.0.len() as u64 + 1;
            self.0.push(Record {
                seq,
                ts: format!("2026-11-23T22:{:02}:{:02}.000Z", seq / 60, seq % 60),
                event,
            });
            self
        }

        fn started_step(&mut self, step: &str, attempt: u32) -> &mut Self {
            self.push(Event::StepStarted {
                step: step.into(),
                attempt,
            })
        }

        fn succeeded(&mut self, step: &str, attempt: u32) -> &mut Self {
            self.push(Event::StepSucceeded {
                step: step.into(),
                attempt,
                output: json!({ "step": step }),
                verified: false,
            })
        }

        fn failed(&mut self, step: &str, attempt: u32, will_retry: bool) -> &mut Self {
            self.push(Event::StepFailed {
                step: step.into(),
                attempt,
                error: format!("{step} broke on attempt {attempt}"),
                will_retry,
            })
        }

        fn approved(&mut self, gate: &str, by: &str) -> &mut Self {
            self.push(Event::GateApproved {
                gate: gate.into(),
                by: by.into(),
                host: "h".into(),
                note: Some(format!("ok from {by}")),
                plan_fingerprint: "fp".into(),
                account: Some(format!("{by}-account")),
                at: Some("2026-11-23T22:00:00.000Z".into()),
            })
        }

        fn gate_passed(&mut self, gate: &str) -> &mut Self {
            self.push(Event::StepSucceeded {
                step: gate.into(),
                attempt: 1,
                output: serde_json::Value::Null,
                verified: false,
            })
        }

        fn resumed(&mut self) -> &mut Self {
            self.push(Event::RunResumed {
                user: "alice".into(),
                host: "h".into(),
                plan_fingerprint: "fp".into(),
                changes: vec![],
                gates: vec![],
            })
        }

        fn finished(&mut self, status: FinalStatus) -> &mut Self {
            self.push(Event::RunFinished { status })
        }

        /// The state, after checking that the run-level summary agrees with it.
        fn replay(&self, lock_held: bool) -> RunState {
            let state = RunState::replay(&self.0, lock_held);
            let summary = RunSummary::replay(&self.0, lock_held);
            assert_eq!(
                (summary.status, &summary.started_at, &summary.finished_at),
                (state.status, &state.started_at, &state.finished_at),
                "the run-level summary disagrees with the full replay"
            );
            state
        }
    }

    fn started(steps: &[(&str, &str)]) -> Event {
        Event::sample_run_started(steps)
    }

    fn states(run: &RunState) -> Vec<(&str, StepState)> {
        run.steps
            .iter()
            .map(|s| (s.name.as_str(), s.state))
            .collect()
    }

    const DIAMOND: &[(&str, &str)] = &[("a", "step"), ("b", "step"), ("c", "step"), ("d", "step")];

    #[test]
    fn diamond_with_a_retry_succeeds() {
        let mut j = Journal::start(DIAMOND);
        j.started_step("a", 1).succeeded("a", 1);
        j.started_step("b", 1).started_step("c", 1);
        j.failed("b", 1, true).succeeded("c", 1);
        j.started_step("b", 2).succeeded("b", 2);
        j.started_step("d", 1).succeeded("d", 1);
        j.finished(FinalStatus::Succeeded);

        let run = j.replay(false);
        assert_eq!(run.status, RunStatus::Succeeded);
        assert_eq!(run.run_id, "20261123-221500-ab12");
        assert_eq!(run.runbook, "Example upgrade");
        assert_eq!(run.params["server"], "ns-hq");
        assert_eq!(run.inventory.as_deref(), Some("contoso.toml"));
        assert!(run.finished_at.is_some());
        assert_eq!(
            states(&run),
            [
                ("a", StepState::Succeeded),
                ("b", StepState::Succeeded),
                ("c", StepState::Succeeded),
                ("d", StepState::Succeeded)
            ]
        );
        let b = run.step("b").unwrap();
        assert_eq!(b.attempts, 2);
        assert_eq!(b.error, None, "a later success clears the earlier error");
        assert_eq!(b.output, Some(json!({ "step": "b" })));
        // d completed last, so rollback would undo it first.
        assert!(run.step("d").unwrap().completed_seq > run.step("b").unwrap().completed_seq);
    }

    #[test]
    fn a_step_between_retries_is_running_while_live_and_failed_once_dead() {
        let mut j = Journal::start(DIAMOND);
        j.started_step("a", 1).failed("a", 1, true);

        let live = j.replay(true);
        assert_eq!(live.status, RunStatus::Running);
        let a = live.step("a").unwrap();
        assert_eq!(a.state, StepState::Running);
        assert_eq!(a.error.as_deref(), Some("a broke on attempt 1"));

        let dead = j.replay(false);
        assert_eq!(dead.status, RunStatus::Crashed);
        assert_eq!(dead.step("a").unwrap().state, StepState::Failed);
    }

    #[test]
    fn crashed_run_leaves_its_in_flight_step_unknown() {
        let mut j = Journal::start(DIAMOND);
        j.started_step("a", 1)
            .succeeded("a", 1)
            .started_step("b", 1);

        let crashed = j.replay(false);
        assert_eq!(crashed.status, RunStatus::Crashed);
        assert_eq!(crashed.finished_at, None);
        assert_eq!(
            states(&crashed),
            [
                ("a", StepState::Succeeded),
                ("b", StepState::Unknown),
                ("c", StepState::Pending),
                ("d", StepState::Pending)
            ]
        );

        let live = j.replay(true);
        assert_eq!(live.status, RunStatus::Running);
        assert_eq!(live.step("b").unwrap().state, StepState::Running);
    }

    #[test]
    fn gate_approval_while_paused_then_resume_to_success() {
        let plan = &[
            ("backup", "step"),
            ("sim-upgrade", "gate"),
            ("after", "step"),
        ];
        let mut j = Journal::start(plan);
        j.started_step("backup", 1).succeeded("backup", 1);
        j.push(Event::GateWaiting {
            gate: "sim-upgrade".into(),
        });
        j.push(Event::RunPaused {
            reason: "gate sim-upgrade awaits approval".into(),
            waiting_on: vec!["sim-upgrade".into()],
        });

        let paused = j.replay(false);
        assert_eq!(paused.status, RunStatus::Paused);
        assert_eq!(paused.waiting_on, ["sim-upgrade"]);
        let gate = paused.step("sim-upgrade").unwrap();
        assert_eq!(gate.kind, "gate");
        assert_eq!(gate.state, StepState::AwaitingApproval);
        assert!(gate.started_at.is_some());

        // `waymark approve` journals the approval while the run is paused.
        j.approved("sim-upgrade", "bob");
        let approved = j.replay(false);
        assert_eq!(
            approved.status,
            RunStatus::Paused,
            "an approval does not resume"
        );
        let gate = approved.step("sim-upgrade").unwrap();
        assert_eq!(
            gate.state,
            StepState::AwaitingApproval,
            "an approval counts once the resumed run finds it enough"
        );
        assert_eq!(gate.approvals.len(), 1);
        assert_eq!(gate.approvals[0].by, "bob");
        assert_eq!(gate.approvals[0].account, "bob-account");
        assert_eq!(gate.approvals[0].at, "2026-11-23T22:00:00.000Z");
        assert_eq!(gate.approvals[0].note.as_deref(), Some("ok from bob"));

        j.resumed().gate_passed("sim-upgrade");
        assert_eq!(
            j.replay(true).step("sim-upgrade").unwrap().state,
            StepState::Approved
        );
        j.started_step("after", 1).succeeded("after", 1);
        j.finished(FinalStatus::Succeeded);
        let done = j.replay(false);
        assert_eq!(done.status, RunStatus::Succeeded);
        assert_eq!(done.resumes, 1);
        assert_eq!(done.paused_reason, None);
        assert_eq!(done.step("after").unwrap().state, StepState::Succeeded);
    }

    #[test]
    fn a_gate_needing_more_approvals_stays_awaiting() {
        let plan = &[("g", "gate")];
        let mut j = Journal::start(plan);
        j.push(Event::GateWaiting { gate: "g".into() });
        j.approved("g", "bob");
        // The scheduler re-announces the wait: one of two approvals is in.
        j.push(Event::GateWaiting { gate: "g".into() });
        let run = j.replay(true);
        let g = run.step("g").unwrap();
        assert_eq!(g.state, StepState::AwaitingApproval);
        assert_eq!(g.approvals.len(), 1);

        // A pause that still lists the gate says the same.
        let mut j = Journal::start(plan);
        j.push(Event::GateWaiting { gate: "g".into() });
        j.approved("g", "bob");
        j.push(Event::RunPaused {
            reason: "waiting".into(),
            waiting_on: vec!["g".into()],
        });
        assert_eq!(
            j.replay(false).step("g").unwrap().state,
            StepState::AwaitingApproval
        );

        j.resumed().approved("g", "carol");
        assert_eq!(
            j.replay(true).step("g").unwrap().state,
            StepState::AwaitingApproval
        );
        j.gate_passed("g");
        let run = j.replay(true);
        let g = run.step("g").unwrap();
        assert_eq!(g.state, StepState::Approved);
        let by: Vec<&str> = g.approvals.iter().map(|a| a.by.as_str()).collect();
        assert_eq!(by, ["bob", "carol"]);
    }

    #[test]
    fn an_approval_journaled_before_accounts_existed_counts_its_by_as_the_account() {
        let line =
            r#"{"type":"gate_approved","gate":"g","by":"bob","host":"h","plan_fingerprint":"fp"}"#;
        let event: Event = serde_json::from_str(line).unwrap();
        let mut j = Journal::start(&[("g", "gate")]);
        j.push(Event::GateWaiting { gate: "g".into() });
        j.push(event);
        let run = j.replay(false);
        let a = &run.step("g").unwrap().approvals[0];
        assert_eq!((a.by.as_str(), a.account.as_str()), ("bob", "bob"));
        assert!(
            !a.at.is_empty(),
            "the journal time stands in for when it was given"
        );
    }

    #[test]
    fn rejected_gate_names_who_rejected_it() {
        let mut j = Journal::start(&[("g", "gate")]);
        j.push(Event::GateWaiting { gate: "g".into() });
        j.push(Event::GateRejected {
            gate: "g".into(),
            by: "carol".into(),
            host: "h".into(),
            note: Some("replication still on".into()),
            plan_fingerprint: "fp".into(),
            account: None,
            at: None,
        });
        j.finished(FinalStatus::Failed);
        let run = j.replay(false);
        assert_eq!(run.status, RunStatus::Failed);
        let g = run.step("g").unwrap();
        assert_eq!(g.state, StepState::Rejected);
        assert_eq!(
            g.error.as_deref(),
            Some("rejected by carol: replication still on")
        );
        assert_eq!(g.rejections.len(), 1);
        assert!(g.approvals.is_empty());
    }

    #[test]
    fn resumed_after_failure_is_live_again_and_can_succeed() {
        let mut j = Journal::start(&[("a", "step"), ("b", "step")]);
        j.started_step("a", 1).failed("a", 1, false);
        j.push(Event::StepSkipped {
            step: "b".into(),
            reason: "dependency a failed".into(),
        });
        j.finished(FinalStatus::Failed);

        let failed = j.replay(false);
        assert_eq!(failed.status, RunStatus::Failed);
        assert!(failed.finished_at.is_some());
        assert_eq!(failed.step("a").unwrap().state, StepState::Failed);
        let b = failed.step("b").unwrap();
        assert_eq!(b.state, StepState::Skipped);
        assert_eq!(b.skip_reason.as_deref(), Some("dependency a failed"));

        j.resumed();
        let resuming = j.replay(true);
        assert_eq!(resuming.status, RunStatus::Running);
        assert_eq!(resuming.finished_at, None);
        // Resumed but its process died before writing anything else.
        assert_eq!(j.replay(false).status, RunStatus::Crashed);

        // Fresh attempt numbering on resume; `attempts` counts all of them.
        j.started_step("a", 1).succeeded("a", 1);
        j.started_step("b", 1).succeeded("b", 1);
        j.finished(FinalStatus::Succeeded);
        let done = j.replay(false);
        assert_eq!(done.status, RunStatus::Succeeded);
        assert_eq!(done.step("a").unwrap().attempts, 2);
        assert_eq!(done.step("b").unwrap().skip_reason, None);
    }

    #[test]
    fn resume_decisions_on_an_unknown_step_are_recorded() {
        let mut j = Journal::start(&[("a", "step"), ("b", "step")]);
        j.started_step("a", 1).started_step("b", 1);
        j.resumed();
        j.push(Event::StepUnknown {
            step: "a".into(),
            attempt: 1,
        });
        j.push(Event::StepUnknown {
            step: "b".into(),
            attempt: 1,
        });
        let waiting = j.replay(true);
        assert_eq!(waiting.step("a").unwrap().state, StepState::Unknown);

        j.push(Event::StepSucceeded {
            step: "a".into(),
            attempt: 1,
            output: Value::Null,
            verified: true,
        });
        j.push(Event::StepMarkedDone {
            step: "b".into(),
            by: "alice".into(),
        });
        let run = j.replay(true);
        let a = run.step("a").unwrap();
        assert_eq!(
            (a.state, a.verified, a.output.clone()),
            (StepState::Succeeded, true, None)
        );
        let b = run.step("b").unwrap();
        assert_eq!(b.state, StepState::Succeeded);
        assert_eq!(b.marked_done.as_deref(), Some("alice"));
    }

    #[test]
    fn cancelled_run_with_a_step_cut_off_shows_it_unknown() {
        let mut j = Journal::start(&[("a", "step")]);
        j.started_step("a", 1).finished(FinalStatus::Cancelled);
        let run = j.replay(false);
        assert_eq!(run.status, RunStatus::Cancelled);
        assert_eq!(run.step("a").unwrap().state, StepState::Unknown);
    }

    #[test]
    fn rollback_undoes_steps_and_ends_rolled_back() {
        let mut j = Journal::start(&[("a", "step"), ("b", "step")]);
        j.started_step("a", 1).succeeded("a", 1);
        j.started_step("b", 1).succeeded("b", 1);
        j.finished(FinalStatus::Succeeded);
        j.push(Event::RollbackStarted {
            user: "alice".into(),
        });
        j.push(Event::UndoStarted { step: "b".into() });
        assert_eq!(j.replay(true).status, RunStatus::Running);
        j.push(Event::UndoSucceeded { step: "b".into() });
        j.push(Event::UndoStarted { step: "a".into() });
        j.push(Event::UndoFailed {
            step: "a".into(),
            error: "file locked".into(),
        });
        j.finished(FinalStatus::RolledBack);
        let run = j.replay(false);
        assert_eq!(run.status, RunStatus::RolledBack);
        assert_eq!(run.step("b").unwrap().state, StepState::RolledBack);
        let a = run.step("a").unwrap();
        assert_eq!(a.state, StepState::Succeeded);
        assert_eq!(a.error.as_deref(), Some("undo failed: file locked"));
    }

    // After a failed undo was retried successfully, status still said "undo failed".
    #[test]
    fn a_retried_undo_shows_its_final_outcome_and_every_attempt() {
        let mut j = Journal::start(&[("a", "step")]);
        j.started_step("a", 1).succeeded("a", 1);
        j.finished(FinalStatus::Succeeded);
        for outcome in [Some("file locked"), None] {
            j.push(Event::RollbackStarted {
                user: "alice".into(),
            });
            j.push(Event::UndoStarted { step: "a".into() });
            match outcome {
                Some(e) => {
                    j.push(Event::UndoFailed {
                        step: "a".into(),
                        error: e.into(),
                    });
                    j.finished(FinalStatus::Failed);
                }
                None => {
                    j.push(Event::UndoSucceeded { step: "a".into() });
                    j.finished(FinalStatus::RolledBack);
                }
            }
        }
        let run = j.replay(false);
        assert_eq!(run.status, RunStatus::RolledBack);
        let a = run.step("a").unwrap();
        assert_eq!((a.state, a.error.as_deref()), (StepState::RolledBack, None));
        let outcomes: Vec<_> = a.undo_attempts.iter().map(|u| u.error.as_deref()).collect();
        assert_eq!(outcomes, [Some("file locked"), None]);
        let json = run.to_status_json();
        assert_eq!(json["steps"][0]["undo_attempts"][0]["outcome"], "failed");
        assert_eq!(json["steps"][0]["undo_attempts"][1]["outcome"], "succeeded");
    }

    #[test]
    fn steps_not_in_the_starting_plan_are_listed_after_it() {
        let mut j = Journal::start(&[("a", "step")]);
        j.resumed().started_step("new-step", 1);
        j.push(Event::GateWaiting {
            gate: "new-gate".into(),
        });
        let run = j.replay(true);
        let names: Vec<(&str, &str)> = run
            .steps
            .iter()
            .map(|s| (s.name.as_str(), s.kind.as_str()))
            .collect();
        assert_eq!(
            names,
            [("a", "step"), ("new-step", "step"), ("new-gate", "gate")]
        );
        assert_eq!(run.step("new-step").unwrap().fingerprint, None);
        assert_eq!(run.step("a").unwrap().fingerprint.as_deref(), Some("fp-a"));
    }

    #[test]
    fn status_json_has_the_spec_shape() {
        let mut j = Journal::start(&[("a", "step"), ("g", "gate")]);
        j.started_step("a", 1).succeeded("a", 1);
        j.push(Event::GateWaiting { gate: "g".into() });
        j.approved("g", "bob").gate_passed("g");
        let doc = j.replay(true).to_status_json();
        let keys = |v: &Value| -> Vec<String> {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(
            keys(&doc),
            [
                "finished_at",
                "run_id",
                "runbook",
                "started_at",
                "status",
                "steps"
            ]
        );
        assert_eq!(doc["status"], "running");
        assert_eq!(doc["finished_at"], Value::Null);
        let steps = doc["steps"].as_array().unwrap();
        assert_eq!(
            keys(&steps[0]),
            [
                "approvals",
                "attempts",
                "error",
                "finished_at",
                "kind",
                "name",
                "output",
                "started_at",
                "state"
            ]
        );
        assert_eq!(steps[0]["state"], "succeeded");
        assert_eq!(steps[0]["attempts"], 1);
        assert_eq!(steps[0]["output"], json!({ "step": "a" }));
        assert_eq!(steps[1]["kind"], "gate");
        assert_eq!(steps[1]["state"], "approved");
        let approval = &steps[1]["approvals"][0];
        // SPEC §9 extends the §3 shape with the account and host.
        assert_eq!(keys(approval), ["account", "at", "by", "host", "note"]);
        assert_eq!(approval["by"], "bob");
        assert_eq!(approval["account"], "bob-account");
    }

    #[test]
    fn list_runs_sorts_by_start_and_skips_unreadable_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let state_dir = tmp.path();
        let runs = state_dir.join(RUNS_DIR);
        // Named so that directory order and start order disagree.
        for (id, steps) in [("run-b", DIAMOND), ("run-a", &[("x", "step")][..])] {
            let dir = runs.join(id);
            let (w, _) = JournalWriter::create(&dir, started(steps)).unwrap();
            w.append_blocking(vec![Event::RunFinished {
                status: FinalStatus::Succeeded,
            }])
            .unwrap();
            // Millisecond timestamps: make sure the second run starts later.
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::fs::create_dir_all(runs.join("broken")).unwrap();
        std::fs::write(runs.join("broken").join(JOURNAL_FILE), b"").unwrap();
        std::fs::write(runs.join("stray-file"), b"not a run").unwrap();

        let listing = list_runs(state_dir);
        let ids: Vec<&str> = listing.runs.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["run-b", "run-a"]);
        assert!(listing
            .runs
            .iter()
            .all(|(_, s)| s.status == RunStatus::Succeeded));
        assert_eq!(listing.warnings.len(), 1, "{:?}", listing.warnings);
        assert!(
            listing.warnings[0].contains("broken"),
            "{:?}",
            listing.warnings
        );
        assert!(
            listing.warnings[0].contains("empty"),
            "{:?}",
            listing.warnings
        );
    }

    #[test]
    fn run_level_type_names_are_the_run_level_events() {
        let s = || "x".to_string();
        let every_event = [
            started(DIAMOND),
            Event::RunResumed {
                user: s(),
                host: s(),
                plan_fingerprint: s(),
                changes: vec![],
                gates: vec![],
            },
            Event::StepStarted {
                step: s(),
                attempt: 1,
            },
            Event::StepSucceeded {
                step: s(),
                attempt: 1,
                output: Value::Null,
                verified: false,
            },
            Event::StepFailed {
                step: s(),
                attempt: 1,
                error: s(),
                will_retry: false,
            },
            Event::StepSkipped {
                step: s(),
                reason: s(),
            },
            Event::StepMarkedDone { step: s(), by: s() },
            Event::StepUnknown {
                step: s(),
                attempt: 1,
            },
            Event::GateWaiting { gate: s() },
            Event::GateApproved {
                gate: s(),
                by: s(),
                host: s(),
                note: None,
                plan_fingerprint: s(),
                account: None,
                at: None,
            },
            Event::GateRejected {
                gate: s(),
                by: s(),
                host: s(),
                note: None,
                plan_fingerprint: s(),
                account: None,
                at: None,
            },
            Event::RunPaused {
                reason: s(),
                waiting_on: vec![],
            },
            Event::RollbackStarted { user: s() },
            Event::UndoStarted { step: s() },
            Event::UndoSucceeded { step: s() },
            Event::UndoFailed {
                step: s(),
                error: s(),
            },
            Event::RunFinished {
                status: FinalStatus::Failed,
            },
        ];
        let mut run_level = Vec::new();
        for e in &every_event {
            let kind = serde_json::to_value(e).unwrap()["type"].clone();
            let kind = kind.as_str().unwrap().to_string();
            assert_eq!(
                RUN_LEVEL.contains(&kind.as_str()),
                is_run_level(e),
                "{kind}"
            );
            if is_run_level(e) {
                run_level.push(kind);
            }
        }
        assert_eq!(run_level, RUN_LEVEL);
    }

    #[test]
    fn a_summary_read_from_disk_matches_the_full_load() {
        let tmp = tempfile::tempdir().unwrap();
        let (w, _) = JournalWriter::create(tmp.path(), started(DIAMOND)).unwrap();
        w.append_blocking(vec![
            Event::StepStarted {
                step: "a".into(),
                attempt: 1,
            },
            Event::StepSucceeded {
                step: "a".into(),
                attempt: 1,
                output: json!({"type": "run_finished"}),
                verified: false,
            },
            Event::RunFinished {
                status: FinalStatus::Failed,
            },
        ])
        .unwrap();
        let (full, _) = RunState::load(tmp.path()).unwrap();
        let (summary, warnings) = RunSummary::load(tmp.path()).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(summary.status, RunStatus::Failed);
        assert_eq!(
            (
                &summary.run_id,
                &summary.runbook,
                summary.status,
                &summary.finished_at
            ),
            (&full.run_id, &full.runbook, full.status, &full.finished_at)
        );
    }

    #[test]
    fn list_runs_of_a_fresh_state_dir_is_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let listing = list_runs(tmp.path());
        assert!(listing.runs.is_empty() && listing.warnings.is_empty());
    }

    #[test]
    fn load_tells_a_live_run_from_a_crashed_one_by_its_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(tmp.path()).unwrap();
        let (w, _) = JournalWriter::create(tmp.path(), started(DIAMOND)).unwrap();
        w.append_blocking(vec![Event::StepStarted {
            step: "a".into(),
            attempt: 1,
        }])
        .unwrap();
        let (live, _) = RunState::load(tmp.path()).unwrap();
        assert_eq!(live.status, RunStatus::Running);
        assert_eq!(live.step("a").unwrap().state, StepState::Running);
        drop(lock);
        let (dead, _) = RunState::load(tmp.path()).unwrap();
        assert_eq!(dead.status, RunStatus::Crashed);
        assert_eq!(dead.step("a").unwrap().state, StepState::Unknown);
    }
}
