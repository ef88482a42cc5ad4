//! `waymark status --watch`: the live view of a run driven elsewhere — another terminal,
//! or another host sharing the state directory.
//!
//! The run's process is the only writer; the watcher reads. It prints the status once,
//! then reads the journal every half second and hands each new record to the same
//! [`Display`] a live run uses (in a terminal: event lines above the pinned progress
//! area), until the run's process lets go of it.

use super::log_cmds::resolve_run;
use crate::display::Display;
use crate::dsl::StepKind;
use crate::exit::{CliError, Exit};
use crate::journal::Event;
use crate::run_state::{RunState, StepState};
use crate::scheduler::{Node, NodeKind};
use crate::state::Store;
use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::Duration;

/// How often the journal is read again.
const POLL: Duration = Duration::from_millis(500);

fn bad(e: impl std::fmt::Display) -> CliError {
    CliError::bad_input(e.to_string())
}

/// Nodes for the display: names and kinds are all it shows.
fn nodes(state: &RunState) -> Vec<Node> {
    state
        .steps
        .iter()
        .map(|s| Node {
            name: s.name.clone(),
            kind: match s.kind {
                StepKind::Gate => NodeKind::Gate,
                StepKind::Step => NodeKind::Step,
            },
            deps: vec![],
            dependents: vec![],
            when: crate::dsl::When::Success,
            retries: 0,
            retry_delay: Duration::ZERO,
            timeout: None,
            group: None,
            budgeted: false,
        })
        .collect()
}

/// `waymark status [RUN] --watch`.
pub(super) fn watch(store: &Store, run: Option<&str>) -> Result<Exit, CliError> {
    let target = resolve_run(store, run)?;
    let id = target.id();
    super::status_cmds::status(store, Some(id), false)?;
    if !target.is_held() {
        errln!("run {id} is not running: nothing to watch");
        return Ok(Exit::Ok);
    }
    let contents = target.read_journal().map_err(bad)?;
    let state = RunState::replay(&contents.records, true);
    let done = state
        .steps
        .iter()
        .filter(|s| {
            !matches!(
                s.state,
                StepState::Pending | StepState::Running | StepState::AwaitingApproval
            )
        })
        .count();
    let display = Arc::new(
        Display::new(
            Arc::new(nodes(&state)),
            std::io::stderr().is_terminal(),
            done,
        )
        .pinned(),
    );
    display.start_ticker(Duration::from_secs(10));
    errln!("watching run {id} (Ctrl-C stops watching, not the run)");
    for s in &state.steps {
        match s.state {
            StepState::Running => display.event(&Event::StepStarted {
                step: s.name.clone(),
                attempt: s.attempts,
            }),
            StepState::AwaitingApproval => display.gate_waits(&s.name),
            _ => {}
        }
    }
    let mut seen = state.last_seq;
    loop {
        // Checked before reading, so the last read after the run stopped sees everything.
        let live = target.is_held();
        let contents = target.read_journal().map_err(bad)?;
        let from = seen;
        for r in contents.records.iter().filter(|r| r.seq > from) {
            match &r.event {
                Event::GateWaiting { gate } => display.gate_waits(gate),
                ev => display.event(ev),
            }
            seen = r.seq;
        }
        if !live {
            break;
        }
        target.wait_for_change(POLL);
    }
    display.finish();
    let (state, _) = RunState::load(&target).map_err(bad)?;
    errln!("run {id} {}", state.status);
    Ok(Exit::Ok)
}
