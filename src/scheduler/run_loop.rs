//! The run loop: one task owns every decision. It writes the journal in rounds — the
//! outcomes of the attempts that ended and the starts that are due, as one append (one
//! fsync) — and acts on a round only once it is durable: the started attempts go to
//! threads, the ended steps are settled and their dependents looked at. Several rounds
//! may be in flight; the writer shares one fsync among all that are pending.

use super::announcer::{emit, Announcer};
use super::attempt::{Attempts, Ended, Phase, Timer, TimerKind};
use super::finished::{Board, FinishedView};
use super::gates::Gates;
use super::groups::Slots;
use super::ready::Queue;
use super::{Action, Node, NodeKind, Options, Outcome, Prior, ResultState};
use crate::cancel::CancelToken;
use crate::dsl::When;
use crate::journal::writer::Durable;
use crate::journal::{Event, FinalStatus, JournalError, JournalWriter, Record};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::VecDeque;
use std::future::Future as _;
use std::sync::Arc;
use std::time::Duration;

/// Where a node stands in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum St {
    Pending,
    Queued,
    Running,
    Waiting,
    Succeeded,
    Failed,
    Skipped,
}

impl St {
    pub(super) fn finished(self) -> bool {
        matches!(self, St::Succeeded | St::Failed | St::Skipped)
    }
}

/// What the actions' blocking threads need, behind one `Arc` so starting one clones one
/// pointer.
pub(super) struct Shared {
    pub(super) nodes: Arc<Vec<Node>>,
    pub(super) action: Arc<dyn Action>,
    pub(super) journal: JournalWriter,
    pub(super) interrupt: CancelToken,
    pub(super) finished: FinishedView,
}

/// One round of records handed to the journal, and what to do once it is durable.
pub(super) struct Commit {
    durable: Durable,
    round: Round,
}

/// What a round's records allow once they are durable.
pub(super) struct Round {
    ended: Vec<Ended>,
    /// Retries and first attempts whose `step_started` is in this round.
    starts: Vec<usize>,
    /// Gates whose `gate_waiting` is in this round, and whether a `rehearsal_started`
    /// follows it.
    opened: Vec<(usize, bool)>,
    /// Rehearsals whose `rehearsal_ended` is in this round.
    rehearsed: Vec<(usize, Result<(), String>)>,
    /// Last attempts in `ended` that failed (they stop new steps unless `keep_going`).
    failures: usize,
}

/// The journal rounds: what goes in the next one and those not yet durable.
#[derive(Default)]
pub(super) struct Rounds {
    /// Outcomes for the next commit.
    pub(super) ended: Vec<Ended>,
    /// Rounds handed to the journal and not yet durable, oldest first.
    pub(super) in_flight: VecDeque<Commit>,
    /// Failed last attempts in `in_flight`.
    pub(super) failures_in_flight: usize,
}

/// The state of one call to [`super::run`].
pub(super) struct Run {
    pub(super) shared: Arc<Shared>,
    announcer: Announcer,
    pub(super) keep_going: bool,
    pub(super) gate_poll: Duration,
    pub(super) st: Vec<St>,
    pub(super) queue: Queue,
    pub(super) slots: Slots,
    pub(super) attempts: Attempts,
    pub(super) rounds: Rounds,
    pub(super) gates: Gates,
    /// Names of the nodes that failed (fail-fast stops new steps once there is one).
    pub(super) failures: Vec<String>,
    /// Names of the budgeted nodes that failed: they fail the run at its end only.
    pub(super) tolerated: Vec<String>,
    /// The interrupt was passed on to the running attempts.
    interrupt_forwarded: bool,
    /// Per node: its `step_started` must be durable before its action runs
    /// ([`super::Action::must_record_start`]).
    record_start_first: Vec<bool>,
}

impl Run {
    pub(super) fn new(
        nodes: Arc<Vec<Node>>,
        prior: Vec<Prior>,
        opts: Options,
        action: Arc<dyn Action>,
        journal: JournalWriter,
        interrupt: CancelToken,
    ) -> Self {
        let n = nodes.len();
        let mut st = vec![St::Pending; n];
        let mut board = Board::new(n);
        let mut gates = Gates::new(n);
        for (i, p) in prior.into_iter().enumerate() {
            match p {
                Prior::Done(v) => {
                    st[i] = St::Succeeded;
                    board.set_output(i, v);
                    let state = if nodes[i].kind == NodeKind::Gate {
                        ResultState::Approved
                    } else {
                        ResultState::Succeeded
                    };
                    board.set_result(i, state, None);
                }
                Prior::Skipped => {
                    st[i] = St::Skipped;
                    board.set_result(i, ResultState::Skipped, None);
                }
                Prior::Pending => {}
                Prior::Rehearsed => gates.rehearsed_before[i] = true,
            }
        }
        let record_start_first = (0..n).map(|i| action.must_record_start(i)).collect();
        Run {
            record_start_first,
            slots: Slots::new(&nodes, opts.concurrency, &opts.limits),
            attempts: Attempts::new(n),
            shared: Arc::new(Shared {
                nodes,
                action,
                journal,
                interrupt,
                finished: FinishedView::new(board),
            }),
            announcer: Announcer::new(opts.observer),
            keep_going: opts.keep_going,
            gate_poll: opts.gate_poll,
            st,
            // Decide every pending node whose dependencies are all finished.
            queue: Queue::new(n),
            rounds: Rounds::default(),
            gates,
            failures: Vec::new(),
            tolerated: Vec::new(),
            interrupt_forwarded: false,
        }
    }

