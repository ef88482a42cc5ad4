//! The gate prompt in a real pseudo-terminal, driven the way an operator types.
//!
//! rexpect gives each test its own pty (no tty needed, so CI runs them): waymark sees a
//! terminal on stdin and stderr and prompts, exactly as in tmux.

use crate::harness::{step, Test};
use rexpect::session::{spawn_command, PtySession};
use std::process::Command;

// Generous: CI machines are shared, and a wait only ends early when the text appears.
const TIMEOUT_MS: u64 = 300_000;

fn waymark_in_pty(t: &Test, args: &[&str], env: &[(&str, &str)]) -> PtySession {
    let mut c = Command::new(crate::harness::bin());
    c.current_dir(t.path())
        .args(args)
        .env_remove("WAYMARK_STATE_DIR")
        .env_remove("NO_COLOR")
        .env("TERM", "dumb");
    for (k, v) in env {
        c.env(k, v);
    }
    spawn_command(c, Some(TIMEOUT_MS)).unwrap()
}

/// Wait until the run creates `name` in `t`'s dir: up to ten minutes, an upper bound for a
/// loaded machine that a passing run never comes near.
fn wait_for_file(t: &Test, name: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(600);
    while !t.path().join(name).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "{name} never appeared"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Wait for the process and return its exit code.
fn exit_code(p: &mut PtySession) -> i32 {
    let _ = p.exp_eof();
    match p.process().wait().unwrap() {
        rexpect::process::WaitStatus::Exited(_, code) => code,
        other => panic!("waymark did not exit normally: {other:?}"),
    }
}

const GATED: &str = r#"runbook(#{ name: "g", description: "d" });
gate("sim", #{ title: "Upgrade in SIM", instructions: "Run SIM.\nCheck 7.6 shows." });
step("chatty", #{ run: |ctx| { sleep("700ms"); warn("late warning from a parallel step"); 1 } });
step("after", #{ after: "sim", run: |ctx| 2 });
"#;

// The parallel step warns once the test has seen the prompt open (`prompt-open`), and
// says so (`warned`): the warning is certain to come while the prompt is open, whatever
// the machine's load, instead of after a guessed delay.
const GATED_WITH_A_WARNING: &str = r#"runbook(#{ name: "g", description: "d" });
gate("sim", #{ title: "Upgrade in SIM", instructions: "Run SIM.\nCheck 7.6 shows." });
step("chatty", #{ run: |ctx| {
    wait_until(|| sh("test -e prompt-open", #{ check: false }).code == 0, #{ timeout: "10m", every: "20ms" });
    warn("late warning from a parallel step");
    sh("touch warned");
    1
} });
step("after", #{ after: "sim", run: |ctx| 2 });
"#;

#[test]
fn approving_at_the_prompt_records_the_note_and_held_output_follows_the_prompt() {
    let t = Test::new().file("rb.rhai", GATED_WITH_A_WARNING);
    let mut p = waymark_in_pty(&t, &["run", "rb.rhai"], &[]);
    let shown = p
        .exp_string("gate sim: [a]pprove, [r]eject or [p]ause")
        .unwrap();
    // rexpect reads bytes as Latin-1: compare ASCII only.
    assert!(
        shown.contains("gate sim ") && shown.contains(" Upgrade in SIM"),
        "{shown}"
    );
    assert!(shown.contains("Check 7.6 shows."), "{shown}");
    // The parallel step warns while the prompt is open.
    std::fs::write(t.path().join("prompt-open"), "").unwrap();
    wait_for_file(&t, "warned");
    p.send_line("a").unwrap();
    let during = p.exp_string("note (what you checked").unwrap();
    assert!(
        !during.contains("late warning"),
        "step output printed into the open prompt: {during:?}"
    );
    p.send_line("SIM finished, 7.6 shown").unwrap();
    p.exp_string("late warning from a parallel step").unwrap();
    let rest = p.exp_eof().unwrap();
    assert!(rest.contains("succeeded"), "{rest}");
    assert!(
        !rest.contains('\x1b'),
        "TERM=dumb gets no escape sequences: {rest:?}"
    );
    let s = t.status();
    assert_eq!(s["status"], "succeeded");
    assert_eq!(
        step(&s, "sim")["approvals"][0]["note"],
        "SIM finished, 7.6 shown"
    );
}

#[test]
fn rejecting_at_the_prompt_with_a_note_fails_the_run() {
    let t = Test::new().file("rb.rhai", GATED);
    let mut p = waymark_in_pty(&t, &["run", "rb.rhai"], &[]);
    p.exp_string("[p]ause").unwrap();
    p.send_line("r").unwrap();
    p.exp_string("why").unwrap();
    p.send_line("SIM shows errors").unwrap();
    assert_eq!(exit_code(&mut p), 1);
    let s = t.status();
    assert_eq!(step(&s, "sim")["state"], "rejected");
    assert!(step(&s, "sim")["error"]
        .as_str()
        .unwrap()
        .contains("SIM shows errors"));
}

#[test]
fn pausing_at_the_prompt_exits_3_with_the_approve_command() {
    let t = Test::new().file("rb.rhai", GATED);
    let mut p = waymark_in_pty(&t, &["run", "rb.rhai", "--state-dir", "st"], &[]);
    p.exp_string("[p]ause").unwrap();
    p.send_line("p").unwrap();
    let rest = p.exp_string("waymark approve ").unwrap();
    assert!(rest.contains("paused"), "{rest}");
    let cmd = p.read_line().unwrap();
    assert!(cmd.contains(" sim --state-dir st"), "{cmd}");
    assert_eq!(exit_code(&mut p), 3);
}

#[test]
fn an_approval_from_another_shell_closes_the_open_prompt_and_the_next_gate_gets_one() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "g", description: "d" });
           gate("sim", #{ instructions: "Do it." });
           gate("verify", #{ after: "sim", title: "Verify", instructions: "Check the console." });
           step("after", #{ after: "verify", run: |ctx| 1 });"#,
    );
    let mut p = waymark_in_pty(&t, &["run", "rb.rhai"], &[]);
    let (_, started) = p.exp_regex(r"run \d{8}-\d{6}-[0-9a-f]{4}").unwrap();
    let id = started.trim_start_matches("run ").to_string();
    p.exp_string("gate sim: [a]pprove").unwrap();
    let o = t
        .bare()
        .args(["approve", &id, "sim", "--by", "the CAB"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let closed = p.exp_string("this prompt is closed").unwrap();
    assert!(
        closed.contains("gate sim was approved by the CAB (account "),
        "{closed}"
    );
    // The next gate asks, and answering it works.
    let next = p.exp_string("gate verify: [a]pprove").unwrap();
    assert!(next.contains("Check the console."), "{next}");
    p.send_line("a").unwrap();
    p.exp_string("note").unwrap();
    p.send_line("").unwrap();
    assert_eq!(exit_code(&mut p), 0);
    assert_eq!(t.status()["status"], "succeeded");
}

#[test]
fn no_color_and_term_dumb_give_plain_text_and_a_colour_terminal_gets_colour() {
    let rb = r#"runbook(#{ name: "c", description: "d" });
                step("a", #{ run: |ctx| 1 });"#;
    let run = |env: &[(&str, &str)]| {
        let t = Test::new().file("rb.rhai", rb);
        let mut p = waymark_in_pty(&t, &["run", "rb.rhai"], env);
        p.exp_eof().unwrap()
    };
    assert!(
        run(&[("TERM", "xterm-256color")]).contains("\x1b["),
        "a colour terminal is coloured (or this test could not fail)"
    );
    let plain = run(&[("TERM", "xterm-256color"), ("NO_COLOR", "1")]);
    assert!(!plain.contains('\x1b'), "NO_COLOR: {plain:?}");
    let dumb = run(&[("TERM", "dumb")]);
    assert!(!dumb.contains('\x1b'), "TERM=dumb: {dumb:?}");
}

#[test]
fn the_starter_is_not_offered_approve_on_a_separate_approver_gate_and_waits_for_another_account() {
    let Some(alice) = crate::accounts::OsUser::create(
        "the_starter_is_not_offered_approve_on_a_separate_approver_gate_and_waits_for_another_account",
    ) else {
        return;
    };
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "g", description: "d" });
           gate("sim", #{ instructions: "Do it.", separate_approver: true });
           step("after", #{ after: "sim", run: |ctx| 1 });"#,
    );
    let mut p = waymark_in_pty(&t, &["run", "rb.rhai"], &[]);
    let (_, started) = p.exp_regex(r"run \d{8}-\d{6}-[0-9a-f]{4}").unwrap();
    let id = started.trim_start_matches("run ").to_string();
    let shown = p
        .exp_string("gate sim: [r]eject or [p]ause (resume later), or wait here")
        .unwrap();
    assert!(
        shown.contains("started this run, and this gate needs another account's approval"),
        "{shown}"
    );
    assert!(shown.contains("waymark approve "), "{shown}");
    // Typing `a` anyway approves nothing.
    p.send_line("a").unwrap();
    p.exp_string("needs another account's approval").unwrap();
    crate::accounts::share(t.path());
    let o = alice
        .waymark(t.path())
        .args(["approve", &id, "sim"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let closed = p.exp_string("this prompt is closed").unwrap();
    assert!(
        closed.contains(&format!("gate sim was approved by {}", alice.name)),
        "{closed}"
    );
    assert_eq!(exit_code(&mut p), 0);
    let s = t.status();
    assert_eq!(
        step(&s, "sim")["approvals"][0]["account"],
        alice.name.as_str()
    );
}
