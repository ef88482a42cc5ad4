//! Signalling a child's whole process group, so grandchildren die with it.
//!
//! Every child is spawned as the leader of a new process group (its pgid is its
//! pid); anything it starts stays in that group unless it deliberately leaves
//! (`setsid`, daemonising), so `kill(-pgid, sig)` reaches the whole tree. The group
//! id stays reserved while any member — even an unreaped zombie leader — exists,
//! so signalling it cannot hit an unrelated process while work remains.
//!
//! Windows has no process groups in this sense; there the tree is ended with
//! `taskkill /T /F`, which follows parent links, immediately and without a
//! graceful phase.

use std::io;

/// The result of sending a signal to a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sent {
    /// At least one process got it.
    Delivered,
    /// No process is left in the group.
    NoProcess,
    /// The OS refused (`errno`).
    Failed(i32),
}

/// Whether [`terminate`] is a polite request that [`kill`] may have to follow.
pub(crate) const TERMINATE_IS_GRACEFUL: bool = cfg!(unix);

/// Ask every process of the group to stop (SIGTERM).
#[cfg(unix)]
pub(crate) fn terminate(pgid: u32) -> Sent {
    signal(pgid, libc::SIGTERM)
}

/// Stop every process of the group now (SIGKILL).
#[cfg(unix)]
pub(crate) fn kill(pgid: u32) -> Sent {
    signal(pgid, libc::SIGKILL)
}

/// True when no process (not even a zombie) is left in the group.
#[cfg(unix)]
pub(crate) fn is_empty(pgid: u32) -> bool {
    signal(pgid, 0) == Sent::NoProcess
}

#[cfg(unix)]
fn signal(pgid: u32, sig: libc::c_int) -> Sent {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return Sent::Failed(libc::EINVAL);
    };
    // Never signal group 0 or 1 (our own group, or every process we may signal).
    if pgid <= 1 {
        return Sent::Failed(libc::EINVAL);
    }
    // SAFETY: kill(2) has no memory-safety preconditions.
    if unsafe { libc::kill(-pgid, sig) } == 0 {
        return Sent::Delivered;
    }
    match io::Error::last_os_error().raw_os_error() {
        Some(libc::ESRCH) => Sent::NoProcess,
        Some(errno) => Sent::Failed(errno),
        None => Sent::Failed(libc::EINVAL),
    }
}

/// Windows: end the tree rooted at the child now (no graceful phase exists).
#[cfg(not(unix))]
pub(crate) fn terminate(pid: u32) -> Sent {
    kill(pid)
}

/// Windows: end the tree rooted at the child with `taskkill /T /F`.
#[cfg(not(unix))]
pub(crate) fn kill(pid: u32) -> Sent {
    let status = std::process::Command::new("taskkill")
        .args(["/PID", &pid.to_string(), "/T", "/F"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => Sent::Delivered,
        // taskkill fails when the process is already gone: treat as nothing left.
        Ok(_) => Sent::NoProcess,
        Err(e) => Sent::Failed(e.raw_os_error().unwrap_or(0)),
    }
}

/// Windows: after `taskkill /T /F` nothing of the tree is left.
#[cfg(not(unix))]
pub(crate) fn is_empty(_pid: u32) -> bool {
    true
}
