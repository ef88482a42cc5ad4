//! `run`: load, plan, journal the start, then drive the scheduler with the live display,
//! the gate prompt and the notifier; `execute` is shared with `resume`.

use super::load::load_and_plan;
use super::RunbookArgs;
use crate::cancel::{CancelReason, CancelToken};
use crate::dsl::StepKind;
use crate::executor::{GateMode, RhaiAction};
use crate::exit::{CliError, Exit};
use crate::journal::{current_host, current_user, Event, JournalWriter, PlannedStep};
use crate::notify::{self, Delivery, GateInfo, Hooks, Kind, Notifier, RunInfo};
use crate::plan::Plan;
use crate::redact::Redactor;
use crate::resume::Resumed;
use crate::run_state::RunState;
use crate::scheduler::{self, Node, NodeKind, Options, Outcome, Prior};
use crate::state::{Run, Store};
use std::io::IsTerminal as _;
use std::sync::Arc;

/// Options of `waymark run`.
#[derive(Debug, Clone)]
pub(super) struct RunOptions {
    /// Where runs live.
    pub state: Store,
    /// Most steps at once.
    pub concurrency: usize,
    /// Continue independent branches after a failure.
    pub keep_going: bool,
    /// Approve every gate as the current user.
    pub yes: bool,
    /// Print what would run; run nothing.
    pub dry_run: bool,
    /// Never prompt (also when stdin is not a terminal).
    pub non_interactive: bool,
}

/// The scheduler's view of a plan.
pub(super) fn nodes_of(plan: &Plan) -> Vec<Node> {
    plan.steps
        .iter()
        .enumerate()
        .map(|(i, s)| Node {
            name: s.decl.name.clone(),
            kind: match s.decl.kind {
                StepKind::Step => NodeKind::Step,
                StepKind::Gate => NodeKind::Gate,
            },
            deps: plan.deps[i].clone(),
            dependents: plan.dependents[i].clone(),
            when: s.decl.when,
            retries: s.decl.retries,
            retry_delay: s.decl.retry_delay,
            timeout: s.decl.timeout,
            group: s.decl.group.clone(),
            budgeted: matches!(
                s.decl.rollout.as_deref(),
                Some(crate::dsl::declaration::RolloutPart::Item { .. })
            ),
        })
        .collect()
}

/// The scheduler's nodes: built here, or by a resume's journal thread once it has the
/// plan, while the caller compares the plan with the journal (copying 10,000 steps'
/// names and edges was two milliseconds of a resume's critical path).
pub(super) enum NodesSoon {
    Ready(Vec<Node>),
    /// The thread building them, which gives `None` if it could not (they are then
    /// built here, from the plan).
    Building(std::thread::JoinHandle<Option<Vec<Node>>>, Arc<Plan>),
}

impl NodesSoon {
    fn get(self) -> Vec<Node> {
        match self {
            NodesSoon::Ready(n) => n,
            // nodes_of does not panic; were it to, building again here reports it.
            NodesSoon::Building(h, plan) => {
                h.join().ok().flatten().unwrap_or_else(|| nodes_of(&plan))
            }
        }
    }
}

/// How the journal records a step of the plan (gates with what an approver must see).
pub(super) fn planned_step(plan: &Plan, i: usize) -> PlannedStep {
    let s = &plan.steps[i];
    PlannedStep {
        name: s.decl.name.clone(),
        kind: s.decl.kind.as_str().into(),
        fingerprint: plan.fingerprints[i].clone(),
        after: plan.deps[i]
            .iter()
            .map(|&d| plan.steps[d].decl.name.clone())
            .collect(),
        gate: (s.decl.kind == StepKind::Gate).then(|| crate::journal::GateInfo {
            title: s.decl.title.clone(),
            instructions: s.decl.instructions.clone().unwrap_or_default(),
            approvals: s.decl.approvals.max(1),
            separate_approver: s.decl.separate_approver,
        }),
    }
}

pub(super) fn io_err(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::bad_input(format!("{what}: {e}"))
}

