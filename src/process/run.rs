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
mod tests {
    use super::*;
    use crate::process::spec::sh_spec;
    use crate::redact::Redactor;
    use crate::step_log::StepLogOptions;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;
    use std::thread;

    /// Hang guard for waits on the system: generous, never a performance assertion.
    const PATIENCE: Duration = Duration::from_secs(20);

    fn run(spec: &ProcessSpec) -> Result<ProcessOutput, ProcessError> {
        run_process(spec, &CancelToken::new(), &StepLog::disabled())
    }

    fn sh(script: &str) -> ProcessOutput {
        run(&sh_spec(script)).unwrap()
    }

    /// `sh -c script sh ARG`: the script sees ARG as `$1`.
    fn sh_with_arg(script: &str, arg: &Path) -> ProcessSpec {
        ProcessSpec::new("/bin/sh", ["-c", script, "sh", arg.to_str().unwrap()])
    }

    /// The pid a script wrote to `path`, once it has written it.
    fn wait_for_pid(path: &Path) -> i32 {
        let start = Instant::now();
        while start.elapsed() < PATIENCE {
            if let Ok(text) = std::fs::read_to_string(path) {
                if let Some(Ok(pid)) = text.strip_suffix('\n').map(str::parse) {
                    return pid;
                }
            }
            thread::sleep(Duration::from_millis(10));
        }
        panic!("{} was never written", path.display());
    }

