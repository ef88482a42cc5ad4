//! Holding a child at the door until its process group is on record.
//!
//! After `kill -9` of waymark, a step's process group lives on: an operator who looks
//! at once sees no side effect yet, re-runs the step, and the effect happens twice. So
//! the journal must know every group *before* its program runs. The pid (= pgid) only
//! exists once the child does, and `Command::spawn` returns only after `exec`, so the
//! child cannot simply wait inside `pre_exec`. Instead it execs `/bin/sh` with a
//! one-line trampoline that reads a line from fd 3 and then `exec`s the real program
//! in the same process (same pid, same group). waymark journals the group durably,
//! then writes that line. If waymark dies first, the pipe's write end closes, `read`
//! fails and the trampoline exits 125 without running anything.
//!
//! Who records is decided by the caller: [`with_spawn_hook`] installs a hook for the
//! current thread (the executor journals a `process_started` record); without one,
//! processes start ungated as before (tests of this module, load time).
//!
//! On Linux every child also gets `PR_SET_PDEATHSIG(SIGKILL)`: it dies with waymark.
//! The signal fires when the *thread* that spawned the child exits, not the process;
//! that is safe here because [`super::run_process`] blocks its thread until the child
//! is reaped (or, if the OS cannot end it, gives up — when killing it is right anyway).
//! It reaches the direct child only; the group's other members are what the journal
//! record is for.

use std::cell::RefCell;
use std::sync::Arc;

/// A process group just started, not yet released to run its program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnedGroup {
    /// Process group id (the leader's pid).
    pub pgid: u32,
    /// The leader's start time (see [`super::group::start_time`]); 0 where unknown.
    pub start_time: u64,
}

/// Records a group durably; an error stops the process before its program runs.
pub type SpawnHook = Arc<dyn Fn(&SpawnedGroup) -> Result<(), String> + Send + Sync>;

thread_local! {
    static HOOK: RefCell<Option<SpawnHook>> = const { RefCell::new(None) };
}

/// Run `f` with `hook` recording every process group this thread starts.
pub fn with_spawn_hook<T>(hook: SpawnHook, f: impl FnOnce() -> T) -> T {
    let prev = HOOK.with(|h| h.replace(Some(hook)));
    let out = f();
    HOOK.with(|h| *h.borrow_mut() = prev);
    out
}

pub(crate) fn current_hook() -> Option<SpawnHook> {
    HOOK.with(|h| h.borrow().clone())
}

/// The trampoline `/bin/sh` runs: wait for the go line on fd 3, then become the program.
#[cfg(unix)]
pub(crate) const TRAMPOLINE: &str = "IFS= read -r _ <&3 || exit 125; exec 3<&-; exec \"$@\"";

/// The fd the trampoline reads the go line from.
#[cfg(unix)]
const GATE_FD: libc::c_int = 3;

/// Both ends of the gate's pipe (close-on-exec in waymark).
#[cfg(unix)]
pub(crate) struct Gate {
    read: std::os::fd::OwnedFd,
    write: std::os::fd::OwnedFd,
}

#[cfg(unix)]
impl Gate {
    pub(crate) fn new() -> std::io::Result<Gate> {
        use std::os::fd::FromRawFd;
        let mut fds = [0 as libc::c_int; 2];
        // SAFETY: pipe2 writes two fds into the array we own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: both fds were just created and are owned by nobody else.
        let (read, write) = unsafe {
            (
                std::os::fd::OwnedFd::from_raw_fd(fds[0]),
                std::os::fd::OwnedFd::from_raw_fd(fds[1]),
            )
        };
        Ok(Gate { read, write })
    }

    /// In the child, between fork and exec: make the read end fd 3, kept across exec.
    pub(crate) fn install(&self, cmd: &mut std::process::Command) {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let read = self.read.as_raw_fd();
        // SAFETY: only async-signal-safe calls (dup2, fcntl) between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let ok = if read == GATE_FD {
                    libc::fcntl(GATE_FD, libc::F_SETFD, 0) == 0
                } else {
                    libc::dup2(read, GATE_FD) == GATE_FD
                };
                if ok {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
    }

    /// Let the program run: close our read end, send the go line.
    pub(crate) fn open(self) -> std::io::Result<()> {
        use std::io::Write;
        drop(self.read);
        std::fs::File::from(self.write).write_all(b"go\n")
    }
}

/// On Linux, have the child killed when the spawning thread ends (module doc).
#[cfg(target_os = "linux")]
pub(crate) fn die_with_parent(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches only the calling (child) process.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn die_with_parent(_cmd: &mut std::process::Command) {}
