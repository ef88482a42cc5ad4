//! The resume decision: for each step of the reloaded plan, what the journal says it is
//! now (kept, to run, to probe, to be decided by a person), and what changed in the
//! runbook since the run started.
//!
//! The rules, in the order they apply: a step downstream of `--from` runs again whatever
//! it was; a succeeded step or approved gate is kept with its output; an in-flight step
//! (`unknown`, or `running` in a run nobody holds) is marked done by `--mark-done`, run
//! again by `--rerun`, settled by its `check` probe if it has one (idempotent or not:
//! re-running may still cost a restart), run again if idempotent, and otherwise left for a
//! person. A gate still to decide whose rehearsal passed is asked without rehearsing
//! again; one whose rehearsal failed, or never ended (a crash or Ctrl-C caught it), is
//! rehearsed again — a lab's operations state facts ("upgraded to 7.6"), so playing a
//! part twice changes nothing the first did not. A succeeded `fresh` step runs again when
//! a step that depends on it directly still has to run: that step decides on what it
//! reads, so it must read today's facts. Once its readers have all succeeded, looking
//! again would decide nothing — what follows acted on what they saw — and would only
//! report the run's own changes as news (an ITMS preflight probe calling a server this
//! run upgraded a blocker).
//! A step whose definition changed after it succeeded needs `--accept-changes`.

use super::{ResumeOptions, Resumed};
use crate::dsl::StepKind;
use crate::plan::{self, Plan};
use crate::run_state::{RunState, RunStatus, StepState};
use crate::scheduler::Prior;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// Whether `now` differs from the step the journal fingerprinted as `recorded`. A
/// fingerprint from before [`plan::FINGERPRINT_V2`] is compared by the older rule, so a
/// run started by an older waymark is not refused for its helpers it never fingerprinted.
pub(crate) fn differs(
    recorded: &str,
    plan: &Plan,
    now: usize,
    params: &BTreeMap<String, String>,
) -> bool {
    if recorded.starts_with(plan::FINGERPRINT_V2) {
        recorded != plan.fingerprints[now]
    } else {
        recorded != plan::fingerprint_v1(&plan.steps[now].decl, &plan::params_text(params))
    }
}

/// What [`decide`] found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    /// The run already ended this way and no `--from` asks to go back: nothing to do.
    Finished(RunStatus),
    /// Resume as planned.
    Resume(Box<ResumePlan>),
}

/// Why [`decide`] refused the options outright.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecideError {
    /// `--rerun`, `--mark-done` or `--from` named a step the runbook does not have.
    UnknownStep(String),
}

impl fmt::Display for DecideError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecideError::UnknownStep(name) => write!(f, "the runbook has no step `{name}`"),
        }
    }
}

/// One difference between the runbook now and the run's journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A step the journal never saw.
    New(String),
    /// A step whose fingerprint differs; `done`: it already succeeded (or was approved).
    Changed {
        /// Step or gate.
        kind: StepKind,
        /// Its name.
        name: String,
        /// It already succeeded, so its effects happened with the old definition.
        done: bool,
    },
    /// A step the runbook no longer declares (it stays in the journal).
    Removed(String),
}

/// The words the operator reads and `run_resumed` records.
impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::New(name) => write!(f, "new step `{name}`"),
            Change::Changed { kind, name, done } => write!(
                f,
                "changed {} `{name}`{}",
                kind.as_str(),
                if *done { " (already succeeded)" } else { "" }
            ),
            Change::Removed(name) => write!(f, "removed step `{name}` (it stays in the journal)"),
        }
    }
}

/// What happens to a step the run left in flight (started, no end recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InFlight {
    /// An operator said it happened (`--mark-done`, or the prompt): recorded as done.
    MarkDone,
    /// `--rerun`: it runs again.
    Rerun,
    /// Its `check` probe decides before the run goes on.
    Probe,
    /// Idempotent: running it again is safe.
    Idempotent,
    /// Nothing says whether it happened: a person must.
    Undecided,
}

