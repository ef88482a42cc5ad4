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
//! record that is not yet on disk. The live display is told from a thread of its own so
//! its writes stay off the path between two commits.

use crate::cancel::{CancelReason, CancelToken};
use crate::dsl::When;
use crate::journal::writer::Durable;
use crate::journal::{Event, FinalStatus, JournalError, JournalWriter, Record};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::future::Future as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

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

/// Outcome of one node, passed to `always`/`failure` dependents.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeResult {
    /// `succeeded`, `failed`, `skipped`, `approved`, `rejected`.
    pub state: &'static str,
    /// Error text when it failed.
    pub error: Option<String>,
}

/// Outputs and results of finished nodes, shared with running actions.
#[derive(Debug, Clone, Default)]
pub struct Finished {
    /// Output of every succeeded node, by index.
    pub outputs: HashMap<usize, Value>,
    /// Outcome of every finished node, by index.
    pub results: HashMap<usize, NodeResult>,
}

/// A cheap, shared view of [`Finished`] that actions read while the run goes on.
#[derive(Debug, Clone, Default)]
pub struct FinishedView(Arc<std::sync::RwLock<Board>>);

/// What [`FinishedView`] guards: the results, plus a count that keeps
/// [`FinishedView::any_output`] O(1) (it is asked once per step, and scanning every output
/// each time made a 10,000-step run quadratic).
#[derive(Debug, Default)]
struct Board {
    finished: Finished,
    non_null_outputs: usize,
}

impl Board {
    fn set_output(&mut self, i: usize, v: Value) {
        let added = usize::from(!v.is_null());
        let removed = match self.finished.outputs.insert(i, v) {
            Some(old) => usize::from(!old.is_null()),
            None => 0,
        };
        self.non_null_outputs = self.non_null_outputs + added - removed;
    }

    fn set_result(&mut self, i: usize, state: &'static str, error: Option<String>) {
        self.finished.results.insert(i, NodeResult { state, error });
    }
}

impl FinishedView {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Board> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Board> {
        self.0.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Output of node `i`, if it succeeded.
    pub fn output(&self, i: usize) -> Option<Value> {
        self.read().finished.outputs.get(&i).cloned()
    }

    /// Outcome of node `i`, if it finished.
    pub fn result(&self, i: usize) -> Option<NodeResult> {
        self.read().finished.results.get(&i).cloned()
    }

    /// True when some finished node produced an output other than null.
    pub fn any_output(&self) -> bool {
        self.read().non_null_outputs > 0
    }
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
    /// Called when gate `node` becomes ready, then every poll until it is decided.
    fn gate(&self, node: usize, first: bool) -> GateState;
    /// Whether the failed last attempt of `node` may pass if tried again (asked only when
    /// retries are left; a timeout is always retried). An action answers false for
    /// failures that asking again cannot change, such as an estate refusal.
    fn may_retry(&self, _node: usize) -> bool {
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

/// Tells the observer of durable events, in journal order, from a thread of its own: the
/// live display writes a line per event, and those writes must not hold up the run loop
/// between two commits. Dropping it waits until every event handed over has been told.
enum Announcer {
    Silent,
    /// The thread could not be started: tell inline.
    Inline(Observer),
    Thread {
        tx: Option<std::sync::mpsc::Sender<Vec<Record>>>,
        thread: Option<std::thread::JoinHandle<()>>,
    },
}

impl Announcer {
    fn new(observer: Option<Observer>) -> Self {
        let Some(observer) = observer else {
            return Announcer::Silent;
        };
        let (tx, rx) = std::sync::mpsc::channel::<Vec<Record>>();
        let o = observer.clone();
        let spawned = std::thread::Builder::new()
            .name("waymark-display".into())
            .spawn(move || {
                for records in rx {
                    for r in &records {
                        o(&r.event);
                    }
                }
            });
        match spawned {
            Ok(thread) => Announcer::Thread {
                tx: Some(tx),
                thread: Some(thread),
            },
            Err(_) => Announcer::Inline(observer),
        }
    }

    fn tell(&self, records: Vec<Record>) {
        match self {
            Announcer::Silent => {}
            Announcer::Inline(o) => records.iter().for_each(|r| o(&r.event)),
            Announcer::Thread { tx, .. } => {
                if let Some(tx) = tx {
                    // Only fails if the observer panicked; the run goes on without it.
                    let _ = tx.send(records);
                }
            }
        }
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        if let Announcer::Thread { tx, thread } = self {
            drop(tx.take());
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
        }
    }
}

// Append durably, then tell the observer.
async fn emit(
    journal: &JournalWriter,
    announcer: &Announcer,
    events: Vec<Event>,
) -> Result<(), JournalError> {
    let records = journal.append(events).await?;
    announcer.tell(records);
    Ok(())
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    Pending,
    Queued,
    Running,
    Waiting,
    Succeeded,
    Failed,
    Skipped,
}

impl St {
    fn finished(self) -> bool {
        matches!(self, St::Succeeded | St::Failed | St::Skipped)
    }
}

/// How one attempt's action returned, sent by its blocking thread to the run loop.
struct AttemptEnd {
    node: usize,
    attempt: u32,
    result: Result<Value, String>,
}

/// A step's attempt outcome waiting to be journaled by the next commit.
struct Ended {
    node: usize,
    attempt: u32,
    result: Result<Value, String>,
    /// Another attempt follows (after the retry delay).
    will_retry: bool,
}

/// Where a node that holds a run slot stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Its `step_started` goes in the commit being prepared.
    Starting,
    /// The action runs on a blocking thread.
    Executing,
    /// The action returned; the outcome goes in the next commit.
    Ending,
    /// The attempt failed and is on record; the retry delay runs.
    RetryWait,
    /// The retry delay is over; the next `step_started` goes in the next commit.
    RetryDue,
}

/// One round of records handed to the journal, and what to do once it is durable.
struct Commit {
    durable: Durable,
    ended: Vec<Ended>,
    /// Retries and first attempts whose `step_started` is in this round.
    starts: Vec<usize>,
    /// Last attempts in `ended` that failed (they stop new steps unless `keep_going`).
    failures: usize,
}

/// The live part of a node that holds a run slot.
struct Live {
    phase: Phase,
    attempt: u32,
    /// Cancels the attempt in flight (its timeout, or the interrupt).
    token: CancelToken,
    timed_out: bool,
    /// Delay before the next retry; doubled after each.
    retry_delay: Duration,
    /// Counts against `--concurrency` and its group. A last attempt gives its slot back
    /// as soon as its action returns, so a step can start in the very commit that
    /// journals the outcome (a step waiting to retry keeps its slot).
    slot: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    Timeout,
    Retry,
}

/// A timer of one attempt; stale ones (the attempt moved on) are ignored when they fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Timer {
    at: tokio::time::Instant,
    node: usize,
    attempt: u32,
    kind: TimerKind,
}

/// What the actions' blocking threads need, behind one `Arc` so starting one clones one
/// pointer.
struct Shared {
    nodes: Arc<Vec<Node>>,
    action: Arc<dyn Action>,
    journal: JournalWriter,
    interrupt: CancelToken,
    finished: FinishedView,
}

/// Concurrency groups by index, so the launch loop neither hashes nor clones group names.
struct Groups {
    /// Group of each node.
    of: Vec<Option<usize>>,
    limit: Vec<usize>,
    running: Vec<usize>,
}

impl Groups {
    fn new(nodes: &[Node], limits: &HashMap<String, usize>) -> Self {
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut limit = Vec::new();
        let of = nodes
            .iter()
            .map(|node| {
                let g = node.group.as_deref()?;
                Some(*index.entry(g).or_insert_with(|| {
                    limit.push(limits.get(g).copied().unwrap_or(usize::MAX));
                    limit.len() - 1
                }))
            })
            .collect();
        let running = vec![0; limit.len()];
        Groups { of, limit, running }
    }

