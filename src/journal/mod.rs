//! The durable, append-only journal of a run (SPEC §5). Only this module does durable I/O.
//!
//! A run's journal is one file of lines (see [`record`] for the line format), appended by
//! the one process driving the run (holding its [`lock`]); where that file lives is the
//! state store's business ([`crate::state`]). The journal is the source of truth;
//! everything `status`, `runs` and `resume` show is derived by replaying it
//! ([`crate::run_state`]).
//!
//! Architecture invariant: this module knows nothing about Rhai, plans or scheduling; it
//! stores and verifies [`Record`]s.

pub(crate) mod common_records;
pub(crate) mod error;
pub(crate) mod identity;
pub(crate) mod lock;
pub(crate) mod reader;
pub(crate) mod record;
pub(crate) mod writer;

pub use error::JournalError;
pub use identity::{current_host, current_user};
pub use lock::{is_held, LockError, RunLock};
pub use reader::{
    origin_of_line, read_bytes, read_journal, read_origin, read_selected, JournalContents,
    RunOrigin,
};
pub(crate) use reader::{read_after, read_appended};
pub use record::{Event, FinalStatus, GateInfo, PlannedStep, Record};
pub(crate) use writer::sync_dir;
pub use writer::{JournalWriter, RowSink};

/// File name of a run's journal inside its run directory.
pub(crate) const JOURNAL_FILE: &str = "journal.jsonl";

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
}
