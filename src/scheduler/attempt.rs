//! One attempt's life: it starts once its `step_started` is durable, runs on a blocking
//! thread with a cancel token of its own, may time out, and ends in an outcome the next
//! journal round records; a failed attempt with retries left waits out a doubling delay
//! and starts again. An interrupt cancels every attempt in flight and drops pending
//! retries.

use super::run_loop::{Run, St};
use crate::cancel::{CancelReason, CancelToken};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;
use tokio::sync::mpsc;

/// How one attempt's action returned, sent by its blocking thread to the run loop.
pub(super) struct AttemptEnd {
    pub(super) node: usize,
    pub(super) attempt: u32,
    pub(super) result: Result<Value, String>,
}

/// A step's attempt outcome waiting to be journaled by the next commit.
pub(super) struct Ended {
    pub(super) node: usize,
    pub(super) attempt: u32,
    pub(super) result: Result<Value, String>,
    /// Another attempt follows (after the retry delay).
    pub(super) will_retry: bool,
}

/// Where a node that holds a run slot stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
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

/// The live part of a node that holds a run slot.
pub(super) struct Live {
    pub(super) phase: Phase,
    pub(super) attempt: u32,
    /// Cancels the attempt in flight (its timeout, or the interrupt).
    pub(super) token: CancelToken,
    pub(super) timed_out: bool,
    /// Delay before the next retry; doubled after each.
    pub(super) retry_delay: Duration,
    /// Counts against `--concurrency` and its group. A last attempt gives its slot back
    /// as soon as its action returns, so a step can start in the very commit that
    /// journals the outcome (a step waiting to retry keeps its slot).
    pub(super) slot: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerKind {
    Timeout,
    Retry,
    /// A gate's rehearsal ran out of time (the gate's `timeout`).
    Rehearsal,
}

/// A timer of one attempt; stale ones (the attempt moved on) are ignored when they fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Timer {
    pub(super) at: tokio::time::Instant,
    pub(super) node: usize,
    pub(super) attempt: u32,
    pub(super) kind: TimerKind,
}

/// The attempts of a run: the live part of each node holding a run slot, their timers,
/// and the channel their threads report on.
pub(super) struct Attempts {
    pub(super) live: Vec<Option<Live>>,
    pub(super) timers: BinaryHeap<Reverse<Timer>>,
    /// Actions on blocking threads that have not reported back.
    pub(super) executing: usize,
    pub(super) ended_tx: mpsc::UnboundedSender<AttemptEnd>,
    pub(super) ended_rx: mpsc::UnboundedReceiver<AttemptEnd>,
    /// Retries whose delay is over: their `step_started` goes in the next commit.
    pub(super) retries_due: Vec<usize>,
}

impl Attempts {
    pub(super) fn new(n: usize) -> Self {
        let (ended_tx, ended_rx) = mpsc::unbounded_channel();
        Attempts {
            live: (0..n).map(|_| None).collect(),
            timers: BinaryHeap::new(),
            executing: 0,
            ended_tx,
            ended_rx,
            retries_due: Vec::new(),
        }
    }
}

impl Run {
    /// Run the current attempt of `i` (its `step_started` is durable) on a blocking thread.
    pub(super) fn start_attempt(&mut self, i: usize) {
        let interrupt = self.shared.interrupt.reason();
        let Some(live) = self.attempts.live[i].as_mut() else {
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
        self.attempts.executing += 1;
        if let Some(d) = self.shared.nodes[i].timeout {
            self.attempts.timers.push(Reverse(Timer {
                at: crate::duration::deadline_after(d).into(),
                node: i,
                attempt,
                kind: TimerKind::Timeout,
            }));
        }
        let shared = self.shared.clone();
        let tx = self.attempts.ended_tx.clone();
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
    pub(super) fn attempt_ended(&mut self, end: AttemptEnd) {
        let i = end.node;
        let interrupt = &self.shared.interrupt;
        let node = &self.shared.nodes[i];
        let Some(live) = self.attempts.live[i].as_mut() else {
            return;
        };
        if live.phase != Phase::Executing || live.attempt != end.attempt {
            return;
        }
        self.attempts.executing -= 1;
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
        self.rounds.ended.push(Ended {
            node: i,
            attempt: end.attempt,
            result,
            will_retry,
        });
    }

    /// Act on every timer that is due: cancel timed-out attempts, queue due retries.
    pub(super) fn fire_timers(&mut self) {
        let now = tokio::time::Instant::now();
        while let Some(Reverse(t)) = self.attempts.timers.peek().copied() {
            if t.at > now {
                break;
            }
            self.attempts.timers.pop();
            if t.kind == TimerKind::Rehearsal {
                self.rehearsal_timed_out(t.node);
                continue;
            }
            let Some(live) = self.attempts.live[t.node].as_mut() else {
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
                    self.attempts.retries_due.push(t.node);
                }
                _ => {}
            }
        }
    }

    /// Pass the interrupt on: running actions are asked to stop, pending retries dropped
    /// (their failed attempt is on record).
    pub(super) fn forward_interrupt(&mut self, reason: CancelReason) {
        for i in 0..self.attempts.live.len() {
            let Some(live) = &self.attempts.live[i] else {
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
        self.attempts.retries_due.clear();
        for r in self.gates.rehearsing.iter().flatten() {
            r.token.cancel(reason);
        }
    }

    /// Free the run slot of a node that stopped running.
    pub(super) fn release(&mut self, i: usize) {
        if let Some(live) = self.attempts.live[i].take() {
            if live.slot {
                self.free_slot(i);
            }
        }
    }

    pub(super) fn free_slot(&mut self, i: usize) {
        self.slots.free(i);
    }
}

/// The message of a caught panic, when it has one.
pub(super) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}
