//! The scheduler: runs opaque actions over a DAG on tokio, with concurrency and group
//! limits, `when` conditions, retries, timeouts, fail-fast and cancellation.
//!
//! It knows nothing about Rhai: an [`Action`] runs one attempt of one node on a blocking
//! thread. Every state change goes to the journal and is durable before its consequence:
//! `step_started` before the action runs, `step_succeeded` before any dependent starts.

use crate::cancel::{CancelReason, CancelToken};
use crate::dsl::When;
use crate::journal::{Event, FinalStatus, JournalError, JournalWriter};
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;

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
pub struct FinishedView(Arc<std::sync::RwLock<Finished>>);

impl FinishedView {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Finished> {
        self.0.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Output of node `i`, if it succeeded.
    pub fn output(&self, i: usize) -> Option<Value> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .outputs
            .get(&i)
            .cloned()
    }

    /// Outcome of node `i`, if it finished.
    pub fn result(&self, i: usize) -> Option<NodeResult> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .results
            .get(&i)
            .cloned()
    }

    /// True when some finished node produced an output other than null.
    pub fn any_output(&self) -> bool {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .outputs
            .values()
            .any(|v| !v.is_null())
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

// Append durably, then tell the observer.
async fn emit(
    journal: &JournalWriter,
    observer: &Option<Observer>,
    events: Vec<Event>,
) -> Result<(), JournalError> {
    let records = journal.append(events).await?;
    if let Some(o) = observer {
        for r in &records {
            o(&r.event);
        }
    }
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

struct Done {
    node: usize,
    result: Result<Value, String>,
    cancelled: bool,
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
    let mut finished = Finished::default();
    for (i, p) in prior.iter().enumerate() {
        match p {
            Prior::Done(v) => {
                st[i] = St::Succeeded;
                finished.outputs.insert(i, v.clone());
                let state = if nodes[i].kind == NodeKind::Gate {
                    "approved"
                } else {
                    "succeeded"
                };
                finished
                    .results
                    .insert(i, NodeResult { state, error: None });
            }
            Prior::Skipped => {
                st[i] = St::Skipped;
                finished.results.insert(
                    i,
                    NodeResult {
                        state: "skipped",
                        error: None,
                    },
                );
            }
            Prior::Pending => {}
        }
    }
    let mut ready: VecDeque<usize> = VecDeque::new();
    let mut group_running: HashMap<String, usize> = HashMap::new();
    let mut running = 0usize;
    let mut waiting: Vec<usize> = Vec::new();
    let mut failures: Vec<String> = Vec::new();
    let mut tasks: JoinSet<Done> = JoinSet::new();
    let shared_finished = FinishedView(Arc::new(std::sync::RwLock::new(finished)));
    let mut tokens: HashMap<usize, CancelToken> = HashMap::new();

    // Decide every pending node whose dependencies are all finished.
    let mut to_check: Vec<usize> = (0..n).collect();
    let mut skipped_events = Vec::new();
    loop {
        // 1. Resolve nodes whose dependencies have finished.
        while let Some(i) = to_check.pop() {
            if st[i] != St::Pending || !nodes[i].deps.iter().all(|&d| st[d].finished()) {
                continue;
            }
            let dep_failed = nodes[i].deps.iter().any(|&d| st[d] == St::Failed);
            let all_ok = nodes[i].deps.iter().all(|&d| st[d] == St::Succeeded);
            let go = match nodes[i].when {
                When::Success => all_ok,
                When::Always => true,
                When::Failure => dep_failed,
            };
            if go {
                st[i] = St::Queued;
                ready.push_back(i);
            } else {
                st[i] = St::Skipped;
                let reason = match nodes[i].when {
                    When::Failure => "no dependency failed".to_string(),
                    _ => {
                        let bad: Vec<&str> = nodes[i]
                            .deps
                            .iter()
                            .filter(|&&d| st[d] != St::Succeeded)
                            .map(|&d| nodes[d].name.as_str())
                            .collect();
                        format!("dependency did not succeed: {}", bad.join(", "))
                    }
                };
                skipped_events.push(Event::StepSkipped {
                    step: nodes[i].name.clone(),
                    reason,
                });
                shared_finished.write().results.insert(
                    i,
                    NodeResult {
                        state: "skipped",
                        error: None,
                    },
                );
                to_check.extend(nodes[i].dependents.iter().copied());
            }
        }
        if !skipped_events.is_empty() {
            emit(
                &journal,
                &opts.observer,
                std::mem::take(&mut skipped_events),
            )
            .await?;
        }

        // 2. Launch what limits allow (fail-fast: after a failure only always/failure nodes).
        let stop_new = interrupt.is_cancelled() || (!failures.is_empty() && !opts.keep_going);
        let mut deferred = VecDeque::new();
        while let Some(i) = ready.pop_front() {
            let node = &nodes[i];
            // Once stopping, only always/failure nodes still start (and none after an interrupt).
            if stop_new && (node.when == When::Success || interrupt.is_cancelled()) {
                deferred.push_back(i);
                continue;
            }
            if node.kind == NodeKind::Gate {
                st[i] = St::Waiting;
                emit(
                    &journal,
                    &opts.observer,
                    vec![Event::GateWaiting {
                        gate: node.name.clone(),
                    }],
                )
                .await?;
                waiting.push(i);
                poll_gate(
                    i,
                    true,
                    &*action,
                    &mut st,
                    &mut waiting,
                    &mut failures,
                    &nodes,
                    &journal,
                    &mut to_check,
                    &shared_finished,
                    &opts.observer,
                )
                .await?;
                continue;
            }
            if running >= opts.concurrency.max(1) {
                deferred.push_back(i);
                continue;
            }
            if let Some(g) = &node.group {
                let limit = opts.limits.get(g).copied().unwrap_or(usize::MAX);
                let cur = group_running.entry(g.clone()).or_default();
                if *cur >= limit {
                    deferred.push_back(i);
                    continue;
                }
                *cur += 1;
            }
            running += 1;
            st[i] = St::Running;
            let token = CancelToken::new();
            tokens.insert(i, token.clone());
            tasks.spawn(attempts(
                i,
                nodes.clone(),
                action.clone(),
                journal.clone(),
                token,
                interrupt.clone(),
                shared_finished.clone(),
                opts.observer.clone(),
            ));
        }
        ready = deferred;
        if !to_check.is_empty() {
            continue;
        }

        // 3. Nothing running and nothing launchable: finished, failed, cancelled, or
        // paused on gates that only a person (another shell, a later resume) can answer.
        if running == 0 {
            let stopping = interrupt.is_cancelled() || (!failures.is_empty() && !opts.keep_going);
            let launchable = ready.iter().any(|&i| {
                !stopping || (nodes[i].when != When::Success && !interrupt.is_cancelled())
            });
            if !launchable && (waiting.is_empty() || stopping || !action.keep_waiting()) {
                break;
            }
        }

        // 4. Wait for a completion, a gate poll tick, or an interrupt.
        tokio::select! {
            Some(joined) = tasks.join_next(), if running > 0 => {
                let done = match joined {
                    Ok(d) => d,
                    Err(e) => return Err(JournalError::Misuse { path: journal.path().to_path_buf(), message: format!("a step task died: {e}") }),
                };
                running -= 1;
                tokens.remove(&done.node);
                if let Some(g) = &nodes[done.node].group {
                    if let Some(c) = group_running.get_mut(g) { *c = c.saturating_sub(1); }
                }
                let i = done.node;
                if done.cancelled {
                    st[i] = St::Pending; // left `started` in the journal: unknown on resume
                    continue;
                }
                let mut f = shared_finished.write();
                match done.result {
                    Ok(v) => {
                        st[i] = St::Succeeded;
                        f.outputs.insert(i, v);
                        f.results.insert(i, NodeResult { state: "succeeded", error: None });
                    }
                    Err(e) => {
                        st[i] = St::Failed;
                        failures.push(nodes[i].name.clone());
                        f.results.insert(i, NodeResult { state: "failed", error: Some(e) });
                    }
                }
                drop(f);
                to_check.extend(nodes[i].dependents.iter().copied());
            }
            _ = tokio::time::sleep(opts.gate_poll), if !waiting.is_empty() => {
                for i in waiting.clone() {
                    poll_gate(i, false, &*action, &mut st, &mut waiting, &mut failures, &nodes, &journal, &mut to_check, &shared_finished, &opts.observer).await?;
                }
            }
            reason = interrupt.cancelled(), if !interrupt.is_cancelled() => {
                for t in tokens.values() { t.cancel(reason); }
            }
        }
    }

    let outcome = if interrupt.is_cancelled() {
        Outcome::Cancelled
    } else if !failures.is_empty() {
        Outcome::Failed(failures)
    } else if !waiting.is_empty() {
        Outcome::Paused(waiting.iter().map(|&i| nodes[i].name.clone()).collect())
    } else if st.iter().all(|s| s.finished()) {
        Outcome::Succeeded
    } else {
        // Unreachable in a valid DAG; report what is stuck rather than claim success.
        let stuck: Vec<String> = (0..n)
            .filter(|&i| !st[i].finished())
            .map(|i| nodes[i].name.clone())
            .collect();
        Outcome::Failed(stuck)
    };
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
    emit(&journal, &opts.observer, vec![last]).await?;
    Ok(outcome)
}

#[allow(clippy::too_many_arguments)]
async fn poll_gate(
    i: usize,
    first: bool,
    action: &dyn Action,
    st: &mut [St],
    waiting: &mut Vec<usize>,
    failures: &mut Vec<String>,
    nodes: &[Node],
    journal: &JournalWriter,
    to_check: &mut Vec<usize>,
    finished: &FinishedView,
    observer: &Option<Observer>,
) -> Result<(), JournalError> {
    match action.gate(i, first) {
        GateState::Waiting => {}
        GateState::Approved => {
            waiting.retain(|&w| w != i);
            st[i] = St::Succeeded;
            let ev = Event::StepSucceeded {
                step: nodes[i].name.clone(),
                attempt: 1,
                output: Value::Null,
                verified: false,
            };
            emit(journal, observer, vec![ev]).await?;
            let mut f = finished.write();
            f.outputs.insert(i, Value::Null);
            f.results.insert(
                i,
                NodeResult {
                    state: "approved",
                    error: None,
                },
            );
            to_check.extend(nodes[i].dependents.iter().copied());
        }
        GateState::Rejected(why) => {
            waiting.retain(|&w| w != i);
            st[i] = St::Failed;
            finished.write().results.insert(
                i,
                NodeResult {
                    state: "rejected",
                    error: Some(why.clone()),
                },
            );
            failures.push(format!("{} (rejected: {why})", nodes[i].name));
            to_check.extend(nodes[i].dependents.iter().copied());
        }
    }
    Ok(())
}

// Every attempt of one step: journal, run on a blocking thread with its timeout, retry.
#[allow(clippy::too_many_arguments)]
async fn attempts(
    i: usize,
    nodes: Arc<Vec<Node>>,
    action: Arc<dyn Action>,
    journal: JournalWriter,
    token: CancelToken,
    interrupt: CancelToken,
    finished: FinishedView,
    observer: Option<Observer>,
) -> Done {
    let node = &nodes[i];
    let mut delay = node.retry_delay;
    let mut attempt = 1u32;
    loop {
        if let Err(e) = emit(
            &journal,
            &observer,
            vec![Event::StepStarted {
                step: node.name.clone(),
                attempt,
            }],
        )
        .await
        {
            return Done {
                node: i,
                result: Err(format!("journal: {e}")),
                cancelled: false,
            };
        }
        let attempt_token = CancelToken::new();
        let (a, t, f) = (action.clone(), attempt_token.clone(), finished.clone());
        let mut handle = tokio::task::spawn_blocking(move || a.run(i, attempt, &t, &f));
        let timeout = node.timeout;
        let result = tokio::select! {
            r = &mut handle => r.unwrap_or_else(|e| Err(format!("step panicked: {e}"))),
            _ = async { match timeout { Some(d) => tokio::time::sleep(d).await, None => std::future::pending().await } } => {
                attempt_token.cancel(CancelReason::Timeout);
                let _ = handle.await;
                Err(format!("timed out after {}", crate::duration::format_duration(timeout.unwrap_or_default())))
            }
            r = token.cancelled() => {
                attempt_token.cancel(r);
                let _ = handle.await;
                return Done { node: i, result: Err("interrupted".into()), cancelled: true };
            }
        };
        if interrupt.is_cancelled() && result.is_err() {
            return Done {
                node: i,
                result: Err("interrupted".into()),
                cancelled: true,
            };
        }
        match result {
            Ok(v) => {
                let ev = Event::StepSucceeded {
                    step: node.name.clone(),
                    attempt,
                    output: v.clone(),
                    verified: false,
                };
                if let Err(e) = emit(&journal, &observer, vec![ev]).await {
                    return Done {
                        node: i,
                        result: Err(format!("journal: {e}")),
                        cancelled: false,
                    };
                }
                return Done {
                    node: i,
                    result: Ok(v),
                    cancelled: false,
                };
            }
            Err(err) => {
                let will_retry = attempt <= node.retries;
                let ev = Event::StepFailed {
                    step: node.name.clone(),
                    attempt,
                    error: err.clone(),
                    will_retry,
                };
                if let Err(e) = emit(&journal, &observer, vec![ev]).await {
                    return Done {
                        node: i,
                        result: Err(format!("journal: {e}")),
                        cancelled: false,
                    };
                }
                if !will_retry {
                    return Done {
                        node: i,
                        result: Err(err),
                        cancelled: false,
                    };
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = token.cancelled() => return Done { node: i, result: Err("interrupted".into()), cancelled: true },
                }
                delay = delay.saturating_mul(2);
                attempt += 1;
            }
        }
    }
}
