//! What to run: [`ProcessSpec`], the `sh` flavour of it, and [`describe`], the
//! command line a human would type (for `--dry-run`, the step log and errors).

use crate::quote::sh;
use std::path::PathBuf;
use std::time::Duration;

/// One child process to run, without a shell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProcessSpec {
    /// Program name (looked up on PATH) or path (relative paths are taken from `cwd`).
    pub program: String,
    /// Arguments, passed as they are (no shell word splitting).
    pub args: Vec<String>,
    /// Variables added to (or overriding) waymark's own environment.
    pub env: Vec<(String, String)>,
    /// Working directory; waymark's own when `None`.
    pub cwd: Option<PathBuf>,
    /// Text fed on stdin, which is closed after it; stdin is `/dev/null` when `None`.
    pub stdin: Option<String>,
    /// Stop the process (and its children) after this long.
    pub timeout: Option<Duration>,
    /// Keep stdin open (after `stdin`'s text, if any) until the process exits, instead
    /// of closing it: a remote command's wrapper reads it to notice waymark is gone.
    pub hold_stdin: bool,
    /// What the step log and errors show instead of the command line (a remote
    /// command shows as `HOST: command`, not as the `ssh` invocation carrying it).
    pub shown: Option<String>,
}

impl ProcessSpec {
    /// A spec running `program` with `args` and nothing else set.
    pub(crate) fn new(
        program: impl Into<String>,
        args: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }
}

/// `script` run by the system shell: `/bin/sh -c script` (`cmd /C script` on Windows).
pub(crate) fn sh_spec(script: &str) -> ProcessSpec {
    if cfg!(windows) {
        ProcessSpec::new("cmd", ["/C", script])
    } else {
        ProcessSpec::new("/bin/sh", ["-c", script])
    }
}

/// The command line a human would type for `spec`, POSIX-shell quoted.
///
/// `cd DIR && VAR=value program 'arg one'`; stdin is shown as `<<< 'text'` when it
/// is one short line, otherwise summarised (`< [stdin: 3 lines, 120 bytes]`). The
/// result is not redacted: pass it through the step's redactor before showing it.
pub(crate) fn describe(spec: &ProcessSpec) -> String {
    if let Some(shown) = &spec.shown {
        return shown.clone();
    }
    let mut out = String::new();
    if let Some(cwd) = &spec.cwd {
        out.push_str("cd ");
        out.push_str(&sh(&cwd.to_string_lossy()));
        out.push_str(" && ");
    }
    for (key, value) in &spec.env {
        out.push_str(&sh(key));
        out.push('=');
        out.push_str(&sh(value));
        out.push(' ');
    }
    out.push_str(&sh(&spec.program));
    for arg in &spec.args {
        out.push(' ');
        out.push_str(&sh(arg));
    }
    if let Some(input) = &spec.stdin {
        const SHOWN_STDIN_CHARS: usize = 60;
        if !input.contains('\n') && input.chars().count() <= SHOWN_STDIN_CHARS {
            out.push_str(" <<< ");
            out.push_str(&sh(input));
        } else {
            let lines = input.lines().count();
            let plural = if lines == 1 { "" } else { "s" };
            out.push_str(&format!(
                " < [stdin: {lines} line{plural}, {} bytes]",
                input.len()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_renders_what_a_human_would_type() {
        let mut spec = ProcessSpec::new("sqlcmd", ["-E", "-Q", "BACKUP DATABASE x", "it's"]);
        assert_eq!(
            describe(&spec),
            r"sqlcmd -E -Q 'BACKUP DATABASE x' 'it'\''s'"
        );
        spec.env = vec![("MODE".into(), "a b".into())];
        spec.cwd = Some(PathBuf::from("/srv/my dir"));
        spec.stdin = Some("yes".into());
        assert_eq!(
            describe(&spec),
            r"cd '/srv/my dir' && MODE='a b' sqlcmd -E -Q 'BACKUP DATABASE x' 'it'\''s' <<< yes"
        );
        spec.stdin = Some("a\nb\n".into());
        assert!(describe(&spec).ends_with(" < [stdin: 2 lines, 4 bytes]"));
    }

    #[test]
    fn quote_keeps_multi_line_scripts_on_one_line() {
        assert_eq!(sh(""), "''");
        assert_eq!(sh("a=b:c/d@e"), "a=b:c/d@e");
        assert_eq!(sh("echo 'hi'\nexit 1"), r"$'echo \'hi\'\nexit 1'");
        assert_eq!(sh("$HOME"), "'$HOME'");
    }

    #[cfg(unix)]
    #[test]
    fn sh_spec_uses_bin_sh() {
        let spec = sh_spec("echo hi | wc -c");
        assert_eq!(spec.program, "/bin/sh");
        assert_eq!(spec.args, vec!["-c", "echo hi | wc -c"]);
        assert_eq!(describe(&spec), "/bin/sh -c 'echo hi | wc -c'");
    }
}
