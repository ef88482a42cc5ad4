//! The PostgreSQL store (team mode): every run, its journal, lease, decisions and step
//! logs in one database, so any host can drive, watch, approve and resume.
//!
//! - **Journal**: `waymark_journal(run_id, seq)` unique rows, each holding the exact line
//!   the directory store would write (the same JSON record with its checksum), so reading
//!   verifies it with the same reader. A batch of records is one transaction committed
//!   with `synchronous_commit = on`: that commit is what "durable" means here.
//! - **Ownership** is a lease on the run's row (holder host, pid, user, epoch, expiry),
//!   renewed by a heartbeat every third of its length (`WAYMARK_LEASE`, default 30s).
//!   Taking it bumps the epoch; every journal batch checks the epoch in its transaction
//!   (the row is locked), so a process that lost the lease cannot write another record:
//!   it stops with exit 2, "lost ownership of run … to HOST".
//! - **Decisions** are rows; the account is the role the server authenticated
//!   (`session_user`, set by a trigger whatever the client sends).
//! - **Step logs** are rows of redacted, timestamped entries.
//! - **Schema** is created and migrated here, versioned, under an advisory lock, so two
//!   hosts starting at once do not both migrate.

mod conn;
mod lab;
mod lease;
mod tls;
mod url;
mod wake;

pub(super) use conn::Conn;
pub(crate) use lab::{PgLab, PgLabLock};
pub(super) use lease::Lease;

use super::StepLogBytes;
use crate::diagnostic::Diagnostic;
use crate::inbox::{Drained, InboxError, InboxItem, Pending, Remover};
use crate::journal::{
    Event, JournalContents, JournalError, JournalWriter, LockError, Record, RowSink, RunOrigin,
};
use crate::redact::Redactor;
use crate::step_log::{StepLog, StepLogOptions};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Migrations, in order; the schema's version is how many have been applied.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE waymark_runs (
    run_id text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    holder_host text,
    holder_pid integer,
    holder_user text,
    holder_since timestamptz,
    epoch bigint NOT NULL DEFAULT 0,
    expires_at timestamptz
);
CREATE TABLE waymark_journal (
    run_id text NOT NULL REFERENCES waymark_runs ON DELETE CASCADE,
    seq bigint NOT NULL,
    record json NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE waymark_decisions (
    id bigserial PRIMARY KEY,
    run_id text NOT NULL REFERENCES waymark_runs ON DELETE CASCADE,
    item json NOT NULL,
    account text NOT NULL DEFAULT session_user,
    submitted_at timestamptz NOT NULL DEFAULT now()
);
CREATE FUNCTION waymark_decision_account() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.account := session_user;
    RETURN NEW;
END $$;
CREATE TRIGGER waymark_decision_account BEFORE INSERT OR UPDATE ON waymark_decisions
    FOR EACH ROW EXECUTE FUNCTION waymark_decision_account();
CREATE TABLE waymark_step_logs (
    id bigserial PRIMARY KEY,
    run_id text NOT NULL REFERENCES waymark_runs ON DELETE CASCADE,
    step text NOT NULL,
    entry text NOT NULL
);
CREATE INDEX waymark_step_logs_by_step ON waymark_step_logs (run_id, step, id);
"#,
    r#"
CREATE TABLE waymark_lab (
    name text PRIMARY KEY,
    base text,
    version bigint NOT NULL DEFAULT 0
);
CREATE TABLE waymark_lab_log (
    id bigserial PRIMARY KEY,
    name text NOT NULL,
    line text NOT NULL
);
CREATE INDEX waymark_lab_log_by_name ON waymark_lab_log (name, id);
"#,
];

/// Key of the advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x7761_796d_6172_6b01;

/// A PostgreSQL database holding waymark's state.
#[derive(Debug, Clone)]
pub struct PgStore {
    conn: Conn,
    url: Arc<str>,
    target: Arc<url::Target>,
}

/// Whether `location` names a PostgreSQL database rather than a directory.
pub(super) fn is_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

impl PgStore {
    /// Connect to `url` and bring the schema up to date.
    pub fn open(url: &str) -> Result<PgStore, Diagnostic> {
        let (target, shown) = url::config(url).map_err(Diagnostic::new)?;
        let conn = Conn::open_explained(&target, &shown)?;
        migrate(&conn).map_err(Diagnostic::new)?;
        Ok(PgStore {
            conn,
            url: Arc::from(shown.as_str()),
            target: Arc::new(target),
        })
    }

    pub(super) fn flag(&self) -> String {
        format!(" --state-dir {}", crate::hint::quote(&self.url))
    }

