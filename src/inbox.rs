//! Approvals and rejections handed to a live run from another terminal (SPEC §4).
//!
//! While a run is live its process is the journal's only writer, so `waymark approve`
//! cannot append to the journal itself. Instead it drops one JSON file into
//! `runs/RUN_ID/inbox/`; the live process (or the next `resume`) picks it up, journals it,
//! and only then removes the file. Delivery is therefore at-least-once: if the process dies
//! between journaling and removing, the item comes back on the next drain, and the consumer
//! must treat a second approval of the same gate by the same person as already recorded.
//!
//! Each file is written to a hidden temporary name, fsynced and renamed into place, so a
//! reader never sees half an approval.
//!
//! Who decided is not taken from the file's contents: on Unix the account is the owner of
//! the file, which only the approver's own process (or root) can have created. A
//! hand-written item claiming to be someone else is therefore recorded as its real author.

use crate::journal::record::Event;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Directory inside a run directory that holds submitted decisions.
pub(crate) const INBOX_DIR: &str = "inbox";

/// Larger files are not approvals waymark wrote; they are skipped rather than read.
const MAX_ITEM_BYTES: u64 = 1 << 20;

/// Whether a person approved or rejected a gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// `waymark approve`.
    Approve,
    /// `waymark reject`.
    Reject,
}

/// One operator decision on a gate, as submitted by `waymark approve` / `reject`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
    /// Approve or reject.
    pub decision: Decision,
    /// The gate decided on.
    pub gate: String,
    /// Display name of who decided (`--by`, else the account).
    pub by: String,
    /// The OS account that decided; on Unix replaced on reading by the file's owner.
    #[serde(default)]
    pub account: String,
    /// Host the decision was made on.
    pub host: String,
    /// `--note`, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The plan fingerprint the approver saw (from the journal they approved against).
    pub plan_fingerprint: String,
    /// When the decision was made, RFC 3339 UTC.
    pub at: String,
}

impl InboxItem {
    /// A decision made now, on this host, by this process's account; `by` is the display
    /// name (`None`: the account).
    pub fn new(
        decision: Decision,
        gate: impl Into<String>,
        by: Option<String>,
        note: Option<String>,
        plan_fingerprint: impl Into<String>,
    ) -> Self {
        let account = crate::journal::current_user();
        InboxItem {
            decision,
            gate: gate.into(),
            by: by.unwrap_or_else(|| account.clone()),
            account,
            host: crate::journal::current_host(),
            note,
            plan_fingerprint: plan_fingerprint.into(),
            at: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        }
    }

    /// The journal event that records this decision.
    pub fn to_event(&self) -> Event {
        match self.decision {
            Decision::Approve => Event::GateApproved {
                gate: self.gate.clone(),
                by: self.by.clone(),
                host: self.host.clone(),
                note: self.note.clone(),
                plan_fingerprint: self.plan_fingerprint.clone(),
                account: Some(self.account.clone()),
                at: Some(self.at.clone()),
            },
            Decision::Reject => Event::GateRejected {
                gate: self.gate.clone(),
                by: self.by.clone(),
                host: self.host.clone(),
                note: self.note.clone(),
                plan_fingerprint: self.plan_fingerprint.clone(),
                account: Some(self.account.clone()),
                at: Some(self.at.clone()),
            },
        }
    }
}

/// A submitted item still in the inbox; [`Pending::remove`] it once it is journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The decision.
    pub item: InboxItem,
    path: PathBuf,
    /// How a store other than a directory removes it (`path` then only names it).
    remover: Option<Remover>,
}

/// Removes one pending item from a store other than a directory.
#[derive(Clone)]
pub struct Remover(pub std::sync::Arc<dyn Fn() -> Result<(), String> + Send + Sync>);

impl fmt::Debug for Remover {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Remover")
    }
}

impl PartialEq for Remover {
    fn eq(&self, _: &Remover) -> bool {
        true
    }
}

impl Eq for Remover {}

impl Pending {
    /// Delete the item's file: call only after its event is durable in the journal.
    pub fn remove(&self) -> Result<(), InboxError> {
        if let Some(Remover(remove)) = &self.remover {
            return remove()
                .map_err(|e| InboxError::new(&self.path, "remove", io::Error::other(e)));
        }
        match fs::remove_file(&self.path) {
            Ok(()) => {}
            // Already gone (removed by an earlier attempt): the goal is met.
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(InboxError::new(&self.path, "remove", e)),
        }
        // Make the removal durable so a crash does not hand the item back a second time.
        if let Some(dir) = self.path.parent() {
            sync_dir(dir).map_err(|e| InboxError::new(dir, "sync", e))?;
        }
        Ok(())
    }

