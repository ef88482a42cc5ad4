//! The bridge between the scheduler and Rhai: runs a step's closure with its `ctx`, turns
//! its output into a storable value, and decides gates (`--yes`, the approval inbox).

use crate::cancel::CancelToken;
use crate::dsl::step_env::{with_env, DryRun, StepEnv};
use crate::dsl::strict::{Holds, StrictMap};
use crate::dsl::{Callable, StepKind};
use crate::estate::Estate;
use crate::inbox::{self, Decision};
use crate::journal::{current_host, current_user, Event, JournalWriter};
use crate::plan::Plan;
use crate::redact::Redactor;
use crate::scheduler::{Action, FinishedView, GateState, NodeResult};
use crate::state::Run;
use crate::step_log::{LogEcho, StepLog, StepLogOptions};
use rhai::{Dynamic, Map};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// How gates are answered in this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateMode {
    /// `--yes`: one approval of every gate by the account running waymark.
    ApproveAll,
    /// Wait for approvals through the inbox (`waymark approve` from another shell).
    Inbox,
    /// Ask in this terminal (approve / reject / pause); the inbox works too.
    Prompt,
}

/// Runs Rhai steps for one run.
pub(crate) struct RhaiAction {
    plan: Arc<Plan>,
    engine: Arc<rhai::Engine>,
    params: Map,
    // Shared by every step's `ctx`, which copies it only if the step reads it.
    inventory: Arc<Dynamic>,
    run_id: String,
    run: Run,
    redactor: Redactor,
    journal: JournalWriter,
    gate_mode: GateMode,
    user: String,
    /// Who started the run (a `separate_approver` gate refuses them).
    pub starter: String,
    approvers: Mutex<HashMap<usize, BTreeSet<String>>>,
    /// Echo log lines to the terminal.
    pub echo: Option<LogEcho>,
    /// The estate estate operations act on.
    pub estate: Option<Arc<dyn Estate>>,
    /// Set for `--dry-run`: primitives record instead of acting.
    pub dry_run: Option<DryRun>,
    /// Gates `--yes` has already given its one approval to (or declined to).
    yes_given: Mutex<BTreeSet<usize>>,
    /// The live display, told of what gates decide beyond the journal's events.
    pub display: Option<Arc<crate::display::Display>>,
    /// Asks gates in this terminal (`GateMode::Prompt`).
    pub prompter: Option<Arc<crate::prompt::GatePrompter>>,
    waiting_since: Mutex<HashMap<usize, std::time::Instant>>,
    outputs: OutputCache,
    /// Steps whose last attempt failed in a way asking again cannot change.
    final_failures: Mutex<BTreeSet<usize>>,
}