    /// Take a slot of `node`'s group, if it has one free (always, without a group).
    fn try_take(&mut self, node: usize) -> bool {
        match self.of[node] {
            Some(g) if self.running[g] >= self.limit[g] => false,
            Some(g) => {
                self.running[g] += 1;
                true
            }
            None => true,
        }
    }

    fn release(&mut self, node: usize) {
        if let Some(g) = self.of[node] {
            self.running[g] = self.running[g].saturating_sub(1);
        }
    }
}

/// The state of one call to [`run`].
///
/// One loop owns every decision; actions run on tokio's blocking threads and report back
/// over a channel. Journal records are written in rounds ([`Run::commit`]): the outcomes
/// of the attempts that ended and the starts that are due, as one append (one fsync).
struct Run {
    shared: Arc<Shared>,
    announcer: Announcer,
    concurrency: usize,
    keep_going: bool,
    gate_poll: Duration,
    st: Vec<St>,
    /// Queued nodes in the order they became ready.
    ready: VecDeque<usize>,
    /// Gates among `ready`: while there are none, a full run queue ends the launch scan.
    ready_gates: usize,
    groups: Groups,
    /// Nodes holding a run slot: starting, executing, ending or waiting to retry.
    running: usize,
    /// Actions on blocking threads that have not reported back.
    executing: usize,
    live: Vec<Option<Live>>,
    timers: BinaryHeap<Reverse<Timer>>,
    ended_tx: mpsc::UnboundedSender<AttemptEnd>,
    ended_rx: mpsc::UnboundedReceiver<AttemptEnd>,
    /// Outcomes for the next commit.
    ended: Vec<Ended>,
    /// Rounds handed to the journal and not yet durable, oldest first.
    in_flight: VecDeque<Commit>,
    /// Failed last attempts in `in_flight`.
    failures_in_flight: usize,
    /// Retries whose delay is over: their `step_started` goes in the next commit.
    retries_due: Vec<usize>,
    waiting: Vec<usize>,
    failures: Vec<String>,
    /// Nodes whose dependencies may just have finished.
    to_check: Vec<usize>,
    /// The interrupt was passed on to the running attempts.
    interrupt_forwarded: bool,
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
    let n = nodes.len();
    let mut st = vec![St::Pending; n];
    let mut board = Board::default();
    for (i, p) in prior.iter().enumerate() {
        match p {
            Prior::Done(v) => {
                st[i] = St::Succeeded;
                board.set_output(i, v.clone());
                let state = if nodes[i].kind == NodeKind::Gate {
                    "approved"
                } else {
                    "succeeded"
                };
                board.set_result(i, state, None);
            }
            Prior::Skipped => {
                st[i] = St::Skipped;
                board.set_result(i, "skipped", None);
            }
            Prior::Pending => {}
        }
    }
    let (ended_tx, ended_rx) = mpsc::unbounded_channel();
    let mut run = Run {
        groups: Groups::new(&nodes, &opts.limits),
        shared: Arc::new(Shared {
            nodes,
            action,
            journal,
            interrupt,
            finished: FinishedView(Arc::new(std::sync::RwLock::new(board))),
        }),
        announcer: Announcer::new(opts.observer),
        concurrency: opts.concurrency.max(1),
        keep_going: opts.keep_going,
        gate_poll: opts.gate_poll,
        st,
        ready: VecDeque::new(),
        ready_gates: 0,
        running: 0,
        executing: 0,
        live: (0..n).map(|_| None).collect(),
        timers: BinaryHeap::new(),
        ended_tx,
        ended_rx,
        ended: Vec::new(),
        in_flight: VecDeque::new(),
        failures_in_flight: 0,
        retries_due: Vec::new(),
        waiting: Vec::new(),
        failures: Vec::new(),
        // Decide every pending node whose dependencies are all finished.
        to_check: (0..n).collect(),
        interrupt_forwarded: false,
    };
    run.drive().await
}

impl Run {
    async fn drive(&mut self) -> Result<Outcome, JournalError> {
        let shared = self.shared.clone();
        let interrupt = &shared.interrupt;
        let mut reports = Vec::new();
        loop {
            self.resolve().await?;
            self.commit().await?;
            if !self.to_check.is_empty() {
                continue;
            }

            // Nothing running and nothing launchable: finished, failed, cancelled, or
            // paused on gates that only a person (another shell, a later resume) can answer.
            if self.running == 0 && self.in_flight.is_empty() {
                let stopping = self.stopping();
                let launchable = self.ready.iter().any(|&i| {
                    !stopping
                        || (shared.nodes[i].when != When::Success && !interrupt.is_cancelled())
                });
                if !launchable
                    && (self.waiting.is_empty() || stopping || !shared.action.keep_waiting())
                {
                    break;
                }
            }

            // Wait for actions to end, a timer, a gate poll tick, or an interrupt.
            let next_timer = self.timers.peek().map(|Reverse(t)| t.at);
            tokio::select! {
                written = front_durable(&mut self.in_flight), if !self.in_flight.is_empty() => {
                    self.durable(written);
                }
                _ = self.ended_rx.recv_many(&mut reports, usize::MAX), if self.executing > 0 => {
                    for end in reports.drain(..) {
                        self.attempt_ended(end);
                    }
                }
                _ = tokio::time::sleep_until(next_timer.unwrap_or_else(tokio::time::Instant::now)), if next_timer.is_some() => {
                    self.fire_timers();
                }
                _ = tokio::time::sleep(self.gate_poll), if !self.waiting.is_empty() => {
                    for i in self.waiting.clone() {
                        self.poll_gate(i, false).await?;
                    }
                }
                // Guarded by our own flag, not by `is_cancelled`: an interrupt that lands
                // while the loop is busy must still reach the running steps.
                reason = interrupt.cancelled(), if !self.interrupt_forwarded => {
                    self.interrupt_forwarded = true;
                    self.forward_interrupt(reason);
                }
            }
        }
        let outcome = self.outcome();
        let last = match &outcome {
            Outcome::Succeeded => Event::RunFinished {
                status: FinalStatus::Succeeded,
            },
            Outcome::Failed(_) => Event::RunFinished {
                status: FinalStatus::Failed,
            },
            Outcome::Cancelled => Event::RunFinished {
                status: FinalStatus::Cancelled,
            },
            Outcome::Paused(w) => Event::RunPaused {
                reason: "waiting for gate approval".into(),
                waiting_on: w.clone(),
            },
        };
        self.emit_now(vec![last]).await?;
        Ok(outcome)
    }

