//! Transports: how the windows driver runs a generated PowerShell script on a server —
//! `local` (PowerShell here), `ssh` (`ssh HOST pwsh ...`), or `psremoting` (a local
//! PowerShell wrapping the script in `Invoke-Command -ComputerName HOST`).
//!
//! The script travels on stdin inside a one-line loader that base64-decodes it, because
//! `-Command -` reads stdin line by line and mis-parses multi-line blocks; the loader
//! also turns any uncaught error into a message on stderr and exit code 1.

use std::path::{Path, PathBuf};

use crate::estate::driver::OpContext;
use crate::estate::error::EstateError;
use crate::estate::inventory::{Server, TransportKind};
use crate::process::powershell::stdin_payload;
use crate::quote;
use crate::ssh::{RemoteCommand, Shell, SshError};

/// What a PowerShell run printed and how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct PsOutput {
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs a PowerShell script on a server.
pub(crate) trait Transport: Send + Sync {
    /// Run `script` on `server`; blocking; honours `cx.cancel`.
    fn run_powershell(
        &self,
        server: &Server,
        script: &str,
        cx: &OpContext,
    ) -> Result<PsOutput, EstateError>;
}

/// The transport each server's inventory entry asks for.
#[derive(Debug, Clone, Default)]
pub(crate) struct InventoryTransport {
    /// The inventory file's directory (relative key and known_hosts paths start there).
    pub base: Option<PathBuf>,
}

impl Transport for InventoryTransport {
    fn run_powershell(
        &self,
        server: &Server,
        script: &str,
        cx: &OpContext,
    ) -> Result<PsOutput, EstateError> {
        match server.transport {
            TransportKind::Local => LocalTransport.run_powershell(server, script, cx),
            TransportKind::Ssh => SshTransport {
                base: self.base.clone(),
            }
            .run_powershell(server, script, cx),
            TransportKind::PsRemoting => PsRemotingTransport.run_powershell(server, script, cx),
        }
    }
}

/// PowerShell on the machine running waymark.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LocalTransport;

/// `pwsh -NoProfile -NonInteractive -Command -` over the host's ssh master connection
/// ([`crate::ssh`], the same code path as `exec` with `host:`).
#[derive(Debug, Clone, Default)]
pub(crate) struct SshTransport {
    /// The inventory file's directory (relative key and known_hosts paths start there).
    pub base: Option<PathBuf>,
}

/// A local PowerShell running the script through `Invoke-Command -ComputerName HOST`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PsRemotingTransport;

const PS_ARGS: &[&str] = &["-NoProfile", "-NonInteractive", "-Command", "-"];

// Run `script` with this machine's PowerShell, saying how it reaches `server`.
fn local_powershell(
    server: &Server,
    script: &str,
    how: &str,
    cx: &OpContext,
) -> Result<PsOutput, EstateError> {
    let ps = find_powershell().ok_or_else(|| no_powershell(&server.name))?;
    (cx.log)(&format!(
        "running on {} via {how} ({})",
        server.name,
        ps.display()
    ));
    run_command(
        &ps,
        &strings(PS_ARGS),
        &stdin_payload(script),
        &server.name,
        cx,
    )
}

impl Transport for LocalTransport {
    fn run_powershell(
        &self,
        server: &Server,
        script: &str,
        cx: &OpContext,
    ) -> Result<PsOutput, EstateError> {
        local_powershell(server, script, "local PowerShell", cx)
    }
}

impl Transport for SshTransport {
    fn run_powershell(
        &self,
        server: &Server,
        script: &str,
        cx: &OpContext,
    ) -> Result<PsOutput, EstateError> {
        // The host was validated by the inventory; check again since ssh would read a
        // leading '-' as an option.
        crate::estate::names::check_host_name(&server.name).map_err(|m| {
            EstateError::Transport {
                server: server.name.clone(),
                message: m,
            }
        })?;
        (cx.log)(&format!("running on {} via ssh", server.name));
        let target =
            crate::estate::ssh_target::target(server, self.base.as_deref(), Shell::PowerShell);
        let command = RemoteCommand {
            argv: Vec::new(),
            env: Vec::new(),
            cwd: None,
            stdin: None,
            powershell: Some(script.to_string()),
            timeout: None,
            shown: "pwsh -NoProfile -NonInteractive -Command - (the script on stdin)".into(),
        };
        let log = crate::step_log::StepLog::disabled();
        match crate::ssh::run(&target, &command, cx.cancel, &log) {
            Ok(out) => Ok(PsOutput {
                code: out.signal.is_none().then_some(out.code),
                stdout: out.stdout,
                stderr: out.stderr,
            }),
            Err(SshError::Connect { host, message }) => Err(EstateError::Transient {
                op: "ssh".into(),
                server: host,
                message,
            }),
            Err(SshError::Cancelled(reason)) => Err(EstateError::Cancelled(reason)),
            Err(SshError::Process(e)) => Err(process_error(&server.name, e)),
            Err(e @ SshError::Copy { .. }) => Err(EstateError::Transport {
                server: server.name.clone(),
                message: e.to_string(),
            }),
        }
    }
}

