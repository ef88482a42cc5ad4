//! `run`, `status`, `runs`, `log`, `approve` and `reject`.

use super::load::load_and_plan;
use super::RunbookArgs;
use crate::cancel::{CancelReason, CancelToken};
use crate::dsl::StepKind;
use crate::executor::{GateMode, RhaiAction};
use crate::exit::{CliError, Exit};
use crate::journal::{
    self, current_host, current_user, Event, JournalWriter, PlannedStep, RunLock,
};
use crate::notify::{self, Delivery, GateInfo, Hooks, Kind, Notifier, RunInfo};
use crate::plan::Plan;
use crate::redact::Redactor;
use crate::resume::Resumed;
use crate::run_state::{list_runs, RunState};
use crate::scheduler::{self, Node, NodeKind, Options, Outcome, Prior};
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Options of `waymark run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Where runs live.
    pub state_dir: PathBuf,
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
pub fn nodes_of(plan: &Plan) -> Vec<Node> {
    plan.steps
        .iter()
        .map(|s| Node {
            name: s.decl.name.clone(),
            kind: match s.decl.kind {
                StepKind::Step => NodeKind::Step,
                StepKind::Gate => NodeKind::Gate,
            },
            deps: s.deps.clone(),
            dependents: s.dependents.clone(),
            when: s.decl.when,
            retries: s.decl.retries,
            retry_delay: s.decl.retry_delay,
            timeout: s.decl.timeout,
            group: s.decl.group.clone(),
        })
        .collect()
}

/// How the journal records a step of the plan (gates with what an approver must see).
pub fn planned_step(plan: &Plan, s: &crate::plan::PlanStep) -> PlannedStep {
    PlannedStep {
        name: s.decl.name.clone(),
        kind: s.decl.kind.as_str().into(),
        fingerprint: s.fingerprint.clone(),
        after: s
            .deps
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

fn io_err(what: &str, e: impl std::fmt::Display) -> CliError {
    CliError::bad_input(format!("error: {what}: {e}"))
}

/// `waymark run`.
pub fn run(args: &RunbookArgs, o: &RunOptions) -> Result<Exit, CliError> {
    let (runbook, rb, plan) = load_and_plan(args)?;
    let estate = crate::estate::open(args.inventory.as_deref(), &o.state_dir)
        .map_err(|e| CliError::bad_input(format!("error: {e}")))?;
    if o.dry_run {
        return dry_run(&rb, &plan, estate);
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
    std::fs::create_dir_all(&o.state_dir)
        .map_err(|e| io_err(&format!("cannot create {}", o.state_dir.display()), e))?;
    let (run_id, run_dir) = journal::create_run_dir(&o.state_dir)
        .map_err(|e| io_err("cannot create the run directory", e))?;
    let _lock =
        RunLock::acquire(&run_dir).map_err(|e| CliError::bad_input(format!("error: {e}")))?;
    let first = Event::RunStarted {
        run_id: run_id.clone(),
        runbook: rb.decl.name.clone(),
        source: runbook.journal_source(),
        params: rb.params.clone(),
        inventory: args.inventory.as_ref().map(|p| p.display().to_string()),
        user: current_user(),
        host: current_host(),
        plan_fingerprint: plan.fingerprint.clone(),
        steps: plan.steps.iter().map(|s| planned_step(&plan, s)).collect(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    let (writer, _) = JournalWriter::create(&run_dir, first)
        .map_err(|e| CliError::bad_input(format!("error: {e}")))?;
    writer
        .append_blocking(vec![super::changes::sources_event(&rb, Vec::new())])
        .map_err(|e| CliError::bad_input(format!("error: {e}")))?;
    errln!(
        "run {run_id}: {} ({} steps)",
        rb.decl.name,
        plan.steps.len()
    );
    let prior = vec![Prior::Pending; plan.steps.len()];
    execute(
        &rb,
        plan,
        &run_id,
        &run_dir,
        &o.state_dir,
        writer,
        prior,
        o,
        estate,
        Resumed::default(),
    )
}

/// The run's notification hooks: each key from the environment, else the inventory's
/// `[notify]`, else the runbook's `notify`.
pub fn notify_hooks(
    rb: &crate::dsl::Runbook,
    inventory: &crate::estate::inventory::Inventory,
) -> Result<Hooks, CliError> {
    let env = Hooks::from_env().map_err(|e| CliError::bad_input(format!("error: {e}")))?;
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
pub fn execute(
    rb: &crate::dsl::Runbook,
    plan: Arc<Plan>,
    run_id: &str,
    run_dir: &Path,
    state_dir: &Path,
    writer: JournalWriter,
    prior: Vec<Prior>,
    o: &RunOptions,
    estate: Arc<dyn crate::estate::Estate>,
    resumed: Resumed,
) -> Result<Exit, CliError> {
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
        state_dir_flag: super::hint::state_dir_flag(state_dir),
    };
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let gate_mode = if o.yes {
        GateMode::ApproveAll
    } else if terminal && !o.non_interactive {
        GateMode::Prompt
    } else {
        GateMode::Inbox
    };
    let mut action = RhaiAction::new(
        plan.clone(),
        rb.engine.clone(),
        &rb.params,
        rb.inventory.clone(),
        run_id.to_string(),
        run_dir.to_path_buf(),
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
    for i in resumed.probe {
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
                    .map_err(|e| CliError::bad_input(format!("error: {e}")))?;
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
    let nodes = Arc::new(nodes_of(&plan));
    let display = Arc::new(
        crate::display::Display::new(
            nodes.clone(),
            std::io::stderr().is_terminal(),
            prior
                .iter()
                .filter(|p| !matches!(p, Prior::Pending))
                .count(),
        )
        .pinned(),
    );
    display.start_ticker(std::time::Duration::from_secs(10));
    action.display = Some(display.clone());
    let prompter = (gate_mode == GateMode::Prompt).then(|| {
        let (dir, fp) = (run_dir.to_path_buf(), plan.fingerprint.clone());
        crate::prompt::GatePrompter::new(
            display.clone(),
            Box::new(move |answer| {
                if let crate::prompt::Answer::Decide {
                    gate,
                    decision,
                    note,
                } = answer
                {
                    let item = crate::inbox::InboxItem::new(decision, gate, None, note, fp.clone());
                    if let Err(e) = crate::inbox::submit(&dir, &item) {
                        errln!("could not record the decision: {e}");
                    }
                }
            }),
        )
    });
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
        let int = interrupt.clone();
        tokio::spawn(async move {
            let ctrl_c = tokio::signal::ctrl_c();
            #[cfg(unix)]
            {
                let mut term =
                    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    {
                        Ok(t) => t,
                        Err(_) => return,
                    };
                tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
            }
            #[cfg(not(unix))]
            let _ = ctrl_c.await;
            errln!("\ninterrupted: stopping running steps and killing their processes…");
            int.cancel(CancelReason::Interrupted);
        });
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
    let outcome = outcome.map_err(|e| CliError::bad_input(format!("error: {e}")))?;
    if let Some(n) = &notifier {
        let (kind, gates, failed) = match &outcome {
            Outcome::Succeeded => (Kind::RunSucceeded, vec![], vec![]),
            Outcome::Failed(steps) => (Kind::RunFailed, vec![], steps.clone()),
            Outcome::Paused(gates) => (
                Kind::RunPaused,
                gates.iter().map(|g| gate_info(&plan, g)).collect(),
                vec![],
            ),
            Outcome::Cancelled => (Kind::RunCancelled, vec![], vec![]),
        };
        n.send(notify::payload(&run_info, kind, &gates, &failed));
        n.finish(std::time::Duration::from_secs(20));
    }
    let undoable: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.decl.undo.is_some() && s.decl.kind == StepKind::Step)
        .map(|s| s.decl.name.clone())
        .collect();
    super::drop_later(plan);
    let exit = match &outcome {
        Outcome::Succeeded => {
            errln!("run {run_id} succeeded");
            Exit::Ok
        }
        Outcome::Failed(steps) => {
            errln!("run {run_id} failed: {}", steps.join(", "));
            Exit::Failed
        }
        Outcome::Paused(gates) => {
            errln!(
                "run {run_id} paused: waiting for approval of {}",
                gates.join(", ")
            );
            Exit::Paused
        }
        Outcome::Cancelled => {
            errln!("run {run_id} cancelled; steps that were running are left as unknown");
            Exit::Cancelled
        }
    };
    err!(
        "{}",
        super::recap::recap(run_dir, state_dir, &display.warnings(), display.elapsed())
    );
    if exit == Exit::Failed {
        if let Some(line) = rollback_hint(run_id, run_dir, state_dir, &undoable) {
            errln!("{line}");
        }
    }
    Ok(exit)
}

/// After a failure that came after changes (a step with an `undo` succeeded), giving up
/// is a real choice next to fixing and resuming: the line that offers `rollback`.
fn rollback_hint(
    run_id: &str,
    run_dir: &Path,
    state_dir: &Path,
    undoable: &[String],
) -> Option<String> {
    if undoable.is_empty() {
        return None;
    }
    let (state, _) = RunState::load(run_dir).ok()?;
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
        "     or give up and undo what it changed ({} step{} with an undo): waymark rollback {run_id} --yes{}",
        changed.len(),
        if changed.len() == 1 { "" } else { "s" },
        super::hint::state_dir_flag(state_dir)
    ))
}

fn dry_run(
    rb: &crate::dsl::Runbook,
    plan: &Plan,
    estate: Arc<dyn crate::estate::Estate>,
) -> Result<Exit, CliError> {
    outln!(
        "dry run of {} against `{}` ({} driver{}): nothing is executed, nothing waits; values only a run would give are shown as <…>",
        plan.name,
        estate.inventory().name,
        estate.driver(),
        if estate.is_rehearsal() {
            ", a rehearsal estate"
        } else {
            ""
        }
    );
    if estate.driver() == "windows" {
        if rb.params.get("expected_build").map(String::as_str) == Some("UNVERIFIED") {
            outln!("warning: expected_build is still UNVERIFIED: a real run refuses it. Read the Altiris.NS file version on a server known to be at 7.5 SP1 HF5 and pass --param expected_build=VERSION");
        }
        outln!("each server's scripts run through:");
        for server in &estate.inventory().servers {
            outln!("  {}", crate::estate::transport::describe(server));
        }
    }
    let mut n = 0;
    for (w, members) in plan.waves.iter().enumerate() {
        outln!("\nwave {}:", w + 1);
        for &i in members {
            n += 1;
            let d = &plan.steps[i].decl;
            if d.kind == StepKind::Gate {
                outln!(
                    "  {n}. gate {} — a person approves: {}",
                    d.name,
                    d.title.as_deref().unwrap_or("")
                );
                for line in d.instructions.as_deref().unwrap_or("").lines() {
                    outln!("       > {line}");
                }
                continue;
            }
            outln!(
                "  {n}. {}{}",
                d.name,
                d.title
                    .as_deref()
                    .map(|t| format!(" — {t}"))
                    .unwrap_or_default()
            );
            let (calls, stopped) = crate::executor::dry_run_step(rb, plan, i, Some(estate.clone()));
            for (what, lines) in calls {
                if lines.is_empty() {
                    outln!("       {what}");
                    continue;
                }
                outln!("       {what}:");
                for l in lines.iter().flat_map(|l| l.lines()) {
                    outln!("         {l}");
                }
            }
            match stopped {
                Some(crate::executor::DryStop::DependsOn(why)) => {
                    outln!("       (the rest of this step {why})")
                }
                Some(crate::executor::DryStop::Failed(e)) => outln!(
                    "       (the description stops here: {})",
                    e.lines().next().unwrap_or("")
                ),
                None => {}
            }
        }
    }
    Ok(Exit::Ok)
}

/// `waymark lab show`.
pub fn lab_show(inventory: Option<&Path>, state_dir: &Path, json: bool) -> Result<Exit, CliError> {
    let doc = crate::estate::lab::show(inventory, state_dir)
        .map_err(|e| CliError::bad_input(format!("error: {e}")))?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        out!("{}", crate::estate::lab::show_text(&doc));
    }
    Ok(Exit::Ok)
}

/// `waymark lab reset`.
pub fn lab_reset(inventory: Option<&Path>, state_dir: &Path) -> Result<Exit, CliError> {
    let removed = crate::estate::lab::reset(inventory, state_dir)
        .map_err(|e| CliError::bad_input(format!("error: {e}")))?;
    outln!(
        "{}",
        if removed {
            "lab estate reset to the inventory's facts"
        } else {
            "the lab estate was already fresh"
        }
    );
    Ok(Exit::Ok)
}

pub(super) fn resolve_run(
    state_dir: &Path,
    run: Option<&str>,
) -> Result<(String, PathBuf), CliError> {
    match run {
        Some(id) => {
            let dir = journal::run_dir(state_dir, id).map_err(CliError::bad_input)?;
            if !dir.join(journal::JOURNAL_FILE).exists() {
                return Err(CliError::bad_input(format!(
                    "error: no run `{id}` in {} (see `{}`)",
                    state_dir.display(),
                    super::hint::runs(state_dir)
                )));
            }
            Ok((id.to_string(), dir))
        }
        None => {
            let listing = list_runs(state_dir);
            // A damaged latest run is skipped by the listing: say so rather than show an
            // older run as if it were the latest.
            let latest = listing.runs.last().map(|(id, _)| id.as_str());
            for w in listing.warnings_besides(latest) {
                errln!("warning: {w}");
            }
            let (id, _) = listing.runs.last().ok_or_else(|| {
                CliError::bad_input(format!(
                    "error: no runs in {}",
                    state_dir.join(journal::RUNS_DIR).display()
                ))
            })?;
            let dir = journal::run_dir(state_dir, id).map_err(CliError::bad_input)?;
            Ok((id.clone(), dir))
        }
    }
}

/// `waymark runs`.
pub fn runs(state_dir: &Path, json: bool) -> Result<Exit, CliError> {
    let listing = list_runs(state_dir);
    for w in &listing.warnings {
        errln!("warning: {w}");
    }
    if json {
        let v: Vec<_> = listing
            .runs
            .iter()
            .map(|(id, s)| {
                serde_json::json!({ "run_id": id, "runbook": s.runbook, "status": s.status.as_str(), "started_at": s.started_at, "finished_at": s.finished_at })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    if listing.runs.is_empty() {
        outln!("no runs in {}", state_dir.display());
    }
    for (id, s) in &listing.runs {
        outln!(
            "{id}  {:<11} {}  {}",
            s.status.as_str(),
            s.started_at.as_deref().unwrap_or(""),
            s.runbook
        );
    }
    Ok(Exit::Ok)
}

/// `waymark log RUN [STEP]`.
pub fn log(
    state_dir: &Path,
    run: &str,
    step: Option<&str>,
    follow: bool,
) -> Result<Exit, CliError> {
    let (_, dir) = resolve_run(state_dir, Some(run))?;
    let (state, _) =
        RunState::load(&dir).map_err(|e| CliError::bad_input(format!("error: {e}")))?;
    let names: Vec<String> = match step {
        Some(s) => {
            if state.step(s).is_none() {
                let all = state.to_status_json();
                let names: Vec<&str> = all["steps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x["name"].as_str())
                    .collect();
                let hint = crate::diagnostic::did_you_mean(s, names.iter().copied())
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                return Err(CliError::bad_input(format!(
                    "error: run {run} has no step `{s}`{hint}"
                )));
            }
            vec![s.to_string()]
        }
        None => state.to_status_json()["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["name"].as_str().map(String::from))
            .collect(),
    };
    if follow {
        return follow_logs(&dir, run, names, step.is_some());
    }
    for name in names {
        let path = dir.join("logs").join(crate::step_log::log_file_name(&name));
        if let Ok(text) = std::fs::read_to_string(&path) {
            if step.is_none() {
                outln!("== {name}");
            }
            out!("{text}");
        } else if step.is_some() {
            outln!("(no log lines for {name})");
        }
        if let Some(s) = state.step(&name) {
            for u in &s.undo_attempts {
                match &u.error {
                    Some(e) => outln!("undo failed at {}: {e}", u.at),
                    None => outln!("undo succeeded at {}", u.at),
                }
            }
            if let Some(e) = s.error.as_ref().filter(|_| s.undo_attempts.is_empty()) {
                outln!("error: {e}");
            }
        }
    }
    Ok(Exit::Ok)
}

/// `waymark log --follow`: print new lines of `names`' logs (prefixed with the step's
/// name when there are several) until the run's process lets go of it.
fn follow_logs(dir: &Path, run: &str, names: Vec<String>, one: bool) -> Result<Exit, CliError> {
    use std::io::Write as _;
    let logs = dir.join("logs");
    let mut tails: Vec<(String, crate::follow::LogTail)> = names
        .into_iter()
        .map(|n| {
            let path = logs.join(crate::step_log::log_file_name(&n));
            (n, crate::follow::LogTail::new(path))
        })
        .collect();
    if !journal::is_held(dir) {
        errln!("run {run} is not running: printing its logs as they are");
    }
    let stdout = std::io::stdout();
    loop {
        // Checked before reading, so the last read after the run stopped sees everything.
        let live = journal::is_held(dir);
        let mut out = stdout.lock();
        for (name, tail) in &mut tails {
            let lines = if live { tail.poll() } else { tail.rest() };
            for line in lines {
                let written = if one {
                    writeln!(out, "{line}")
                } else {
                    writeln!(out, "[{name}] {line}")
                };
                if written.is_err() {
                    // The reader went away (`| head`): nothing left to do.
                    return Ok(Exit::Ok);
                }
            }
        }
        let _ = out.flush();
        drop(out);
        if !live {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (state, _) = RunState::load(dir).map_err(|e| CliError::bad_input(format!("error: {e}")))?;
    if one {
        if let Some(e) = tails
            .first()
            .and_then(|(n, _)| state.step(n))
            .and_then(|s| s.error.as_ref())
        {
            outln!("error: {e}");
        }
    }
    errln!("run {run} {}", state.status);
    Ok(Exit::Ok)
}

/// `waymark report RUN [--output FILE]`.
pub fn report(state_dir: &Path, run: &str, output: Option<&Path>) -> Result<Exit, CliError> {
    let (id, dir) = resolve_run(state_dir, Some(run))?;
    let report = crate::report::build(&dir, state_dir)
        .map_err(|e| CliError::bad_input(format!("error: {e}")))?;
    let page = crate::report::render(&report);
    if output == Some(Path::new("-")) {
        use std::io::Write as _;
        let _ = std::io::stdout().lock().write_all(page.as_bytes());
        return Ok(Exit::Ok);
    }
    let path = output
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("report-{id}.html")));
    std::fs::write(&path, page)
        .map_err(|e| io_err(&format!("cannot write {}", path.display()), e))?;
    errln!(
        "report of run {id} ({}) written to {}",
        report.state.status,
        path.display()
    );
    Ok(Exit::Ok)
}
