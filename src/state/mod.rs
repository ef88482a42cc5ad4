//! Where a run's state lives: one interface for runs, their journal, ownership, inbox of
//! decisions and step logs, and for lab estates — behind which sits a store.
//!
//! The state location (`--state-dir` / `WAYMARK_STATE_DIR`) is read once, at the edge
//! (`cli`), into a [`Store`]; every other module asks the store, or a [`Run`] it opened,
//! for what it needs. No module outside `state/` (and the file formats it delegates to:
//! [`crate::journal`]'s writer and reader, [`crate::inbox`], [`crate::step_log`],
//! [`crate::follow`]) sees a path or joins a sub-path of the state
//! directory; the PostgreSQL store ([`pg`], team mode) is the second store behind it.
//!
//! The stores are an enum, not trait objects: the set is closed and known (a directory,
//! PostgreSQL), each operation's contract differs in ways a caller must not have to
//! care about (durability = fsync vs a committed transaction, ownership = flock vs a
//! lease with an epoch, follow = polling a file vs polling rows), and an enum keeps those
//! differences in one `match` per operation instead of behind `dyn` with boxed futures.
//! See ARCHITECTURE.md.

mod dir;
mod lab;
mod pg;

pub(crate) use dir::{DirRun, DirStore};
pub(crate) use pg::{PgRun, PgStore};

use crate::inbox::{Drained, InboxError, InboxItem};
use crate::journal::{
    Event, JournalContents, JournalError, JournalWriter, LockError, Record, RunLock, RunOrigin,
};
use crate::redact::Redactor;
use crate::step_log::{StepLog, StepLogOptions};
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

/// A new run id such as `20261123-221500-ab12`: UTC start time, then 4 random hex digits.
///
/// Ids sort by start time (to the second), so listing them lists runs in the order they
/// began.
pub(crate) fn new_run_id() -> String {
    let now = SystemTime::now();
    // "2026-11-23T22:15:00Z" -> "20261123-221500"
    let stamp = humantime::format_rfc3339_seconds(now).to_string();
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    let (date, time) = digits.split_at(digits.len().min(8));
    format!("{date}-{time}-{:04x}", random_u16())
}

/// `run_id` if it can be a run id (also never a path: no separator, `.` or `..`), else why not.
pub(crate) fn check_run_id(run_id: &str) -> Result<&str, String> {
    let ok = !run_id.is_empty()
        && run_id != "."
        && run_id != ".."
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(run_id)
    } else {
        Err(format!(
            "`{run_id}` is not a run id (expected something like 20261123-221500-ab12; see `waymark runs`)"
        ))
    }
}

/// Two random bytes from the OS, or from the clock and pid where there is no /dev/urandom.
fn random_u16() -> u16 {
    #[cfg(unix)]
    {
        use std::io::Read;
        let mut buf = [0u8; 2];
        if std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut buf))
            .is_ok()
        {
            return u16::from_le_bytes(buf);
        }
    }
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // Mix in the pid so two processes started in the same nanosecond bucket still differ.
    let mixed = nanos ^ std::process::id().rotate_left(16);
    (mixed ^ (mixed >> 16)) as u16
}

/// The state of every run and lab estate, as chosen by `--state-dir`.
#[derive(Debug, Clone)]
pub enum Store {
    /// A directory on this machine (the default, `./.waymark`).
    Dir(DirStore),
    /// A PostgreSQL database shared by a team (`postgres://…`).
    Pg(PgStore),
}

impl Store {
    /// The store named by `--state-dir` / `WAYMARK_STATE_DIR`: a `postgres://` or
    /// `postgresql://` URL (connected, schema brought up to date), else a directory.
    pub fn open(location: &std::path::Path) -> Result<Store, crate::diagnostic::Diagnostic> {
        match location.to_str().filter(|l| pg::is_url(l)) {
            Some(url) => PgStore::open(url).map(Store::Pg),
            None => Ok(Store::Dir(DirStore::new(location))),
        }
    }

    /// The directory store at `dir` (tests, and code that has only a directory).
    pub fn dir(dir: &std::path::Path) -> Store {
        Store::Dir(DirStore::new(dir))
    }

    /// ` --state-dir LOCATION` when the location is not the default, else nothing: what
    /// every command waymark tells an operator to type needs to reach this store.
    pub fn flag(&self) -> String {
        match self {
            Store::Dir(d) => d.flag(),
            Store::Pg(p) => p.flag(),
        }
    }

    /// The store for messages ("no runs in …").
    pub fn describe(&self) -> String {
        match self {
            Store::Dir(d) => d.describe(),
            Store::Pg(p) => p.describe(),
        }
    }

