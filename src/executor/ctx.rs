//! A step's `ctx`: its parameters, the shared inventory, and `ctx.outputs` looked up as
//! a script reads it (see ARCHITECTURE.md, `executor/`).

use crate::dsl::strict::{Holds, StrictMap};
use crate::plan::Plan;
use crate::scheduler::{FinishedView, NodeResult};
use rhai::{Dynamic, Map};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// What is known of finished steps when a closure is called: live from the scheduler,
/// or from the journal (rollback).
pub(crate) trait Known {
    /// Output of step `i`, if it succeeded.
    fn output(&self, i: usize) -> Option<Value>;
    /// Outcome of step `i`, if it finished.
    fn result(&self, i: usize) -> Option<NodeResult>;
    /// True when any finished step produced a non-null output.
    fn any_output(&self) -> bool;
    /// The live store, when there is one: `ctx.outputs` then looks outputs up in it as
    /// they are read instead of copying every ancestor's.
    fn live(&self) -> Option<FinishedView> {
        None
    }
}

impl Known for FinishedView {
    fn output(&self, i: usize) -> Option<Value> {
        FinishedView::output(self, i)
    }
    fn result(&self, i: usize) -> Option<NodeResult> {
        FinishedView::result(self, i)
    }
    fn any_output(&self) -> bool {
        FinishedView::any_output(self)
    }
    fn live(&self) -> Option<FinishedView> {
        Some(self.clone())
    }
}

/// Outputs of succeeded steps as the journal recorded them, by plan index.
#[derive(Debug, Default)]
pub(crate) struct JournalOutputs(pub HashMap<usize, Value>);

impl Known for JournalOutputs {
    fn output(&self, i: usize) -> Option<Value> {
        self.0.get(&i).cloned()
    }
    fn result(&self, i: usize) -> Option<NodeResult> {
        self.0.contains_key(&i).then_some(NodeResult {
            state: crate::scheduler::ResultState::Succeeded,
            error: None,
        })
    }
    fn any_output(&self) -> bool {
        self.0.values().any(|v| !v.is_null())
    }
}

/// Outputs already turned into Rhai values, by plan index. A step's output never changes
/// once it succeeded, and in a layered run every output appears in the `ctx.outputs` of
/// each of its descendants: converting it once instead of once per descendant made a
/// 10,000-step run whose steps all return a value several times faster.
///
/// It also carries what `ctx`'s strict maps need to explain a name they lack: the plan
/// (is a missing output's step an ancestor?) and the declared parameters.
#[derive(Default)]
pub(crate) struct OutputCache {
    converted: Arc<std::sync::RwLock<HashMap<usize, Dynamic>>>,
    plan: Option<Arc<Plan>>,
    declared: Option<Arc<[String]>>,
}

impl OutputCache {
    /// A cache for a run of `plan` whose runbook declares the parameters `declared`.
    pub(crate) fn new(plan: Arc<Plan>, declared: Vec<String>) -> Self {
        OutputCache {
            converted: Default::default(),
            plan: Some(plan),
            declared: Some(declared.into()),
        }
    }

    fn declared_params(&self, values: &Map) -> Arc<[String]> {
        match &self.declared {
            Some(d) => d.clone(),
            None => values.keys().map(|k| k.to_string()).collect(),
        }
    }
}

thread_local! {
    /// Ancestor walks' visited marks: `marks[i] == stamp` means visited in this walk. Kept
    /// per thread and bumped per walk so a walk costs its ancestors, not the plan's size.
    static MARKS: std::cell::RefCell<(Vec<u32>, u32)> = const { std::cell::RefCell::new((Vec::new(), 0)) };
}

/// Every ancestor of `node` and `node` itself (during a rollback its undo sees what it
/// did).
pub(super) fn ancestors(plan: &Plan, node: usize) -> Vec<usize> {
    MARKS.with(|m| {
        let (marks, stamp) = &mut *m.borrow_mut();
        if marks.len() < plan.steps.len() {
            marks.resize(plan.steps.len(), 0);
        }
        *stamp = stamp.wrapping_add(1);
        if *stamp == 0 {
            marks.fill(0);
            *stamp = 1;
        }
        let mut found = Vec::new();
        let mut stack: Vec<usize> = vec![node];
        while let Some(a) = stack.pop() {
            if std::mem::replace(&mut marks[a], *stamp) == *stamp {
                continue;
            }
            found.push(a);
            stack.extend(plan.deps[a].iter().copied());
        }
        found
    })
}

