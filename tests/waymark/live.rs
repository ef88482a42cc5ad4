//! The live view under a real pseudo-terminal (util-linux `script`): a pinned progress
//! area while the run goes, gone from the screen when it ends; the plain line log where
//! colour is off (`NO_COLOR`, `TERM=dumb`).

use crate::harness::Test;
use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// `waymark ARGS` in `t`'s dir under a pty with `env`, not started yet; `None` (said
/// loudly; a failure under CI=true) when `script` is missing.
fn pty_command(t: &Test, args: &str, env: &[(&str, &str)]) -> Option<Command> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(script) = script else {
        eprintln!("\n!!!!! live view pty tests DID NOT RUN: no util-linux `script` !!!!!\n");
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "`script` is required when CI=true"
        );
        return None;
    };
    let bin = crate::harness::bin();
    let mut c = Command::new(script);
    c.current_dir(t.path())
        .args(["-qfec", &format!("{} {args}", bin.display()), "/dev/null"])
        .env_remove("WAYMARK_STATE_DIR")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "120")
        .env("LINES", "40");
    for (k, v) in env {
        c.env(k, v);
    }
    Some(c)
}

/// Run `waymark ARGS` under a pty with `env`; everything the terminal got.
fn in_pty(t: &Test, args: &str, env: &[(&str, &str)]) -> Option<String> {
    let o = pty_command(t, args, env)?.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

const RB: &str = r#"
runbook(#{ name: "Live" });
let a = step("a", #{ run: |ctx| { sleep("300ms"); 1 } });
let b = step("b", #{ run: |ctx| { sleep("300ms"); 2 } });
gate("g", #{ after: [a, b], title: "G", instructions: "Approve." });
step("c", #{ after: "g", run: |ctx| 3 });
"#;

#[test]
fn a_terminal_gets_a_pinned_progress_area_that_is_cleared_at_the_end() {
    let t = Test::new().file("live.rhai", RB);
    let Some(out) = in_pty(&t, "run live.rhai --yes", &[]) else {
        return;
    };
    // The area: overall progress and each running step on a line of its own.
    assert!(out.contains("/4 done"), "{out:?}");
    assert!(
        out.contains("\u{1b}[36m"),
        "spinner of a running step: {out:?}"
    );
    // Event lines scroll above it and the recap follows it.
    let last_area = out.rfind("/4 done").unwrap();
    let recap = out.rfind("recap:").expect("a recap");
    assert!(last_area < recap);
    // Between the area's last drawing and the recap the area's lines are erased.
    assert!(
        out[last_area..recap].contains("\u{1b}[2K"),
        "{:?}",
        &out[last_area..recap]
    );
}

#[test]
fn no_color_and_dumb_terminals_keep_the_plain_line_log() {
    let t = Test::new().file("live.rhai", RB);
    for env in [[("NO_COLOR", "1")], [("TERM", "dumb")]] {
        let Some(out) = in_pty(&t, "run live.rhai --yes", &env) else {
            return;
        };
        assert!(!out.contains(" done  "), "{env:?}: {out:?}");
        assert!(!out.contains('\u{1b}'), "{env:?}: {out:?}");
        assert!(out.contains("✓ c"), "{env:?}: {out:?}");
    }
}

#[test]
fn a_gate_prompt_takes_the_screen_from_the_pinned_area_and_gives_it_back() {
    let t = Test::new().file("live.rhai", RB);
    let Some(mut c) = pty_command(&t, "run live.rhai", &[]) else {
        return;
    };
    let mut child = c
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // A prompt that never shows must fail the test, not hang it (an upper bound for a
    // loaded machine; a passing run ends in seconds).
    let pid = child.id() as libc::pid_t;
    let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finished_seen = finished.clone();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(300));
        // Only our child, and only while it has not been waited for (its pid is ours).
        if !finished_seen.load(std::sync::atomic::Ordering::SeqCst) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    });
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Read what the terminal shows; answer the prompt once it is there.
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let mut answered = false;
    loop {
        let n = stdout.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
        if !answered && String::from_utf8_lossy(&seen).contains("[a]pprove") {
            stdin.write_all(b"a\n\n").unwrap();
            answered = true;
        }
    }
    let status = child.wait().unwrap();
    finished.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(status.success(), "{status:?}");
    let out = String::from_utf8_lossy(&seen);
    let header = out.find("━━ gate g").expect("the prompt");
    let asked = out.find("[a]pprove").unwrap();
    // The area was drawn, then erased before the prompt, and not drawn into it.
    let before = &out[..header];
    let last_area = before.rfind("/4 done").expect("the area before the prompt");
    assert!(
        before[last_area..].contains("\u{1b}[2K"),
        "{:?}",
        &before[last_area..]
    );
    assert!(
        !out[header..asked].contains(" done "),
        "{:?}",
        &out[header..asked]
    );
    // It is back after the answer, and the run finished.
    assert!(out[asked..].contains("/4 done"), "{out:?}");
    assert!(out.contains("gate g approved by"), "{out:?}");
}