    /// Where the runs are, for messages ("no runs in …/runs").
    pub fn describe_runs(&self) -> String {
        match self {
            Store::Dir(d) => d.describe_runs(),
            Store::Pg(p) => p.describe(),
        }
    }

    /// The ids of every run in the store, in no particular order.
    pub fn run_ids(&self) -> Result<Vec<String>, String> {
        match self {
            Store::Dir(d) => d.run_ids(),
            Store::Pg(p) => p.run_ids(),
        }
    }

    /// A fresh run with a new id, not yet holding a journal.
    pub fn create_run(&self) -> io::Result<Run> {
        match self {
            Store::Dir(d) => d.create_run().map(Run::Dir),
            Store::Pg(p) => p.create_run().map(Run::Pg),
        }
    }

    /// The run `run_id` (which may not exist: see [`Run::exists`]), refusing ids that
    /// are not run ids.
    pub fn run(&self, run_id: &str) -> Result<Run, String> {
        match self {
            Store::Dir(d) => d.run(run_id).map(Run::Dir),
            Store::Pg(p) => p.run(run_id).map(Run::Pg),
        }
    }

    /// Where the lab estate `name` keeps its state.
    pub fn lab(&self, name: &str) -> LabStore {
        match self {
            Store::Dir(d) => LabStore::Files(d.lab(name)),
            Store::Pg(p) => LabStore::Rows(p.lab(name)),
        }
    }
}

/// One run's state in a [`Store`].
#[derive(Debug, Clone)]
pub enum Run {
    /// A run directory.
    Dir(DirRun),
    /// A run in a database.
    Pg(PgRun),
}

/// What a step's log holds now: the rotated generation (empty when none) and the current
/// file (`None` when the step never logged).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepLogBytes {
    /// The older, rotated lines.
    pub rotated: Vec<u8>,
    /// The current lines.
    pub current: Option<Vec<u8>>,
}

/// Proof that this process drives a run; ownership ends when it is dropped.
#[derive(Debug)]
pub enum Ownership {
    /// The run directory's `flock`, released by the kernel however the holder exits.
    Lock(RunLock),
    /// A database lease with an epoch, renewed while held, fencing out the previous holder.
    Lease(pg::Lease),
}

impl Run {
    /// The run's id.
    pub fn id(&self) -> &str {
        match self {
            Run::Dir(r) => r.id(),
            Run::Pg(r) => r.id(),
        }
    }

    /// The store the run is in.
    pub fn store(&self) -> Store {
        match self {
            Run::Dir(r) => Store::Dir(r.store().clone()),
            Run::Pg(r) => Store::Pg(r.store().clone()),
        }
    }

    /// Whether the run has a journal (was ever started).
    pub fn exists(&self) -> bool {
        match self {
            Run::Dir(r) => r.exists(),
            Run::Pg(r) => r.exists(),
        }
    }

    /// Every record of the journal, verified.
    pub fn read_journal(&self) -> Result<JournalContents, JournalError> {
        match self {
            Run::Dir(r) => r.read_journal(),
            Run::Pg(r) => r.read_selected(&|_| true),
        }
    }

