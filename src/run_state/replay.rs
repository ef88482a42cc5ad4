//! The one replay of records into a run's state: what each record means for the run and
//! for its steps, and how a dead run's in-flight steps become `unknown`.

use super::step::{kind_of, Approval, StepStatus, UndoAttempt};
use super::{RunState, RunStatus, StepState};
use crate::dsl::StepKind;
use crate::hashing::FastMap;
use crate::journal::record::{Event, Record};
use std::collections::BTreeMap;

/// Replay in progress: the state so far plus what only matters until the end.
#[derive(Default)]
pub(super) struct Replay {
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
    index: FastMap<String, usize>,
    paused_reason: Option<String>,
    waiting_on: Vec<String>,
    resumes: u32,
    last_seq: u64,
    seen_start: bool,
    /// The host driving the run now: of the first start, then of the latest resume.
    driver_host: String,
    sources: Option<(String, BTreeMap<String, String>)>,
}

impl Replay {
    /// A replay that keeps no per-step state, for [`super::RunSummary`].
    pub(super) fn run_level_only() -> Replay {
        Replay {
            run_level_only: true,
            ..Replay::default()
        }
    }

    /// A replay carrying on from `state`, which [`Replay::finish`] made from the records
    /// before (see [`RunState::advance`]).
    pub(super) fn continuing(state: RunState) -> Replay {
        Replay {
            run_level_only: false,
            run_id: state.run_id,
            runbook: state.runbook,
            source: state.source,
            params: state.params,
            inventory: state.inventory,
            user: state.user,
            host: state.host.clone(),
            plan_fingerprint: state.plan_fingerprint,
            started_at: state.started_at,
            finished_at: state.finished_at,
            // Running or crashed: no stop record since the last start, resume or rollback.
            stopped: match state.status {
                RunStatus::Running | RunStatus::Crashed => None,
                stopped => Some(stopped),
            },
            steps: state.steps,
            index: state.index,
            paused_reason: state.paused_reason,
            waiting_on: state.waiting_on,
            resumes: state.resumes,
            last_seq: state.last_seq,
            seen_start: true,
            // Replaced by the `run_resumed` a resumed run appends first.
            driver_host: state.host,
            sources: state.sources,
        }
    }

