//! [`decide`]'s rules on real plans (loaded from Rhai text, with their real
//! fingerprints) and journals built record by record; the builder is shared with the
//! rollback tests.

use super::*;
use crate::journal::record::{Event, PlannedStep};
pub(crate) use crate::run_state::tests::Journal;
use serde_json::{json, Value};

pub(crate) use crate::plan::tests::plan_of;

/// A journal whose run started with `plan`.
pub(crate) fn journal(plan: &Plan) -> Journal {
    let mut j = Journal(Vec::new());
    j.push(Event::RunStarted {
        run_id: "run".into(),
        runbook: plan.name.clone(),
        source: "r.rhai".into(),
        params: BTreeMap::new(),
        inventory: None,
        user: "alice".into(),
        host: "h".into(),
        plan_fingerprint: plan.fingerprint.clone(),
        steps: plan
            .steps
            .iter()
            .zip(&plan.fingerprints)
            .map(|(s, fingerprint)| PlannedStep {
                name: s.decl.name.clone(),
                kind: s.decl.kind.as_str().into(),
                fingerprint: fingerprint.clone(),
                after: Vec::new(),
                gate: None,
            })
            .collect(),
        version: "0.1.0".into(),
    });
    j
}

fn options() -> ResumeOptions {
    ResumeOptions::default()
}

fn resume_plan(state: &RunState, plan: &Plan, o: &ResumeOptions) -> ResumePlan {
    match decide(state, plan, o) {
        Ok(Decision::Resume(p)) => *p,
        other => panic!("expected a resume, got {other:?}"),
    }
}

fn names(plan: &Plan, indices: impl IntoIterator<Item = usize>) -> Vec<&str> {
    indices
        .into_iter()
        .map(|i| plan.steps[i].decl.name.as_str())
        .collect()
}