    /// After an interrupt, or a failure without `keep_going`, only always/failure nodes start.
    fn stopping(&self) -> bool {
        self.shared.interrupt.is_cancelled() || self.failing_fast()
    }

    /// A settled failure stops the run (no `keep_going`) and no interrupt came: `success`
    /// nodes that never started will not start in this run, so they are finished as
    /// skipped, and the `always`/`failure` nodes after them can run. After an interrupt
    /// they stay pending instead: the run did not decide anything about them.
    fn failing_fast(&self) -> bool {
        !self.failures.is_empty() && !self.keep_going && !self.shared.interrupt.is_cancelled()
    }

    /// Why a node is skipped by fail-fast, for the journal and `status`.
    fn fail_fast_reason(&self) -> String {
        format!(
            "not started: the run stopped after {} failed (--keep-going runs independent steps on)",
            self.failures.join(", ")
        )
    }

    /// Finish as skipped every queued `success` node, once a failure stops the run.
    fn skip_unstarted(&mut self, skipped: &mut Vec<Event>) {
        if !self.failing_fast() || self.ready.is_empty() {
            return;
        }
        let shared = self.shared.clone();
        let nodes = &shared.nodes;
        let reason = self.fail_fast_reason();
        let mut keep = VecDeque::with_capacity(self.ready.len());
        for i in std::mem::take(&mut self.ready) {
            let node = &nodes[i];
            if node.when != When::Success {
                keep.push_back(i);
                continue;
            }
            if node.kind == NodeKind::Gate {
                self.ready_gates -= 1;
            }
            self.skip(i, reason.clone(), skipped);
        }
        self.ready = keep;
    }

    /// Finish `i` as skipped (the event goes in `skipped`) and look at its dependents.
    fn skip(&mut self, i: usize, reason: String, skipped: &mut Vec<Event>) {
        let shared = self.shared.clone();
        let node = &shared.nodes[i];
        self.st[i] = St::Skipped;
        skipped.push(Event::StepSkipped {
            step: node.name.clone(),
            reason,
        });
        shared.finished.write().set_result(i, "skipped", None);
        self.to_check.extend(node.dependents.iter().copied());
    }

    fn outcome(&mut self) -> Outcome {
        let nodes = &self.shared.nodes;
        if self.shared.interrupt.is_cancelled() {
            Outcome::Cancelled
        } else if !self.failures.is_empty() {
            Outcome::Failed(std::mem::take(&mut self.failures))
        } else if !self.waiting.is_empty() {
            Outcome::Paused(
                self.waiting
                    .iter()
                    .map(|&i| nodes[i].name.clone())
                    .collect(),
            )
        } else if self.st.iter().all(|s| s.finished()) {
            Outcome::Succeeded
        } else {
            // Unreachable in a valid DAG; report what is stuck rather than claim success.
            let stuck = (0..nodes.len())
                .filter(|&i| !self.st[i].finished())
                .map(|i| nodes[i].name.clone())
                .collect();
            Outcome::Failed(stuck)
        }
    }

    /// Queue or skip every node of `to_check` whose dependencies have all finished, in
    /// the order they were noted (so independent steps start in declaration order); the
    /// skips are journaled (one append) before anything downstream of them can start.
    async fn resolve(&mut self) -> Result<(), JournalError> {
        let mut skipped = Vec::new();
        self.skip_unstarted(&mut skipped);
        // A skip notes more nodes to look at: go round until none are left.
        while !self.to_check.is_empty() {
            for i in std::mem::take(&mut self.to_check) {
                self.check(i, &mut skipped);
            }
        }
        if !skipped.is_empty() {
            self.emit_now(skipped).await?;
        }
        Ok(())
    }

    /// Queue `i` if its dependencies finished and its `when` holds; skip it if they
    /// finished and it does not (noting the journal event in `skipped`).
    fn check(&mut self, i: usize, skipped: &mut Vec<Event>) {
        let shared = self.shared.clone();
        let nodes = &shared.nodes;
        let node = &nodes[i];
        if self.st[i] != St::Pending || !node.deps.iter().all(|&d| self.st[d].finished()) {
            return;
        }
        let go = match node.when {
            When::Success => node.deps.iter().all(|&d| self.st[d] == St::Succeeded),
            When::Always => true,
            When::Failure => node.deps.iter().any(|&d| self.st[d] == St::Failed),
        };
        if go && node.when == When::Success && self.failing_fast() {
            let reason = self.fail_fast_reason();
            return self.skip(i, reason, skipped);
        }
        if go {
            self.st[i] = St::Queued;
            if node.kind == NodeKind::Gate {
                self.ready_gates += 1;
            }
            self.ready.push_back(i);
            return;
        }
        let reason = match node.when {
            When::Failure => "no dependency failed".to_string(),
            _ => {
                let bad: Vec<&str> = node
                    .deps
                    .iter()
                    .filter(|&&d| self.st[d] != St::Succeeded)
                    .map(|&d| nodes[d].name.as_str())
                    .collect();
                format!("dependency did not succeed: {}", bad.join(", "))
            }
        };
        self.skip(i, reason, skipped);
    }

