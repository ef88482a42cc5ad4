//! Remote execution over the system's OpenSSH client, for `exec`/`sh`/`ps` with
//! `host:`, `upload`/`download`, and the windows driver's `ssh` transport — one code
//! path for all of them.
//!
//! Each host gets one master connection per run ([`master`]): `ssh -M` with its control
//! socket in a private temporary directory, started on first use, so ten commands on a
//! host open one connection. Every invocation runs with `BatchMode=yes` (never a prompt)
//! and `StrictHostKeyChecking=yes` against the inventory's `known_hosts` file or the
//! user's own: an unknown or changed host key is refused, never learnt. A connection
//! that cannot be made is an error of kind `transient` carrying ssh's own message.
//!
//! Remote commands on POSIX hosts run inside a small `sh` wrapper ([`wrapper`]) that
//! puts them in a session of their own and kills that whole group when the ssh channel's
//! stdin closes — which happens when waymark stops the local `ssh` (timeout, Ctrl-C) or
//! dies (even by `kill -9`, since the local `ssh` then dies with it). So nothing keeps
//! running on the remote side. Arguments are quoted by waymark for the remote shell
//! (POSIX `sh`; PowerShell on Windows hosts). Files travel with `scp` over the same
//! master connection ([`copy`]).

mod copy;
mod master;
mod target;
#[cfg(test)]
mod tests;
mod wrapper;

use crate::cancel::{CancelReason, CancelToken};
use crate::process::{run_process, ProcessError, ProcessOutput};
use crate::step_log::StepLog;

pub(crate) use copy::{check_remote_path, copy, Direction};
pub(crate) use master::shutdown;
pub(crate) use target::{Shell, Target};
pub(crate) use wrapper::{posix_quote, RemoteCommand};

/// Why a remote command did not produce a result.
#[derive(Debug)]
pub(crate) enum SshError {
    /// The host could not be reached (connection, authentication, host key): ssh's own
    /// message. Asking again may work (kind `transient`).
    Connect {
        /// The inventory name of the host.
        host: String,
        /// What ssh said.
        message: String,
    },
    /// The local `ssh` could not run or was stopped (timeout, Ctrl-C).
    Process(ProcessError),
    /// Stopped (timeout, Ctrl-C) while connecting.
    Cancelled(CancelReason),
    /// `scp` ran and failed (no such file, permission denied, ...).
    Copy {
        /// `upload LOCAL → HOST:PATH` or the reverse.
        what: String,
        /// What scp said.
        message: String,
    },
}

impl std::fmt::Display for SshError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SshError::Connect { host, message } => {
                write!(f, "cannot reach `{host}` over ssh: {message}")
            }
            SshError::Process(e) => write!(f, "{e}"),
            SshError::Copy { what, message } => write!(f, "{what} failed: {message}"),
            SshError::Cancelled(CancelReason::Timeout) => {
                write!(f, "stopped while connecting: the step timed out")
            }
            SshError::Cancelled(CancelReason::Interrupted) => {
                write!(f, "stopped while connecting: interrupted")
            }
        }
    }
}

impl std::error::Error for SshError {}

/// Run `command` on `target` over its master connection, as [`run_process`] runs a
/// local one: output streamed into `log`, stopped (remotely too) on `cancel`.
pub(crate) fn run(
    target: &Target,
    command: &RemoteCommand,
    cancel: &CancelToken,
    log: &StepLog,
) -> Result<ProcessOutput, SshError> {
    let socket = master::ensure(target, cancel)?;
    let spec = command.spec(target, &socket);
    let out = run_process(&spec, cancel, log).map_err(SshError::Process)?;
    // 255 is ssh's own failure, or the command's exit code: the master tells them apart.
    if out.code == 255 && !master::alive(target) {
        return Err(SshError::Connect {
            host: target.name.clone(),
            message: format!("the connection was lost: {}", last_lines(&out.stderr)),
        });
    }
    Ok(out)
}

/// The last few non-empty lines of ssh's stderr, for a message.
pub(crate) fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let shown = lines[lines.len().saturating_sub(3)..].join(" | ");
    if shown.is_empty() {
        "(ssh said nothing)".into()
    } else {
        shown
    }
}
