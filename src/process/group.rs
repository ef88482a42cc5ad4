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

/// The start time of process `pid`: clock ticks since boot, field 22 of
/// `/proc/PID/stat` (Linux). Recorded with a group so a later check can tell the group
/// from an unrelated process that got the same pid. `None` where unknown.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    // Read once per process started: into a buffer the line always fits (52 numbers and
    // a 16-byte name), without `read_to_string`'s size query and growing reads.
    use std::io::Read;
    let mut file = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 2048];
    let mut len = 0;
    while len < buf.len() {
        match file.read(&mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    let stat = std::str::from_utf8(&buf[..len]).ok()?;
    // `comm` (field 2) is in parentheses and may hold spaces or `)`: count after the last.
    let after = &stat[stat.rfind(')')? + 1..];
    // Fields 3.. follow; starttime is field 22, the 20th after `comm`.
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the group `pgid` recorded with leader start time `start_time` still has a
/// member. A leader still present must have that start time (else its pid was reused and
/// the group is not ours); a group whose leader already exited is taken as ours, since
/// Linux does not hand out a pid while it is still some group's id.
///
/// Zombies do not count: they can do nothing, and where nobody reaps them (a container
/// whose init does not) they would be reported forever.
#[cfg(unix)]
pub(crate) fn is_alive(pgid: u32, start_time: u64) -> bool {
    if is_empty(pgid) {
        return false;
    }
    let ours = match self::start_time(pgid) {
        Some(t) if start_time != 0 => t == start_time,
        _ => true,
    };
    ours && has_live_member(pgid)
}

// Some member of group `pgid` that is not a zombie (Linux: a scan of /proc; elsewhere
// the group's existence is all that can be known).
#[cfg(unix)]
fn has_live_member(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return true;
    };
    let mut scanned = false;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        scanned = true;
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        // After `comm`: state (field 3), ppid (4), pgrp (5).
        let mut fields = stat[close + 1..].split_whitespace();
        let state = fields.next().unwrap_or("");
        let pgrp = fields.nth(1).and_then(|f| f.parse::<u32>().ok());
        if pgrp == Some(pgid) && !matches!(state, "Z" | "X" | "x") {
            return true;
        }
    }
    // No /proc to read (not Linux): the group exists, so take it as alive.
    !scanned
}

/// Windows: groups are not recorded there.
#[cfg(not(unix))]
pub fn is_alive(_pgid: u32, _start_time: u64) -> bool {
    false
}

/// Windows: end the tree rooted at the child now (no graceful phase exists).
#[cfg(not(unix))]
pub fn terminate(pid: u32) -> Sent {
    kill(pid)
}

/// Windows: end the tree rooted at the child with `taskkill /T /F`.
#[cfg(not(unix))]
pub fn kill(pid: u32) -> Sent {
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
pub fn is_empty(_pid: u32) -> bool {
    true
}
