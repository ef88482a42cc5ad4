//! Waiting on a running child: its exit, its output and its input, as one event source.
//!
//! On unix everything is multiplexed with `poll(2)` on the calling thread — the
//! output pipes, the stdin pipe, and an *exit descriptor*: a pidfd on Linux
//! (readable the moment the child exits), elsewhere the read end of a pipe that a
//! waiter thread closes after `wait()` returns. Starting a thread costs about as
//! much as starting `/bin/true`, so the common Linux path starts none; and a pipe
//! that background processes keep open can be abandoned at any time.
//!
//! Windows has no `poll` for pipes: there a waiter thread and blocking reader
//! threads report over a channel, and a stop cannot interrupt a blocked read.

use super::capture::StreamCapture;
#[cfg(target_os = "linux")]
pub(crate) use super::spawn::Child;
use crate::step_log::StepLog;
use std::io::{self, Read};
#[cfg(not(target_os = "linux"))]
pub(crate) use std::process::Child;
use std::process::ExitStatus;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

const READ_CHUNK: usize = 32 * 1024;
const THREAD_STACK: usize = 256 * 1024;

/// The captures, once every output pipe is closed (or reading was stopped).
pub(crate) struct Drained {
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// What became known during one [`ChildIo::next`].
#[derive(Default)]
pub(crate) struct Progress {
    /// The child exited (reported once).
    pub(crate) exited: Option<io::Result<ExitStatus>>,
    /// The output is complete (reported once).
    pub(crate) drained: Option<Drained>,
}

pub(crate) use platform::ChildIo;

fn spawn_thread(name: &str, body: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    thread::Builder::new()
        .name(name.into())
        .stack_size(THREAD_STACK)
        .spawn(body)
}

/// A thread that reaps `child`, reporting on `report`. The thread is started before
/// the child is handed over, so a failure to start it gives the child back.
fn spawn_waiter(
    child: Child,
    report: impl FnOnce(io::Result<ExitStatus>) + Send + 'static,
) -> Result<JoinHandle<()>, (Child, io::Error)> {
    let (child_tx, child_rx) = mpsc::sync_channel::<Child>(1);
    let handle = match spawn_thread("waymark-wait", move || {
        if let Ok(mut child) = child_rx.recv() {
            report(child.wait());
        }
    }) {
        Ok(h) => h,
        Err(e) => return Err((child, e)),
    };
    match child_tx.send(child) {
        Ok(()) => Ok(handle),
        Err(mpsc::SendError(child)) => Err((child, io::Error::other("the waiter thread died"))),
    }
}

/// One read from a ready pipe; closes it at end of file or on error.
fn read_into<R: Read>(pipe: &mut Option<R>, capture: &mut StreamCapture, buf: &mut [u8]) {
    let Some(reader) = pipe.as_mut() else {
        return;
    };
    match reader.read(buf) {
        Ok(0) => *pipe = None,
        Ok(n) => capture.push(&buf[..n]),
        Err(e) if retryable(&e) => {}
        Err(_) => *pipe = None,
    }
}

fn retryable(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
    )
}

#[cfg(unix)]
mod platform {
    use super::*;
    use std::os::fd::{AsRawFd, OwnedFd, RawFd};
    use std::process::{ChildStderr, ChildStdin, ChildStdout};

    /// The child's pipes and exit, polled together on the calling thread.
    pub(crate) struct ChildIo {
        stdout: Option<ChildStdout>,
        stderr: Option<ChildStderr>,
        /// The pipe, the bytes to send, and how many were sent.
        stdin: Option<(ChildStdin, Vec<u8>, usize)>,
        /// Keep the pipe open once everything was sent (`ProcessSpec::hold_stdin`).
        hold: bool,
        /// The pipe, held open and no longer written to; closed with this.
        held: Option<ChildStdin>,
        captures: Option<(StreamCapture, StreamCapture)>,
        exit: ExitWatch,
        buf: Vec<u8>,
    }

    enum ExitWatch {
        /// Linux: readable once the child has exited; `try_wait` then reaps it.
        PidFd { child: Child, fd: OwnedFd },
        /// Elsewhere: the waiter closes the write end of `wake` after reaping.
        Thread {
            status: mpsc::Receiver<io::Result<ExitStatus>>,
            wake: io::PipeReader,
            handle: JoinHandle<()>,
        },
        /// Reported already.
        Done,
    }

    impl ChildIo {
        /// Take over `child`'s pipes and exit; on failure the child is given back
        /// (with its pipes closed) for the caller to kill and reap.
        pub(crate) fn start(
            child: Child,
            stdin: Option<Vec<u8>>,
            hold: bool,
            log: &StepLog,
        ) -> Result<Self, (Child, io::Error)> {
            Self::start_with(child, stdin, hold, log, cfg!(target_os = "linux"))
        }