    /// Hand one round to the journal without waiting for it: the outcomes of the
    /// attempts that ended, the starts of retries that are due and the first starts of
    /// what the limits let start now, as one append. What a round allows (settling the
    /// ended steps, so their dependents get looked at; running the started attempts)
    /// happens in [`Run::durable`], once it is on disk.
    ///
    /// Several rounds may be in flight; the writer takes them in order and shares one
    /// fsync among all that are pending, so the loop never idles on the disk. A step
    /// started in a round never depends on a step ending in it or in a later one: its
    /// dependencies were settled, so durable, before it was queued.
    async fn commit(&mut self) -> Result<(), JournalError> {
        let shared = self.shared.clone();
        let nodes = &shared.nodes;
        // Attempts that ended since the last round join this one.
        while let Ok(end) = self.ended_rx.try_recv() {
            self.attempt_ended(end);
        }
        let ended = std::mem::take(&mut self.ended);
        let mut starts = std::mem::take(&mut self.retries_due);
        let retries = starts.len();
        let failures = ended
            .iter()
            .filter(|e| e.result.is_err() && !e.will_retry)
            .count();
        // A failure on its way to the journal stops new steps just as a settled one would.
        let failing = failures + self.failures_in_flight > 0;
        starts.extend(self.pick_launches(failing).await?);
        if ended.is_empty() && starts.is_empty() {
            return Ok(());
        }
        let mut events = Vec::with_capacity(ended.len() + starts.len());
        for e in &ended {
            let step = nodes[e.node].name.clone();
            events.push(match &e.result {
                Ok(v) => Event::StepSucceeded {
                    step,
                    attempt: e.attempt,
                    output: v.clone(),
                    verified: false,
                },
                Err(error) => Event::StepFailed {
                    step,
                    attempt: e.attempt,
                    error: error.clone(),
                    will_retry: e.will_retry,
                },
            });
        }
        for (k, &i) in starts.iter().enumerate() {
            let attempt = if k < retries {
                self.live[i].as_ref().map_or(1, |l| l.attempt)
            } else {
                1
            };
            events.push(Event::StepStarted {
                step: nodes[i].name.clone(),
                attempt,
            });
        }
        let submitted = shared.journal.submit(events);
        self.failures_in_flight += failures;
        let durable = match submitted {
            Ok(d) => d,
            Err(e) => {
                self.failures_in_flight -= failures;
                self.not_durable(ended, starts, &e);
                return Ok(());
            }
        };
        self.in_flight.push_back(Commit {
            durable,
            ended,
            starts,
            failures,
        });
        Ok(())
    }

    /// Append `events` and wait until they are durable. The rounds in flight are
    /// settled first, so the display shows every event in journal order.
    async fn emit_now(&mut self, events: Vec<Event>) -> Result<(), JournalError> {
        while !self.in_flight.is_empty() {
            let written = front_durable(&mut self.in_flight).await;
            self.durable(written);
        }
        emit(&self.shared.journal, &self.announcer, events).await
    }

    /// The oldest round in flight was written (or failed): act on it.
    fn durable(&mut self, written: Result<Vec<Record>, JournalError>) {
        let Some(commit) = self.in_flight.pop_front() else {
            return;
        };
        self.failures_in_flight -= commit.failures;
        let records = match written {
            Ok(records) => records,
            Err(e) => return self.not_durable(commit.ended, commit.starts, &e),
        };
        self.announcer.tell(records);
        let interrupted = self.shared.interrupt.is_cancelled();
        for e in commit.ended {
            if !e.will_retry {
                self.release(e.node);
                self.settle(e.node, e.result);
                continue;
            }
            if interrupted {
                // No retry after an interrupt; the failed attempt is on record.
                self.release(e.node);
                self.st[e.node] = St::Pending;
                continue;
            }
            if let Some(live) = self.live[e.node].as_mut() {
                live.phase = Phase::RetryWait;
                self.timers.push(Reverse(Timer {
                    at: crate::duration::deadline_after(live.retry_delay).into(),
                    node: e.node,
                    attempt: live.attempt,
                    kind: TimerKind::Retry,
                }));
                live.retry_delay = live
                    .retry_delay
                    .saturating_mul(2)
                    .min(crate::duration::MAX_DURATION);
            }
        }
        for i in commit.starts {
            self.start_attempt(i);
        }
    }

    /// A round could not be journaled. As when each step journaled for itself: a step
    /// whose end or start is not on record fails (the latter without running).
    fn not_durable(&mut self, ended: Vec<Ended>, starts: Vec<usize>, e: &JournalError) {
        let message = format!("journal: {e}");
        for i in ended.iter().map(|e| e.node).chain(starts) {
            self.release(i);
            self.settle(i, Err(message.clone()));
        }
    }

    /// Take the ready nodes the limits let start now, reserving their slots; gates among
    /// them are opened and asked on the spot. The rest keep their place in the queue.
    async fn pick_launches(&mut self, failing: bool) -> Result<Vec<usize>, JournalError> {
        let shared = self.shared.clone();
        let nodes = &shared.nodes;
        let interrupted = shared.interrupt.is_cancelled();
        let stop_new = self.stopping() || (failing && !self.keep_going);
        let mut deferred = Vec::new();
        let mut launches = Vec::new();
        while let Some(i) = self.ready.pop_front() {
            let node = &nodes[i];
            if node.kind == NodeKind::Gate {
                self.ready_gates -= 1;
            }
            // Once stopping, only always/failure nodes still start (and none after an interrupt).
            if stop_new && (node.when == When::Success || interrupted) {
                deferred.push(i);
                continue;
            }
            if node.kind == NodeKind::Gate {
                self.st[i] = St::Waiting;
                let ev = Event::GateWaiting {
                    gate: node.name.clone(),
                };
                self.emit_now(vec![ev]).await?;
                self.waiting.push(i);
                self.poll_gate(i, true).await?;
                continue;
            }
            if self.running >= self.concurrency {
                deferred.push(i);
                if self.ready_gates == 0 && !stop_new {
                    // Every slot is taken and only steps are left: none of them can start.
                    break;
                }
                continue;
            }
            if !self.groups.try_take(i) {
                deferred.push(i);
                continue;
            }
            self.running += 1;
            self.st[i] = St::Running;
            self.live[i] = Some(Live {
                phase: Phase::Starting,
                attempt: 1,
                token: CancelToken::new(),
                timed_out: false,
                retry_delay: node.retry_delay,
                slot: true,
            });
            launches.push(i);
        }
        for &i in deferred.iter().rev() {
            if nodes[i].kind == NodeKind::Gate {
                self.ready_gates += 1;
            }
            self.ready.push_front(i);
        }
        Ok(launches)
    }

