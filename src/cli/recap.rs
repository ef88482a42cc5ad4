//! The end-of-run recap: what happened and what to type next, in one place at the bottom
//! of the output (like Ansible's play recap), so nobody scrolls back through a long run.
//!
//! It is derived from the journal, like `status`, so it says what was recorded, not what
//! the live view happened to print.

use super::hint;
use super::status_cmds::next_commands;
use crate::journal::JournalError;
use crate::run_state::{RunState, StepState};
use crate::state::Run;
use std::fmt::Write as _;
use std::time::Duration;

/// The state of `run` after this process drove it, from its journal: `base`, the state
/// `resume` replayed before going on, carried on through the records appended since
/// (only the lines after those it verified on reopening are read and verified again: it
/// held the run meanwhile); without one, the whole journal replayed.
pub(super) fn final_state(run: &Run, base: Option<RunState>) -> Result<RunState, JournalError> {
    match base {
        Some(base) => {
            let new = run.read_after(base.last_seq)?;
            Ok(base.advance(&new.records, run.is_held()))
        }
        None => RunState::load(run).map(|(state, _)| state),
    }
}

/// The recap of `run` from its [`final_state`]; `warnings` are the `warn()` lines
/// raised, as `(step, line)`, and `took` how long this process ran it.
pub(super) fn recap(
    run: &Run,
    state: &Result<RunState, JournalError>,
    warnings: &[(String, String)],
    took: Duration,
) -> String {
    let store = &run.store();
    let state = match state {
        Ok(state) => state,
        Err(e) => return format!("(no recap: the journal could not be read back: {e})\n"),
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "── recap: run {} {} after {}",
        state.run_id,
        state.status,
        crate::duration::format_duration(Duration::from_millis(took.as_millis() as u64))
    );
    let _ = writeln!(out, "   {}", counts(state));
    let failed: Vec<_> = state
        .steps
        .iter()
        .filter(|s| matches!(s.state, StepState::Failed | StepState::Rejected))
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(out, "   failed:");
        for s in failed {
            let first = s
                .error
                .as_deref()
                .and_then(|e| e.lines().find(|l| !l.trim().is_empty()))
                .unwrap_or("(no error recorded)");
            let _ = writeln!(out, "     ✗ {}: {first}", s.name);
        }
    }
    if !warnings.is_empty() {
        let _ = writeln!(out, "   warnings ({}):", warnings.len());
        for (step, line) in warnings {
            let _ = writeln!(out, "     ! {step}: {line}");
        }
    }
    let waiting: Vec<_> = state
        .steps
        .iter()
        .filter(|s| s.state == StepState::AwaitingApproval)
        .collect();
    let mut next: Vec<String> = waiting
        .iter()
        .map(|s| {
            format!(
                "approve {}: {}",
                s.name,
                hint::approve(&state.run_id, &s.name, store)
            )
        })
        .collect();
    next.extend(next_commands(state, store));
    if !next.is_empty() {
        let _ = writeln!(out, "   next:");
        for n in next {
            let _ = writeln!(out, "     {n}");
        }
    }
    out
}

/// `3 succeeded · 1 approved · 2 pending`, in a fixed order, states with none left out.
fn counts(state: &RunState) -> String {
    const ORDER: [StepState; 10] = [
        StepState::Succeeded,
        StepState::Approved,
        StepState::Failed,
        StepState::Rejected,
        StepState::Skipped,
        StepState::AwaitingApproval,
        StepState::Running,
        StepState::Unknown,
        StepState::Pending,
        StepState::RolledBack,
    ];
    let parts: Vec<String> = ORDER
        .iter()
        .filter_map(|st| {
            let n = state.steps.iter().filter(|s| s.state == *st).count();
            (n > 0).then(|| format!("{n} {st}"))
        })
        .collect();
    if parts.is_empty() {
        "no steps".into()
    } else {
        parts.join(" · ")
    }
}
