//! Resume, gates decided from another shell, edited runbooks, rollback and secrets,
//! through the binary.

use crate::harness::{expect_code, step, Test};
use std::process::Output;

fn wm(t: &Test, args: &[&str]) -> Output {
    t.bare().args(args).output().unwrap()
}

fn wm_env(t: &Test, args: &[&str], k: &str, v: &str) -> Output {
    t.bare().args(args).env(k, v).output().unwrap()
}

const GATED: &str = r#"runbook(#{ name: "g", description: "d" });
step("before", #{ run: |ctx| sh("echo before >> effects"), idempotent: true });
gate("sim", #{ after: "before", instructions: "Do it.", approvals: 2, separate_approver: true });
step("after", #{ after: "sim", run: |ctx| sh("echo after >> effects"), idempotent: true });
"#;

#[test]
fn a_rejected_gate_fails_the_run_with_who_and_why() {
    let t = Test::new().file("rb.rhai", GATED);
    assert_eq!(wm(&t, &["run", "rb.rhai"]).status.code(), Some(3));
    let id = t.run_id();
    assert!(wm(
        &t,
        &[
            "reject",
            &id,
            "sim",
            "--by",
            "carol",
            "--note",
            "SIM shows errors"
        ]
    )
    .status
    .success());
    let r = wm(&t, &["resume"]);
    expect_code(&r, 1);
    let s = t.status();
    assert_eq!(s["status"], "failed");
    assert_eq!(step(&s, "sim")["state"], "rejected");
    assert!(step(&s, "sim")["error"].as_str().unwrap().contains("carol"));
    assert_eq!(step(&s, "after")["state"], "skipped");
}

#[test]
fn a_failed_step_runs_again_on_resume_and_finished_ones_do_not() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "f", description: "d" });
           step("a", #{ run: |ctx| sh("echo a >> effects") });
           step("b", #{ after: "a", run: |ctx| { sh("echo b >> effects"); sh("test -f fixed") } });"#,
    );
    assert_eq!(wm(&t, &["run", "rb.rhai"]).status.code(), Some(1));
    std::fs::write(t.path().join("fixed"), "").unwrap();
    let r = wm(&t, &["resume"]);
    expect_code(&r, 0);
    assert_eq!(
        std::fs::read_to_string(t.path().join("effects")).unwrap(),
        "a\nb\nb\n"
    );
    let s = t.status();
    assert_eq!(step(&s, "b")["attempts"], 2);
}

const FAILS_UNTIL_FIXED: &str = r#"runbook(#{ name: "f", description: "d" });
step("a", #{ run: |ctx| sh("echo a >> effects") });
step("b", #{ after: "a", run: |ctx| sh("test -f fixed") });"#;

#[test]
fn resume_takes_the_latest_unfinished_run_not_the_latest_run() {
    let t = Test::new().file("rb.rhai", FAILS_UNTIL_FIXED).file(
        "ok.rhai",
        r#"runbook(#{ name: "ok", description: "d" }); step("x", #{ run: |ctx| () });"#,
    );
    expect_code(&wm(&t, &["run", "rb.rhai"]), 1);
    let failed = t.run_id();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    expect_code(&wm(&t, &["run", "ok.rhai"]), 0);
    assert_ne!(t.run_id(), failed);
    std::fs::write(t.path().join("fixed"), "").unwrap();
    let r = wm(&t, &["resume"]);
    expect_code(&r, 0);
    assert!(
        String::from_utf8_lossy(&r.stderr).contains(&format!("resuming run {failed}")),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    let r = wm(&t, &["resume"]);
    expect_code(&r, 2);
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("no unfinished run"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
}

#[test]
fn resume_of_a_journal_damaged_in_the_middle_exits_2_naming_the_line_and_changes_nothing() {
    let t = Test::new().file("rb.rhai", FAILS_UNTIL_FIXED);
    expect_code(&wm(&t, &["run", "rb.rhai"]), 1);
    let journal = t.run_dir().join("journal.jsonl");
    let mut bytes = std::fs::read(&journal).unwrap();
    let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    // Inside the first step record's step name: the checksum no longer matches.
    let i = second
        + bytes[second..]
            .windows(9)
            .position(|w| w == b"\"step\":\"a")
            .unwrap()
        + 8;
    bytes[i] = b'z';
    let line = format!(
        "line {}",
        bytes[..i].iter().filter(|&&b| b == b'\n').count() + 1
    );
    std::fs::write(&journal, &bytes).unwrap();
    std::fs::write(t.path().join("fixed"), "").unwrap();
    for args in [&["resume"][..], &["resume", &t.run_id()][..]] {
        let r = wm(&t, args);
        expect_code(&r, 2);
        let err = String::from_utf8_lossy(&r.stderr);
        assert!(err.contains(&line) && err.contains("checksum"), "{err}");
    }
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        bytes,
        "nothing was rewritten"
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("effects")).unwrap(),
        "a\n",
        "no step ran again"
    );
}

#[test]
fn resume_when_the_runbook_file_is_gone_says_which_file() {
    let t = Test::new().file("rb.rhai", FAILS_UNTIL_FIXED);
    expect_code(&wm(&t, &["run", "rb.rhai"]), 1);
    std::fs::remove_file(t.path().join("rb.rhai")).unwrap();
    let r = wm(&t, &["resume"]);
    expect_code(&r, 2);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("rb.rhai` cannot be found any more"), "{err}");
}

#[test]
fn editing_a_finished_step_stops_resume_unless_accepted_and_from_reruns_downstream() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "e", description: "d" });
           step("a", #{ run: |ctx| sh("echo a >> effects") });
           step("b", #{ after: "a", run: |ctx| sh("false") });"#,
    );
    assert_eq!(wm(&t, &["run", "rb.rhai"]).status.code(), Some(1));
    let edited = r#"runbook(#{ name: "e", description: "d" });
           step("a", #{ run: |ctx| sh("echo A >> effects") });
           step("b", #{ after: "a", run: |ctx| sh("true") });
           step("c", #{ after: "b", run: |ctx| sh("echo c >> effects") });"#;
    std::fs::write(t.path().join("rb.rhai"), edited).unwrap();
    let r = wm(&t, &["resume"]);
    assert_eq!(r.status.code(), Some(2));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("changed step `a` (already succeeded)") && err.contains("new step `c`"),
        "{err}"
    );
    assert!(err.contains("--accept-changes"), "{err}");
    let r = wm(&t, &["resume", "--accept-changes"]);
    expect_code(&r, 0);
    assert_eq!(
        std::fs::read_to_string(t.path().join("effects")).unwrap(),
        "a\nc\n",
        "a is not re-run"
    );
    let r = wm(&t, &["resume", "--from", "a", "--accept-changes"]);
    expect_code(&r, 0);
    assert_eq!(
        std::fs::read_to_string(t.path().join("effects")).unwrap(),
        "a\nc\nA\nc\n"
    );
}

// `waymark run rb.rhai`, killed with SIGKILL once `effects` says `start`.
fn kill_once_started(t: &Test) {
    t.kill_9_once(&["run", "rb.rhai"], "the step to start", || {
        t.read("effects").contains("start").then_some(())
    });
}

#[test]
fn rerun_decides_an_in_flight_step_the_other_way() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "r", description: "d" });
           step("slow", #{ run: |ctx| { sh("echo start >> effects"); sleep("30s"); } });"#,
    );
    kill_once_started(&t);
    let mut r = t
        .bare()
        .args(["resume", "--rerun", "slow"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(800));
    unsafe { libc::kill(r.id() as i32, libc::SIGINT) };
    assert_eq!(r.wait().unwrap().code(), Some(130));
    assert_eq!(
        std::fs::read_to_string(t.path().join("effects"))
            .unwrap()
            .matches("start")
            .count(),
        2
    );
}