impl RhaiAction {
    /// An executor for `plan`, writing step logs and reading decisions through `run`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        plan: Arc<Plan>,
        engine: Arc<rhai::Engine>,
        params: &std::collections::BTreeMap<String, String>,
        inventory: Dynamic,
        run_id: String,
        run: Run,
        redactor: Redactor,
        journal: JournalWriter,
        gate_mode: GateMode,
    ) -> Self {
        let params = params
            .iter()
            .map(|(k, v)| (k.as_str().into(), v.clone().into()))
            .collect();
        let plan_for_cache = plan.clone();
        let declared = params_keys(&params);
        Self {
            plan,
            engine,
            params,
            inventory: Arc::new(inventory),
            run_id,
            run,
            redactor,
            journal,
            gate_mode,
            user: current_user(),
            starter: current_user(),
            approvers: Mutex::new(HashMap::new()),
            echo: None,
            estate: None,
            dry_run: None,
            yes_given: Mutex::new(BTreeSet::new()),
            display: None,
            prompter: None,
            waiting_since: Mutex::new(HashMap::new()),
            outputs: OutputCache::new(plan_for_cache, declared),
            final_failures: Mutex::new(BTreeSet::new()),
        }
    }

    /// The parameters the runbook declares (reading one without a value gives `()`;
    /// reading any other name fails the step). Defaults to those with values.
    pub(crate) fn declare_params(&mut self, names: impl IntoIterator<Item = String>) {
        self.outputs = OutputCache::new(self.plan.clone(), names.into_iter().collect());
    }

    /// When a gate began waiting in an earlier process (resume), so its `timeout` counts
    /// from then and not from this resume.
    pub(crate) fn preload_waiting_since(&self, gate: usize, since: std::time::SystemTime) {
        let waited = std::time::SystemTime::now()
            .duration_since(since)
            .unwrap_or_default();
        let instant = std::time::Instant::now()
            .checked_sub(waited)
            .unwrap_or_else(std::time::Instant::now);
        self.waiting_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(gate, instant);
    }

    /// An approving account already journaled for a gate (resume).
    pub(crate) fn preload_approver(&self, gate: usize, by: String) {
        self.approvers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(gate)
            .or_default()
            .insert(by);
    }

    // A fresh handle per call: the file opens on the first line and closes when the call
    // ends, so a long run never holds one descriptor per step (1,000 exec steps would
    // exhaust `ulimit -n`).
    fn step_log(&self, node: usize) -> StepLog {
        let name = &self.plan.steps[node].decl.name;
        let echo = match (&self.echo, &self.display) {
            (Some(e), _) => Some(e.clone()),
            (None, Some(d)) => {
                let (d, step) = (d.clone(), name.clone());
                Some(
                    Arc::new(move |stream: &str, line: &str| d.step_line(&step, stream, line))
                        as LogEcho,
                )
            }
            (None, None) => None,
        };
        let opts = StepLogOptions {
            echo,
            ..Default::default()
        };
        self.run
            .step_log(name, self.redactor.clone(), opts)
            .unwrap_or_else(|e| {
                tracing::warn!("cannot open the log of {name}: {e}");
                StepLog::disabled()
            })
    }

    fn ctx(&self, node: usize, attempt: u32, done: &dyn Known) -> Dynamic {
        build_ctx(
            &self.plan,
            &self.params,
            &self.inventory,
            &self.run_id,
            node,
            attempt,
            done,
            &self.outputs,
        )
    }

    /// Call one closure of a step with its ctx and environment.
    pub(crate) fn call(
        &self,
        node: usize,
        attempt: u32,
        c: &Callable,
        cancel: &CancelToken,
        done: &dyn Known,
    ) -> Result<Value, String> {
        let env = Arc::new(StepEnv {
            cancel: cancel.clone(),
            log: self.step_log(node),
            redactor: self.redactor.clone(),
            dry_run: self.dry_run.clone(),
            estate: self.estate.clone(),
        });
        let ctx = self.ctx(node, attempt, done);
        let file: Arc<str> = self.plan.steps[node]
            .decl
            .pos
            .as_ref()
            .map(|p| p.file.clone())
            .unwrap_or_else(|| "".into());
        let hook = self.process_recorder(node, attempt);
        let result = with_env(env.clone(), || {
            crate::process::with_spawn_hook(hook, || c.call(&self.engine, ctx))
        });
        match result {
            Ok(v) => to_json(&v, &self.redactor).map_err(|e| {
                let decl = &self.plan.steps[node].decl;
                let at = decl
                    .pos
                    .as_ref()
                    .map(|p| format!(", declared at {p}"))
                    .unwrap_or_default();
                let msg = format!(
                    "step `{}` returned a value that cannot be stored: {e} (its closure{at}; return plain data, e.g. a map of strings and numbers)",
                    decl.name
                );
                env.log.line("error", &msg);
                msg
            }),
            Err(e) => {
                let kind = final_kind(&e);
                let mut msg = match crate::dsl::loader::eval_diagnostic(&file, &e) {
                    Some(d) => match &d.primary {
                        Some(p) => format!("{} (at {})", d.message, p.pos),
                        None => d.message,
                    },
                    None => e.to_string(),
                };
                let mut finals = self.final_failures.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(kind) = kind {
                    finals.insert(node);
                    if self.plan.steps[node].decl.retries >= attempt {
                        msg.push_str(&format!(
                            "\n(not retried: a `{kind}` estate error does not pass by asking again)"
                        ));
                    }
                } else {
                    finals.remove(&node);
                }
                drop(finals);
                let msg = self.redactor.scrub(&msg);
                env.log.line("error", &msg);
                Err(msg)
            }
        }
    }
}

/// The kind of the estate error a closure failed with, when asking again cannot change
/// it (a refusal, a manual-only operation, bad arguments, ...).
fn final_kind(e: &rhai::EvalAltResult) -> Option<String> {
    let mut e = e;
    loop {
        match e {
            rhai::EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
            | rhai::EvalAltResult::ErrorInModule(_, inner, _) => e = inner,
            rhai::EvalAltResult::ErrorRuntime(v, _) => {
                let kind = crate::dsl::estate_ops::thrown_kind(v)?;
                return crate::dsl::estate_ops::FINAL_KINDS
                    .contains(&kind.as_str())
                    .then_some(kind);
            }
            _ => return None,
        }
    }
}

