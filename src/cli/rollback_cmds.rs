//! `rollback`: run the `undo` of a run's succeeded steps, newest first, refusing undos
//! edited since their steps ran unless told otherwise.

use super::resume_cmds::{bad, reopen, settle_orphans, OrphanChoice};
use crate::exit::{CliError, Exit};
use crate::journal::{current_user, Event, FinalStatus};
use crate::plan::Plan;
use crate::run_state::RunState;
use crate::state::Store;

// Steps among `names` whose undo (or what it can call) differs from the recorded
// definition, each with its diff. Without a source snapshot (an older journal), the
// step's fingerprint decides, and there is no diff to show.
fn edited_undos(state: &RunState, plan: &Plan, names: &[String]) -> Vec<(String, String)> {
    let recorded = super::changes::recorded_plan(state);
    let mut out = Vec::new();
    for name in names {
        let Some(new) = plan.step(name) else { continue };
        let text = match &recorded {
            Ok(old) => match old.step(name) {
                Some(old) => super::changes::undo_diff(&old.decl, &new.decl),
                None => String::new(),
            },
            Err(why) => {
                let changed = state
                    .step(name)
                    .and_then(|s| s.fingerprint.as_deref())
                    .is_some_and(|f| {
                        plan.position(name)
                            .is_some_and(|i| crate::resume::differs(f, plan, i, &state.params))
                    });
                if changed {
                    format!("    (the step changed; no diff: {why})\n")
                } else {
                    String::new()
                }
            }
        };
        if !text.is_empty() {
            out.push((name.clone(), format!("  `{name}`:\n{text}")));
        }
    }
    out
}

/// Options of `waymark rollback`.
#[derive(Debug, Clone, Default)]
pub(super) struct RollbackOptions {
    /// Go ahead (rollback changes the estate).
    pub yes: bool,
    /// Run undo closures edited since their steps ran.
    pub accept_changes: bool,
    /// Carry on after a failed undo.
    pub keep_going: bool,
    /// What to do with process groups a crash left running (as for resume).
    pub orphans: Option<OrphanChoice>,
    /// Process groups another host started were checked there (as for resume).
    pub orphans_checked: bool,
}

/// `waymark rollback`: run the `undo` of succeeded steps, newest first.
pub(super) fn rollback(store: &Store, run: &str, o: &RollbackOptions) -> Result<Exit, CliError> {
    let mut re = reopen(store, Some(run), true)?;
    // An undo must not race the attempt it would undo, or any other left running.
    let again = format!("rollback {run} --yes");
    settle_orphans(&re, o.orphans, o.orphans_checked, store, &again)?;
    let done = crate::resume::rollback::undo_order(&re.state, &re.plan);
    if done.is_empty() {
        outln!(
            "run {}: no succeeded step has an undo; nothing to roll back",
            re.run_id
        );
        return Ok(Exit::Ok);
    }
    outln!("rollback of run {} will undo, in this order:", re.run_id);
    for &i in &done {
        outln!("  - {}", re.plan.steps[i].decl.name);
    }
    // An undo edited since its step ran compensates for something that did not happen.
    let names: Vec<String> = done
        .iter()
        .map(|&i| re.plan.steps[i].decl.name.clone())
        .collect();
    let edited = edited_undos(&re.state, &re.plan, &names);
    if !edited.is_empty() {
        errln!("the undo of these steps changed since they ran:");
        err!(
            "{}",
            edited.iter().map(|(_, d)| d.as_str()).collect::<String>()
        );
        if !o.accept_changes {
            let names: Vec<&str> = edited.iter().map(|(n, _)| n.as_str()).collect();
            return Err(bad(format!("the undo of {} was edited since the step ran: it may not undo what the step did.\n  to run the edited undo anyway: waymark rollback {} --yes --accept-changes{}",
                names.join(", "),
                re.run_id,
                store.flag()
            )));
        }
    }
    if !o.yes {
        return Err(bad(format!(
            "rollback changes the estate: pass --yes to go ahead (waymark rollback {} --yes{})",
            re.run_id,
            store.flag()
        )));
    }
    let redactor = crate::redact::Redactor::new();
    re.writer.set_redactor(redactor.clone());
    let plan = re.plan.clone();
    let mut action = crate::executor::RhaiAction::new(
        plan.clone(),
        re.rb.engine.clone(),
        &re.rb.params,
        re.rb.inventory.clone(),
        re.run_id.clone(),
        re.run.clone(),
        redactor,
        re.writer.clone(),
        crate::executor::GateMode::Inbox,
    );
    action.estate = Some(re.estate);
    action.declare_params(re.rb.decl.params.keys().cloned());
    let j = |ev: Event| {
        re.writer
            .append_blocking(vec![ev])
            .map_err(|e| bad(e.to_string()))
    };
    j(Event::RollbackStarted {
        user: current_user(),
    })?;
    // Undo closures see what the run recorded, as its steps did (e.g. which policies
    // were enabled before the upgrade turned them off).
    let known = crate::executor::JournalOutputs(crate::resume::rollback::recorded_outputs(
        &re.state, &plan,
    ));
    let mut failed = Vec::new();
    for i in done {
        let d = &plan.steps[i].decl;
        let Some(undo) = &d.undo else { continue };
        j(Event::UndoStarted {
            step: d.name.clone(),
        })?;
        errln!("↶ undo {}", d.name);
        match action.call(i, 1, undo, &crate::cancel::CancelToken::new(), &known) {
            Ok(_) => {
                j(Event::UndoSucceeded {
                    step: d.name.clone(),
                })?;
            }
            Err(e) => {
                errln!("✗ undo {} failed: {e}", d.name);
                j(Event::UndoFailed {
                    step: d.name.clone(),
                    error: e,
                })?;
                failed.push(d.name.clone());
                if !o.keep_going {
                    break;
                }
            }
        }
    }
    if failed.is_empty() {
        j(Event::RunFinished {
            status: FinalStatus::RolledBack,
        })?;
        outln!("run {} rolled back", re.run_id);
        Ok(Exit::Failed)
    } else {
        j(Event::RunFinished {
            status: FinalStatus::Failed,
        })?;
        outln!(
            "rollback of run {} incomplete: {} failed to undo{}",
            re.run_id,
            failed.join(", "),
            if o.keep_going {
                ""
            } else {
                "; it stopped there, since the undos after it may rely on it"
            }
        );
        outln!(
            "fix the cause, then run the rest again: waymark rollback {} --yes{}{}",
            re.run_id,
            store.flag(),
            if o.keep_going { " --keep-going" } else { "" }
        );
        Ok(Exit::Failed)
    }
}