const CHAIN: &str = r#"
    runbook(#{ name: "r", description: "d" });
    step("a", #{ run: || 1 });
    step("b", #{ after: ["a"], run: || 2 });
    step("c", #{ after: ["b"], run: || 3 });
"#;

#[test]
fn a_finished_run_has_nothing_to_resume_unless_from_asks() {
    let plan = plan_of(CHAIN);
    let mut j = journal(&plan);
    j.done("a").done("b").done("c");
    j.push(Event::RunFinished {
        status: crate::journal::FinalStatus::Succeeded,
    });
    let state = j.replay(false);
    assert_eq!(
        decide(&state, &plan, &options()),
        Ok(Decision::Finished(RunStatus::Succeeded))
    );

    let from_b = ResumeOptions {
        from: Some("b".into()),
        ..options()
    };
    let p = resume_plan(&state, &plan, &from_b);
    assert_eq!(
        p.prior,
        [
            Prior::Done(json!({ "step": "a" })),
            Prior::Pending,
            Prior::Pending
        ],
        "--from runs the step and everything downstream again"
    );
}

#[test]
fn options_naming_a_step_the_runbook_lacks_are_refused() {
    let plan = plan_of(CHAIN);
    let state = journal(&plan).replay(false);
    for o in [
        ResumeOptions {
            rerun: vec!["zz".into()],
            ..options()
        },
        ResumeOptions {
            mark_done: vec!["zz".into()],
            ..options()
        },
        ResumeOptions {
            from: Some("zz".into()),
            ..options()
        },
    ] {
        let e = decide(&state, &plan, &o).unwrap_err();
        assert_eq!(e, DecideError::UnknownStep("zz".into()));
        assert_eq!(e.to_string(), "the runbook has no step `zz`");
    }
}

#[test]
fn succeeded_steps_are_kept_with_their_output_and_the_rest_runs() {
    let plan = plan_of(CHAIN);
    let mut j = journal(&plan);
    j.done("a");
    let p = resume_plan(&j.replay(false), &plan, &options());
    assert_eq!(
        p.prior,
        [
            Prior::Done(json!({ "step": "a" })),
            Prior::Pending,
            Prior::Pending
        ]
    );
    assert!(p.changes.is_empty() && p.in_flight.is_empty() && !p.needs_acceptance());
    assert_eq!(p.resumed.starter.as_deref(), Some("alice"));
}

const IN_FLIGHT: &str = r#"
    runbook(#{ name: "r", description: "d" });
    step("marked", #{ run: || 1 });
    step("again", #{ run: || 1 });
    step("probed", #{ run: || 1, check: || true, idempotent: true });
    step("idem", #{ run: || 1, idempotent: true });
    step("plain", #{ run: || 1 });
"#;

#[test]
fn each_in_flight_step_is_marked_rerun_probed_or_left_to_a_person() {
    let plan = plan_of(IN_FLIGHT);
    let mut j = journal(&plan);
    for s in ["marked", "again", "probed", "idem", "plain"] {
        j.started_step(s, 1);
    }
    let o = ResumeOptions {
        mark_done: vec!["marked".into()],
        rerun: vec!["again".into()],
        ..options()
    };
    let mut p = resume_plan(&j.replay(false), &plan, &o);
    let what: Vec<(&str, InFlight)> = p
        .in_flight
        .iter()
        .map(|&(i, w)| (plan.steps[i].decl.name.as_str(), w))
        .collect();
    assert_eq!(
        what,
        [
            ("marked", InFlight::MarkDone),
            ("again", InFlight::Rerun),
            // The probe decides first, even for an idempotent step.
            ("probed", InFlight::Probe),
            ("idem", InFlight::Idempotent),
            ("plain", InFlight::Undecided),
        ]
    );
    assert_eq!(names(&plan, p.resumed.probe.clone()), ["probed"]);
    assert_eq!(names(&plan, p.undecided()), ["plain"]);
    assert_eq!(p.prior[0], Prior::Done(Value::Null));
    assert!(p.prior[1..].iter().all(|x| *x == Prior::Pending));

    // The operator answers the prompt: it happened.
    p.mark_done(4);
    assert!(p.undecided().is_empty());
    assert_eq!(names(&plan, p.marked_done()), ["marked", "plain"]);
    assert_eq!(p.prior[4], Prior::Done(Value::Null));
}

#[test]
fn a_changed_step_that_already_succeeded_needs_acceptance() {
    let plan = plan_of(CHAIN);
    let mut j = journal(&plan);
    j.done("a").started_step("b", 1);
    let state = j.replay(false);
    let edited = plan_of(&CHAIN.replace("|| 1", "|| 10").replace("|| 2", "|| 20"));
    let p = resume_plan(&state, &edited, &options());
    assert_eq!(
        p.changes
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["changed step `a` (already succeeded)", "changed step `b`"]
    );
    assert_eq!(p.changed_done, ["a"]);
    assert!(p.needs_acceptance());
    assert_eq!(names(&edited, p.redefined.clone()), ["a", "b"]);

    let accepted = ResumeOptions {
        accept_changes: true,
        ..options()
    };
    let p = resume_plan(&state, &edited, &accepted);
    assert!(!p.needs_acceptance());
    assert_eq!(p.prior[0], Prior::Done(json!({ "step": "a" })));
}

#[test]
fn new_and_removed_steps_are_changes_that_need_no_acceptance() {
    let plan = plan_of(CHAIN);
    let mut j = journal(&plan);
    j.done("a");
    let edited = plan_of(
        r#"
        runbook(#{ name: "r", description: "d" });
        step("a", #{ run: || 1 });
        step("b", #{ after: ["a"], run: || 2 });
        step("d", #{ after: ["b"], run: || 4 });
    "#,
    );
    let p = resume_plan(&j.replay(false), &edited, &options());
    assert_eq!(
        p.changes,
        [Change::New("d".into()), Change::Removed("c".into())]
    );
    assert_eq!(
        p.changes[1].to_string(),
        "removed step `c` (it stays in the journal)"
    );
    assert_eq!(names(&edited, p.redefined.clone()), ["d"]);
    assert!(!p.needs_acceptance());
}

#[test]
fn a_fresh_step_runs_again_when_something_after_it_still_has_to() {
    let text = r#"
        runbook(#{ name: "r", description: "d" });
        step("look", #{ run: || 1, fresh: true });
        step("act", #{ after: ["look"], run: || 2 });
        step("look2", #{ run: || 3, fresh: true });
    "#;
    let plan = plan_of(text);
    let mut j = journal(&plan);
    j.done("look").done("look2");
    let p = resume_plan(&j.replay(false), &plan, &options());
    assert_eq!(p.fresh_again, [(0, 1)], "look, for act");
    assert_eq!(p.prior[0], Prior::Pending);
    assert_eq!(
        p.prior[2],
        Prior::Done(json!({ "step": "look2" })),
        "nothing after it runs"
    );
}

/// A readiness probe, the verdict that reads it, and a change after the verdict.
const PROBE_VERDICT_CHANGE: &str = r#"
    runbook(#{ name: "r", description: "d" });
    step("probe", #{ run: || 1, fresh: true });
    step("verdict", #{ after: ["probe"], run: || 2 });
    step("upgrade", #{ after: ["verdict"], run: || 3 });
"#;

#[test]
fn a_fresh_step_whose_reader_already_succeeded_is_not_run_again() {
    // The verdict passed and the run went on to change things: probing again would
    // decide nothing and would report the run's own changes as findings.
    let plan = plan_of(PROBE_VERDICT_CHANGE);
    let mut j = journal(&plan);
    j.done("probe").done("verdict");
    let p = resume_plan(&j.replay(false), &plan, &options());
    assert!(p.fresh_again.is_empty(), "{:?}", p.fresh_again);
    assert_eq!(p.prior[0], Prior::Done(json!({ "step": "probe" })));
    assert_eq!(p.prior[2], Prior::Pending);
}

#[test]
fn a_fresh_step_whose_reader_failed_runs_again_and_so_does_a_fresh_step_before_it() {
    let plan = plan_of(PROBE_VERDICT_CHANGE);
    let mut j = journal(&plan);
    j.done("probe")
        .started_step("verdict", 1)
        .failed("verdict", 1, false);
    let p = resume_plan(&j.replay(false), &plan, &options());
    assert_eq!(p.fresh_again, [(0, 1)], "probe, for verdict");

    let chain = plan_of(
        r#"
        runbook(#{ name: "r", description: "d" });
        step("look", #{ run: || 1, fresh: true });
        step("summarise", #{ after: ["look"], run: || 2, fresh: true });
        step("verdict", #{ after: ["summarise"], run: || 3 });
    "#,
    );
    let mut j = journal(&chain);
    j.done("look")
        .done("summarise")
        .started_step("verdict", 1)
        .failed("verdict", 1, false);
    let p = resume_plan(&j.replay(false), &chain, &options());
    assert_eq!(p.fresh_again, [(0, 1), (1, 2)]);
}

#[test]
fn a_waiting_gate_keeps_its_approvals_and_when_it_began_waiting() {
    let text = r#"
        runbook(#{ name: "r", description: "d" });
        step("a", #{ run: || 1 });
        gate("g", #{ after: ["a"], title: "ok?", instructions: "look", approvals: 2 });
    "#;
    let plan = plan_of(text);
    let mut j = journal(&plan);
    j.done("a").waiting("g").approved("g", "bob");
    let state = j.replay(false);
    let p = resume_plan(&state, &plan, &options());
    assert_eq!(p.resumed.approvals, [(1, "bob-account".to_string())]);
    let since =
        humantime::parse_rfc3339(state.step("g").unwrap().started_at.as_deref().unwrap()).unwrap();
    assert_eq!(p.resumed.waiting_since, [(1, since)]);

    // Downstream of --from, the gate is asked again from scratch.
    let from_a = ResumeOptions {
        from: Some("a".into()),
        ..options()
    };
    let p = resume_plan(&state, &plan, &from_a);
    assert!(p.resumed.approvals.is_empty() && p.resumed.waiting_since.is_empty());
}

#[test]
fn a_passed_rehearsal_is_never_played_again_one_cut_short_or_failed_is() {
    let text = r#"
        runbook(#{ name: "r", description: "d" });
        step("a", #{ run: || 1 });
        gate("g", #{ after: ["a"], title: "ok?", instructions: "look", rehearse: |ctx| 1 });
    "#;
    let plan = plan_of(text);
    let started = |j: &mut Journal| {
        j.done("a").waiting("g").push(Event::RehearsalStarted {
            gate: "g".into(),
            attempt: 1,
        });
    };
    let ended = |error: Option<&str>| Event::RehearsalEnded {
        gate: "g".into(),
        attempt: 1,
        error: error.map(str::to_string),
    };

    let mut passed = journal(&plan);
    started(&mut passed);
    passed.push(ended(None));
    let p = resume_plan(&passed.replay(false), &plan, &options());
    assert_eq!(p.prior[1], Prior::Rehearsed);
    // Rejected by a person after the rehearsal: asked again, still not rehearsed again.
    passed.push(Event::GateRejected {
        gate: "g".into(),
        by: "bob".into(),
        host: "h".into(),
        note: None,
        plan_fingerprint: plan.fingerprint.clone(),
        account: Some("bob".into()),
        at: None,
    });
    let p = resume_plan(&passed.replay(false), &plan, &options());
    assert_eq!(p.prior[1], Prior::Rehearsed);
    // `--from` asks for the gate from scratch, rehearsal included.
    let from_g = ResumeOptions {
        from: Some("g".into()),
        ..options()
    };
    let p = resume_plan(&passed.replay(false), &plan, &from_g);
    assert_eq!(p.prior[1], Prior::Pending);

    // Cut short by a crash (no end on record): played again, its operations being facts.
    let mut cut = journal(&plan);
    started(&mut cut);
    let p = resume_plan(&cut.replay(false), &plan, &options());
    assert_eq!(p.prior[1], Prior::Pending);

    // Failed (which rejected the gate): played again, as a failed step runs again.
    let mut failed = journal(&plan);
    started(&mut failed);
    failed.push(ended(Some("ns-01 refused")));
    let state = failed.replay(false);
    let p = resume_plan(&state, &plan, &options());
    assert_eq!(p.prior[1], Prior::Pending);
    let r = state.step("g").unwrap().rehearsal.clone().unwrap();
    assert_eq!((r.runs, r.error.as_deref()), (1, Some("ns-01 refused")));
}

#[test]
fn steps_declared_in_another_order_are_matched_by_name() {
    let plan = plan_of(CHAIN);
    let mut j = journal(&plan);
    j.done("a");
    j.done("b");
    // The same definitions, declared last to first: no step sits where it was recorded.
    let reordered = plan_of(
        r#"
        runbook(#{ name: "r", description: "d" });
        step("c", #{ after: ["b"], run: || 3 });
        step("b", #{ after: ["a"], run: || 2 });
        step("a", #{ run: || 1 });
    "#,
    );
    let p = resume_plan(&j.replay(false), &reordered, &options());
    assert_eq!(p.changes, []);
    let done: Vec<_> = reordered
        .steps
        .iter()
        .zip(&p.prior)
        .filter(|(_, prior)| matches!(prior, Prior::Done(_)))
        .map(|(s, _)| s.decl.name.as_str())
        .collect();
    assert_eq!(done, ["b", "a"]);
}
