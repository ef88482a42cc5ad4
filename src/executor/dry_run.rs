//! `--dry-run`: a step described with primitives that record instead of act, on a `ctx`
//! whose run-time values are unknown.

use super::ctx::{ancestors, build_ctx, OutputCache};
use crate::cancel::CancelToken;
use crate::dsl::step_env::{with_env, DryRun, StepEnv};
use crate::dsl::strict::StrictMap;
use crate::estate::Estate;
use crate::plan::Plan;
use crate::redact::Redactor;
use crate::scheduler::FinishedView;
use crate::step_log::StepLog;
use rhai::{Dynamic, Map};
use std::sync::Arc;

/// Where a step's `--dry-run` description stopped short of its end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DryStop {
    /// It decided on a value known only at run time: "depends on run time: …".
    DependsOn(String),
    /// It failed for a reason of its own (a bad argument, `fail()`, …).
    Failed(String),
}

/// `--dry-run` of one step: call its closure with primitives that only record what they
/// would do and give unknown values for anything only running something would tell
/// (results, earlier steps' outputs); returns the recorded commands and, if the closure
/// stopped early, why.
pub(crate) fn dry_run_step(
    rb: &crate::dsl::Runbook,
    plan: &Plan,
    node: usize,
    estate: Option<Arc<dyn Estate>>,
) -> (Vec<crate::dsl::step_env::DryCall>, Option<DryStop>) {
    let Some(c) = &plan.steps[node].decl.run else {
        return (Vec::new(), None);
    };
    let dry = DryRun::default();
    // Printed, so scrubbed like any other output: `secret()` registers its value here.
    let redactor = Redactor::new();
    let env = Arc::new(StepEnv {
        cancel: CancelToken::new(),
        log: StepLog::disabled(),
        redactor: redactor.clone(),
        dry_run: Some(dry.clone()),
        estate,
    });
    let params: Map = rb
        .params
        .iter()
        .map(|(k, v)| (k.as_str().into(), v.clone().into()))
        .collect();
    let mut ctx = build_ctx(
        plan,
        &params,
        &Arc::new(rb.inventory.clone()),
        "dry-run",
        node,
        1,
        &FinishedView::default(),
        &OutputCache::default(),
    );
    dry_run_ctx(&mut ctx, plan, node);
    crate::dsl::unknown::reset();
    let r = with_env(env, || c.call(&rb.engine, ctx));
    let calls = dry
        .take()
        .into_iter()
        .map(|(what, lines)| {
            let lines = lines.iter().map(|l| redactor.scrub(l)).collect();
            (redactor.scrub(&what), lines)
        })
        .collect();
    let stop = r.err().map(|e| {
        let e = redactor.scrub(&e.to_string());
        match crate::dsl::unknown::explain(&e) {
            Some(why) => DryStop::DependsOn(redactor.scrub(&why)),
            None => DryStop::Failed(e),
        }
    });
    (calls, stop)
}

// `ctx` as a dry-run sees it: `dry_run` is true, and every ancestor's output and every
// dependency's result is unknown (nothing ran), rather than absent.
fn dry_run_ctx(ctx: &mut Dynamic, plan: &Plan, node: usize) {
    let Some(mut c) = ctx.write_lock::<StrictMap>() else {
        return;
    };
    c.map.insert("dry_run".into(), true.into());
    // Its own output is not among them: it has not run either.
    let ancestors: Vec<usize> = ancestors(plan, node)
        .into_iter()
        .filter(|&a| a != node)
        .collect();
    for (key, what) in [("outputs", "output"), ("results", "result")] {
        let Some(field) = c.map.get_mut(key) else {
            continue;
        };
        let Some(mut m) = field.write_lock::<StrictMap>() else {
            continue;
        };
        let steps = if key == "outputs" {
            &ancestors
        } else {
            &plan.deps[node]
        };
        for &a in steps {
            let name = &plan.steps[a].decl.name;
            let value = crate::dsl::unknown::Unknown::value(format!("the {what} of step {name}"));
            m.map.insert(name.as_str().into(), value);
        }
    }
}
