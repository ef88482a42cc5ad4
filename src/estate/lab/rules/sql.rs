//! The CMDB on the NS's SQL Server: collations, backup and restore (which needs the
//! source's KMS keys when it lands on another NS), and index maintenance. The SQL
//! server is simulated from the NS's own facts, so these rules act on the NS's state.

use serde_json::{json, Value};

use super::Ctx;
use crate::estate::lab::state::Backup;
use crate::estate::{EstateError, Problem};

pub(super) fn collation(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    let sql = c.inv.server(c.server).and_then(|s| s.sql.clone());
    Ok(json!({
        "server": c.server, "sql": sql,
        "server_collation": me.collation, "db_collation": me.db_collation(),
        "matches": me.collation == me.db_collation(),
    }))
}

fn backup_file(c: &Ctx) -> String {
    c.args.given_str("file").unwrap_or_else(|| {
        let dest = c.args.str("dest").unwrap_or_default();
        format!(
            "{}\\Symantec_CMDB_{}.bak",
            dest.trim_end_matches('\\'),
            c.server
        )
    })
}

pub(super) fn backup_cmdb(c: &mut Ctx) -> Result<Value, EstateError> {
    let file = backup_file(c);
    let database = c.args.str("database").unwrap_or_default();
    let verify = c.args.bool("verify");
    let me = c.me()?;
    let db_collation = me.db_collation().to_string();
    let endpoints = c
        .inv
        .server(c.server)
        .and_then(|s| s.endpoints)
        .unwrap_or(100);
    let sql = c.inv.server(c.server).and_then(|s| s.sql.clone());
    // WITH INIT overwrites: the newest backup to a file replaces the older record.
    c.st.backups.retain(|b| !b.file.eq_ignore_ascii_case(&file));
    c.st.backups.push(Backup {
        file: file.clone(),
        source: c.server.to_string(),
        db_collation,
        seq: c.seq,
    });
    c.note("file", json!(file));
    Ok(json!({
        "server": c.server, "sql": sql, "database": database, "file": file,
        "verified": verify, "bytes": endpoints.saturating_mul(6 * 1024 * 1024),
    }))
}

pub(super) fn defragment_cmdb(c: &mut Ctx) -> Result<Value, EstateError> {
    let database = c.args.str("database").unwrap_or_default();
    let sql = c.inv.server(c.server).and_then(|s| s.sql.clone());
    let me = c.me_mut()?;
    let done = me.fragmented;
    me.fragmented = Default::default();
    Ok(json!({
        "server": c.server, "sql": sql, "database": database,
        "reorganized": done.reorganize, "rebuilt": done.rebuild,
    }))
}

pub(super) fn restore_cmdb(c: &mut Ctx) -> Result<Value, EstateError> {
    let file = c.args.str("file").unwrap_or_default();
    let database = c.args.str("database").unwrap_or_default();
    let replace = c.args.bool("replace");
    let sql = c.inv.server(c.server).and_then(|s| s.sql.clone());
    let Some(backup) =
        c.st.backups
            .iter()
            .find(|b| b.file.eq_ignore_ascii_case(&file))
            .cloned()
    else {
        return Err(c.script_error(format!(
            "cannot open backup device '{file}': the lab knows only files written by backup_cmdb"
        )));
    };
    let mut problems = Vec::new();
    if backup.source != c.server && !c.st.kms_backups.iter().any(|(ns, _)| *ns == backup.source) {
        problems.push(Problem::new(
            format!(
                "the KMS keys of `{}` were never backed up; the CMDB restored on `{}` could not decrypt its secrets",
                backup.source, c.server
            ),
            format!("run backup_kms on `{}` first", backup.source),
        ));
    }
    if c.me()?.cmdb_present && !replace {
        problems.push(Problem::new(
            format!(
                "database {database} already exists on the SQL server of `{}`",
                c.server
            ),
            "pass replace: true to overwrite it (RESTORE ... WITH REPLACE)",
        ));
    }
    if !problems.is_empty() {
        return Err(c.refused(problems));
    }
    let me = c.me_mut()?;
    me.db_collation = Some(backup.db_collation.clone());
    me.cmdb_present = true;
    me.cmdb_restored_from = Some(backup.source.clone());
    c.note("source", json!(backup.source));
    Ok(json!({"server": c.server, "sql": sql, "database": database, "file": file}))
}