impl Transport for PsRemotingTransport {
    fn run_powershell(
        &self,
        server: &Server,
        script: &str,
        cx: &OpContext,
    ) -> Result<PsOutput, EstateError> {
        local_powershell(
            server,
            &psremoting_script(&server.name, script),
            "PowerShell remoting",
            cx,
        )
    }
}

/// How a script reaches `server`, as a dry-run shows it once per server: the wrapper
/// every script for that server runs inside.
pub(crate) fn describe(server: &Server) -> String {
    let name = &server.name;
    match server.transport {
        TransportKind::Local => format!(
            "{name}: PowerShell on this machine (powershell.exe or pwsh {}; the script on stdin)",
            PS_ARGS.join(" ")
        ),
        TransportKind::Ssh => format!(
            "{name}: ssh to {} (one master connection per host, BatchMode, strict host keys) running pwsh {} (the script on stdin)",
            server.address(),
            PS_ARGS.join(" ")
        ),
        TransportKind::PsRemoting => format!(
            "{name}: this machine's PowerShell runs Invoke-Command -ComputerName {} -ErrorAction Stop -ScriptBlock {{ <script> }}",
            quote::ps(name)
        ),
    }
}

/// The local script that runs `script` on `host` through PowerShell remoting.
pub(crate) fn psremoting_script(host: &str, script: &str) -> String {
    format!(
        "$ErrorActionPreference = 'Stop'\nInvoke-Command -ComputerName {} -ErrorAction Stop -ScriptBlock {{\n{}\n}}\n",
        quote::ps(host),
        script.trim_end()
    )
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn no_powershell(server: &str) -> EstateError {
    EstateError::Transport {
        server: server.to_string(),
        message: "no PowerShell found on this machine (looked for pwsh, powershell.exe and powershell on PATH). \
                  The windows driver runs its scripts through PowerShell: run waymark on a Windows admin host, \
                  install PowerShell 7 (pwsh), or use transport = \"ssh\" for this server"
            .into(),
    }
}

/// The PowerShell executable on PATH (pwsh first), if any.
pub(crate) fn find_powershell() -> Option<PathBuf> {
    crate::process::find_powershell().ok()
}

// The one place the estate layer starts processes: through `crate::process`, so a
// transport inherits its process-group kill on cancellation and its bounded capture.
fn run_command(
    program: &Path,
    args: &[String],
    stdin: &str,
    server: &str,
    cx: &OpContext,
) -> Result<PsOutput, EstateError> {
    use crate::process::{run_process, ProcessSpec};
    let spec = ProcessSpec {
        stdin: Some(stdin.to_string()),
        ..ProcessSpec::new(program.display().to_string(), args.to_vec())
    };
    match run_process(&spec, cx.cancel, &crate::step_log::StepLog::disabled()) {
        Ok(out) => Ok(PsOutput {
            code: out.signal.is_none().then_some(out.code),
            stdout: out.stdout,
            stderr: out.stderr,
        }),
        Err(e) => Err(process_error(server, e)),
    }
}

fn process_error(server: &str, e: crate::process::ProcessError) -> EstateError {
    use crate::process::ProcessError;
    match e {
        ProcessError::Cancelled { reason, .. } => EstateError::Cancelled(reason),
        ProcessError::NotFound { program, .. } => EstateError::Transport {
            server: server.to_string(),
            message: format!("`{program}` is not installed or not on PATH"),
        },
        e => EstateError::Transport {
            server: server.to_string(),
            message: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::{CancelReason, CancelToken};

    fn decode(s: &str) -> Vec<u8> {
        let t = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut bits = 0u32;
        let mut n = 0;
        let mut out = Vec::new();
        for c in s.bytes().filter(|c| *c != b'=') {
            let v = t.iter().position(|x| *x == c).unwrap() as u32;
            bits = (bits << 6) | v;
            n += 6;
            if n >= 8 {
                n -= 8;
                out.push((bits >> n) as u8);
            }
        }
        out
    }

    #[test]
    fn base64_round_trips() {
        use crate::process::powershell::base64;
        for s in ["", "a", "ab", "abc", "abcd", "héllo ‘x’ $(y)\n"] {
            assert_eq!(decode(&base64(s.as_bytes())), s.as_bytes(), "{s:?}");
        }
        assert_eq!(base64(b"Man"), "TWFu");
        assert_eq!(base64(b"Ma"), "TWE=");
    }

    #[test]
    fn payload_is_one_line_carrying_the_script_verbatim() {
        let script = "$x = 'a''b'\nif ($x) {\n  Write-Output $x\n}\n";
        let p = stdin_payload(script);
        assert_eq!(p.matches('\n').count(), 1);
        assert!(p.ends_with("exit 0\n"));
        let b64 = p.split('\'').nth(1).unwrap();
        assert_eq!(decode(b64), script.as_bytes());
    }

    #[test]
    fn psremoting_quotes_the_host() {
        let s = psremoting_script("ns'; calc; '", "Write-Output 1\n");
        assert!(s.contains("Invoke-Command -ComputerName 'ns''; calc; ''' -ErrorAction Stop -ScriptBlock {\nWrite-Output 1\n}"), "{s}");
    }

    fn cx_parts() -> (CancelToken, impl Fn(&str)) {
        (CancelToken::new(), |_: &str| {})
    }

    #[test]
    fn missing_powershell_is_explained() {
        if find_powershell().is_some() {
            return; // this machine has PowerShell; the message cannot be observed here
        }
        let (token, log) = cx_parts();
        let cx = OpContext {
            cancel: &token,
            log: &log,
            redactor: &crate::redact::Redactor::new(),
        };
        let e = LocalTransport
            .run_powershell(
                &Server::new("ns-hq", crate::estate::itms::Role::Ns),
                "1",
                &cx,
            )
            .unwrap_err();
        assert_eq!(e.kind(), "transport");
        assert!(e.to_string().contains("no PowerShell found"), "{e}");
    }

    #[cfg(unix)]
    #[test]
    fn run_command_feeds_stdin_and_captures_output() {
        let (token, log) = cx_parts();
        let cx = OpContext {
            cancel: &token,
            log: &log,
            redactor: &crate::redact::Redactor::new(),
        };
        let out = run_command(
            Path::new("/bin/sh"),
            &strings(&["-c", "cat; echo oops >&2; exit 3"]),
            "hello\n",
            "h",
            &cx,
        )
        .unwrap();
        assert_eq!(out.stdout, "hello\n");
        assert_eq!(out.stderr, "oops\n");
        assert_eq!(out.code, Some(3));
    }

    #[cfg(unix)]
    #[test]
    fn run_command_is_cancellable() {
        let token = CancelToken::new();
        let t2 = token.clone();
        let log = |_: &str| {};
        let cx = OpContext {
            cancel: &token,
            log: &log,
            redactor: &crate::redact::Redactor::new(),
        };
        let canceller = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            t2.cancel(CancelReason::Timeout);
        });
        let e = run_command(
            Path::new("/bin/sh"),
            &strings(&["-c", "sleep 30 & wait"]),
            "",
            "h",
            &cx,
        )
        .unwrap_err();
        canceller.join().unwrap();
        assert_eq!(e.kind(), "cancelled");
    }

    #[test]
    fn missing_program_is_a_transport_error() {
        let (token, log) = cx_parts();
        let cx = OpContext {
            cancel: &token,
            log: &log,
            redactor: &crate::redact::Redactor::new(),
        };
        let e = run_command(Path::new("/nonexistent/ssh"), &[], "", "h", &cx).unwrap_err();
        assert!(
            e.to_string().contains("is not installed or not on PATH"),
            "{e}"
        );
    }
}
