//! The `lab` driver: a simulated ITMS estate for rehearsals.
//!
//! State lives in `STATE_DIR/lab/NAME.json` and `NAME.log`, seeded from the inventory.
//! Every operation, refused or not, is appended to the state's `events` in order, so a
//! test (or an operator with `waymark lab show`) can see exactly what a runbook did, and
//! that nothing mutating happened before a blocker.
//!
//! The lab enforces ITMS.md's rules with messages that name the server and the fix:
//! exact source version, replication off on the server and its neighbours, no mixed
//! mode (children before parents), collation parity, disk space, no running replication
//! job, product parity for off-box migrations, KMS keys for a CMDB restored elsewhere.
//!
//! Layout: this file is the [`Estate`] face; [`transaction`] runs one operation on the
//! state; [`rules`] holds the simulation, one file per area of ITMS; [`state`] is the
//! state's shape, [`seed`] builds it from an inventory and [`state_file`] keeps it on
//! disk; [`show`] and [`command`] serve `waymark lab show|reset`.

mod command;
mod rules;
mod seed;
mod show;
mod state;
mod state_file;
#[cfg(test)]
mod testing;
mod transaction;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

pub(crate) use command::{reset, show};
pub(crate) use show::show_text;

use super::inventory::Inventory;
use super::{prepare, Estate, EstateError, OpContext};
use crate::cancel::CancelReason;
use state::LabState;
use state_file::StateFile;
use transaction::Cached;

/// The simulated estate.
pub(crate) struct LabEstate {
    inv: Inventory,
    file: StateFile,
    // Serialises threads of this process (the file lock serialises processes), and keeps
    // the state this process last wrote, valid while the files' stamp is unchanged: an
    // operation then costs what it changed, not a parse of the whole estate.
    mutex: Mutex<Option<Cached>>,
}

impl LabEstate {
    /// The lab estate of `inv`, with its state in `store`.
    pub(crate) fn new(inv: Inventory, store: &crate::state::Store) -> LabEstate {
        let file = StateFile::new(store, &inv);
        LabEstate {
            inv,
            file,
            mutex: Mutex::new(None),
        }
    }

    /// The state file's path.
    #[cfg(test)]
    pub(crate) fn state_path(&self) -> &std::path::Path {
        &self.file.path
    }

    /// The current state (the seed, if no operation has run yet). Writes nothing.
    pub(crate) fn state(&self) -> Result<LabState, EstateError> {
        let _g = self.mutex.lock().unwrap_or_else(|e| e.into_inner());
        self.file.locked(|| self.file.load(&self.inv))
    }

    /// Forget the simulated state; the next operation starts from the seed again.
    pub(crate) fn reset(&self) -> Result<bool, EstateError> {
        let _g = self.mutex.lock().unwrap_or_else(|e| e.into_inner());
        self.file.remove()
    }

    fn simulate_delay(&self, cx: &OpContext) -> Result<(), CancelReason> {
        // An absurd delay that overflows the clock simply lasts until cancelled.
        let end = Instant::now().checked_add(self.inv.lab_delay);
        loop {
            if let Some(r) = cx.cancel.reason() {
                return Err(r);
            }
            let now = Instant::now();
            let left = match end {
                Some(end) if now >= end => return Ok(()),
                Some(end) => end - now,
                None => Duration::from_millis(20),
            };
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
    }
}

impl Estate for LabEstate {
    fn driver(&self) -> &'static str {
        "lab"
    }

    fn inventory(&self) -> &Inventory {
        &self.inv
    }

    fn call(
        &self,
        op: &str,
        server: &str,
        args: &Map<String, Value>,
        cx: &OpContext,
    ) -> Result<Value, EstateError> {
        let (info, srv, a) = prepare(&self.inv, op, server, args)?;
        (cx.log)(&format!("lab: {} on {} (rehearsal)", info.name, srv.name));
        let cancelled = self.simulate_delay(cx).err();
        let out = self.transact(info, &srv.name, &a, cancelled, cx);
        match &out {
            Ok(_) => (cx.log)(&format!("lab: {} on {}: ok", info.name, srv.name)),
            Err(e) => (cx.log)(&format!("lab: {e}")),
        }
        out
    }

    fn describe(
        &self,
        op: &str,
        server: &str,
        args: &Map<String, Value>,
    ) -> Result<Vec<String>, EstateError> {
        let (info, srv, _) = prepare(&self.inv, op, server, args)?;
        let shown: Map<String, Value> = args
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let args_text = if shown.is_empty() {
            String::new()
        } else {
            format!(" {}", Value::Object(shown))
        };
        Ok(vec![format!(
            "lab (rehearsal): {} on {}{} — {}",
            info.name, srv.name, args_text, info.summary
        )])
    }
}
#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::estate::lab::testing::*;
    use crate::estate::Estate;

    #[test]
    fn describe_is_one_line_and_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let e = demo(dir.path());
        let m = json!({"enabled": false}).as_object().cloned().unwrap();
        let d = e.describe("set_replication", "ns-hq", &m).unwrap();
        assert_eq!(d.len(), 1);
        assert!(
            d[0].starts_with("lab (rehearsal): set_replication on ns-hq {\"enabled\":false}"),
            "{}",
            d[0]
        );
        assert!(!e.state_path().exists());
    }
}
