//! The rollback decision: which undos run and in which order, and what their closures
//! see. Only succeeded steps (not gates) with an `undo` are undone, newest completion
//! first, so an undo never runs while something that relied on its step is still in
//! place; undo closures read the outputs the run recorded, as its steps did.

use crate::dsl::StepKind;
use crate::plan::Plan;
use crate::run_state::{RunState, StepState};
use serde_json::Value;
use std::collections::HashMap;

/// Plan indices of the steps to undo, the most recently completed first.
pub(crate) fn undo_order(state: &RunState, plan: &Plan) -> Vec<usize> {
    let mut done: Vec<(u64, usize)> = plan
        .steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let old = state.step(&s.decl.name)?;
            (old.state == StepState::Succeeded
                && s.decl.undo.is_some()
                && s.decl.kind == StepKind::Step)
                .then(|| (old.completed_seq.unwrap_or(0), i))
        })
        .collect();
    done.sort_by_key(|d| std::cmp::Reverse(d.0));
    done.into_iter().map(|(_, i)| i).collect()
}

/// The output the journal recorded for every succeeded step or approved gate, by plan
/// index (`null` when it returned nothing).
pub(crate) fn recorded_outputs(state: &RunState, plan: &Plan) -> HashMap<usize, Value> {
    plan.steps
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let old = state.step(&s.decl.name)?;
            matches!(old.state, StepState::Succeeded | StepState::Approved)
                .then(|| (i, old.output.clone().unwrap_or_default()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resume::decide::tests::{journal, plan_of, Journal};

    const RUNBOOK: &str = r#"
        runbook(#{ name: "r", description: "d" });
        step("a", #{ run: || 1, undo: || 0 });
        step("b", #{ after: ["a"], run: || #{ x: 2 }, undo: || 0 });
        step("no-undo", #{ after: ["a"], run: || 3 });
        gate("g", #{ after: ["b"], title: "ok?", instructions: "look" });
        step("c", #{ after: ["g"], run: || 4, undo: || 0 });
    "#;

    #[test]
    fn undoes_succeeded_steps_with_an_undo_newest_first() {
        let plan = plan_of(RUNBOOK);
        let mut j: Journal = journal(&plan);
        j.done("b").done("a").done("no-undo");
        j.waiting("g").approved("g", "bob").gate_passed("g");
        j.started_step("c", 1);
        let state = j.replay(false);
        let names: Vec<&str> = undo_order(&state, &plan)
            .into_iter()
            .map(|i| plan.steps[i].decl.name.as_str())
            .collect();
        // Completion order, newest first; gates, steps without undo and steps that did
        // not succeed are not undone.
        assert_eq!(names, ["a", "b"]);
    }

    #[test]
    fn undo_closures_see_the_recorded_outputs() {
        let plan = plan_of(RUNBOOK);
        let mut j = journal(&plan);
        j.done("a").done("b");
        j.waiting("g").approved("g", "bob").gate_passed("g");
        j.started_step("c", 1);
        let outputs = recorded_outputs(&j.replay(false), &plan);
        let mut got: Vec<(&str, Value)> = outputs
            .into_iter()
            .map(|(i, v)| (plan.steps[i].decl.name.as_str(), v))
            .collect();
        got.sort_by_key(|(n, _)| *n);
        assert_eq!(
            got,
            [
                ("a", serde_json::json!({ "step": "a" })),
                ("b", serde_json::json!({ "step": "b" })),
                ("g", Value::Null),
            ]
        );
    }
}
