//! `status`: where a run stands, and for each gate that waits, what an approver in another
//! shell must read and type.
//!
//! The approver is often not the operator who started the run: `status RUN` is where they
//! read the gate's instructions, so it shows them with the exact `approve` / `reject`
//! commands (gate details come from the journal, not the runbook, which may be elsewhere).

use super::hint;
use super::log_cmds::resolve_run;
use crate::exit::{CliError, Exit};
use crate::inbox::{Decision, InboxItem};
use crate::run_state::{RunState, RunStatus, StepState, StepStatus};
use crate::state::Store;
use serde_json::{json, Value};

/// `waymark status`.
pub(super) fn status(store: &Store, run: Option<&str>, json: bool) -> Result<Exit, CliError> {
    let target = resolve_run(store, run)?;
    let (state, warnings) =
        RunState::load(&target).map_err(|e| CliError::bad_input(e.to_string()))?;
    for w in warnings {
        errln!("warning: {w}");
    }
    let mut v = state.to_status_json();
    // Decisions handed in but not yet journaled: the run (or the next resume) picks them
    // up; without them an approver would read "0 of 1" right after approving.
    let pending: Vec<InboxItem> = target
        .pending_decisions()
        .map(|d| d.items.into_iter().map(|p| p.item).collect())
        .unwrap_or_default();
    for (i, s) in state.steps.iter().enumerate() {
        if s.state == StepState::AwaitingApproval {
            v["steps"][i]["commands"] = json!({
                "approve": hint::approve(&state.run_id, &s.name, store),
                "reject": hint::reject(&state.run_id, &s.name, store),
            });
        }
        let mine: Vec<Value> = pending
            .iter()
            .filter(|p| p.gate == s.name)
            .map(|p| {
                json!({
                    "decision": match p.decision { Decision::Approve => "approve", Decision::Reject => "reject" },
                    "by": p.by, "account": p.account, "host": p.host, "at": p.at, "note": p.note,
                })
            })
            .collect();
        if !mine.is_empty() {
            v["steps"][i]["pending"] = Value::Array(mine);
        }
    }
    let orphans = crate::orphans::find(&state);
    let elsewhere = crate::orphans::elsewhere(&state);
    if json {
        v["orphans"] = orphans
            .iter()
            .map(|o| json!({ "step": o.step, "pgid": o.pgid }))
            .collect();
        v["orphans_elsewhere"] = elsewhere
            .iter()
            .map(|e| json!({ "step": e.step, "host": e.host, "pgids": e.pgids }))
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    out!("{}", text(&state, &v, store));
    if !orphans.is_empty() {
        outln!("processes of the crashed run are still running:");
        for line in crate::orphans::describe(&orphans) {
            outln!("  {line}");
        }
        let sd = store.flag();
        outln!(
            "  deal with them first: waymark resume {} --kill-orphans{sd}  (or --wait-orphans)",
            state.run_id
        );
    }
    if !elsewhere.is_empty() {
        let sd = store.flag();
        outln!("processes of the crashed run may still be running on another host:");
        let lines = crate::orphans::describe_elsewhere(
            &elsewhere,
            &format!("waymark resume {}{sd}", state.run_id),
            &format!("waymark status {}{sd}", state.run_id),
        );
        for line in lines {
            outln!("  {line}");
        }
    }
    Ok(Exit::Ok)
}

fn text(state: &RunState, v: &Value, store: &Store) -> String {
    let mut out = String::new();
    let mut line = |l: String| {
        out.push_str(&l);
        out.push('\n');
    };
    line(format!(
        "run {}  {}  {}",
        state.run_id, state.runbook, state.status
    ));
    line(format!(
        "started {} by {} on {}  finished {}",
        state.started_at.as_deref().unwrap_or("-"),
        state.user,
        state.host,
        state.finished_at.as_deref().unwrap_or("-")
    ));
    for s in v["steps"].as_array().into_iter().flatten() {
        let mut l = format!(
            "  {:<18} {:<4} {}",
            s["state"].as_str().unwrap_or(""),
            s["kind"].as_str().unwrap_or(""),
            s["name"].as_str().unwrap_or("")
        );
        let attempts = s["attempts"].as_u64().unwrap_or(0);
        if attempts > 1 {
            l.push_str(&format!("  ({attempts} attempts)"));
        }
        if let Some(e) = s["error"].as_str() {
            l.push_str(&format!("  — {e}"));
        }
        let undos = s["undo_attempts"].as_array().map_or(&[][..], Vec::as_slice);
        if undos.len() > 1 {
            l.push_str(&format!("  (undo attempts: {})", undo_history(undos)));
        }
        line(l);
        for a in s["approvals"].as_array().into_iter().flatten() {
            line(format!("      {}", decision_line("approved", a)));
        }
    }
    let waiting: Vec<&StepStatus> = state
        .steps
        .iter()
        .filter(|s| s.state == StepState::AwaitingApproval)
        .collect();
    if !waiting.is_empty() {
        line(String::new());
        line("waiting for approval:".into());
    }
    for s in waiting {
        line(String::new());
        for l in waiting_gate(state, s, store) {
            line(l);
        }
    }
    let pending: Vec<String> = v["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| {
            let gate = s["name"].as_str().unwrap_or("").to_string();
            s["pending"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(move |p| {
                    let verb = if p["decision"] == "reject" {
                        "rejected"
                    } else {
                        "approved"
                    };
                    format!("  gate {gate}: {}", decision_line(verb, &p))
                })
        })
        .collect();
    if !pending.is_empty() {
        line(String::new());
        line("handed in, not yet picked up by the run (it counts once it is):".into());
        for p in pending {
            line(p);
        }
    }
    for l in next_commands(state, store) {
        line(l);
    }
    out
}

// "failed 14:02:11: file locked; succeeded 14:05:40", from status JSON undo attempts.
fn undo_history(undos: &[Value]) -> String {
    undos
        .iter()
        .map(|u| {
            let at = u["at"].as_str().unwrap_or("");
            let time = at.get(11..19).unwrap_or(at);
            match u["error"].as_str() {
                Some(e) => format!("failed {time}: {e}"),
                None => format!("succeeded {time}"),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `approved by alice (account alice, on host h) at T: note`.
pub(super) fn decision_line(verb: &str, a: &Value) -> String {
    let by = a["by"].as_str().unwrap_or("?");
    let account = a["account"].as_str().unwrap_or(by);
    let host = a["host"].as_str().unwrap_or("?");
    let who = if account == by {
        format!("{by} on {host}")
    } else {
        format!("{by} (account {account}) on {host}")
    };
    let note = a["note"]
        .as_str()
        .map(|n| format!(": {n}"))
        .unwrap_or_default();
    format!(
        "{verb} by {who} at {}{note}",
        a["at"].as_str().unwrap_or("?")
    )
}

/// What an approver needs to see of a waiting gate: title, instructions, what it still
/// needs, and the commands to decide it.
pub(super) fn waiting_gate(state: &RunState, s: &StepStatus, store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    let title = s
        .gate
        .as_ref()
        .and_then(|g| g.title.clone())
        .unwrap_or_else(|| "manual step".into());
    out.push(format!("  gate {} — {title}", s.name));
    if let Some(g) = &s.gate {
        for l in g.instructions.lines() {
            out.push(format!("    │ {l}"));
        }
        let need = g.approvals.max(1) as usize;
        let mut accounts: Vec<&str> = s.approvals.iter().map(|a| a.account.as_str()).collect();
        accounts.sort_unstable();
        accounts.dedup();
        let mut needs = format!("    {} of {need} approvals", accounts.len());
        if need > 1 {
            needs.push_str(" from distinct accounts");
        }
        if g.separate_approver {
            needs.push_str(&format!(
                "; not by {}, who started the run (separate_approver)",
                state.user
            ));
        }
        out.push(needs);
    }
    out.push(format!(
        "    approve: {}",
        hint::approve(&state.run_id, &s.name, store)
    ));
    out.push(format!(
        "    reject:  {}",
        hint::reject(&state.run_id, &s.name, store)
    ));
    out
}

/// The commands that move a stopped run on, as lines to print.
pub(super) fn next_commands(state: &RunState, store: &Store) -> Vec<String> {
    let id = &state.run_id;
    let sd = store.flag();
    match state.status {
        RunStatus::Crashed => vec![format!(
            "the run's process died; steps shown `unknown` were in flight. Continue with: {}",
            hint::resume(id, store)
        )],
        RunStatus::Paused => vec![format!(
            "once approved, continue with: {}",
            hint::resume(id, store)
        )],
        RunStatus::Failed => {
            let mut v = Vec::new();
            if let Some(f) = state.steps.iter().find(|s| s.state == StepState::Failed) {
                v.push(format!(
                    "see what happened:  waymark log {id} {}{sd}",
                    hint::quote(&f.name)
                ));
            }
            v.push(format!("after fixing it:    {}", hint::resume(id, store)));
            v
        }
        RunStatus::Cancelled => vec![format!("continue with: {}", hint::resume(id, store))],
        RunStatus::Running | RunStatus::Succeeded | RunStatus::RolledBack => Vec::new(),
    }
}
