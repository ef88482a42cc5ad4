//! Holding a child at the door until its process group is on record.
//!
//! After `kill -9` of waymark, a step's process group lives on: an operator who looks
//! at once sees no side effect yet, re-runs the step, and the effect happens twice. So
//! the journal must know every group *before* its program runs. The child, between its
//! birth and its `exec`, makes itself leader of its group and waits at a gate while
//! waymark journals the group (written to the file: it must survive a crash of waymark,
//! and no group survives one of the machine) and then opens it; only then does the
//! child `exec` the program. If waymark cannot record the group the gate is refused
//! (or the held child killed); if waymark dies first, the gate never opens and the
//! child dies or gives up: either way the program never runs.
//!
//! On Linux (x86_64, aarch64) the spawning thread itself records, while the child
//! runs beside it in waymark's memory (`spawn.rs`): it has the pid from `clone`, and
//! the gate is a word in that shared memory ([`record_group`]; a held child asked to
//! die with its spawning thread, and checked that waymark is still its parent, before
//! it waits). Elsewhere the child is held in `Command`'s `pre_exec` (or `spawn.rs`'s
//! suspended `CLONE_VFORK` child) and two pipes do it: the child writes its pid on one
//! and waits for a go byte on the other, which a helper thread (one per spawning
//! thread, kept between processes) sends once it recorded the group, since the spawning
//! thread waits in `spawn`; waymark's death closes the go pipe unsent. (A `/bin/sh`
//! trampoline would do the same without the helper thread, at the price of an extra
//! `exec` per process, a lost `argv[0]` and vaguer spawn errors.)
//!
//! Who records is decided by the caller: [`with_spawn_hook`] installs a hook for the
//! current thread (the executor journals a `process_started` record); without one,
//! processes start ungated as before (tests of this module, load time).
//!
//! On Linux every child also gets `PR_SET_PDEATHSIG(SIGKILL)`, set before it waits at
//! the gate, so it dies with waymark whether held or running.
//! The signal fires when the *thread* that spawned the child exits, not the process;
//! that is safe here because [`super::run_process`] blocks its thread until the child
//! is reaped (or, if the OS cannot end it, gives up — when killing it is right anyway).
//! It reaches the direct child only; the group's other members are what the journal
//! record is for.

use std::cell::RefCell;
use std::sync::Arc;

/// A process group just started, not yet released to run its program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpawnedGroup {
    /// Process group id (the leader's pid).
    pub pgid: u32,
    /// The leader's start time (see [`super::group::start_time`]); 0 where unknown.
    pub start_time: u64,
}

/// Records a group durably; an error stops the process before its program runs.
pub(crate) type SpawnHook = Arc<dyn Fn(&SpawnedGroup) -> Result<(), String> + Send + Sync>;

thread_local! {
    static HOOK: RefCell<Option<SpawnHook>> = const { RefCell::new(None) };
}

/// Run `f` with `hook` recording every process group this thread starts.
pub(crate) fn with_spawn_hook<T>(hook: SpawnHook, f: impl FnOnce() -> T) -> T {
    let prev = HOOK.with(|h| h.replace(Some(hook)));
    let out = f();
    HOOK.with(|h| *h.borrow_mut() = prev);
    out
}

pub(crate) fn current_hook() -> Option<SpawnHook> {
    HOOK.with(|h| h.borrow().clone())
}

/// Record the group of held child `pid` (its leader) with `hook`: what a child held
/// at `spawn.rs`'s word gate is let go on.
#[cfg(target_os = "linux")]
pub(crate) fn record_group(pid: u32, hook: &SpawnHook) -> Result<SpawnedGroup, String> {
    let group = SpawnedGroup {
        pgid: pid,
        start_time: super::group::start_time(pid).unwrap_or(0),
    };
    hook(&group)?;
    Ok(group)
}

