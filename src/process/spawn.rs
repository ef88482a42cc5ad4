//! Starting a child on Linux without copying waymark: `clone(CLONE_VM)`.
//!
//! A child held at the start gate (`gate.rs`) must run code of ours between its birth
//! and its `exec`, which makes `std::process::Command` `fork`. A fork copies waymark's
//! page tables, and while the held child waits every page any thread of waymark writes
//! takes a copy-on-write fault and a TLB shootdown across cores: measured, that was
//! most of the cost of a short step's process (docs/performance.md, `run_exec`). Here the child
//! shares waymark's memory instead, on a small stack of its own, as glibc's
//! `posix_spawn` does.
//!
//! A child not held ([`spawn`]) is started as `posix_spawn` does (`CLONE_VFORK`: the
//! spawning thread is suspended until the child has called `execve` or exited). A held
//! one ([`spawn_held`]) runs while the spawning thread records its group (the pid is
//! `clone`'s answer) and opens its gate, a word they share that the child waits on with
//! `futex`; that thread then waits until the kernel says the child has exec'd or
//! exited (`CLONE_CHILD_CLEARTID`). Before, a helper thread recorded while the spawning
//! thread was suspended: one more thread to hand every process to and wake, 4–6% of a
//! 1,000-`exec` run's wall time; and then two pipes carried the pid and a go byte
//! (docs/performance.md, `run_exec`).
//!
//! What the child may do follows from sharing memory with a live process:
//! - only system calls made directly (`sys.rs`: no `errno`, nothing of the spawning
//!   thread's thread-local state, which the child shares), on values prepared by the
//!   parent (no allocation, no lock, no Rust standard library);
//! - every signal is blocked across `clone` and the child resets every handled signal
//!   to its default before unblocking, so no handler of waymark ever runs in it;
//! - it writes nothing of the parent's but the error slot and the gate word of its
//!   [`ChildArgs`];
//! - a failure before `exec` (or of `exec`) is reported there — stage and error —
//!   and the child exits; the parent reads it once the child has exec'd or exited,
//!   reaps the child and returns the error, as `Command::spawn` would;
//! - the parent keeps everything the child reads (and its stack) until then, also
//!   when recording panics (the gate is refused and the child waited for first).
//!
//! Everything `Command` did for us is done here too: the child's own process group
//! (`setpgid(0, 0)`), stdin from `/dev/null` or a pipe, stdout and stderr to pipes,
//! the working directory, the environment with the spec's additions, `argv[0]` as
//! written, `SIGPIPE` back to its default (Rust ignores it) and an empty signal mask.
//!
//! Over 600 lines: the child's code and the parent's preparation of what it reads and
//! its waiting for it are one unit of unsafe code best read in one place (the child's
//! system calls are in `sys.rs`, the tests in `tests.rs`).

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ChildStderr, ChildStdin, ChildStdout, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};

mod sys;

/// The child's stack: what it runs (a few system calls) needs a few KiB; the rest is
/// margin. A guard page below it turns an overflow into a fault, not corruption.
const STACK: usize = 64 * 1024;

/// What the child was doing when it failed (reported with `errno`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    Stdio = 1,
    Group,
    DeathSignal,
    Cwd,
    /// Waymark did not let it go: the group could not be recorded, or waymark is gone.
    Gate,
    Exec,
}

impl Stage {
    fn from_raw(n: i32) -> Stage {
        match n {
            1 => Stage::Stdio,
            2 => Stage::Group,
            3 => Stage::DeathSignal,
            4 => Stage::Cwd,
            5 => Stage::Gate,
            _ => Stage::Exec,
        }
    }
}

/// A failure of the child before its program ran.
#[derive(Debug)]
pub(crate) struct SpawnError {
    pub(crate) stage: Option<Stage>,
    pub(crate) error: io::Error,
}

impl From<io::Error> for SpawnError {
    fn from(error: io::Error) -> Self {
        SpawnError { stage: None, error }
    }
}

