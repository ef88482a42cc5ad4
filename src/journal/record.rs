//! The journal's record types: the one persisted format of a run.
//!
//! Each line of `journal.jsonl` is one [`Record`] serialized as a flat JSON object:
//! `{"seq":N,"ts":"RFC3339","type":"step_started",...,"crc":"xxxxxxxx"}`. The `crc`
//! (CRC-32, lower-case hex) covers the exact bytes of the line before `,"crc"`.
//! Adding a variant or an optional field is backwards compatible; renaming is not.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One journal line: a sequence number, a wall-clock timestamp and an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// 1-based, strictly increasing, no gaps.
    pub seq: u64,
    /// When the record was written, RFC 3339 UTC with milliseconds.
    pub ts: String,
    /// What happened.
    #[serde(flatten)]
    pub event: Event,
}

/// How a step was declared, as recorded at run start (used to detect edited runbooks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// Step or gate name.
    pub name: String,
    /// `"step"` or `"gate"`.
    pub kind: String,
    /// Fingerprint of options, closure source and params.
    pub fingerprint: String,
    /// The steps it runs after, so a report can draw the plan as it ran even once the
    /// runbook is edited (absent in journals written before it was recorded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// For a gate: what an approver in another shell must see and what the gate needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateInfo>,
}

/// A gate's declaration as recorded in the journal, so `status` can show an approver what
/// they approve and `approve` can refuse what would never count, without the runbook.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GateInfo {
    /// The gate's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// What to do and check before approving.
    #[serde(default)]
    pub instructions: String,
    /// Distinct approving accounts needed.
    pub approvals: u32,
    /// The account that started the run cannot approve.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub separate_approver: bool,
}

/// Terminal status of a run, as written in [`Event::RunFinished`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinalStatus {
    /// Every step succeeded, was approved or was skipped by its `when`.
    Succeeded,
    /// A step failed or a gate was rejected.
    Failed,
    /// Ctrl-C / SIGTERM.
    Cancelled,
    /// `waymark rollback` ran the undo closures.
    RolledBack,
}

/// Everything that can happen to a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// First record of every journal.
    RunStarted {
        run_id: String,
        /// The runbook's declared name.
        runbook: String,
        /// What the user passed as RUNBOOK (path or shipped name), to reload it on resume.
        source: String,
        /// Parameters after defaults were merged (secrets are never params).
        params: BTreeMap<String, String>,
        /// Inventory file given with `--inventory`, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inventory: Option<String>,
        /// OS user who started the run.
        user: String,
        /// Host the run was started on.
        host: String,
        /// Fingerprint of the whole plan.
        plan_fingerprint: String,
        /// Every step of the plan, in declaration order.
        steps: Vec<PlannedStep>,
        /// waymark version that wrote the journal.
        version: String,
    },
    /// The source text the run's definitions come from (the runbook and every module it
    /// read), written after `run_started` and again when a resume accepts changes: a
    /// changed step is shown as a diff against it. `steps` carries the fingerprints the
    /// accepted changes gave new and changed steps (empty at run start, where
    /// `run_started` has them).
    RunSources {
        /// The runbook's own file among `files`.
        main: String,
        /// File name (as diagnostics show it) → text.
        files: BTreeMap<String, String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        steps: Vec<PlannedStep>,
    },
    /// A process (re)attached to the run: `waymark resume`.
    RunResumed {
        user: String,
        host: String,
        plan_fingerprint: String,
        /// Steps added or changed since the previous plan, as accepted.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        changes: Vec<String>,
        /// The gates of the plan as resumed (their declarations may have been edited).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        gates: Vec<PlannedStep>,
    },
    /// An attempt is about to run; durable before the action starts.
    StepStarted { step: String, attempt: u32 },
    /// A process of an attempt was started, as the leader of its own process group;
    /// durable before the program runs, so after a crash `status` and `resume` can find
    /// the group if it outlived waymark.
    ProcessStarted {
        step: String,
        attempt: u32,
        /// Process group id (the leader's pid).
        pgid: u32,
        /// The leader's start time (Linux: clock ticks since boot, `/proc/PID/stat`
        /// field 22; 0 where unknown), so a reused pid is not taken for the group.
        #[serde(default)]
        start_time: u64,
        /// The host whose waymark started it (`WAYMARK_HOST`, else its name): the only
        /// place the group can be looked for. Absent in older journals, where the host
        /// that drove the run at the time is meant (`run_started`, `run_resumed`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        host: Option<String>,
    },
    /// An attempt succeeded; durable before any dependent starts.
    StepSucceeded {
        step: String,
        attempt: u32,
        #[serde(default)]
        output: serde_json::Value,
        /// Set when a `check` probe (not a run) established success on resume.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        verified: bool,
    },
    /// An attempt failed; `will_retry` tells whether another attempt follows.
    StepFailed {
        step: String,
        attempt: u32,
        error: String,
        #[serde(default)]
        will_retry: bool,
    },
    /// The step will not run in this run (its `when` was not met, or a dependency failed).
    StepSkipped { step: String, reason: String },
    /// An operator declared an interrupted step done (`--mark-done`).
    StepMarkedDone { step: String, by: String },
    /// A step found in flight on resume.
    StepUnknown { step: String, attempt: u32 },
    /// A gate is waiting for approvals.
    GateWaiting { gate: String },
    /// A gate's `rehearse` closure is about to play the operator's part (a rehearsal on
    /// the lab estate); durable before it acts, like a step's `step_started`.
    RehearsalStarted { gate: String, attempt: u32 },
    /// A gate's rehearsal returned. With an `error` it failed (or timed out) and the gate
    /// counts as rejected; without one the gate goes on to ask for its approvals.
    RehearsalEnded {
        gate: String,
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// One approval of a gate.
    GateApproved {
        gate: String,
        /// Display name (`--by`, else the account).
        by: String,
        host: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// The plan fingerprint the approver saw.
        plan_fingerprint: String,
        /// The OS account that approved: what distinct-approver counting and
        /// `separate_approver` judge. Absent in journals written before it existed, where
        /// `by` is all there is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        /// When the approver gave it (RFC 3339), which may be long before it was journaled
        /// (an advance approval waits in the inbox until its gate is reached).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<String>,
    },
    /// A gate was rejected; the run fails.
    GateRejected {
        gate: String,
        by: String,
        host: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        plan_fingerprint: String,
        /// The OS account that rejected (see `GateApproved`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
        /// When it was given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        at: Option<String>,
    },
    /// The run stopped and waits for a person (gate approval or decision).
    RunPaused {
        reason: String,
        #[serde(default)]
        waiting_on: Vec<String>,
    },
    /// `rollback` began running undo closures.
    RollbackStarted { user: String },
    /// An undo closure is about to run.
    UndoStarted { step: String },
    /// An undo closure finished.
    UndoSucceeded { step: String },
    /// An undo closure failed.
    UndoFailed { step: String, error: String },
    /// Terminal record of a run (a resume may still follow a failed or cancelled run).
    RunFinished { status: FinalStatus },
}