/// Two pipes between waymark and one child held in `pre_exec`: the child writes its pid
/// on one, then waits for the go byte on the other. All four fds are close-on-exec.
#[cfg(unix)]
pub(crate) struct Gate {
    pid_read: std::os::fd::OwnedFd,
    pid_write: std::os::fd::OwnedFd,
    go_read: std::os::fd::OwnedFd,
    go_write: std::os::fd::OwnedFd,
}

/// The byte that lets a held child go on to `exec`.
#[cfg(unix)]
const GO: u8 = b'g';

#[cfg(unix)]
fn pipe() -> std::io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe {
        (
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        )
    })
}

#[cfg(unix)]
impl Gate {
    pub(crate) fn new() -> std::io::Result<Gate> {
        let (pid_read, pid_write) = pipe()?;
        let (go_read, go_write) = pipe()?;
        Ok(Gate {
            pid_read,
            pid_write,
            go_read,
            go_write,
        })
    }

    /// The descriptors as the child uses them (`spawn.rs` does there what
    /// [`Gate::install`] does elsewhere).
    #[cfg(target_os = "linux")]
    pub(crate) fn child_fds(&self) -> super::spawn::GateFds {
        use std::os::fd::AsRawFd;
        super::spawn::GateFds {
            pid_write: self.pid_write.as_raw_fd(),
            go_read: self.go_read.as_raw_fd(),
            parent_ends: [self.pid_read.as_raw_fd(), self.go_write.as_raw_fd()],
            go: GO,
        }
    }

    /// In the child, between fork and exec (after it became its group's leader): tell
    /// waymark its pid, then wait for the go byte. Anything else — waymark closed the
    /// pipe because it could not record the group, or died — fails the spawn, so the
    /// program never runs.
    #[cfg(not(target_os = "linux"))]
    pub(crate) fn install(&self, cmd: &mut std::process::Command) {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let (pid_fd, go_fd) = (self.pid_write.as_raw_fd(), self.go_read.as_raw_fd());
        let parent_ends = (self.pid_read.as_raw_fd(), self.go_write.as_raw_fd());
        // Copied now: nothing may allocate or lock in the child.
        let locks = crate::journal::lock::lock_fds();
        // SAFETY: only async-signal-safe calls (close, getpid, write, read) and no
        // allocation between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // The fork copied waymark's ends too: holding the go end itself, the
                // child would never see it close.
                libc::close(parent_ends.0);
                libc::close(parent_ends.1);
                // Nor may a held child keep the run's lock (a crashed run would look live).
                for &fd in &locks {
                    libc::close(fd);
                }
                let pid = libc::getpid().to_ne_bytes();
                if libc::write(pid_fd, pid.as_ptr().cast(), pid.len()) != pid.len() as isize {
                    return Err(std::io::Error::last_os_error());
                }
                let mut byte = 0u8;
                loop {
                    let n = libc::read(go_fd, (&mut byte as *mut u8).cast(), 1);
                    if n == 1 && byte == GO {
                        return Ok(());
                    }
                    if n < 0 && *libc::__errno_location() == libc::EINTR {
                        continue;
                    }
                    return Err(std::io::Error::from_raw_os_error(libc::ECANCELED));
                }
            });
        }
    }

    /// Split into the parent's halves: what the recorder needs (pid in, go out) and the
    /// child's ends, which the parent must close once `spawn` has returned.
    pub(crate) fn split(self) -> (Recorder, ChildEnds) {
        (
            Recorder {
                pid_read: self.pid_read,
                go_write: self.go_write,
            },
            ChildEnds {
                _pid_write: self.pid_write,
                _go_read: self.go_read,
            },
        )
    }
}

/// The child's ends of the gate in the parent; dropped after `spawn` returns so a
/// spawn that failed early reads as end-of-file to the [`Recorder`].
#[cfg(unix)]
pub(crate) struct ChildEnds {
    _pid_write: std::os::fd::OwnedFd,
    _go_read: std::os::fd::OwnedFd,
}