/// Descriptors of a start gate (`gate.rs`) as the child uses them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GateFds {
    /// The child writes its pid here.
    pub(crate) pid_write: RawFd,
    /// And waits for the go byte here.
    pub(crate) go_read: RawFd,
    /// waymark's ends, which the child must close (else it never sees them close).
    pub(crate) parent_ends: [RawFd; 2],
    /// The byte that lets it go.
    pub(crate) go: u8,
}

/// One program to start: everything resolved, nothing left to look up.
pub(crate) struct Launch<'a> {
    pub(crate) program: &'a Path,
    pub(crate) argv0: &'a str,
    pub(crate) args: &'a [String],
    /// Added to (or overriding) waymark's environment.
    pub(crate) env: &'a [(String, String)],
    pub(crate) cwd: Option<&'a Path>,
    /// A pipe on stdin (else `/dev/null`).
    pub(crate) piped_stdin: bool,
    pub(crate) gate: Option<GateFds>,
    /// Descriptors the child closes before waiting at the gate (the run's lock).
    pub(crate) close: &'a [RawFd],
}

/// A started child: its pid (= its process group) and waymark's ends of its pipes.
/// Reap it with [`Child::wait`] or [`Child::try_wait`].
#[derive(Debug)]
pub(crate) struct Child {
    pid: u32,
    status: Option<ExitStatus>,
    pub(crate) stdin: Option<ChildStdin>,
    pub(crate) stdout: Option<ChildStdout>,
    pub(crate) stderr: Option<ChildStderr>,
}

impl Child {
    pub(crate) fn id(&self) -> u32 {
        self.pid
    }

    /// Block until the child exits; its status once reaped.
    pub(crate) fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        match self.status {
            Some(s) => Ok(s),
            None => self
                .reap(0)?
                .ok_or_else(|| io::Error::other("waitpid returned without a status")),
        }
    }

    /// The exit status if the child has exited (reaping it), `None` if it runs.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        match self.status {
            Some(s) => Ok(Some(s)),
            None => self.reap(libc::WNOHANG),
        }
    }

    fn reap(&mut self, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
        let status = waitpid(self.pid as libc::pid_t, flags)?;
        self.status = status;
        Ok(status)
    }
}