    pub(super) fn describe(&self) -> String {
        self.url.to_string()
    }

    pub(super) fn run_ids(&self) -> Result<Vec<String>, String> {
        self.conn
            .call(|c| {
                let rows = c.query(
                    "SELECT r.run_id FROM waymark_runs r WHERE EXISTS \
                     (SELECT 1 FROM waymark_journal j WHERE j.run_id = r.run_id)",
                    &[],
                )?;
                Ok(rows.iter().map(|r| r.get(0)).collect())
            })
            .map_err(|e| format!("cannot list runs in {}: {e}", self.url))
    }

    pub(super) fn create_run(&self) -> std::io::Result<PgRun> {
        for _ in 0..32 {
            let id = super::new_run_id();
            let row = id.clone();
            let made = self
                .conn
                .call(move |c| {
                    c.execute(
                        "INSERT INTO waymark_runs (run_id) VALUES ($1) ON CONFLICT DO NOTHING",
                        &[&row],
                    )
                })
                .map_err(|e| std::io::Error::other(format!("cannot create a run: {e}")))?;
            if made == 1 {
                return Ok(self.handle(id));
            }
        }
        Err(std::io::Error::other("could not pick a free run id"))
    }

    pub(super) fn run(&self, run_id: &str) -> Result<PgRun, String> {
        super::check_run_id(run_id)?;
        Ok(self.handle(run_id.to_string()))
    }

    pub(super) fn lab(&self, name: &str) -> PgLab {
        PgLab::new(self.clone(), name)
    }

    fn handle(&self, id: String) -> PgRun {
        PgRun {
            store: self.clone(),
            id,
            epoch: Arc::new(Mutex::new(None)),
        }
    }
}

fn migrate(conn: &Conn) -> Result<(), String> {
    let want = MIGRATIONS.len() as i32;
    // Read only: CREATE TABLE IF NOT EXISTS is not safe against a concurrent one (two
    // commands starting at once failed with a duplicate pg_type key), so the table is
    // created only under the lock.
    let current = conn.call(|c| version(c, false))?;
    if current >= want {
        return Ok(());
    }
    conn.call(move |c| {
        c.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
        let result = (|| {
            // Another host may have migrated while we waited for the lock.
            let mut v = version(c, true)?;
            while v < want {
                let mut tx = c.transaction()?;
                tx.batch_execute(MIGRATIONS[v as usize])?;
                tx.execute(
                    "INSERT INTO waymark_schema (version) VALUES ($1)",
                    &[&(v + 1)],
                )?;
                tx.commit()?;
                v += 1;
            }
            Ok(())
        })();
        c.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])?;
        result
    })
    .map_err(|e| format!("cannot create or migrate waymark's tables: {e}"))
}

/// The schema's version (0 without tables); `create` makes its table, under the lock.
fn version(c: &mut postgres::Client, create: bool) -> Result<i32, postgres::Error> {
    let exists: bool = c
        .query_one("SELECT to_regclass('waymark_schema') IS NOT NULL", &[])?
        .get(0);
    if !exists && !create {
        return Ok(0);
    }
    if !exists {
        c.batch_execute("CREATE TABLE IF NOT EXISTS waymark_schema (version integer NOT NULL)")?;
    }
    let v: Option<i32> = c
        .query_one("SELECT max(version) FROM waymark_schema", &[])?
        .get(0);
    Ok(v.unwrap_or(0))
}

/// Longest wait of a follower without a notification: [`wake::FALLBACK`]; the tests
/// (feature `test-hooks`) stretch it with `WAYMARK_FOLLOW_FALLBACK` to show that
/// notifications alone keep a follower current.
fn follow_fallback() -> std::time::Duration {
    #[cfg(feature = "test-hooks")]
    if let Some(d) = std::env::var("WAYMARK_FOLLOW_FALLBACK")
        .ok()
        .and_then(|v| crate::duration::parse_duration(&v).ok())
    {
        return d;
    }
    wake::FALLBACK
}

/// One run in the database.
#[derive(Debug, Clone)]
pub struct PgRun {
    store: PgStore,
    id: String,
    /// The lease epoch this process holds, once [`PgRun::own`] took it.
    epoch: Arc<Mutex<Option<i64>>>,
}

impl PgRun {
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    pub(super) fn store(&self) -> &PgStore {
        &self.store
    }

    fn label(&self) -> PathBuf {
        PathBuf::from(format!("{} run {}", self.store.url, self.id))
    }

    fn failed(&self, message: String) -> JournalError {
        JournalError::Failed {
            path: self.label(),
            message,
        }
    }

