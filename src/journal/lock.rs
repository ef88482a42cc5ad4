//! The per-run lock: at most one waymark process drives a run at a time.
//!
//! `runs/RUN_ID/lock` is locked with an OS file lock (`flock` on Unix), so the kernel
//! releases it when the holder exits, however it exits; there is no stale lock to clean
//! up after a crash. The file's content (pid, host, user, since when) only serves the
//! message shown to whoever is refused. `status` uses [`is_held`] to tell a run that is
//! `running` from one that `crashed`.
//!
//! The file is never deleted: deleting it would let a newcomer lock a fresh inode while
//! the old holder still holds the old one, and both would drive the run.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// File name of the lock inside a run directory.
pub(crate) const LOCK_FILE: &str = "lock";

/// Proof that this process drives the run; the lock is released when this is dropped.
#[derive(Debug)]
pub struct RunLock {
    // Held for its open file description: closing it releases the flock.
    _file: File,
    path: PathBuf,
}

// The fds of the locks this process holds. A child forked while one is open shares its
// open file description, so it holds the flock too until it execs (close-on-exec) — and
// a child held before `exec` (see `process/gate.rs`) would keep a crashed run looking
// live. The gate closes these in the child.
#[cfg(unix)]
fn held_fds() -> std::sync::MutexGuard<'static, Vec<i32>> {
    static FDS: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());
    FDS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The fds of the run locks this process holds now, for children to close before they
/// wait for anything (`process/gate.rs`).
#[cfg(unix)]
pub(crate) fn lock_fds() -> Vec<i32> {
    held_fds().clone()
}

#[cfg(unix)]
impl Drop for RunLock {
    fn drop(&mut self) {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&self._file);
        held_fds().retain(|&f| f != fd);
    }
}

/// How long [`RunLock::acquire`] waits for a dead holder's leftover child to let go.
const LEFTOVER_WAIT: std::time::Duration = std::time::Duration::from_secs(3);
const LEFTOVER_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Who holds a run's lock, as written into the lock file by the holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct LockHolder {
    /// Process id of the holder.
    pub pid: u32,
    /// Host the holder runs on.
    pub host: String,
    /// OS user of the holder.
    pub user: String,
    /// When the holder took the lock (RFC 3339 UTC).
    pub since: String,
}

/// Why a run's lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it.
    Held {
        /// The lock file.
        path: PathBuf,
        /// What the holder wrote about itself, if it could be read.
        holder: Option<LockHolder>,
    },
    /// Another process holds the run's lease (a database store) until it expires.
    Leased {
        /// The run.
        run: String,
        /// The holder.
        holder: LockHolder,
        /// When the lease expires unless its holder renews it (RFC 3339 UTC).
        expires: String,
    },
    /// The store could not be asked (a database store).
    Store {
        /// The run.
        run: String,
        /// What went wrong.
        message: String,
    },
    /// The lock file could not be opened, locked or written.
    Io {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Held { path, holder } => {
                let run = path
                    .parent()
                    .and_then(Path::file_name)
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| path.display().to_string());
                write!(f, "another waymark process is driving run {run}")?;
                match holder {
                    Some(h) => write!(
                        f,
                        " (pid {} on host {}, user {}, since {})",
                        h.pid, h.host, h.user, h.since
                    )?,
                    None => write!(f, " (its details in {} are unreadable)", path.display())?,
                }
                write!(f, "; wait for it to finish or stop it, then try again")
            }
            LockError::Leased {
                run,
                holder: h,
                expires,
            } => write!(
                f,
                "run {run} is driven by pid {} on host {} (user {}, since {}); its lease expires at {expires} unless renewed: wait for it to finish or stop it, then try again",
                h.pid, h.host, h.user, h.since
            ),
            LockError::Store { run, message } => {
                write!(f, "cannot take ownership of run {run}: {message}")
            }
            LockError::Io { path, source } => {
                write!(f, "cannot lock {}: {source}", path.display())
            }
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Io { source, .. } => Some(source),
            LockError::Held { .. } | LockError::Leased { .. } | LockError::Store { .. } => None,
        }
    }
}

