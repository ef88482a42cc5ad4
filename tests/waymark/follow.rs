//! Watching a live run from another shell: `log RUN STEP --follow` (every line, in
//! order, then the end) and `status RUN --watch` (the events, then the end).

use crate::harness::Test;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// Start `run RUNBOOK --yes` and return it with its id once `step` has logged a line:
/// the run is still going then. The caller waits for the child it is handed.
#[allow(clippy::zombie_processes)]
fn run_until_logged(t: &Test, runbook: &str, step: &str) -> (Child, String) {
    let mut run = t
        .bare()
        .args(["run", runbook, "--yes"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        let runs = t.path().join(".waymark/runs");
        let found = std::fs::read_dir(&runs)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok());
        if let Some(e) = found {
            // A step's first lines go to the run's shared log, prefixed with its name.
            let logs = e.path().join("logs");
            let shared = std::fs::read_to_string(logs.join("shared.txt")).unwrap_or_default();
            let prefix = format!("{step} ");
            if shared.lines().any(|l| l.starts_with(&prefix))
                || logs.join(format!("{step}.log")).exists()
            {
                return (run, e.file_name().into_string().unwrap());
            }
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = run.kill();
            let _ = run.wait();
            panic!("{step} never logged");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

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
    let (mut run, id) = run_until_logged(&t, "slow.rhai", "slow");
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

#[test]
fn status_watch_shows_a_run_driven_elsewhere_until_it_ends() {
    let rb = r#"
runbook(#{ name: "Watched" });
let a = step("a", #{ run: |ctx| { log("a says"); sleep("500ms"); 1 } });
let b = step("b", #{ after: a, run: |ctx| { sleep("300ms"); 2 }, retries: 1, retry_delay: "10ms" });
step("c", #{ after: b, run: |ctx| 3 });
"#;
    let t = Test::new().file("w.rhai", rb);
    let (mut run, id) = run_until_logged(&t, "w.rhai", "a");
    let watch = t.bare().args(["status", &id, "--watch"]).output().unwrap();
    let run_ended = run.try_wait().unwrap();
    let _ = run.wait();
    assert!(
        run_ended.is_some(),
        "--watch returned while the run was still going"
    );
    assert_eq!(watch.status.code(), Some(0));
    // The status first, then the events that happened while watching, then the end.
    let out = String::from_utf8_lossy(&watch.stdout);
    assert!(out.contains(&format!("run {id}")), "{out}");
    let err = String::from_utf8_lossy(&watch.stderr);
    let at = |s: &str| err.find(s).unwrap_or_else(|| panic!("no {s:?} in {err}"));
    assert!(
        at("watching run") < at("▶ b") && at("▶ b") < at("✓ c"),
        "{err}"
    );
    assert!(
        err.trim_end().ends_with(&format!("run {id} succeeded")),
        "{err}"
    );
}
