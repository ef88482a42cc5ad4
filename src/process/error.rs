//! Why a child process could not run to completion, in words an operator can act on.

use crate::cancel::CancelReason;
use crate::duration::format_duration;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Commands longer than this are shortened in messages (the step log has them whole).
const MESSAGE_COMMAND_CHARS: usize = 160;

/// What stopping a process group achieved; every timeout/cancel error carries one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KillOutcome {
    /// The work was cancelled before the process was started.
    NotStarted,
    /// Nothing of the group was left to signal.
    AlreadyGone,
    /// The group ended after SIGTERM.
    Terminated,
    /// The group outlived SIGTERM for the grace period and got SIGKILL.
    Killed {
        /// How long SIGTERM was given before SIGKILL.
        grace: Duration,
    },
    /// The group could not be signalled (the OS error number); it may still be running.
    SignalFailed {
        /// `errno` of the failed `kill(2)`.
        errno: i32,
    },
}

impl KillOutcome {
    /// True when no process of the group can still be running.
    #[cfg(test)]
    pub(crate) fn group_stopped(&self) -> bool {
        !matches!(self, KillOutcome::SignalFailed { .. })
    }
}

impl fmt::Display for KillOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KillOutcome::NotStarted => f.write_str("the process was not started"),
            KillOutcome::AlreadyGone => f.write_str("its processes had already exited"),
            KillOutcome::Terminated => f.write_str("its process group was terminated (SIGTERM)"),
            KillOutcome::Killed { grace } if grace.is_zero() => {
                f.write_str("its process tree was killed")
            }
            KillOutcome::Killed { grace } => write!(
                f,
                "its process group was killed (SIGKILL after ignoring SIGTERM for {})",
                format_duration(*grace)
            ),
            KillOutcome::SignalFailed { errno } => write!(
                f,
                "its process group could NOT be killed and may still be running: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

/// A child process failed to start, or was stopped before it finished.
///
/// A non-zero exit is *not* an error here: it is returned in the output, and the
/// caller decides (the DSL's `check` option).
#[derive(Debug)]
pub(crate) enum ProcessError {
    /// The program does not exist (on PATH, or at the path given).
    NotFound {
        /// The program as written in the runbook.
        program: String,
        /// True when it was looked up on PATH (no path separator in it).
        on_path: bool,
    },
    /// The program exists but cannot be executed.
    NotExecutable {
        /// The program as written in the runbook.
        program: String,
        /// The file that was found.
        path: PathBuf,
        /// Why not (permission denied, a directory, not a valid executable, ...).
        detail: String,
    },
    /// The requested working directory is missing or not a directory.
    CwdMissing {
        /// The command that was to run there.
        command: String,
        /// The directory asked for.
        cwd: PathBuf,
    },
    /// The process's own `timeout` expired.
    TimedOut {
        /// The command, as [`describe`](super::describe) renders it (redacted).
        command: String,
        /// The timeout that expired.
        after: Duration,
        /// What happened to its processes.
        kill: KillOutcome,
    },
    /// The step was cancelled (its timeout, or Ctrl-C) while the process ran.
    Cancelled {
        /// The command, as [`describe`](super::describe) renders it (redacted).
        command: String,
        /// Why the step was stopped.
        reason: CancelReason,
        /// What happened to its processes.
        kill: KillOutcome,
    },
    /// Neither `pwsh` nor Windows PowerShell is on PATH.
    NoPowerShell,
    /// The operating system refused something else (spawning, waiting, a thread).
    Io {
        /// The command involved.
        command: String,
        /// What waymark was doing.
        action: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
}

impl ProcessError {
    /// The kill outcome of a timeout or cancel error.
    #[cfg(test)]
    pub(crate) fn kill_outcome(&self) -> Option<KillOutcome> {
        match self {
            ProcessError::TimedOut { kill, .. } | ProcessError::Cancelled { kill, .. } => {
                Some(*kill)
            }
            _ => None,
        }
    }
}

impl fmt::Display for ProcessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProcessError::NotFound { program, on_path } => {
                if *on_path {
                    write!(f, "`{program}` not found on PATH")
                } else {
                    write!(f, "`{program}` not found")
                }
            }
            ProcessError::NotExecutable {
                program,
                path,
                detail,
            } => {
                if path.as_os_str() == program.as_str() {
                    write!(f, "`{program}` is not executable: {detail}")
                } else {
                    write!(
                        f,
                        "`{program}` ({}) is not executable: {detail}",
                        path.display()
                    )
                }
            }
            ProcessError::CwdMissing { command, cwd } => write!(
                f,
                "cannot run `{}`: working directory `{}` does not exist or is not a directory",
                shorten(command),
                cwd.display()
            ),
            ProcessError::TimedOut {
                command,
                after,
                kill,
            } => write!(
                f,
                "`{}` timed out after {}; {kill}",
                shorten(command),
                format_duration(*after)
            ),
            ProcessError::Cancelled {
                command,
                reason,
                kill,
            } => {
                let why = match reason {
                    CancelReason::Timeout => "the step timed out",
                    CancelReason::Interrupted => "the run was interrupted (Ctrl-C / SIGTERM)",
                };
                write!(f, "`{}` stopped because {why}; {kill}", shorten(command))
            }
            ProcessError::NoPowerShell => f.write_str(
                "no PowerShell found on PATH (looked for pwsh, powershell.exe): \
                 install PowerShell 7 (`pwsh`) or run waymark on Windows",
            ),
            ProcessError::Io {
                command,
                action,
                source,
            } => write!(f, "`{}`: {action} failed: {source}", shorten(command)),
        }
    }
}

impl std::error::Error for ProcessError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ProcessError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A one-line, bounded rendering of a command for a message.
fn shorten(command: &str) -> String {
    let one_line = command.replace('\n', "⏎");
    if one_line.chars().count() <= MESSAGE_COMMAND_CHARS {
        return one_line;
    }
    let mut cut: String = one_line.chars().take(MESSAGE_COMMAND_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_command_and_the_kill() {
        let e = ProcessError::NotFound {
            program: "sqlcmd".into(),
            on_path: true,
        };
        assert_eq!(e.to_string(), "`sqlcmd` not found on PATH");
        let e = ProcessError::TimedOut {
            command: "sleep 30".into(),
            after: Duration::from_secs(5),
            kill: KillOutcome::Killed {
                grace: Duration::from_secs(2),
            },
        };
        assert_eq!(
            e.to_string(),
            "`sleep 30` timed out after 5s; its process group was killed \
             (SIGKILL after ignoring SIGTERM for 2s)"
        );
        let e = ProcessError::Cancelled {
            command: "x".repeat(500),
            reason: CancelReason::Interrupted,
            kill: KillOutcome::Terminated,
        };
        let text = e.to_string();
        assert!(text.contains("interrupted") && text.contains("terminated (SIGTERM)"));
        assert!(text.len() < 300, "long commands are shortened: {text}");
        assert!(!KillOutcome::SignalFailed { errno: 1 }.group_stopped());
    }
}
