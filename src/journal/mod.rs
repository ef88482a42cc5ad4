//! The durable, append-only journal of a run (SPEC §5). Only this module does durable I/O.
//!
//! A run lives in `STATE_DIR/runs/RUN_ID/`: `journal.jsonl` (see [`record`] for the line
//! format), `lock` (held by the one process driving the run) and `inbox/` (approvals
//! submitted from other terminals, see [`crate::inbox`]). The journal is the source of
//! truth; everything `status`, `runs` and `resume` show is derived by replaying it
//! ([`crate::run_state`]).
//!
//! Architecture invariant: this module knows nothing about Rhai, plans or scheduling; it
//! stores and verifies [`Record`]s.

pub mod error;
pub mod identity;
pub mod lock;
pub mod reader;
pub mod record;
pub mod writer;

pub use error::JournalError;
pub use identity::{current_host, current_user};
pub use lock::{is_held, LockError, RunLock};
pub use reader::{read_journal, read_origin, read_selected, JournalContents, RunOrigin};
pub use record::{Event, FinalStatus, GateInfo, PlannedStep, Record};
pub use writer::JournalWriter;

use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// File name of a run's journal inside its run directory.
pub const JOURNAL_FILE: &str = "journal.jsonl";

/// Directory under the state dir that holds one directory per run.
pub const RUNS_DIR: &str = "runs";

/// A new run id such as `20261123-221500-ab12`: UTC start time, then 4 random hex digits.
///
/// Ids sort by start time (to the second), so `ls runs/` lists runs in the order they began.
pub fn new_run_id() -> String {
    let now = SystemTime::now();
    // "2026-11-23T22:15:00Z" -> "20261123-221500"
    let stamp = humantime::format_rfc3339_seconds(now).to_string();
    let digits: String = stamp.chars().filter(char::is_ascii_digit).collect();
    let (date, time) = digits.split_at(digits.len().min(8));
    format!("{date}-{time}-{:04x}", random_u16())
}

/// Create a fresh run directory under `STATE_DIR/runs/` and return its id and path.
///
/// The directory is created with `create_dir` (not `_all`) so two runs started in the
/// same second with the same random suffix cannot share a directory: the loser retries.
pub fn create_run_dir(state_dir: &Path) -> io::Result<(String, PathBuf)> {
    let runs = state_dir.join(RUNS_DIR);
    std::fs::create_dir_all(&runs)?;
    let mut last_err = None;
    for _ in 0..32 {
        let id = new_run_id();
        let dir = runs.join(&id);
        match std::fs::create_dir(&dir) {
            Ok(()) => {
                // The new entry in runs/ must survive a crash, or the journal inside is lost.
                writer::sync_dir(&runs)?;
                return Ok((id, dir));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("could not pick a free run id")))
}

/// The directory of run `run_id`, refusing ids that could escape `STATE_DIR/runs/`.
pub fn run_dir(state_dir: &Path, run_id: &str) -> Result<PathBuf, String> {
    let ok = !run_id.is_empty()
        && run_id != "."
        && run_id != ".."
        && run_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(state_dir.join(RUNS_DIR).join(run_id))
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

/// Crash-consistency testing: with `WAYMARK_CRASH_AFTER_SEQ=N` in the environment, the
/// process kills itself with SIGKILL right after the batch holding record N is durable,
/// before anyone is told — the harshest moment a real crash can pick. Tests use it to
/// stop a run at every journal boundary; it is inert when the variable is unset.
#[cfg(feature = "test-hooks")]
pub(crate) fn crash_point(last_durable_seq: u64) {
    static AT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let at = AT.get_or_init(|| {
        std::env::var("WAYMARK_CRASH_AFTER_SEQ")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if let Some(n) = *at {
        if last_durable_seq >= n {
            #[cfg(unix)]
            // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
            std::process::abort();
        }
    }
}

/// Without the `test-hooks` feature (every release build) there is no crash point: an
/// environment variable must not be able to kill a production run.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(crate) fn crash_point(_last_durable_seq: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_build_honoured_the_crash_hook() {
        // `cargo test` turns the hooks on through the dev-dependency on this package;
        // nothing a release build uses may: not the default features, not a dependency.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let manifest: toml::Table = std::fs::read_to_string(path).unwrap().parse().unwrap();
        let features = manifest["features"].as_table().unwrap();
        let default = features.get("default").and_then(|d| d.as_array());
        assert!(
            default.is_none_or(|d| d.iter().all(|f| f.as_str() != Some("test-hooks"))),
            "{features:?}"
        );
        for (name, f) in features {
            let enables = f.as_array().unwrap().iter();
            assert!(
                name == "test-hooks" || enables.clone().all(|e| e.as_str() != Some("test-hooks")),
                "feature {name} turns the test hooks on"
            );
        }
        let deps = manifest["dependencies"].as_table().unwrap();
        assert!(!deps.contains_key("waymark"), "{deps:?}");
        let dev = &manifest["dev-dependencies"]["waymark"]["features"];
        assert_eq!(dev.as_array().unwrap()[0].as_str(), Some("test-hooks"));
    }

    #[test]
    fn run_ids_have_the_documented_shape() {
        let id = new_run_id();
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(parts.len(), 3, "{id}");
        assert_eq!(parts[0].len(), 8, "{id}");
        assert_eq!(parts[1].len(), 6, "{id}");
        assert_eq!(parts[2].len(), 4, "{id}");
        assert!(id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'));
        assert!(run_dir(Path::new("/s"), &id).is_ok());
    }

    #[test]
    fn run_dir_refuses_path_escapes() {
        for bad in ["", ".", "..", "../x", "a/b", "a\\b", "x y"] {
            assert!(run_dir(Path::new("/s"), bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            run_dir(Path::new("/s"), "20261123-221500-ab12").unwrap(),
            Path::new("/s/runs/20261123-221500-ab12")
        );
    }

    #[test]
    fn create_run_dir_makes_distinct_directories() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, da) = create_run_dir(tmp.path()).unwrap();
        let (b, db) = create_run_dir(tmp.path()).unwrap();
        assert_ne!(a, b);
        assert!(da.is_dir() && db.is_dir());
    }
}
