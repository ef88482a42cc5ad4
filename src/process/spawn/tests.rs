use super::*;
use std::io::Read;

fn launch<'a>(program: &'a Path, args: &'a [String]) -> Launch<'a> {
    Launch {
        program,
        argv0: "sh",
        args,
        env: &[],
        cwd: None,
        piped_stdin: false,
        gate: None,
        close: &[],
    }
}

fn output(mut child: Child) -> (ExitStatus, String, String) {
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (child.wait().unwrap(), out, err)
}

#[test]
fn the_child_runs_in_its_own_group_with_argv0_env_and_cwd() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "-c".to_string(),
        "echo \"$0 $(pwd) $WAYMARK_SPAWN_TEST $(ps -o pgid= -p $$) $$\"; echo e >&2; exit 4"
            .to_string(),
    ];
    let env = [("WAYMARK_SPAWN_TEST".to_string(), "v a l".to_string())];
    let cwd = dir.path().canonicalize().unwrap();
    let l = Launch {
        env: &env,
        cwd: Some(&cwd),
        argv0: "my-sh",
        ..launch(Path::new("/bin/sh"), &args)
    };
    let (status, out, err) = output(spawn(&l).unwrap());
    assert_eq!(status.code(), Some(4));
    let words: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(words[0], "my-sh", "{out}");
    assert_eq!(words[1], cwd.to_str().unwrap(), "{out}");
    assert_eq!(&words[2..5], ["v", "a", "l"], "{out}");
    assert_eq!(words[5], words[6], "leader of its own group: {out}");
    assert_eq!(err, "e\n");
    // The rest of the environment is inherited.
    let args = ["-c".to_string(), "echo \"$PATH\"".to_string()];
    let (_, out, _) = output(spawn(&launch(Path::new("/bin/sh"), &args)).unwrap());
    assert_eq!(out.trim_end(), std::env::var("PATH").unwrap_or_default());
}

#[test]
fn sigpipe_and_the_signal_mask_are_back_to_defaults() {
    // Rust ignores SIGPIPE; the program must get the default, and no blocked signal.
    let args = [
        "-c".to_string(),
        "grep -E '^(SigBlk|SigIgn)' /proc/self/status".to_string(),
    ];
    let (_, out, _) = output(spawn(&launch(Path::new("/bin/sh"), &args)).unwrap());
    for line in out.lines() {
        let mask = u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap();
        if line.starts_with("SigBlk") {
            assert_eq!(mask, 0, "{out}");
        } else {
            assert_eq!(mask & (1 << (libc::SIGPIPE - 1)), 0, "{out}");
        }
    }
}

#[test]
fn the_child_dies_with_the_thread_that_started_it() {
    // PR_SET_PDEATHSIG: what kills a step's process when waymark is killed.
    let args = ["30".to_string()];
    let pid = std::thread::spawn(move || {
        let child = spawn(&launch(Path::new("/bin/sleep"), &args)).unwrap();
        child.id()
    })
    .join()
    .unwrap();
    let status = waitpid(pid as libc::pid_t, 0).unwrap().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
}

#[test]
fn stdin_is_a_pipe_or_dev_null() {
    let args = ["-c".to_string(), "cat".to_string()];
    let mut l = launch(Path::new("/bin/sh"), &args);
    let (_, out, _) = output(spawn(&l).unwrap());
    assert_eq!(out, "");
    l.piped_stdin = true;
    let mut child = spawn(&l).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, b"fed\n").unwrap();
    drop(stdin);
    let (_, out, _) = output(child);
    assert_eq!(out, "fed\n");
}

