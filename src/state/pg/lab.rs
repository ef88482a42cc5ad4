//! One lab estate in the database: `waymark_lab` holds the base (the estate as of its
//! last compaction) and a version that changes with every write, `waymark_lab_log` one
//! row per operation since; an advisory lock on a connection of its own serialises
//! processes changing it, as `lab/NAME.lock` does for files.

use super::{Conn, PgStore};

/// One lab estate's rows: `waymark_lab` (the base and its version) and `waymark_lab_log`.
#[derive(Debug, Clone)]
pub struct PgLab {
    store: PgStore,
    name: String,
}

/// The advisory lock of one lab estate, on a connection of its own; released when dropped.
#[derive(Debug)]
pub struct PgLabLock {
    conn: Conn,
    key: String,
}

impl Drop for PgLabLock {
    fn drop(&mut self) {
        let key = self.key.clone();
        let _ = self.conn.call(move |c| {
            c.execute("SELECT pg_advisory_unlock(hashtext($1))", &[&key])
                .map(|_| ())
        });
    }
}

impl PgLab {
    pub(super) fn new(store: PgStore, name: &str) -> PgLab {
        PgLab {
            store,
            name: name.to_string(),
        }
    }

    pub(in crate::state) fn label(&self) -> String {
        format!("{} lab {}", self.store.url, self.name)
    }

    pub(in crate::state) fn stamp(&self) -> (Option<(u64, std::time::SystemTime)>, u64) {
        let name = self.name.clone();
        let got = self.store.conn.call(move |c| {
            let base = c.query_opt(
                "SELECT length(base), version FROM waymark_lab WHERE name = $1 AND base IS NOT NULL",
                &[&name],
            )?;
            let log: i64 = c
                .query_one("SELECT coalesce(max(id), 0) FROM waymark_lab_log WHERE name = $1", &[&name])?
                .get(0);
            Ok((base.map(|r| (r.get::<_, i32>(0), r.get::<_, i64>(1))), log))
        });
        match got {
            Ok((base, log)) => (
                base.map(|(len, v)| {
                    (
                        len as u64,
                        std::time::UNIX_EPOCH + std::time::Duration::from_nanos(v as u64),
                    )
                }),
                log as u64,
            ),
            // Unknown: a stamp that matches nothing cached, so the state is read again.
            Err(_) => (None, u64::MAX),
        }
    }

    pub(in crate::state) fn lock(&self) -> Result<PgLabLock, String> {
        let conn = Conn::open(&self.store.target, &self.store.url)?;
        let key = format!("waymark-lab:{}", self.name);
        let k = key.clone();
        conn.call(move |c| {
            c.execute("SELECT pg_advisory_lock(hashtext($1))", &[&k])
                .map(|_| ())
        })?;
        Ok(PgLabLock { conn, key })
    }

    pub(in crate::state) fn append_log(&self, line: &[u8]) -> Result<(), String> {
        let (name, line) = (
            self.name.clone(),
            String::from_utf8_lossy(line).into_owned(),
        );
        self.store.conn.call(move |c| {
            c.execute(
                "INSERT INTO waymark_lab_log (name, line) VALUES ($1, $2)",
                &[&name, &line],
            )
            .map(|_| ())
        })
    }

    pub(in crate::state) fn read_log(&self) -> Result<Option<String>, String> {
        let name = self.name.clone();
        let lines: Vec<String> = self.store.conn.call(move |c| {
            let rows = c.query(
                "SELECT line FROM waymark_lab_log WHERE name = $1 ORDER BY id",
                &[&name],
            )?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        Ok((!lines.is_empty()).then(|| lines.concat()))
    }

    pub(in crate::state) fn remove_log(&self) -> Result<bool, String> {
        let name = self.name.clone();
        self.store.conn.call(move |c| {
            c.execute("DELETE FROM waymark_lab_log WHERE name = $1", &[&name])
                .map(|n| n > 0)
        })
    }

    pub(in crate::state) fn read_base(&self) -> Result<Option<Vec<u8>>, String> {
        let name = self.name.clone();
        self.store.conn.call(move |c| {
            let row = c.query_opt(
                "SELECT base FROM waymark_lab WHERE name = $1 AND base IS NOT NULL",
                &[&name],
            )?;
            Ok(row.map(|r| r.get::<_, String>(0).into_bytes()))
        })
    }

    pub(in crate::state) fn write_base(&self, bytes: &[u8]) -> Result<(), String> {
        let (name, text) = (
            self.name.clone(),
            String::from_utf8_lossy(bytes).into_owned(),
        );
        let version = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64);
        self.store.conn.call(move |c| {
            c.execute(
                "INSERT INTO waymark_lab (name, base, version) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET base = $2, version = $3",
                &[&name, &text, &version],
            )
            .map(|_| ())
        })
    }

    pub(in crate::state) fn remove_base(&self) -> Result<bool, String> {
        let name = self.name.clone();
        self.store.conn.call(move |c| {
            c.execute(
                "DELETE FROM waymark_lab WHERE name = $1 AND base IS NOT NULL",
                &[&name],
            )
            .map(|n| n > 0)
        })
    }
}
