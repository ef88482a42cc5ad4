//! Starting a step's program, per platform, held at the start gate when a hook
//! records process groups (`gate.rs`): on Linux with `spawn.rs` (no copy of waymark),
//! on other unix systems with `Command` and `pre_exec`, on Windows with `Command`
//! and the group recorded right after it starts. Also the wording of start failures.

use super::child_io::Child;
use super::error::ProcessError;
use super::group;
use super::spec::ProcessSpec;
use crate::step_log::StepLog;
use std::io;
use std::path::Path;
#[cfg(not(target_os = "linux"))]
use std::process::{Command, Stdio};

/// Start the program — held at the start gate until `hook` has recorded its group,
/// when there is a hook — and return the running child.
///
/// Linux: `spawn.rs`, which shares waymark's memory with the child until its `exec`
/// instead of copying it (the reason is at the top of that file).
#[cfg(target_os = "linux")]
pub(super) fn start(
    spec: &ProcessSpec,
    program: &Path,
    command: &str,
    hook: Option<&super::gate::SpawnHook>,
    log: &StepLog,
) -> Result<Child, ProcessError> {
    use super::spawn::{spawn, Launch, Stage};
    let locks = match hook {
        Some(_) => crate::journal::lock::lock_fds(),
        None => Vec::new(),
    };
    let spawn_failed = |e: super::spawn::SpawnError| match e.stage {
        // It was there when checked: it went away since.
        Some(Stage::Cwd) if spec.cwd.is_some() => ProcessError::CwdMissing {
            command: command.to_string(),
            cwd: spec.cwd.clone().unwrap_or_default(),
        },
        _ => spawn_error(spec, program, command, e.error),
    };
    let mut launch = Launch {
        program,
        argv0: &spec.program,
        args: &spec.args,
        env: &spec.env,
        cwd: spec.cwd.as_deref(),
        piped_stdin: spec.stdin.is_some() || spec.hold_stdin,
        gate: None,
        close: &locks,
    };
    if let Some(hook) = hook.filter(|_| super::spawn::SPAWNS_HELD) {
        // This thread records while the child waits at its gate, a word in the memory
        // they share: no pipes, no helper to hand the recording to (`spawn.rs`;
        // docs/performance.md, `run_exec`).
        let (spawned, recorded) =
            super::spawn::spawn_held(&launch, |pid| super::gate::record_group(pid, hook));
        return settle(spawned, recorded, log, command, spawn_failed);
    }
    let gate = hook
        .map(|_| super::gate::Gate::new())
        .transpose()
        .map_err(|e| io_error(command, "creating the start gate of", e))?;
    launch.gate = gate.as_ref().map(super::gate::Gate::child_fds);
    spawn_gated(
        gate.map(super::gate::Gate::split),
        hook,
        || spawn(&launch),
        log,
        command,
        spawn_failed,
    )
}

/// Other unix systems: `std::process::Command`, held in `pre_exec` (which makes it fork).
#[cfg(all(unix, not(target_os = "linux")))]
pub(super) fn start(
    spec: &ProcessSpec,
    program: &Path,
    command: &str,
    hook: Option<&super::gate::SpawnHook>,
    log: &StepLog,
) -> Result<Child, ProcessError> {
    let mut cmd = build_command(spec, program);
    let gate = match hook {
        Some(_) => {
            let gate = super::gate::Gate::new()
                .map_err(|e| io_error(command, "creating the start gate of", e))?;
            gate.install(&mut cmd);
            Some(gate.split())
        }
        None => None,
    };
    spawn_gated(
        gate,
        hook,
        || cmd.spawn(),
        log,
        command,
        |e| spawn_error(spec, program, command, e),
    )
}

/// Spawn with `spawn`. With a gate, the child waits there and `spawn` returns only
/// after its `exec`: the group is recorded by this thread's helper meanwhile (see
/// `gate`), and the child is returned only if both worked.
#[cfg(unix)]
fn spawn_gated<E>(
    gate: Option<(super::gate::Recorder, super::gate::ChildEnds)>,
    hook: Option<&super::gate::SpawnHook>,
    spawn: impl FnOnce() -> Result<Child, E>,
    log: &StepLog,
    command: &str,
    spawn_failed: impl FnOnce(E) -> ProcessError,
) -> Result<Child, ProcessError> {
    let (spawned, recorded) = match (gate, hook) {
        (Some((recorder, child_ends)), Some(hook)) => {
            let recording = super::gate::record_aside(recorder, hook.clone());
            let spawned = spawn();
            drop(child_ends);
            (spawned, recording.wait())
        }
        _ => (spawn(), Ok(None)),
    };
    settle(spawned, recorded, log, command, spawn_failed)
}

