//! The scheduler: runs opaque actions over a DAG on tokio, with concurrency and group
//! limits, `when` conditions, retries, timeouts, fail-fast and cancellation.
//!
//! It knows nothing about Rhai: an [`Action`] runs one attempt of one node on a blocking
//! thread. Every state change goes to the journal and is durable before its consequence:
//! `step_started` before the action runs, `step_succeeded` before any dependent starts.
//!
//! One loop makes every decision; actions report back to it over a channel. It writes the
//! journal in rounds: the outcomes of the attempts that ended and the starts that are due
//! go out as one append (one fsync), and only once that is durable are the started
//! actions handed to threads and the dependents of the ended steps looked at. A 10,000-step
//! run so costs a few hundred fsyncs rather than two per step, and nothing is decided on a
//! record that is not yet on disk. The one exception is asked of the action
//! ([`Action::must_record_start`]): a step that may simply run again after a crash starts
//! as soon as its `step_started` is handed to the journal, before the fsync.
//!
//! Where things are: this file is the public surface (nodes, the [`Action`] trait,
//! options, outcomes, [`run`]); `run_loop.rs` the loop and its journal rounds;
//! `ready.rs` which nodes may start (dependencies, `when`, fail-fast); `attempt.rs` one
//! attempt's life (start, timeout, retry, interrupt); `groups.rs` the concurrency and
//! group slots; `gates.rs` gates; `finished.rs` what running actions may read of finished
//! nodes; `announcer.rs` the display's thread.

mod announcer;
mod attempt;
mod finished;
mod gates;
mod groups;
mod ready;
mod run_loop;
#[cfg(test)]
mod tests;

pub use finished::{Finished, FinishedView};

use crate::cancel::CancelToken;
use crate::dsl::When;
use crate::journal::{Event, JournalError, JournalWriter};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Step or gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// An action.
    Step,
    /// Waits for approval (decided by [`Action::gate`]).
    Gate,
}

/// One node of the DAG as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct Node {
    /// Unique name (journal key).
    pub name: String,
    /// Step or gate.
    pub kind: NodeKind,
    /// Indices of dependencies.
    pub deps: Vec<usize>,
    /// Indices of dependents.
    pub dependents: Vec<usize>,
    /// Run condition.
    pub when: When,
    /// Extra attempts after a failure.
    pub retries: u32,
    /// First retry delay, doubled each further attempt.
    pub retry_delay: Duration,
    /// Per-attempt timeout.
    pub timeout: Option<Duration>,
    /// Concurrency group.
    pub group: Option<String>,
    /// A rollout's item: its failure does not stop the run (fail-fast) — a later node
    /// that counts the failures decides — yet the run still ends failed, naming it.
    pub budgeted: bool,
}

/// What the journal says of a node before this process starts (resume).
#[derive(Debug, Clone, PartialEq)]
pub enum Prior {
    /// Must run.
    Pending,
    /// Succeeded (or approved, or marked done) earlier: never run again.
    Done(Value),
    /// Skipped earlier by its condition.
    Skipped,
    /// A gate still to decide whose rehearsal passed earlier: it opens and is asked
    /// without rehearsing again (the operator's part was played once, and a rehearsal
    /// acts on the estate).
    Rehearsed,
}

/// How a gate stands when asked.
#[derive(Debug, Clone, PartialEq)]
pub enum GateState {
    /// Approved: dependents may run.
    Approved,
    /// Rejected: counts as a failure.
    Rejected(String),
    /// Still waiting: ask again later.
    Waiting,
}

/// How a finished node ended, as `ctx.results` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultState {
    /// A step's last attempt succeeded.
    Succeeded,
    /// A step's last attempt failed.
    Failed,
    /// Not run: its `when` did not hold, or the run stopped first.
    Skipped,
    /// A gate got the approvals it needs.
    Approved,
    /// A gate was rejected.
    Rejected,
}