impl RunLock {
    /// Take the exclusive lock of the run in `run_dir`, or say who holds it.
    pub fn acquire(run_dir: &Path) -> Result<RunLock, LockError> {
        let path = run_dir.join(LOCK_FILE);
        let io_err = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut options = OpenOptions::new();
        // No truncate: the current holder's details must survive until we own the lock.
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&path).map_err(io_err)?;
        let mut waited = std::time::Duration::ZERO;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let holder = read_holder(&mut file);
                    // A holder that is dead on this host (kill -9, a crash) leaves the lock
                    // shared with a child it forked an instant before, until that child
                    // closes it (`process/gate.rs`) or dies of its parent-death signal:
                    // moments, not a live run. Wait for it rather than refuse a resume.
                    if waited < LEFTOVER_WAIT && holder.as_ref().is_some_and(LockHolder::is_gone) {
                        std::thread::sleep(LEFTOVER_POLL);
                        waited += LEFTOVER_POLL;
                        continue;
                    }
                    return Err(LockError::Held { holder, path });
                }
                Err(TryLockError::Error(e)) => return Err(io_err(e)),
            }
        }
        let holder = LockHolder {
            pid: std::process::id(),
            host: super::current_host(),
            user: super::current_user(),
            since: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        };
        let text = serde_json::to_string(&holder).map_err(|e| io_err(io::Error::other(e)))?;
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(format!("{text}\n").as_bytes()))
            .map_err(io_err)?;
        #[cfg(unix)]
        held_fds().push(std::os::fd::AsRawFd::as_raw_fd(&file));
        Ok(RunLock { _file: file, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl LockHolder {
    /// True when the holder ran on this host and its process no longer exists.
    fn is_gone(&self) -> bool {
        #[cfg(unix)]
        {
            if self.host != super::current_host() || self.pid == 0 {
                return false;
            }
            let Ok(pid) = i32::try_from(self.pid) else {
                return false;
            };
            // SAFETY: signal 0 only asks whether the process exists.
            let r = unsafe { libc::kill(pid, 0) };
            r != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
        }
        #[cfg(not(unix))]
        {
            false
        }
    }
}

/// Whether some process (this one included, through another open) holds the run's lock.
///
/// A run without a lock file was never driven, so it is not held. If the OS cannot say,
/// the answer is `false`: `status` then reports the run as crashed rather than live.
/// Nor is a run held whose holder is dead on this host: what still has the lock is a
/// child it started an instant before it died, about to let go (see
/// [`RunLock::acquire`]) — the run crashed.
pub fn is_held(run_dir: &Path) -> bool {
    let Ok(mut file) = File::open(run_dir.join(LOCK_FILE)) else {
        return false;
    };
    // A shared probe never stands in the way of a holder; it is dropped at once.
    matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock))
        && !read_holder(&mut file).is_some_and(|h| h.is_gone())
}

/// Who holds the run's lock according to its file, whether or not the lock is still held.
#[cfg(test)]
fn holder(run_dir: &Path) -> Option<LockHolder> {
    let mut file = File::open(run_dir.join(LOCK_FILE)).ok()?;
    read_holder(&mut file)
}

fn read_holder(file: &mut File) -> Option<LockHolder> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    Read::take(&mut *file, 64 << 10)
        .read_to_string(&mut text)
        .ok()?;
    serde_json::from_str(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_holders_leftover_child_is_waited_for_and_a_live_holder_refused_at_once() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(LOCK_FILE);
        // A process that has exited: its pid is the holder's, as after a kill -9.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let leftover = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        leftover.try_lock().unwrap();
        let gone = LockHolder {
            pid: dead,
            host: crate::journal::current_host(),
            ..LockHolder::default()
        };
        std::fs::write(&path, serde_json::to_string(&gone).unwrap()).unwrap();
        // The lock is taken, but by a leftover of a dead holder: the run crashed.
        assert!(
            !is_held(tmp.path()),
            "a dead holder's leftover is not a live run"
        );
        // The "child" lets go a little later, as one dying of its parent-death signal.
        let t = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(300));
            drop(leftover);
        });
        let lock = RunLock::acquire(tmp.path()).expect("waits for the leftover");
        t.join().unwrap();
        // Now the holder (this process) is alive: a second acquire is refused at once.
        let started = std::time::Instant::now();
        assert!(matches!(
            RunLock::acquire(tmp.path()),
            Err(LockError::Held { .. })
        ));
        assert!(
            started.elapsed() < LEFTOVER_WAIT,
            "a live holder is not waited for"
        );
        drop(lock);
    }

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_details() {
        let tmp = tempfile::tempdir().unwrap();
        let first = RunLock::acquire(tmp.path()).unwrap();
        // flock is per open file description, so this second open competes like another process.
        let err = RunLock::acquire(tmp.path()).unwrap_err();
        match &err {
            LockError::Held {
                holder: Some(h), ..
            } => {
                assert_eq!(h.pid, std::process::id());
                assert_eq!(h.host, crate::journal::current_host());
            }
            other => panic!("expected Held with details, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("another waymark process is driving run"),
            "{msg}"
        );
        assert!(
            msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        assert!(RunLock::acquire(tmp.path()).is_ok());
    }

    #[test]
    fn is_held_follows_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(!is_held(tmp.path()), "no lock file yet");
        let lock = RunLock::acquire(tmp.path()).unwrap();
        assert!(is_held(tmp.path()));
        drop(lock);
        assert!(!is_held(tmp.path()));
        // The holder's details stay behind for the record, but do not mean "held".
        assert_eq!(holder(tmp.path()).unwrap().pid, std::process::id());
    }

    #[test]
    fn probing_does_not_block_the_next_holder() {
        let tmp = tempfile::tempdir().unwrap();
        drop(RunLock::acquire(tmp.path()).unwrap());
        assert!(!is_held(tmp.path()));
        assert!(RunLock::acquire(tmp.path()).is_ok());
    }

    #[test]
    fn missing_run_directory_is_an_io_error_naming_the_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let err = RunLock::acquire(&tmp.path().join("nope")).unwrap_err();
        assert!(matches!(err, LockError::Io { .. }));
        assert!(err.to_string().contains("lock"), "{err}");
    }
}