    /// Whether `sql`, given this run's id as `$1`, finds a row (`false` when the
    /// database cannot say).
    fn has_row(&self, sql: &'static str) -> bool {
        let id = self.id.clone();
        self.store
            .conn
            .call(move |c| c.query_opt(sql, &[&id]))
            .is_ok_and(|r| r.is_some())
    }

    pub(super) fn exists(&self) -> bool {
        self.has_row("SELECT 1 FROM waymark_journal WHERE run_id = $1 AND seq = 1")
    }

    fn lines(&self) -> Result<Vec<u8>, JournalError> {
        let id = self.id.clone();
        // One value, the lines joined by the server: a row per record cost a message,
        // a decode and an allocation each (a 10,000-step run has 20,000 records).
        let text: Option<String> = self
            .store
            .conn
            .call(move |c| {
                Ok(c.query_one(
                    "SELECT string_agg(record::text, E'\\n' ORDER BY seq) \
                     FROM waymark_journal WHERE run_id = $1",
                    &[&id],
                )?
                .get(0))
            })
            .map_err(|e| self.failed(format!("cannot read the journal: {e}")))?;
        let mut bytes = text.map(String::into_bytes).unwrap_or_default();
        if !bytes.is_empty() {
            bytes.push(b'\n');
        }
        Ok(bytes)
    }

    pub(super) fn read_selected(
        &self,
        wanted: &dyn Fn(&str) -> bool,
    ) -> Result<JournalContents, JournalError> {
        crate::journal::read_bytes(&self.label(), &self.lines()?, wanted)
    }

    pub(super) fn read_origin(&self) -> Option<RunOrigin> {
        let id = self.id.clone();
        let line: String = self
            .store
            .conn
            .call(move |c| {
                c.query_opt(
                    "SELECT record::text FROM waymark_journal WHERE run_id = $1 AND seq = 1",
                    &[&id],
                )
            })
            .ok()??
            .get(0);
        crate::journal::origin_of_line(line.as_bytes())
    }

    pub(super) fn is_held(&self) -> bool {
        self.has_row("SELECT 1 FROM waymark_runs WHERE run_id = $1 AND expires_at > now()")
    }

    pub(super) fn own(&self) -> Result<Lease, LockError> {
        let lease = Lease::take(&self.store.target, &self.store.url, &self.id)?;
        *self.epoch.lock().unwrap_or_else(|e| e.into_inner()) = Some(lease.epoch());
        Ok(lease)
    }

    fn sink(&self) -> Result<Box<dyn RowSink>, JournalError> {
        let epoch = self
            .epoch
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ok_or_else(|| JournalError::Misuse {
                path: self.label(),
                message: "the journal is written only by the lease holder".into(),
            })?;
        // Its own connection: a batch never waits behind a slow read.
        let conn = Conn::open(&self.store.target, &self.store.url).map_err(|e| self.failed(e))?;
        Ok(Box::new(lease::JournalRows {
            conn,
            run: self.id.clone(),
            epoch,
        }))
    }

    pub(super) fn create_journal(
        &self,
        first: Event,
    ) -> Result<(JournalWriter, Record), JournalError> {
        if !matches!(first, Event::RunStarted { .. }) {
            return Err(JournalError::Misuse {
                path: self.label(),
                message: "a new journal must start with a `run_started` record".into(),
            });
        }
        let writer = JournalWriter::to_rows(self.sink()?, self.label(), 1)?;
        let record = writer
            .append_blocking(vec![first])?
            .pop()
            .ok_or_else(|| self.failed("the writer returned no record".into()))?;
        Ok((writer, record))
    }

    pub(super) fn open_journal(&self) -> Result<(JournalWriter, JournalContents), JournalError> {
        let contents = self.read_selected(&|_| true)?;
        let next = contents.records.len() as u64 + 1;
        let writer = JournalWriter::to_rows(self.sink()?, self.label(), next)?;
        Ok((writer, contents))
    }

    pub(super) fn submit_decision(&self, item: &InboxItem) -> Result<String, InboxError> {
        let text = serde_json::to_string(item)
            .map_err(|e| InboxError::store(&self.store.url, "encode", e.to_string()))?;
        let id = self.id.clone();
        let row: i64 = self
            .store
            .conn
            .call(move |c| {
                let mut tx = c.transaction()?;
                let r = tx.query_one(
                    "INSERT INTO waymark_decisions (run_id, item) \
                     SELECT run_id, $2::text::json FROM waymark_runs WHERE run_id = $1 RETURNING id",
                    &[&id, &text],
                )?;
                // Delivered at commit: the live run's listener wakes it.
                tx.execute("SELECT pg_notify($1, $2)", &[&wake::CHANNEL, &id])?;
                tx.commit()?;
                Ok(r.get(0))
            })
            .map_err(|e| InboxError::store(&self.store.url, "write", e))?;
        Ok(format!("{} (decision {row})", self.store.url))
    }