/// `waymark run`.
pub(super) fn run(args: &RunbookArgs, o: &RunOptions) -> Result<Exit, CliError> {
    let (runbook, rb, plan) = load_and_plan(args)?;
    let estate = crate::estate::open(args.inventory.as_deref(), &o.state)
        .map_err(|e| CliError::bad_input(e.to_string()))?;
    if o.dry_run {
        return super::dry_run::dry_run(&rb, &plan, estate);
    }
    // A mistake in the hooks is reported before the run exists, not after it started.
    notify_hooks(&rb, estate.inventory())?;
    if estate.is_rehearsal() {
        // Only estate operations are simulated: a runbook's own commands are real.
        errln!(
            "REHEARSAL: estate operations act on the lab estate `{}` ({}); exec, sh and ps in steps run for real on this machine",
            estate.inventory().name,
            if args.inventory.is_some() {
                "from --inventory"
            } else {
                "the built-in demo estate"
            }
        );
    }
    let plan = Arc::new(plan);
    let run = o
        .state
        .create_run()
        .map_err(|e| CliError::bad_input(e.to_string()))?;
    let run_id = run.id().to_string();
    let _owned = run.own().map_err(|e| CliError::bad_input(e.to_string()))?;
    let first = Event::RunStarted {
        run_id: run_id.clone(),
        runbook: rb.decl.name.clone(),
        source: runbook.journal_source(),
        params: rb.params.clone(),
        inventory: args.inventory.as_ref().map(|p| p.display().to_string()),
        user: current_user(),
        host: current_host(),
        plan_fingerprint: plan.fingerprint.clone(),
        steps: (0..plan.steps.len())
            .map(|i| planned_step(&plan, i))
            .collect(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let (writer, _) = run
        .create_journal(first)
        .map_err(|e| CliError::bad_input(e.to_string()))?;
    writer
        .append_blocking(vec![super::changes::sources_event(&rb, Vec::new())])
        .map_err(|e| CliError::bad_input(e.to_string()))?;
    errln!(
        "run {run_id}: {} ({} steps)",
        rb.decl.name,
        plan.steps.len()
    );
    let prior = vec![Prior::Pending; plan.steps.len()];
    let nodes = NodesSoon::Ready(nodes_of(&plan));
    execute(
        &rb,
        plan,
        nodes,
        &run,
        writer,
        prior,
        o,
        estate,
        Resumed::default(),
        None,
    )
}

/// The run's notification hooks: each key from the environment, else the inventory's
/// `[notify]`, else the runbook's `notify`.
pub(super) fn notify_hooks(
    rb: &crate::dsl::Runbook,
    inventory: &crate::estate::inventory::Inventory,
) -> Result<Hooks, CliError> {
    let env = Hooks::from_env().map_err(|e| CliError::bad_input(e.to_string()))?;
    Ok(env.or(&inventory.notify.clone().or(&rb.decl.notify)))
}

fn gate_info(plan: &Plan, gate: &str) -> GateInfo {
    let decl = plan.step(gate).map(|s| &s.decl);
    GateInfo {
        name: gate.to_string(),
        title: decl.and_then(|d| d.title.clone()),
        instructions: decl.and_then(|d| d.instructions.clone()),
    }
}

/// Watches the run's events to call a gate's approvers when it starts waiting, and to
/// call them off when it is decided before [`Delivery::gate_delay`] passes.
fn gate_caller(n: Arc<Notifier>, plan: Arc<Plan>, run: RunInfo) -> impl Fn(&Event) {
    // A gate written waiting again (an approval short of `approvals: N`) is one call.
    let called = std::sync::Mutex::new(std::collections::HashSet::<String>::new());
    let first_call = move |gate: &str| {
        called
            .lock()
            .map(|mut c| c.insert(gate.to_string()))
            .unwrap_or(false)
    };
    move |ev: &Event| match ev {
        Event::GateWaiting { gate } if first_call(gate) => {
            let info = [gate_info(&plan, gate)];
            n.gate_waiting(gate, notify::payload(&run, Kind::GateWaiting, &info, &[]));
        }
        // The executor journals approvals itself; the scheduler then finishes the gate
        // like a step, which is what the observer sees. Deciding an uncalled gate or a
        // step is a no-op for the notifier.
        Event::GateApproved { gate: name, .. }
        | Event::GateRejected { gate: name, .. }
        | Event::StepSucceeded { step: name, .. }
        | Event::StepFailed { step: name, .. }
        | Event::StepSkipped { step: name, .. }
            if plan
                .step(name)
                .is_some_and(|s| s.decl.kind == StepKind::Gate) =>
        {
            n.gate_decided(name)
        }
        _ => {}
    }
}

/// Run `plan` from `prior` to its end with the live display; the exit code of SPEC §3.
#[allow(clippy::too_many_arguments)]
pub(super) fn execute(
    rb: &crate::dsl::Runbook,
    plan: Arc<Plan>,
    nodes: NodesSoon,
    run: &Run,
    writer: JournalWriter,
    prior: Vec<Prior>,
    o: &RunOptions,
    estate: Arc<dyn crate::estate::Estate>,
    resumed: Resumed,
    base: Option<RunState>,
) -> Result<Exit, CliError> {
    let (run_id, store) = (run.id(), run.store());
    let mut prior = prior;
    // One redactor for the run: the closures register secrets with it, and the journal
    // scrubs every record with it before the record becomes durable.
    let redactor = Redactor::new();
    let mut writer = writer;
    writer.set_redactor(redactor.clone());
    let notifier = Notifier::start(
        notify_hooks(rb, estate.inventory())?,
        redactor.clone(),
        Delivery::default(),
    )
    .map(Arc::new);
    let run_info = RunInfo {
        run_id: run_id.to_string(),
        runbook: rb.decl.name.clone(),
        state_dir_flag: store.flag(),
    };
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let gate_mode = gate_mode(o, terminal);
    let mut action = RhaiAction::new(
        plan.clone(),
        rb.engine.clone(),
        &rb.params,
        rb.inventory.clone(),
        run_id.to_string(),
        run.clone(),
        redactor,
        writer.clone(),
        gate_mode,
    );
    action.estate = Some(estate);
    action.declare_params(rb.decl.params.keys().cloned());
    if let Some(s) = resumed.starter {
        action.starter = s;
    }
    for (gate, since) in resumed.waiting_since {
        action.preload_waiting_since(gate, since);
    }
    for (gate, by) in resumed.approvals {
        action.preload_approver(gate, by);
    }
    probe_in_flight(&action, &plan, &resumed.probe, &writer, &mut prior)?;
    let nodes = Arc::new(nodes.get());
    let display = Arc::new(
        crate::display::Display::new(
            nodes.clone(),
            std::io::stderr().is_terminal(),
            prior
                .iter()
                .filter(|p| !matches!(p, Prior::Pending | Prior::Rehearsed))
                .count(),
        )
        .pinned(),
    );
    display.start_ticker(std::time::Duration::from_secs(10));
    action.display = Some(display.clone());
    let prompter = (gate_mode == GateMode::Prompt)
        .then(|| gate_prompter(display.clone(), run, plan.fingerprint.clone()));
    action.prompter = prompter.clone();
    let observer_display = display.clone();
    // With --yes too: a gate needing a separate approver or several accounts still waits,
    // and one it approves at once is decided before the call is due.
    let gate_calls = notifier
        .clone()
        .map(|n| gate_caller(n, plan.clone(), run_info.clone()));
    let observer = move |ev: &Event| {
        observer_display.event(ev);
        if let Some(call) = &gate_calls {
            call(ev);
        }
    };
    let opts = Options {
        concurrency: o.concurrency.max(1),
        keep_going: o.keep_going,
        limits: rb
            .decl
            .limits
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        observer: Some(Arc::new(observer)),
        ..Options::default()
    };
    tracing::debug!("run: starting the scheduler");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| io_err("cannot start the async runtime", e))?;
    let interrupt = CancelToken::new();
    let outcome = rt.block_on(async {
        tokio::spawn(interrupt_on_signals(interrupt.clone()));
        scheduler::run(
            nodes,
            prior,
            opts,
            Arc::new(action),
            writer,
            interrupt.clone(),
        )
        .await
    });
    if let Some(p) = &prompter {
        p.close("the run stopped");
    }
    display.finish();
    tracing::debug!("run: scheduler finished");
    drop(rt);
    let outcome = outcome.map_err(|e| CliError::bad_input(e.to_string()))?;
    if let Some(n) = &notifier {
        let (kind, gates, failed) = notice(&outcome, &plan);
        n.send(notify::payload(&run_info, kind, &gates, &failed));
        n.finish(std::time::Duration::from_secs(20));
    }
    let undoable: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.decl.undo.is_some() && s.decl.kind == StepKind::Step)
        .map(|s| s.decl.name.clone())
        .collect();
    super::leave_to_exit(plan);
    let (exit, ending) = ending(run_id, &outcome);
    errln!("{ending}");
    let state = super::recap::final_state(run, base);
    err!(
        "{}",
        super::recap::recap(run, &state, &display.warnings(), display.elapsed())
    );
    if exit == Exit::Failed {
        if let Some(line) = state
            .as_ref()
            .ok()
            .and_then(|s| rollback_hint(run, s, &undoable))
        {
            errln!("{line}");
        }
    }
    super::leave_to_exit(state);
    // It holds the last reference to the scheduler's nodes (10,000 names and edges).
    super::leave_to_exit(display);
    Ok(exit)
}

