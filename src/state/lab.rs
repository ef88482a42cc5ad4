//! Where a lab estate's state lives: a base (the estate as of its last compaction), a
//! log of one line per operation since, and a lock held across a read-modify-write.
//! `estate/lab/state_file.rs` decides what goes in them; this decides where: files
//! under the state directory's `lab/`, or rows in the database store.

use super::dir::LabFiles;
use super::pg::PgLab;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::time::SystemTime;

/// The storage of one lab estate.
#[derive(Debug, Clone)]
pub enum LabStore {
    /// Files under the state directory's `lab/`.
    Files(LabFiles),
    /// Rows in the database store.
    Rows(PgLab),
}

/// Held while one process changes the estate; released when dropped.
#[derive(Debug)]
pub enum LabLock {
    /// The `flock` of `lab/NAME.lock`.
    File(File),
    /// A database advisory lock, released with it.
    Rows(super::pg::PgLabLock),
}

impl Drop for LabLock {
    fn drop(&mut self) {
        if let LabLock::File(f) = self {
            // Closing releases it as well; unlocking first makes the order explicit.
            let _ = f.unlock();
        }
    }
}

fn missing(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound
}

impl LabStore {
    /// The base's name in messages (its path, for files).
    pub fn label(&self) -> String {
        match self {
            LabStore::Files(f) => f.base.display().to_string(),
            LabStore::Rows(r) => r.label(),
        }
    }

    /// The log's name in messages.
    pub fn log_label(&self) -> String {
        match self {
            LabStore::Files(f) => f.log.display().to_string(),
            LabStore::Rows(r) => format!("{} log", r.label()),
        }
    }

    /// What identifies the content without reading it: the base's length and version
    /// (its modification time, for a file), and the log's length.
    pub fn stamp(&self) -> (Option<(u64, SystemTime)>, u64) {
        match self {
            LabStore::Files(f) => {
                let base = fs::metadata(&f.base)
                    .ok()
                    .and_then(|m| Some((m.len(), m.modified().ok()?)));
                (base, fs::metadata(&f.log).map_or(0, |m| m.len()))
            }
            LabStore::Rows(r) => r.stamp(),
        }
    }

    /// Take the cross-process lock of the estate.
    pub fn lock(&self) -> Result<LabLock, String> {
        match self {
            LabStore::Files(f) => {
                if let Some(dir) = f.base.parent() {
                    fs::create_dir_all(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                let lock = OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&f.lock)
                    .map_err(|e| format!("cannot open lock file: {e}"))?;
                lock.lock().map_err(|e| format!("cannot lock: {e}"))?;
                Ok(LabLock::File(lock))
            }
            LabStore::Rows(r) => r.lock().map(LabLock::Rows),
        }
    }

    /// Append one line (with its newline) to the log, durably.
    pub fn append_log(&self, line: &[u8]) -> Result<(), String> {
        match self {
            LabStore::Files(f) => {
                let mut file = OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&f.log)
                    .map_err(|e| format!("cannot open {}: {e}", f.log.display()))?;
                file.write_all(line)
                    .and_then(|_| file.sync_data())
                    .map_err(|e| format!("cannot write {}: {e}", f.log.display()))
            }
            LabStore::Rows(r) => r.append_log(line),
        }
    }

    /// The log's text, `None` when there is none.
    pub fn read_log(&self) -> Result<Option<String>, String> {
        match self {
            LabStore::Files(f) => match fs::read_to_string(&f.log) {
                Ok(t) => Ok(Some(t)),
                Err(e) if missing(&e) => Ok(None),
                Err(e) => Err(format!("cannot read {}: {e}", f.log.display())),
            },
            LabStore::Rows(r) => r.read_log(),
        }
    }

    /// Drop the log; true when there was one.
    pub fn remove_log(&self) -> Result<bool, String> {
        match self {
            LabStore::Files(f) => match fs::remove_file(&f.log) {
                Ok(()) => Ok(true),
                Err(e) if missing(&e) => Ok(false),
                Err(e) => Err(format!("cannot remove {}: {e}", f.log.display())),
            },
            LabStore::Rows(r) => r.remove_log(),
        }
    }

    /// The base, `None` when there is none.
    pub fn read_base(&self) -> Result<Option<Vec<u8>>, String> {
        match self {
            LabStore::Files(f) => match fs::read(&f.base) {
                Ok(b) => Ok(Some(b)),
                Err(e) if missing(&e) => Ok(None),
                Err(e) => Err(format!("cannot read: {e}")),
            },
            LabStore::Rows(r) => r.read_base(),
        }
    }

    /// Replace the base atomically and durably (temp file, fsync, rename, directory
    /// fsync for files; one committed row for the database).
    pub fn write_base(&self, bytes: &[u8]) -> Result<(), String> {
        match self {
            LabStore::Files(f) => {
                let mut file = File::create(&f.tmp)
                    .map_err(|e| format!("cannot write {}: {e}", f.tmp.display()))?;
                file.write_all(bytes)
                    .and_then(|_| file.sync_all())
                    .map_err(|e| format!("cannot write {}: {e}", f.tmp.display()))?;
                drop(file);
                fs::rename(&f.tmp, &f.base).map_err(|e| format!("cannot replace: {e}"))?;
                // The rename is only durable once the directory entry is.
                if let Some(dir) = f.base.parent() {
                    if let Ok(d) = File::open(dir) {
                        let _ = d.sync_all();
                    }
                }
                Ok(())
            }
            LabStore::Rows(r) => r.write_base(bytes),
        }
    }

    /// Delete the base (and any leftover temp file); true when there was one.
    pub fn remove_base(&self) -> Result<bool, String> {
        match self {
            LabStore::Files(f) => {
                let _ = fs::remove_file(&f.tmp);
                match fs::remove_file(&f.base) {
                    Ok(()) => Ok(true),
                    Err(e) if missing(&e) => Ok(false),
                    Err(e) => Err(format!("cannot delete: {e}")),
                }
            }
            LabStore::Rows(r) => r.remove_base(),
        }
    }
}