    pub(super) fn pending_decisions(&self) -> Result<Drained, InboxError> {
        let wake = wake::Wake::of(&self.store.target);
        if !wake.take(&self.id) {
            return Ok(Drained::default());
        }
        let drained = self.read_decisions()?;
        wake.read(
            &self.id,
            drained.items.is_empty() && drained.warnings.is_empty(),
        );
        Ok(drained)
    }

    /// Until the run changed (its listener was notified), at most a fallback interval
    /// (2 s); every `poll` while no listener is connected.
    pub(super) fn wait_change(&self, poll: std::time::Duration) {
        // A busy run notifies every batch: looking more than ten times a second would
        // re-read its journal for nothing.
        let min_gap = std::time::Duration::from_millis(100);
        let start = std::time::Instant::now();
        wake::Wake::of(&self.store.target).wait_change(&self.id, poll, follow_fallback());
        std::thread::sleep(min_gap.saturating_sub(start.elapsed()));
    }

    fn read_decisions(&self) -> Result<Drained, InboxError> {
        let id = self.id.clone();
        let rows: Vec<(i64, String, String)> = self
            .store
            .conn
            .call(move |c| {
                let rows = c.query(
                    "SELECT id, item::text, account FROM waymark_decisions \
                     WHERE run_id = $1 ORDER BY id",
                    &[&id],
                )?;
                Ok(rows
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect())
            })
            .map_err(|e| InboxError::store(&self.store.url, "list", e))?;
        let mut drained = Drained::default();
        for (row, text, account) in rows {
            let label = PathBuf::from(format!("{} decision {row}", self.store.url));
            match serde_json::from_str::<InboxItem>(&text) {
                Ok(mut item) => {
                    // Who decided is the role the server authenticated, not what the
                    // row's JSON claims.
                    item.account = account;
                    let conn = self.store.conn.clone();
                    let remover = Remover(Arc::new(move || {
                        conn.call(move |c| {
                            c.execute("DELETE FROM waymark_decisions WHERE id = $1", &[&row])
                                .map(|_| ())
                        })
                    }));
                    drained.items.push(Pending::stored(item, label, remover));
                }
                Err(e) => drained.warnings.push(format!(
                    "ignoring {}: not a decision ({e})",
                    label.display()
                )),
            }
        }
        Ok(drained)
    }

    pub(super) fn step_log(
        &self,
        step: &str,
        redactor: Redactor,
        options: StepLogOptions,
    ) -> std::io::Result<StepLog> {
        let (conn, run, step) = (self.store.conn.clone(), self.id.clone(), step.to_string());
        Ok(StepLog::to_sink(
            redactor,
            options,
            Arc::new(move |entry: &str| {
                let (run, step, entry) = (run.clone(), step.clone(), entry.to_string());
                // In order (one connection thread), without making the step wait.
                conn.spawn(move |c| {
                    c.execute(
                        "WITH i AS (INSERT INTO waymark_step_logs (run_id, step, entry) \
                         VALUES ($1, $2, $3) RETURNING 1) SELECT pg_notify($4, $1) FROM i",
                        &[&run, &step, &entry, &wake::CHANGES],
                    )
                    .map(|_| ())
                });
            }),
        ))
    }

    /// Entries of `step`'s log after row `after`, with the last row's id.
    pub(super) fn step_log_since(&self, step: &str, after: i64) -> (Vec<u8>, i64) {
        let (id, step) = (self.id.clone(), step.to_string());
        let rows: Vec<(i64, String)> = self
            .store
            .conn
            .call(move |c| {
                let rows = c.query(
                    "SELECT id, entry FROM waymark_step_logs \
                     WHERE run_id = $1 AND step = $2 AND id > $3 ORDER BY id",
                    &[&id, &step, &after],
                )?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
            })
            .unwrap_or_default();
        let last = rows.last().map_or(after, |(i, _)| *i);
        let bytes = rows.into_iter().flat_map(|(_, e)| e.into_bytes()).collect();
        (bytes, last)
    }

    pub(super) fn read_step_log(&self, step: &str) -> StepLogBytes {
        let (bytes, last) = self.step_log_since(step, 0);
        StepLogBytes {
            rotated: Vec::new(),
            current: (last > 0).then_some(bytes),
        }
    }
}
