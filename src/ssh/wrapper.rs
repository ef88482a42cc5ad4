//! The command line a remote host runs, quoted by waymark for the remote shell.
//!
//! On a POSIX host every command runs inside [`WRAPPER`], a few lines of `sh`:
//! it starts the command in a session of its own (`setsid`, so its process group is
//! the command and everything it starts), then reads the ssh channel's stdin, which
//! waymark keeps open and never writes to. End of input means the local `ssh` is
//! gone — waymark stopped it (timeout, Ctrl-C) or waymark itself died — and the
//! wrapper then kills the command's whole group. When the command ends by itself the
//! reader is stopped and the command's exit code is the wrapper's.
//!
//! On a Windows host the command is a PowerShell script fed on stdin to
//! `pwsh -NoProfile -NonInteractive -Command -` (the windows driver's loader).

use std::path::Path;

use super::{Shell, Target};
use crate::process::ProcessSpec;

/// The POSIX wrapper. Arguments: `$1` working directory (empty: the login directory),
/// `$2` `1` when `$3` is the command's stdin (else it gets `/dev/null`), then the
/// command and its arguments.
const WRAPPER: &str = r#"exec 3<&0
cd -- "${1:-.}" || exit 126
h=$2; d=$3; shift 3
s=; command -v setsid >/dev/null 2>&1 && s=setsid
if [ "$h" = 1 ]; then printf '%s' "$d" | $s "$@" & else $s "$@" </dev/null & fi
p=$!
(while IFS= read -r _; do :; done; kill -KILL -"$p" 2>/dev/null || kill -KILL "$p") <&3 >/dev/null 2>&1 &
w=$!
exec 3<&-
wait "$p"; r=$?
kill "$w" 2>/dev/null
exit "$r""#;

/// `word` as one word for a POSIX shell: single-quoted unless plainly safe. Unlike
/// [`crate::quote::sh`] it never uses bash's `$'...'`, which `dash` lacks.
pub(crate) fn posix_quote(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-.,/:@%+=".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        return word.to_string();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// What to run on a host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemoteCommand {
    /// Program and arguments (POSIX hosts), run without a shell of their own.
    pub argv: Vec<String>,
    /// Variables set for the command.
    pub env: Vec<(String, String)>,
    /// Working directory on the host.
    pub cwd: Option<String>,
    /// Text on the command's stdin (closed after it).
    pub stdin: Option<String>,
    /// A PowerShell script (Windows hosts, and `ps` anywhere): run by
    /// `pwsh -Command -` from stdin instead of `argv`.
    pub powershell: Option<String>,
    /// Stop after this long.
    pub timeout: Option<std::time::Duration>,
    /// How the step log shows it (without the host).
    pub shown: String,
}

const PS_ARGS: [&str; 5] = ["pwsh", "-NoProfile", "-NonInteractive", "-Command", "-"];

impl RemoteCommand {
    /// The local `ssh` invocation running this command on `target` through the master
    /// at `socket`.
    pub(super) fn spec(&self, target: &Target, socket: &Path) -> ProcessSpec {
        let (line, stdin, hold) = match (target.shell, &self.powershell) {
            (Shell::PowerShell, script) => {
                let body = script.clone().unwrap_or_else(|| ps_call(&self.argv));
                let script = format!("{}{body}", self.ps_prelude());
                (
                    PS_ARGS.join(" "),
                    Some(crate::process::powershell::stdin_payload(&script)),
                    false,
                )
            }
            (Shell::Posix, Some(script)) => {
                let argv: Vec<String> = PS_ARGS.iter().map(|s| s.to_string()).collect();
                let payload = crate::process::powershell::stdin_payload(script);
                (self.posix_line(&argv, Some(&payload)), None, true)
            }
            (Shell::Posix, None) => (
                self.posix_line(&self.argv, self.stdin.as_deref()),
                None,
                true,
            ),
        };
        let mut args: Vec<String> = vec!["-S".into(), socket.display().to_string()];
        args.extend(["-o".into(), "ControlMaster=no".into(), "-T".into()]);
        args.extend(target.options());
        args.push("--".into());
        args.push(target.address.clone());
        args.push(line);
        ProcessSpec {
            stdin,
            hold_stdin: hold,
            timeout: self.timeout,
            shown: Some(format!("{}: {}", target.name, self.shown)),
            ..ProcessSpec::new("ssh", args)
        }
    }

    /// PowerShell lines setting the working directory and variables.
    fn ps_prelude(&self) -> String {
        let q = crate::quote::ps;
        let mut out = String::new();
        if let Some(dir) = &self.cwd {
            out.push_str(&format!("Set-Location -LiteralPath {}\n", q(dir)));
        }
        for (k, v) in &self.env {
            out.push_str(&format!(
                "[Environment]::SetEnvironmentVariable({}, {})\n",
                q(k),
                q(v)
            ));
        }
        out
    }

    /// The line the remote login shell runs: the wrapper, then its arguments.
    fn posix_line(&self, argv: &[String], stdin: Option<&str>) -> String {
        let mut words = vec![
            "exec".to_string(),
            "sh".into(),
            "-c".into(),
            posix_quote(WRAPPER),
            "waymark".into(),
            posix_quote(self.cwd.as_deref().unwrap_or("")),
            if stdin.is_some() { "1" } else { "0" }.into(),
            posix_quote(stdin.unwrap_or("")),
        ];
        if !self.env.is_empty() {
            words.push("env".into());
            for (k, v) in &self.env {
                words.push(posix_quote(&format!("{k}={v}")));
            }
        }
        words.extend(argv.iter().map(|a| posix_quote(a)));
        words.join(" ")
    }
}

/// `argv` as a PowerShell call, for `exec` on a Windows host: the call operator with
/// every word a literal, and the program's exit code as the script's.
fn ps_call(argv: &[String]) -> String {
    let words: Vec<String> = argv.iter().map(|a| crate::quote::ps(a)).collect();
    format!("& {}\nexit $LASTEXITCODE\n", words.join(" "))
}
