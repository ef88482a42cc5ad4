//! One operation as a transaction on the lab state: under the thread and file locks,
//! take the state (this process's cached copy while the files are unchanged, else a
//! load), apply the rule, record the event — refusals and cancellations too — and
//! persist it (an appended delta, or a compaction).

use serde_json::{json, Map, Value};

use super::rules::{self, Ctx};
use super::state::LabState;
use super::state_file::{Delta, Stamp};
use super::LabEstate;
use crate::cancel::CancelReason;
use crate::estate::ops::{Args, OpInfo};
use crate::estate::{EstateError, OpContext};

/// The state this process last wrote, and the files' stamp right after.
pub(super) struct Cached {
    st: LabState,
    stamp: Stamp,
    /// Lines in the log beyond the base.
    log_lines: usize,
}

impl LabEstate {
    /// Load, apply, record the event, save — all under both locks.
    pub(super) fn transact(
        &self,
        info: &'static OpInfo,
        server: &str,
        args: &Args,
        cancelled: Option<CancelReason>,
        cx: &OpContext,
    ) -> Result<Value, EstateError> {
        let log = cx.log;
        let mut cache = self.mutex.lock().unwrap_or_else(|e| e.into_inner());
        self.file.locked(|| {
            let (mut st, mut log_lines) = match cache.take() {
                Some(c) if c.stamp == self.file.stamp() => (c.st, c.log_lines),
                _ => {
                    let (st, lines) = self.file.load_counting(&self.inv)?;
                    if let Some(w) = st.stale_warning(&self.inv, self.file.reset_command()) {
                        (log)(&format!("lab: warning: {w}"));
                    }
                    (st, lines)
                }
            };
            let seq = st.next_seq();
            let mut details = Map::new();
            let outcome = match cancelled {
                Some(r) => Err(EstateError::Cancelled(r)),
                None => {
                    let mut c = Ctx {
                        inv: &self.inv,
                        st: &mut st,
                        server,
                        args,
                        seq,
                        details: &mut details,
                    };
                    rules::apply(info, &mut c)
                }
            };
            let mut ev = Map::new();
            ev.insert("seq".into(), json!(seq));
            ev.insert("op".into(), json!(info.name));
            ev.insert("server".into(), json!(server));
            for (k, v) in args.raw() {
                if !v.is_null() {
                    ev.insert(k.clone(), v.clone());
                }
            }
            ev.extend(details);
            ev.insert("ok".into(), json!(outcome.is_ok()));
            if let Err(e) = &outcome {
                ev.insert("error".into(), json!(e.to_string()));
                ev.insert("error_kind".into(), json!(e.kind()));
            }
            let ev = Value::Object(ev);
            st.events.push(ev.clone());
            // The first operation writes the base; later, compact once the log is half as
            // long as the history: each compaction then pays for as many appends, so the
            // total stays linear.
            if !self.file.path.exists() || log_lines + 1 > st.events.len().max(64) / 2 {
                self.file.compact(&st, cx.redactor)?;
                log_lines = 0;
            } else {
                let delta = Delta {
                    event: ev,
                    server: st
                        .servers
                        .get(server)
                        .map(|s| (server.to_string(), s.clone())),
                    backups: st.backups.clone(),
                    kms_backups: st.kms_backups.clone(),
                    data_stores: st.data_stores.clone(),
                };
                self.file.append(&delta, cx.redactor)?;
                log_lines += 1;
            }
            *cache = Some(Cached {
                stamp: self.file.stamp(),
                st,
                log_lines,
            });
            outcome
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::estate::lab::testing::*;
    use serde_json::Map;

    use crate::cancel::{CancelReason, CancelToken};
    use crate::estate::lab::show_text;
    use crate::estate::{Estate, OpContext};

    #[test]
    fn events_are_recorded_in_order_including_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let e = demo(dir.path());
        call(&e, "backup_ns", "ns-hq", json!({})).unwrap();
        call(&e, "ns_upgrade", "ns-hq", json!({})).unwrap_err();
        call(&e, "set_replication", "ns-hq", json!({"enabled": false})).unwrap();
        let evs = events(&e);
        let seqs: Vec<u64> = evs.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert_eq!(evs[1]["ok"], false);
        assert_eq!(evs[1]["error_kind"], "refused");
        assert_eq!(
            evs[2]["enabled"], false,
            "set_replication event carries `enabled`"
        );
        // Validation errors are not operations and leave no event.
        assert!(call(&e, "ns_upgrade", "nope", json!({})).is_err());
        assert_eq!(events(&e).len(), 3);
    }

    #[test]
    fn parallel_callers_never_lose_events() {
        let dir = tempfile::tempdir().unwrap();
        let e = std::sync::Arc::new(demo(dir.path()));
        // Two estates on the same file stand in for two processes.
        let other = std::sync::Arc::new(demo(dir.path()));
        let mut handles = Vec::new();
        for i in 0..8 {
            let e = if i % 2 == 0 { e.clone() } else { other.clone() };
            handles.push(std::thread::spawn(move || {
                for _ in 0..5 {
                    call(&e, "disk_free", "ns-hq", json!({})).unwrap();
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        let seqs: Vec<u64> = events(&e)
            .iter()
            .map(|v| v["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
    }

    #[test]
    fn cancellation_stops_a_delayed_operation() {
        let dir = tempfile::tempdir().unwrap();
        let e = lab(
            "name = \"c\"\ndriver = \"lab\"\nlab_delay = \"1h\"\n[[server]]\nname = \"ns-1\"\nrole = \"ns\"\n",
            dir.path(),
        );
        let token = CancelToken::new();
        token.cancel(CancelReason::Interrupted);
        let log = |_: &str| {};
        let cx = OpContext {
            cancel: &token,
            log: &log,
            redactor: &crate::redact::Redactor::new(),
        };
        let err = e.call("backup_ns", "ns-1", &Map::new(), &cx).unwrap_err();
        assert_eq!(err.kind(), "cancelled");
        assert_eq!(events(&e)[0]["error_kind"], "cancelled");
    }

    #[test]
    fn an_edited_inventory_is_noticed_not_silently_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let e = lab(SINGLE_HF3, dir.path());
        call(&e, "ns_version", "ns-old", json!({})).unwrap();
        assert!(e.show_json().unwrap().get("warning").is_none());
        let edited = lab(&SINGLE_HF3.replace("HF3", "HF5"), dir.path());
        let lines = std::sync::Mutex::new(Vec::new());
        let log = |l: &str| lines.lock().unwrap().push(l.to_string());
        let token = CancelToken::new();
        let cx = OpContext {
            cancel: &token,
            log: &log,
            redactor: &crate::redact::Redactor::new(),
        };
        let r = edited
            .call("ns_version", "ns-old", &Map::new(), &cx)
            .unwrap();
        assert_eq!(r["version"], "7.5 SP1 HF3", "the simulated state is kept");
        assert!(lines.lock().unwrap().iter().any(|l| l.contains(&format!(
            "run `waymark lab reset --inventory t.toml --state-dir {}`",
            dir.path().display()
        ))));
        assert!(show_text(&edited.show_json().unwrap())
            .contains("warning: the inventory of lab estate `hf3` changed"));
        edited.reset().unwrap();
        assert_eq!(
            call(&edited, "ns_version", "ns-old", json!({})).unwrap()["version"],
            "7.5 SP1 HF5"
        );
    }
}
