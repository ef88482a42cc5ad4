//! The `ps(script)` flavour of a process: find PowerShell and hand it a script.
//!
//! How the script reaches PowerShell matters more than it looks:
//! - `-Command <script>` on the command line hits Windows' 32,767-character limit
//!   and the quoting rules of three parsers (Rust's, the C runtime's, PowerShell's).
//! - `-EncodedCommand <base64>` avoids quoting but still has the length limit (the
//!   base64 of UTF-16 is 2.7× the script), and endpoint protection — Symantec's own
//!   SEP runs on ITMS servers — flags it as a classic malware pattern.
//! - `-Command -` reads stdin, but line by line like an interactive prompt: a
//!   multi-line statement needs an extra blank line, `$ErrorActionPreference =
//!   'Stop'` does not stop the script, and the exit code reflects only the last
//!   statement (PowerShell issues #3223, #15331, #21808). Stdin is also decoded
//!   with the console code page, which mangles non-ASCII text.
//!
//! So waymark uses `-Command -` but sends a single ASCII line on stdin that decodes
//! the UTF-8 script from base64 and runs it as one script block:
//! `& ([scriptblock]::Create(<decoded>))`. The script is parsed whole (a syntax
//! error anywhere fails before anything runs), behaves as it would from a `.ps1`
//! file, `exit N` sets the exit code, there is no length limit, and nothing
//! suspicious appears on the command line. It works on Windows PowerShell 2.0+
//! and `pwsh`.

use super::error::ProcessError;
use super::lookup::{search_path, Found};
use super::spec::ProcessSpec;
use std::ffi::OsStr;
use std::path::PathBuf;

/// The single stdin line that loads and runs `script` (UTF-8, base64). It also sets the
/// console to UTF-8 so non-ASCII text in the JSON result survives Windows PowerShell's
/// OEM code page.
pub(crate) fn stdin_payload(script: &str) -> String {
    format!(
        "[Console]::OutputEncoding = [Text.Encoding]::UTF8; try {{ & ([scriptblock]::Create([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('{}')))) }} catch {{ [Console]::Error.WriteLine($_.ToString()); exit 1 }}; exit 0\n",
        base64(script.as_bytes())
    )
}

/// Program names tried, in order of preference: PowerShell 7 first.
const POWERSHELL_NAMES: [&str; 4] = ["pwsh", "pwsh.exe", "powershell.exe", "powershell"];

/// The PowerShell to use for `ps(...)`, searched on waymark's PATH.
pub(crate) fn find_powershell() -> Result<PathBuf, ProcessError> {
    find_powershell_in(&std::env::var_os("PATH").unwrap_or_default())
}

/// The PowerShell to use, searched on the given PATH value (testable without touching the environment).
pub(crate) fn find_powershell_in(path_var: &OsStr) -> Result<PathBuf, ProcessError> {
    POWERSHELL_NAMES
        .iter()
        .find_map(|name| match search_path(name, path_var) {
            Found::Executable(path) => Some(path),
            _ => None,
        })
        .ok_or(ProcessError::NoPowerShell)
}

/// `script` run by PowerShell found on PATH; see the module doc for how it is passed.
pub(crate) fn ps_spec(script: &str) -> Result<ProcessSpec, ProcessError> {
    let powershell = find_powershell()?;
    Ok(ps_spec_with(&powershell.to_string_lossy(), script))
}

/// `script` run by the given PowerShell executable.
pub(crate) fn ps_spec_with(powershell: &str, script: &str) -> ProcessSpec {
    let mut spec = ProcessSpec::new(
        powershell,
        ["-NoProfile", "-NonInteractive", "-Command", "-"],
    );
    // The blank line ends the statement for PowerShell's line-by-line stdin reader.
    spec.stdin = Some(format!(
        "& ([scriptblock]::Create([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('{}'))))\n\n",
        base64(script.as_bytes())
    ));
    spec
}

/// Standard base64 (RFC 4648, with padding); small enough not to warrant a crate.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> shift) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn ps_spec_sends_the_script_on_stdin_as_one_block() {
        let spec = ps_spec_with("/usr/bin/pwsh", "Get-Date\nexit 3");
        assert_eq!(spec.program, "/usr/bin/pwsh");
        assert_eq!(
            spec.args,
            ["-NoProfile", "-NonInteractive", "-Command", "-"]
        );
        let stdin = spec.stdin.unwrap();
        assert!(stdin.is_ascii());
        assert_eq!(stdin.lines().count(), 2, "one statement, then a blank line");
        assert!(stdin.contains(&format!("'{}'", base64(b"Get-Date\nexit 3"))));
    }

    #[test]
    fn no_powershell_on_path_is_a_clear_error() {
        let empty = tempfile::tempdir().unwrap();
        let err = find_powershell_in(empty.path().as_os_str()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no PowerShell found on PATH (looked for pwsh, powershell.exe): \
             install PowerShell 7 (`pwsh`) or run waymark on Windows"
        );
        assert!(find_powershell_in(OsStr::new("")).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn pwsh_is_preferred_over_windows_powershell() {
        use std::os::unix::fs::PermissionsExt;
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let make = |dir: &std::path::Path, name: &str| {
            let p = dir.join(name);
            std::fs::write(&p, "").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
            p
        };
        let legacy = make(a.path(), "powershell");
        let path_var = std::env::join_paths([a.path(), b.path()]).unwrap();
        assert_eq!(find_powershell_in(&path_var).unwrap(), legacy);
        let modern = make(b.path(), "pwsh");
        assert_eq!(find_powershell_in(&path_var).unwrap(), modern);
    }
}