fn waitpid(pid: libc::pid_t, flags: libc::c_int) -> io::Result<Option<ExitStatus>> {
    let mut status: libc::c_int = 0;
    loop {
        // SAFETY: waitpid writes one int we own.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r == pid {
            return Ok(Some(ExitStatus::from_raw(status)));
        }
        if r == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// What the child reads (all prepared by the parent) and the one slot it writes.
struct ChildArgs {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    /// stdin, stdout, stderr: each >= 3, so placing one never overwrites another.
    stdio: [RawFd; 3],
    gate: Option<GateFds>,
    close: *const RawFd,
    close_len: usize,
    /// Stage (high 8 bits) and errno of a failure; 0 while none.
    failure: AtomicI32,
    /// Held at the word gate ([`spawn_held`]): wait on `word` before `execve`.
    holds: bool,
    /// The start gate of a held child: [`CLOSED`], [`ASLEEP`], [`GO`] or [`REFUSED`].
    word: AtomicI32,
    /// waymark's pid: a held child whose parent is someone else (waymark died before
    /// it asked to die with it) gives up.
    parent: libc::pid_t,
}

/// The word gate's states. The child turns `CLOSED` into `ASLEEP` before it sleeps on
/// the word, so the parent makes the wake-up system call only for a child that sleeps.
const CLOSED: i32 = 0;
const ASLEEP: i32 = 1;
const GO: i32 = 2;
const REFUSED: i32 = 3;

/// Start `launch`; returns once the child has called `execve` (or failed: then it is
/// reaped already). With a gate, the child waits there until released, so the caller
/// must have a recorder reading the gate's other ends on another thread.
pub(crate) fn spawn(launch: &Launch<'_>) -> Result<Child, SpawnError> {
    start(launch, false, |_| Ok::<(), String>(())).0
}

/// Whether [`spawn_held`] works here: the spawning thread records while its child
/// waits at the gate (see `sys.rs` for why not everywhere).
pub(crate) const SPAWNS_HELD: bool = sys::CONCURRENT;

/// Start `launch` held at a gate of its own: `record` gets the child's pid (its
/// process group's id) on this thread while the child prepares and then waits before
/// `execve`; the child is let go only if `record` succeeded. Returns once the child
/// has called `execve` or failed, with what `record` returned — `Ok(None)` when it was
/// not called, because there was no child or it had failed already. Only where
/// [`SPAWNS_HELD`] (`launch.gate` is not used).
///
/// The gate is a word in the memory the child shares with waymark until its `execve`,
/// waited on with `futex`; the pid comes back from `clone`. Before, two pipes per
/// process carried the pid up and a go byte down (and still do where the spawning
/// thread cannot run beside its child): 4 descriptors, ~10 system calls and one more
/// wait for the child per process (docs/performance.md, `run_exec`). A held child asks to die with
/// its spawning thread before it waits, and checks that waymark is still its parent
/// then, so waymark's death still means the program never runs.
pub(crate) fn spawn_held<R>(
    launch: &Launch<'_>,
    record: impl FnOnce(u32) -> Result<R, String>,
) -> (Result<Child, SpawnError>, Result<Option<R>, String>) {
    start(launch, SPAWNS_HELD, record)
}

/// Without `held` the spawning thread is suspended until the child's `execve`
/// (`CLONE_VFORK`) and `record` is not called; with it, the thread runs `record`
/// while the child runs, opens or refuses the gate, then waits for the child's
/// `execve` or exit — told by the kernel, which clears `running` and wakes its waiters
/// then (`CLONE_CHILD_CLEARTID`) — since the child uses `args`, the strings and the
/// stack until then.
fn start<R>(
    launch: &Launch<'_>,
    held: bool,
    record: impl FnOnce(u32) -> Result<R, String>,
) -> (Result<Child, SpawnError>, Result<Option<R>, String>) {
    let mut prepared = match Prepared::new(launch) {
        Ok(p) => p,
        Err(e) => return (Err(e), Ok(None)),
    };
    let stack = match take_stack() {
        Ok(s) => s,
        Err(e) => return (Err(e.into()), Ok(None)),
    };
    let mut args = prepared.args(launch);
    args.holds = held;
    let running = AtomicI32::new(1);
    let flags = match held {
        true => libc::CLONE_VM | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD,
        false => libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
    };
    // SAFETY: every signal is blocked around clone so no handler of waymark runs in
    // the child before it resets them; the old mask is restored right after.
    // `child_main` only reads `args` (and the strings it points into) and runs on
    // `stack`: both live until the child has exec'd or exited — when clone returns
    // with CLONE_VFORK, when `running` is 0 when held (below, also if `record`
    // panics) — and the stack is reused only after that.
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child_main,
            stack.top(),
            flags,
            (&args as *const ChildArgs).cast_mut().cast(),
            std::ptr::null_mut::<libc::pid_t>(),
            std::ptr::null_mut::<libc::c_void>(),
            running.as_ptr(),
        );
        let err = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            put_stack(stack);
            return (Err(err.into()), Ok(None));
        }
        pid
    };
    // The child's ends are the child's now (it has its own copies, or it failed or
    // exec'd already): close ours.
    prepared.close_child_ends();
    let released = if held {
        let recording = || match args.failure.load(Ordering::SeqCst) {
            // Failed already: nothing will run, nothing to record.
            0 => record(pid as u32).map(Some),
            _ => Ok(None),
        };
        let released = std::panic::catch_unwind(std::panic::AssertUnwindSafe(recording))
            .unwrap_or_else(|panic| {
                // It must stop using our memory before the unwinding frees it.
                open_gate(&args.word, false);
                wait_for_exec(&running);
                let _ = waitpid(pid, 0);
                std::panic::resume_unwind(panic)
            });
        open_gate(&args.word, matches!(released, Ok(Some(_))));
        wait_for_exec(&running);
        released
    } else {
        Ok(None)
    };
    put_stack(stack);
    let failure = args.failure.load(Ordering::SeqCst);
    if failure != 0 {
        // It has exited without an exec: reap it.
        let _ = waitpid(pid, 0);
        let e = SpawnError {
            stage: Some(Stage::from_raw(failure >> 24)),
            error: io::Error::from_raw_os_error(failure & 0x00ff_ffff),
        };
        return (Err(e), released);
    }
    (Ok(prepared.into_child(pid as u32)), released)
}