/// The child if it started and its group was recorded (or needed no recording);
/// otherwise the error, with a child that started stopped and reaped.
#[cfg(unix)]
fn settle<E>(
    spawned: Result<Child, E>,
    recorded: Result<Option<super::gate::SpawnedGroup>, String>,
    log: &StepLog,
    command: &str,
    spawn_failed: impl FnOnce(E) -> ProcessError,
) -> Result<Child, ProcessError> {
    match (spawned, recorded) {
        (Ok(child), Ok(_)) => Ok(child),
        (Ok(mut child), Err(e)) => {
            // Released by nobody, it cannot have run its program; make sure it is gone.
            group::kill(child.id());
            let _ = child.wait();
            Err(record_error(log, command, e))
        }
        (Err(_), Err(e)) => Err(record_error(log, command, e)),
        (Err(e), Ok(_)) => {
            let err = spawn_failed(e);
            log.line("exec", &err.to_string());
            Err(err)
        }
    }
}

/// Windows: no way to hold a child, so its group is recorded as soon as it exists.
#[cfg(not(unix))]
pub(super) fn start(
    spec: &ProcessSpec,
    program: &Path,
    command: &str,
    hook: Option<&super::gate::SpawnHook>,
    log: &StepLog,
) -> Result<Child, ProcessError> {
    let mut child = build_command(spec, program).spawn().map_err(|e| {
        let err = spawn_error(spec, program, command, e);
        log.line("exec", &err.to_string());
        err
    })?;
    if let Some(hook) = hook {
        let group = super::gate::SpawnedGroup {
            pgid: child.id(),
            start_time: 0,
        };
        if let Err(e) = hook(&group) {
            group::kill(child.id());
            let _ = child.wait();
            return Err(record_error(log, command, e));
        }
    }
    Ok(child)
}

pub(super) fn io_error(command: &str, action: &'static str, source: io::Error) -> ProcessError {
    ProcessError::Io {
        command: command.to_string(),
        action,
        source,
    }
}

// The journal could not take the process group: the program did not run.
fn record_error(log: &StepLog, command: &str, e: String) -> ProcessError {
    let err = io_error(
        command,
        "recording the process before it runs",
        io::Error::other(e),
    );
    log.line("exec", &err.to_string());
    err
}

#[cfg(not(target_os = "linux"))]
fn build_command(spec: &ProcessSpec, program: &Path) -> Command {
    let mut cmd = Command::new(program);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // argv[0] as written, as a shell would pass it; the path is resolved already.
        cmd.arg0(&spec.program);
        // Its own group: Ctrl-C at the terminal reaches waymark only, and a stop can
        // signal the whole tree at once.
        cmd.process_group(0);
        cmd.args(&spec.args);
    }
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
        cmd.creation_flags(CREATE_NEW_PROCESS_GROUP);
        let is_cmd = Path::new(&spec.program)
            .file_stem()
            .is_some_and(|s| s.eq_ignore_ascii_case("cmd"));
        match spec.args.as_slice() {
            // cmd.exe does not parse the C runtime's quoting: pass its script verbatim.
            [flag, script] if is_cmd && flag.eq_ignore_ascii_case("/C") => {
                cmd.arg(flag).raw_arg(script);
            }
            args => {
                cmd.args(args);
            }
        }
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    cmd.stdin(if spec.stdin.is_some() || spec.hold_stdin {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Word a spawn failure for the operator; PATH and permissions were checked already,
/// so what is left is mostly a broken script.
fn spawn_error(spec: &ProcessSpec, program: &Path, command: &str, e: io::Error) -> ProcessError {
    let not_executable = |detail: String| ProcessError::NotExecutable {
        program: spec.program.clone(),
        path: program.to_path_buf(),
        detail,
    };
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::ENOEXEC) {
        return not_executable(
            "not a program the system can run (a script without a `#!` line?)".into(),
        );
    }
    match e.kind() {
        io::ErrorKind::NotFound => not_executable(format!(
            "{e} (if it is a script, is the interpreter on its `#!` line installed?)"
        )),
        io::ErrorKind::PermissionDenied => not_executable(e.to_string()),
        _ => ProcessError::Io {
            command: command.to_string(),
            action: "starting the process",
            source: e,
        },
    }
}
