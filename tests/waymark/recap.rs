//! What the operator reads at the end of a run and in the hints: warnings live, the recap,
//! and commands that work when pasted (with `--state-dir` whenever it is not the default).

use crate::harness::{expect_code, Test};

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const RB: &str = r#"runbook(#{ name: "r", description: "d" });
step("pre", #{ run: |ctx| { warn("only 9 GB free on D:"); log("checked disks"); 1 } });
step("bad", #{ after: "pre", run: |ctx| fail("disk full on ns01\nsecond line of detail") });
step("next", #{ after: "bad", run: |ctx| 2 });
"#;

#[test]
fn warnings_appear_live_and_the_recap_says_what_failed_and_what_to_type_next() {
    let t = Test::new().file("rb.rhai", RB);
    let o = t
        .bare()
        .args(["run", "rb.rhai", "--state-dir", "st"])
        .output()
        .unwrap();
    expect_code(&o, 1);
    let err = stderr(&o);
    let id = {
        let runs = t.path().join("st/runs");
        let e = std::fs::read_dir(runs).unwrap().next().unwrap().unwrap();
        e.file_name().to_string_lossy().into_owned()
    };
    let recap_at = err
        .find("── recap")
        .unwrap_or_else(|| panic!("no recap: {err}"));
    let (live, recap) = err.split_at(recap_at);
    assert!(
        live.contains("pre: only 9 GB free on D:"),
        "warn() is shown live: {live}"
    );
    assert!(
        !live.contains("checked disks"),
        "log() lines only with -v: {live}"
    );
    for want in [
        &format!("recap: run {id} failed after"),
        "1 succeeded · 1 failed · 1 skipped",
        "✗ bad: disk full on ns01\n",
        "warnings (1):",
        "! pre: only 9 GB free on D:",
        &format!("see what happened:  waymark log {id} bad --state-dir st"),
        &format!("after fixing it:    waymark resume {id} --state-dir st"),
    ] {
        assert!(
            recap.contains(want),
            "{want:?} missing from the recap:\n{recap}"
        );
    }
    assert!(
        !recap.contains("second line of detail"),
        "only the first error line: {recap}"
    );
}

#[test]
fn log_lines_are_shown_live_with_v() {
    let t = Test::new().file("rb.rhai", RB);
    let o = t.bare().args(["run", "rb.rhai", "-v"]).output().unwrap();
    expect_code(&o, 1);
    assert!(stderr(&o).contains("pre: checked disks"), "{}", stderr(&o));
}

#[cfg(unix)]
#[test]
fn the_crashed_run_hint_names_the_state_dir() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "c", description: "d" });
           step("long", #{ run: |ctx| sh("sleep 30") });"#,
    );
    let mut child = t
        .bare()
        .args(["run", "rb.rhai", "--state-dir", "st"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let log = t.path().join("st/runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let id = loop {
        assert!(std::time::Instant::now() < deadline, "run never started");
        let started = std::fs::read_dir(&log)
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| {
                let e = e.unwrap();
                let j = std::fs::read_to_string(e.path().join("journal.jsonl")).unwrap_or_default();
                (e.file_name().to_string_lossy().into_owned(), j)
            });
        if let Some((id, j)) = started {
            if j.contains("step_started") {
                break id;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let o = t
        .bare()
        .args(["status", &id, "--state-dir", "st"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains(&format!("waymark resume {id} --state-dir st")),
        "{out}"
    );
    let o = t
        .bare()
        .args(["status", "20990101-000000-0000", "--state-dir", "st"])
        .output()
        .unwrap();
    expect_code(&o, 2);
    assert!(
        stderr(&o).contains("`waymark runs --state-dir st`"),
        "{}",
        stderr(&o)
    );
}
