//! Ownership of a run in the database: a lease with fencing.
//!
//! Taking the lease bumps the run's epoch; the holder renews the expiry every third of
//! the lease's length from its own thread and connection. Every journal batch locks the
//! run's row and checks the epoch inside its transaction, so a holder that was paused or
//! cut off past its expiry — and replaced — cannot write another record. When either
//! the heartbeat or a batch finds the epoch moved on, the process stops at once with
//! exit 2: continuing would mean two drivers.

use super::conn::Conn;
use super::url::Target;
use crate::journal::lock::LockHolder;
use crate::journal::{LockError, RowSink};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The lease's length: `WAYMARK_LEASE` (a duration such as `30s`), default 30 seconds.
pub(super) fn lease_length() -> Duration {
    std::env::var("WAYMARK_LEASE")
        .ok()
        .and_then(|v| crate::duration::parse_duration(&v).ok())
        .filter(|d| *d >= Duration::from_secs(1))
        .unwrap_or(Duration::from_secs(30))
}

/// This process's name for its host: `WAYMARK_HOST`, else the host name.
pub(super) fn host() -> String {
    crate::journal::current_host()
}

/// The lease on one run, held until dropped.
#[derive(Debug)]
pub struct Lease {
    epoch: i64,
    stop: Arc<AtomicBool>,
    conn: Conn,
    run: String,
}

/// Stop the process: it lost the run to `holder`. Nothing more may be written.
fn fenced(run: &str, holder: &str) -> ! {
    errln!(
        "error: lost ownership of run {run} to {holder}: another process took it over after this one's lease expired; stopping without writing anything more"
    );
    std::process::exit(crate::exit::Exit::BadInput as i32)
}

fn holder_now(c: &mut postgres::Client, run: &str) -> String {
    c.query_opt(
        "SELECT coalesce(holder_host, '?') || ' (pid ' || coalesce(holder_pid, 0) || ')' FROM waymark_runs WHERE run_id = $1",
        &[&run],
    )
    .ok()
    .flatten()
    .map_or_else(|| "another host".to_string(), |r| r.get(0))
}

impl Lease {
    /// Take the lease of `run`, or say who holds it and until when.
    pub(crate) fn take(target: &Target, shown: &str, run: &str) -> Result<Lease, LockError> {
        let store_err = |message: String| LockError::Store {
            run: run.to_string(),
            message,
        };
        let conn = Conn::open(target, shown).map_err(store_err)?;
        let secs = lease_length().as_secs_f64();
        let (me, pid, user) = (
            host(),
            std::process::id() as i32,
            crate::journal::current_user(),
        );
        let id = run.to_string();
        let taken = conn
            .call(move |c| {
                let mut tx = c.transaction()?;
                let row = tx.query_opt(
                    "SELECT holder_host, holder_pid, holder_user, \
                     to_char(holder_since AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                     to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                     expires_at > now() \
                     FROM waymark_runs WHERE run_id = $1 FOR UPDATE",
                    &[&id],
                )?;
                let Some(row) = row else {
                    return Ok(Err(None));
                };
                if row.get::<_, Option<bool>>(5) == Some(true) {
                    let holder = LockHolder {
                        pid: row.get::<_, Option<i32>>(1).unwrap_or(0) as u32,
                        host: row.get::<_, Option<String>>(0).unwrap_or_default(),
                        user: row.get::<_, Option<String>>(2).unwrap_or_default(),
                        since: row.get::<_, Option<String>>(3).unwrap_or_default(),
                    };
                    let expires: String = row.get::<_, Option<String>>(4).unwrap_or_default();
                    return Ok(Err(Some((holder, expires))));
                }
                let epoch: i64 = tx
                    .query_one(
                        "UPDATE waymark_runs SET holder_host = $2, holder_pid = $3, holder_user = $4, \
                         holder_since = now(), epoch = epoch + 1, \
                         expires_at = now() + make_interval(secs => $5) \
                         WHERE run_id = $1 RETURNING epoch",
                        &[&id, &me, &pid, &user, &secs],
                    )?
                    .get(0);
                tx.commit()?;
                Ok(Ok(epoch))
            })
            .map_err(store_err)?;
        let epoch = match taken {
            Ok(epoch) => epoch,
            Err(Some((holder, expires))) => {
                return Err(LockError::Leased {
                    run: run.to_string(),
                    holder,
                    expires,
                })
            }
            Err(None) => return Err(store_err("no such run".into())),
        };
        let lease = Lease {
            epoch,
            stop: Arc::new(AtomicBool::new(false)),
            conn,
            run: run.to_string(),
        };
        lease.heartbeat(secs);
        Ok(lease)
    }

