//! Where a run and each of its steps stand: the names `status`, `runs` and the JSON
//! document use, in one place so no caller matches strings.

use crate::journal::record::FinalStatus;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a run stands (SPEC §3 `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RunStatus {
    /// A process holds the lock and the run has not stopped.
    Running,
    /// Finished, every step succeeded, approved or skipped.
    Succeeded,
    /// Finished with a failed step or a rejected gate.
    Failed,
    /// Stopped to wait for a person: a gate approval or a decision.
    Paused,
    /// Stopped by Ctrl-C / SIGTERM.
    Cancelled,
    /// No terminal or paused record and nobody holds the lock: the process died.
    Crashed,
    /// `waymark rollback` undid the run.
    RolledBack,
}

impl RunStatus {
    /// The name used in `status` output and JSON.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Paused => "paused",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Crashed => "crashed",
            RunStatus::RolledBack => "rolled_back",
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<FinalStatus> for RunStatus {
    fn from(s: FinalStatus) -> Self {
        match s {
            FinalStatus::Succeeded => RunStatus::Succeeded,
            FinalStatus::Failed => RunStatus::Failed,
            FinalStatus::Cancelled => RunStatus::Cancelled,
            FinalStatus::RolledBack => RunStatus::RolledBack,
        }
    }
}

/// Where a step or gate stands (SPEC §3 `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StepState {
    /// Not started.
    Pending,
    /// An attempt is running (or a retry is due) in a live run.
    Running,
    /// Its last attempt succeeded (or a check probe or an operator said it is done).
    Succeeded,
    /// Its last attempt failed and no retry follows.
    Failed,
    /// It will not run in this run.
    Skipped,
    /// A gate waiting for approvals.
    AwaitingApproval,
    /// A gate that was approved.
    Approved,
    /// A gate that was rejected.
    Rejected,
    /// Started with no end recorded and nobody running it: it may or may not have happened.
    Unknown,
    /// Its undo closure ran.
    RolledBack,
}

impl StepState {
    /// The name used in `status` output and JSON.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::AwaitingApproval => "awaiting_approval",
            StepState::Approved => "approved",
            StepState::Rejected => "rejected",
            StepState::Unknown => "unknown",
            StepState::RolledBack => "rolled_back",
        }
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
