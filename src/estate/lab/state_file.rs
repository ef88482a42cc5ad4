//! The lab estate's files `STATE_DIR/lab/NAME.json` and `NAME.log`, and how they are
//! read and written safely.
//!
//! Parallel steps (threads) and separate waymark processes share the files, so every
//! read-modify-write holds a file lock on `NAME.lock` (the data file itself is replaced
//! by rename, so it cannot carry the lock), and writes are atomic: temp file, fsync,
//! rename, directory fsync. A crash leaves either the old state or the new one.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::state::{Backup, DataStore, LabState, ServerState};
use crate::estate::inventory::Inventory;
use crate::estate::EstateError;
use crate::redact::Redactor;
use crate::state::{LabStore, Store};

/// What one operation changed, appended to `NAME.log` so an operation costs what it
/// changed, not the size of the estate: rewriting all of `NAME.json` after every
/// operation made a preflight of 1,000 site servers quadratic (33 s; 2,000: 136 s).
/// Only the operation's own server changes (`me_mut`); the lists of backups and data
/// stores are small (one entry per NS operation) and are carried whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Delta {
    /// The event recorded (it carries the operation's `seq`).
    pub event: Value,
    /// The operation's server and its state afterwards.
    pub server: Option<(String, ServerState)>,
    /// CMDB backups afterwards.
    pub backups: Vec<Backup>,
    /// KMS key backups afterwards.
    pub kms_backups: Vec<(String, String)>,
    /// Data stores afterwards.
    pub data_stores: Vec<DataStore>,
}

impl LabState {
    fn apply(&mut self, d: Delta) {
        if let Some((name, state)) = d.server {
            self.servers.insert(name, state);
        }
        self.events.push(d.event);
        self.backups = d.backups;
        self.kms_backups = d.kms_backups;
        self.data_stores = d.data_stores;
    }
}

/// What identifies the files' content without reading them (another process wrote
/// when it changed): lengths and modification times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Stamp(Option<(u64, std::time::SystemTime)>, u64);

/// Where an estate's lab state lives, and the only code that reads or writes it:
/// `NAME.json` holds the state as of its last compaction, `NAME.log` one [`Delta`] per
/// operation since (a line whose event `seq` the base already has is skipped, so a crash
/// between writing the base and removing the log changes nothing).
#[derive(Debug, Clone)]
pub(super) struct StateFile {
    /// The estate as of its last compaction (`lab/NAME.json` in a state directory), as
    /// named in messages.
    pub path: PathBuf,
    store: LabStore,
    /// The exact `waymark lab reset` command for this estate, for error messages.
    reset: String,
}

impl StateFile {
    /// The state file of `inv`'s estate in `store`.
    pub(super) fn new(store: &Store, inv: &Inventory) -> StateFile {
        let reset = crate::hint::lab_reset(&inv.origin, store);
        let store = store.lab(&inv.name);
        StateFile {
            path: PathBuf::from(store.label()),
            store,
            reset,
        }
    }

    /// The exact `waymark lab reset` command for this estate (with the flags it needs).
    pub(super) fn reset_command(&self) -> &str {
        &self.reset
    }

    /// The files' [`Stamp`] now.
    pub(super) fn stamp(&self) -> Stamp {
        let (base, log) = self.store.stamp();
        Stamp(base, log)
    }

    /// Append one operation's [`Delta`] durably, secrets scrubbed.
    pub(super) fn append(&self, d: &Delta, redactor: &Redactor) -> Result<(), EstateError> {
        let encode = |e: serde_json::Error| self.err(format!("cannot encode: {e}"));
        let mut v = serde_json::to_value(d).map_err(encode)?;
        if !redactor.is_empty() {
            redactor.scrub_json(&mut v);
        }
        let mut line = serde_json::to_vec(&v).map_err(encode)?;
        line.push(b'\n');
        self.store.append_log(&line).map_err(|e| self.err(e))
    }

    /// Write `st` as the new base and drop the log it includes.
    pub(super) fn compact(&self, st: &LabState, redactor: &Redactor) -> Result<(), EstateError> {
        self.save(st, redactor)?;
        self.store.remove_log().map(|_| ()).map_err(|e| self.err(e))
    }