/// How gates are decided: `--yes` approves, a terminal asks, otherwise the inbox waits
/// for `waymark approve` from another shell.
fn gate_mode(o: &RunOptions, terminal: bool) -> GateMode {
    if o.yes {
        GateMode::ApproveAll
    } else if terminal && !o.non_interactive {
        GateMode::Prompt
    } else {
        GateMode::Inbox
    }
}

/// Run the `check` probe of every in-flight step a resume handed over: a step it finds
/// done is journaled as verified and kept; otherwise the step runs again.
fn probe_in_flight(
    action: &RhaiAction,
    plan: &Plan,
    probe: &[usize],
    writer: &JournalWriter,
    prior: &mut [Prior],
) -> Result<(), CliError> {
    for &i in probe {
        let Some(check) = plan.steps[i].decl.check.clone() else {
            continue;
        };
        let name = &plan.steps[i].decl.name;
        let done = crate::scheduler::FinishedView::default();
        match action.call(i, 1, &check, &CancelToken::new(), &done) {
            Ok(v) if v.as_bool() == Some(true) => {
                errln!(
                    "{name}: was in flight; its check probe says it is done (recorded as verified)"
                );
                let ev = Event::StepSucceeded {
                    step: name.clone(),
                    attempt: 0,
                    output: serde_json::Value::Null,
                    verified: true,
                };
                writer
                    .append_blocking(vec![ev])
                    .map_err(|e| CliError::bad_input(e.to_string()))?;
                prior[i] = Prior::Done(serde_json::Value::Null);
            }
            Ok(_) => errln!(
                "{name}: was in flight; its check probe says it is not done: running it again"
            ),
            Err(e) => {
                errln!("{name}: was in flight; its check probe failed ({e}): running it again")
            }
        }
    }
    Ok(())
}