        pub(super) fn start_with(
            mut child: Child,
            stdin: Option<Vec<u8>>,
            hold: bool,
            log: &StepLog,
            use_pidfd: bool,
        ) -> Result<Self, (Child, io::Error)> {
            let (stdin, held) = match (child.stdin.take(), stdin) {
                // Non-blocking, so a child that stops reading cannot stall its output.
                (Some(pipe), Some(data)) if !data.is_empty() && set_nonblocking(&pipe) => {
                    (Some((pipe, data, 0)), None)
                }
                (Some(pipe), _) if hold => (None, Some(pipe)),
                _ => (None, None), // dropping the pipe gives the child end-of-input at once
            };
            let stdout = child.stdout.take();
            let stderr = child.stderr.take();
            let exit = ExitWatch::start(child, use_pidfd)?;
            Ok(Self {
                stdout,
                stderr,
                stdin,
                hold,
                held,
                captures: Some((
                    StreamCapture::new("stdout", log.clone()),
                    StreamCapture::new("stderr", log.clone()),
                )),
                exit,
                buf: vec![0; READ_CHUNK],
            })
        }

        /// Move data and wait up to `timeout` for the exit or the end of the output.
        pub(crate) fn next(&mut self, timeout: Duration) -> Progress {
            let mut progress = Progress::default();
            let exit_fd = self.exit.fd();
            let mut fds = [
                entry(self.stdout.as_ref().map(AsRawFd::as_raw_fd), libc::POLLIN),
                entry(self.stderr.as_ref().map(AsRawFd::as_raw_fd), libc::POLLIN),
                entry(
                    self.stdin.as_ref().map(|(p, ..)| p.as_raw_fd()),
                    libc::POLLOUT,
                ),
                entry(exit_fd, libc::POLLIN),
            ];
            if fds.iter().all(|f| f.fd < 0) {
                // Nothing to wait on (the caller is waiting out a kill grace).
                self.report_drained(&mut progress);
                thread::sleep(timeout);
                return progress;
            }
            let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
            // SAFETY: `fds` is a valid array of pollfd; negative fds are ignored.
            let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
            if ready < 0 && !retryable(&io::Error::last_os_error()) {
                // poll itself failing (ENOMEM) is not recoverable: keep what was read,
                // and fall back to looking for the exit once per tick.
                self.stop_reading();
                thread::sleep(timeout);
                progress.exited = self.exit.collect();
            }
            if ready > 0 {
                if let Some((out, err)) = self.captures.as_mut() {
                    if fds[0].revents != 0 {
                        read_into(&mut self.stdout, out, &mut self.buf);
                    }
                    if fds[1].revents != 0 {
                        read_into(&mut self.stderr, err, &mut self.buf);
                    }
                }
                if fds[2].revents != 0 {
                    self.feed_stdin();
                }
                if fds[3].revents != 0 {
                    progress.exited = self.exit.collect();
                }
            }
            self.report_drained(&mut progress);
            progress
        }

        /// Stop reading now (background processes hold the pipes); the captures so far
        /// are reported by the next [`ChildIo::next`].
        pub(crate) fn stop_reading(&mut self) {
            self.stdout = None;
            self.stderr = None;
            self.stdin = None;
        }

        fn report_drained(&mut self, progress: &mut Progress) {
            // Stdin is fed on: a child may close its output and still read its input.
            if self.stdout.is_none() && self.stderr.is_none() {
                if let Some((out, err)) = self.captures.take() {
                    progress.drained = Some(Drained {
                        stdout: out.finish(),
                        stderr: err.finish(),
                    });
                }
            }
        }

        fn feed_stdin(&mut self) {
            let Some((pipe, data, sent)) = self.stdin.as_mut() else {
                return;
            };
            match io::Write::write(pipe, &data[*sent..]) {
                Ok(n) => {
                    *sent += n;
                    if *sent >= data.len() {
                        // Closing it is the child's end-of-input, unless it is held.
                        let done = self.stdin.take();
                        if self.hold {
                            self.held = done.map(|(pipe, ..)| pipe);
                        }
                    }
                }
                Err(e) if retryable(&e) => {}
                // Typically EPIPE: the child exited or closed stdin without reading it all.
                Err(_) => self.stdin = None,
            }
        }
    }

