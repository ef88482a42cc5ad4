//! `waymark log RUN STEP --follow` on a live run: every line, in order, then the end.

use crate::harness::Test;
use std::process::Stdio;
use std::time::{Duration, Instant};

#[test]
fn log_follow_prints_a_live_steps_lines_until_the_run_ends() {
    let rb = r#"
runbook(#{ name: "Slow" });
step("slow", #{ run: |ctx| {
    log("line 1");
    sleep("400ms");
    log("line 2");
    sleep("400ms");
    log("line 3");
    fail("bad end");
} });
"#;
    let t = Test::new().file("slow.rhai", rb);
    let mut run = t
        .bare()
        .args(["run", "slow.rhai", "--yes"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Follow as soon as the step has said something: the run is still going then.
    let started = Instant::now();
    let id = loop {
        let runs = t.path().join(".waymark/runs");
        let found = std::fs::read_dir(&runs)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok());
        if let Some(e) = found {
            if e.path().join("logs/slow.log").exists() {
                break e.file_name().into_string().unwrap();
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the step never logged"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let follow = t
        .bare()
        .args(["log", &id, "slow", "--follow"])
        .output()
        .unwrap();
    let run_ended = run.try_wait().unwrap();
    let _ = run.wait();
    assert!(
        run_ended.is_some(),
        "--follow returned while the run was still going"
    );
    assert_eq!(follow.status.code(), Some(0));
    let out = String::from_utf8_lossy(&follow.stdout);
    let at = |s: &str| out.find(s).unwrap_or_else(|| panic!("no {s:?} in {out}"));
    assert!(
        at("line 1") < at("line 2")
            && at("line 2") < at("line 3")
            && at("line 3") < at("error: bad end")
    );
    assert_eq!(out.matches("line 2").count(), 1, "{out}");
    let err = String::from_utf8_lossy(&follow.stderr);
    assert!(err.contains(&format!("run {id} failed")), "{err}");
}

#[test]
fn log_follow_of_a_finished_run_prints_what_is_there_and_returns() {
    let t = Test::new()
        .file(
            "q.rhai",
            "runbook(#{ name: \"q\" });\nstep(\"s\", #{ run: |ctx| log(\"hello <there>\") });\n",
        )
        .args(&["run", "q.rhai", "--yes"]);
    assert_eq!(t.run().code, 0);
    let id = t.run_id();
    let o = t.bare().args(["log", &id, "--follow"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("[s] ") && out.contains("hello <there>"),
        "{out}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not running"));
}
