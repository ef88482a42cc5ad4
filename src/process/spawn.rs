//! Starting a child on Linux without copying waymark: `clone(CLONE_VM | CLONE_VFORK)`.
//!
//! A child held at the start gate (`gate.rs`) must run code of ours between its birth
//! and its `exec`, which makes `std::process::Command` `fork`. A fork copies waymark's
//! page tables, and while the held child waits every page any thread of waymark writes
//! takes a copy-on-write fault and a TLB shootdown across cores: measured, that was
//! most of the cost of a short step's process (README, `run_exec`). Here the child
//! shares waymark's memory instead, on a small stack of its own, as glibc's
//! `posix_spawn` does; the spawning thread is suspended by the kernel until the child
//! has called `execve` or exited, while waymark's other threads (the gate's recorder
//! among them) run on.
//!
//! What the child may do follows from sharing memory with a live process:
//! - only async-signal-safe system-call wrappers, on values prepared by the parent
//!   (no allocation, no lock, no Rust standard library);
//! - every signal is blocked across `clone` and the child resets every handled signal
//!   to its default before unblocking, so no handler of waymark ever runs in it;
//! - it writes nothing of the parent's but the error slot of its [`ChildArgs`] (and
//!   `errno`, which belongs to the suspended spawning thread);
//! - a failure before `exec` (or of `exec`) is reported there — stage and `errno` —
//!   and the child `_exit`s; the parent reads it once `clone` returns, reaps the
//!   child and returns the error, as `Command::spawn` would.
//!
//! Everything `Command` did for us is done here too: the child's own process group
//! (`setpgid(0, 0)`), stdin from `/dev/null` or a pipe, stdout and stderr to pipes,
//! the working directory, the environment with the spec's additions, `argv[0]` as
//! written, `SIGPIPE` back to its default (Rust ignores it) and an empty signal mask.
//!
//! Over 600 lines with its tests: the child's code, the parent's preparation of what
//! it reads, and the tests of both are one unit of unsafe code best read in one place.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{ChildStderr, ChildStdin, ChildStdout, ExitStatus};
use std::sync::atomic::{AtomicI32, Ordering};

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
}

/// Start `launch`; returns once the child has called `execve` (or failed: then it is
/// reaped already). With a gate, the child waits there until released, so the caller
/// must have a recorder reading the gate's other ends on another thread.
pub(crate) fn spawn(launch: &Launch<'_>) -> Result<Child, SpawnError> {
    let path = cstring(launch.program.as_os_str())?;
    let mut argv_owned = Vec::with_capacity(launch.args.len() + 1);
    argv_owned.push(cstring(OsStr::new(launch.argv0))?);
    for a in launch.args {
        argv_owned.push(cstring(OsStr::new(a))?);
    }
    let env_owned = environment(launch.env)?;
    let cwd = launch.cwd.map(|c| cstring(c.as_os_str())).transpose()?;
    let argv = pointers(&argv_owned);
    let envp = pointers(&env_owned);

    let (stdin_child, stdin_parent) = if launch.piped_stdin {
        let (r, w) = pipe()?;
        (r, Some(w))
    } else {
        (dev_null()?, None)
    };
    let (stdout_parent, stdout_child) = pipe()?;
    let (stderr_parent, stderr_child) = pipe()?;
    let stdio = [
        above_stdio(stdin_child)?,
        above_stdio(stdout_child)?,
        above_stdio(stderr_child)?,
    ];

    let args = ChildArgs {
        path: path.as_ptr(),
        argv: argv.as_ptr(),
        envp: envp.as_ptr(),
        cwd: cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        stdio: [
            stdio[0].as_raw_fd(),
            stdio[1].as_raw_fd(),
            stdio[2].as_raw_fd(),
        ],
        gate: launch.gate,
        close: launch.close.as_ptr(),
        close_len: launch.close.len(),
        failure: AtomicI32::new(0),
    };
    let pid = with_stack(|stack_top| {
        // SAFETY: every signal is blocked around clone so no handler of waymark runs in
        // the child before it resets them; the old mask is restored right after.
        // `child_main` only reads `args`, which lives until clone returns — with
        // CLONE_VFORK that is after the child's execve or exit, so nothing of `args`
        // (or the C strings it points into) is used after this call.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
            let pid = libc::clone(
                child_main,
                stack_top,
                libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
                (&args as *const ChildArgs).cast_mut().cast(),
            );
            let err = io::Error::last_os_error();
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            if pid < 0 {
                Err(err)
            } else {
                Ok(pid)
            }
        }
    })??;
    // The child's ends are the child's now (or it failed): close ours.
    drop(stdio);
    let failure = args.failure.load(Ordering::SeqCst);
    if failure != 0 {
        // It has exited (CLONE_VFORK returned without an exec): reap it.
        let _ = waitpid(pid, 0);
        return Err(SpawnError {
            stage: Some(Stage::from_raw(failure >> 24)),
            error: io::Error::from_raw_os_error(failure & 0x00ff_ffff),
        });
    }
    Ok(Child {
        pid: pid as u32,
        status: None,
        stdin: stdin_parent.map(ChildStdin::from),
        stdout: Some(ChildStdout::from(stdout_parent)),
        stderr: Some(ChildStderr::from(stderr_parent)),
    })
}

