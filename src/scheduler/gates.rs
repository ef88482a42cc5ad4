//! Gates, run beside the loop like steps, never inside it: an independent branch never
//! waits on a gate.
//!
//! A ready gate's `gate_waiting` goes in the next journal round, with a
//! `rehearsal_started` when the action rehearses it (a lab plays the operator's part).
//! Once that round is durable the rehearsal runs on a blocking thread with its own cancel
//! token (an interrupt cancels it, and the gate's `timeout` bounds it); its
//! `rehearsal_ended` is durable before the gate is first asked. A gate whose rehearsal
//! passed in an earlier process (`Prior::Rehearsed`) opens without one. Asking
//! ([`super::Action::gate`]: `--yes`, the inbox, the prompt, each of which may append a
//! decision) also runs on a blocking thread, one poll of the asked gates at a time, when a
//! gate opens and every `gate_poll` after. An approved gate's `step_succeeded` goes in a
//! round and is durable before any dependent starts; a rejection fails the gate as a
//! failed last attempt fails a step.

use super::attempt::{Ended, Timer, TimerKind};
use super::run_loop::{Run, St};
use super::{GateState, ResultState};
use crate::cancel::{CancelReason, CancelToken};
use serde_json::Value;
use std::cmp::Reverse;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A gate's rehearsal in flight.
pub(super) struct Rehearsal {
    pub(super) token: CancelToken,
    pub(super) timed_out: bool,
}

/// What a gate's blocking thread reports to the loop.
pub(super) enum GateReport {
    /// A rehearsal returned.
    Rehearsed {
        node: usize,
        result: Result<(), String>,
    },
    /// A poll asked these gates, in order.
    Polled(Vec<(usize, GateState)>),
}

/// The gates of a run that are open and not yet decided.
pub(super) struct Gates {
    /// Open gates, in the order they opened (rehearsing ones too).
    pub(super) waiting: Vec<usize>,
    /// Gates whose `gate_waiting` goes in the next round.
    pub(super) opening: Vec<usize>,
    /// Rehearsals that returned; their `rehearsal_ended` goes in the next round.
    pub(super) rehearsed: Vec<(usize, Result<(), String>)>,
    /// Rehearsals in flight, by node.
    pub(super) rehearsing: Vec<Option<Rehearsal>>,
    /// By node: its rehearsal passed in an earlier process ([`super::Prior::Rehearsed`]),
    /// so it opens without one.
    pub(super) rehearsed_before: Vec<bool>,
    /// Gates asked at least once in this run (the first ask opens a prompt).
    asked: Vec<bool>,
    /// Gates to ask as soon as no poll is in flight.
    due: Vec<usize>,
    /// A poll is on a blocking thread.
    polling: bool,
    /// Blocking threads (rehearsals and polls) that have not reported back.
    pub(super) busy: usize,
    /// When every waiting gate is asked again.
    pub(super) next_poll: Option<Instant>,
    /// The waiting gates were asked once more since the run last moved on, so it may
    /// pause on them.
    pub(super) asked_before_pause: bool,
    pub(super) tx: mpsc::UnboundedSender<GateReport>,
    pub(super) rx: mpsc::UnboundedReceiver<GateReport>,
}

impl Gates {
    pub(super) fn new(n: usize) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Gates {
            waiting: Vec::new(),
            opening: Vec::new(),
            rehearsed: Vec::new(),
            rehearsing: (0..n).map(|_| None).collect(),
            rehearsed_before: vec![false; n],
            asked: vec![false; n],
            due: Vec::new(),
            polling: false,
            busy: 0,
            next_poll: None,
            asked_before_pause: false,
            tx,
            rx,
        }
    }
}

impl Run {
    /// Gate `i`'s `gate_waiting` (and `rehearsal_started`) is durable: rehearse it, or ask
    /// it at once.
    pub(super) fn gate_opened(&mut self, i: usize, rehearse: bool) {
        self.gates.waiting.push(i);
        if !rehearse {
            self.gates.due.push(i);
            return;
        }
        if self.shared.interrupt.is_cancelled() {
            // Interrupted while the round was written: the rehearsal does not run.
            return;
        }
        let token = CancelToken::new();
        self.gates.rehearsing[i] = Some(Rehearsal {
            token: token.clone(),
            timed_out: false,
        });
        if let Some(d) = self.shared.nodes[i].timeout {
            self.attempts.timers.push(Reverse(Timer {
                at: crate::duration::deadline_after(d).into(),
                node: i,
                attempt: 1,
                kind: TimerKind::Rehearsal,
            }));
        }
        self.gates.busy += 1;
        let shared = self.shared.clone();
        let tx = self.gates.tx.clone();
        drop(tokio::task::spawn_blocking(move || {
            let run = || shared.action.rehearse(i, 1, &token, &shared.finished);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
                .unwrap_or_else(|panic| {
                    Err(format!(
                        "rehearsal panicked: {}",
                        super::attempt::panic_text(&*panic)
                    ))
                });
            let _ = tx.send(GateReport::Rehearsed { node: i, result });
        }));
    }

