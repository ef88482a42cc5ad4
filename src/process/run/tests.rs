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
    let log = StepLog::create(dir.path(), "db:login", redactor, StepLogOptions::default()).unwrap();
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
