//! The directory store: the state as files under one directory (`./.waymark` by default).
//!
//! ```text
//! STATE_DIR/runs/RUN_ID/journal.jsonl   the journal (crate::journal's line format)
//!                      /lock            flock of the driving process + who it is
//!                      /inbox/*.json    decisions handed in (crate::inbox)
//!                      /logs/STEP.log   step logs, rotated to .log.1 (crate::step_log)
//!                      /logs/shared.txt the lines of steps that logged little, each
//!                                       prefixed with STEP (crate::step_log::shared)
//! STATE_DIR/lab/NAME.json|.log|.lock    a lab estate (estate::lab_state::StateFile)
//! ```
//!
//! This is the only place that knows this layout; existing state directories keep
//! working because it is the layout earlier versions wrote plus `logs/shared.txt`, which
//! a step's log is read from only when the file exists.

use crate::inbox::{self, Drained, InboxError, InboxItem};
use crate::journal::{
    self, Event, JournalContents, JournalError, JournalWriter, LockError, Record, RunLock,
    RunOrigin,
};
use crate::redact::Redactor;
use crate::step_log::{log_file_name, shared, StepLog, StepLogOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::StepLogBytes;

/// File name of a run's journal inside its run directory.
const JOURNAL_FILE: &str = journal::JOURNAL_FILE;
/// Directory under the state dir that holds one directory per run.
const RUNS_DIR: &str = "runs";
/// Directory of the step logs inside a run directory.
const LOGS_DIR: &str = "logs";
/// The shared step log inside the logs directory: not a name `log_file_name` yields.
const SHARED_LOG: &str = "shared.txt";
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
        self.root.join(RUNS_DIR).display().to_string()
    }

    pub(super) fn run_ids(&self) -> Result<Vec<String>, String> {
        let runs_dir = self.root.join(RUNS_DIR);
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
        let (id, dir) = create_run_dir(&self.root).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create the run directory: {e}"))
        })?;
        Ok(DirRun {
            store: self.clone(),
            id,
            dir: Arc::from(dir),
            verified: Default::default(),
        })
    }

    pub(super) fn run(&self, run_id: &str) -> Result<DirRun, String> {
        let dir = self.root.join(RUNS_DIR).join(super::check_run_id(run_id)?);
        Ok(DirRun {
            store: self.clone(),
            id: run_id.to_string(),
            dir: Arc::from(dir),
            verified: Default::default(),
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

/// Create a fresh run directory under `STATE_DIR/runs/` and return its id and path.
///
/// The directory is created with `create_dir` (not `_all`) so two runs started in the
/// same second with the same random suffix cannot share a directory: the loser retries.
fn create_run_dir(state_dir: &Path) -> io::Result<(String, PathBuf)> {
    let runs = state_dir.join(RUNS_DIR);
    std::fs::create_dir_all(&runs)?;
    let mut last_err = None;
    for _ in 0..32 {
        let id = super::new_run_id();
        let dir = runs.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                // The new entry in runs/ must survive a crash, or the journal inside is lost.
                journal::sync_dir(&runs)?;
                return Ok((id, dir));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("could not pick a free run id")))
}

/// A run directory.
#[derive(Debug, Clone)]
pub struct DirRun {
    store: DirStore,
    id: String,
    dir: Arc<Path>,
    /// What this process verified when it reopened the journal to append: its first
    /// `.0` records in its first `.1` bytes. Reading back what was appended since starts
    /// there (see `read_after`).
    verified: Arc<std::sync::OnceLock<(u64, u64)>>,
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

    // The records after `seq`. When they follow the prefix this process verified on
    // reopening (it holds the run, so nobody else appended), only the bytes after that
    // prefix are read and verified: a resumed 10,000-step run's recap reads its own few
    // lines, not 3 MB again. Otherwise every line is verified.
    pub(super) fn read_after(&self, seq: u64) -> Result<JournalContents, JournalError> {
        match self.verified.get() {
            Some(&(records, len)) if records == seq => {
                journal::read_appended(&self.journal_path(), len, seq)
            }
            _ => journal::read_after(&self.journal_path(), seq),
        }
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
        let (writer, contents) = JournalWriter::open_existing(&self.dir)?;
        // The writer has appended nothing yet, and cut off any torn tail: the file is the
        // verified records, exactly.
        if let Ok(meta) = std::fs::metadata(self.journal_path()) {
            let _ = self
                .verified
                .set((contents.records.len() as u64, meta.len()));
        }
        Ok((writer, contents))
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
        let logs = self.dir.join(LOGS_DIR);
        let shared = logs.join(SHARED_LOG);
        Ok(StepLog::create_sharing(
            &logs, &shared, step, redactor, options,
        ))
    }

    fn step_log_path(&self, step: &str) -> PathBuf {
        self.dir.join(LOGS_DIR).join(log_file_name(step))
    }

    /// The logs of `steps`, reading the shared file once for all of them.
    pub(super) fn read_step_logs(&self, steps: &[String]) -> Vec<StepLogBytes> {
        let bytes = std::fs::read(self.dir.join(LOGS_DIR).join(SHARED_LOG)).unwrap_or_default();
        let by_stem = shared::split(&bytes);
        steps
            .iter()
            .map(|step| {
                let early = by_stem
                    .get(shared::stem(step).as_bytes())
                    .cloned()
                    .unwrap_or_default();
                self.own_step_log(step, early)
            })
            .collect()
    }

    /// `step`'s own files after its `early` lines from the shared file, which are older
    /// than anything in them.
    fn own_step_log(&self, step: &str, mut early: Vec<u8>) -> StepLogBytes {
        let path = self.step_log_path(step);
        let mut rotated = path.clone().into_os_string();
        rotated.push(".1");
        let rotated = std::fs::read(rotated).unwrap_or_default();
        let current = std::fs::read(&path).ok();
        if early.is_empty() {
            return StepLogBytes { rotated, current };
        }
        if rotated.is_empty() {
            early.extend(current.unwrap_or_default());
            return StepLogBytes {
                rotated,
                current: Some(early),
            };
        }
        early.extend(rotated);
        StepLogBytes {
            rotated: early,
            current,
        }
    }

    pub(super) fn follow_step_logs(&self, steps: &[String]) -> Vec<crate::follow::StepTail> {
        let shared = crate::follow::SharedTail::new(
            self.dir.join(LOGS_DIR).join(SHARED_LOG),
            steps.iter().map(|s| shared::stem(s)),
        );
        steps
            .iter()
            .map(|step| {
                crate::follow::StepTail::new(
                    shared.clone(),
                    &shared::stem(step),
                    self.step_log_path(step),
                )
            })
            .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Run, Store};

    // The layout is a promise to every existing state directory: pinned literally.
    #[test]
    fn runs_live_where_earlier_versions_put_them() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::dir(tmp.path());
        let run = store.create_run().unwrap();
        let dir = tmp.path().join("runs").join(run.id());
        assert!(dir.is_dir());
        run.create_journal(Event::sample_run_started(&[])).unwrap();
        assert!(dir.join("journal.jsonl").is_file());
        let _owned = run.own().unwrap();
        assert!(dir.join("lock").is_file());
        let log = run
            .step_log("db:backup", Redactor::new(), Default::default())
            .unwrap();
        log.line("out", "hello");
        let shared = std::fs::read_to_string(dir.join("logs/shared.txt")).unwrap();
        assert!(shared.starts_with("db%3Abackup "), "{shared}");
        assert!(shared.ends_with(" [out] hello\n"), "{shared}");
        assert!(!dir.join("logs").join(log_file_name("db:backup")).exists());
        // A step that logs more gets `logs/<name>.log`, as every step used to.
        log.line(
            "out",
            &"x".repeat(crate::step_log::shared::SHARED_LIMIT as usize),
        );
        assert!(dir.join("logs/db%3Abackup.log").is_file());
        let Store::Dir(d) = &store else {
            unreachable!()
        };
        let lab = d.lab("demo-lab");
        assert_eq!(lab.base, tmp.path().join("lab/demo-lab.json"));
        assert_eq!(lab.log, tmp.path().join("lab/demo-lab.log"));
        assert_eq!(store.run_ids().unwrap(), [run.id().to_string()]);
    }

    #[test]
    fn fresh_runs_get_distinct_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::dir(tmp.path());
        let (a, b) = (store.create_run().unwrap(), store.create_run().unwrap());
        assert_ne!(a.id(), b.id());
        assert!(!a.exists(), "no journal yet");
    }

    #[test]
    fn a_step_log_reads_back_with_its_rotated_generation() {
        let tmp = tempfile::tempdir().unwrap();
        let run = Store::dir(tmp.path()).run("r1").unwrap();
        assert_eq!(run.read_step_log("s"), StepLogBytes::default());
        let Run::Dir(r) = &run else { unreachable!() };
        let logs = r.dir.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let name = log_file_name("s");
        std::fs::write(logs.join(format!("{name}.1")), "old\n").unwrap();
        std::fs::write(logs.join(&name), "new\n").unwrap();
        let got = run.read_step_log("s");
        assert_eq!(got.rotated, b"old\n");
        assert_eq!(got.current.as_deref(), Some(&b"new\n"[..]));
    }

    #[test]
    fn a_step_log_reads_as_its_shared_lines_then_its_own_file() {
        let tmp = tempfile::tempdir().unwrap();
        let run = Store::dir(tmp.path()).run("r1").unwrap();
        let log = |step: &str| {
            run.step_log(step, Redactor::new(), Default::default())
                .unwrap()
        };
        let (a, b) = (log("a"), log("b"));
        a.line("log", "a first");
        b.line("log", "b only");
        let big = "y".repeat(crate::step_log::shared::SHARED_LIMIT as usize);
        a.line("log", &big);
        a.line("log", "a last");
        // A later attempt (a new handle) finds `a`'s own file and keeps to it.
        log("a").line("log", "a retried");
        log("c");
        let names = ["a", "b", "c"].map(String::from);
        let got = run.read_step_logs(&names);
        let text = |l: &StepLogBytes| String::from_utf8(l.current.clone().unwrap()).unwrap();
        let a_text = text(&got[0]);
        let a_lines: Vec<&str> = a_text
            .lines()
            .map(|l| l.split_once(' ').unwrap().1)
            .collect();
        assert_eq!(a_lines.len(), 4, "{a_lines:?}");
        assert_eq!(a_lines[0], "[log] a first");
        assert_eq!(a_lines[1], format!("[log] {big}"));
        assert_eq!(a_lines[2..], ["[log] a last", "[log] a retried"]);
        assert!(text(&got[1]).ends_with(" [log] b only\n"));
        assert_eq!(text(&got[1]).lines().count(), 1);
        assert_eq!(
            got[2],
            StepLogBytes::default(),
            "a step that logged nothing"
        );
        assert!(got.iter().all(|l| l.rotated.is_empty()));
        assert_eq!(run.read_step_log("b"), got[1]);
    }

    #[test]
    fn shared_lines_come_before_a_rotated_generation() {
        let tmp = tempfile::tempdir().unwrap();
        let run = Store::dir(tmp.path()).run("r1").unwrap();
        let Run::Dir(r) = &run else { unreachable!() };
        let logs = r.dir.join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join("shared.txt"), "s first\nt other\n").unwrap();
        std::fs::write(logs.join("s.log.1"), "older\n").unwrap();
        std::fs::write(logs.join("s.log"), "newest\n").unwrap();
        let got = run.read_step_log("s");
        assert_eq!(got.rotated, b"first\nolder\n");
        assert_eq!(got.current.as_deref(), Some(&b"newest\n"[..]));
    }
}
