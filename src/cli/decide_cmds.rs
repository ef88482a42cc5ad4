//! `approve` and `reject`: hand a decision to a run, or say at once why it would not count.
//!
//! A decision that nothing will ever use (a finished run, a gate already decided, a second
//! approval by the same account, the starter on a `separate_approver` gate) is refused
//! with exit 2 and the reason, never "recorded" and silently dropped later. The approver
//! is the OS account running this command; `--by` is only a display name beside it.

use super::hint;
use super::log_cmds::resolve_run;
use crate::dsl::StepKind;
use crate::exit::{CliError, Exit};
use crate::inbox::{Decision, InboxItem};
use crate::journal::current_user;
use crate::run_state::{RunState, RunStatus, StepState};
use crate::state::Store;
use std::collections::BTreeSet;

fn refuse(msg: String) -> CliError {
    CliError::bad_input(msg)
}

/// `waymark approve` / `waymark reject`.
pub(super) fn decide(
    store: &Store,
    run: &str,
    gate: &str,
    by: Option<String>,
    note: Option<String>,
    decision: Decision,
) -> Result<Exit, CliError> {
    let target = resolve_run(store, Some(run))?;
    let (state, _) = RunState::load(&target).map_err(|e| CliError::bad_input(e.to_string()))?;
    let gates = || state.steps.iter().filter(|s| s.kind == StepKind::Gate);
    let Some(s) = state.step(gate) else {
        let hint = crate::diagnostic::did_you_mean(gate, gates().map(|g| g.name.as_str()))
            .map(|n| format!(" (did you mean `{n}`?)"))
            .unwrap_or_default();
        let names: Vec<&str> = gates().map(|g| g.name.as_str()).collect();
        let list = if names.is_empty() {
            "it has no gates".to_string()
        } else {
            format!("its gates: {}", names.join(", "))
        };
        return Err(refuse(format!(
            "run {run} has no gate `{gate}`{hint}; {list}"
        )));
    };
    if s.kind != StepKind::Gate {
        return Err(refuse(format!(
            "`{gate}` is a step of run {run}, not a gate: only gates are approved"
        )));
    }
    if matches!(state.status, RunStatus::Succeeded | RunStatus::RolledBack) {
        return Err(refuse(format!(
            "run {run} already {}: nothing will use this decision",
            state.status
        )));
    }
    let verb = match decision {
        Decision::Approve => "approved",
        Decision::Reject => "rejected",
    };
    match s.state {
        StepState::Approved | StepState::Succeeded => {
            return Err(refuse(format!(
                "gate {gate} of run {run} was already approved{}: nothing to decide",
                s.approvals
                    .last()
                    .map(|a| format!(" (last by {})", a.account))
                    .unwrap_or_default()
            )))
        }
        StepState::Rejected => {
            return Err(refuse(format!(
                "gate {gate} of run {run} was already rejected{}; the run stopped there. `{}` asks for it again",
                s.rejections
                    .last()
                    .map(|a| format!(" by {}", a.account))
                    .unwrap_or_default(),
                hint::resume(run, store)
            )))
        }
        StepState::Skipped => {
            return Err(refuse(format!(
                "gate {gate} of run {run} was skipped: it will not be asked for"
            )))
        }
        _ => {}
    }
    let account = current_user();
    // Decisions handed in but not yet journaled count too: the live process may not have
    // picked them up yet.
    let pending: Vec<InboxItem> = target
        .pending_decisions()
        .map(|d| d.items.into_iter().map(|p| p.item).collect())
        .unwrap_or_default();
    let pending = pending.iter().filter(|i| i.gate == gate);
    if let Some(r) = pending.clone().find(|i| i.decision == Decision::Reject) {
        return Err(refuse(format!(
            "gate {gate} of run {run} was already rejected by {} (not yet picked up by the run): nothing to decide",
            r.account
        )));
    }
    let mut approvers: BTreeSet<&str> = s.approvals.iter().map(|a| a.account.as_str()).collect();
    approvers.extend(
        pending
            .filter(|i| i.decision == Decision::Approve)
            .map(|i| i.account.as_str()),
    );
    let info = s.gate.clone().unwrap_or_default();
    if decision == Decision::Approve {
        if approvers.contains(account.as_str()) {
            return Err(refuse(format!(
                "{account} already approved gate {gate} of run {run}: an approval counts once per account{}",
                if info.approvals > 1 {
                    format!(
                        "; it needs {} distinct accounts, so someone else must approve",
                        info.approvals
                    )
                } else {
                    String::new()
                }
            )));
        }
        if info.separate_approver && account == state.user {
            return Err(refuse(format!(
                "{account} started run {run}, and gate {gate} needs a separate approver: another account must approve it (--by does not change who you are)"
            )));
        }
    }
    let item = InboxItem::new(decision, gate, by, note, state.plan_fingerprint.clone());
    target
        .submit_decision(&item)
        .map_err(|e| CliError::bad_input(e.to_string()))?;
    let who = if item.by == account {
        account.clone()
    } else {
        format!("{} (account {account})", item.by)
    };
    let noun = if decision == Decision::Approve {
        "approval"
    } else {
        "rejection"
    };
    let advance = s.state == StepState::Pending;
    if advance {
        outln!(
            "advance {noun} of gate {gate} by {who} recorded: the run has not reached the gate yet; it counts when it does"
        );
    } else {
        outln!("gate {gate} {verb} by {who}");
    }
    if decision == Decision::Approve {
        let need = info.approvals.max(1) as usize;
        let have = approvers.len() + 1;
        if have < need {
            outln!(
                "  {have} of {need} approvals: {} more from other accounts needed",
                need - have
            );
        }
    }
    if target.is_held() {
        outln!("  the running process picks it up within a second");
    } else {
        outln!("  continue with: {}", hint::resume(run, store));
    }
    Ok(Exit::Ok)
}
