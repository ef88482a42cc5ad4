//! Tells the live display of durable events from a thread of its own, so its terminal
//! writes stay off the path between two journal commits.

use super::Observer;
use crate::journal::{Event, JournalError, JournalWriter, Record};

/// Tells the observer of durable events, in journal order, from a thread of its own: the
/// live display writes a line per event, and those writes must not hold up the run loop
/// between two commits. Dropping it waits until every event handed over has been told.
pub(super) enum Announcer {
    Silent,
    /// The thread could not be started: tell inline.
    Inline(Observer),
    Thread {
        tx: Option<std::sync::mpsc::Sender<Vec<Record>>>,
        thread: Option<std::thread::JoinHandle<()>>,
    },
}

impl Announcer {
    pub(super) fn new(observer: Option<Observer>) -> Self {
        let Some(observer) = observer else {
            return Announcer::Silent;
        };
        let (tx, rx) = std::sync::mpsc::channel::<Vec<Record>>();
        let o = observer.clone();
        let spawned = std::thread::Builder::new()
            .name("waymark-display".into())
            .spawn(move || {
                for records in rx {
                    for r in &records {
                        o(&r.event);
                    }
                }
            });
        match spawned {
            Ok(thread) => Announcer::Thread {
                tx: Some(tx),
                thread: Some(thread),
            },
            Err(_) => Announcer::Inline(observer),
        }
    }

    pub(super) fn tell(&self, records: Vec<Record>) {
        match self {
            Announcer::Silent => {}
            Announcer::Inline(o) => records.iter().for_each(|r| o(&r.event)),
            Announcer::Thread { tx, .. } => {
                if let Some(tx) = tx {
                    // Only fails if the observer panicked; the run goes on without it.
                    let _ = tx.send(records);
                }
            }
        }
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        if let Announcer::Thread { tx, thread } = self {
            drop(tx.take());
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
        }
    }
}

// Append durably, then tell the observer.
pub(super) async fn emit(
    journal: &JournalWriter,
    announcer: &Announcer,
    events: Vec<Event>,
) -> Result<(), JournalError> {
    let records = journal.append(events).await?;
    announcer.tell(records);
    Ok(())
}
