//! Replay tests: journals built record by record, each replayed both in full and as a
//! run-level summary (which must agree), live and dead. The builder is shared with the
//! other files' tests and with `resume`'s.

use super::*;
use crate::dsl::StepKind;
use crate::journal::record::{Event, FinalStatus, Record};
use crate::state::Store;
use serde_json::{json, Value};

/// Builds a journal's records with increasing seqs and timestamps.
pub(crate) struct Journal(pub(crate) Vec<Record>);

impl Journal {
    pub(crate) fn start(steps: &[(&str, &str)]) -> Journal {
        let mut j = Journal(Vec::new());
        j.push(started(steps));
        j
    }

    pub(crate) fn push(&mut self, event: Event) -> &mut Self {
        let seq = self.0.len() as u64 + 1;
        self.0.push(Record {
            seq,
            ts: format!("2026-11-23T22:{:02}:{:02}.000Z", seq / 60, seq % 60),
            event,
        });
        self
    }

    pub(crate) fn started_step(&mut self, step: &str, attempt: u32) -> &mut Self {
        self.push(Event::StepStarted {
            step: step.into(),
            attempt,
        })
    }

    pub(crate) fn succeeded(&mut self, step: &str, attempt: u32) -> &mut Self {
        self.push(Event::StepSucceeded {
            step: step.into(),
            attempt,
            output: json!({ "step": step }),
            verified: false,
        })
    }

    pub(crate) fn failed(&mut self, step: &str, attempt: u32, will_retry: bool) -> &mut Self {
        self.push(Event::StepFailed {
            step: step.into(),
            attempt,
            error: format!("{step} broke on attempt {attempt}"),
            will_retry,
        })
    }

    /// Started and succeeded on the first attempt, returning `{ step: NAME }`.
    pub(crate) fn done(&mut self, step: &str) -> &mut Self {
        self.started_step(step, 1).succeeded(step, 1)
    }

    pub(crate) fn waiting(&mut self, gate: &str) -> &mut Self {
        self.push(Event::GateWaiting { gate: gate.into() })
    }

    pub(crate) fn approved(&mut self, gate: &str, by: &str) -> &mut Self {
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

    pub(crate) fn gate_passed(&mut self, gate: &str) -> &mut Self {
        self.push(Event::StepSucceeded {
            step: gate.into(),
            attempt: 1,
            output: serde_json::Value::Null,
            verified: false,
        })
    }

    pub(crate) fn resumed(&mut self) -> &mut Self {
        self.push(Event::RunResumed {
            user: "alice".into(),
            host: "h".into(),
            plan_fingerprint: "fp".into(),
            changes: vec![],
            gates: vec![],
        })
    }

    pub(crate) fn finished(&mut self, status: FinalStatus) -> &mut Self {
        self.push(Event::RunFinished { status })
    }

    /// The state, after checking that the run-level summary agrees with it.
    pub(crate) fn replay(&self, lock_held: bool) -> RunState {
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

pub(crate) fn started(steps: &[(&str, &str)]) -> Event {
    Event::sample_run_started(steps)
}

pub(crate) const DIAMOND: &[(&str, &str)] =
    &[("a", "step"), ("b", "step"), ("c", "step"), ("d", "step")];

fn states(run: &RunState) -> Vec<(&str, StepState)> {
    run.steps
        .iter()
        .map(|s| (s.name.as_str(), s.state))
        .collect()
}

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
    assert_eq!(gate.kind, StepKind::Gate);
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
fn load_tells_a_live_run_from_a_crashed_one_by_its_lock() {
    let tmp = tempfile::tempdir().unwrap();
    let run = Store::dir(tmp.path()).create_run().unwrap();
    let lock = run.own().unwrap();
    let (w, _) = run.create_journal(started(DIAMOND)).unwrap();
    w.append_blocking(vec![Event::StepStarted {
        step: "a".into(),
        attempt: 1,
    }])
    .unwrap();
    let (live, _) = RunState::load(&run).unwrap();
    assert_eq!(live.status, RunStatus::Running);
    assert_eq!(live.step("a").unwrap().state, StepState::Running);
    drop(lock);
    let (dead, _) = RunState::load(&run).unwrap();
    assert_eq!(dead.status, RunStatus::Crashed);
    assert_eq!(dead.step("a").unwrap().state, StepState::Unknown);
}

#[test]
fn a_state_carried_on_through_the_new_records_is_the_full_replay() {
    // (journal, where the resuming process took over): what `resume` replayed, then what
    // it appended, always starting with its `run_resumed` and ending stopped again.
    let mut crashed = Journal::start(DIAMOND);
    crashed
        .done("a")
        .started_step("b", 1)
        .started_step("c", 1)
        .failed("c", 1, true);
    let cut_crashed = crashed.0.len();
    crashed
        .resumed()
        .done("b")
        .done("c")
        .started_step("d", 1)
        .failed("d", 1, false)
        .finished(FinalStatus::Failed);

    let mut untouched = Journal::start(DIAMOND);
    untouched.done("a").started_step("b", 1);
    let cut_untouched = untouched.0.len();
    untouched.resumed().done("e").push(Event::RunPaused {
        reason: "b may or may not have happened".into(),
        waiting_on: vec!["b".into()],
    });

    let mut gated = Journal::start(&[("a", "step"), ("g", "gate"), ("b", "step")]);
    gated.done("a").waiting("g").push(Event::RunPaused {
        reason: "waiting for approval".into(),
        waiting_on: vec!["g".into()],
    });
    let cut_gated = gated.0.len();
    gated
        .resumed()
        .approved("g", "bob")
        .gate_passed("g")
        .done("b")
        .finished(FinalStatus::Succeeded);

    for (j, cut) in [
        (&crashed, cut_crashed),
        (&untouched, cut_untouched),
        (&gated, cut_gated),
    ] {
        let (before, after) = j.0.split_at(cut);
        for held in [true, false] {
            let full = j.replay(held);
            let carried = RunState::replay(before, false).advance(after, held);
            assert_eq!(carried, full, "cut at {cut}, lock held: {held}");
        }
    }
}
