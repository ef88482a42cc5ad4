//! Gates run beside the other steps, never in front of them: a gate's `rehearse` in a lab
//! rehearsal is journaled like an attempt, an independent step does not wait for it,
//! Ctrl-C stops it and the gate's `timeout` bounds it.

use crate::harness::Test;
use std::time::{Duration, Instant};

const LAB: &str = r#"name = "gates"
driver = "lab"
lab_delay = "1ms"

[[server]]
name = "ns-01"
role = "ns"
sql = "sql-01"

[[server]]
name = "sql-01"
role = "sql"
"#;

/// A rehearsed gate declared before a step that does not depend on it.
fn beside(rehearse: &str, gate_options: &str) -> Test {
    let rb = format!(
        r#"runbook(#{{ name: "beside", description: "a gate beside a step" }});
           gate("sim-upgrade", #{{ instructions: "Upgrade in SIM.", rehearse: |ctx| {{ {rehearse} }}{gate_options} }});
           step("independent", #{{ run: |ctx| sh("echo independent >> effects") }});"#
    );
    Test::new().file("rb.rhai", &rb).file("lab.toml", LAB)
}

fn journal(t: &Test) -> Vec<serde_json::Value> {
    std::fs::read_to_string(t.run_dir().join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The `seq` of the first record of `kind` about `name`.
fn seq(records: &[serde_json::Value], kind: &str, name: &str) -> u64 {
    records
        .iter()
        .find(|r| r["type"] == kind && (r["step"] == name || r["gate"] == name))
        .and_then(|r| r["seq"].as_u64())
        .unwrap_or_else(|| panic!("no {kind} of {name} in {records:#?}"))
}

fn effects(t: &Test) -> Vec<String> {
    std::fs::read_to_string(t.path().join("effects"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

#[test]
fn an_independent_step_runs_while_a_gate_rehearses() {
    let t = beside(r#"sleep("4s"); sh("echo rehearsed >> effects");"#, "");
    let o = t
        .bare()
        .args(["run", "rb.rhai", "--yes", "--inventory", "lab.toml"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let j = journal(&t);
    // The rehearsal is on record before it acts, and the step that does not depend on the
    // gate started and finished while it ran.
    let rehearsal = seq(&j, "rehearsal_started", "sim-upgrade");
    let rehearsed = seq(&j, "rehearsal_ended", "sim-upgrade");
    assert!(seq(&j, "gate_waiting", "sim-upgrade") < rehearsal);
    assert!(
        seq(&j, "step_succeeded", "independent") < rehearsed,
        "{j:#?}"
    );
    assert!(rehearsed < seq(&j, "gate_approved", "sim-upgrade"));
    assert_eq!(effects(&t), ["independent", "rehearsed"]);
    assert_eq!(t.status()["status"], "succeeded");
}

#[test]
fn ctrl_c_stops_a_rehearsal() {
    let t = beside(
        r#"sh("echo rehearsing >> effects"); sleep("60s"); sh("echo rehearsed >> effects");"#,
        "",
    );
    let mut child = t
        .bare()
        .args(["run", "rb.rhai", "--yes", "--inventory", "lab.toml"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !effects(&t).contains(&"rehearsing".to_string()) {
        assert!(Instant::now() < deadline, "the rehearsal never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(
        !effects(&t).contains(&"rehearsed".to_string()),
        "the rehearsal went on after Ctrl-C: {:?}",
        effects(&t)
    );
    let j = journal(&t);
    seq(&j, "rehearsal_started", "sim-upgrade");
    assert!(
        !j.iter().any(|r| r["type"] == "rehearsal_ended"),
        "an interrupted rehearsal has no end on record: {j:#?}"
    );
    assert_eq!(t.status()["status"], "cancelled");
}

#[test]
fn a_rehearsal_longer_than_the_gate_timeout_rejects_the_gate() {
    let t = beside(
        r#"sleep("60s"); sh("echo rehearsed >> effects");"#,
        r#", timeout: "1s""#,
    );
    let o = t
        .bare()
        .args(["run", "rb.rhai", "--yes", "--inventory", "lab.toml"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(effects(&t), ["independent"]);
    let s = t.status();
    let gate = crate::harness::step(&s, "sim-upgrade");
    assert_eq!(gate["state"], "rejected", "{s:#}");
    assert!(
        gate["error"]
            .as_str()
            .is_some_and(|e| e.contains("did not finish within the gate's timeout of 1s")),
        "{s:#}"
    );
}
