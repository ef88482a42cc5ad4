//! Step logs as `waymark log` shows them: every line a step wrote, in order, whether it
//! stayed in the run's shared log file or outgrew it into a file of its own, across
//! retries, and after a kill -9 once the step had finished.

use crate::harness::{expect_code, Test};

/// `noisy` writes a line, then well over the shared file's 8 KiB (300 lines from a
/// child), then another; its first attempt fails, so the retry's lines follow.
const RUNBOOK: &str = r#"runbook(#{ name: "logs", description: "small and large step logs" });
step("quiet", #{ run: |ctx| log("the only line") });
step("noisy", #{ retries: 1, retry_delay: "10ms", run: |ctx| {
    log("begin " + ctx.attempt);
    exec("sh", ["-c", "i=0; while [ $i -lt 300 ]; do echo out-$i-................................; i=$((i+1)); done"]);
    log("end " + ctx.attempt);
    if ctx.attempt == 1 { fail("first attempt fails") }
}});
step("silent", #{ run: |ctx| () });
step("last", #{ after: ["quiet", "noisy", "silent"], run: |ctx| log("after the others") });
"#;

/// The `[log]` and `[stdout]` lines of `waymark log RUN STEP`, without timestamps.
fn lines(t: &Test, id: &str, step: &str) -> Vec<String> {
    let o = t.bare().args(["log", id, step]).output().unwrap();
    expect_code(&o, 0);
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest.to_string()))
        .filter(|l| l.starts_with("[log] ") || l.starts_with("[stdout] "))
        .collect()
}

fn attempt(n: u32) -> Vec<String> {
    let mut v = vec![format!("[log] begin {n}")];
    v.extend((0..300).map(|i| format!("[stdout] out-{i}-................................")));
    v.push(format!("[log] end {n}"));
    v
}

#[test]
fn log_shows_every_line_of_small_and_large_step_logs_in_order_across_a_retry() {
    let t = Test::new().file("rb.rhai", RUNBOOK);
    let o = t.bare().args(["run", "rb.rhai"]).output().unwrap();
    expect_code(&o, 0);
    let id = t.run_id();
    assert_eq!(lines(&t, &id, "quiet"), ["[log] the only line"]);
    assert_eq!(lines(&t, &id, "noisy"), [attempt(1), attempt(2)].concat());
    assert_eq!(lines(&t, &id, "last"), ["[log] after the others"]);
    let silent = t.bare().args(["log", &id, "silent"]).output().unwrap();
    expect_code(&silent, 0);
    assert_eq!(
        String::from_utf8_lossy(&silent.stdout).trim(),
        "(no log lines for silent)"
    );
    // Every step's log at once: each under its name, in the same order.
    let all = t.bare().args(["log", &id]).output().unwrap();
    expect_code(&all, 0);
    let all = String::from_utf8_lossy(&all.stdout);
    let at = |s: &str| all.find(s).unwrap_or_else(|| panic!("no {s:?} in {all}"));
    assert!(at("== quiet") < at("the only line"));
    assert!(at("== noisy") < at("begin 1") && at("begin 1") < at("out-299-"));
    assert!(at("end 1") < at("begin 2") && all.rfind("out-299-") < Some(at("end 2")));
    assert!(!all.contains("== silent"), "{all}");
    // `--follow` of a finished run prints the same lines.
    let follow = t
        .bare()
        .args(["log", &id, "noisy", "--follow"])
        .output()
        .unwrap();
    expect_code(&follow, 0);
    let followed: Vec<String> = String::from_utf8_lossy(&follow.stdout)
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest.to_string()))
        .filter(|l| l.starts_with("[log] ") || l.starts_with("[stdout] "))
        .collect();
    assert_eq!(followed, lines(&t, &id, "noisy"));
}

#[test]
fn a_finished_steps_log_survives_a_kill_9_of_waymark() {
    let rb = r#"runbook(#{ name: "killed", description: "kill -9 after a step" });
step("a", #{ run: |ctx| { log("one"); exec("sh", ["-c", "echo two"]); log("three") } });
step("b", #{ after: "a", run: |ctx| log("b ran") });
"#;
    let clean = Test::new().file("rb.rhai", rb);
    expect_code(&clean.bare().args(["run", "rb.rhai"]).output().unwrap(), 0);
    let journal = std::fs::read_to_string(clean.run_dir().join("journal.jsonl")).unwrap();
    let a_done = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["type"] == "step_succeeded" && r["step"] == "a")
        .unwrap_or_else(|| panic!("no step_succeeded for a in {journal}"))["seq"]
        .as_u64()
        .unwrap();
    let t = Test::new().file("rb.rhai", rb);
    let o = t
        .bare()
        .args(["run", "rb.rhai"])
        .env("WAYMARK_CRASH_AFTER_SEQ", a_done.to_string())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), None, "the run should have been killed");
    assert_eq!(
        lines(&t, &t.run_id(), "a"),
        ["[log] one", "[stdout] two", "[log] three"]
    );
}