    /// Run the current attempt of `i` (its `step_started` is durable) on a blocking thread.
    fn start_attempt(&mut self, i: usize) {
        let interrupt = self.shared.interrupt.reason();
        let Some(live) = self.live[i].as_mut() else {
            return;
        };
        if interrupt.is_some() {
            // Interrupted while the batch was being written: the action does not run,
            // and the step is left `started` (unknown on resume).
            self.release(i);
            self.st[i] = St::Pending;
            return;
        }
        live.phase = Phase::Executing;
        live.timed_out = false;
        let attempt = live.attempt;
        let token = live.token.clone();
        self.executing += 1;
        if let Some(d) = self.shared.nodes[i].timeout {
            self.timers.push(Reverse(Timer {
                at: crate::duration::deadline_after(d).into(),
                node: i,
                attempt,
                kind: TimerKind::Timeout,
            }));
        }
        let shared = self.shared.clone();
        let tx = self.ended_tx.clone();
        // Dropping the handle detaches the thread; it always reports over the channel,
        // which the run loop drains before it returns.
        drop(tokio::task::spawn_blocking(move || {
            let run = || shared.action.run(i, attempt, &token, &shared.finished);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                .unwrap_or_else(|panic| Err(format!("step panicked: {}", panic_text(&*panic))));
            let _ = tx.send(AttemptEnd {
                node: i,
                attempt,
                result,
            });
        }));
    }

    /// An action returned: decide what its attempt amounts to, for the next commit.
    fn attempt_ended(&mut self, end: AttemptEnd) {
        let i = end.node;
        let interrupt = &self.shared.interrupt;
        let node = &self.shared.nodes[i];
        let Some(live) = self.live[i].as_mut() else {
            return;
        };
        if live.phase != Phase::Executing || live.attempt != end.attempt {
            return;
        }
        self.executing -= 1;
        let result = if live.timed_out {
            let limit = node.timeout.unwrap_or_default();
            Err(format!(
                "timed out after {}",
                crate::duration::format_duration(limit)
            ))
        } else {
            end.result
        };
        let interrupted = live.token.reason() == Some(CancelReason::Interrupted);
        if interrupted || (interrupt.is_cancelled() && result.is_err()) {
            // Left `started` in the journal: unknown on resume.
            self.release(i);
            self.st[i] = St::Pending;
            return;
        }
        live.phase = Phase::Ending;
        let will_retry = result.is_err()
            && live.attempt <= node.retries
            && (live.timed_out || self.shared.action.may_retry(i));
        if will_retry {
            live.attempt += 1;
            // A fresh token: the old one may carry this attempt's timeout.
            live.token = CancelToken::new();
        } else {
            live.slot = false;
            self.free_slot(i);
        }
        self.ended.push(Ended {
            node: i,
            attempt: end.attempt,
            result,
            will_retry,
        });
    }

    /// Act on every timer that is due: cancel timed-out attempts, queue due retries.
    fn fire_timers(&mut self) {
        let now = tokio::time::Instant::now();
        while let Some(Reverse(t)) = self.timers.peek().copied() {
            if t.at > now {
                break;
            }
            self.timers.pop();
            let Some(live) = self.live[t.node].as_mut() else {
                continue;
            };
            if live.attempt != t.attempt {
                continue;
            }
            match (t.kind, live.phase) {
                (TimerKind::Timeout, Phase::Executing) if !live.timed_out => {
                    live.timed_out = true;
                    live.token.cancel(CancelReason::Timeout);
                }
                (TimerKind::Retry, Phase::RetryWait) => {
                    live.phase = Phase::RetryDue;
                    self.retries_due.push(t.node);
                }
                _ => {}
            }
        }
    }

    /// Pass the interrupt on: running actions are asked to stop, pending retries dropped
    /// (their failed attempt is on record).
    fn forward_interrupt(&mut self, reason: CancelReason) {
        for i in 0..self.live.len() {
            let Some(live) = &self.live[i] else {
                continue;
            };
            match live.phase {
                Phase::Executing => live.token.cancel(reason),
                Phase::RetryWait | Phase::RetryDue => {
                    self.release(i);
                    self.st[i] = St::Pending;
                }
                // Starting checks the interrupt before it runs anything; Ending is
                // journaled by the next commit.
                Phase::Starting | Phase::Ending => {}
            }
        }
        self.retries_due.clear();
    }

    /// Free the run slot of a node that stopped running.
    fn release(&mut self, i: usize) {
        if let Some(live) = self.live[i].take() {
            if live.slot {
                self.free_slot(i);
            }
        }
    }

    fn free_slot(&mut self, i: usize) {
        self.running -= 1;
        self.groups.release(i);
    }

    /// Record a node's final result and schedule its dependents for a look.
    fn settle(&mut self, i: usize, result: Result<Value, String>) {
        let shared = self.shared.clone();
        let mut board = shared.finished.write();
        match result {
            Ok(v) => {
                self.st[i] = St::Succeeded;
                board.set_output(i, v);
                board.set_result(i, "succeeded", None);
            }
            Err(e) => {
                self.st[i] = St::Failed;
                self.failures.push(shared.nodes[i].name.clone());
                board.set_result(i, "failed", Some(e));
            }
        }
        drop(board);
        self.to_check
            .extend(shared.nodes[i].dependents.iter().copied());
    }