#[test]
fn rollback_runs_undo_newest_first_and_ends_rolled_back() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "rb", description: "d" });
           step("one", #{ run: |ctx| sh("echo do-one >> effects"), undo: |ctx| sh("echo undo-one >> effects") });
           step("two", #{ after: "one", run: |ctx| { sh("echo do-two >> effects"); #{ was_enabled: ["p1", "p2"] } },
               undo: |ctx| sh(`echo undo-two restores ${ctx.outputs.two.was_enabled} >> effects`) });
           step("plain", #{ after: "two", run: |ctx| sh("echo do-plain >> effects") });"#,
    );
    assert!(wm(&t, &["run", "rb.rhai"]).status.success());
    let id = t.run_id();
    let r = wm(&t, &["rollback", &id]);
    assert_eq!(r.status.code(), Some(2), "rollback asks for --yes");
    let r = wm(&t, &["rollback", &id, "--yes"]);
    expect_code(&r, 1);
    let e = std::fs::read_to_string(t.path().join("effects")).unwrap();
    assert_eq!(
        e,
        "do-one\ndo-two\ndo-plain\nundo-two restores [p1, p2]\nundo-one\n"
    );
    let s = t.status();
    assert_eq!(s["status"], "rolled_back");
    assert_eq!(step(&s, "one")["state"], "rolled_back");
}