    /// The epoch this lease was taken with.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    fn heartbeat(&self, secs: f64) {
        let (conn, stop, run, epoch) = (
            self.conn.clone(),
            self.stop.clone(),
            self.run.clone(),
            self.epoch,
        );
        let every = Duration::from_secs_f64(secs / 3.0);
        let _ = std::thread::Builder::new()
            .name("waymark-lease".into())
            .spawn(move || loop {
                std::thread::sleep(every);
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                let id = run.clone();
                let renewed = conn.call(move |c| {
                    let n = c.execute(
                        "UPDATE waymark_runs SET expires_at = now() + make_interval(secs => $3) \
                         WHERE run_id = $1 AND epoch = $2",
                        &[&id, &epoch, &secs],
                    )?;
                    Ok((
                        n,
                        if n == 0 {
                            holder_now(c, &id)
                        } else {
                            String::new()
                        },
                    ))
                });
                match renewed {
                    Ok((0, holder)) if !stop.load(Ordering::Relaxed) => fenced(&run, &holder),
                    Ok(_) => {}
                    Err(e) => errln!("warning: cannot renew the lease of run {run}: {e}"),
                }
            });
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let (id, epoch) = (self.run.clone(), self.epoch);
        // Let the next driver in at once instead of after the expiry.
        // Followers learn at once that nobody drives the run any more.
        let _ = self.conn.call(move |c| {
            c.execute(
                "WITH u AS (UPDATE waymark_runs SET expires_at = NULL \
                 WHERE run_id = $1 AND epoch = $2 RETURNING 1) SELECT pg_notify($3, $1) FROM u",
                &[&id, &epoch, &super::wake::CHANGES],
            )
        });
    }
}

/// The journal's rows for the lease holder: each batch is one transaction that first
/// proves the epoch still holds.
pub(super) struct JournalRows {
    pub conn: Conn,
    pub run: String,
    pub epoch: i64,
}

impl RowSink for JournalRows {
    fn commit(&mut self, first_seq: u64, lines: &[&str]) -> Result<(), String> {
        let (run, epoch) = (self.run.clone(), self.epoch);
        let lines: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        let first = first_seq as i64;
        let mut attempt = 0;
        let outcome = self.conn.call(move |c| {
            attempt += 1;
            if attempt == 1 {
                return insert_batch(c, &run, epoch, first, &lines);
            }
            // A retry after a commit whose answer was lost finds its rows already there.
            let mut tx = c.transaction()?;
            let held = tx
                .query_opt(
                    "SELECT 1 FROM waymark_runs WHERE run_id = $1 AND epoch = $2 FOR UPDATE",
                    &[&run, &epoch],
                )?
                .is_some();
            if !held {
                drop(tx);
                return Ok(Err(holder_now(c, &run)));
            }
            let have: i64 = tx
                .query_one(
                    "SELECT count(*) FROM waymark_journal WHERE run_id = $1 AND seq >= $2",
                    &[&run, &first],
                )?
                .get(0);
            if have as usize == lines.len() {
                return Ok(Ok(()));
            }
            drop(tx);
            insert_batch(c, &run, epoch, first, &lines)
        })?;
        match outcome {
            Ok(()) => Ok(()),
            Err(holder) => fenced(&self.run, &holder),
        }
    }
}

/// One batch as one statement, so one round trip (it was 5 + one per record: the
/// journal's commit rate over PostgreSQL is bound by round trips): lock the run's row if
/// the epoch still holds, insert every line after it, commit (autocommit, synchronous).
/// `Err(holder)` when the epoch moved on and nothing was written.
fn insert_batch(
    c: &mut postgres::Client,
    run: &str,
    epoch: i64,
    first: i64,
    lines: &[String],
) -> Result<Result<(), String>, postgres::Error> {
    use postgres::types::Type;
    let row = c.query_typed_one(
        "WITH held AS (\
             SELECT run_id FROM waymark_runs WHERE run_id = $1 AND epoch = $2 FOR UPDATE\
         ), ins AS (\
             INSERT INTO waymark_journal (run_id, seq, record) \
             SELECT held.run_id, $3 + t.i - 1, t.r::json \
             FROM held, unnest($4::text[]) WITH ORDINALITY AS t(r, i) RETURNING 1\
         ) SELECT (SELECT count(*) FROM held), (SELECT count(*) FROM ins), \
         pg_notify($5, $1)::text",
        &[
            (&run, Type::TEXT),
            (&epoch, Type::INT8),
            (&first, Type::INT8),
            (&lines, Type::TEXT_ARRAY),
            (&super::wake::CHANGES, Type::TEXT),
        ],
    )?;
    let (held, inserted): (i64, i64) = (row.get(0), row.get(1));
    if held == 0 {
        return Ok(Err(holder_now(c, run)));
    }
    debug_assert_eq!(inserted as usize, lines.len());
    Ok(Ok(()))
}