/// The child, between `clone` and `execve`, on its own stack in waymark's memory.
/// Only system-call wrappers; no allocation, no locks, no panics (module doc).
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive until this child execs or exits.
    let a = unsafe { &*(arg as *const ChildArgs) };
    // SAFETY: every call below is an async-signal-safe system-call wrapper on
    // descriptors and C strings prepared by the parent.
    unsafe {
        let errno = || *libc::__errno_location();
        // No handler of waymark may run here: back to defaults (an ignored signal stays
        // ignored across exec, as with Command, except SIGPIPE, which Rust ignores).
        for sig in 1..=64 {
            if sig == libc::SIGKILL || sig == libc::SIGSTOP {
                continue;
            }
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
                continue; // not a signal a program may touch (glibc's internal ones)
            }
            let handled = old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN;
            if handled || sig == libc::SIGPIPE {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &dfl, std::ptr::null_mut());
            }
        }
        let empty: libc::sigset_t = {
            let mut s = std::mem::zeroed();
            libc::sigemptyset(&mut s);
            s
        };
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());

        for (target, &fd) in a.stdio.iter().enumerate() {
            if libc::dup2(fd, target as libc::c_int) < 0 {
                report_failure(a, Stage::Stdio, errno());
            }
        }
        // Its own group: Ctrl-C at the terminal reaches waymark only, and a stop can
        // signal the whole tree at once.
        if libc::setpgid(0, 0) != 0 {
            report_failure(a, Stage::Group, errno());
        }
        // Dies with the spawning thread (gate.rs), held or running. That thread is
        // suspended until exec, so it cannot have died before this.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
            report_failure(a, Stage::DeathSignal, errno());
        }
        if !a.cwd.is_null() && libc::chdir(a.cwd) != 0 {
            report_failure(a, Stage::Cwd, errno());
        }
        if let Some(g) = a.gate {
            // Held, it must not keep waymark's ends (it would never see them close)
            // nor the run's lock (a crashed run would look live).
            libc::close(g.parent_ends[0]);
            libc::close(g.parent_ends[1]);
            for i in 0..a.close_len {
                libc::close(*a.close.add(i));
            }
            let pid = libc::getpid().to_ne_bytes();
            if libc::write(g.pid_write, pid.as_ptr().cast(), pid.len()) != pid.len() as isize {
                report_failure(a, Stage::Gate, errno());
            }
            let mut byte = 0u8;
            loop {
                let n = libc::read(g.go_read, (&mut byte as *mut u8).cast(), 1);
                if n == 1 && byte == g.go {
                    break;
                }
                if n < 0 && errno() == libc::EINTR {
                    continue;
                }
                report_failure(a, Stage::Gate, libc::ECANCELED);
            }
        }
        libc::execve(a.path, a.argv, a.envp);
        report_failure(a, Stage::Exec, errno())
    }
}

/// Report a failure to the parent and end the child.
fn report_failure(a: &ChildArgs, stage: Stage, errno: libc::c_int) -> ! {
    a.failure.store(
        ((stage as i32) << 24) | (errno & 0x00ff_ffff),
        Ordering::SeqCst,
    );
    // SAFETY: _exit ends this child only; no destructors or atexit handlers run.
    unsafe { libc::_exit(127) }
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

fn dev_null() -> io::Result<OwnedFd> {
    Ok(std::fs::File::open("/dev/null")?.into())
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

/// Run `f` with the top of this thread's child stack (mapping it on first use).
fn with_stack<T>(f: impl FnOnce(*mut libc::c_void) -> T) -> io::Result<T> {
    STACK_OF_THREAD.with(|s| {
        let mut s = s.borrow_mut();
        let stack = match s.take() {
            Some(stack) => stack,
            None => Stack::map()?,
        };
        let out = f(stack.top());
        *s = Some(stack);
        Ok(out)
    })
}

#[cfg(test)]
mod tests;