#[test]
fn a_secret_never_reaches_the_state_directory_or_any_output() {
    let secret = "S3cr3t-Pa55-xyzzy";
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "s", description: "d" });
           step("use", #{ run: |ctx| {
               let pw = secret("sql_password");
               log("connecting with " + pw);
               let r = sh("echo token=$PW; echo err=$PW >&2", #{ env: #{ PW: pw } });
               #{ echoed: r.stdout, pw: pw }
           } });
           step("boom", #{ after: "use", run: |ctx| fail("login failed for " + secret("sql_password")) });"#,
    );
    let o = wm_env(
        &t,
        &["run", "rb.rhai"],
        "WAYMARK_SECRET_SQL_PASSWORD",
        secret,
    );
    assert_eq!(o.status.code(), Some(1));
    let id = t.run_id();
    let mut all = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    for args in [
        vec!["status", "--json"],
        vec!["status"],
        vec!["log", id.as_str()],
    ] {
        let o = wm(&t, &args);
        all.push_str(&String::from_utf8_lossy(&o.stdout));
        all.push_str(&String::from_utf8_lossy(&o.stderr));
    }
    assert!(
        all.contains("[REDACTED]"),
        "redaction should be visible: {all}"
    );
    assert!(!all.contains(secret), "secret in output: {all}");
    for entry in walk(&t.path().join(".waymark")) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "secret found in {}",
            entry.display()
        );
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_gate_unanswered_within_its_timeout_is_rejected() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "t", description: "d" });
           gate("sim", #{ instructions: "Do it.", timeout: "500ms" });
           step("after", #{ after: "sim", run: |ctx| 1 });
           step("slow", #{ run: |ctx| sleep("2s") });"#,
    );
    let o = wm(&t, &["run", "rb.rhai"]);
    expect_code(&o, 1);
    let s = t.status();
    assert_eq!(step(&s, "sim")["state"], "rejected");
    assert!(
        step(&s, "sim")["error"]
            .as_str()
            .unwrap_or("")
            .contains("no approval within 500ms"),
        "{s}"
    );
    assert_eq!(step(&s, "after")["state"], "skipped");
}

// SPEC §5/§9: for a step caught in flight the check probe decides first, idempotent or
// not; the probe used to be skipped for idempotent steps, which re-ran them (for the
// team that reported it: an extra database restart).
#[test]
fn check_probe_was_ignored_for_an_interrupted_idempotent_step() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "p", description: "d" });
           step("slow", #{ idempotent: true,
               check: |ctx| { sh("echo probed >> effects"); true },
               run: |ctx| { sh("echo start >> effects"); sleep("3s"); } });
           step("next", #{ after: "slow", run: |ctx| sh("echo next >> effects") });"#,
    );
    kill_once_started(&t);
    let r = wm(&t, &["resume"]);
    expect_code(&r, 0);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("slow: was in flight; its check probe says it is done"),
        "{err}"
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("effects")).unwrap(),
        "start\nprobed\nnext\n",
        "the probe is asked and the step is not run again"
    );
    let s = t.status();
    assert_eq!(step(&s, "slow")["state"], "succeeded");
}