/// Let a held child go on to `execve`, or refuse it (it exits without running anything).
fn open_gate(word: &AtomicI32, go: bool) {
    let was = word.swap(if go { GO } else { REFUSED }, Ordering::SeqCst);
    if was == ASLEEP {
        // SAFETY: wakes waiters on an int we own; the child shares our memory (CLONE_VM),
        // so a private futex is the same word for both.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                word.as_ptr(),
                libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
                1,
            )
        };
    }
}

/// Block until the kernel has cleared `running`: the child exec'd or exited.
fn wait_for_exec(running: &AtomicI32) {
    while running.load(Ordering::SeqCst) != 0 {
        // Not FUTEX_PRIVATE: the kernel's wake for CLONE_CHILD_CLEARTID is a shared one.
        // SAFETY: waits on an int we own while it still holds 1; returns at once if not.
        unsafe {
            libc::syscall(
                libc::SYS_futex,
                running.as_ptr(),
                libc::FUTEX_WAIT,
                1,
                std::ptr::null::<libc::timespec>(),
            )
        };
    }
}

/// What the child reads, prepared by the parent, and the parent's ends of its pipes.
struct Prepared {
    path: CString,
    cwd: Option<CString>,
    /// Pointers into `_argv` and `_env`, which own the strings.
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    _argv: Vec<CString>,
    _env: Vec<CString>,
    /// The descriptors the child places on 0, 1 and 2.
    stdio: [RawFd; 3],
    /// Those of them that are ours to close once the child has them (not `/dev/null`).
    child_ends: Vec<OwnedFd>,
    stdin: Option<OwnedFd>,
    stdout: OwnedFd,
    stderr: OwnedFd,
}

impl Prepared {
    fn new(launch: &Launch<'_>) -> Result<Prepared, SpawnError> {
        let path = cstring(launch.program.as_os_str())?;
        let mut argv_owned = Vec::with_capacity(launch.args.len() + 1);
        argv_owned.push(cstring(OsStr::new(launch.argv0))?);
        for a in launch.args {
            argv_owned.push(cstring(OsStr::new(a))?);
        }
        let env_owned = environment(launch.env)?;
        let cwd = launch.cwd.map(|c| cstring(c.as_os_str())).transpose()?;
        let mut child_ends = Vec::with_capacity(3);
        let (stdin_child, stdin) = if launch.piped_stdin {
            let (r, w) = pipe()?;
            let r = above_stdio(r)?;
            let fd = r.as_raw_fd();
            child_ends.push(r);
            (fd, Some(w))
        } else {
            (dev_null()?, None)
        };
        let (stdout, stdout_child) = pipe()?;
        let (stderr, stderr_child) = pipe()?;
        let (stdout_child, stderr_child) = (above_stdio(stdout_child)?, above_stdio(stderr_child)?);
        let stdio = [
            stdin_child,
            stdout_child.as_raw_fd(),
            stderr_child.as_raw_fd(),
        ];
        child_ends.push(stdout_child);
        child_ends.push(stderr_child);
        Ok(Prepared {
            path,
            cwd,
            argv: pointers(&argv_owned),
            envp: pointers(&env_owned),
            _argv: argv_owned,
            _env: env_owned,
            stdio,
            child_ends,
            stdin,
            stdout,
            stderr,
        })
    }

    fn args(&self, launch: &Launch<'_>) -> ChildArgs {
        ChildArgs {
            path: self.path.as_ptr(),
            argv: self.argv.as_ptr(),
            envp: self.envp.as_ptr(),
            cwd: self.cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
            stdio: self.stdio,
            gate: launch.gate,
            close: launch.close.as_ptr(),
            close_len: launch.close.len(),
            failure: AtomicI32::new(0),
            holds: false,
            word: AtomicI32::new(CLOSED),
            // SAFETY: getpid has no preconditions.
            parent: unsafe { libc::getpid() },
        }
    }

    fn close_child_ends(&mut self) {
        self.child_ends.clear();
    }

