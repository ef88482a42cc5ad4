//! Running one child process to its end, its timeout, or a cancel.
//!
//! The calling thread supervises: it sleeps in [`ChildIo::next`] until the child
//! exits, output arrives, or [`TICK`] passes, and on each wake looks at the cancel
//! token and the deadline — no busy-polling, and the exit is noticed the moment it
//! happens. [`ChildIo`] streams the output line by line into the step log while
//! keeping a bounded capture.
//!
//! On a timeout or cancel the whole process group gets SIGTERM, then SIGKILL after
//! [`KILL_GRACE`]. The supervisor returns only once the child is reaped and its
//! output collected, so no zombie is left and every helper thread is joined —
//! except when the OS refuses to end a process, where it gives up after a bounded
//! wait rather than hang the run.

use super::child_io::{ChildIo, Drained};
use super::error::{KillOutcome, ProcessError};
use super::group::{self, Sent};
use super::lookup::resolve_program;
use super::spec::{describe, ProcessSpec};
use super::start::{io_error, start};
use crate::cancel::{CancelReason, CancelToken};
use crate::duration::format_duration;
use crate::step_log::StepLog;
use std::io;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// Longest the supervisor sleeps before looking at the cancel token and deadline again.
pub(crate) const TICK: Duration = Duration::from_millis(50);

/// How long a stopped process group gets between SIGTERM and SIGKILL.
pub(crate) const KILL_GRACE: Duration = Duration::from_secs(2);

/// After the program exits, how long processes it left in the background may keep
/// its stdout/stderr open before waymark stops reading and returns.
pub(crate) const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// After SIGKILL, how long to wait for the exit to be reported before giving up
/// (a process stuck in the kernel cannot be killed; waymark must not hang on it).
const REAP_PATIENCE: Duration = Duration::from_secs(5);

/// After reading is stopped, how long readers that cannot be interrupted get.
const READ_PATIENCE: Duration = Duration::from_secs(1);

/// What a finished child process left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcessOutput {
    /// Exit code; `128 + N` when killed by signal N, as shells report it.
    pub code: i32,
    /// The signal that killed the process, if one did (unix).
    pub signal: Option<i32>,
    /// Standard output (lossy UTF-8), the last 1 MiB at most.
    pub stdout: String,
    /// Standard error (lossy UTF-8), the last 1 MiB at most.
    pub stderr: String,
}

impl ProcessOutput {
    /// True when the process exited with code 0.
    #[cfg(test)]
    pub(crate) fn success(&self) -> bool {
        self.code == 0 && self.signal.is_none()
    }
}

/// Run `spec` to completion, streaming its output into `log`.
///
/// Returns the exit code and the captured output even when the code is non-zero.
/// Fails when the program cannot be started, or when the spec's timeout expires or
/// `cancel` fires first — in which case its whole process group has been stopped.
/// Blocks the calling thread; call it from a blocking context.
pub(crate) fn run_process(
    spec: &ProcessSpec,
    cancel: &CancelToken,
    log: &StepLog,
) -> Result<ProcessOutput, ProcessError> {
    let command = log.scrub(&describe(spec));
    if let Some(reason) = cancel.reason() {
        return Err(ProcessError::Cancelled {
            command,
            reason,
            kill: KillOutcome::NotStarted,
        });
    }
    if let Some(cwd) = &spec.cwd {
        if !cwd.is_dir() {
            return Err(ProcessError::CwdMissing {
                command,
                cwd: cwd.clone(),
            });
        }
    }
    let program = resolve_program(spec)?;
    let hook = super::gate::current_hook();
    log.line("exec", &format!("$ {command}"));
    let started = Instant::now();
    let child = start(spec, &program, &command, hook.as_ref(), log)?;
    let pgid = child.id();
    let stdin = spec.stdin.clone().map(String::into_bytes);
    let mut io = match ChildIo::start(child, stdin, spec.hold_stdin, log) {
        Ok(io) => io,
        Err((mut child, e)) => {
            // Unsupervised, it must not outlive this call.
            group::kill(pgid);
            let _ = child.wait();
            return Err(io_error(&command, "watching the process", e));
        }
    };

    let deadline = spec.timeout.and_then(|t| started.checked_add(t));
    let mut sup = Supervisor {
        pgid,
        log,
        command: &command,
        status: None,
        drained: None,
        exited_at: None,
        stop: None,
        give_up_at: None,
        reading_stopped_at: None,
    };
    sup.supervise(&mut io, cancel, spec.timeout.zip(deadline));
    sup.finish(started)
}