impl ResultState {
    /// The name closures see in `ctx.results[NAME].state`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultState::Succeeded => "succeeded",
            ResultState::Failed => "failed",
            ResultState::Skipped => "skipped",
            ResultState::Approved => "approved",
            ResultState::Rejected => "rejected",
        }
    }
}

/// Outcome of one node, passed to `always`/`failure` dependents.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeResult {
    /// How it ended.
    pub state: ResultState,
    /// Error text when it failed.
    pub error: Option<String>,
}

/// The work behind the nodes. Implemented by the Rhai executor; tests use plain closures.
pub trait Action: Send + Sync + 'static {
    /// Run one attempt of step `node` (blocking; must return soon after `cancel` fires).
    fn run(
        &self,
        node: usize,
        attempt: u32,
        cancel: &CancelToken,
        done: &FinishedView,
    ) -> Result<Value, String>;
    /// Asked when gate `node` opens (`first`; after its rehearsal, if it has one), then
    /// every poll until it is decided. Runs on a blocking thread, never on the run loop.
    fn gate(&self, node: usize, first: bool) -> GateState;
    /// Whether gate `node` has a rehearsal to run before it is asked (in a rehearsal on
    /// the lab, a `rehearse` closure plays the operator's part).
    fn rehearses(&self, _node: usize) -> bool {
        false
    }
    /// Run gate `node`'s rehearsal (blocking, like [`Action::run`]; must return soon
    /// after `cancel` fires). An error rejects the gate.
    fn rehearse(
        &self,
        _node: usize,
        _attempt: u32,
        _cancel: &CancelToken,
        _done: &FinishedView,
    ) -> Result<(), String> {
        Ok(())
    }
    /// Whether the failed last attempt of `node` may pass if tried again (asked only when
    /// retries are left; a timeout is always retried). An action answers false for
    /// failures that asking again cannot change, such as an estate refusal.
    fn may_retry(&self, _node: usize) -> bool {
        true
    }
    /// Whether `node`'s `step_started` must be durable before its action runs. An action
    /// may answer false for a step that running again after a crash is the same as running
    /// for the first time (idempotent, without a probe to ask first): then the action
    /// starts as soon as its record is handed to the journal, without waiting for the
    /// fsync. Its end is durable before any dependent starts all the same.
    fn must_record_start(&self, _node: usize) -> bool {
        true
    }
    /// Whether to keep polling waiting gates when nothing else can run (a prompt is open).
    fn keep_waiting(&self) -> bool {
        false
    }
}

/// Scheduling options.
#[derive(Clone)]
pub struct Options {
    /// Most nodes running at once.
    pub concurrency: usize,
    /// Keep starting independent branches after a failure.
    pub keep_going: bool,
    /// Most nodes of a group running at once.
    pub limits: HashMap<String, usize>,
    /// How often waiting gates are asked again.
    pub gate_poll: Duration,
    /// Told of every event once it is durable (the live display).
    pub observer: Option<Observer>,
}

/// A callback told of each journaled event.
pub type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

impl Default for Options {
    fn default() -> Self {
        Self {
            concurrency: 8,
            keep_going: false,
            limits: HashMap::new(),
            gate_poll: Duration::from_millis(250),
            observer: None,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every node succeeded, was approved or skipped.
    Succeeded,
    /// A node failed or a gate was rejected.
    Failed(Vec<String>),
    /// Gates still wait; nothing else can run.
    Paused(Vec<String>),
    /// Interrupted; nodes that were running are left `started` (unknown on resume).
    Cancelled,
}

/// Run the DAG to its end (or pause, or cancellation); journal every state change.
pub async fn run(
    nodes: Arc<Vec<Node>>,
    prior: Vec<Prior>,
    opts: Options,
    action: Arc<dyn Action>,
    journal: JournalWriter,
    interrupt: CancelToken,
) -> Result<Outcome, JournalError> {
    run_loop::Run::new(nodes, prior, opts, action, journal, interrupt)
        .drive()
        .await
}