impl RhaiAction {
    // Every process group a closure starts is journaled before its program runs, so a
    // group that outlives a crash of waymark can be found (`crate::orphans`).
    fn process_recorder(&self, node: usize, attempt: u32) -> crate::process::SpawnHook {
        let journal = self.journal.clone();
        let step = self.plan.steps[node].decl.name.clone();
        // Only this host can find the group again (`crate::orphans`); named once per process.
        static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let host = HOST.get_or_init(crate::journal::current_host);
        Arc::new(move |g: &crate::process::SpawnedGroup| {
            let ev = Event::ProcessStarted {
                step: step.clone(),
                attempt,
                pgid: g.pgid,
                start_time: g.start_time,
                host: Some(host.clone()),
            };
            // Written, not fsync'd: a group outlives a crash of waymark, never one of
            // the machine, so the kernel holding the record is enough (journal/writer.rs).
            journal
                .append_written(vec![ev])
                .map(drop)
                .map_err(|e| e.to_string())
        })
    }
}

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
fn ancestors(plan: &Plan, node: usize) -> Vec<usize> {
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
            stack.extend(plan.steps[a].deps.iter().copied());
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
                    plan: cache.plan.clone(),
                    node,
                },
            )
        }
    };
    ctx.insert("outputs".into(), outputs);
    let mut results = Map::new();
    for &d in &step.deps {
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
    let mut ancestors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut stack = plan.steps[node].deps.clone();
    while let Some(a) = stack.pop() {
        if seen.insert(a) {
            ancestors.push(a);
            stack.extend(plan.steps[a].deps.iter().copied());
        }
    }
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
            &plan.steps[node].deps
        };
        for &a in steps {
            let name = &plan.steps[a].decl.name;
            let value = crate::dsl::unknown::Unknown::value(format!("the {what} of step {name}"));
            m.map.insert(name.as_str().into(), value);
        }
    }
}

fn params_keys(params: &Map) -> Vec<String> {
    params.keys().map(|k| k.to_string()).collect()
}

/// A step output as JSON: unit, bool, int, float, string, array or map of those.
pub(crate) fn to_json(v: &Dynamic, redactor: &Redactor) -> Result<Value, String> {
    if v.is_unit() {
        return Ok(Value::Null);
    }
    if let Ok(b) = v.as_bool() {
        return Ok(Value::Bool(b));
    }
    if let Ok(i) = v.as_int() {
        return Ok(Value::from(i));
    }
    if let Ok(f) = v.as_float() {
        return Ok(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number));
    }
    if v.is_string() {
        return Ok(Value::String(
            redactor.scrub(&v.clone().into_string().unwrap_or_default()),
        ));
    }
    if v.is_array() {
        let a = v.clone().into_array().unwrap_or_default();
        return a
            .iter()
            .map(|x| to_json(x, redactor))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array);
    }
    if let Some(m) = v.read_lock::<StrictMap>() {
        let mut m = m.clone();
        let map = Dynamic::from_map(m.entries().clone());
        return to_json(&map, redactor);
    }
    if v.is_map() {
        let m = v.clone().cast::<Map>();
        let mut out = serde_json::Map::new();
        for (k, x) in m {
            out.insert(k.to_string(), to_json(&x, redactor)?);
        }
        return Ok(Value::Object(out));
    }
    let what = match v.type_name() {
        "Fn" => "a closure (Fn)".to_string(),
        other => other.to_string(),
    };
    Err(format!(
        "a step's output must be (), a bool, number, string, array or map of those, not {what}"
    ))
}

/// `by` as shown to people: the display name, with the account when they differ.
fn who(item: &inbox::InboxItem) -> String {
    if item.by == item.account {
        item.by.clone()
    } else {
        format!("{} (account {})", item.by, item.account)
    }
}