impl Event {
    /// A `run_started` for tests and benchmarks: run `20261123-221500-ab12` of
    /// `example.rhai` ("Example upgrade") with `server=ns-hq` and inventory
    /// `contoso.toml`, started by `alice` on `h`, planning `steps` as `(name, kind)` with
    /// fingerprints `fp-NAME`.
    #[doc(hidden)]
    pub fn sample_run_started(steps: &[(&str, &str)]) -> Event {
        Event::RunStarted {
            run_id: "20261123-221500-ab12".into(),
            runbook: "Example upgrade".into(),
            source: "example.rhai".into(),
            params: BTreeMap::from([("server".to_string(), "ns-hq".to_string())]),
            inventory: Some("contoso.toml".into()),
            user: "alice".into(),
            host: "h".into(),
            plan_fingerprint: "fp".into(),
            steps: steps
                .iter()
                .map(|(name, kind)| PlannedStep {
                    name: name.to_string(),
                    kind: kind.to_string(),
                    fingerprint: format!("fp-{name}"),
                    after: Vec::new(),
                    gate: (*kind == "gate").then(|| GateInfo {
                        approvals: 1,
                        ..GateInfo::default()
                    }),
                })
                .collect(),
            version: "0.1.0".into(),
        }
    }

    /// Scrub secret values from the free text this event carries (errors, reasons,
    /// notes, outputs). Names (steps, gates, users) are not secrets and stay as they are.
    pub fn redact(&mut self, redactor: &crate::redact::Redactor) {
        if redactor.is_empty() {
            return;
        }
        let scrub = |s: &mut String| {
            let clean = redactor.scrub(s);
            if clean != *s {
                *s = clean;
            }
        };
        match self {
            Event::StepFailed { error, .. } | Event::UndoFailed { error, .. } => scrub(error),
            Event::RehearsalEnded {
                error: Some(error), ..
            } => scrub(error),
            Event::StepSkipped { reason, .. } | Event::RunPaused { reason, .. } => scrub(reason),
            Event::GateApproved { note, .. } | Event::GateRejected { note, .. } => {
                if let Some(n) = note {
                    scrub(n);
                }
            }
            Event::StepSucceeded { output, .. } => redactor.scrub_json(output),
            Event::RunStarted { params, .. } => params.values_mut().for_each(scrub),
            _ => {}
        }
    }

    /// The step or gate this event is about, if any.
    pub fn step(&self) -> Option<&str> {
        match self {
            Event::StepStarted { step, .. }
            | Event::ProcessStarted { step, .. }
            | Event::StepSucceeded { step, .. }
            | Event::StepFailed { step, .. }
            | Event::StepSkipped { step, .. }
            | Event::StepMarkedDone { step, .. }
            | Event::StepUnknown { step, .. }
            | Event::UndoStarted { step }
            | Event::UndoSucceeded { step }
            | Event::UndoFailed { step, .. } => Some(step),
            Event::GateWaiting { gate }
            | Event::RehearsalStarted { gate, .. }
            | Event::RehearsalEnded { gate, .. }
            | Event::GateApproved { gate, .. }
            | Event::GateRejected { gate, .. } => Some(gate),
            _ => None,
        }
    }
}