    /// The step called `name`, added at the end if the plan at start did not have it.
    fn step(&mut self, name: &str, kind: StepKind) -> &mut StepStatus {
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

    pub(super) fn apply(&mut self, record: &Record) {
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
                self.driver_host = host.clone();
                self.plan_fingerprint = plan_fingerprint.clone();
                self.started_at = Some(ts.to_string());
                if self.run_level_only {
                    return;
                }
                // Sized once: a run of 10,000 steps grew this vector of large records
                // by doubling, copying it each time (a tenth of a resume's replay).
                self.steps.reserve(steps.len());
                self.index.reserve(steps.len());
                for planned in steps {
                    if !self.index.contains_key(&planned.name) {
                        self.index.insert(planned.name.clone(), self.steps.len());
                        let mut s = StepStatus::new(
                            &planned.name,
                            kind_of(&planned.kind),
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
                    self.step(&planned.name, kind_of(&planned.kind)).fingerprint =
                        Some(planned.fingerprint.clone());
                }
            }
            Event::RunResumed {
                plan_fingerprint,
                gates,
                host,
                ..
            } => {
                self.live_again();
                self.driver_host = host.clone();
                self.resumes += 1;
                self.plan_fingerprint = plan_fingerprint.clone();
                if !self.run_level_only {
                    for planned in gates {
                        let s = self.step(&planned.name, StepKind::Gate);
                        s.gate = planned.gate.clone();
                    }
                }
            }
            Event::StepStarted { step, .. } => {
                let s = self.step(step, StepKind::Step);
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
                s.processes_host = None;
            }
            Event::ProcessStarted {
                step,
                pgid,
                start_time,
                host,
                ..
            } => {
                let driver = (!self.driver_host.is_empty()).then(|| self.driver_host.clone());
                let s = self.step(step, StepKind::Step);
                s.processes.push((*pgid, *start_time));
                s.processes_host = host.clone().or(driver);
            }
            Event::StepSucceeded {
                step,
                output,
                verified,
                ..
            } => {
                let seq = record.seq;
                let s = self.step(step, StepKind::Step);
                let state = if s.kind == StepKind::Gate {
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
                let s = self.step(step, StepKind::Step);
                s.finish(StepState::Failed, ts);
                s.error = Some(error.clone());
                s.retry_pending = *will_retry;
            }
            Event::StepSkipped { step, reason } => {
                let s = self.step(step, StepKind::Step);
                s.finish(StepState::Skipped, ts);
                s.skip_reason = Some(reason.clone());
            }
            Event::StepMarkedDone { step, by } => {
                let seq = record.seq;
                let s = self.step(step, StepKind::Step);
                s.finish(StepState::Succeeded, ts);
                s.error = None;
                s.marked_done = Some(by.clone());
                s.completed_seq = Some(seq);
            }
            Event::StepUnknown { step, .. } => {
                let s = self.step(step, StepKind::Step);
                s.state = StepState::Unknown;
                s.retry_pending = false;
            }
            Event::GateWaiting { gate } => {
                let s = self.step(gate, StepKind::Gate);
                // Also written after an approval that is not yet enough (`approvals: N`).
                s.state = StepState::AwaitingApproval;
                s.finished_at = None;
                s.started_at.get_or_insert_with(|| ts.to_string());
            }
            // A rehearsal plays the operator's part while its gate waits: the gate's state
            // changes only when it failed, which rejects the gate. Resume never runs a
            // passed one again; one caught in flight by a crash, or one that failed, runs
            // again (`crate::resume`: lab operations state facts, so a repeat is safe).
            Event::RehearsalStarted { gate, .. } => {
                let s = self.step(gate, StepKind::Gate);
                let runs = s.rehearsal.as_ref().map_or(0, |r| r.runs) + 1;
                s.rehearsal = Some(super::step::Rehearsal {
                    runs,
                    started_at: ts.to_string(),
                    ended_at: None,
                    error: None,
                });
            }
            Event::RehearsalEnded { gate, error, .. } => {
                let s = self.step(gate, StepKind::Gate);
                if let Some(r) = s.rehearsal.as_mut() {
                    r.ended_at = Some(ts.to_string());
                    r.error = error.clone();
                }
                if let Some(e) = error {
                    s.finish(StepState::Rejected, ts);
                    s.error = Some(format!("the rehearsal of this gate failed: {e}"));
                }
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
            }
            | Event::GateRejected {
                gate,
                by,
                host,
                note,
                account,
                at,
                ..
            } => {
                let decision = Approval {
                    by: by.clone(),
                    account: account.clone().unwrap_or_else(|| by.clone()),
                    at: at.clone().unwrap_or_else(|| ts.to_string()),
                    note: note.clone(),
                    host: host.clone(),
                };
                let s = self.step(gate, StepKind::Gate);
                if matches!(record.event, Event::GateApproved { .. }) {
                    s.approvals.push(decision);
                    return;
                }
                s.rejections.push(decision);
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
                let s = self.step(step, StepKind::Step);
                s.finish(StepState::RolledBack, ts);
                s.error = None;
                s.undo_attempts.push(UndoAttempt {
                    at: ts.to_string(),
                    error: None,
                });
            }
            Event::UndoFailed { step, error } => {
                let s = self.step(step, StepKind::Step);
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

    pub(super) fn finish(mut self, lock_held: bool) -> RunState {
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
            // Kept in step with `steps` by `Replay::step` and `run_started`.
            index: self.index,
            steps: self.steps,
        }
    }
}