impl RhaiAction {
    fn has_approved(&self, node: usize, account: &str) -> bool {
        self.approvers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&node)
            .is_some_and(|a| a.contains(account))
    }

    // Decisions are journaled here, not by the scheduler, so the display hears of them
    // from here too: who approved is what the operator most needs to see.
    fn journal_decision(&self, ev: Event) -> Result<(), crate::journal::JournalError> {
        self.journal.append_blocking(vec![ev.clone()])?;
        if let Some(d) = &self.display {
            d.event(&ev);
        }
        Ok(())
    }

    fn notice(&self, line: &str) {
        match &self.display {
            Some(d) => d.notice(line),
            None => tracing::warn!("{line}"),
        }
    }

    // `--yes` is one approval by the account running waymark, nothing more: a gate that
    // needs someone else, or more people, goes on waiting for them.
    fn approve_with_yes(&self, node: usize) -> Result<(), crate::journal::JournalError> {
        let decl = &self.plan.steps[node].decl;
        let need = decl.approvals.max(1) as usize;
        if decl.separate_approver && self.user == self.starter {
            self.notice(&format!(
                "gate {} needs an approver other than {}, who started the run: --yes does not approve it",
                decl.name, self.user
            ));
            return Ok(());
        }
        if self.has_approved(node, &self.user) {
            return Ok(());
        }
        let ev = Event::GateApproved {
            gate: decl.name.clone(),
            by: self.user.clone(),
            host: current_host(),
            note: Some("--yes".into()),
            plan_fingerprint: self.plan.fingerprint.clone(),
            account: Some(self.user.clone()),
            at: None,
        };
        self.journal_decision(ev)?;
        self.preload_approver(node, self.user.clone());
        if need > 1 {
            self.notice(&format!(
                "gate {} needs {need} approvals from distinct accounts: --yes gave {}'s, the others must approve",
                decl.name, self.user
            ));
        }
        Ok(())
    }

    fn ask(&self, node: usize) -> crate::prompt::Ask {
        let decl = &self.plan.steps[node].decl;
        let need = decl.approvals.max(1);
        let needs = (need > 1).then(|| format!("needs {need} approvals from distinct accounts"));
        let elsewhere = crate::cli::hint::approve(&self.run_id, &decl.name, &self.run.store());
        // Offering "approve" to someone whose approval cannot count would be a lie.
        let cannot_approve = if decl.separate_approver && self.user == self.starter {
            Some(format!(
                "{} started this run, and this gate needs another account's approval: {elsewhere}",
                self.user
            ))
        } else if self.has_approved(node, &self.user) {
            Some(format!(
                "{} has approved already; the other approvals come from other accounts: {elsewhere}",
                self.user
            ))
        } else {
            None
        };
        crate::prompt::Ask {
            gate: decl.name.clone(),
            title: decl.title.clone().unwrap_or_else(|| "manual step".into()),
            instructions: decl.instructions.clone().unwrap_or_default(),
            needs,
            cannot_approve,
        }
    }

    // The gate is decided: an open prompt for it closes, saying so.
    fn close_prompt(&self, node: usize, why: String) {
        if let Some(p) = &self.prompter {
            p.decided(
                &self.plan.steps[node].decl.name,
                format!("{why}: this prompt is closed"),
            );
        }
    }

    // A rejection waymark itself decides (timeout, failed rehearsal), journaled like a
    // person's so `status` says who and why.
    fn reject_by_waymark(&self, node: usize, why: String) -> GateState {
        let ev = Event::GateRejected {
            gate: self.plan.steps[node].decl.name.clone(),
            by: "waymark".into(),
            host: current_host(),
            note: Some(why.clone()),
            plan_fingerprint: self.plan.fingerprint.clone(),
            account: None,
            at: None,
        };
        self.close_prompt(
            node,
            format!(
                "gate {} was rejected: {why}",
                self.plan.steps[node].decl.name
            ),
        );
        if let Err(e) = self.journal_decision(ev) {
            return GateState::Rejected(format!("{why} (and it could not be journaled: {e})"));
        }
        GateState::Rejected(why)
    }
}

impl Action for RhaiAction {
    fn run(
        &self,
        node: usize,
        attempt: u32,
        cancel: &CancelToken,
        done: &FinishedView,
    ) -> Result<Value, String> {
        let decl = &self.plan.steps[node].decl;
        if let Some(part) = decl.rollout.as_deref() {
            if matches!(part, crate::dsl::declaration::RolloutPart::Barrier { .. }) {
                let verdict = crate::rollout::barrier(part, |name| {
                    self.plan
                        .index
                        .get(name)
                        .and_then(|&i| done.result(i))
                        .is_some_and(|r| r.state == crate::scheduler::ResultState::Failed)
                });
                let log = self.step_log(node);
                match &verdict {
                    // A failure within the budget is a warning: the recap lists it.
                    Ok(v)
                        if v["failed_in_batch"]
                            .as_array()
                            .is_some_and(|a| !a.is_empty()) =>
                    {
                        log.line("warn", &crate::rollout::summary(v))
                    }
                    Ok(v) => log.line("log", &crate::rollout::summary(v)),
                    Err(e) => log.line("error", e),
                }
                return verdict;
            }
        }
        match &decl.run {
            Some(c) => self.call(node, attempt, c, cancel, done),
            None => Ok(Value::Null),
        }
    }