    /// An item kept by a store other than a directory: `label` names it in messages,
    /// `remover` removes it.
    pub fn stored(item: InboxItem, label: PathBuf, remover: Remover) -> Pending {
        Pending {
            item,
            path: label,
            remover: Some(remover),
        }
    }

    /// The file holding the item.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What [`drain`] found: items in submission order, and files it had to skip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Drained {
    /// Pending items, oldest first.
    pub items: Vec<Pending>,
    /// One message per file that could not be read as an item (left in place).
    pub warnings: Vec<String>,
}

/// The inbox could not be written or listed.
#[derive(Debug)]
pub struct InboxError {
    /// The file or directory concerned.
    pub path: PathBuf,
    /// What waymark was doing.
    pub action: &'static str,
    /// The underlying error.
    pub source: io::Error,
}

impl InboxError {
    /// An error of a store other than a directory (`what` names the place).
    pub fn store(what: &str, action: &'static str, message: String) -> Self {
        InboxError {
            path: PathBuf::from(what),
            action,
            source: io::Error::other(message),
        }
    }

    fn new(path: &Path, action: &'static str, source: io::Error) -> Self {
        InboxError {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

impl fmt::Display for InboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} approval inbox {}: {}",
            self.action,
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for InboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Durably add `item` to the inbox of the run in `run_dir`; returns the file written.
pub(crate) fn submit(run_dir: &Path, item: &InboxItem) -> Result<PathBuf, InboxError> {
    let dir = run_dir.join(INBOX_DIR);
    // `create_dir`, not `_all`: a mistyped run id must not conjure up a run directory.
    match fs::create_dir(&dir) {
        Ok(()) => {
            share_like(run_dir, &dir);
            sync_dir(run_dir).map_err(|e| InboxError::new(run_dir, "sync", e))?
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(InboxError::new(&dir, "create", e)),
    }
    let stem = item_stem();
    let tmp = dir.join(format!(".{stem}.tmp"));
    let path = dir.join(format!("{stem}.json"));
    let mut text = serde_json::to_vec_pretty(item)
        .map_err(|e| InboxError::new(&path, "encode", io::Error::other(e)))?;
    text.push(b'\n');

    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut f| {
        f.write_all(&text)?;
        f.sync_all()
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(InboxError::new(&tmp, "write", e));
    }
    if let Err(e) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(InboxError::new(&path, "write", e));
    }
    sync_dir(&dir).map_err(|e| InboxError::new(&dir, "sync", e))?;
    Ok(path)
}

// The first approver creates the inbox with their umask, which would lock out the next
// approver of a run dir shared through a group: give it the run dir's permissions, plus
// the sticky bit so no approver can remove another's item.
fn share_like(run_dir: &Path, dir: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(m) = fs::metadata(run_dir) {
            let mode = (m.permissions().mode() & 0o777) | 0o1000;
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(mode));
        }
    }
    #[cfg(not(unix))]
    let _ = (run_dir, dir);
}

/// The items pending in the inbox of the run in `run_dir`, oldest first; nothing is removed.
pub(crate) fn drain(run_dir: &Path) -> Result<Drained, InboxError> {
    let dir = run_dir.join(INBOX_DIR);
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Drained::default()),
        Err(e) => return Err(InboxError::new(&dir, "list", e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| InboxError::new(&dir, "list", e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Hidden names are submissions still being written (or abandoned mid-write).
        if name.ends_with(".json") && !name.starts_with('.') {
            names.push(name);
        }
    }
    // Names start with a zero-padded timestamp, so name order is submission order.
    names.sort();
    let mut drained = Drained::default();
    for name in names {
        let path = dir.join(&name);
        match read_item(&path) {
            Ok(item) => drained.items.push(Pending {
                item,
                path,
                remover: None,
            }),
            // Taken by a concurrent drain between listing and reading.
            Err(ReadProblem::Gone) => {}
            Err(ReadProblem::Bad(why)) => drained.warnings.push(format!(
                "ignoring approval inbox file {}: {why} (left in place; remove it once checked)",
                path.display()
            )),
        }
    }
    Ok(drained)
}

enum ReadProblem {
    Gone,
    Bad(String),
}

fn read_item(path: &Path) -> Result<InboxItem, ReadProblem> {
    let bad = |e: io::Error| {
        if e.kind() == io::ErrorKind::NotFound {
            ReadProblem::Gone
        } else {
            ReadProblem::Bad(e.to_string())
        }
    };
    let meta = fs::metadata(path).map_err(bad)?;
    let len = meta.len();
    if len > MAX_ITEM_BYTES {
        return Err(ReadProblem::Bad(format!("{len} bytes is too large")));
    }
    let bytes = fs::read(path).map_err(bad)?;
    let mut item: InboxItem = serde_json::from_slice(&bytes)
        .map_err(|e| ReadProblem::Bad(format!("not an approval: {e}")))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        item.account = crate::journal::identity::account_name(meta.uid());
    }
    if item.account.trim().is_empty() {
        return Err(ReadProblem::Bad("names no account".into()));
    }
    Ok(item)
}

