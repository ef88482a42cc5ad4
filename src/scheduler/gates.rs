//! Gates: a ready gate is journaled as waiting and asked through [`super::Action::gate`]
//! when it opens and on every poll until it is approved (its `step_succeeded` is durable
//! before any dependent starts) or rejected (a failure, like a failed step's).

use super::run_loop::{Run, St};
use super::{GateState, ResultState};
use crate::journal::{Event, JournalError};
use serde_json::Value;

/// The gates of a run that wait for a decision.
#[derive(Default)]
pub(super) struct Gates {
    /// Waiting gates, in the order they opened.
    pub(super) waiting: Vec<usize>,
}

impl Run {
    pub(super) async fn poll_gate(&mut self, i: usize, first: bool) -> Result<(), JournalError> {
        let shared = self.shared.clone();
        let nodes = &shared.nodes;
        match shared.action.gate(i, first) {
            GateState::Waiting => {}
            GateState::Approved => {
                self.gates.waiting.retain(|&w| w != i);
                self.st[i] = St::Succeeded;
                let ev = Event::StepSucceeded {
                    step: nodes[i].name.clone(),
                    attempt: 1,
                    output: Value::Null,
                    verified: false,
                };
                self.emit_now(vec![ev]).await?;
                let mut board = shared.finished.write();
                board.set_output(i, Value::Null);
                board.set_result(i, ResultState::Approved, None);
                drop(board);
                self.queue
                    .to_check
                    .extend(nodes[i].dependents.iter().copied());
            }
            GateState::Rejected(why) => {
                self.gates.waiting.retain(|&w| w != i);
                self.st[i] = St::Failed;
                shared
                    .finished
                    .write()
                    .set_result(i, ResultState::Rejected, Some(why.clone()));
                self.failures
                    .push(format!("{} (rejected: {why})", nodes[i].name));
                self.queue
                    .to_check
                    .extend(nodes[i].dependents.iter().copied());
            }
        }
        Ok(())
    }
}