    async fn poll_gate(&mut self, i: usize, first: bool) -> Result<(), JournalError> {
        let shared = self.shared.clone();
        let nodes = &shared.nodes;
        match shared.action.gate(i, first) {
            GateState::Waiting => {}
            GateState::Approved => {
                self.waiting.retain(|&w| w != i);
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
                board.set_result(i, "approved", None);
                drop(board);
                self.to_check.extend(nodes[i].dependents.iter().copied());
            }
            GateState::Rejected(why) => {
                self.waiting.retain(|&w| w != i);
                self.st[i] = St::Failed;
                shared
                    .finished
                    .write()
                    .set_result(i, "rejected", Some(why.clone()));
                self.failures
                    .push(format!("{} (rejected: {why})", nodes[i].name));
                self.to_check.extend(nodes[i].dependents.iter().copied());
            }
        }
        Ok(())
    }
}

/// The oldest round in flight, once durable (pending while there is none).
async fn front_durable(in_flight: &mut VecDeque<Commit>) -> Result<Vec<Record>, JournalError> {
    std::future::poll_fn(|cx| match in_flight.front_mut() {
        Some(c) => std::pin::Pin::new(&mut c.durable).poll(cx),
        None => std::task::Poll::Pending,
    })
    .await
}

/// The message of a caught panic, when it has one.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::{read_journal, Record, JOURNAL_FILE};
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    /// An action made of a closure; gates are approved at once.
    struct Probe<F>(F);

    impl<F> Action for Probe<F>
    where
        F: Fn(usize, u32, &CancelToken) -> Result<Value, String> + Send + Sync + 'static,
    {
        fn run(
            &self,
            node: usize,
            attempt: u32,
            cancel: &CancelToken,
            _done: &FinishedView,
        ) -> Result<Value, String> {
            (self.0)(node, attempt, cancel)
        }

        fn gate(&self, _node: usize, _first: bool) -> GateState {
            GateState::Approved
        }
    }

    /// Steps named by `spec`, each with the indices of its dependencies.
    fn dag(spec: &[(&str, &[usize])]) -> Vec<Node> {
        let mut nodes: Vec<Node> = spec
            .iter()
            .map(|(name, deps)| Node {
                name: name.to_string(),
                kind: NodeKind::Step,
                deps: deps.to_vec(),
                dependents: vec![],
                when: When::Success,
                retries: 0,
                retry_delay: Duration::from_millis(1),
                timeout: None,
                group: None,
            })
            .collect();
        for i in 0..nodes.len() {
            for d in nodes[i].deps.clone() {
                nodes[d].dependents.push(i);
            }
        }
        nodes
    }

    /// `layers` layers of `width` steps, each depending on two steps of the layer above.
    fn layered(layers: usize, width: usize) -> Vec<Node> {
        let names: Vec<String> = (0..layers * width)
            .map(|i| format!("s{}-{}", i / width, i % width))
            .collect();
        let deps: Vec<Vec<usize>> = (0..layers * width)
            .map(|i| {
                let (l, w) = (i / width, i % width);
                if l == 0 {
                    vec![]
                } else {
                    let above = (l - 1) * width;
                    let mut d = vec![above + w, above + (w + 1) % width];
                    d.dedup();
                    d
                }
            })
            .collect();
        let spec: Vec<(&str, &[usize])> = names
            .iter()
            .zip(&deps)
            .map(|(n, d)| (n.as_str(), d.as_slice()))
            .collect();
        dag(&spec)
    }

    fn journal_in(dir: &Path) -> (JournalWriter, PathBuf) {
        let first = Event::sample_run_started(&[]);
        let (w, _) = JournalWriter::create(dir, first).expect("create journal");
        (w, dir.join(JOURNAL_FILE))
    }

    fn options(concurrency: usize) -> Options {
        Options {
            concurrency,
            gate_poll: Duration::from_millis(10),
            ..Options::default()
        }
    }

    async fn run_with<F>(
        nodes: Vec<Node>,
        opts: Options,
        f: F,
        interrupt: CancelToken,
    ) -> (Outcome, Vec<Record>)
    where
        F: Fn(usize, u32, &CancelToken) -> Result<Value, String> + Send + Sync + 'static,
    {
        let tmp = tempfile::tempdir().expect("temp dir");
        let (journal, path) = journal_in(tmp.path());
        let prior = vec![Prior::Pending; nodes.len()];
        let outcome = run(
            Arc::new(nodes),
            prior,
            opts,
            Arc::new(Probe(f)),
            journal,
            interrupt,
        )
        .await
        .expect("run");
        let records = read_journal(&path).expect("read journal").records;
        (outcome, records)
    }