type Converted = std::sync::RwLock<HashMap<usize, Dynamic>>;

/// Step `a`'s output as a Rhai value, converted once per run.
fn converted(cache: &Converted, a: usize, done: &dyn Known) -> Option<Dynamic> {
    if let Some(d) = cache.read().unwrap_or_else(|e| e.into_inner()).get(&a) {
        return Some(d.clone());
    }
    let v = done.output(a)?;
    let d = rhai::serde::to_dynamic(&v).unwrap_or(Dynamic::UNIT);
    cache
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(a, d.clone());
    Some(d)
}

/// The run's outputs as a lazy `ctx.outputs` reads them.
struct LiveOutputs {
    plan: Arc<Plan>,
    view: FinishedView,
    converted: Arc<Converted>,
}

impl crate::dsl::strict::OutputSource for LiveOutputs {
    fn output(&self, i: usize) -> Option<Dynamic> {
        converted(&self.converted, i, &self.view)
    }

    fn all(&self, node: usize) -> Map {
        ancestors(&self.plan, node)
            .into_iter()
            .filter_map(|a| {
                let d = self.output(a)?;
                Some((self.plan.steps[a].decl.name.as_str().into(), d))
            })
            .collect()
    }
}

/// The `ctx` map a closure receives (SPEC §2).
#[allow(clippy::too_many_arguments)]
pub(crate) fn build_ctx(
    plan: &Plan,
    params: &Map,
    inventory: &Arc<Dynamic>,
    run_id: &str,
    node: usize,
    attempt: u32,
    done: &dyn Known,
    cache: &OutputCache,
) -> Dynamic {
    let step = &plan.steps[node];
    let mut ctx = Map::new();
    ctx.insert(
        "params".into(),
        StrictMap::dynamic(params.clone(), Holds::Params(cache.declared_params(params))),
    );
    ctx.insert("step".into(), step.decl.name.clone().into());
    ctx.insert("run_id".into(), run_id.into());
    ctx.insert("attempt".into(), (attempt as i64).into());
    ctx.insert("dry_run".into(), false.into());
    let outputs = match (&cache.plan, done.live()) {
        (Some(plan), Some(view)) => StrictMap::lazy_outputs(
            plan.clone(),
            node,
            Arc::new(LiveOutputs {
                plan: plan.clone(),
                view,
                converted: cache.converted.clone(),
            }),
        ),
        _ => {
            let mut outputs = Map::new();
            if done.any_output() {
                for a in ancestors(plan, node) {
                    if let Some(d) = converted(&cache.converted, a, done) {
                        outputs.insert(plan.steps[a].decl.name.as_str().into(), d);
                    }
                }
            }
            StrictMap::dynamic(
                outputs,
                Holds::Outputs {
                    plan: cache
                        .plan
                        .clone()
                        .map(|p| p as Arc<dyn crate::dsl::strict::StepGraph>),
                    node,
                },
            )
        }
    };
    ctx.insert("outputs".into(), outputs);
    let mut results = Map::new();
    for &d in &plan.deps[node] {
        if let Some(r) = done.result(d) {
            let mut m = Map::new();
            m.insert("state".into(), r.state.as_str().into());
            m.insert("error".into(), r.error.map_or(Dynamic::UNIT, Dynamic::from));
            results.insert(plan.steps[d].decl.name.as_str().into(), m.into());
        }
    }
    ctx.insert(
        "results".into(),
        StrictMap::dynamic(results, Holds::Results(step.decl.name.as_str().into())),
    );
    // `inventory` is the one entry as large as the estate: a step pays for its copy only
    // if it reads it, so a run of N steps is not N copies of N servers.
    StrictMap::dynamic_deferring(ctx, Holds::Ctx, "inventory", inventory.clone())
}

pub(super) fn params_keys(params: &Map) -> Vec<String> {
    params.keys().map(|k| k.to_string()).collect()
}
