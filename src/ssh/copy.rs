//! `upload` and `download`: files to and from a host with `scp` in SFTP mode over the
//! host's master connection (no second connection, no remote shell: paths are not
//! interpreted by one, so they need no quoting).

use std::path::Path;

use super::{last_lines, master, SshError, Target};
use crate::cancel::CancelToken;
use crate::process::{run_process, ProcessSpec};
use crate::step_log::StepLog;

/// Which way a file goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Local file to the host.
    Upload,
    /// Host file to a local path.
    Download,
}

/// A remote path scp can take as it is: not empty, no control characters, no glob
/// characters (SFTP expands them when downloading).
pub(crate) fn check_remote_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.chars().any(char::is_control) {
        return Err(format!(
            "remote path `{}` must be non-empty and have no control characters",
            path.escape_debug()
        ));
    }
    if path.contains(['*', '?', '[']) {
        return Err(format!(
            "remote path `{}` has a glob character (*, ?, [): name one file",
            path.escape_debug()
        ));
    }
    Ok(())
}

/// Copy `local` to or from `remote` on `target`.
pub(crate) fn copy(
    target: &Target,
    direction: Direction,
    local: &Path,
    remote: &str,
    cancel: &CancelToken,
    log: &StepLog,
) -> Result<(), SshError> {
    let socket = master::ensure(target, cancel)?;
    let host = if target.address.contains(':') {
        format!("[{}]", target.address)
    } else {
        target.address.clone()
    };
    let far = format!("{host}:{remote}");
    let near = local.display().to_string();
    let mut args: Vec<String> = vec!["-q".into(), "-s".into(), "-o".into()];
    args.push(format!("ControlPath={}", socket.display()));
    args.extend(["-o".into(), "ControlMaster=no".into()]);
    args.extend(target.options());
    args.push("--".into());
    let shown = match direction {
        Direction::Upload => {
            args.extend([near.clone(), far]);
            format!("upload {near} → {}:{remote}", target.name)
        }
        Direction::Download => {
            args.extend([far, near.clone()]);
            format!("download {}:{remote} → {near}", target.name)
        }
    };
    let spec = ProcessSpec {
        shown: Some(shown.clone()),
        ..ProcessSpec::new("scp", args)
    };
    let out = run_process(&spec, cancel, log).map_err(SshError::Process)?;
    if out.code == 0 {
        return Ok(());
    }
    if !master::alive(target) {
        return Err(SshError::Connect {
            host: target.name.clone(),
            message: format!("the connection was lost: {}", last_lines(&out.stderr)),
        });
    }
    Err(SshError::Copy {
        what: shown,
        message: last_lines(&out.stderr),
    })
}
