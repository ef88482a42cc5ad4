//! The bridge between the scheduler and Rhai: runs a step's closure with its `ctx`, turns
//! its output into a storable value, and decides gates (`--yes`, the approval inbox).
//!
//! `mod.rs` is the [`Action`] the scheduler drives; `ctx.rs` builds a step's `ctx` (lazy
//! outputs, the shared inventory); `output.rs` turns outputs into storable JSON;
//! `gates.rs` decides gates; `dry_run.rs` describes steps without acting.

mod ctx;
mod dry_run;
mod gates;
mod output;

use ctx::params_keys;
pub(crate) use ctx::{build_ctx, JournalOutputs, Known, OutputCache};
pub(crate) use dry_run::{dry_run_step, DryStop};
pub(crate) use output::to_json;

use crate::cancel::CancelToken;
use crate::dsl::step_env::{with_env, DryRun, StepEnv};
use crate::dsl::Callable;
use crate::estate::Estate;
use crate::journal::{current_user, Event, JournalWriter};
use crate::plan::Plan;
use crate::redact::Redactor;
use crate::scheduler::{Action, FinishedView, GateState};
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
        // A step whose start was durable before it ran has every record it must follow
        // written: its `process_started` may be written by this thread at once. One
        // started as soon as its start was handed over goes through the writer thread,
        // behind that start (journal/writer.rs, `append_now`).
        let now = self.must_record_start(node);
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
            let written = match now {
                true => journal.append_now(ev).map(drop),
                false => journal.append_written(vec![ev]).map(drop),
            };
            written.map_err(|e| e.to_string())
        })
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

    fn gate(&self, node: usize, first: bool) -> GateState {
        self.decide_gate(node, first)
    }
}
