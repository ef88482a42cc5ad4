//! Decisions wake the live run: `approve`/`reject` send `NOTIFY waymark_decisions` with
//! the run id, and a listener thread on its own connection marks that run. Until a mark
//! (or the fallback interval) there is nothing new to read, so the run's 250 ms look at
//! its inbox costs no query. Notifications are lost across a reconnect, so after one
//! every run counts as marked, and a run never goes longer than [`FALLBACK`] without a
//! real look.

use super::url::Target;
use postgres::fallible_iterator::FallibleIterator;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The notification channel.
pub(super) const CHANNEL: &str = "waymark_decisions";

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
}

/// The marks of one database, filled by its listener thread.
#[derive(Clone)]
pub(super) struct Wake(Arc<Mutex<Marks>>);

impl Wake {
    /// The listener of the database `target` points at, started on first use. One per
    /// process: a process drives at most one run, in one store.
    pub(super) fn of(target: &Target) -> Wake {
        static ONE: OnceLock<Wake> = OnceLock::new();
        ONE.get_or_init(|| {
            let wake = Wake(Arc::new(Mutex::new(Marks::default())));
            let (w, target) = (wake.clone(), target.clone());
            let _ = std::thread::Builder::new()
                .name("waymark-listen".into())
                .spawn(move || w.listen(target));
            wake
        })
        .clone()
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, Marks> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn listen(&self, target: Target) {
        loop {
            let client = target.connect().and_then(|mut c| {
                c.batch_execute(&format!("LISTEN {CHANNEL}"))?;
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
            }
            loop {
                let next = client
                    .notifications()
                    .timeout_iter(Duration::from_secs(1))
                    .next();
                match next {
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