    impl Drop for ChildIo {
        /// A child given up on (it could not be killed) is still reaped when it
        /// finally dies, by a detached thread, so it never lingers as a zombie.
        fn drop(&mut self) {
            if let ExitWatch::PidFd { child, .. } =
                std::mem::replace(&mut self.exit, ExitWatch::Done)
            {
                let mut child = child;
                let _ = spawn_thread("waymark-reap", move || {
                    let _ = child.wait();
                });
            }
            // The Thread variant's waiter is still blocked in wait() and reaps it itself.
        }
    }

    impl ExitWatch {
        fn start(child: Child, use_pidfd: bool) -> Result<Self, (Child, io::Error)> {
            #[cfg(target_os = "linux")]
            if let Some(fd) = use_pidfd.then(|| pidfd_open(child.id())).flatten() {
                return Ok(ExitWatch::PidFd { child, fd });
            }
            #[cfg(not(target_os = "linux"))]
            let _ = use_pidfd;
            let (wake, wake_tx) = match io::pipe() {
                Ok(p) => p,
                Err(e) => return Err((child, e)),
            };
            let (status_tx, status) = mpsc::channel();
            let handle = spawn_waiter(child, move |s| {
                let _ = status_tx.send(s);
                drop(wake_tx); // wakes the poll
            })?;
            Ok(ExitWatch::Thread {
                status,
                wake,
                handle,
            })
        }

        fn fd(&self) -> Option<RawFd> {
            match self {
                ExitWatch::PidFd { fd, .. } => Some(fd.as_raw_fd()),
                ExitWatch::Thread { wake, .. } => Some(wake.as_raw_fd()),
                ExitWatch::Done => None,
            }
        }

        /// The exit status, once the exit descriptor is ready.
        fn collect(&mut self) -> Option<io::Result<ExitStatus>> {
            let status = match self {
                ExitWatch::PidFd { child, .. } => match child.try_wait() {
                    Ok(Some(status)) => Ok(status),
                    Ok(None) => return None,
                    Err(e) => Err(e),
                },
                ExitWatch::Thread { status, .. } => match status.try_recv() {
                    Ok(s) => s,
                    Err(mpsc::TryRecvError::Empty) => return None,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        Err(io::Error::other("the waiter thread died"))
                    }
                },
                ExitWatch::Done => return None,
            };
            // Every variant becomes `Done` (the child is reaped); only a thread needs joining.
            if let ExitWatch::Thread { handle, .. } = std::mem::replace(self, ExitWatch::Done) {
                let _ = handle.join();
            }
            Some(status)
        }
    }

    /// A pidfd for `pid`, or `None` where the kernel (< 5.3) or a seccomp filter refuses.
    #[cfg(target_os = "linux")]
    fn pidfd_open(pid: u32) -> Option<OwnedFd> {
        use std::os::fd::FromRawFd;
        let pid = libc::pid_t::try_from(pid).ok()?;
        // SAFETY: pidfd_open takes two integers and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let fd = RawFd::try_from(fd).ok().filter(|fd| *fd >= 0)?;
        // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
        Some(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    fn entry(fd: Option<RawFd>, events: libc::c_short) -> libc::pollfd {
        libc::pollfd {
            fd: fd.unwrap_or(-1),
            events,
            revents: 0,
        }
    }

    fn set_nonblocking(pipe: &ChildStdin) -> bool {
        let fd = pipe.as_raw_fd();
        // SAFETY: fcntl on a descriptor we own; no pointers involved.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) >= 0
        }
    }
}

#[cfg(not(unix))]
mod platform {
    use super::*;

    enum Event {
        Exited(io::Result<ExitStatus>),
        Drained(Drained),
    }

    /// Windows: a waiter thread and blocking reader threads report over a channel.
    pub(crate) struct ChildIo {
        events: mpsc::Receiver<Event>,
        threads: Vec<JoinHandle<()>>,
        exited: bool,
        drained: bool,
    }

    impl ChildIo {
        /// Take over `child`'s pipes and exit; on failure the child is given back.
        /// `hold` is not supported here: stdin is closed after its text.
        pub(crate) fn start(
            mut child: Child,
            stdin: Option<Vec<u8>>,
            _hold: bool,
            log: &StepLog,
        ) -> Result<Self, (Child, io::Error)> {
            let (tx, events) = mpsc::channel();
            let stdout = child.stdout.take();
            let stderr = child.stderr.take();
            let stdin_pipe = child.stdin.take();
            let exit_tx = tx.clone();
            let waiter = spawn_waiter(child, move |s| {
                let _ = exit_tx.send(Event::Exited(s));
            })?;
            let mut threads = vec![waiter];
            if let (Some(mut pipe), Some(data)) = (stdin_pipe, stdin) {
                if let Ok(h) = spawn_thread("waymark-stdin", move || {
                    let _ = io::Write::write_all(&mut pipe, &data);
                }) {
                    threads.push(h);
                }
            }
            let log = log.clone();
            // Without its reader thread the output is lost, but the exit is still reported.
            if let Ok(h) = spawn_thread("waymark-output", move || {
                let _ = tx.send(Event::Drained(drain_both(stdout, stderr, &log)));
            }) {
                threads.push(h);
            }
            Ok(Self {
                events,
                threads,
                exited: false,
                drained: false,
            })
        }