/// The terminal prompt for gates; its answers go through the inbox like any other
/// decision, so the run has one way in for them.
fn gate_prompter(
    display: Arc<crate::display::Display>,
    run: &Run,
    fp: String,
) -> Arc<crate::prompt::GatePrompter> {
    let run = run.clone();
    crate::prompt::GatePrompter::new(
        display,
        Box::new(move |answer| {
            if let crate::prompt::Answer::Decide {
                gate,
                decision,
                note,
            } = answer
            {
                let item = crate::inbox::InboxItem::new(decision, gate, None, note, fp.clone());
                if let Err(e) = run.submit_decision(&item) {
                    errln!("could not record the decision: {e}");
                }
            }
        }),
    )
}

/// Cancel the run on Ctrl-C or SIGTERM: running steps are stopped and their process
/// groups killed.
async fn interrupt_on_signals(interrupt: CancelToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => return,
            };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    errln!("\ninterrupted: stopping running steps and killing their processes…");
    interrupt.cancel(CancelReason::Interrupted);
}

/// What the notifier says about how the run stopped: its kind, the gates it waits on,
/// the steps that failed.
fn notice(outcome: &Outcome, plan: &Plan) -> (Kind, Vec<GateInfo>, Vec<String>) {
    match outcome {
        Outcome::Succeeded => (Kind::RunSucceeded, vec![], vec![]),
        Outcome::Failed(steps) => (Kind::RunFailed, vec![], steps.clone()),
        Outcome::Paused(gates) => (
            Kind::RunPaused,
            gates.iter().map(|g| gate_info(plan, g)).collect(),
            vec![],
        ),
        Outcome::Cancelled => (Kind::RunCancelled, vec![], vec![]),
    }
}

