//! `resume`: continue a run from its journal. What `rollback` shares with it — reopening
//! a run, settling orphaned processes — lives here too (`rollback_cmds.rs` uses it).

use super::run_cmds::{execute, RunOptions};
use crate::dsl::{LoadRequest, RunbookRef, StepKind};
use crate::exit::{CliError, Exit};
use crate::journal::{self, current_host, current_user, Event, JournalWriter};
use crate::plan::Plan;
use crate::resume::{Decision, InFlight};
pub(super) use crate::resume::{OrphanChoice, ResumeOptions};
use crate::run_state::{list_runs, RunState, RunStatus};
use crate::state::{Ownership, Run, Store};
use std::path::Path;
use std::sync::Arc;

// Before anything is decided about an in-flight step, its processes that outlived the
// crash must be gone: otherwise a step re-run while its first attempt still acts would
// do its effect twice, and a probe could look before the effect happened.
// `again` is the command to repeat with a flag (`resume RUN`, `rollback RUN --yes`).
// Groups another host started cannot be looked for from here: the operator checks them
// there and says so (`--orphans-checked`), or resumes from that host.
pub(super) fn settle_orphans(
    re: &Reopened,
    choice: Option<OrphanChoice>,
    checked: bool,
    store: &Store,
    again: &str,
) -> Result<(), CliError> {
    let elsewhere = crate::orphans::elsewhere(&re.state);
    if !elsewhere.is_empty() {
        let sd = store.flag();
        let lines = crate::orphans::describe_elsewhere(
            &elsewhere,
            &format!("waymark {again}{sd}"),
            &format!("waymark status {}{sd}", re.run_id),
        );
        if !checked {
            return Err(CliError::notice(
                Exit::Paused,
                format!(
                    "run {}: the crashed run's processes may still be running on another host; decide before going on:\n  {}",
                    re.run_id,
                    lines.join("\n  ")
                ),
            ));
        }
        errln!(
            "going on: the process groups started on {} were checked there (--orphans-checked)",
            elsewhere
                .iter()
                .map(|e| e.host.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let orphans = crate::orphans::find(&re.state);
    if orphans.is_empty() {
        return Ok(());
    }
    for line in crate::orphans::describe(&orphans) {
        errln!("{line}");
    }
    use std::io::IsTerminal as _;
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let choice = match choice {
        Some(c) => c,
        None if terminal => {
            let picked = dialoguer::Select::new()
                .with_prompt("the run crashed while these were running; before going on")
                .items([
                    "kill them (SIGTERM, then SIGKILL)",
                    "wait for them to end",
                    "stop here",
                ])
                .default(1)
                .interact_opt();
            match picked {
                Ok(Some(0)) => OrphanChoice::Kill,
                Ok(Some(1)) => OrphanChoice::Wait,
                _ => return Err(orphans_pending(re, &orphans, store, again)),
            }
        }
        None => return Err(orphans_pending(re, &orphans, store, again)),
    };
    let left = match choice {
        OrphanChoice::Kill => {
            errln!("killing {} process group(s)…", orphans.len());
            crate::orphans::kill(&orphans, crate::process::KILL_GRACE)
        }
        OrphanChoice::Wait => {
            errln!("waiting for {} process group(s) to end…", orphans.len());
            crate::orphans::wait(&orphans, None)
        }
    };
    if !left.is_empty() {
        let lines = crate::orphans::describe(&left).join("\n  ");
        return Err(
            CliError::bad_input(format!("these could not be stopped:\n  {lines}"))
                .with_exit(Exit::Paused),
        );
    }
    Ok(())
}

fn orphans_pending(
    re: &Reopened,
    orphans: &[crate::orphans::Orphan],
    store: &Store,
    again: &str,
) -> CliError {
    let sd = store.flag();
    let id = &re.run_id;
    let by_hand: Vec<String> = orphans.iter().map(crate::orphans::kill_command).collect();
    CliError::notice(
        Exit::Paused,
        format!(
            "run {id}: processes of the crashed run are still running; decide before going on:\n  \
             kill them:      waymark {again} --kill-orphans{sd}\n  \
             wait for them:  waymark {again} --wait-orphans{sd}\n  \
             (or by hand:    {})",
            by_hand.join("; ")
        ),
    )
}

pub(super) fn bad(msg: impl Into<String>) -> CliError {
    CliError::bad_input(msg)
}

/// A run reopened for `resume` or `rollback`: its journal, held, and its runbook reloaded.
pub(super) struct Reopened {
    pub(super) run_id: String,
    pub(super) run: Run,
    pub(super) lock: Ownership,
    pub(super) writer: JournalWriter,
    pub(super) state: RunState,
    pub(super) rb: crate::dsl::Runbook,
    pub(super) plan: Arc<Plan>,
    /// The scheduler's view of `plan`, built while the caller compares it with the journal.
    pub(super) nodes: super::run_cmds::NodesSoon,
    pub(super) estate: Arc<dyn crate::estate::Estate>,
}

// The run with the greatest id: ids begin with their start time, so this is the newest
// run but for runs started within the same second (a guess; see `reopen`).
fn newest_run(store: &Store) -> Option<String> {
    store.run_ids().ok()?.into_iter().max()
}

// The latest run that can be resumed (`any`: the latest run at all, for `--from`).
fn latest_unfinished(store: &Store, any: bool) -> Result<String, CliError> {
    let listing = list_runs(store);
    let chosen = listing
        .runs
        .iter()
        .rev()
        .find(|(_, s)| {
            any || matches!(
                s.status,
                RunStatus::Paused | RunStatus::Failed | RunStatus::Cancelled | RunStatus::Crashed
            )
        })
        .map(|(id, _)| id.clone());
    // A run that cannot be read is not a candidate, but the operator must hear why. The
    // chosen run's own warnings are printed when its journal is reopened, not twice.
    for w in listing.warnings_besides(chosen.as_deref()) {
        errln!("warning: {w}");
    }
    chosen.ok_or_else(|| {
        bad(format!(
            "no unfinished run in {} (see `{}`)",
            store.describe(),
            super::hint::runs(store)
        ))
    })
}

// Lock the run, replay its journal and load its runbook with the recorded parameters.
pub(super) fn reopen(store: &Store, run: Option<&str>, any: bool) -> Result<Reopened, CliError> {
    // Loading and planning the runbook is the longest part of reopening a large run, and
    // it needs only the run's first line (runbook, parameters, inventory). So this thread
    // starts it at once — for the run named, or else for the newest run, the one
    // `latest_unfinished` picks unless it finished — while a second thread chooses,
    // locks, verifies and replays. The load stays here because a new thread's first run
    // waits for the other core to wake (0.1–4 ms on the reference VM, ~1 ms typically),
    // and the journal's side has that to spare. The load's result stands only if the
    // chosen run's verified journal names the same origin; if not, it is done again.
    let guess = run.map(str::to_string).or_else(|| newest_run(store));
    let origin = guess
        .and_then(|id| store.run(&id).ok())
        .and_then(|r| r.read_origin());
    let Some(origin) = origin else {
        return reopen_in_turn(store, run, any);
    };
    // The journal's side hands itself over, then waits for the plan to build the
    // scheduler's nodes from it on its core while this thread compares the plan with
    // the journal.
    let (side_tx, side_rx) = std::sync::mpsc::sync_channel(1);
    let (plan_tx, plan_rx) = std::sync::mpsc::sync_channel::<Arc<Plan>>(1);
    let journal_thread = {
        let (store, run) = (store.clone(), run.map(str::to_string));
        std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || {
                let side = JournalSide::open(&store, run.as_deref(), any);
                let opened = side.is_ok();
                if side_tx.send(side).is_err() || !opened {
                    return None;
                }
                plan_rx
                    .recv()
                    .ok()
                    .map(|plan| super::run_cmds::nodes_of(&plan))
            })
    };
    // No thread to be had: one side after the other, here.
    let Ok(thread) = journal_thread else {
        return reopen_in_turn(store, run, any);
    };
    tracing::debug!("resume: loading the runbook its first line names");
    let loaded = load_recorded(&origin.source, &origin.params, origin.inventory.as_deref());
    let side = match side_rx.recv() {
        Ok(side) => side?,
        // It panicked: the panic is the report.
        Err(_) => match thread.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(_) => return Err(bad("reading the journal failed unexpectedly")),
        },
    };
    side.warn();
    if side.origin() != origin {
        // A wrong guess: loaded again as the journal says, and the nodes here (the
        // journal's thread ends once the plan cannot come).
        drop(plan_tx);
        return side.load_here(store);
    }
    let (rb, plan) = loaded?;
    let plan = Arc::new(plan);
    tracing::debug!("resume: runbook loaded and planned");
    let nodes = match plan_tx.send(plan.clone()) {
        Ok(()) => super::run_cmds::NodesSoon::Building(thread, plan.clone()),
        Err(_) => super::run_cmds::NodesSoon::Ready(super::run_cmds::nodes_of(&plan)),
    };
    side.reopened(store, rb, plan, nodes)
}

// Reopen without a second thread: the journal's side, then the load.
fn reopen_in_turn(store: &Store, run: Option<&str>, any: bool) -> Result<Reopened, CliError> {
    let side = JournalSide::open(store, run, any)?;
    side.warn();
    side.load_here(store)
}

/// What reopening a run takes from its journal: the run chosen, locked, its journal
/// verified and replayed.
struct JournalSide {
    run_id: String,
    run: Run,
    lock: Ownership,
    writer: JournalWriter,
    state: RunState,
    warnings: Vec<String>,
}

impl JournalSide {
    fn open(store: &Store, run: Option<&str>, any: bool) -> Result<JournalSide, CliError> {
        let run_id = match run {
            Some(r) => r.to_string(),
            None => latest_unfinished(store, any)?,
        };
        tracing::debug!("resume: chose run {run_id}");
        let target = store.run(&run_id).map_err(bad)?;
        if !target.exists() {
            return Err(bad(format!(
                "no run `{run_id}` in {} (see `{}`)",
                store.describe(),
                super::hint::runs(store)
            )));
        }
        let lock = target.own().map_err(|e| bad(e.to_string()))?;
        let (writer, contents) = target.open_journal().map_err(|e| bad(e.to_string()))?;
        let state = RunState::replay(&contents.records, false);
        drop(contents.records);
        tracing::debug!("resume: journal read and replayed");
        Ok(JournalSide {
            run_id,
            run: target,
            lock,
            writer,
            state,
            warnings: contents.warnings,
        })
    }

    /// Say what reading the journal found wrong but survivable.
    fn warn(&self) {
        for w in &self.warnings {
            errln!("warning: {w}");
        }
    }

    /// Load the runbook as the journal recorded it, and build the nodes, on this thread.
    fn load_here(self, store: &Store) -> Result<Reopened, CliError> {
        let st = &self.state;
        let (rb, plan) = load_recorded(&st.source, &st.params, st.inventory.as_deref())?;
        tracing::debug!("resume: runbook loaded and planned");
        let nodes = super::run_cmds::NodesSoon::Ready(super::run_cmds::nodes_of(&plan));
        self.reopened(store, rb, Arc::new(plan), nodes)
    }

    /// What the journal says the run loads.
    fn origin(&self) -> journal::RunOrigin {
        journal::RunOrigin {
            source: self.state.source.clone(),
            params: self.state.params.clone(),
            inventory: self.state.inventory.clone(),
        }
    }

    fn reopened(
        self,
        store: &Store,
        rb: crate::dsl::Runbook,
        plan: Arc<Plan>,
        nodes: super::run_cmds::NodesSoon,
    ) -> Result<Reopened, CliError> {
        let inventory_path = self.state.inventory.as_ref().map(std::path::PathBuf::from);
        let estate = crate::estate::open(inventory_path.as_deref(), store)
            .map_err(|e| bad(e.to_string()))?;
        Ok(Reopened {
            run_id: self.run_id,
            run: self.run,
            lock: self.lock,
            writer: self.writer,
            state: self.state,
            rb,
            plan,
            nodes,
            estate,
        })
    }
}

/// Load and plan a run's runbook as its journal recorded it: source, parameters, inventory.
fn load_recorded(
    source: &str,
    params: &std::collections::BTreeMap<String, String>,
    inventory: Option<&str>,
) -> Result<(crate::dsl::Runbook, Plan), CliError> {
    let runbook = RunbookRef::from_arg(source).map_err(|d| {
        bad(format!(
            "the run's runbook `{source}` cannot be found any more: {}",
            d.message
        ))
    })?;
    let inv = crate::estate::load_inventory(inventory.map(Path::new))?;
    let req = LoadRequest {
        runbook,
        params: params.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        inventory: inv.to_json(),
    };
    Plan::load(&req).map_err(CliError::from)
}

/// `waymark resume`.
pub(super) fn resume(
    store: &Store,
    run: Option<&str>,
    o: &RunOptions,
    r: &ResumeOptions,
) -> Result<Exit, CliError> {
    let re = reopen(store, run, r.from.is_some())?;
    // A mistake in the hooks is reported before anything is journaled.
    super::run_cmds::notify_hooks(&re.rb, re.estate.inventory())?;
    let again = format!("resume {}", re.run_id);
    settle_orphans(&re, r.orphans, r.orphans_checked, store, &again)?;
    let (state, plan) = (&re.state, &re.plan);
    let mut decided = match crate::resume::decide(state, plan, r) {
        Err(e) => return Err(bad(e.to_string())),
        Ok(Decision::Finished(status)) => {
            outln!("run {} already {status}: nothing to resume", re.run_id);
            return Ok(Exit::Ok);
        }
        Ok(Decision::Resume(decided)) => decided,
    };
    if !decided.changes.is_empty() {
        errln!("the runbook changed since this run started:");
        for c in &decided.changes {
            errln!("  - {c}");
        }
    }
    if !decided.changed_done.is_empty() {
        err!(
            "{}",
            diffs(
                state,
                plan,
                &decided.changed_done,
                super::changes::step_diff
            )
        );
    }
    if decided.needs_acceptance() {
        return Err(bad(format!("steps that already succeeded were changed: {}\n  their effects happened with the old definition; re-running or skipping them silently could be wrong.\n  to continue with the new definition anyway: {} --accept-changes",
            decided.changed_done.join(", "),
            super::hint::resume(&re.run_id, store)
        )));
    }
    for &(i, what) in &decided.in_flight {
        let name = &plan.steps[i].decl.name;
        match what {
            InFlight::Rerun => errln!("{name}: was in flight; --rerun: running it again"),
            InFlight::Idempotent => {
                errln!("{name}: was in flight; idempotent: running it again")
            }
            InFlight::MarkDone | InFlight::Probe | InFlight::Undecided => {}
        }
    }
    for &(i, reader) in &decided.fresh_again {
        errln!(
            "{}: fresh (it only reads): running it again so {}, still to run, sees today's facts",
            plan.steps[i].decl.name,
            plan.steps[reader].decl.name
        );
    }
    // In a terminal, ask about each undecided step instead of stopping.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stdin())
        && std::io::IsTerminal::is_terminal(&std::io::stderr());
    if terminal && !o.non_interactive {
        for i in decided.undecided() {
            let name = &plan.steps[i].decl.name;
            let choice = dialoguer::Select::new()
                .with_prompt(format!(
                    "`{name}` was running when the run stopped and may or may not have happened; check the servers. Did it happen?"
                ))
                .items(["yes: record it as done", "no: run it again", "not sure: stop here"])
                .default(2)
                .interact_opt();
            match choice {
                Ok(Some(0)) => decided.mark_done(i),
                Ok(Some(1)) => decided.rerun(i),
                _ => {}
            }
        }
    }
    let undecided: Vec<&str> = decided
        .undecided()
        .into_iter()
        .map(|i| plan.steps[i].decl.name.as_str())
        .collect();
    if !undecided.is_empty() {
        let sd = store.flag();
        errln!("these steps were running when the run stopped, are not idempotent and have no check probe:");
        for u in &undecided {
            errln!("  - {u}");
        }
        errln!("check on the servers whether each one happened, then tell waymark:");
        for u in &undecided {
            errln!(
                "  it happened:       waymark resume {} --mark-done {u}{sd}",
                re.run_id
            );
            errln!(
                "  it did not happen: waymark resume {} --rerun {u}{sd}",
                re.run_id
            );
        }
        return Ok(Exit::Paused);
    }
    let mut events = vec![Event::RunResumed {
        user: current_user(),
        host: current_host(),
        plan_fingerprint: plan.fingerprint.clone(),
        changes: decided.changes.iter().map(ToString::to_string).collect(),
        gates: (0..plan.steps.len())
            .filter(|&i| plan.steps[i].decl.kind == StepKind::Gate)
            .map(|i| super::run_cmds::planned_step(plan, i))
            .collect(),
    }];
    // Accepted changes become the definition later resumes and diffs compare with.
    if !decided.redefined.is_empty() {
        let redefined = decided
            .redefined
            .iter()
            .map(|&i| super::run_cmds::planned_step(plan, i))
            .collect();
        events.push(super::changes::sources_event(&re.rb, redefined));
    }
    for i in decided.marked_done() {
        events.push(Event::StepMarkedDone {
            step: plan.steps[i].decl.name.clone(),
            by: current_user(),
        });
    }
    tracing::debug!("resume: compared with the journal");
    // Written, not waited for on disk: what the run does next that matters is made
    // durable by an append that follows (a step's start or end, a decision), and that
    // fsync carries these with it (ARCHITECTURE.md, "Durability").
    re.writer
        .append_written(events)
        .map_err(|e| bad(e.to_string()))?;
    errln!(
        "resuming run {}: {} ({} steps)",
        re.run_id,
        re.rb.decl.name,
        plan.steps.len()
    );
    let _lock = re.lock;
    let r = execute(
        &re.rb,
        re.plan.clone(),
        re.nodes,
        &re.run,
        re.writer,
        decided.prior,
        o,
        re.estate,
        decided.resumed,
        // The recap carries this state on through what the resumed run appends.
        Some(re.state),
    );
    super::leave_to_exit(re.rb);
    r
}

// For each step in `names`: what `diff` finds between the recorded and current definition.
fn diffs(
    state: &RunState,
    plan: &Plan,
    names: &[String],
    diff: fn(&crate::dsl::StepDecl, &crate::dsl::StepDecl) -> String,
) -> String {
    let recorded = match super::changes::recorded_plan(state) {
        Ok(p) => p,
        Err(why) => return format!("  (no diff: {why})\n"),
    };
    let mut out = String::new();
    for name in names {
        let (Some(old), Some(new)) = (recorded.step(name), plan.step(name)) else {
            continue;
        };
        let d = diff(&old.decl, &new.decl);
        out.push_str(&format!("  `{name}` changed:\n"));
        out.push_str(if d.is_empty() {
            "    (no difference in the text)\n"
        } else {
            &d
        });
    }
    out
}