#[test]
fn failures_before_the_program_runs_are_reported_with_their_stage() {
    let e = spawn(&launch(Path::new("/nonexistent/program"), &[])).unwrap_err();
    assert_eq!(e.stage, Some(Stage::Exec));
    assert_eq!(e.error.kind(), io::ErrorKind::NotFound);
    let missing = Path::new("/nonexistent/dir");
    let l = Launch {
        cwd: Some(missing),
        ..launch(Path::new("/bin/true"), &[])
    };
    let e = spawn(&l).unwrap_err();
    assert_eq!(e.stage, Some(Stage::Cwd));
    assert_eq!(e.error.kind(), io::ErrorKind::NotFound);
    let args = ["a\0b".to_string()];
    let e = spawn(&launch(Path::new("/bin/true"), &args)).unwrap_err();
    assert_eq!(
        (e.stage, e.error.kind()),
        (None, io::ErrorKind::InvalidInput)
    );
}

#[test]
fn a_child_not_let_go_at_the_gate_never_runs_its_program() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let (pid_read, pid_write) = pipe().unwrap();
    let (go_read, go_write) = pipe().unwrap();
    let gate = GateFds {
        pid_write: pid_write.as_raw_fd(),
        go_read: go_read.as_raw_fd(),
        parent_ends: [pid_read.as_raw_fd(), go_write.as_raw_fd()],
        go: b'g',
    };
    let args = ["-c".to_string(), format!("touch '{}'", marker.display())];
    let l = Launch {
        gate: Some(gate),
        ..launch(Path::new("/bin/sh"), &args)
    };
    // The recorder's side: read the pid, then refuse (close the go end unsent).
    let reader = std::thread::spawn(move || {
        let mut pid = [0u8; 4];
        std::fs::File::from(pid_read).read_exact(&mut pid).unwrap();
        drop(go_write);
        i32::from_ne_bytes(pid)
    });
    let e = spawn(&l).unwrap_err();
    assert_eq!(e.stage, Some(Stage::Gate));
    assert_eq!(e.error.raw_os_error(), Some(libc::ECANCELED));
    assert!(reader.join().unwrap() > 1);
    assert!(!marker.exists());
}

#[test]
fn a_held_child_waits_while_its_spawning_thread_records_it_then_runs() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let args = ["-c".to_string(), format!("touch '{}'", marker.display())];
    let l = launch(Path::new("/bin/sh"), &args);
    let (child, seen) = spawn_held(&l, |pid| {
        // Held: its program not run yet, however long the recording takes.
        std::thread::sleep(std::time::Duration::from_millis(100));
        Ok((pid, marker.exists()))
    });
    let child = child.unwrap();
    let (pid, ran_early) = seen.unwrap().unwrap();
    assert_eq!(pid, child.id());
    assert!(!ran_early, "the program ran before it was let go");
    // In its own group, as recorded: the pid is the group's id.
    // SAFETY: getpgid has no memory-safety preconditions.
    assert_eq!(unsafe { libc::getpgid(pid as i32) }, pid as i32);
    let (status, _, _) = output(child);
    assert!(status.success());
    assert!(marker.exists());
}

#[test]
fn a_held_child_refused_or_failing_first_never_runs_its_program() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let args = ["-c".to_string(), format!("touch '{}'", marker.display())];
    // Refused: the recording failed.
    let l = launch(Path::new("/bin/sh"), &args);
    let (e, recorded) = spawn_held(&l, |pid| Err::<(), _>(format!("no journal for {pid}")));
    let e = e.unwrap_err();
    assert_eq!(e.stage, Some(Stage::Gate));
    assert_eq!(e.error.raw_os_error(), Some(libc::ECANCELED));
    assert!(recorded.unwrap_err().starts_with("no journal for "));
    // Failing before the gate: the stage is reported, whether or not it was recorded.
    let l = Launch {
        cwd: Some(Path::new("/nonexistent/dir")),
        ..launch(Path::new("/bin/sh"), &args)
    };
    let (e, _) = spawn_held(&l, Ok::<u32, String>);
    assert_eq!(e.unwrap_err().stage, Some(Stage::Cwd));
    // The recording panics: the held child is refused and reaped before the unwinding
    // frees what it reads.
    let l = launch(Path::new("/bin/sh"), &args);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        spawn_held(&l, |_| -> Result<(), String> {
            panic!("the journal is gone")
        })
    }));
    assert!(panicked.is_err());
    assert!(!marker.exists());
}