/// How a resume goes on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ResumePlan {
    /// What changed in the runbook, in plan order, removed steps last.
    pub changes: Vec<Change>,
    /// Changed steps that already succeeded: shown with their diffs, and a resume without
    /// `--accept-changes` refuses them ([`ResumePlan::needs_acceptance`]).
    pub changed_done: Vec<String>,
    /// `--accept-changes` was given.
    pub accepted: bool,
    /// Plan indices of new and changed steps: their definitions become the ones later
    /// resumes compare with.
    pub redefined: Vec<usize>,
    /// What the scheduler starts from, per plan index.
    pub prior: Vec<Prior>,
    /// What the run needs to know beyond `prior`.
    pub resumed: Resumed,
    /// Each in-flight step (plan index) and what happens to it, in plan order.
    pub in_flight: Vec<(usize, InFlight)>,
    /// Succeeded `fresh` steps that run again, each with the first step that depends on it
    /// directly and still has to run (the reason it looks again).
    pub fresh_again: Vec<(usize, usize)>,
}

impl ResumePlan {
    /// A changed step that already succeeded was not accepted: the resume must stop.
    pub(crate) fn needs_acceptance(&self) -> bool {
        !self.changed_done.is_empty() && !self.accepted
    }

    /// In-flight steps nobody decided yet.
    pub(crate) fn undecided(&self) -> Vec<usize> {
        self.in_flight
            .iter()
            .filter(|(_, what)| *what == InFlight::Undecided)
            .map(|&(i, _)| i)
            .collect()
    }

    /// A person said the in-flight step `i` happened.
    pub(crate) fn mark_done(&mut self, i: usize) {
        for (j, what) in &mut self.in_flight {
            if *j == i {
                *what = InFlight::MarkDone;
            }
        }
        self.prior[i] = Prior::Done(serde_json::Value::Null);
    }

    /// A person said the in-flight step `i` did not happen: it runs again.
    pub(crate) fn rerun(&mut self, i: usize) {
        for (j, what) in &mut self.in_flight {
            if *j == i {
                *what = InFlight::Rerun;
            }
        }
    }

    /// Steps to record as done by an operator, in plan order.
    pub(crate) fn marked_done(&self) -> impl Iterator<Item = usize> + '_ {
        self.in_flight
            .iter()
            .filter(|(_, what)| *what == InFlight::MarkDone)
            .map(|&(i, _)| i)
    }
}

/// Decide how the run recorded in `state` goes on with `plan`, the runbook as it loads
/// now, under the operator's options. Pure: the prompts and the journal are the caller's.
pub(crate) fn decide(
    state: &RunState,
    plan: &Plan,
    options: &ResumeOptions,
) -> Result<Decision, DecideError> {
    if matches!(state.status, RunStatus::Succeeded | RunStatus::RolledBack)
        && options.from.is_none()
    {
        return Ok(Decision::Finished(state.status));
    }
    for name in options
        .rerun
        .iter()
        .chain(&options.mark_done)
        .chain(&options.from)
    {
        if plan.step(name).is_none() {
            return Err(DecideError::UnknownStep(name.clone()));
        }
    }
    // Where each plan step is among the recorded ones, looked up once for both passes.
    let recorded: Vec<Option<usize>> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| state.position(&s.decl.name, i))
        .collect();
    let (changes, changed_done, redefined) = compare(state, plan, &recorded);

    let from: HashSet<usize> = match &options.from {
        Some(f) => downstream(plan, plan.index[f]),
        None => HashSet::new(),
    };
    let mut prior = vec![Prior::Pending; plan.steps.len()];
    let mut resumed = Resumed {
        starter: Some(state.user.clone()),
        ..Default::default()
    };
    let mut in_flight = Vec::new();
    for (i, s) in plan.steps.iter().enumerate() {
        let name = &s.decl.name;
        let Some(old) = recorded[i].map(|j| &state.steps[j]) else {
            continue;
        };
        if from.contains(&i) {
            continue;
        }
        for a in &old.approvals {
            resumed.approvals.push((i, a.account.clone()));
        }
        if old.state == StepState::AwaitingApproval {
            if let Some(t) = old
                .started_at
                .as_deref()
                .and_then(|t| humantime::parse_rfc3339(t).ok())
            {
                resumed.waiting_since.push((i, t));
            }
        }
        match old.state {
            StepState::Succeeded | StepState::Approved => {
                prior[i] = Prior::Done(old.output.clone().unwrap_or_default())
            }
            StepState::Unknown | StepState::Running => {
                let what = if options.mark_done.contains(name) {
                    prior[i] = Prior::Done(serde_json::Value::Null);
                    InFlight::MarkDone
                } else if options.rerun.contains(name) {
                    InFlight::Rerun
                } else if s.decl.check.is_some() {
                    resumed.probe.push(i);
                    InFlight::Probe
                } else if s.decl.idempotent {
                    InFlight::Idempotent
                } else {
                    InFlight::Undecided
                };
                in_flight.push((i, what));
            }
            // Its rehearsal acted on the estate once: the gate is asked again, never
            // rehearsed again (`--from` it to play it once more).
            _ if old.rehearsal.as_ref().is_some_and(|r| r.passed()) => prior[i] = Prior::Rehearsed,
            _ => {}
        }
    }
    let fresh_again = fresh_again(plan, &mut prior);
    Ok(Decision::Resume(Box::new(ResumePlan {
        changes,
        changed_done,
        accepted: options.accept_changes,
        redefined,
        prior,
        resumed,
        in_flight,
        fresh_again,
    })))
}

