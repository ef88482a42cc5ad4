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
    // it needs only the run's first line (runbook, parameters, inventory). So it starts on
    // a second core before anything else — for the run named, or else for the newest run,
    // the one `latest_unfinished` picks unless it finished — while this thread chooses,
    // locks, verifies and replays. Its result stands only if the chosen run's verified
    // journal names the same origin; if not, or on an error before, it is let go
    // unjoined (loading has no effects) and this process does not wait for it.
    let guess = run.map(str::to_string).or_else(|| newest_run(store));
    let origin = guess
        .and_then(|id| store.run(&id).ok())
        .and_then(|r| r.read_origin());
    tracing::debug!("resume: loading the runbook its first line names");
    // The load hands its plan over, then goes on to build the scheduler's nodes from it,
    // on the core it already has, while this thread compares the plan with the journal.
    let loading = origin.clone().and_then(|o| {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("load".into())
            .stack_size(8 << 20)
            .spawn(move || {
                let loaded = load_recorded(&o.source, &o.params, o.inventory.as_deref())
                    .map(|(rb, plan)| (rb, Arc::new(plan)));
                tracing::debug!("resume: loaded on the second thread");
                let plan = loaded.as_ref().ok().map(|(_, plan)| plan.clone());
                let wanted = tx.send(loaded).is_ok();
                plan.filter(|_| wanted)
                    .map(|plan| super::run_cmds::nodes_of(&plan))
            })
            .ok()
            .map(|thread| (thread, rx))
    });
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
    for w in &contents.warnings {
        errln!("warning: {w}");
    }
    let recorded = journal::RunOrigin {
        source: state.source.clone(),
        params: state.params.clone(),
        inventory: state.inventory.clone(),
    };
    let (rb, plan, nodes) = match loading {
        Some((thread, handed)) if origin.as_ref() == Some(&recorded) => {
            let (rb, plan) = handed
                .recv()
                .unwrap_or_else(|_| Err(bad("loading the runbook failed unexpectedly")))?;
            let nodes = super::run_cmds::NodesSoon::Building(thread, plan.clone());
            (rb, plan, nodes)
        }
        _ => {
            let (rb, plan) =
                load_recorded(&state.source, &state.params, state.inventory.as_deref())?;
            // Loaded here after all (a wrong guess, or no origin to guess from): the
            // nodes too.
            let nodes = super::run_cmds::NodesSoon::Ready(super::run_cmds::nodes_of(&plan));
            (rb, Arc::new(plan), nodes)
        }
    };
    tracing::debug!("resume: runbook loaded and planned");
    let inventory_path = state.inventory.as_ref().map(std::path::PathBuf::from);
    let estate =
        crate::estate::open(inventory_path.as_deref(), store).map_err(|e| bad(e.to_string()))?;
    Ok(Reopened {
        run_id,
        run: target,
        lock,
        writer,
        state,
        rb,
        plan,
        nodes,
        estate,
    })
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