    /// Running (or stopped), as opposed to gone or a zombie awaiting its reaper.
    fn alive(pid: i32) -> bool {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Ok(stat) => {
                let state = stat.rsplit(')').next().unwrap_or("").trim_start();
                !(state.starts_with('Z') || state.starts_with('X'))
            }
            // Not Linux, or no such process.
            Err(_) => unsafe { libc::kill(pid, 0) == 0 },
        }
    }

    /// True once `pid` has died, false if it is still alive after [`PATIENCE`].
    fn dies(pid: i32) -> bool {
        let start = Instant::now();
        while start.elapsed() < PATIENCE {
            if !alive(pid) {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    #[cfg(unix)]
    #[test]
    fn orphan_group_ran_before_it_was_on_record() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let seen = Arc::new(std::sync::Mutex::new(None));
        let (m, s) = (marker.clone(), seen.clone());
        let hook: super::super::SpawnHook = Arc::new(move |g: &super::super::SpawnedGroup| {
            // Give a program that was not held back every chance to run first.
            thread::sleep(Duration::from_millis(200));
            assert!(!m.exists(), "the program ran before its group was recorded");
            *s.lock().unwrap() = Some(*g);
            Ok(())
        });
        let spec = sh_with_arg("echo $$ > \"$1\"", &marker);
        let out = super::super::with_spawn_hook(hook, || run(&spec)).unwrap();
        assert!(out.success(), "{out:?}");
        let g = seen.lock().unwrap().expect("the hook saw the group");
        // The program ran in the recorded process, as its group's leader.
        assert_eq!(wait_for_pid(&marker) as u32, g.pgid);
        if cfg!(target_os = "linux") {
            assert_ne!(g.start_time, 0);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_group_that_cannot_be_recorded_never_runs_its_program() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let hook: super::super::SpawnHook =
            Arc::new(|_: &super::super::SpawnedGroup| Err("the disk is full".to_string()));
        let spec = sh_with_arg("touch \"$1\"", &marker);
        let e = super::super::with_spawn_hook(hook, || run(&spec)).unwrap_err();
        assert!(e.to_string().contains("the disk is full"), "{e}");
        thread::sleep(Duration::from_millis(200));
        assert!(!marker.exists());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reused_pid_is_not_taken_for_the_recorded_group() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id();
        let started = group::start_time(pid).unwrap();
        assert!(group::is_alive(pid, started));
        assert!(
            !group::is_alive(pid, started + 1),
            "another process with this pid"
        );
        group::kill(pid);
        let _ = child.wait();
        assert!(!group::is_alive(pid, started));
    }

    #[test]
    fn exit_code_and_output_are_captured() {
        let out = sh("echo out; echo err >&2; exit 3");
        assert_eq!(out.code, 3, "a non-zero exit is a result, not an error");
        assert_eq!(out.signal, None);
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
        assert!(!out.success());
        assert!(sh("true").success());
    }

    #[test]
    fn death_by_signal_is_reported_like_a_shell() {
        let out = sh("kill -KILL $$");
        assert_eq!(out.signal, Some(libc::SIGKILL));
        assert_eq!(out.code, 128 + libc::SIGKILL);
    }

    #[test]
    fn arguments_are_not_split_by_a_shell() {
        let spec = ProcessSpec::new("printf", ["%s|", "a b", "$HOME", "*"]);
        assert_eq!(run(&spec).unwrap().stdout, "a b|$HOME|*|");
    }

    #[test]
    fn stdin_is_fed_then_closed() {
        let mut spec = ProcessSpec::new("cat", Vec::<String>::new());
        spec.stdin = Some("hello\nworld".into());
        assert_eq!(run(&spec).unwrap().stdout, "hello\nworld");
    }

    #[test]
    fn stdin_is_empty_when_not_given() {
        // Inheriting waymark's terminal would make `cat` wait for the operator.
        let out = run(&ProcessSpec::new("cat", Vec::<String>::new())).unwrap();
        assert_eq!((out.code, out.stdout.as_str()), (0, ""));
    }

    #[cfg(unix)]
    #[test]
    fn held_stdin_stays_open_after_its_text_until_the_process_exits() {
        // `cat` copies the text, then waits on the open pipe; the shell sees it alive.
        let script = "exec 3<&0; cat <&3 >\"$1\" & sleep 0.5; kill -0 $! && echo open; kill $!";
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy");
        let mut spec = sh_with_arg(script, &copy);
        spec.stdin = Some("text".into());
        spec.hold_stdin = true;
        let out = run(&spec).unwrap();
        assert_eq!(out.stdout, "open\n");
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), "text");
        // Without holding, the same `cat` sees end-of-input and is gone.
        spec.hold_stdin = false;
        assert_eq!(run(&spec).unwrap().stdout, "");
        // Held with no text: open at once.
        spec.stdin = None;
        spec.hold_stdin = true;
        assert_eq!(run(&spec).unwrap().stdout, "open\n");
    }

    #[test]
    fn large_stdin_and_output_flow_together_without_deadlock() {
        let mut spec = sh_spec("tee /dev/stderr | wc -c");
        spec.stdin = Some("x".repeat(3 * 1024 * 1024));
        let out = run(&spec).unwrap();
        assert_eq!(out.stdout.trim(), "3145728");
        assert!(out.stderr.starts_with("[waymark: "), "stderr was bounded");
    }

    #[test]
    fn stdin_is_fed_after_the_child_closed_its_output() {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("copy");
        let mut spec = sh_with_arg("exec >/dev/null 2>&1; cat > \"$1\"", &copy);
        // More than a pipe buffer, so it is fed over many polls.
        let input = "0123456789\n".repeat(50_000);
        spec.stdin = Some(input.clone());
        assert_eq!(run(&spec).unwrap().code, 0);
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), input);
    }

    #[test]
    fn env_and_cwd_are_honoured() {
        let dir = tempfile::tempdir().unwrap();
        let mut spec = sh_spec("echo \"$GREETING\"; pwd -P");
        spec.env = vec![("GREETING".into(), "hello there".into())];
        spec.cwd = Some(dir.path().to_path_buf());
        let out = run(&spec).unwrap();
        let want = format!(
            "hello there\n{}\n",
            dir.path().canonicalize().unwrap().display()
        );
        assert_eq!(out.stdout, want);
    }

    #[test]
    fn missing_program_is_named() {
        let spec = ProcessSpec::new("waymark-no-such-program", ["x"]);
        let err = run(&spec).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`waymark-no-such-program` not found on PATH"
        );
        let err = run(&ProcessSpec::new("./no/such/file", Vec::<String>::new())).unwrap_err();
        assert_eq!(err.to_string(), "`./no/such/file` not found");
    }

    #[test]
    fn non_executable_file_is_refused_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("deploy.sh");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        let err = run(&ProcessSpec::new(
            script.to_str().unwrap(),
            Vec::<String>::new(),
        ))
        .unwrap_err();
        assert!(matches!(err, ProcessError::NotExecutable { .. }), "{err:?}");
        assert!(err.to_string().contains("is not executable"), "{err}");
    }

    #[test]
    fn script_with_a_missing_interpreter_is_explained() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("tool");
        std::fs::write(&script, "#!/nonexistent/interpreter\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let err = run(&ProcessSpec::new(
            script.to_str().unwrap(),
            Vec::<String>::new(),
        ))
        .unwrap_err();
        assert!(err.to_string().contains("interpreter"), "{err}");
    }

    #[test]
    fn missing_cwd_is_an_error_before_anything_runs() {
        let mut spec = sh_spec("true");
        spec.cwd = Some(PathBuf::from("/nonexistent/waymark-dir"));
        let err = run(&spec).unwrap_err();
        assert!(matches!(err, ProcessError::CwdMissing { .. }));
        assert!(
            err.to_string().contains("/nonexistent/waymark-dir"),
            "{err}"
        );
    }

    #[test]
    fn timeout_kills_the_whole_tree() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        // The backgrounded sleep is a grandchild: killing only `sh` would orphan it.
        let mut spec = sh_with_arg("sleep 60 & echo $! > \"$1\"; sleep 60; wait", &pidfile);
        spec.timeout = Some(Duration::from_secs(3));
        let err = run(&spec).unwrap_err();
        let ProcessError::TimedOut { after, kill, .. } = err else {
            panic!("expected a timeout, got {err:?}");
        };
        assert_eq!(after, Duration::from_secs(3));
        assert!(kill.group_stopped(), "{kill:?}");
        assert!(
            dies(wait_for_pid(&pidfile)),
            "the grandchild survived the timeout"
        );
    }

    #[test]
    fn cancel_from_another_thread_stops_the_tree() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        let spec = sh_with_arg("sleep 60 & echo $! > \"$1\"; sleep 60; wait", &pidfile);
        let cancel = CancelToken::new();
        let canceller = {
            let (cancel, pidfile) = (cancel.clone(), pidfile.clone());
            thread::spawn(move || {
                wait_for_pid(&pidfile);
                cancel.cancel(CancelReason::Interrupted);
            })
        };
        let err = run_process(&spec, &cancel, &StepLog::disabled()).unwrap_err();
        canceller.join().unwrap();
        let ProcessError::Cancelled { reason, kill, .. } = &err else {
            panic!("expected a cancel, got {err:?}");
        };
        assert_eq!(*reason, CancelReason::Interrupted);
        assert!(kill.group_stopped(), "{kill:?}");
        assert!(err.to_string().contains("interrupted"), "{err}");
        assert!(
            dies(wait_for_pid(&pidfile)),
            "the grandchild survived the cancel"
        );
    }

    #[test]
    fn a_group_ignoring_sigterm_gets_sigkill() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("grandchild.pid");
        // An ignored SIGTERM is inherited by the children, so only SIGKILL ends them.
        let spec = sh_with_arg(
            "trap '' TERM; sleep 60 & echo $! > \"$1\"; sleep 60; wait",
            &pidfile,
        );
        let cancel = CancelToken::new();
        let canceller = {
            let (cancel, pidfile) = (cancel.clone(), pidfile.clone());
            thread::spawn(move || {
                wait_for_pid(&pidfile);
                cancel.cancel(CancelReason::Timeout);
            })
        };
        let err = run_process(&spec, &cancel, &StepLog::disabled()).unwrap_err();
        canceller.join().unwrap();
        assert_eq!(
            err.kill_outcome(),
            Some(KillOutcome::Killed { grace: KILL_GRACE })
        );
        assert!(err.to_string().contains("the step timed out"), "{err}");
        assert!(
            dies(wait_for_pid(&pidfile)),
            "the grandchild survived SIGKILL"
        );
    }

    #[test]
    fn an_already_cancelled_step_starts_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("ran");
        let cancel = CancelToken::new();
        cancel.cancel(CancelReason::Interrupted);
        let spec = sh_with_arg("touch \"$1\"", &marker);
        let err = run_process(&spec, &cancel, &StepLog::disabled()).unwrap_err();
        assert_eq!(err.kill_outcome(), Some(KillOutcome::NotStarted));
        assert!(!marker.exists());
    }

    #[test]
    fn background_process_holding_the_output_does_not_hang_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("daemon.pid");
        let spec = sh_with_arg("sleep 60 & echo $! > \"$1\"; echo started", &pidfile);
        let out = run(&spec).unwrap();
        let pid = wait_for_pid(&pidfile);
        // Left running: only a timeout or Ctrl-C kills what a finished command started.
        assert!(alive(pid));
        unsafe { libc::kill(pid, libc::SIGKILL) };
        assert_eq!((out.code, out.stdout.as_str()), (0, "started\n"));
    }

    #[test]
    fn huge_output_keeps_the_last_mebibyte_with_a_marker() {
        // 300,000 lines of 10 bytes: 3,000,000 bytes.
        let out = sh("yes abcdefghi | head -n 300000");
        let (marker, kept) = out.stdout.split_once('\n').unwrap();
        assert!(
            marker.starts_with("[waymark: ") && marker.contains("dropped"),
            "{marker}"
        );
        let dropped: usize = marker.split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(dropped + kept.len(), 3_000_000);
        assert!(kept.len() <= crate::process::capture::CAPTURE_LIMIT);
        assert!(kept.starts_with("abcdefghi\n") && kept.ends_with("abcdefghi\n"));
    }

    #[test]
    fn output_is_streamed_to_the_log_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let redactor = Redactor::new();
        redactor.add("hunter2");
        let log =
            StepLog::create(dir.path(), "db:login", redactor, StepLogOptions::default()).unwrap();
        let spec = sh_spec("echo token=hunter2; echo oops hunter2 >&2; exit 4");
        let out = run_process(&spec, &CancelToken::new(), &log).unwrap();
        // The script gets the real value; only what is written down is scrubbed.
        assert_eq!(out.stdout, "token=hunter2\n");
        let text = std::fs::read_to_string(log.path().unwrap()).unwrap();
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("[stdout] token=[REDACTED]"), "{text}");
        assert!(text.contains("[stderr] oops [REDACTED]"), "{text}");
        assert!(
            text.contains("[exec] $ /bin/sh -c 'echo token=[REDACTED];"),
            "{text}"
        );
        assert!(text.contains("[exec] exit code 4 after "), "{text}");
    }
}
