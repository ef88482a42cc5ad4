//! Crash consistency: kill -9 at every journal boundary and inside running steps, then
//! resume; finished steps' effects must have happened exactly once and the run must end
//! right. Also: a journal torn at every byte of its last record still resumes.

use crate::harness::{expect_code, Test};
use std::process::Output;

// Each step appends its name to `effects`; its check probe looks there, so a step caught
// in flight is decided by the probe and never needs an operator.
const RUNBOOK: &str = r#"runbook(#{ name: "crash", description: "effects exactly once" });
fn effect(name) { sh(`echo ${name} >> effects`); }
fn happened(name) { sh(`grep -qx ${name} effects 2>/dev/null`, #{ check: false }).code == 0 }
step("a", #{ run: |ctx| effect("a"), check: |ctx| happened("a") });
step("b", #{ after: "a", run: |ctx| effect("b"), check: |ctx| happened("b") });
step("c", #{ after: "a", run: |ctx| effect("c"), check: |ctx| happened("c") });
gate("ok", #{ after: ["b", "c"], instructions: "Approve." });
step("d", #{ after: "ok", run: |ctx| effect("d"), check: |ctx| happened("d") });
"#;

fn run(t: &Test, args: &[&str], crash_after: Option<u64>) -> Output {
    let mut c = t.bare();
    c.args(args);
    if let Some(n) = crash_after {
        c.env("WAYMARK_CRASH_AFTER_SEQ", n.to_string());
    }
    c.output().unwrap()
}

fn records(t: &Test) -> usize {
    let run = t.run_dir();
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .count()
}

fn effects(t: &Test) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_to_string(t.path().join("effects"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect();
    v.sort();
    v
}

#[test]
fn kill_9_at_every_journal_boundary_then_resume_does_each_effect_once() {
    let clean = Test::new().file("rb.rhai", RUNBOOK);
    let o = run(&clean, &["run", "rb.rhai", "--yes"], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let total = records(&clean) as u64;
    assert!(total >= 12, "expected a dozen records, got {total}");
    for n in 1..total {
        let t = Test::new().file("rb.rhai", RUNBOOK);
        let o = run(&t, &["run", "rb.rhai", "--yes"], Some(n));
        assert_eq!(
            o.status.code(),
            None,
            "crash point {n}: the run should have been killed"
        );
        let st = run(&t, &["status", "--json"], None);
        assert!(
            st.status.success(),
            "crash point {n}: status failed: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
        if v["status"] == "succeeded" {
            // Group commit put record n and the final record in one batch: the run had
            // finished when it was killed.
            assert_eq!(effects(&t), ["a", "b", "c", "d"], "crash point {n}");
            continue;
        }
        assert_eq!(v["status"], "crashed", "crash point {n}");
        let mut last = None;
        for _ in 0..3 {
            let r = run(&t, &["resume", "--yes"], None);
            last = Some(r.status.code());
            if r.status.success() {
                break;
            }
        }
        assert_eq!(
            last,
            Some(Some(0)),
            "crash point {n}: resume did not finish"
        );
        assert_eq!(
            effects(&t),
            ["a", "b", "c", "d"],
            "crash point {n}: each effect exactly once"
        );
        let st = run(&t, &["status", "--json"], None);
        let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
        assert_eq!(v["status"], "succeeded", "crash point {n}");
    }
}

#[test]
fn kill_9_inside_a_running_step_leaves_it_unknown_and_resume_finishes() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "mid", description: "d" });
           step("first", #{ run: |ctx| sh("echo first >> effects"), idempotent: true });
           step("slow", #{ after: "first", run: |ctx| { sh("echo slow-start >> effects"); sleep("30s"); } });
           step("last", #{ after: "slow", run: |ctx| sh("echo last >> effects"), idempotent: true });"#,
    );
    t.kill_9_once(&["run", "rb.rhai"], "slow to start", || {
        t.read("effects").contains("slow-start").then_some(())
    });
    let v: serde_json::Value =
        serde_json::from_slice(&run(&t, &["status", "--json"], None).stdout).unwrap();
    assert_eq!(v["status"], "crashed");
    assert_eq!(v["steps"][0]["state"], "succeeded");
    assert_eq!(v["steps"][1]["state"], "unknown");
    // Not idempotent, no probe: resume must ask, not guess.
    let r = run(&t, &["resume"], None);
    expect_code(&r, 3);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("--mark-done slow") && err.contains("--rerun slow"),
        "{err}"
    );
    // The operator checked: it did happen.
    let r = run(&t, &["resume", "--mark-done", "slow"], None);
    expect_code(&r, 0);
    let e = std::fs::read_to_string(t.path().join("effects")).unwrap();
    assert_eq!(
        e.matches("first").count(),
        1,
        "finished steps never run again: {e}"
    );
    assert_eq!(e.matches("last").count(), 1, "{e}");
}

#[test]
fn a_journal_torn_anywhere_in_its_last_record_still_resumes() {
    let t = Test::new().file("rb.rhai", RUNBOOK);
    assert!(run(&t, &["run", "rb.rhai", "--yes"], None).status.success());
    let run_dir = t.run_dir();
    let journal = run_dir.join("journal.jsonl");
    let full = std::fs::read(&journal).unwrap();
    let last_start = full[..full.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    for cut in last_start..full.len() {
        std::fs::write(&journal, &full[..cut]).unwrap();
        let st = run(&t, &["status", "--json"], None);
        assert!(
            st.status.success(),
            "cut {cut}: {}",
            String::from_utf8_lossy(&st.stderr)
        );
        let r = run(&t, &["resume", "--yes"], None);
        assert_eq!(
            r.status.code(),
            Some(0),
            "cut {cut}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        assert_eq!(
            effects(&t),
            ["a", "b", "c", "d"],
            "cut {cut}: nothing ran again"
        );
    }
}

// The last line of a finished run, and where it starts.
fn last_line(t: &Test) -> (std::path::PathBuf, Vec<u8>, usize) {
    let journal = t.run_dir().join("journal.jsonl");
    let full = std::fs::read(&journal).unwrap();
    let start = full[..full.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    (journal, full, start)
}

#[test]
fn complete_last_line_with_a_bad_checksum_was_truncated_as_a_torn_tail() {
    let t = Test::new().file("rb.rhai", RUNBOOK);
    assert!(run(&t, &["run", "rb.rhai", "--yes"], None).status.success());
    let (journal, mut bytes, start) = last_line(&t);
    // Bit rot inside the last record; its newline is intact.
    bytes[start + 5] ^= 0x01;
    std::fs::write(&journal, &bytes).unwrap();
    let id = t.run_id();
    for args in [
        &["status"][..],
        &["status", &id],
        &["resume", "--yes"],
        &["resume", &id],
    ] {
        let o = run(&t, args, None);
        let err = String::from_utf8_lossy(&o.stderr);
        expect_code(&o, 2);
        assert!(err.contains("checksum mismatch"), "{args:?}: {err}");
        assert!(!err.contains("torn"), "{args:?}: {err}");
    }
    let o = run(&t, &["runs"], None);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("checksum mismatch"),
        "the listing names the damage: {err}"
    );
    assert_eq!(std::fs::read(&journal).unwrap(), bytes, "nothing rewritten");
}

#[test]
fn torn_tail_warning_was_printed_twice_and_with_ansi_codes_into_a_pipe() {
    let t = Test::new().file("rb.rhai", RUNBOOK);
    assert!(run(&t, &["run", "rb.rhai", "--yes"], Some(8))
        .status
        .code()
        .is_none());
    let (journal, bytes, start) = last_line(&t);
    std::fs::write(&journal, &bytes[..start + 10]).unwrap();
    let st = run(&t, &["status"], None);
    let err = String::from_utf8_lossy(&st.stderr);
    assert_eq!(err.matches("torn").count(), 1, "{err}");
    assert!(!err.contains('\u{1b}'), "escape codes into a pipe: {err:?}");
    let r = run(&t, &["resume", "--yes"], None);
    expect_code(&r, 0);
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(err.matches("torn").count(), 1, "{err}");
    assert!(err.contains("cut it off"), "{err}");
    assert!(!err.contains('\u{1b}'), "escape codes into a pipe: {err:?}");
}

/// Whether process group `pgid` has a member that is not a zombie (this machine's init
/// may never reap them).
fn group_alive(pgid: i32) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let Some(close) = stat.rfind(')') else {
            return false;
        };
        let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        f.len() > 2 && f[2] == pgid.to_string() && f[0] != "Z"
    })
}

#[test]
fn orphan_of_a_killed_run_wrote_after_the_operator_looked() {
    // The direct child dies with waymark (Linux); the subshell in its group does not,
    // and would write `f` seconds after the crash: the double effect of the issue.
    // `started` is touched once the subshell exists.
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "orphans", description: "d" });
           step("slow", #{ run: |ctx| sh("(sleep 4; echo x >> f) & touch started; sleep 4; echo x >> f") });"#,
    );
    let pgid = t.kill_9_once(&["run", "rb.rhai"], "the process to start", || {
        let journal = t
            .path()
            .join(".waymark/runs")
            .read_dir()
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path().join("journal.jsonl"));
        let text = journal
            .and_then(|j| std::fs::read_to_string(j).ok())
            .unwrap_or_default();
        let started = t.path().join("started").exists();
        let line = text
            .lines()
            .find(|l| started && l.contains("\"process_started\""))?;
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        Some(v["pgid"].as_i64().unwrap() as i32)
    });
    let group_alive = || group_alive(pgid);
    assert!(group_alive(), "the step's processes outlived waymark");

    let st = run(&t, &["status"], None);
    let out = String::from_utf8_lossy(&st.stdout);
    assert!(
        out.contains(&format!("step slow: process group {pgid} is still running")),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&run(&t, &["status", "--json"], None).stdout).unwrap();
    assert_eq!(v["orphans"][0]["pgid"], pgid, "{v}");

    // Rollback must not race the attempt either.
    let id = t.run_id();
    let r = run(&t, &["rollback", &id, "--yes"], None);
    expect_code(&r, 3);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains(&format!("waymark rollback {id} --yes --kill-orphans")),
        "{err}"
    );

    // No terminal, no flag: stop before any decision, with the exact commands.
    let r = run(&t, &["resume"], None);
    expect_code(&r, 3);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("--kill-orphans") && err.contains("--wait-orphans"),
        "{err}"
    );
    assert!(err.contains(&format!("kill -TERM -- -{pgid}")), "{err}");
    assert!(
        !err.contains("--mark-done"),
        "no decision about the step yet: {err}"
    );
    assert!(group_alive());

    let r = run(&t, &["resume", "--kill-orphans"], None);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        !group_alive(),
        "resume --kill-orphans left the group: {err}"
    );
    // Only now is the operator asked about the step itself.
    expect_code(&r, 3);
    assert!(err.contains("--mark-done slow"), "{err}");
    assert!(
        !t.path().join("f").exists(),
        "the orphan wrote after the crash"
    );
    let st = run(&t, &["status"], None);
    assert!(!String::from_utf8_lossy(&st.stdout).contains("still running"));
}

