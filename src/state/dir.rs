//! The directory store: the state as files under one directory (`./.waymark` by default).
//!
//! ```text
//! STATE_DIR/runs/RUN_ID/journal.jsonl   the journal (crate::journal's line format)
//!                      /lock            flock of the driving process + who it is
//!                      /inbox/*.json    decisions handed in (crate::inbox)
//!                      /logs/STEP.log   step logs, rotated to .log.1 (crate::step_log)
//! STATE_DIR/lab/NAME.json|.log|.lock    a lab estate (estate::lab_state::StateFile)
//! ```
//!
//! This is the only place that knows this layout; existing state directories keep
//! working because it is exactly the layout earlier versions wrote.

use crate::inbox::{self, Drained, InboxError, InboxItem};
use crate::journal::{
    self, Event, JournalContents, JournalError, JournalWriter, LockError, Record, RunLock,
    RunOrigin,
};
use crate::redact::Redactor;
use crate::step_log::{log_file_name, StepLog, StepLogOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::StepLogBytes;

/// File name of a run's journal inside its run directory.
const JOURNAL_FILE: &str = journal::JOURNAL_FILE;
/// Directory of the step logs inside a run directory.
const LOGS_DIR: &str = "logs";
/// Directory of the lab estates under the state directory.
const LAB_DIR: &str = "lab";

/// A state directory.
#[derive(Debug, Clone)]
pub struct DirStore {
    root: Arc<Path>,
}

impl DirStore {
    /// The store rooted at `root` (created when the first run is).
    pub fn new(root: &Path) -> DirStore {
        DirStore {
            root: Arc::from(root),
        }
    }

    pub(super) fn flag(&self) -> String {
        crate::hint::state_dir_flag(&self.root)
    }

    pub(super) fn describe(&self) -> String {
        self.root.display().to_string()
    }

    pub(super) fn describe_runs(&self) -> String {
        self.root.join(journal::RUNS_DIR).display().to_string()
    }

    pub(super) fn run_ids(&self) -> Result<Vec<String>, String> {
        let runs_dir = self.root.join(journal::RUNS_DIR);
        let entries = match std::fs::read_dir(&runs_dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(format!("cannot list runs in {}: {e}", runs_dir.display())),
        };
        Ok(entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect())
    }

    pub(super) fn create_run(&self) -> io::Result<DirRun> {
        std::fs::create_dir_all(&self.root).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot create {}: {e}", self.root.display()),
            )
        })?;
        let (id, dir) = journal::create_run_dir(&self.root).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create the run directory: {e}"))
        })?;
        Ok(DirRun {
            store: self.clone(),
            id,
            dir: Arc::from(dir),
        })
    }

    pub(super) fn run(&self, run_id: &str) -> Result<DirRun, String> {
        let dir = journal::run_dir(&self.root, run_id)?;
        Ok(DirRun {
            store: self.clone(),
            id: run_id.to_string(),
            dir: Arc::from(dir),
        })
    }

    pub(super) fn lab(&self, name: &str) -> LabFiles {
        let dir = self.root.join(LAB_DIR);
        LabFiles {
            base: dir.join(format!("{name}.json")),
            lock: dir.join(format!("{name}.lock")),
            tmp: dir.join(format!("{name}.json.tmp")),
            log: dir.join(format!("{name}.log")),
        }
    }
}

/// A run directory.
#[derive(Debug, Clone)]
pub struct DirRun {
    store: DirStore,
    id: String,
    dir: Arc<Path>,
}

impl DirRun {
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    pub(super) fn store(&self) -> &DirStore {
        &self.store
    }

    fn journal_path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }

    pub(super) fn exists(&self) -> bool {
        self.journal_path().exists()
    }

    pub(super) fn read_journal(&self) -> Result<JournalContents, JournalError> {
        journal::read_journal(&self.journal_path())
    }

    pub(super) fn read_selected(
        &self,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<JournalContents, JournalError> {
        journal::read_selected(&self.journal_path(), wanted)
    }

    pub(super) fn read_origin(&self) -> Option<RunOrigin> {
        journal::read_origin(&self.journal_path())
    }

    pub(super) fn is_held(&self) -> bool {
        journal::is_held(&self.dir)
    }

    pub(super) fn lock(&self) -> Result<RunLock, LockError> {
        RunLock::acquire(&self.dir)
    }

    pub(super) fn create_journal(
        &self,
        first: Event,
    ) -> Result<(JournalWriter, Record), JournalError> {
        JournalWriter::create(&self.dir, first)
    }

    pub(super) fn open_journal(&self) -> Result<(JournalWriter, JournalContents), JournalError> {
        JournalWriter::open_existing(&self.dir)
    }

    pub(super) fn submit_decision(&self, item: &InboxItem) -> Result<String, InboxError> {
        inbox::submit(&self.dir, item).map(|p| p.display().to_string())
    }

    pub(super) fn pending_decisions(&self) -> Result<Drained, InboxError> {
        inbox::drain(&self.dir)
    }

    pub(super) fn step_log(
        &self,
        step: &str,
        redactor: Redactor,
        options: StepLogOptions,
    ) -> io::Result<StepLog> {
        StepLog::create(&self.dir.join(LOGS_DIR), step, redactor, options)
    }

    fn step_log_path(&self, step: &str) -> PathBuf {
        self.dir.join(LOGS_DIR).join(log_file_name(step))
    }

    pub(super) fn read_step_log(&self, step: &str) -> StepLogBytes {
        let path = self.step_log_path(step);
        let mut rotated = path.clone().into_os_string();
        rotated.push(".1");
        StepLogBytes {
            rotated: std::fs::read(rotated).unwrap_or_default(),
            current: std::fs::read(&path).ok(),
        }
    }

    pub(super) fn follow_step_log(&self, step: &str) -> crate::follow::LogTail {
        crate::follow::LogTail::new(self.step_log_path(step))
    }
}

/// The files of one lab estate.
#[derive(Debug, Clone)]
pub struct LabFiles {
    /// `lab/NAME.json`: the estate as of its last compaction.
    pub base: PathBuf,
    /// `lab/NAME.lock`: held while one process changes the estate.
    pub lock: PathBuf,
    /// `lab/NAME.json.tmp`: a new base before it is renamed into place.
    pub tmp: PathBuf,
    /// `lab/NAME.log`: the operations since the base.
    pub log: PathBuf,
}