    pub(super) async fn drive(&mut self) -> Result<Outcome, JournalError> {
        let shared = self.shared.clone();
        let interrupt = &shared.interrupt;
        let mut reports = Vec::new();
        let mut gate_reports = Vec::new();
        loop {
            self.resolve().await?;
            self.commit().await?;
            if !self.queue.to_check.is_empty() {
                continue;
            }
            self.poll_gates();

            // Nothing running and nothing launchable: finished, failed, cancelled, or
            // paused on gates that only a person (another shell, a later resume) can answer.
            if self.slots.running == 0 && self.rounds.in_flight.is_empty() && self.gates.busy == 0 {
                let stopping = self.stopping();
                let launchable = self.queue.ready.iter().any(|&i| {
                    !stopping
                        || (shared.nodes[i].when != When::Success && !interrupt.is_cancelled())
                });
                if !launchable
                    && (self.gates.waiting.is_empty() || stopping || !shared.action.keep_waiting())
                {
                    if self.gates.waiting.is_empty() || stopping || self.gates.asked_before_pause {
                        break;
                    }
                    // Before pausing, every waiting gate is asked once more: a decision may
                    // have come since the last ask began — above all the answer to a prompt
                    // that has just closed, which would otherwise wait for a resume.
                    self.gates.asked_before_pause = true;
                    self.gates.next_poll = Some(tokio::time::Instant::now());
                    continue;
                }
            }

            // Wait for actions to end, a gate's thread, a timer, a gate poll tick, or an
            // interrupt.
            let next_timer = self.attempts.timers.peek().map(|Reverse(t)| t.at);
            let next_poll = self.gates.next_poll;
            tokio::select! {
                written = front_durable(&mut self.rounds.in_flight), if !self.rounds.in_flight.is_empty() => {
                    self.durable(written);
                }
                _ = self.attempts.ended_rx.recv_many(&mut reports, usize::MAX), if self.attempts.executing > 0 => {
                    for end in reports.drain(..) {
                        self.attempt_ended(end);
                    }
                }
                _ = tokio::time::sleep_until(next_timer.unwrap_or_else(tokio::time::Instant::now)), if next_timer.is_some() => {
                    self.fire_timers();
                }
                _ = self.gates.rx.recv_many(&mut gate_reports, usize::MAX), if self.gates.busy > 0 => {
                    for report in gate_reports.drain(..) {
                        self.gate_report(report);
                    }
                }
                // `poll_gates` at the top of the loop asks them.
                _ = tokio::time::sleep_until(next_poll.unwrap_or_else(tokio::time::Instant::now)), if next_poll.is_some() => {}
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

    pub(super) fn outcome(&mut self) -> Outcome {
        let nodes = &self.shared.nodes;
        if self.shared.interrupt.is_cancelled() {
            Outcome::Cancelled
        } else if !self.failures.is_empty() {
            let mut failed = std::mem::take(&mut self.failures);
            failed.append(&mut self.tolerated);
            Outcome::Failed(failed)
        } else if !self.gates.waiting.is_empty() {
            Outcome::Paused(
                self.gates
                    .waiting
                    .iter()
                    .map(|&i| nodes[i].name.clone())
                    .collect(),
            )
        } else if !self.tolerated.is_empty() {
            Outcome::Failed(std::mem::take(&mut self.tolerated))
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
    pub(super) async fn commit(&mut self) -> Result<(), JournalError> {
        let shared = self.shared.clone();
        let nodes = &shared.nodes;
        // Attempts that ended since the last round join this one.
        while let Ok(end) = self.attempts.ended_rx.try_recv() {
            self.attempt_ended(end);
        }
        let ended = std::mem::take(&mut self.rounds.ended);
        let mut starts = std::mem::take(&mut self.attempts.retries_due);
        let retries = starts.len();
        let rehearsed = std::mem::take(&mut self.gates.rehearsed);
        let failures = ended
            .iter()
            .filter(|e| e.result.is_err() && !e.will_retry && !nodes[e.node].budgeted)
            .count()
            + rehearsed.iter().filter(|(_, r)| r.is_err()).count();
        // A failure on its way to the journal stops new steps just as a settled one would.
        let failing = failures + self.rounds.failures_in_flight > 0;
        starts.extend(self.pick_launches(failing));
        let opened: Vec<(usize, bool)> = std::mem::take(&mut self.gates.opening)
            .into_iter()
            .map(|i| {
                (
                    i,
                    !self.gates.rehearsed_before[i] && shared.action.rehearses(i),
                )
            })
            .collect();
        if ended.is_empty() && starts.is_empty() && opened.is_empty() && rehearsed.is_empty() {
            return Ok(());
        }
        let mut events =
            Vec::with_capacity(ended.len() + starts.len() + 2 * opened.len() + rehearsed.len());
        for (i, result) in &rehearsed {
            events.push(Event::RehearsalEnded {
                gate: nodes[*i].name.clone(),
                attempt: 1,
                error: result.as_ref().err().cloned(),
            });
        }
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
                self.attempts.live[i].as_ref().map_or(1, |l| l.attempt)
            } else {
                1
            };
            events.push(Event::StepStarted {
                step: nodes[i].name.clone(),
                attempt,
            });
        }
        for &(i, rehearse) in &opened {
            let gate = nodes[i].name.clone();
            if rehearse {
                events.push(Event::GateWaiting { gate: gate.clone() });
                events.push(Event::RehearsalStarted { gate, attempt: 1 });
            } else {
                events.push(Event::GateWaiting { gate });
            }
        }
        let submitted = shared.journal.submit(events);
        self.rounds.failures_in_flight += failures;
        let round = Round {
            ended,
            starts,
            opened,
            rehearsed,
            failures,
        };
        match submitted {
            Ok(durable) => {
                // A start that need not be durable first runs now; its record is on its
                // way, ahead of anything the attempt will append (module docs).
                let mut round = round;
                let eager: Vec<usize>;
                (eager, round.starts) = std::mem::take(&mut round.starts)
                    .into_iter()
                    .partition(|&i| !self.record_start_first[i]);
                self.rounds.in_flight.push_back(Commit { durable, round });
                for i in eager {
                    self.start_attempt(i);
                }
            }
            Err(e) => {
                self.rounds.failures_in_flight -= failures;
                self.not_durable(round, &e);
            }
        }
        Ok(())
    }

    /// Append `events` and wait until they are durable. The rounds in flight are
    /// settled first, so the display shows every event in journal order.
    pub(super) async fn emit_now(&mut self, events: Vec<Event>) -> Result<(), JournalError> {
        while !self.rounds.in_flight.is_empty() {
            let written = front_durable(&mut self.rounds.in_flight).await;
            self.durable(written);
        }
        emit(&self.shared.journal, &self.announcer, events).await
    }

    /// The oldest round in flight was written (or failed): act on it.
    pub(super) fn durable(&mut self, written: Result<Vec<Record>, JournalError>) {
        let Some(Commit { round, .. }) = self.rounds.in_flight.pop_front() else {
            return;
        };
        self.rounds.failures_in_flight -= round.failures;
        // Something moved on: a later pause asks its gates once more first.
        self.gates.asked_before_pause = false;
        let records = match written {
            Ok(records) => records,
            Err(e) => return self.not_durable(round, &e),
        };
        self.announcer.tell(records);
        let interrupted = self.shared.interrupt.is_cancelled();
        for (i, result) in round.rehearsed {
            self.rehearsal_ended(i, result);
        }
        for (i, rehearse) in round.opened {
            self.gate_opened(i, rehearse);
        }
        for e in round.ended {
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
            if let Some(live) = self.attempts.live[e.node].as_mut() {
                live.phase = Phase::RetryWait;
                self.attempts.timers.push(Reverse(Timer {
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
        for i in round.starts {
            self.start_attempt(i);
        }
    }

    /// A round could not be journaled. As when each step journaled for itself: a step
    /// whose end or start is not on record fails (the latter without running), and so
    /// does a gate whose opening or rehearsal is not on record.
    pub(super) fn not_durable(&mut self, round: Round, e: &JournalError) {
        let message = format!("journal: {e}");
        let gates = round.opened.iter().map(|&(i, _)| i);
        let rehearsed = round.rehearsed.iter().map(|&(i, _)| i);
        let nodes: Vec<usize> = round
            .ended
            .iter()
            .map(|e| e.node)
            .chain(round.starts)
            .chain(gates)
            .chain(rehearsed)
            .collect();
        for i in nodes {
            self.gates.waiting.retain(|&w| w != i);
            self.release(i);
            self.settle(i, Err(message.clone()));
        }
    }

    /// Record a node's final result and schedule its dependents for a look.
    pub(super) fn settle(&mut self, i: usize, result: Result<Value, String>) {
        let shared = self.shared.clone();
        let mut board = shared.finished.write();
        match result {
            Ok(v) => {
                self.st[i] = St::Succeeded;
                board.set_output(i, v);
                let state = match shared.nodes[i].kind {
                    NodeKind::Gate => ResultState::Approved,
                    NodeKind::Step => ResultState::Succeeded,
                };
                board.set_result(i, state, None);
            }
            Err(e) => {
                self.st[i] = St::Failed;
                let name = shared.nodes[i].name.clone();
                if shared.nodes[i].budgeted {
                    self.tolerated.push(name);
                } else {
                    self.failures.push(name);
                }
                board.set_result(i, ResultState::Failed, Some(e));
            }
        }
        drop(board);
        self.queue
            .to_check
            .extend(shared.nodes[i].dependents.iter().copied());
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