#[test]
fn resume_wait_orphans_lets_the_first_attempt_finish_before_any_decision() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "orphans", description: "d" });
           step("slow", #{ run: |ctx| sh("(sleep 2; echo x >> f) & touch started; wait") });"#,
    );
    t.kill_9_once(&["run", "rb.rhai"], "the step to start", || {
        t.path().join("started").exists().then_some(())
    });
    let r = run(&t, &["resume", "--wait-orphans"], None);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("waiting for 1 process group(s) to end"),
        "{err}"
    );
    // The first attempt's effect happened, once, before the operator is asked.
    let f = std::fs::read_to_string(t.path().join("f")).unwrap_or_default();
    assert_eq!(f, "x\n", "{err}");
    expect_code(&r, 3);
    assert!(err.contains("--mark-done slow"), "{err}");
}

#[test]
fn another_host_never_judges_a_crashed_hosts_process_groups_by_its_own_proc() {
    // Two hosts sharing one state directory (team mode's situation, `WAYMARK_HOST` standing
    // in for the machines): host a crashes while its step's group runs; host b must not
    // call that group alive or gone, nor kill it, since b's /proc is not a's.
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "orphans", description: "d" });
           step("slow", #{ run: |ctx| sh("(sleep 60; echo x >> f) & touch started; wait") });"#,
    );
    let on = |host: &str, args: &[&str]| {
        t.bare()
            .args(args)
            .env("WAYMARK_HOST", host)
            .output()
            .unwrap()
    };
    let mut a = t
        .bare()
        .args(["run", "rb.rhai"])
        .env("WAYMARK_HOST", "a")
        .spawn()
        .unwrap();
    crate::harness::wait_until("the step's group to start", || {
        t.path().join("started").exists().then_some(())
    });
    unsafe { libc::kill(a.id() as i32, libc::SIGKILL) };
    let _ = a.wait();
    let v: serde_json::Value =
        serde_json::from_slice(&on("a", &["status", "--json"]).stdout).unwrap();
    let pgid = v["orphans"][0]["pgid"]
        .as_u64()
        .expect("host a sees its own group") as u32;
    let alive = || group_alive(pgid as i32);

    let st = on("b", &["status"]);
    let out = String::from_utf8_lossy(&st.stdout);
    assert!(
        out.contains(&format!(
            "step slow: process group(s) {pgid} were started on host a; from b waymark cannot tell whether they still run"
        )),
        "{out}"
    );
    assert!(!out.contains("is still running"), "{out}");
    let v: serde_json::Value =
        serde_json::from_slice(&on("b", &["status", "--json"]).stdout).unwrap();
    assert_eq!(v["orphans"], serde_json::json!([]), "{v}");
    assert_eq!(
        v["orphans_elsewhere"],
        serde_json::json!([{ "step": "slow", "host": "a", "pgids": [pgid] }])
    );

    // Asked to kill them, b refuses to touch pgids it cannot see and says what to do.
    let id = t.run_id();
    let r = on("b", &["resume", "--kill-orphans"]);
    expect_code(&r, 3);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("started on host a"), "{err}");
    assert!(
        err.contains(&format!("`waymark resume {id} --kill-orphans`")),
        "{err}"
    );
    assert!(
        err.contains(&format!("`waymark resume {id} --orphans-checked`")),
        "{err}"
    );
    assert!(
        !err.contains("--mark-done"),
        "no decision about the step yet: {err}"
    );
    assert!(alive(), "b acted on a group of host a");

    // On host a the group is found, and there it is dealt with.
    let r = on("a", &["resume", "--kill-orphans"]);
    expect_code(&r, 3);
    assert!(!alive(), "{}", String::from_utf8_lossy(&r.stderr));
    // b, told the groups were checked on a, goes on to the decision about the step.
    let r = on("b", &["resume", "--orphans-checked", "--mark-done", "slow"]);
    expect_code(&r, 0);
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("were checked there (--orphans-checked)"),
        "{err}"
    );
}