/// Why the process group is being stopped.
#[derive(Debug, Clone, Copy)]
enum StopCause {
    TimedOut(Duration),
    Cancelled(CancelReason),
}

/// A stop in progress: SIGTERM sent at `began`, SIGKILL pending until `settled`.
struct Stop {
    cause: StopCause,
    began: Instant,
    kill: KillOutcome,
    /// Nothing more to send: the group is gone, got SIGKILL, or cannot be signalled.
    settled: bool,
    /// The program had already exited when the stop began (its result stands).
    after_exit: bool,
}

struct Supervisor<'a> {
    pgid: u32,
    log: &'a StepLog,
    command: &'a str,
    status: Option<io::Result<ExitStatus>>,
    drained: Option<Drained>,
    exited_at: Option<Instant>,
    stop: Option<Stop>,
    /// When set, return at this instant whatever has not been reported.
    give_up_at: Option<Instant>,
    /// When reading was abandoned (background processes holding the pipes).
    reading_stopped_at: Option<Instant>,
}

impl Supervisor<'_> {
    fn supervise(
        &mut self,
        io: &mut ChildIo,
        cancel: &CancelToken,
        timeout: Option<(Duration, Instant)>,
    ) {
        loop {
            let settled = self.stop.as_ref().is_none_or(|s| s.settled);
            if self.status.is_some() && self.drained.is_some() && settled {
                return;
            }
            let progress = io.next(TICK);
            if let Some(status) = progress.exited {
                self.status = Some(status);
                self.exited_at = Some(Instant::now());
            }
            if let Some(drained) = progress.drained {
                self.drained = Some(drained);
            }
            let now = Instant::now();
            if self.stop.is_none() {
                let cause = cancel.reason().map(StopCause::Cancelled).or_else(|| {
                    let (after, at) = timeout?;
                    (self.status.is_none() && now >= at).then_some(StopCause::TimedOut(after))
                });
                if let Some(cause) = cause {
                    self.begin_stop(cause, now);
                }
            }
            self.advance_stop(now);
            self.limit_waiting(io, now);
            let settled = self.stop.as_ref().is_none_or(|s| s.settled);
            if settled && self.give_up_at.is_some_and(|t| now >= t) {
                return;
            }
        }
    }

    fn begin_stop(&mut self, cause: StopCause, now: Instant) {
        let why = match cause {
            StopCause::TimedOut(after) => format!("timed out after {}", format_duration(after)),
            StopCause::Cancelled(CancelReason::Timeout) => "the step timed out".into(),
            StopCause::Cancelled(CancelReason::Interrupted) => "the run was interrupted".into(),
        };
        let kill = match group::terminate(self.pgid) {
            Sent::Delivered if group::TERMINATE_IS_GRACEFUL => KillOutcome::Terminated,
            Sent::Delivered => KillOutcome::Killed {
                grace: Duration::ZERO,
            },
            Sent::NoProcess => KillOutcome::AlreadyGone,
            Sent::Failed(errno) => KillOutcome::SignalFailed { errno },
        };
        self.log
            .line("exec", &format!("{why}: stopping the process group"));
        self.stop = Some(Stop {
            cause,
            began: now,
            kill,
            settled: kill != KillOutcome::Terminated,
            after_exit: self.status.is_some(),
        });
    }

    /// Escalate to SIGKILL once the grace is over and something of the group remains.
    fn advance_stop(&mut self, now: Instant) {
        let exited = self.status.is_some();
        let Some(stop) = self.stop.as_mut().filter(|s| !s.settled) else {
            return;
        };
        if exited && group::is_empty(self.pgid) {
            stop.settled = true;
        } else if now >= stop.began + KILL_GRACE {
            match group::kill(self.pgid) {
                Sent::Delivered => stop.kill = KillOutcome::Killed { grace: KILL_GRACE },
                Sent::NoProcess => {}
                Sent::Failed(errno) => stop.kill = KillOutcome::SignalFailed { errno },
            }
            stop.settled = true;
        }
    }

    /// Bound the waits that may never end on their own. Never cuts a pending
    /// SIGKILL short: giving up is only allowed once the stop is settled.
    fn limit_waiting(&mut self, io: &mut ChildIo, now: Instant) {
        // Processes left in the background (or escaped from the group) may hold the
        // output pipes open long after the program exited.
        if self.drained.is_none() && self.reading_stopped_at.is_none() {
            if let Some(exited) = self.exited_at.filter(|t| now >= *t + DRAIN_GRACE) {
                if self.stop.is_none() {
                    self.log.line(
                        "exec",
                        &format!(
                            "the program exited {} ago, but processes it left in the background \
                             still hold its output open; no longer reading it",
                            format_duration(now - exited)
                        ),
                    );
                }
                self.stop_reading(io, now);
            }
        }
        // A process that cannot be signalled, or that SIGKILL did not end (stuck in the kernel).
        if self.status.is_none() {
            let hopeless = self.stop.as_ref().is_some_and(|s| {
                s.settled
                    && (matches!(s.kill, KillOutcome::SignalFailed { .. })
                        || now >= s.began + KILL_GRACE + REAP_PATIENCE)
            });
            if hopeless {
                self.stop_reading(io, now);
                self.give_up_at = Some(now);
            }
        }
        // Readers that cannot be interrupted (blocking reads on Windows).
        if let Some(asked) = self.reading_stopped_at.filter(|_| self.drained.is_none()) {
            self.give_up_at.get_or_insert(asked + READ_PATIENCE);
        }
    }

    fn stop_reading(&mut self, io: &mut ChildIo, now: Instant) {
        io.stop_reading();
        self.reading_stopped_at.get_or_insert(now);
    }

    fn finish(self, started: Instant) -> Result<ProcessOutput, ProcessError> {
        let elapsed = format_duration(started.elapsed());
        let command = self.command.to_string();
        if let Some(stop) = self.stop.as_ref() {
            self.log
                .line("exec", &format!("after {elapsed}: {}", stop.kill));
        }
        if let Some(stop) = self.stop.filter(|s| !s.after_exit) {
            return Err(match stop.cause {
                StopCause::TimedOut(after) => ProcessError::TimedOut {
                    command,
                    after,
                    kill: stop.kill,
                },
                StopCause::Cancelled(reason) => ProcessError::Cancelled {
                    command,
                    reason,
                    kill: stop.kill,
                },
            });
        }
        let status = match self.status {
            Some(Ok(status)) => status,
            Some(Err(e)) => {
                return Err(ProcessError::Io {
                    command,
                    action: "waiting for the process",
                    source: e,
                })
            }
            None => {
                return Err(ProcessError::Io {
                    command,
                    action: "waiting for the process",
                    source: io::Error::other("its exit was never reported"),
                })
            }
        };
        let (code, signal) = exit_code(status);
        match signal {
            Some(sig) => self.log.line(
                "exec",
                &format!("killed by signal {sig} (exit code {code}) after {elapsed}"),
            ),
            None => self
                .log
                .line("exec", &format!("exit code {code} after {elapsed}")),
        }
        let drained = self.drained.unwrap_or(Drained {
            stdout: String::new(),
            stderr: "[waymark: the output of this process could not be collected]\n".into(),
        });
        Ok(ProcessOutput {
            code,
            signal,
            stdout: drained.stdout,
            stderr: drained.stderr,
        })
    }
}

fn exit_code(status: ExitStatus) -> (i32, Option<i32>) {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return (128 + sig, Some(sig));
        }
    }
    (status.code().unwrap_or(-1), None)
}

#[cfg(all(test, unix))]
mod tests;
