//! Backups of the NS's own files: its configuration and its KMS keys. The lab records
//! the KMS backups because a CMDB restored on another NS needs them (`sql.rs`).

use serde_json::{json, Value};

use super::Ctx;
use crate::estate::EstateError;

pub(super) fn backup_ns(c: &mut Ctx) -> Result<Value, EstateError> {
    let dest = c.args.str("dest").unwrap_or_default();
    let path = format!(
        "{}\\{}-ns-{:04}",
        dest.trim_end_matches('\\'),
        c.server,
        c.seq
    );
    c.note("path", json!(path));
    Ok(json!({"server": c.server, "path": path, "files": 1843}))
}

pub(super) fn backup_kms(c: &mut Ctx) -> Result<Value, EstateError> {
    let dest = c.args.str("dest").unwrap_or_default();
    let file = format!("{}\\{}.kms", dest.trim_end_matches('\\'), c.server);
    c.st.kms_backups.push((c.server.to_string(), file.clone()));
    c.note("file", json!(file));
    Ok(json!({"server": c.server, "file": file}))
}