    fn into_child(self, pid: u32) -> Child {
        Child {
            pid,
            status: None,
            stdin: self.stdin.map(ChildStdin::from),
            stdout: Some(ChildStdout::from(self.stdout)),
            stderr: Some(ChildStderr::from(self.stderr)),
        }
    }
}

/// The child, between `clone` and `execve`, on its own stack in waymark's memory.
/// Only system-call wrappers; no allocation, no locks, no panics (module doc).
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive until this child execs or exits.
    let a = unsafe { &*(arg as *const ChildArgs) };
    // SAFETY: every call below is an async-signal-safe system-call wrapper on
    // descriptors and C strings prepared by the parent.
    unsafe {
        // No handler of waymark may run here: back to defaults (an ignored signal stays
        // ignored across exec, as with Command, except SIGPIPE, which Rust ignores).
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let Ok(handled) = sys::has_handler(sig) else {
                continue; // not a signal a program may touch
            };
            if handled || sig == libc::SIGPIPE {
                sys::default_action(sig);
            }
        }
        sys::unblock_all();

        for (target, &fd) in a.stdio.iter().enumerate() {
            check(a, Stage::Stdio, sys::dup2(fd, target as libc::c_int));
        }
        // Its own group: Ctrl-C at the terminal reaches waymark only, and a stop can
        // signal the whole tree at once.
        check(a, Stage::Group, sys::setpgid_self());
        // Dies with the spawning thread (gate.rs), held or running. That thread waits
        // in `spawn` until this child has exec'd or exited, so it is alive now — unless
        // waymark was killed meanwhile: a held child, which no pipe's end-of-file would
        // tell, then finds itself another process's child and gives up.
        check(a, Stage::DeathSignal, sys::die_with_parent());
        if a.holds && sys::getppid() != a.parent as isize {
            report_failure(a, Stage::Gate, libc::ECANCELED);
        }
        if !a.cwd.is_null() {
            check(a, Stage::Cwd, sys::chdir(a.cwd));
        }
        // Held, it must not keep the run's lock (a crashed run would look live).
        for i in 0..a.close_len {
            sys::close(*a.close.add(i));
        }
        if a.holds {
            wait_at_word(a);
        } else if let Some(g) = a.gate {
            // Nor waymark's ends of the gate (it would never see them close).
            sys::close(g.parent_ends[0]);
            sys::close(g.parent_ends[1]);
            let pid = (sys::getpid() as i32).to_ne_bytes();
            if sys::write(g.pid_write, &pid) != pid.len() as isize {
                report_failure(a, Stage::Gate, libc::EPIPE);
            }
            let mut byte = [0u8];
            loop {
                let n = sys::read(g.go_read, &mut byte);
                if n == 1 && byte[0] == g.go {
                    break;
                }
                if n == -(libc::EINTR as isize) {
                    continue;
                }
                report_failure(a, Stage::Gate, libc::ECANCELED);
            }
        }
        let failed = sys::execve(a.path, a.argv, a.envp);
        report_failure(a, Stage::Exec, -failed as libc::c_int)
    }
}

/// In a held child: sleep on the gate word until waymark opens or refuses it.
///
/// # Safety
/// In the child only, on the parent's `ChildArgs`.
unsafe fn wait_at_word(a: &ChildArgs) {
    // Announce the sleep first, so the parent knows to wake us; if it decided already,
    // the exchange fails and we look at its answer at once.
    let _ = a
        .word
        .compare_exchange(CLOSED, ASLEEP, Ordering::SeqCst, Ordering::SeqCst);
    loop {
        match a.word.load(Ordering::SeqCst) {
            GO => return,
            // Returns at once if the word changed since the load; EINTR and spurious
            // wake-ups loop to look again.
            // SAFETY: waits on an int of the parent's, alive until we exec or exit.
            ASLEEP => unsafe {
                sys::futex_wait(a.word.as_ptr(), ASLEEP);
            },
            _ => report_failure(a, Stage::Gate, libc::ECANCELED),
        }
    }
}