/// A file name stem that sorts in submission order: `NANOS-PID-COUNTER`.
fn item_stem() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{nanos:020}-{}-{n:06}", std::process::id())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    crate::journal::writer::sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approval(gate: &str, by: &str) -> InboxItem {
        InboxItem::new(
            Decision::Approve,
            gate,
            Some(by.into()),
            Some("looks good".into()),
            "fp1",
        )
    }

    #[test]
    fn drain_returns_items_in_submission_order() {
        let tmp = tempfile::tempdir().unwrap();
        let items: Vec<InboxItem> = (0..20)
            .map(|i| approval(&format!("gate-{i}"), "bob"))
            .collect();
        for item in &items {
            submit(tmp.path(), item).unwrap();
        }
        let drained = drain(tmp.path()).unwrap();
        assert!(drained.warnings.is_empty());
        let got: Vec<InboxItem> = drained.items.into_iter().map(|p| p.item).collect();
        assert_eq!(got, items);
    }

    #[test]
    fn items_survive_a_crash_between_drain_and_remove() {
        let tmp = tempfile::tempdir().unwrap();
        let item = approval("sim-upgrade", "bob");
        submit(tmp.path(), &item).unwrap();
        // The live process reads the item, then dies before journaling it.
        let first = drain(tmp.path()).unwrap();
        assert_eq!(first.items.len(), 1);
        drop(first);
        // The next drain (e.g. by `resume`) still sees it.
        let second = drain(tmp.path()).unwrap();
        assert_eq!(second.items.len(), 1);
        assert_eq!(second.items[0].item, item);
        second.items[0].remove().unwrap();
        // Removing twice is harmless: a retry after a partial failure must not error.
        second.items[0].remove().unwrap();
        assert!(drain(tmp.path()).unwrap().items.is_empty());
    }

    #[test]
    fn submitting_to_a_missing_run_creates_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let run_dir = tmp.path().join("no-such-run");
        let err = submit(&run_dir, &approval("g", "bob")).unwrap_err();
        assert_eq!(err.source.kind(), io::ErrorKind::NotFound);
        assert!(!run_dir.exists());
    }

    #[test]
    fn drain_of_a_run_without_inbox_is_empty() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(drain(tmp.path()).unwrap(), Drained::default());
    }

    #[test]
    fn submissions_leave_no_temporary_files_and_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let path = submit(tmp.path(), &approval("g", "bob")).unwrap();
        let names: Vec<String> = fs::read_dir(tmp.path().join(INBOX_DIR))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
        assert!(names[0].ends_with(".json"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        #[cfg(not(unix))]
        let _ = path;
    }

    #[test]
    fn unreadable_files_are_reported_and_do_not_block_others() {
        let tmp = tempfile::tempdir().unwrap();
        submit(tmp.path(), &approval("a", "bob")).unwrap();
        let dir = tmp.path().join(INBOX_DIR);
        fs::write(
            dir.join("00000000000000000000-1-000000.json"),
            b"{ not json",
        )
        .unwrap();
        // A submission abandoned mid-write is not an item.
        fs::write(dir.join(".00000000000000000001-1-000000.tmp"), b"{").unwrap();
        let drained = drain(tmp.path()).unwrap();
        assert_eq!(drained.items.len(), 1);
        assert_eq!(drained.items[0].item.gate, "a");
        assert_eq!(drained.warnings.len(), 1);
        assert!(
            drained.warnings[0].contains("not an approval"),
            "{:?}",
            drained.warnings
        );
    }

    #[test]
    fn an_items_account_is_its_files_owner_not_what_it_claims() {
        let tmp = tempfile::tempdir().unwrap();
        let mut item = approval("g", "bob");
        item.account = "someone-else".into();
        submit(tmp.path(), &item).unwrap();
        let drained = drain(tmp.path()).unwrap();
        #[cfg(unix)]
        assert_eq!(
            drained.items[0].item.account,
            crate::journal::current_user()
        );
        assert_eq!(drained.items[0].item.by, "bob");
    }

    #[test]
    fn items_become_gate_events() {
        let approve = approval("g", "bob");
        assert!(matches!(
            approve.to_event(),
            Event::GateApproved { ref gate, ref by, .. } if gate == "g" && by == "bob"
        ));
        let reject = InboxItem::new(Decision::Reject, "g", Some("carol".into()), None, "fp1");
        assert!(matches!(
            reject.to_event(),
            Event::GateRejected { ref by, note: None, .. } if by == "carol"
        ));
    }
}