    fn may_retry(&self, node: usize) -> bool {
        !self
            .final_failures
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&node)
    }

    // In a rehearsal the `rehearse` closure plays the operator's part, once per process,
    // before the gate is asked. The scheduler runs it like a step's attempt: journaled
    // first, on its own thread, cancelled by Ctrl-C and bounded by the gate's `timeout`.
    fn rehearses(&self, node: usize) -> bool {
        self.plan.steps[node].decl.rehearse.is_some()
            && self.estate.as_ref().is_some_and(|e| e.is_rehearsal())
    }

    fn rehearse(
        &self,
        node: usize,
        attempt: u32,
        cancel: &CancelToken,
        done: &FinishedView,
    ) -> Result<(), String> {
        match &self.plan.steps[node].decl.rehearse {
            Some(r) => self.call(node, attempt, r, cancel, done).map(drop),
            None => Ok(()),
        }
    }

    // A crash before the record is on disk leaves no trace of the attempt, so resume runs
    // the step as if for the first time: harmless for an idempotent step. A step with a
    // probe keeps the durable start, so that resume asks its probe instead of running it.
    fn must_record_start(&self, node: usize) -> bool {
        let decl = &self.plan.steps[node].decl;
        !(decl.idempotent && decl.check.is_none())
    }

    fn keep_waiting(&self) -> bool {
        self.gate_mode == GateMode::Prompt && self.prompter.as_ref().is_some_and(|p| p.busy())
    }

    fn gate(&self, node: usize, _first: bool) -> GateState {
        let decl = &self.plan.steps[node].decl;
        debug_assert_eq!(decl.kind, StepKind::Gate);
        let need = decl.approvals.max(1) as usize;
        if let (true, Some(d)) = (_first, &self.display) {
            d.gate_waits(&decl.name);
        }
        if self.gate_mode == GateMode::ApproveAll
            && self
                .yes_given
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(node)
        {
            if let Err(e) = self.approve_with_yes(node) {
                return GateState::Rejected(format!("could not journal the approval: {e}"));
            }
        }
        if let (GateMode::Prompt, true, Some(p)) = (self.gate_mode, _first, &self.prompter) {
            p.ask(self.ask(node));
        }
        let drained = match self.run.pending_decisions() {
            Ok(d) => d,
            Err(_) => return GateState::Waiting,
        };
        let mut decided_by = None;
        for p in drained.items {
            let item = &p.item;
            let Some(&g) = self.plan.index.get(&item.gate) else {
                let _ = p.remove();
                continue;
            };
            if g != node {
                continue; // another gate's: it is decided when that gate is polled
            }
            if item.decision == Decision::Approve {
                // `waymark approve` refuses both; a hand-made or duplicate item still must
                // not count.
                if decl.separate_approver && item.account == self.starter {
                    let _ = p.remove();
                    self.notice(&format!(
                        "gate {}: {} started this run and cannot approve it (separate_approver); approval ignored",
                        decl.name, item.account
                    ));
                    continue;
                }
                if self.has_approved(node, &item.account) {
                    // Delivered again after a crash between journaling and removal.
                    let _ = p.remove();
                    continue;
                }
            }
            if self.journal_decision(item.to_event()).is_err() {
                return GateState::Waiting;
            }
            let _ = p.remove();
            match item.decision {
                Decision::Reject => {
                    let note = item
                        .note
                        .clone()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default();
                    let why = format!("rejected by {}{note}", who(item));
                    self.close_prompt(
                        node,
                        format!(
                            "gate {} was rejected by {} on {}{note}",
                            decl.name,
                            who(item),
                            item.host
                        ),
                    );
                    return GateState::Rejected(why);
                }
                Decision::Approve => {
                    self.preload_approver(node, item.account.clone());
                    decided_by = Some(format!("{} on {}", who(item), item.host));
                }
            }
        }
        let have = self
            .approvers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&node)
            .map_or(0, BTreeSet::len);
        if have >= need {
            let by = decided_by.map(|b| format!(" by {b}")).unwrap_or_default();
            self.close_prompt(node, format!("gate {} was approved{by}", decl.name));
            return GateState::Approved;
        }
        // A gate's `timeout` counts from when this process began waiting on it.
        let since = *self
            .waiting_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(node)
            .or_insert_with(std::time::Instant::now);
        match decl.timeout {
            Some(t) if since.elapsed() >= t => self.reject_by_waymark(
                node,
                format!(
                    "no approval within {} ({have} of {need} approvals)",
                    crate::duration::format_duration(t)
                ),
            ),
            _ => GateState::Waiting,
        }
    }
}