    /// The journal's events about `step`, as `type@attempt` strings.
    fn history(records: &[Record], step: &str) -> Vec<String> {
        records
            .iter()
            .filter(|r| r.event.step() == Some(step))
            .map(|r| match &r.event {
                Event::StepStarted { attempt, .. } => format!("started@{attempt}"),
                Event::StepSucceeded { attempt, .. } => format!("succeeded@{attempt}"),
                Event::StepFailed {
                    attempt,
                    will_retry,
                    ..
                } => format!(
                    "failed@{attempt}{}",
                    if *will_retry { "+retry" } else { "" }
                ),
                Event::StepSkipped { .. } => "skipped".to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn started_is_durable_before_the_action_and_succeeded_before_any_dependent() {
        let tmp = tempfile::tempdir().unwrap();
        let (journal, path) = journal_in(tmp.path());
        let nodes = layered(6, 10);
        let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
        let deps: Vec<Vec<usize>> = nodes.iter().map(|n| n.deps.clone()).collect();
        let violations = Arc::new(Mutex::new(Vec::new()));
        let seen = violations.clone();
        let journal_path = path.clone();
        // Each action reads the journal file as a crash would leave it: what is there
        // must already include its own start and every dependency's success.
        let action = Probe(move |node: usize, attempt: u32, _: &CancelToken| {
            let records = read_journal(&journal_path)
                .map_err(|e| e.to_string())?
                .records;
            let has = |want: &dyn Fn(&Event) -> bool| records.iter().any(|r| want(&r.event));
            let me = &names[node];
            if !has(
                &|e| matches!(e, Event::StepStarted { step, attempt: a } if step == me && *a == attempt),
            ) {
                seen.lock()
                    .unwrap()
                    .push(format!("{me} ran before its start was on disk"));
            }
            for &d in &deps[node] {
                let dep = &names[d];
                if !has(&|e| matches!(e, Event::StepSucceeded { step, .. } if step == dep)) {
                    seen.lock()
                        .unwrap()
                        .push(format!("{me} ran before {dep}'s success was on disk"));
                }
            }
            Ok(Value::Null)
        });
        let outcome = run(
            Arc::new(nodes),
            vec![Prior::Pending; 60],
            options(8),
            Arc::new(action),
            journal,
            CancelToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(outcome, Outcome::Succeeded);
        assert_eq!(*violations.lock().unwrap(), Vec::<String>::new());
        let records = read_journal(&path).unwrap().records;
        for l in 0..6 {
            for w in 0..10 {
                assert_eq!(
                    history(&records, &format!("s{l}-{w}")),
                    ["started@1", "succeeded@1"]
                );
            }
        }
        assert!(matches!(
            records.last().map(|r| &r.event),
            Some(Event::RunFinished {
                status: FinalStatus::Succeeded
            })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrency_and_group_limits_are_never_exceeded() {
        let mut nodes = layered(3, 12);
        for (i, n) in nodes.iter_mut().enumerate() {
            if i % 2 == 0 {
                n.group = Some("db".into());
            }
        }
        let is_db: Vec<bool> = nodes.iter().map(|n| n.group.is_some()).collect();
        let now = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let peak = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
        let (n2, p2) = (now.clone(), peak.clone());
        let mut opts = options(4);
        opts.limits.insert("db".into(), 2);
        let (outcome, _) = run_with(
            nodes,
            opts,
            move |node, _, _| {
                let all = n2.0.fetch_add(1, Ordering::SeqCst) + 1;
                p2.0.fetch_max(all, Ordering::SeqCst);
                if is_db[node] {
                    let db = n2.1.fetch_add(1, Ordering::SeqCst) + 1;
                    p2.1.fetch_max(db, Ordering::SeqCst);
                }
                // Long enough for others to overlap if the limits let them.
                std::thread::sleep(Duration::from_millis(5));
                if is_db[node] {
                    n2.1.fetch_sub(1, Ordering::SeqCst);
                }
                n2.0.fetch_sub(1, Ordering::SeqCst);
                Ok(Value::Null)
            },
            CancelToken::new(),
        )
        .await;
        assert_eq!(outcome, Outcome::Succeeded);
        assert!(peak.0.load(Ordering::SeqCst) <= 4, "{peak:?}");
        assert!(peak.1.load(Ordering::SeqCst) <= 2, "{peak:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_attempt_is_on_record_before_the_retry_starts() {
        let mut nodes = dag(&[("flaky", &[]), ("after", &[0])]);
        nodes[0].retries = 2;
        let (outcome, records) = run_with(
            nodes,
            options(4),
            |node, attempt, _| match (node, attempt) {
                (0, 1 | 2) => Err(format!("transient {attempt}")),
                _ => Ok(Value::from(attempt)),
            },
            CancelToken::new(),
        )
        .await;
        assert_eq!(outcome, Outcome::Succeeded);
        assert_eq!(
            history(&records, "flaky"),
            [
                "started@1",
                "failed@1+retry",
                "started@2",
                "failed@2+retry",
                "started@3",
                "succeeded@3"
            ]
        );
        assert_eq!(history(&records, "after"), ["started@1", "succeeded@1"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn retries_run_out_and_dependents_are_skipped() {
        let mut nodes = dag(&[("bad", &[]), ("after", &[0])]);
        nodes[0].retries = 1;
        let (outcome, records) = run_with(
            nodes,
            options(4),
            |_, _, _| Err("no".into()),
            CancelToken::new(),
        )
        .await;
        assert_eq!(outcome, Outcome::Failed(vec!["bad".into()]));
        assert_eq!(
            history(&records, "bad"),
            ["started@1", "failed@1+retry", "started@2", "failed@2"]
        );
        assert_eq!(history(&records, "after"), ["skipped"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_failure_no_new_step_starts_unless_keep_going() {
        for keep_going in [false, true] {
            let nodes = dag(&[("bad", &[]), ("b", &[]), ("c", &[])]);
            let mut opts = options(1);
            opts.keep_going = keep_going;
            let (outcome, records) = run_with(
                nodes,
                opts,
                |node, _, _| {
                    if node == 0 {
                        Err("no".into())
                    } else {
                        Ok(Value::Null)
                    }
                },
                CancelToken::new(),
            )
            .await;
            assert_eq!(outcome, Outcome::Failed(vec!["bad".into()]));
            let others = [history(&records, "b"), history(&records, "c")];
            if keep_going {
                assert_eq!(others, [["started@1", "succeeded@1"]; 2]);
            } else {
                // The failure was still on its way to the disk when the slot came free;
                // once it settled, the steps that never started were finished as skipped.
                assert_eq!(others, [["skipped"]; 2]);
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fail_fast_left_unstarted_steps_pending_and_the_always_report_never_ran() {
        // prep → patch-0..patch-4 → report (always) → after-report (success)
        let mut spec: Vec<(&str, &[usize])> = vec![("prep", &[])];
        let names = ["patch-0", "patch-1", "patch-2", "patch-3", "patch-4"];
        for n in names {
            spec.push((n, &[0]));
        }
        spec.push(("report", &[1, 2, 3, 4, 5]));
        spec.push(("after-report", &[6]));
        let mut nodes = dag(&spec);
        nodes[6].when = When::Always;
        let (outcome, records) = run_with(
            nodes,
            options(1),
            |node, _, _| {
                if node == 2 {
                    Err("patch failed".into())
                } else {
                    Ok(Value::Null)
                }
            },
            CancelToken::new(),
        )
        .await;
        assert_eq!(outcome, Outcome::Failed(vec!["patch-1".into()]));
        assert_eq!(history(&records, "patch-0"), ["started@1", "succeeded@1"]);
        assert_eq!(history(&records, "patch-1"), ["started@1", "failed@1"]);
        for n in ["patch-2", "patch-3", "patch-4"] {
            assert_eq!(history(&records, n), ["skipped"], "{n}");
        }
        let reason = records.iter().find_map(|r| match &r.event {
            Event::StepSkipped { step, reason } if step == "patch-3" => Some(reason.clone()),
            _ => None,
        });
        let reason = reason.expect("skip reason");
        assert!(
            reason.contains("patch-1") && reason.contains("--keep-going"),
            "{reason}"
        );
        assert_eq!(history(&records, "report"), ["started@1", "succeeded@1"]);
        // A `success` step after the report does not start: the run is stopping.
        assert_eq!(history(&records, "after-report"), ["skipped"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupt_leaves_unstarted_steps_pending_for_resume() {
        let nodes = dag(&[("a", &[]), ("b", &[0])]);
        let interrupt = CancelToken::new();
        let i2 = interrupt.clone();
        let (outcome, records) = run_with(
            nodes,
            options(1),
            move |_, _, cancel| {
                i2.cancel(CancelReason::Interrupted);
                while !cancel.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err("interrupted".into())
            },
            interrupt,
        )
        .await;
        assert_eq!(outcome, Outcome::Cancelled);
        assert!(history(&records, "b").is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timeout_cancels_the_attempt_and_fails_it() {
        let mut nodes = dag(&[("slow", &[])]);
        nodes[0].timeout = Some(Duration::from_millis(20));
        let reason = Arc::new(Mutex::new(None));
        let r2 = reason.clone();
        let (outcome, records) = run_with(
            nodes,
            options(4),
            move |_, _, cancel| {
                while !cancel.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                *r2.lock().unwrap() = cancel.reason();
                Ok(Value::Null)
            },
            CancelToken::new(),
        )
        .await;
        assert_eq!(outcome, Outcome::Failed(vec!["slow".into()]));
        assert_eq!(*reason.lock().unwrap(), Some(CancelReason::Timeout));
        let failed = records.iter().find_map(|r| match &r.event {
            Event::StepFailed { error, .. } => Some(error.clone()),
            _ => None,
        });
        assert_eq!(failed.as_deref(), Some("timed out after 20ms"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupt_stops_running_steps_and_leaves_them_started() {
        let nodes = dag(&[("long", &[]), ("next", &[0])]);
        let interrupt = CancelToken::new();
        let trigger = interrupt.clone();
        let (outcome, records) = run_with(
            nodes,
            options(4),
            move |_, _, cancel| {
                // Ctrl-C arrives while the step runs.
                trigger.cancel(CancelReason::Interrupted);
                while !cancel.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err("killed".into())
            },
            interrupt,
        )
        .await;
        assert_eq!(outcome, Outcome::Cancelled);
        assert_eq!(history(&records, "long"), ["started@1"]);
        assert!(history(&records, "next").is_empty());
        assert!(matches!(
            records.last().map(|r| &r.event),
            Some(Event::RunFinished {
                status: FinalStatus::Cancelled
            })
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interrupt_during_a_retry_delay_starts_no_further_attempt() {
        let mut nodes = dag(&[("flaky", &[])]);
        nodes[0].retries = 3;
        nodes[0].retry_delay = Duration::from_secs(3600);
        let interrupt = CancelToken::new();
        let trigger = interrupt.clone();
        let mut opts = options(4);
        // Ctrl-C once the failed attempt is on disk, while the retry delay runs.
        opts.observer = Some(Arc::new(move |ev: &Event| {
            if matches!(
                ev,
                Event::StepFailed {
                    will_retry: true,
                    ..
                }
            ) {
                trigger.cancel(CancelReason::Interrupted);
            }
        }));
        let (outcome, records) =
            run_with(nodes, opts, |_, _, _| Err("transient".into()), interrupt).await;
        assert_eq!(outcome, Outcome::Cancelled);
        assert_eq!(history(&records, "flaky"), ["started@1", "failed@1+retry"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_observer_is_told_every_event_in_journal_order_before_run_returns() {
        let nodes = layered(4, 6);
        let told = Arc::new(Mutex::new(Vec::new()));
        let sink = told.clone();
        let mut opts = options(3);
        opts.keep_going = true;
        opts.observer = Some(Arc::new(move |ev: &Event| {
            sink.lock().unwrap().push(ev.clone());
        }));
        let (_, records) = run_with(
            nodes,
            opts,
            // One failure, so skips are told too.
            |node, _, _| {
                if node == 7 {
                    Err("no".into())
                } else {
                    Ok(Value::Null)
                }
            },
            CancelToken::new(),
        )
        .await;
        let journaled: Vec<Event> = records[1..].iter().map(|r| r.event.clone()).collect();
        assert!(journaled
            .iter()
            .any(|e| matches!(e, Event::StepSkipped { .. })));
        assert_eq!(*told.lock().unwrap(), journaled);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panicking_action_fails_its_step_and_the_run_goes_on_to_its_end() {
        let nodes = dag(&[("boom", &[]), ("fine", &[])]);
        let mut opts = options(4);
        opts.keep_going = true;
        let (outcome, records) = run_with(
            nodes,
            opts,
            |node, _, _| {
                if node == 0 {
                    panic!("kaboom");
                }
                Ok(Value::Null)
            },
            CancelToken::new(),
        )
        .await;
        assert_eq!(outcome, Outcome::Failed(vec!["boom".into()]));
        let error = records.iter().find_map(|r| match &r.event {
            Event::StepFailed { error, .. } => Some(error.clone()),
            _ => None,
        });
        assert_eq!(error.as_deref(), Some("step panicked: kaboom"));
        assert_eq!(history(&records, "fine"), ["started@1", "succeeded@1"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outputs_reach_later_steps_and_prior_results_are_not_rerun() {
        let nodes = dag(&[("a", &[]), ("b", &[0]), ("c", &[1])]);
        let ran = Arc::new(Mutex::new(Vec::new()));
        let r2 = ran.clone();
        let tmp = tempfile::tempdir().unwrap();
        let (journal, path) = journal_in(tmp.path());
        let prior = vec![Prior::Done(Value::from(7)), Prior::Pending, Prior::Pending];
        /// What each step saw: its index, its dependency's output, `any_output`.
        type Seen = Vec<(usize, Option<Value>, bool)>;
        struct Reader(Arc<Mutex<Seen>>);
        impl Action for Reader {
            fn run(
                &self,
                node: usize,
                _: u32,
                _: &CancelToken,
                done: &FinishedView,
            ) -> Result<Value, String> {
                let seen = (node, done.output(node - 1), done.any_output());
                self.0.lock().unwrap().push(seen);
                Ok(Value::Null)
            }
            fn gate(&self, _: usize, _: bool) -> GateState {
                GateState::Approved
            }
        }
        let outcome = run(
            Arc::new(nodes),
            prior,
            options(4),
            Arc::new(Reader(r2)),
            journal,
            CancelToken::new(),
        )
        .await
        .unwrap();
        assert_eq!(outcome, Outcome::Succeeded);
        assert_eq!(
            *ran.lock().unwrap(),
            [
                (1, Some(Value::from(7)), true),
                (2, Some(Value::Null), true)
            ]
        );
        let records = read_journal(&path).unwrap().records;
        assert!(history(&records, "a").is_empty());
    }
}