// SPEC §9: a step's fingerprint covers the functions its closures can call. An edit to
// an imported helper used by a finished step went unnoticed, and the refusal showed no
// diff; accepting it once makes it the definition later resumes compare with.
#[test]
fn an_edited_imported_helper_of_a_finished_step_went_unnoticed_on_resume() {
    let t = Test::new()
        .file(
            "lib/sql.rhai",
            "fn backup(db) { `echo backup ${db} >> effects` }\nfn unused() { 1 }\n",
        )
        .file(
            "rb.rhai",
            r#"import "lib/sql" as sql;
runbook(#{ name: "e", description: "d" });
step("a", #{ run: |ctx| sh(sql::backup("cmdb")) });
step("b", #{ after: "a", run: |ctx| sh("test -f fixed") });
"#,
        );
    expect_code(&wm(&t, &["run", "rb.rhai"]), 1);
    // Editing a function no step calls is not a change to any step.
    std::fs::write(
        t.path().join("lib/sql.rhai"),
        "fn backup(db) { `echo backup ${db} >> effects` }\nfn unused() { 2 }\n",
    )
    .unwrap();
    std::fs::write(t.path().join("fixed"), "").unwrap();
    std::fs::remove_file(t.path().join("fixed")).unwrap();
    let r = wm(&t, &["resume"]);
    expect_code(&r, 1);
    assert!(!String::from_utf8_lossy(&r.stderr).contains("changed step"));

    std::fs::write(
        t.path().join("lib/sql.rhai"),
        "fn backup(db) { `echo backup ${db} WITH COMPRESSION >> effects` }\nfn unused() { 2 }\n",
    )
    .unwrap();
    let r = wm(&t, &["resume"]);
    expect_code(&r, 2);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("changed step `a` (already succeeded)"),
        "{err}"
    );
    assert!(err.contains("fn backup/1 (lib/sql.rhai):"), "{err}");
    assert!(
        err.contains("-fn backup(db) { `echo backup ${db} >> effects` }")
            && err.contains("+fn backup(db) { `echo backup ${db} WITH COMPRESSION >> effects` }"),
        "a unified diff of the helper: {err}"
    );
    assert!(err.contains("--accept-changes"), "{err}");

    std::fs::write(t.path().join("fixed"), "").unwrap();
    expect_code(&wm(&t, &["resume", "--accept-changes"]), 0);
    assert_eq!(
        std::fs::read_to_string(t.path().join("effects")).unwrap(),
        "backup cmdb\n",
        "a is not re-run"
    );
}

// Changed option values are shown as values, closures as a diff.
#[test]
fn a_changed_finished_step_shows_its_option_values_and_closure_diff() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "e", description: "d" });
step("a", #{ timeout: "5m",
    run: |ctx| {
        sh("echo a >> effects");
    } });
step("b", #{ after: "a", run: |ctx| sh("false") });
"#,
    );
    expect_code(&wm(&t, &["run", "rb.rhai"]), 1);
    std::fs::write(
        t.path().join("rb.rhai"),
        r#"runbook(#{ name: "e", description: "d" });
step("a", #{ timeout: "10m",
    run: |ctx| {
        sh("echo A >> effects");
    } });
