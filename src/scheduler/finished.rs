//! What running actions may read of finished nodes: their outputs (for `ctx.outputs`)
//! and results (for `ctx.results`), shared behind one lock the run loop writes.

use super::{NodeResult, ResultState};
use serde_json::Value;
use std::sync::Arc;

/// Outputs and results of finished nodes, shared with running actions.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    /// Output of every succeeded node, by node index (`None` until it succeeds).
    pub outputs: Vec<Option<Value>>,
    /// Outcome of every finished node, by node index (`None` until it finishes).
    pub results: Vec<Option<NodeResult>>,
}

/// A cheap, shared view of [`Finished`] that actions read while the run goes on.
#[derive(Debug, Clone, Default)]
pub struct FinishedView(Arc<std::sync::RwLock<Board>>);

/// What [`FinishedView`] guards: the results, plus a count that keeps
/// [`FinishedView::any_output`] O(1) (it is asked once per step, and scanning every output
/// each time made a 10,000-step run quadratic).
#[derive(Debug, Default)]
pub(super) struct Board {
    finished: Finished,
    non_null_outputs: usize,
}

impl Board {
    /// An empty board for `n` nodes. Slots are indexed by node: a resumed run enters
    /// every finished node's output and result before it starts (10,000 of each for a
    /// large run), and hashing each index into a map was a millisecond of that.
    pub(super) fn new(n: usize) -> Self {
        Board {
            finished: Finished {
                outputs: vec![None; n],
                results: vec![None; n],
            },
            non_null_outputs: 0,
        }
    }

    pub(super) fn set_output(&mut self, i: usize, v: Value) {
        let added = usize::from(!v.is_null());
        let removed = match self.finished.outputs[i].replace(v) {
            Some(old) => usize::from(!old.is_null()),
            None => 0,
        };
        self.non_null_outputs = self.non_null_outputs + added - removed;
    }

    pub(super) fn set_result(&mut self, i: usize, state: ResultState, error: Option<String>) {
        self.finished.results[i] = Some(NodeResult { state, error });
    }
}

impl FinishedView {
    pub(super) fn new(board: Board) -> Self {
        FinishedView(Arc::new(std::sync::RwLock::new(board)))
    }

    pub(super) fn write(&self) -> std::sync::RwLockWriteGuard<'_, Board> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Board> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Output of node `i`, if it succeeded.
    pub fn output(&self, i: usize) -> Option<Value> {
        self.read().finished.outputs.get(i).cloned().flatten()
    }

    /// Outcome of node `i`, if it finished.
    pub fn result(&self, i: usize) -> Option<NodeResult> {
        self.read().finished.results.get(i).cloned().flatten()
    }

    /// True when some finished node produced an output other than null.
    pub fn any_output(&self) -> bool {
        self.read().non_null_outputs > 0
    }
}
