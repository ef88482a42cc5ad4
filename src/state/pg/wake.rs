//! Decisions wake the live run: `approve`/`reject` send `NOTIFY waymark_decisions` with
//! the run id, and a listener thread on its own connection marks that run. Until a mark
//! (or the fallback interval) there is nothing new to read, so the run's 250 ms look at
//! its inbox costs no query. Notifications are lost across a reconnect, so after one
//! every run counts as marked, and a run never goes longer than [`FALLBACK`] without a
//! real look.
//!
//! The same listener wakes followers (`status --watch`, `log --follow`): journal batches,
//! step-log lines and the lease's release send `NOTIFY waymark_changes` with the run id,
//! and [`Wake::wait_change`] returns on one — or after [`FALLBACK`], and at once after a
//! reconnect — instead of the follower re-reading the run on a fixed short tick.

use super::url::Target;
use postgres::fallible_iterator::FallibleIterator;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The notification channel.
pub(super) const CHANNEL: &str = "waymark_decisions";

/// The channel of "this run changed" (payload: the run id), for followers.
pub(super) const CHANGES: &str = "waymark_changes";

/// Longest time between two real reads of a run's decisions.
pub(super) const FALLBACK: Duration = Duration::from_secs(2);

#[derive(Default)]
struct Marks {
    /// Runs with a notification since their last read.
    runs: HashSet<String>,
    /// When each run was last read and found empty.
    read_empty: HashMap<String, Instant>,
    /// Set when the listener (re)connected: notifications may have been missed.
    all: bool,
    /// Whether the listener is connected now.
    listening: bool,
    /// Runs with a change notified since a follower last looked.
    changed: HashSet<String>,
    /// Set at each (re)connect: changes may have been missed; followers look at once.
    changes_missed: bool,
}

struct Shared {
    marks: Mutex<Marks>,
    /// Signalled whenever a change is marked.
    changed: Condvar,
}

/// The marks of one database, filled by its listener thread.
#[derive(Clone)]
pub(super) struct Wake(Arc<Shared>);

impl Wake {
    /// The listener of the database `target` points at, started on first use. One per
    /// process: a process drives at most one run, in one store.
    pub(super) fn of(target: &Target) -> Wake {
        static ONE: OnceLock<Wake> = OnceLock::new();
        ONE.get_or_init(|| {
            let wake = Wake(Arc::new(Shared {
                marks: Mutex::new(Marks::default()),
                changed: Condvar::new(),
            }));
            let (w, target) = (wake.clone(), target.clone());
            let _ = std::thread::Builder::new()
                .name("waymark-listen".into())
                .spawn(move || w.listen(target));
            wake
        })
        .clone()
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, Marks> {
        self.0.marks.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn listen(&self, target: Target) {
        loop {
            let client = target.connect().and_then(|mut c| {
                c.batch_execute(&format!("LISTEN {CHANNEL}; LISTEN {CHANGES}"))?;
                Ok(c)
            });
            let Ok(mut client) = client else {
                self.marks().listening = false;
                std::thread::sleep(Duration::from_secs(1));
                continue;
            };
            {
                let mut m = self.marks();
                m.all = true;
                m.listening = true;
                m.changes_missed = true;
            }
            self.0.changed.notify_all();
            loop {
                let next = client
                    .notifications()
                    .timeout_iter(Duration::from_secs(1))
                    .next();
                match next {
                    Ok(Some(n)) if n.channel() == CHANGES => {
                        self.marks().changed.insert(n.payload().to_string());
                        self.0.changed.notify_all();
                    }
                    Ok(Some(n)) => {
                        self.marks().runs.insert(n.payload().to_string());
                    }
                    Err(_) => break,
                    Ok(None) if client.is_closed() => break,
                    Ok(None) => {}
                }
            }
            self.marks().listening = false;
        }
    }

    /// Whether `run`'s decisions must be read now (and the mark taken).
    pub(super) fn take(&self, run: &str) -> bool {
        let mut m = self.marks();
        let fresh = m
            .read_empty
            .get(run)
            .is_some_and(|at| at.elapsed() < FALLBACK);
        let marked = m.runs.remove(run);
        let all = std::mem::take(&mut m.all);
        if all {
            m.read_empty.clear();
        }
        !m.listening || marked || all || !fresh
    }

    /// Wait until `run` changed (a notification, or a reconnect that may have lost one),
    /// at most `fallback`; only `poll` while the listener is not connected.
    pub(super) fn wait_change(&self, run: &str, poll: Duration, fallback: Duration) {
        let deadline = Instant::now() + fallback;
        let mut m = self.marks();
        loop {
            if m.changed.remove(run) || std::mem::take(&mut m.changes_missed) {
                return;
            }
            let left = if m.listening {
                deadline.saturating_duration_since(Instant::now())
            } else {
                poll.min(deadline.saturating_duration_since(Instant::now()))
            };
            if left.is_zero() {
                return;
            }
            let (next, timeout) = self
                .0
                .changed
                .wait_timeout(m, left)
                .unwrap_or_else(|e| e.into_inner());
            m = next;
            if timeout.timed_out() && !m.changed.contains(run) {
                return;
            }
        }
    }

    /// `run`'s decisions were just read: `empty` when there were none.
    pub(super) fn read(&self, run: &str, empty: bool) {
        let mut m = self.marks();
        if empty {
            m.read_empty.insert(run.to_string(), Instant::now());
        } else {
            m.read_empty.remove(run);
        }
    }
}