/// End the child reporting `stage` if the system call that returned `r` failed.
fn check(a: &ChildArgs, stage: Stage, r: isize) {
    if r < 0 {
        report_failure(a, stage, -r as libc::c_int);
    }
}

/// Report a failure to the parent and end the child.
fn report_failure(a: &ChildArgs, stage: Stage, errno: libc::c_int) -> ! {
    a.failure.store(
        ((stage as i32) << 24) | (errno & 0x00ff_ffff),
        Ordering::SeqCst,
    );
    // SAFETY: ends this child only; no destructors or atexit handlers run.
    unsafe { sys::exit(127) }
}

fn cstring(s: &OsStr) -> io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{:?} contains a NUL byte", s),
        )
    })
}

/// A NULL-terminated array of pointers into `strings` (which must outlive it).
fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// waymark's environment with `extra` added or overriding, as `KEY=value` strings.
/// Read through `std::env`, which takes the standard library's lock against a
/// concurrent `set_var`.
fn environment(extra: &[(String, String)]) -> io::Result<Vec<CString>> {
    let mut vars: Vec<(OsString, OsString)> = std::env::vars_os()
        .filter(|(k, _)| !extra.iter().any(|(e, _)| OsStr::new(e) == k))
        .collect();
    for (k, v) in extra {
        // A later addition of the same name wins, as with `Command::env`.
        vars.retain(|(existing, _)| existing != OsStr::new(k));
        vars.push((k.into(), v.into()));
    }
    vars.into_iter()
        .map(|(k, v)| {
            if k.as_bytes().contains(&b'=') {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("environment variable name {k:?} contains `=`"),
                ));
            }
            let mut kv = k.into_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            cstring(OsStr::from_bytes(&kv))
        })
        .collect()
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 writes two fds into the array we own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `/dev/null` for children's stdin: opened once (above 0–2) and kept, not opened and
/// closed per process.
fn dev_null() -> io::Result<RawFd> {
    static DEV_NULL: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();
    if let Some(fd) = DEV_NULL.get() {
        return Ok(fd.as_raw_fd());
    }
    let fd = above_stdio(std::fs::File::open("/dev/null")?.into())?;
    // Another thread may have won the race: its descriptor is kept, ours closed.
    Ok(DEV_NULL.get_or_init(|| fd).as_raw_fd())
}

/// `fd` moved to a number above 2 if it is one of 0–2 (possible only when waymark was
/// started with one of them closed), so the child's `dup2`s cannot overwrite each other.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    // SAFETY: fcntl duplicates a descriptor we own into a new one we then own.
    let dup = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// A stack for the child, mapped once per spawning thread and kept: unmapping costs
/// every other thread of waymark a TLB flush.
struct Stack {
    base: *mut libc::c_void,
    len: usize,
}

impl Stack {
    fn map() -> io::Result<Stack> {
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .ok()
            .filter(|p| *p > 0)
            .unwrap_or(4096);
        let len = STACK + page;
        // SAFETY: a fresh private anonymous mapping; the lowest page becomes the guard.
        unsafe {
            let base = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
                -1,
                0,
            );
            if base == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
            if libc::mprotect(base, page, libc::PROT_NONE) != 0 {
                let e = io::Error::last_os_error();
                libc::munmap(base, len);
                return Err(e);
            }
            Ok(Stack { base, len })
        }
    }

    /// The highest address, 16-byte aligned (stacks grow down).
    fn top(&self) -> *mut libc::c_void {
        // SAFETY: one past the end of the mapping, which is page-aligned.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and no child runs on it (each ran to exec/exit).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

thread_local! {
    static STACK_OF_THREAD: std::cell::RefCell<Option<Stack>> =
        const { std::cell::RefCell::new(None) };
}

/// This thread's child stack (mapped on first use), to be given back with [`put_stack`]
/// once no child runs on it.
fn take_stack() -> io::Result<Stack> {
    match STACK_OF_THREAD.with(|s| s.borrow_mut().take()) {
        Some(stack) => Ok(stack),
        None => Stack::map(),
    }
}

fn put_stack(stack: Stack) {
    STACK_OF_THREAD.with(|s| *s.borrow_mut() = Some(stack));
}

#[cfg(test)]
mod tests;
