//! A run without its steps: only the run-level records are decoded, so `runs` and
//! `resume`'s choice of run stay cheap on long journals.

use super::replay::Replay;
use super::RunStatus;
use crate::journal::record::{Event, Record};
use crate::journal::JournalError;
use crate::state::Run;

/// Record types that change where the run as a whole stands (its status, start and end);
/// every other record is about one step. [`RunSummary`] replays only these, so a step
/// record must never change the run's status (the tests compare both replays).
pub(super) const RUN_LEVEL: [&str; 5] = [
    "run_started",
    "run_resumed",
    "run_paused",
    "rollback_started",
    "run_finished",
];

pub(super) fn is_run_level(event: &Event) -> bool {
    matches!(
        event,
        Event::RunStarted { .. }
            | Event::RunResumed { .. }
            | Event::RunPaused { .. }
            | Event::RollbackStarted { .. }
            | Event::RunFinished { .. }
    )
}

/// A run without its steps: what `runs` lists and how `resume` finds the latest
/// unfinished run, read without decoding every step record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RunSummary {
    /// The run's id.
    pub run_id: String,
    /// The runbook's declared name.
    pub runbook: String,
    /// Where the run stands; the same as [`RunState::status`].
    pub status: RunStatus,
    /// When the run started.
    pub started_at: Option<String>,
    /// When it last finished; cleared by a resume.
    pub finished_at: Option<String>,
}

impl RunSummary {
    /// Summarize a run from its records (step records are ignored).
    pub(crate) fn replay(records: &[Record], lock_held: bool) -> RunSummary {
        let mut replay = Replay::run_level_only();
        for record in records.iter().filter(|r| is_run_level(&r.event)) {
            replay.apply(record);
        }
        let state = replay.finish(lock_held);
        RunSummary {
            run_id: state.run_id,
            runbook: state.runbook,
            status: state.status,
            started_at: state.started_at,
            finished_at: state.finished_at,
        }
    }

    /// Read and summarize `run`: every line's checksum and sequence number is verified,
    /// only run-level records are decoded. Also returns the journal's warnings.
    pub(crate) fn load(run: &Run) -> Result<(RunSummary, Vec<String>), JournalError> {
        let contents = run.read_selected(&|t| RUN_LEVEL.contains(&t))?;
        let summary = RunSummary::replay(&contents.records, run.is_held());
        Ok((summary, contents.warnings))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{started, DIAMOND};
    use super::*;
    use crate::journal::record::FinalStatus;
    use crate::run_state::RunState;
    use crate::state::Store;
    use serde_json::{json, Value};

    #[test]
    fn run_level_type_names_are_the_run_level_events() {
        let s = || "x".to_string();
        let every_event = [
            started(DIAMOND),
            Event::RunResumed {
                user: s(),
                host: s(),
                plan_fingerprint: s(),
                changes: vec![],
                gates: vec![],
            },
            Event::StepStarted {
                step: s(),
                attempt: 1,
            },
            Event::StepSucceeded {
                step: s(),
                attempt: 1,
                output: Value::Null,
                verified: false,
            },
            Event::StepFailed {
                step: s(),
                attempt: 1,
                error: s(),
                will_retry: false,
            },
            Event::StepSkipped {
                step: s(),
                reason: s(),
            },
            Event::StepMarkedDone { step: s(), by: s() },
            Event::StepUnknown {
                step: s(),
                attempt: 1,
            },
            Event::GateWaiting { gate: s() },
            Event::GateApproved {
                gate: s(),
                by: s(),
                host: s(),
                note: None,
                plan_fingerprint: s(),
                account: None,
                at: None,
            },
            Event::GateRejected {
                gate: s(),
                by: s(),
                host: s(),
                note: None,
                plan_fingerprint: s(),
                account: None,
                at: None,
            },
            Event::RunPaused {
                reason: s(),
                waiting_on: vec![],
            },
            Event::RollbackStarted { user: s() },
            Event::UndoStarted { step: s() },
            Event::UndoSucceeded { step: s() },
            Event::UndoFailed {
                step: s(),
                error: s(),
            },
            Event::RunFinished {
                status: FinalStatus::Failed,
            },
        ];
        let mut run_level = Vec::new();
        for e in &every_event {
            let kind = serde_json::to_value(e).unwrap()["type"].clone();
            let kind = kind.as_str().unwrap().to_string();
            assert_eq!(
                RUN_LEVEL.contains(&kind.as_str()),
                is_run_level(e),
                "{kind}"
            );
            if is_run_level(e) {
                run_level.push(kind);
            }
        }
        assert_eq!(run_level, RUN_LEVEL);
    }

    #[test]
    fn a_summary_read_from_disk_matches_the_full_load() {
        let tmp = tempfile::tempdir().unwrap();
        let run = Store::dir(tmp.path()).create_run().unwrap();
        let (w, _) = run.create_journal(started(DIAMOND)).unwrap();
        w.append_blocking(vec![
            Event::StepStarted {
                step: "a".into(),
                attempt: 1,
            },
            Event::StepSucceeded {
                step: "a".into(),
                attempt: 1,
                output: json!({"type": "run_finished"}),
                verified: false,
            },
            Event::RunFinished {
                status: FinalStatus::Failed,
            },
        ])
        .unwrap();
        let (full, _) = RunState::load(&run).unwrap();
        let (summary, warnings) = RunSummary::load(&run).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(summary.status, RunStatus::Failed);
        assert_eq!(
            (
                &summary.run_id,
                &summary.runbook,
                summary.status,
                &summary.finished_at
            ),
            (&full.run_id, &full.runbook, full.status, &full.finished_at)
        );
    }
}