/// The runbook now against the journal: every change, the changed steps that already
/// succeeded, and the plan indices whose new definition must be recorded.
fn compare(
    state: &RunState,
    plan: &Plan,
    recorded: &[Option<usize>],
) -> (Vec<Change>, Vec<String>, Vec<usize>) {
    let mut changes = Vec::new();
    let mut changed_done = Vec::new();
    let mut redefined = Vec::new();
    for (i, s) in plan.steps.iter().enumerate() {
        let name = &s.decl.name;
        match recorded[i].map(|j| &state.steps[j]) {
            None => {
                changes.push(Change::New(name.clone()));
                redefined.push(i);
            }
            Some(old)
                if old
                    .fingerprint
                    .as_deref()
                    .is_some_and(|f| differs(f, plan, i, &state.params)) =>
            {
                let done = matches!(old.state, StepState::Succeeded | StepState::Approved);
                if done {
                    changed_done.push(name.clone());
                }
                changes.push(Change::Changed {
                    kind: s.decl.kind,
                    name: name.clone(),
                    done,
                });
                redefined.push(i);
            }
            Some(_) => {}
        }
    }
    // A recorded step no plan step matched was removed (names are unique on both sides).
    let mut kept = vec![false; state.steps.len()];
    for &j in recorded.iter().flatten() {
        kept[j] = true;
    }
    for (old, kept) in state.steps.iter().zip(kept) {
        if !kept {
            changes.push(Change::Removed(old.name.clone()));
        }
    }
    (changes, changed_done, redefined)
}

/// Make every succeeded `fresh` step pending again when a step that depends on it
/// directly still has to run (a fixed blocker is then seen by the probe, not judged on
/// the recorded result); returns them with that reader. Later waves first, so a fresh
/// step read by another fresh one that runs again runs again too.
fn fresh_again(plan: &Plan, prior: &mut [Prior]) -> Vec<(usize, usize)> {
    let mut again = Vec::new();
    for wave in plan.waves.iter().rev() {
        for &i in wave {
            if !plan.steps[i].decl.fresh || !matches!(prior[i], Prior::Done(_)) {
                continue;
            }
            let reader = plan.dependents[i]
                .iter()
                .copied()
                .filter(|&d| matches!(prior[d], Prior::Pending | Prior::Rehearsed))
                .min();
            if let Some(reader) = reader {
                prior[i] = Prior::Pending;
                again.push((i, reader));
            }
        }
    }
    again.sort_unstable();
    again
}

/// `start` and every step that depends on it, directly or not.
fn downstream(plan: &Plan, start: usize) -> HashSet<usize> {
    let mut seen = HashSet::from([start]);
    let mut stack = vec![start];
    while let Some(i) = stack.pop() {
        for &d in &plan.dependents[i] {
            if seen.insert(d) {
                stack.push(d);
            }
        }
    }
    seen
}

#[cfg(test)]
#[path = "decide_tests.rs"]
pub(crate) mod tests;
