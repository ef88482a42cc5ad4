//! Approvals people can trust: who approved is the OS account (not `--by`, not `$USER`),
//! `--yes` is one approval by the starter, and `approve`/`reject` refuse at once what would
//! never count.

use crate::accounts::{share, OsUser};
use crate::harness::{expect_code, step, wait_until, Test};
use std::process::Output;

fn wm(t: &Test, args: &[&str]) -> Output {
    t.bare().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const TWO_PEOPLE: &str = r#"runbook(#{ name: "g", description: "d" });
step("before", #{ run: |ctx| sh("echo before >> effects"), idempotent: true });
gate("sim", #{ after: "before", title: "Upgrade in SIM", instructions: "Run SIM.\nCheck 7.6 shows.", approvals: 2, separate_approver: true });
step("after", #{ after: "sim", run: |ctx| sh("echo after >> effects"), idempotent: true });
"#;

const TWO_APPROVALS: &str = r#"runbook(#{ name: "g", description: "d" });
gate("sim", #{ instructions: "Do it.", approvals: 2 });"#;

/// A run of `script` paused at its gates, and its id.
fn paused_run(script: &str) -> (Test, String) {
    let t = Test::new().file("rb.rhai", script);
    expect_code(&wm(&t, &["run", "rb.rhai"]), 3);
    let id = t.run_id();
    (t, id)
}

fn accounts(s: &serde_json::Value, gate: &str) -> Vec<String> {
    step(s, gate)["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn by_is_a_display_name_and_two_approvals_need_two_os_accounts() {
    let (Some(alice), Some(bob)) = (
        OsUser::create("by_is_a_display_name_and_two_approvals_need_two_os_accounts"),
        OsUser::create("by_is_a_display_name_and_two_approvals_need_two_os_accounts"),
    ) else {
        return;
    };
    let t = Test::new().file("rb.rhai", TWO_PEOPLE);
    expect_code(&wm(&t, &["run", "rb.rhai"]), 3);
    let id = t.run_id();
    share(t.path());

    // The starter cannot approve a separate_approver gate, whatever name they give.
    let o = wm(&t, &["approve", &id, "sim", "--by", &alice.name]);
    expect_code(&o, 2);
    assert!(stderr(&o).contains("separate approver"), "{}", stderr(&o));

    // alice approves claiming to be bob: recorded as bob, account alice.
    let o = alice
        .waymark(t.path())
        .args(["approve", &id, "sim", "--by", &bob.name])
        .output()
        .unwrap();
    expect_code(&o, 0);
    assert!(stdout(&o).contains("1 of 2 approvals"), "{}", stdout(&o));
    // Her second approval, under yet another name, is refused: one per account.
    let o = alice
        .waymark(t.path())
        .args(["approve", &id, "sim", "--by", "carol"])
        .output()
        .unwrap();
    expect_code(&o, 2);
    assert!(stderr(&o).contains("already approved"), "{}", stderr(&o));

    let r = wm(&t, &["resume"]);
    expect_code(&r, 3);
    let s = t.status();
    assert_eq!(accounts(&s, "sim"), std::slice::from_ref(&alice.name));
    let a = &step(&s, "sim")["approvals"][0];
    assert_eq!(a["by"], bob.name.as_str(), "--by stays the display name");
    assert!(!a["host"].as_str().unwrap().is_empty());

    // No second `share`: the inbox alice created lets bob in too.
    let o = bob
        .waymark(t.path())
        .args(["approve", &id, "sim", "--note", "checked the console"])
        .output()
        .unwrap();
    expect_code(&o, 0);
    expect_code(&wm(&t, &["resume"]), 0);
    let s = t.status();
    assert_eq!(accounts(&s, "sim"), [alice.name.clone(), bob.name.clone()]);
    let e = std::fs::read_to_string(t.path().join("effects")).unwrap();
    assert_eq!(e, "before\nafter\n", "nothing ran twice");
}

#[test]
fn a_hand_written_inbox_item_counts_as_its_files_owner_not_the_account_it_claims() {
    let Some(mallory) = OsUser::create(
        "a_hand_written_inbox_item_counts_as_its_files_owner_not_the_account_it_claims",
    ) else {
        return;
    };
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "g", description: "d" });
           gate("sim", #{ instructions: "Do it.", separate_approver: true });"#,
    );
    expect_code(&wm(&t, &["run", "rb.rhai"]), 3);
    share(t.path());
    // mallory writes an approval file by hand claiming to be some other account.
    let inbox = t.run_dir().join("inbox");
    let item = serde_json::json!({
        "decision": "approve", "gate": "sim", "by": "root", "account": "someone-else",
        "host": "h", "plan_fingerprint": "x", "at": "2026-01-01T00:00:00.000Z"
    });
    let script = format!(
        "mkdir -p {0} && printf '%s' '{1}' > {0}/00000000000000000001-1-000000.json",
        inbox.display(),
        item
    );
    let mut sh = std::process::Command::new("/bin/sh");
    sh.args(["-c", &script]).current_dir(t.path());
    mallory.switch(&mut sh);
    let o = sh.output().unwrap();
    expect_code(&o, 0);
    expect_code(&wm(&t, &["resume"]), 0);
    let s = t.status();
    assert_eq!(accounts(&s, "sim"), std::slice::from_ref(&mallory.name));
}

#[test]
fn the_approver_is_the_os_account_whatever_user_and_logname_say() {
    let (t, id) = paused_run(TWO_APPROVALS);
    let o = t
        .bare()
        .args(["approve", &id, "sim"])
        .env("USER", "somebody-else")
        .env("LOGNAME", "somebody-else")
        .output()
        .unwrap();
    expect_code(&o, 0);
    // A second approval from the same account under another $USER is the same person.
    let o = t
        .bare()
        .args(["approve", &id, "sim"])
        .env("USER", "a-third-person")
        .output()
        .unwrap();
    expect_code(&o, 2);
    assert!(stderr(&o).contains("already approved"), "{}", stderr(&o));
    expect_code(&wm(&t, &["resume"]), 3);
    let s = t.status();
    let acc = accounts(&s, "sim");
    assert_eq!(acc.len(), 1);
    assert_ne!(acc[0], "somebody-else");
    assert!(!acc[0].starts_with("uid "), "{acc:?}");
}

#[test]
fn yes_is_one_approval_by_the_starter_and_cannot_pass_a_two_person_or_separate_gate() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "g", description: "d" });
           gate("two", #{ instructions: "Two people.", approvals: 2 });
           gate("other", #{ instructions: "Not the starter.", separate_approver: true });
           gate("plain", #{ instructions: "Anyone." });
           step("after-two", #{ after: "two", run: |ctx| 1 });
           step("after-plain", #{ after: "plain", run: |ctx| 2 });"#,
    );
    let o = wm(&t, &["run", "rb.rhai", "--yes", "--state-dir", "st"]);
    expect_code(&o, 3);
    let err = stderr(&o);
    let me = {
        let j = std::fs::read_to_string(
            std::fs::read_dir(t.path().join("st/runs"))
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path()
                .join("journal.jsonl"),
        )
        .unwrap();
        let first: serde_json::Value = serde_json::from_str(j.lines().next().unwrap()).unwrap();
        first["user"].as_str().unwrap().to_string()
    };
    assert!(
        err.contains(&format!("gate plain approved by {me} (--yes)")),
        "{err}"
    );
    assert!(err.contains("waymark approve "), "{err}");
    assert!(err.contains(" two --state-dir st"), "{err}");
    assert!(err.contains(" other --state-dir st"), "{err}");
    let s: serde_json::Value = serde_json::from_slice(
        &t.bare()
            .args(["status", "--json", "--state-dir", "st"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(step(&s, "plain")["state"], "approved");
    assert_eq!(step(&s, "after-plain")["state"], "succeeded");
    assert_eq!(step(&s, "two")["state"], "awaiting_approval");
    assert_eq!(accounts(&s, "two"), std::slice::from_ref(&me));
    assert_eq!(step(&s, "two")["approvals"][0]["note"], "--yes");
    assert_eq!(step(&s, "other")["state"], "awaiting_approval");
    assert!(accounts(&s, "other").is_empty());
    assert_eq!(step(&s, "after-two")["state"], "pending");

    let id = s["run_id"].as_str().unwrap().to_string();
    refused(
        &t,
        &["approve", &id, "plain", "--state-dir", "st"],
        "already approved",
    );

    // Resuming with --yes again adds nothing: the starter has given their one approval.
    let o = wm(&t, &["resume", "--yes", "--state-dir", "st"]);
    expect_code(&o, 3);
}

const ONE_GATE: &str = r#"runbook(#{ name: "g", description: "d" });
step("before", #{ run: |ctx| 1 });
gate("sim", #{ after: "before", title: "Upgrade in SIM", instructions: "Run SIM.\nCheck 7.6 shows.", separate_approver: true });
step("build", #{ run: |ctx| 2 });
"#;

fn refused(t: &Test, args: &[&str], why: &str) {
    let o = wm(t, args);
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains(why),
        "{args:?}: wanted {why:?} in {}",
        stderr(&o)
    );
    assert!(stdout(&o).is_empty(), "nothing recorded: {}", stdout(&o));
}

#[test]
fn approve_and_reject_refuse_at_once_what_would_never_count() {
    let t = Test::new().file("rb.rhai", ONE_GATE);
    expect_code(&wm(&t, &["run", "rb.rhai"]), 3);
    let id = t.run_id();
    refused(
        &t,
        &["approve", "20990101-000000-0000", "sim"],
        "no run `20990101-000000-0000`",
    );
    refused(&t, &["approve", &id, "smi"], "did you mean `sim`?");
    refused(&t, &["reject", &id, "nope"], "its gates: sim");
    refused(&t, &["approve", &id, "build"], "not a gate");
    // The starter on a separate_approver gate, whatever --by says.
    refused(
        &t,
        &["approve", &id, "sim", "--by", "someone-else"],
        "needs a separate approver",
    );
    // A rejection is allowed to anyone; after it, the gate is decided.
    expect_code(
        &wm(&t, &["reject", &id, "sim", "--note", "SIM shows errors"]),
        0,
    );
    refused(&t, &["reject", &id, "sim"], "already rejected");
    expect_code(&wm(&t, &["resume"]), 1);
    refused(&t, &["approve", &id, "sim"], "already rejected");
}

#[test]
fn approving_a_run_that_already_succeeded_is_refused_not_recorded() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "g", description: "d" });
           gate("sim", #{ instructions: "Do it." });"#,
    );
    expect_code(&wm(&t, &["run", "rb.rhai", "--yes"]), 0);
    let id = t.run_id();
    refused(&t, &["approve", &id, "sim"], "already succeeded");
    refused(&t, &["reject", &id, "sim"], "already succeeded");
    assert!(!t.run_dir().join("inbox").exists(), "nothing was handed in");
}

#[test]
fn a_repeat_approval_by_the_same_account_is_refused_even_before_the_run_picks_it_up() {
    let (t, id) = paused_run(TWO_APPROVALS);
    let o = wm(&t, &["approve", &id, "sim"]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("1 of 2 approvals"), "{}", stdout(&o));
    refused(
        &t,
        &["approve", &id, "sim", "--by", "another-name"],
        "already approved",
    );
    // Until the run picks it up, status shows it as handed in, not as missing.
    let text = stdout(&wm(&t, &["status", &id]));
    assert!(
        text.contains("handed in, not yet picked up") && text.contains("gate sim: approved by "),
        "{text}"
    );
    let s = t.status();
    assert_eq!(step(&s, "sim")["pending"][0]["decision"], "approve");
    assert!(step(&s, "sim")["approvals"].as_array().unwrap().is_empty());
    expect_code(&wm(&t, &["resume"]), 3);
    refused(&t, &["approve", &id, "sim"], "already approved");
}

#[test]
fn an_advance_approval_keeps_the_time_it_was_given() {
    // The gate comes after a slow step; the approval arrives while that step runs.
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "g", description: "d" });
           step("slow", #{ run: |ctx| sleep("2s") });
           gate("sim", #{ after: "slow", instructions: "Do it." });
           step("after", #{ after: "sim", run: |ctx| 1 });"#,
    );
    let mut child = t.bare().args(["run", "rb.rhai"]).spawn().unwrap();
    let id = wait_until("the run to start", || t.started_run(".waymark"));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let o = wm(&t, &["approve", &id, "sim", "--note", "CAB signed off"]);
    expect_code(&o, 0);
    assert!(stdout(&o).contains("advance approval"), "{}", stdout(&o));
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let s = t.status();
    let gate = step(&s, "sim");
    let given = gate["approvals"][0]["at"].as_str().unwrap().to_string();
    let slow_done = step(&s, "slow")["finished_at"]
        .as_str()
        .unwrap()
        .to_string();
    // RFC 3339 UTC strings of one format compare in time order.
    assert!(
        given < slow_done,
        "the approval was given at {given}, before the gate was reached at {slow_done}"
    );
}

#[test]
fn status_shows_a_waiting_gates_instructions_and_the_commands_to_decide_it() {
    let t = Test::new().file("rb.rhai", ONE_GATE);
    expect_code(&wm(&t, &["run", "rb.rhai", "--state-dir", "my state"]), 3);
    let o = wm(&t, &["status", "--state-dir", "my state"]);
    expect_code(&o, 0);
    let text = stdout(&o);
    for want in [
        "gate sim — Upgrade in SIM",
        "│ Run SIM.",
        "│ Check 7.6 shows.",
        "not by ",
        "approve: waymark approve ",
        " sim --state-dir 'my state' --note",
        "reject:  waymark reject ",
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
    let o = wm(&t, &["status", "--json", "--state-dir", "my state"]);
    let s: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let g = step(&s, "sim");
    assert_eq!(g["title"], "Upgrade in SIM");
    assert_eq!(g["instructions"], "Run SIM.\nCheck 7.6 shows.");
    assert_eq!(g["separate_approver"], true);
    assert!(g["commands"]["approve"]
        .as_str()
        .unwrap()
        .contains("--state-dir 'my state'"));
}