    /// A rehearsal's time ran out: ask it to stop; it fails when it returns.
    pub(super) fn rehearsal_timed_out(&mut self, i: usize) {
        if let Some(r) = self.gates.rehearsing[i].as_mut() {
            r.timed_out = true;
            r.token.cancel(CancelReason::Timeout);
        }
    }

    /// What a gate's thread reported.
    pub(super) fn gate_report(&mut self, report: GateReport) {
        self.gates.busy -= 1;
        match report {
            GateReport::Rehearsed { node, result } => {
                let Some(r) = self.gates.rehearsing[node].take() else {
                    return;
                };
                if r.token.reason() == Some(CancelReason::Interrupted) {
                    // Left with its `rehearsal_started` only: it runs again on resume.
                    return;
                }
                let result = if r.timed_out {
                    let limit = self.shared.nodes[node].timeout.unwrap_or_default();
                    Err(format!(
                        "it did not finish within the gate's timeout of {}",
                        crate::duration::format_duration(limit)
                    ))
                } else {
                    result
                };
                self.gates.rehearsed.push((node, result));
            }
            GateReport::Polled(answers) => {
                self.gates.polling = false;
                for (i, state) in answers {
                    self.gate_answered(i, state);
                }
            }
        }
    }

    /// Gate `i`'s `rehearsal_ended` is durable: a failed rehearsal rejects the gate, a
    /// passed one lets it be asked.
    pub(super) fn rehearsal_ended(&mut self, i: usize, result: Result<(), String>) {
        match result {
            Ok(()) => self.gates.due.push(i),
            Err(e) => self.gate_answered(
                i,
                GateState::Rejected(format!("the rehearsal of this gate failed: {e}")),
            ),
        }
    }

    /// Ask the gates that are due (and, at each `gate_poll`, every waiting gate that is
    /// not rehearsing) on a blocking thread, unless a poll is in flight already.
    pub(super) fn poll_gates(&mut self) {
        let now = Instant::now();
        if self.gates.next_poll.is_some_and(|t| t <= now) {
            self.gates.next_poll = None;
            for &i in &self.gates.waiting {
                if self.gates.rehearsing[i].is_none()
                    && self.gates.asked[i]
                    && !self.gates.due.contains(&i)
                {
                    self.gates.due.push(i);
                }
            }
        }
        if self.gates.polling || self.gates.due.is_empty() {
            return;
        }
        let asks: Vec<(usize, bool)> = std::mem::take(&mut self.gates.due)
            .into_iter()
            .filter(|&i| self.st[i] == St::Waiting)
            .map(|i| (i, !std::mem::replace(&mut self.gates.asked[i], true)))
            .collect();
        if asks.is_empty() {
            return;
        }
        self.gates.polling = true;
        self.gates.busy += 1;
        let shared = self.shared.clone();
        let tx = self.gates.tx.clone();
        drop(tokio::task::spawn_blocking(move || {
            let answers = asks
                .into_iter()
                .map(|(i, first)| {
                    let ask = || shared.action.gate(i, first);
                    let state = std::panic::catch_unwind(std::panic::AssertUnwindSafe(ask))
                        .unwrap_or_else(|panic| {
                            GateState::Rejected(format!(
                                "asking the gate panicked: {}",
                                super::attempt::panic_text(&*panic)
                            ))
                        });
                    (i, state)
                })
                .collect();
            let _ = tx.send(GateReport::Polled(answers));
        }));
    }

    /// Act on what gate `i` answered.
    fn gate_answered(&mut self, i: usize, state: GateState) {
        if self.st[i] != St::Waiting {
            return;
        }
        let shared = self.shared.clone();
        let nodes = &shared.nodes;
        match state {
            GateState::Waiting => {
                if self.gates.next_poll.is_none() {
                    self.gates.next_poll = Some(Instant::now() + self.gate_poll);
                }
            }
            GateState::Approved => {
                self.gates.waiting.retain(|&w| w != i);
                // Its `step_succeeded` goes in the next round and settles it once durable.
                self.st[i] = St::Running;
                self.rounds.ended.push(Ended {
                    node: i,
                    attempt: 1,
                    result: Ok(Value::Null),
                    will_retry: false,
                });
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
    }
}
