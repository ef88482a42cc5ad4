//! Deciding a gate: `--yes`, the approval inbox (where the terminal prompt's answer goes
//! too), separate approvers, and the gate's timeout.

use super::{GateMode, RhaiAction};
use crate::dsl::StepKind;
use crate::inbox::{self, Decision};
use crate::journal::{current_host, Event};
use crate::scheduler::GateState;
use std::collections::BTreeSet;

/// `by` as shown to people: the display name, with the account when they differ.
fn who(item: &inbox::InboxItem) -> String {
    if item.by == item.account {
        item.by.clone()
    } else {
        format!("{} (account {})", item.by, item.account)
    }
}

impl RhaiAction {
    /// Poll gate `node` once (the scheduler's [`crate::scheduler::Action::gate`]); `first` on its first poll.
    pub(super) fn decide_gate(&self, node: usize, first: bool) -> GateState {
        let decl = &self.plan.steps[node].decl;
        debug_assert_eq!(decl.kind, StepKind::Gate);
        let need = decl.approvals.max(1) as usize;
        if let (true, Some(d)) = (first, &self.display) {
            d.gate_waits(&decl.name);
        }
        if self.gate_mode == GateMode::ApproveAll
            && self
                .yes_given
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(node)
        {
            if let Err(e) = self.approve_with_yes(node) {
                return GateState::Rejected(format!("could not journal the approval: {e}"));
            }
        }
        if let (GateMode::Prompt, true, Some(p)) = (self.gate_mode, first, &self.prompter) {
            p.ask(self.ask(node));
        }
        let drained = match self.run.pending_decisions() {
            Ok(d) => d,
            Err(_) => return GateState::Waiting,
        };
        let mut decided_by = None;
        for p in drained.items {
            let item = &p.item;
            let Some(&g) = self.plan.index.get(&item.gate) else {
                let _ = p.remove();
                continue;
            };
            if g != node {
                continue; // another gate's: it is decided when that gate is polled
            }
            if item.decision == Decision::Approve {
                // `waymark approve` refuses both; a hand-made or duplicate item still must
                // not count.
                if decl.separate_approver && item.account == self.starter {
                    let _ = p.remove();
                    self.notice(&format!(
                        "gate {}: {} started this run and cannot approve it (separate_approver); approval ignored",
                        decl.name, item.account
                    ));
                    continue;
                }
                if self.has_approved(node, &item.account) {
                    // Delivered again after a crash between journaling and removal.
                    let _ = p.remove();
                    continue;
                }
            }
            if self.journal_decision(item.to_event()).is_err() {
                return GateState::Waiting;
            }
            let _ = p.remove();
            match item.decision {
                Decision::Reject => {
                    let note = item
                        .note
                        .clone()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default();
                    let why = format!("rejected by {}{note}", who(item));
                    self.close_prompt(
                        node,
                        format!(
                            "gate {} was rejected by {} on {}{note}",
                            decl.name,
                            who(item),
                            item.host
                        ),
                    );
                    return GateState::Rejected(why);
                }
                Decision::Approve => {
                    self.preload_approver(node, item.account.clone());
                    decided_by = Some(format!("{} on {}", who(item), item.host));
                }
            }
        }
        let have = self
            .approvers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&node)
            .map_or(0, BTreeSet::len);
        if have >= need {
            let by = decided_by.map(|b| format!(" by {b}")).unwrap_or_default();
            self.close_prompt(node, format!("gate {} was approved{by}", decl.name));
            return GateState::Approved;
        }
        // A gate's `timeout` counts from when this process began waiting on it.
        let since = *self
            .waiting_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(node)
            .or_insert_with(std::time::Instant::now);
        match decl.timeout {
            Some(t) if since.elapsed() >= t => self.reject_by_waymark(
                node,
                format!(
                    "no approval within {} ({have} of {need} approvals)",
                    crate::duration::format_duration(t)
                ),
            ),
            _ => GateState::Waiting,
        }
    }

    fn has_approved(&self, node: usize, account: &str) -> bool {
        self.approvers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&node)
            .is_some_and(|a| a.contains(account))
    }

    // Decisions are journaled here, not by the scheduler, so the display hears of them
    // from here too: who approved is what the operator most needs to see.
    fn journal_decision(&self, ev: Event) -> Result<(), crate::journal::JournalError> {
        self.journal.append_blocking(vec![ev.clone()])?;
        if let Some(d) = &self.display {
            d.event(&ev);
        }
        Ok(())
    }

    fn notice(&self, line: &str) {
        match &self.display {
            Some(d) => d.notice(line),
            None => tracing::warn!("{line}"),
        }
    }

    // `--yes` is one approval by the account running waymark, nothing more: a gate that
    // needs someone else, or more people, goes on waiting for them.
    fn approve_with_yes(&self, node: usize) -> Result<(), crate::journal::JournalError> {
        let decl = &self.plan.steps[node].decl;
        let need = decl.approvals.max(1) as usize;
        if decl.separate_approver && self.user == self.starter {
            self.notice(&format!(
                "gate {} needs an approver other than {}, who started the run: --yes does not approve it",
                decl.name, self.user
            ));
            return Ok(());
        }
        if self.has_approved(node, &self.user) {
            return Ok(());
        }
        let ev = Event::GateApproved {
            gate: decl.name.clone(),
            by: self.user.clone(),
            host: current_host(),
            note: Some("--yes".into()),
            plan_fingerprint: self.plan.fingerprint.clone(),
            account: Some(self.user.clone()),
            at: None,
        };
        self.journal_decision(ev)?;
        self.preload_approver(node, self.user.clone());
        if need > 1 {
            self.notice(&format!(
                "gate {} needs {need} approvals from distinct accounts: --yes gave {}'s, the others must approve",
                decl.name, self.user
            ));
        }
        Ok(())
    }

    fn ask(&self, node: usize) -> crate::prompt::Ask {
        let decl = &self.plan.steps[node].decl;
        let need = decl.approvals.max(1);
        let needs = (need > 1).then(|| format!("needs {need} approvals from distinct accounts"));
        let elsewhere = crate::hint::approve(&self.run_id, &decl.name, &self.run.store());
        // Offering "approve" to someone whose approval cannot count would be a lie.
        let cannot_approve = if decl.separate_approver && self.user == self.starter {
            Some(format!(
                "{} started this run, and this gate needs another account's approval: {elsewhere}",
                self.user
            ))
        } else if self.has_approved(node, &self.user) {
            Some(format!(
                "{} has approved already; the other approvals come from other accounts: {elsewhere}",
                self.user
            ))
        } else {
            None
        };
        crate::prompt::Ask {
            gate: decl.name.clone(),
            title: decl.title.clone().unwrap_or_else(|| "manual step".into()),
            instructions: decl.instructions.clone().unwrap_or_default(),
            needs,
            cannot_approve,
        }
    }

    // The gate is decided: an open prompt for it closes, saying so.
    fn close_prompt(&self, node: usize, why: String) {
        if let Some(p) = &self.prompter {
            p.decided(
                &self.plan.steps[node].decl.name,
                format!("{why}: this prompt is closed"),
            );
        }
    }

    // A rejection waymark itself decides (timeout, failed rehearsal), journaled like a
    // person's so `status` says who and why.
    fn reject_by_waymark(&self, node: usize, why: String) -> GateState {
        let ev = Event::GateRejected {
            gate: self.plan.steps[node].decl.name.clone(),
            by: "waymark".into(),
            host: current_host(),
            note: Some(why.clone()),
            plan_fingerprint: self.plan.fingerprint.clone(),
            account: None,
            at: None,
        };
        self.close_prompt(
            node,
            format!(
                "gate {} was rejected: {why}",
                self.plan.steps[node].decl.name
            ),
        );
        if let Err(e) = self.journal_decision(ev) {
            return GateState::Rejected(format!("{why} (and it could not be journaled: {e})"));
        }
        GateState::Rejected(why)
    }
}