/// The parent's side of a held child, run on a helper thread while `spawn` blocks.
#[cfg(unix)]
pub(crate) struct Recorder {
    pid_read: std::os::fd::OwnedFd,
    go_write: std::os::fd::OwnedFd,
}

#[cfg(unix)]
impl Recorder {
    /// Wait for the child's pid, record its group with `hook`, then let it go. `Ok(None)`
    /// when the spawn failed before the child got this far.
    pub(crate) fn record(self, hook: &SpawnHook) -> Result<Option<SpawnedGroup>, String> {
        use std::io::{Read, Write};
        let mut pid = [0u8; 4];
        if std::fs::File::from(self.pid_read)
            .read_exact(&mut pid)
            .is_err()
        {
            return Ok(None);
        }
        let pgid = i32::from_ne_bytes(pid) as u32;
        let group = SpawnedGroup {
            pgid,
            start_time: super::group::start_time(pgid).unwrap_or(0),
        };
        if let Err(e) = hook(&group) {
            // Never released, it must not linger either: a child forked meanwhile by
            // another thread may hold a copy of the go end until its own exec.
            // SAFETY: kill(2) has no memory-safety preconditions; pgid > 1 (a child's).
            if pgid > 1 {
                unsafe { libc::kill(-(pgid as libc::pid_t), libc::SIGKILL) };
            }
            return Err(e);
        }
        std::fs::File::from(self.go_write)
            .write_all(&[GO])
            .map_err(|e| format!("releasing the process: {e}"))?;
        Ok(Some(group))
    }
}

/// A recording under way on the spawning thread's helper.
#[cfg(unix)]
pub(crate) struct Recording(
    Option<std::sync::mpsc::Receiver<Result<Option<SpawnedGroup>, String>>>,
);

#[cfg(unix)]
impl Recording {
    /// The helper's answer (an error if it is gone).
    pub(crate) fn wait(self) -> Result<Option<SpawnedGroup>, String> {
        self.0
            .and_then(|rx| rx.recv().ok())
            .unwrap_or_else(|| Err("the recorder of the process failed".into()))
    }
}

#[cfg(unix)]
type Job = (
    Recorder,
    SpawnHook,
    std::sync::mpsc::Sender<Result<Option<SpawnedGroup>, String>>,
);

#[cfg(unix)]
thread_local! {
    /// Each spawning thread's helper, started on its first process and kept until the
    /// thread ends (its sender is dropped then): starting a thread per process cost
    /// about as much as the process.
    static HELPER: RefCell<Option<std::sync::mpsc::Sender<Job>>> = const { RefCell::new(None) };
}

/// Have `recorder` record the group with `hook` on this thread's helper while this
/// thread is blocked in `spawn`.
#[cfg(unix)]
pub(crate) fn record_aside(recorder: Recorder, hook: SpawnHook) -> Recording {
    let (tx, rx) = std::sync::mpsc::channel();
    let job = HELPER.with(|h| {
        let mut helper = h.borrow_mut();
        let mut job = (recorder, hook, tx);
        if let Some(sender) = helper.as_ref() {
            match sender.send(job) {
                Ok(()) => return None,
                // The helper is gone (it panicked): start another.
                Err(std::sync::mpsc::SendError(j)) => job = j,
            }
        }
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let started = std::thread::Builder::new()
            .name("waymark-recorder".into())
            .stack_size(256 * 1024)
            .spawn(move || {
                for (recorder, hook, reply) in queue {
                    let _ = reply.send(recorder.record(&hook));
                }
            });
        if started.is_err() {
            return Some(job);
        }
        let sent = jobs.send(job);
        *helper = Some(jobs);
        sent.err().map(|std::sync::mpsc::SendError(j)| j)
    });
    match job {
        // No helper could take it: record on a thread of its own.
        Some((recorder, hook, tx)) => {
            let spawned = std::thread::Builder::new().spawn(move || {
                let _ = tx.send(recorder.record(&hook));
            });
            Recording(spawned.ok().map(|_| rx))
        }
        None => Recording(Some(rx)),
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