        /// Wait up to `timeout` for the exit or the end of the output.
        pub(crate) fn next(&mut self, timeout: Duration) -> Progress {
            let mut progress = Progress::default();
            match self.events.recv_timeout(timeout) {
                Ok(Event::Exited(s)) => progress.exited = Some(s),
                Ok(Event::Drained(d)) => progress.drained = Some(d),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    if !self.exited {
                        progress.exited = Some(Err(io::Error::other("the waiter thread died")));
                    }
                    if !self.drained {
                        progress.drained = Some(Drained {
                            stdout: String::new(),
                            stderr: String::new(),
                        });
                    }
                }
            }
            self.exited |= progress.exited.is_some();
            self.drained |= progress.drained.is_some();
            if self.exited && self.drained {
                for h in self.threads.drain(..) {
                    let _ = h.join();
                }
            }
            progress
        }

        /// A blocked read cannot be interrupted here; the caller gives up instead.
        pub(crate) fn stop_reading(&mut self) {}
    }

    fn drain_both(
        stdout: Option<std::process::ChildStdout>,
        stderr: Option<std::process::ChildStderr>,
        log: &StepLog,
    ) -> Drained {
        fn drain<R: Read>(mut pipe: Option<R>, mut capture: StreamCapture) -> String {
            let mut buf = vec![0u8; READ_CHUNK];
            while pipe.is_some() {
                read_into(&mut pipe, &mut capture, &mut buf);
            }
            capture.finish()
        }
        let (tx, rx) = mpsc::channel();
        let err_capture = StreamCapture::new("stderr", log.clone());
        let err_thread = spawn_thread("waymark-stderr", move || {
            let _ = tx.send(drain(stderr, err_capture));
        });
        let stdout = drain(stdout, StreamCapture::new("stdout", log.clone()));
        let stderr = match err_thread {
            Ok(h) => {
                let text = rx.recv().unwrap_or_default();
                let _ = h.join();
                text
            }
            Err(_) => "[waymark: stderr could not be read: no thread available]\n".into(),
        };
        Drained { stdout, stderr }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    fn spawn(script: &str) -> Child {
        let args = ["-c".to_string(), script.to_string()];
        crate::process::spawn::spawn(&crate::process::spawn::Launch {
            program: std::path::Path::new("/bin/sh"),
            argv0: "/bin/sh",
            args: &args,
            env: &[],
            cwd: None,
            piped_stdin: true,
            gate: None,
            close: &[],
        })
        .map_err(|e| e.error)
        .unwrap()
    }

    #[cfg(not(target_os = "linux"))]
    fn spawn(script: &str) -> Child {
        use std::os::unix::process::CommandExt;
        use std::process::{Command, Stdio};
        Command::new("/bin/sh")
            .args(["-c", script])
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn run_to_end(use_pidfd: bool) -> (ExitStatus, Drained) {
        let child = spawn("read line; echo \"got $line\"; echo oops >&2; exit 5");
        let mut io = ChildIo::start_with(
            child,
            Some(b"ping\n".to_vec()),
            false,
            &StepLog::disabled(),
            use_pidfd,
        )
        .map_err(|(_, e)| e)
        .unwrap();
        let (mut status, mut drained) = (None, None);
        while status.is_none() || drained.is_none() {
            let p = io.next(Duration::from_millis(50));
            status = status.or(p.exited);
            drained = drained.or(p.drained);
        }
        (status.unwrap().unwrap(), drained.unwrap())
    }

    #[test]
    fn exit_and_output_are_reported_with_a_pidfd_or_a_waiter_thread() {
        // The waiter thread is the path for macOS, the BSDs and old Linux kernels.
        for use_pidfd in [true, false] {
            let (status, drained) = run_to_end(use_pidfd);
            assert_eq!(status.code(), Some(5), "pidfd: {use_pidfd}");
            assert_eq!(drained.stdout, "got ping\n", "pidfd: {use_pidfd}");
            assert_eq!(drained.stderr, "oops\n", "pidfd: {use_pidfd}");
        }
    }
}
