//! Which nodes may start: a node is queued once its dependencies have finished and its
//! `when` holds, skipped (and journaled as such) once they finished and it does not;
//! after a failure without `--keep-going` only `always`/`failure` nodes still start.
//! The queue keeps the order nodes became ready, so independent steps start in
//! declaration order.

use super::attempt::{Live, Phase};
use super::run_loop::{Run, St};
use super::{NodeKind, ResultState};
use crate::cancel::CancelToken;
use crate::dsl::When;
use crate::journal::{Event, JournalError};
use std::collections::VecDeque;

/// Nodes ready to start, and those whose dependencies may just have finished.
pub(super) struct Queue {
    /// Queued nodes in the order they became ready.
    pub(super) ready: VecDeque<usize>,
    /// Gates among `ready`: while there are none, a full run queue ends the launch scan.
    pub(super) ready_gates: usize,
    /// Nodes whose dependencies may just have finished.
    pub(super) to_check: Vec<usize>,
}

impl Queue {
    /// A queue that looks at every one of `n` nodes first.
    pub(super) fn new(n: usize) -> Self {
        Queue {
            ready: VecDeque::new(),
            ready_gates: 0,
            to_check: (0..n).collect(),
        }
    }
}

impl Run {
    /// After an interrupt, or a failure without `keep_going`, only always/failure nodes start.
    pub(super) fn stopping(&self) -> bool {
        self.shared.interrupt.is_cancelled() || self.failing_fast()
    }

    /// A settled failure stops the run (no `keep_going`) and no interrupt came: `success`
    /// nodes that never started will not start in this run, so they are finished as
    /// skipped, and the `always`/`failure` nodes after them can run. After an interrupt
    /// they stay pending instead: the run did not decide anything about them.
    pub(super) fn failing_fast(&self) -> bool {
        !self.failures.is_empty() && !self.keep_going && !self.shared.interrupt.is_cancelled()
    }

    /// Why a node is skipped by fail-fast, for the journal and `status`.
    pub(super) fn fail_fast_reason(&self) -> String {
        format!(
            "not started: the run stopped after {} failed (--keep-going runs independent steps on)",
            self.failures.join(", ")
        )
    }

    /// Finish as skipped every queued `success` node, once a failure stops the run.
    pub(super) fn skip_unstarted(&mut self, skipped: &mut Vec<Event>) {
        if !self.failing_fast() || self.queue.ready.is_empty() {
            return;
        }
        let shared = self.shared.clone();
        let nodes = &shared.nodes;
        let reason = self.fail_fast_reason();
        let mut keep = VecDeque::with_capacity(self.queue.ready.len());
        for i in std::mem::take(&mut self.queue.ready) {
            let node = &nodes[i];
            if node.when != When::Success {
                keep.push_back(i);
                continue;
            }
            if node.kind == NodeKind::Gate {
                self.queue.ready_gates -= 1;
            }
            self.skip(i, reason.clone(), skipped);
        }
        self.queue.ready = keep;
    }

    /// Finish `i` as skipped (the event goes in `skipped`) and look at its dependents.
    pub(super) fn skip(&mut self, i: usize, reason: String, skipped: &mut Vec<Event>) {
        let shared = self.shared.clone();
        let node = &shared.nodes[i];
        self.st[i] = St::Skipped;
        skipped.push(Event::StepSkipped {
            step: node.name.clone(),
            reason,
        });
        shared
            .finished
            .write()
            .set_result(i, ResultState::Skipped, None);
        self.queue.to_check.extend(node.dependents.iter().copied());
    }

    /// Queue or skip every node of `to_check` whose dependencies have all finished, in
    /// the order they were noted (so independent steps start in declaration order); the
    /// skips are journaled (one append) before anything downstream of them can start.
    pub(super) async fn resolve(&mut self) -> Result<(), JournalError> {
        let mut skipped = Vec::new();
        self.skip_unstarted(&mut skipped);
        // A skip notes more nodes to look at: go round until none are left.
        while !self.queue.to_check.is_empty() {
            for i in std::mem::take(&mut self.queue.to_check) {
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
    pub(super) fn check(&mut self, i: usize, skipped: &mut Vec<Event>) {
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
            When::Ran => node
                .deps
                .iter()
                .any(|&d| matches!(self.st[d], St::Succeeded | St::Failed)),
        };
        if go && node.when == When::Success && self.failing_fast() {
            let reason = self.fail_fast_reason();
            return self.skip(i, reason, skipped);
        }
        if go {
            self.st[i] = St::Queued;
            if node.kind == NodeKind::Gate {
                self.queue.ready_gates += 1;
            }
            self.queue.ready.push_back(i);
            return;
        }
        let reason = match node.when {
            When::Failure => "no dependency failed".to_string(),
            When::Ran => "none of its dependencies ran".to_string(),
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

    /// Take the ready nodes the limits let start now, reserving their slots; gates among
    /// them open in the next round. The rest keep their place in the queue.
    pub(super) fn pick_launches(&mut self, failing: bool) -> Vec<usize> {
        let shared = self.shared.clone();
        let nodes = &shared.nodes;
        let interrupted = shared.interrupt.is_cancelled();
        let stop_new = self.stopping() || (failing && !self.keep_going);
        let mut deferred = Vec::new();
        let mut launches = Vec::new();
        while let Some(i) = self.queue.ready.pop_front() {
            let node = &nodes[i];
            if node.kind == NodeKind::Gate {
                self.queue.ready_gates -= 1;
            }
            // Once stopping, only always/failure nodes still start (and none after an interrupt).
            if stop_new && (node.when == When::Success || interrupted) {
                deferred.push(i);
                continue;
            }
            if node.kind == NodeKind::Gate {
                // Opened by the next round; it never takes a run slot.
                self.st[i] = St::Waiting;
                self.gates.opening.push(i);
                continue;
            }
            if self.slots.full() {
                deferred.push(i);
                if self.queue.ready_gates == 0 && !stop_new {
                    // Every slot is taken and only steps are left: none of them can start.
                    break;
                }
                continue;
            }
            if !self.slots.try_take(i) {
                deferred.push(i);
                continue;
            }
            self.st[i] = St::Running;
            self.attempts.live[i] = Some(Live {
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
                self.queue.ready_gates += 1;
            }
            self.queue.ready.push_front(i);
        }
        launches
    }
}
