//! A closed stdout or stderr (`waymark list | head -1`) is not a crash: read-only commands
//! stop quietly, and a live run keeps running to its real end and exit code.

use crate::harness::Test;
use std::process::{Command, Stdio};

/// `c` with stdout (and with `both`, stderr) writing into a pipe nobody reads any more.
fn closed_pipe(c: &mut Command, both: bool) -> std::process::Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    if both {
        c.stderr(writer.try_clone().unwrap());
    } else {
        c.stderr(Stdio::piped());
    }
    c.stdout(writer);
    c.output().unwrap()
}

fn assert_no_panic(what: &str, o: &std::process::Output) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_ne!(o.status.code(), Some(101), "{what} panicked: {err}");
    assert!(!err.contains("panicked"), "{what}: {err}");
}

const RB: &str = r#"runbook(#{ name: "p", description: "d" });
step("a", #{ run: |ctx| { log("one"); 1 } });
gate("g", #{ after: "a", instructions: "Do it." });
step("b", #{ after: "g", run: |ctx| { sleep("300ms"); 2 } });
step("c", #{ after: "b", run: |ctx| sh("echo c >> effects") });
"#;

#[test]
fn list_status_log_plan_and_runs_into_a_closed_pipe_do_not_panic() {
    let t = Test::new().file("rb.rhai", RB);
    let o = t.bare().args(["run", "rb.rhai", "--yes"]).output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    let id = t.run_id();
    for args in [
        vec!["list"],
        vec!["status"],
        vec!["status", "--json"],
        vec!["runs"],
        vec!["log", &id],
        vec!["plan", "rb.rhai"],
        vec!["plan", "rb.rhai", "--format", "json"],
    ] {
        let o = closed_pipe(t.bare().args(&args), false);
        assert_no_panic(&args.join(" "), &o);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
    }
}

#[test]
fn a_live_run_whose_output_pipe_closes_runs_to_its_real_end() {
    // `waymark run RB --yes 2>&1 | head -1`: stdout and stderr both go into a closed pipe.
    let t = Test::new().file("rb.rhai", RB);
    let o = closed_pipe(t.bare().args(["run", "rb.rhai", "--yes"]), true);
    assert_eq!(o.status.code(), Some(0), "the run's real exit code");
    let s = t.status();
    assert_eq!(s["status"], "succeeded", "the journal is the record: {s}");
    assert_eq!(
        std::fs::read_to_string(t.path().join("effects")).unwrap(),
        "c\n",
        "the last step ran"
    );
}

#[test]
fn a_run_that_fails_into_a_closed_pipe_still_exits_1() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "p", description: "d" });
           step("bad", #{ run: |ctx| fail("disk full") });"#,
    );
    let o = closed_pipe(t.bare().args(["run", "rb.rhai"]), true);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(t.status()["status"], "failed");
}