    /// Every record verified, only those whose type `wanted` accepts decoded.
    pub fn read_selected(
        &self,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<JournalContents, JournalError> {
        match self {
            Run::Dir(r) => r.read_selected(wanted),
            Run::Pg(r) => r.read_selected(wanted),
        }
    }

    /// Every record verified, only those after sequence number `seq` decoded and
    /// returned: what was appended since a replay of the first `seq`.
    pub(crate) fn read_after(&self, seq: u64) -> Result<JournalContents, JournalError> {
        match self {
            Run::Dir(r) => r.read_after(seq),
            // Rows are verified and decoded as they arrive; keep the new ones.
            Run::Pg(r) => r.read_selected(&|_| true).map(|mut c| {
                c.records.retain(|r| r.seq > seq);
                c
            }),
        }
    }

    /// The runbook, params and inventory off the first record, unverified (a hint).
    pub fn read_origin(&self) -> Option<RunOrigin> {
        match self {
            Run::Dir(r) => r.read_origin(),
            Run::Pg(r) => r.read_origin(),
        }
    }

    /// Wait before a follower looks at the run again: `poll` for a directory; for a
    /// database until the run changed (LISTEN/NOTIFY), with a polling fallback.
    pub(crate) fn wait_for_change(&self, poll: std::time::Duration) {
        match self {
            Run::Dir(_) => std::thread::sleep(poll),
            Run::Pg(r) => r.wait_change(poll),
        }
    }

    /// Whether some process drives the run now.
    pub fn is_held(&self) -> bool {
        match self {
            Run::Dir(r) => r.is_held(),
            Run::Pg(r) => r.is_held(),
        }
    }

    /// Take ownership of the run, or say who has it.
    pub fn own(&self) -> Result<Ownership, LockError> {
        match self {
            Run::Dir(r) => r.lock().map(Ownership::Lock),
            Run::Pg(r) => r.own().map(Ownership::Lease),
        }
    }

    /// Start the journal with `first` (a `run_started`); durable when this returns.
    pub fn create_journal(&self, first: Event) -> Result<(JournalWriter, Record), JournalError> {
        match self {
            Run::Dir(r) => r.create_journal(first),
            Run::Pg(r) => r.create_journal(first),
        }
    }

    /// Reopen the journal to continue the run, with its verified contents.
    pub fn open_journal(&self) -> Result<(JournalWriter, JournalContents), JournalError> {
        match self {
            Run::Dir(r) => r.open_journal(),
            Run::Pg(r) => r.open_journal(),
        }
    }

    /// Durably hand a decision to the run; returns where it was put, for messages.
    pub fn submit_decision(&self, item: &InboxItem) -> Result<String, InboxError> {
        match self {
            Run::Dir(r) => r.submit_decision(item),
            Run::Pg(r) => r.submit_decision(item),
        }
    }

    /// The decisions handed in and not yet removed, oldest first.
    pub fn pending_decisions(&self) -> Result<Drained, InboxError> {
        match self {
            Run::Dir(r) => r.pending_decisions(),
            Run::Pg(r) => r.pending_decisions(),
        }
    }

    /// The log `step` writes to (appending to what earlier attempts wrote).
    pub fn step_log(
        &self,
        step: &str,
        redactor: Redactor,
        options: StepLogOptions,
    ) -> io::Result<StepLog> {
        match self {
            Run::Dir(r) => r.step_log(step, redactor, options),
            Run::Pg(r) => r.step_log(step, redactor, options),
        }
    }

    /// What `step`'s log holds now.
    pub fn read_step_log(&self, step: &str) -> StepLogBytes {
        let mut logs = self.read_step_logs(&[step.to_string()]);
        logs.pop().unwrap_or_default()
    }

    /// What the logs of `steps` hold now, in order: one read of what they share.
    pub fn read_step_logs(&self, steps: &[String]) -> Vec<StepLogBytes> {
        match self {
            Run::Dir(r) => r.read_step_logs(steps),
            Run::Pg(r) => steps.iter().map(|s| r.read_step_log(s)).collect(),
        }
    }

    /// Readers of the logs of `steps` as they grow, from their start (`log --follow`),
    /// in order; together they read what the steps share once per poll.
    pub fn follow_step_logs(&self, steps: &[String]) -> Vec<StepLogTail> {
        match self {
            Run::Dir(r) => r
                .follow_step_logs(steps)
                .into_iter()
                .map(StepLogTail::File)
                .collect(),
            Run::Pg(r) => steps
                .iter()
                .map(|step| StepLogTail::Rows {
                    run: r.clone(),
                    step: step.clone(),
                    after: 0,
                    partial: Vec::new(),
                })
                .collect(),
        }
    }
}

/// The reading position in one step's log as it grows.
#[derive(Debug)]
pub enum StepLogTail {
    /// A step's lines in the shared file, then its own file, followed across rotations.
    File(crate::follow::StepTail),
    /// A log's rows, after the last one read.
    Rows {
        /// The run.
        run: PgRun,
        /// The step.
        step: String,
        /// The last row read.
        after: i64,
        /// Bytes after the last newline.
        partial: Vec<u8>,
    },
}

impl StepLogTail {
    /// The whole lines written since the last call.
    pub fn poll(&mut self) -> Vec<String> {
        match self {
            StepLogTail::File(t) => t.poll(),
            StepLogTail::Rows {
                run,
                step,
                after,
                partial,
            } => {
                let (bytes, last) = run.step_log_since(step, *after);
                *after = last;
                partial.extend(bytes);
                let Some(end) = partial.iter().rposition(|&b| b == b'\n') else {
                    return Vec::new();
                };
                let whole: Vec<u8> = partial.drain(..=end).collect();
                String::from_utf8_lossy(&whole)
                    .lines()
                    .map(str::to_string)
                    .collect()
            }
        }
    }

    /// Everything left, the last line even without its newline (the writer is gone).
    pub fn rest(&mut self) -> Vec<String> {
        if let StepLogTail::File(t) = self {
            return t.rest();
        }
        let mut lines = self.poll();
        if let StepLogTail::Rows { partial, .. } = self {
            if !partial.is_empty() {
                lines.push(String::from_utf8_lossy(partial).into_owned());
                partial.clear();
            }
        }
        lines
    }
}

pub(crate) use lab::LabStore;

impl crate::hint::StateFlag for Store {
    fn flag(&self) -> String {
        Store::flag(self)
    }
}