step("b", #{ after: "a", run: |ctx| sh("false") });
"#,
    )
    .unwrap();
    let r = wm(&t, &["resume"]);
    expect_code(&r, 2);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains(r#"timeout: "300000" → "600000""#), "{err}");
    assert!(
        err.contains(r#"-        sh("echo a >> effects");"#)
            && err.contains(r#"+        sh("echo A >> effects");"#),
        "{err}"
    );
}

const UNDOABLE: &str = r#"runbook(#{ name: "rb", description: "d" });
step("one", #{ run: |ctx| sh("echo do-one >> effects"), undo: |ctx| sh("echo undo-one >> effects") });
step("two", #{ after: "one", run: |ctx| sh("echo do-two >> effects"),
    undo: |ctx| sh("test -f fixed && echo undo-two >> effects") });
"#;

// Rollback carried on after a failed undo (the reporting team's standbys stayed down
// while it went on to the primary); a retried undo left status saying it failed.
#[test]
fn rollback_went_on_after_a_failed_undo_and_a_retry_still_showed_the_failure() {
    let t = Test::new().file("rb.rhai", UNDOABLE);
    expect_code(&wm(&t, &["run", "rb.rhai"]), 0);
    let id = t.run_id();
    let r = wm(&t, &["rollback", &id, "--yes"]);
    expect_code(&r, 1);
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(
        out.contains("incomplete: two failed to undo; it stopped there"),
        "{out}"
    );
    assert!(
        out.contains(&format!("waymark rollback {id} --yes")),
        "{out}"
    );
    assert_eq!(
        std::fs::read_to_string(t.path().join("effects")).unwrap(),
        "do-one\ndo-two\n",
        "one's undo did not run after two's failed"
    );
    assert_eq!(t.status()["status"], "failed");

    std::fs::write(t.path().join("fixed"), "").unwrap();
    expect_code(&wm(&t, &["rollback", &id, "--yes"]), 1);
    assert_eq!(
        std::fs::read_to_string(t.path().join("effects")).unwrap(),
        "do-one\ndo-two\nundo-two\nundo-one\n"
    );
    let s = t.status();
    assert_eq!(s["status"], "rolled_back");
    let two = step(&s, "two");
    assert_eq!(two["state"], "rolled_back");
    assert_eq!(
        two["error"],
        serde_json::Value::Null,
        "the final outcome, not the old error"
    );
    assert_eq!(two["undo_attempts"][0]["outcome"], "failed");
    assert_eq!(two["undo_attempts"][1]["outcome"], "succeeded");
    let text = String::from_utf8_lossy(&wm(&t, &["status", &id]).stdout).to_string();
    assert!(text.contains("undo attempts: failed"), "{text}");
    assert!(!text.contains("— undo failed"), "{text}");
    let log = String::from_utf8_lossy(&wm(&t, &["log", &id, "two"]).stdout).to_string();
    assert!(
        log.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("undo succeeded at"),
        "{log}"
    );
}

#[test]
fn keep_going_runs_every_undo_despite_a_failure() {
    let t = Test::new().file("rb.rhai", UNDOABLE);
    expect_code(&wm(&t, &["run", "rb.rhai"]), 0);
    let id = t.run_id();
    expect_code(&wm(&t, &["rollback", &id, "--yes", "--keep-going"]), 1);
    assert_eq!(
        std::fs::read_to_string(t.path().join("effects")).unwrap(),
        "do-one\ndo-two\nundo-one\n"
    );
}

// Rollback ran an `undo` edited since its step ran, without a word.
#[test]
fn rollback_ran_an_undo_edited_since_the_step_ran() {
    let t = Test::new().file("rb.rhai", UNDOABLE);
    expect_code(&wm(&t, &["run", "rb.rhai"]), 0);
    let id = t.run_id();
    std::fs::write(
        t.path().join("rb.rhai"),
        UNDOABLE.replace("echo undo-one", "echo UNDO-ONE"),
    )
    .unwrap();
    std::fs::write(t.path().join("fixed"), "").unwrap();
    let r = wm(&t, &["rollback", &id, "--yes"]);
    expect_code(&r, 2);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("the undo of these steps changed since they ran"),
        "{err}"
    );
    assert!(
        err.contains(r#"-sh("echo undo-one >> effects") });"#)
            && err.contains(r#"+sh("echo UNDO-ONE >> effects") });"#),
        "{err}"
    );
    assert!(err.contains("--accept-changes"), "{err}");
    assert!(!err.contains("`two`"), "two's undo is unchanged: {err}");
    assert_eq!(
        std::fs::read_to_string(t.path().join("effects")).unwrap(),
        "do-one\ndo-two\n",
        "nothing was undone"
    );
    expect_code(&wm(&t, &["rollback", &id, "--yes", "--accept-changes"]), 1);
    assert_eq!(t.status()["status"], "rolled_back");
}

#[test]
fn a_step_run_by_an_overloaded_function_is_not_changed_on_resume() {
    // Its fingerprint took the text of whichever overload Rhai's per-process hash order
    // listed last: a resume could call the finished step changed and stop.
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "ov", description: "d" });
fn f(ctx) { sh("echo f >> effects") }
fn f(ctx, x) { sh("echo two >> effects") }
fn f(ctx, x, y) { sh("echo three >> effects") }
step("s", #{ run: Fn("f") });
step("b", #{ after: "s", run: |ctx| sh("test -f fixed") });"#,
    );
    expect_code(&wm(&t, &["run", "rb.rhai"]), 1);
    std::fs::write(t.path().join("fixed"), "").unwrap();
    let r = wm(&t, &["resume"]);
    expect_code(&r, 0);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(!err.contains("changed"), "{err}");
    assert_eq!(
        std::fs::read_to_string(t.path().join("effects")).unwrap(),
        "f\n"
    );
    // And whichever process computes it, the fingerprint is the same.
    let fingerprints: std::collections::BTreeSet<String> = (0..6)
        .map(|_| {
            let o = wm(&t, &["plan", "rb.rhai", "--format", "json"]);
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            v["steps"][0]["fingerprint"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(fingerprints.len(), 1, "{fingerprints:?}");
}

// The run is chosen, locked and replayed on a second thread while the runbook loads:
// a run another process drives is still refused, with that reason and exit 2, and the
// driving process is untouched.
#[test]
fn resume_of_a_run_another_process_drives_is_refused_and_the_driver_goes_on() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "r", description: "d" });
step("slow", #{ run: |ctx| sh("touch started; sleep 3; echo done >> effects") });"#,
    );
    let mut driver = t
        .bare()
        .args(["run", "rb.rhai"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::harness::wait_until("the step to start", || {
        t.path().join("started").exists().then_some(())
    });
    let id = t.run_id();
    let r = wm(&t, &["resume", &id]);
    expect_code(&r, 2);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains(&format!("another waymark process is driving run {id}")),
        "{err}"
    );
    assert!(
        driver.wait().unwrap().success(),
        "the driver finished its run"
    );
    assert_eq!(t.read("effects"), "done\n");
}