#[test]
fn a_process_is_journaled_after_its_steps_start_and_before_its_end_idempotent_or_not() {
    // Steps whose start is durable before they run have their `process_started` written
    // by the spawning thread itself; idempotent ones start as soon as their start is
    // handed over and go through the writer thread. Either way the journal must read
    // start, process, end for every attempt, whatever else interleaves.
    let mut rb = String::from("runbook(#{ name: \"order\", description: \"d\" });\n");
    for i in 0..24 {
        let idem = if i % 2 == 0 { "true" } else { "false" };
        rb.push_str(&format!(
            "step(\"s{i}\", #{{ idempotent: {idem}, run: |ctx| {{ exec(\"true\", []); exec(\"true\", []) }} }});\n"
        ));
    }
    let t = Test::new().file("rb.rhai", &rb);
    let o = run(&t, &["run", "rb.rhai", "--concurrency", "8"], None);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(t.run_dir().join("journal.jsonl")).unwrap();
    let mut seen: std::collections::HashMap<String, Vec<String>> = Default::default();
    for (n, line) in text.lines().enumerate() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["seq"], n as u64 + 1, "{line}");
        if let Some(step) = v["step"].as_str() {
            let kind = v["type"].as_str().unwrap().to_string();
            seen.entry(step.to_string()).or_default().push(kind);
        }
    }
    assert_eq!(seen.len(), 24, "{seen:?}");
    for (step, kinds) in seen {
        assert_eq!(
            kinds,
            [
                "step_started",
                "process_started",
                "process_started",
                "step_succeeded"
            ],
            "{step}"
        );
    }
}