/// The exit code of a run that stopped with `outcome` (SPEC §3), and the line that says so.
fn ending(run_id: &str, outcome: &Outcome) -> (Exit, String) {
    match outcome {
        Outcome::Succeeded => (Exit::Ok, format!("run {run_id} succeeded")),
        Outcome::Failed(steps) => (
            Exit::Failed,
            format!("run {run_id} failed: {}", steps.join(", ")),
        ),
        Outcome::Paused(gates) => (
            Exit::Paused,
            format!(
                "run {run_id} paused: waiting for approval of {}",
                gates.join(", ")
            ),
        ),
        Outcome::Cancelled => (
            Exit::Cancelled,
            format!("run {run_id} cancelled; steps that were running are left as unknown"),
        ),
    }
}

/// After a failure that came after changes (a step with an `undo` succeeded), giving up
/// is a real choice next to fixing and resuming: the line that offers `rollback`.
fn rollback_hint(run: &Run, state: &RunState, undoable: &[String]) -> Option<String> {
    if undoable.is_empty() {
        return None;
    }
    let changed: Vec<&str> = undoable
        .iter()
        .filter(|n| {
            state
                .step(n)
                .is_some_and(|s| s.state == crate::run_state::StepState::Succeeded)
        })
        .map(String::as_str)
        .collect();
    if changed.is_empty() {
        return None;
    }
    Some(format!(
        "     or give up and undo what it changed ({} step{} with an undo): waymark rollback {} --yes{}",
        changed.len(),
        if changed.len() == 1 { "" } else { "s" },
        run.id(),
        run.store().flag()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(yes: bool, non_interactive: bool) -> RunOptions {
        RunOptions {
            state: Store::dir(std::path::Path::new("state")),
            concurrency: 4,
            keep_going: false,
            yes,
            dry_run: false,
            non_interactive,
        }
    }

    #[test]
    fn gates_are_asked_only_in_an_interactive_terminal_and_never_with_yes() {
        assert_eq!(gate_mode(&options(true, false), true), GateMode::ApproveAll);
        assert_eq!(gate_mode(&options(false, false), true), GateMode::Prompt);
        assert_eq!(gate_mode(&options(false, true), true), GateMode::Inbox);
        assert_eq!(gate_mode(&options(false, false), false), GateMode::Inbox);
    }

    #[test]
    fn each_outcome_has_its_exit_code_and_line() {
        let cases = [
            (Outcome::Succeeded, Exit::Ok, "run r succeeded"),
            (
                Outcome::Failed(vec!["a".into(), "b".into()]),
                Exit::Failed,
                "run r failed: a, b",
            ),
            (
                Outcome::Paused(vec!["g".into()]),
                Exit::Paused,
                "run r paused: waiting for approval of g",
            ),
            (
                Outcome::Cancelled,
                Exit::Cancelled,
                "run r cancelled; steps that were running are left as unknown",
            ),
        ];
        for (outcome, exit, line) in cases {
            assert_eq!(ending("r", &outcome), (exit, line.to_string()));
        }
    }
}
