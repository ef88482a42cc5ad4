//! Finding the file a program name refers to, before spawning it.
//!
//! waymark searches PATH itself instead of leaving it to `execvp` so that a missing
//! or non-executable program gets a precise message ("`sqlcmd` not found on PATH")
//! rather than a bare `ENOENT`, and so PowerShell can be looked for by name.

use super::error::ProcessError;
use super::spec::ProcessSpec;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};

/// The outcome of looking for one program.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// An executable file.
    Executable(PathBuf),
    /// A file by that name exists but cannot be executed (the first one found).
    NotExecutable(PathBuf, String),
    /// Nothing by that name.
    Missing,
}

/// The executable `spec` would run, with errors worded for the operator.
///
/// A name without a path separator is searched on PATH — the spec's own `PATH`
/// override when it sets one, as the child would see it. Empty PATH entries are
/// skipped: silently running a program from the current directory is a trap. A
/// relative path with a separator is taken from the spec's `cwd`, as a shell would
/// after `cd`.
pub(crate) fn resolve_program(spec: &ProcessSpec) -> Result<PathBuf, ProcessError> {
    let program = spec.program.as_str();
    let not_executable = |path: PathBuf, detail: String| ProcessError::NotExecutable {
        program: program.to_string(),
        path,
        detail,
    };
    if program.is_empty() {
        return Err(ProcessError::NotFound {
            program: String::new(),
            on_path: false,
        });
    }
    if has_separator(program) {
        let mut path = PathBuf::from(program);
        if path.is_relative() {
            if let Some(cwd) = &spec.cwd {
                path = cwd.join(path);
            }
        }
        return match check_file(&path) {
            Found::Executable(p) => Ok(absolute(p)),
            Found::NotExecutable(p, detail) => Err(not_executable(p, detail)),
            Found::Missing => Err(ProcessError::NotFound {
                program: program.to_string(),
                on_path: false,
            }),
        };
    }
    let path_var = spec
        .env
        .iter()
        .rev()
        .find(|(k, _)| is_path_key(k))
        .map(|(_, v)| OsString::from(v))
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    match search_path(program, &path_var) {
        Found::Executable(p) => Ok(absolute(p)),
        Found::NotExecutable(p, detail) => Err(not_executable(p, detail)),
        Found::Missing => Err(ProcessError::NotFound {
            program: program.to_string(),
            on_path: true,
        }),
    }
}

/// Look for `name` in each directory of `path_var`, like `execvp` does.
///
/// A non-executable match does not stop the search (a later directory may hold an
/// executable one); it is reported only when nothing executable is found.
pub(crate) fn search_path(name: &str, path_var: &OsStr) -> Found {
    let mut unusable = None;
    for dir in std::env::split_paths(path_var) {
        if dir.as_os_str().is_empty() {
            continue;
        }
        for candidate in candidates(name) {
            match check_file(&dir.join(&candidate)) {
                Found::Executable(p) => return Found::Executable(p),
                Found::NotExecutable(p, detail) => {
                    unusable.get_or_insert(Found::NotExecutable(p, detail));
                }
                Found::Missing => {}
            }
        }
    }
    unusable.unwrap_or(Found::Missing)
}

fn has_separator(program: &str) -> bool {
    program.contains('/') || (cfg!(windows) && program.contains('\\'))
}

fn is_path_key(key: &str) -> bool {
    if cfg!(windows) {
        key.eq_ignore_ascii_case("PATH")
    } else {
        key == "PATH"
    }
}

/// Relative resolutions are made absolute so the child's `cwd` cannot change their meaning.
fn absolute(path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        return path;
    }
    std::env::current_dir()
        .map(|d| d.join(&path))
        .unwrap_or(path)
}

/// The file names `name` may have on disk: itself, plus `PATHEXT` variants on Windows.
fn candidates(name: &str) -> Vec<String> {
    let mut out = vec![name.to_string()];
    if cfg!(windows) && Path::new(name).extension().is_none() {
        let exts = std::env::var("PATHEXT").unwrap_or_else(|_| ".COM;.EXE;.BAT;.CMD".into());
        out.extend(
            exts.split(';')
                .filter(|e| !e.is_empty())
                .map(|e| format!("{name}{}", e.to_ascii_lowercase())),
        );
    }
    out
}

fn check_file(path: &Path) -> Found {
    let Ok(meta) = std::fs::metadata(path) else {
        return Found::Missing;
    };
    if meta.is_dir() {
        return Found::NotExecutable(path.to_path_buf(), "it is a directory".into());
    }
    if !meta.is_file() {
        return Found::NotExecutable(path.to_path_buf(), "it is not a regular file".into());
    }
    match executable_by_us(path) {
        Ok(()) => Found::Executable(path.to_path_buf()),
        Err(detail) => Found::NotExecutable(path.to_path_buf(), detail),
    }
}

#[cfg(unix)]
fn executable_by_us(path: &Path) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    // access(2) answers for our real uid and groups, which mode bits alone cannot.
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| "its path contains a NUL byte".to_string())?;
    // SAFETY: `c_path` is a valid NUL-terminated string for the duration of the call.
    if unsafe { libc::access(c_path.as_ptr(), libc::X_OK) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error().to_string())
    }
}

#[cfg(not(unix))]
fn executable_by_us(_path: &Path) -> Result<(), String> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn search_prefers_a_later_executable_over_an_earlier_plain_file() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        file(a.path(), "tool", 0o644);
        let good = file(b.path(), "tool", 0o755);
        let path_var = std::env::join_paths([a.path(), b.path()]).unwrap();
        assert_eq!(search_path("tool", &path_var), Found::Executable(good));
        let only_a = std::env::join_paths([a.path()]).unwrap();
        assert!(matches!(
            search_path("tool", &only_a),
            Found::NotExecutable(..)
        ));
        assert_eq!(search_path("absent", &path_var), Found::Missing);
        assert_eq!(search_path("tool", OsStr::new("")), Found::Missing);
    }

    #[test]
    fn relative_program_paths_are_taken_from_cwd() {
        let dir = tempfile::tempdir().unwrap();
        let script = file(dir.path(), "run.sh", 0o755);
        let mut spec = ProcessSpec::new("./run.sh", Vec::<String>::new());
        spec.cwd = Some(dir.path().to_path_buf());
        assert_eq!(resolve_program(&spec).unwrap(), script);
    }

    #[test]
    fn spec_path_override_is_searched() {
        let dir = tempfile::tempdir().unwrap();
        let tool = file(dir.path(), "only-here", 0o755);
        let mut spec = ProcessSpec::new("only-here", Vec::<String>::new());
        assert!(resolve_program(&spec).is_err());
        spec.env = vec![("PATH".into(), dir.path().to_string_lossy().into_owned())];
        assert_eq!(resolve_program(&spec).unwrap(), tool);
    }
}