    /// Replay the log over `st`; returns how many lines it held.
    fn replay(&self, st: &mut LabState) -> Result<usize, EstateError> {
        let Some(text) = self.store.read_log().map_err(|e| self.err(e))? else {
            return Ok(0);
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        for (i, line) in lines.iter().enumerate() {
            let d: Delta = match serde_json::from_str(line) {
                Ok(d) => d,
                // A torn last line: the operation's append did not finish.
                Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
                Err(e) => {
                    return Err(self.err(format!(
                        "{} line {} damaged ({e}); run `{}` to start the rehearsal over",
                        self.store.log_label(),
                        i + 1,
                        self.reset
                    )))
                }
            };
            let seq = d.event.get("seq").and_then(Value::as_u64).unwrap_or(0);
            if seq >= st.next_seq() {
                st.apply(d);
            }
        }
        Ok(lines.len())
    }

    fn err(&self, message: String) -> EstateError {
        EstateError::State {
            path: self.path.display().to_string(),
            message,
        }
    }

    /// Run `f` holding the cross-process lock of this estate.
    pub(super) fn locked<T>(
        &self,
        f: impl FnOnce() -> Result<T, EstateError>,
    ) -> Result<T, EstateError> {
        let lock = self.store.lock().map_err(|e| self.err(e))?;
        let out = f();
        drop(lock);
        out
    }

    /// The stored state (with servers new to the inventory seeded), or a fresh seed.
    pub(super) fn load(&self, inv: &Inventory) -> Result<LabState, EstateError> {
        self.load_counting(inv).map(|(st, _)| st)
    }

    /// [`StateFile::load`], and how many log lines it replayed.
    pub(super) fn load_counting(&self, inv: &Inventory) -> Result<(LabState, usize), EstateError> {
        let mut st = match self.store.read_base().map_err(|e| self.err(e))? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                self.err(format!(
                    "damaged ({e}); run `{}` to start the rehearsal over",
                    self.reset
                ))
            })?,
            None => LabState::seed(inv),
        };
        let lines = self.replay(&mut st)?;
        st.add_missing(inv);
        Ok((st, lines))
    }

    /// Replace the state atomically and durably, with the run's secrets scrubbed from
    /// every string (operation arguments, settings a server was given): the state
    /// outlives the run and is shown by `lab show`.
    pub(super) fn save(&self, st: &LabState, redactor: &Redactor) -> Result<(), EstateError> {
        let encode = |e: serde_json::Error| self.err(format!("cannot encode: {e}"));
        let mut bytes = if redactor.is_empty() {
            serde_json::to_vec_pretty(st).map_err(encode)?
        } else {
            let mut v = serde_json::to_value(st).map_err(encode)?;
            redactor.scrub_json(&mut v);
            serde_json::to_vec_pretty(&v).map_err(encode)?
        };
        bytes.push(b'\n');
        self.store.write_base(&bytes).map_err(|e| self.err(e))
    }

    /// Delete the state; true when there was a state to delete.
    pub(super) fn remove(&self) -> Result<bool, EstateError> {
        self.locked(|| {
            let had_log = self.store.remove_log().map_err(|e| self.err(e))?;
            let had_base = self.store.remove_base().map_err(|e| self.err(e))?;
            Ok(had_base || had_log)
        })
    }
}
#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::estate::lab::reset;
    use crate::estate::lab::testing::*;

    #[test]
    fn every_operation_rewrote_the_whole_estate_so_big_labs_went_quadratic() {
        let dir = tempfile::tempdir().unwrap();
        let e = demo(dir.path());
        // Enough operations for appends to the log and a compaction among them.
        for i in 0..80 {
            let enabled = i % 2 == 1;
            call(
                &e,
                "set_replication",
                "ns-apac",
                json!({ "enabled": enabled }),
            )
            .unwrap();
        }
        let log = dir.path().join("lab/demo-lab.log");
        let base = std::fs::read_to_string(e.state_path()).unwrap();
        let base_events = serde_json::from_str::<Value>(&base).unwrap()["events"]
            .as_array()
            .unwrap()
            .len();
        assert!(base_events < 80, "not every operation rewrites the base");
        assert!(log.exists(), "the rest is in the log");
        // Another process (a fresh estate object) sees base + log: every event, the last state.
        let other = demo(dir.path());
        let st = other.state().unwrap();
        assert_eq!(st.events.len(), 80);
        assert!(st.servers["ns-apac"].replication_enabled);
        // A torn last line (a crash mid-append) is ignored; the rest stands.
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut f, b"{\"event\": {\"seq\"").unwrap();
        assert_eq!(demo(dir.path()).state().unwrap().events.len(), 80);
        assert!(reset(None, &crate::state::Store::dir(dir.path())).unwrap());
        assert!(!log.exists());
    }

    #[test]
    fn state_file_is_json_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let e = demo(dir.path());
        assert!(!e.state_path().exists(), "reading must not create state");
        call(&e, "ns_version", "ns-hq", json!({})).unwrap();
        let text = std::fs::read_to_string(e.state_path()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["estate"], "demo-lab");
        assert_eq!(v["servers"]["ns-hq"]["version"], "7.5 SP1 HF5");
        assert_eq!(v["servers"]["ns-hq"]["replication_enabled"], true);
        assert!(!dir.path().join("lab/demo-lab.json.tmp").exists());
        assert_eq!(e.state_path(), dir.path().join("lab/demo-lab.json"));
        // A damaged file is a clear error that says how to recover.
        std::fs::write(e.state_path(), "{ not json").unwrap();
        let text = call(&e, "ns_version", "ns-hq", json!({}))
            .unwrap_err()
            .to_string();
        // The hint is the exact command: this estate's state dir is not the default.
        let reset = format!("`waymark lab reset --state-dir {}`", dir.path().display());
        assert!(text.contains(&reset), "{text}");
        assert!(e.reset().unwrap());
        assert!(!e.reset().unwrap());
    }
}
