//! `run`, `status`, `log` and `approve` through the binary: order, outcomes, exit codes.

use crate::harness::{step, wait_until, Test};
use std::time::{Duration, Instant};

fn started_order(t: &Test) -> Vec<String> {
    let run = t.run_dir();
    let text = std::fs::read_to_string(run.join("journal.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "step_succeeded")
        .map(|v| v["step"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_diamond_runs_each_step_once_in_dependency_order() {
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "d", description: "d" });
               step("a", #{ run: |ctx| sh("echo a >> trace") });
               step("b", #{ after: "a", run: |ctx| sh("echo b >> trace") });
               step("c", #{ after: "a", run: |ctx| sh("echo c >> trace") });
               step("d", #{ after: ["b", "c"], run: |ctx| { sh("echo d >> trace"); ctx.outputs.keys().len() } });"#,
        )
        .args(&["run", "rb.rhai"]);
    let o = t.run();
    assert_eq!(o.code, 0, "{o:?}");
    let trace = std::fs::read_to_string(t.path().join("trace")).unwrap();
    let lines: Vec<&str> = trace.lines().collect();
    assert_eq!(lines.len(), 4, "each step once: {trace}");
    assert_eq!(lines[0], "a");
    assert_eq!(lines[3], "d");
    let order = started_order(&t);
    assert_eq!(order.first().map(String::as_str), Some("a"));
    assert_eq!(order.last().map(String::as_str), Some("d"));
    let s = t.status();
    assert_eq!(s["status"], "succeeded");
    let d = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "d")
        .unwrap();
    assert_eq!(d["output"], 3, "d sees the outputs of all three ancestors");
    for key in [
        "run_id",
        "runbook",
        "status",
        "started_at",
        "finished_at",
        "steps",
    ] {
        assert!(s.get(key).is_some(), "status --json lacks {key}");
    }
}

#[test]
fn ctx_outputs_hold_ancestors_only_and_a_step_cannot_change_what_others_see() {
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "o", description: "d" });
               step("a", #{ run: |ctx| #{ n: 1, list: [1] } });
               step("side", #{ run: |ctx| "not an ancestor of c" });
               step("b", #{ after: "a", run: |ctx| {
                   ctx.outputs.a.n = 99;
                   ctx.outputs.a.list.push(2);
                   let mine = ctx.outputs.a;
                   mine.n = 7;
                   mine
               } });
               step("c", #{ after: "b", run: |ctx| ctx.outputs });"#,
        )
        .args(&["run", "rb.rhai", "--concurrency", "1"]);
    let o = t.run();
    assert_eq!(o.code, 0, "{o:?}");
    let s = t.status();
    assert_eq!(
        step(&s, "b")["output"],
        serde_json::json!({"n": 7, "list": [1, 2]}),
        "b changes its own copy"
    );
    assert_eq!(
        step(&s, "c")["output"],
        serde_json::json!({"a": {"n": 1, "list": [1]}, "b": {"n": 7, "list": [1, 2]}}),
        "c sees a as a returned it, b's output, and not `side`"
    );
}

#[test]
fn a_failure_stops_new_steps_but_always_and_failure_steps_run() {
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "f", description: "d" });
               step("bad", #{ run: |ctx| fail("disk full on ns01"), retries: 2, retry_delay: "10ms" });
               step("next", #{ after: "bad", run: |ctx| 1 });
               step("cleanup", #{ after: "bad", when: "always", run: |ctx| ctx.results.bad.state });
               step("alert", #{ after: "bad", when: "failure", run: |ctx| ctx.results.bad.error });
               step("later", #{ after: "cleanup", run: |ctx| 2 });"#,
        )
        .args(&["run", "rb.rhai"]);
    let o = t.run();
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("run ") && o.stderr.contains("failed: bad"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("waymark log "), "{}", o.stderr);
    assert!(
        o.stderr.contains("after fixing it:    waymark resume "),
        "{}",
        o.stderr
    );
    let s = t.status();
    let step = |n: &str| step(&s, n).clone();
    assert_eq!(step("bad")["state"], "failed");
    assert_eq!(step("bad")["attempts"], 3, "one attempt plus two retries");
    assert!(step("bad")["error"]
        .as_str()
        .unwrap()
        .contains("disk full on ns01"));
    assert_eq!(step("next")["state"], "skipped");
    assert_eq!(step("cleanup")["output"], "failed");
    assert!(step("alert")["output"]
        .as_str()
        .unwrap()
        .contains("disk full"));
    assert_eq!(
        step("later")["state"],
        "skipped",
        "fail-fast: no new success-steps after a failure; they are finished, not left pending"
    );
}

#[test]
fn fail_fast_left_the_always_report_after_a_patch_fan_out_pending_forever() {
    // An author's fan-out: five patch steps at --concurrency 1, one fails; the report
    // after all of them must still run, and the patches never started are skipped.
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "patch", description: "d" });
               let patches = [];
               for s in ["ss-1", "ss-2", "ss-3", "ss-4", "ss-5"] {
                   patches.push(step("patch:" + s, #{ run: |ctx| {
                       if ctx.step == "patch:ss-2" { throw "patch refused on ss-2"; }
                       "patched"
                   } }));
               }
               step("report", #{ after: patches, when: "always", run: |ctx| {
                   let states = [];
                   for k in ctx.results.keys() { states.push(k + "=" + ctx.results[k].state); }
                   states.sort();
                   states
               } });"#,
        )
        .args(&["run", "rb.rhai", "--concurrency", "1"]);
    let o = t.run();
    assert_eq!(o.code, 1, "{o:?}");
    let s = t.status();
    assert_eq!(s["status"], "failed");
    assert_eq!(step(&s, "patch:ss-1")["state"], "succeeded");
    assert_eq!(step(&s, "patch:ss-2")["state"], "failed");
    for n in ["patch:ss-3", "patch:ss-4", "patch:ss-5"] {
        let st = step(&s, n);
        assert_eq!(st["state"], "skipped", "{n}: {st}");
    }
    assert_eq!(step(&s, "report")["state"], "succeeded");
    assert_eq!(
        step(&s, "report")["output"],
        serde_json::json!([
            "patch:ss-1=succeeded",
            "patch:ss-2=failed",
            "patch:ss-3=skipped",
            "patch:ss-4=skipped",
            "patch:ss-5=skipped"
        ])
    );
    let journal = std::fs::read_to_string(t.run_dir().join("journal.jsonl")).unwrap();
    let skip = journal
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["type"] == "step_skipped" && v["step"] == "patch:ss-4")
        .expect("patch:ss-4 skipped in the journal");
    let reason = skip["reason"].as_str().unwrap();
    assert!(
        reason.contains("patch:ss-2") && reason.contains("not started"),
        "{reason}"
    );
    // The skipped patches are not lost: resume runs them once the failure is fixed.
    let text = std::fs::read_to_string(t.path().join("rb.rhai"))
        .unwrap()
        .replace(
            "if ctx.step == \"patch:ss-2\" { throw \"patch refused on ss-2\"; }",
            "",
        );
    std::fs::write(t.path().join("rb.rhai"), text).unwrap();
    let r = t
        .bare()
        .args(["resume", &t.run_id(), "--accept-changes"])
        .output()
        .unwrap();
    crate::harness::expect_code(&r, 0);
    let s = t.status();
    for n in ["patch:ss-2", "patch:ss-3", "patch:ss-4", "patch:ss-5"] {
        assert_eq!(step(&s, n)["state"], "succeeded", "{n}");
    }
}

#[test]
fn a_timeout_fails_the_step_and_kills_its_process_tree() {
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "t", description: "d" });
               step("hang", #{ run: |ctx| sh("sleep 60 & echo $! > child.pid; sleep 60; wait"), timeout: "300ms" });"#,
        )
        .args(&["run", "rb.rhai"]);
    let o = t.run();
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stderr.contains("timed out"), "{}", o.stderr);
    let pid: i32 = std::fs::read_to_string(t.path().join("child.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let alive = !stat.is_empty() && !stat.contains(") Z ");
    assert!(
        !alive,
        "the backgrounded grandchild {pid} survived the timeout"
    );
}

#[test]
fn a_gate_without_a_terminal_pauses_with_exit_3_and_prints_the_approve_command() {
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "g", description: "d" });
               gate("sim", #{ title: "Upgrade in SIM", instructions: "Do it." });
               step("after", #{ after: "sim", run: |ctx| 1 });
               step("independent", #{ run: |ctx| 2 });"#,
        )
        .args(&["run", "rb.rhai"]);
    let o = t.run();
    assert_eq!(o.code, 3, "{o:?}");
    assert!(
        o.stderr.contains("waymark approve ") && o.stderr.contains(" sim"),
        "{}",
        o.stderr
    );
    let s = t.status();
    assert_eq!(s["status"], "paused");
    let step = |n: &str| step(&s, n).clone();
    assert_eq!(
        step("independent")["state"],
        "succeeded",
        "independent branches run while a gate waits"
    );
    assert_eq!(step("sim")["state"], "awaiting_approval");
    assert_eq!(step("after")["state"], "pending");
}

#[test]
fn yes_approves_gates_as_the_current_user() {
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "g", description: "d" });
               gate("sim", #{ instructions: "Do it." });
               step("after", #{ after: "sim", run: |ctx| 1 });"#,
        )
        .args(&["run", "rb.rhai", "--yes"]);
    assert_eq!(t.run().code, 0);
    let s = t.status();
    let sim = &s["steps"][0];
    assert_eq!(sim["state"], "approved");
    assert_eq!(sim["approvals"].as_array().unwrap().len(), 1);
}

#[test]
fn an_approval_from_another_shell_reaches_the_running_process() {
    // The run stays live while a slow independent step runs; the approval arrives meanwhile.
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "g", description: "d" });
           gate("sim", #{ instructions: "Do it." });
           step("after", #{ after: "sim", run: |ctx| 1 });
           step("slow", #{ run: |ctx| sleep("3s") });"#,
    );
    let mut child = t.bare().args(["run", "rb.rhai"]).spawn().unwrap();
    let run_id = wait_until("the run to start", || t.started_run(".waymark"));
    std::thread::sleep(Duration::from_millis(500));
    let a = t
        .bare()
        .args([
            "approve",
            &run_id,
            "sim",
            "--by",
            "alice",
            "--note",
            "done in SIM",
        ])
        .output()
        .unwrap();
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    let s = t.status();
    assert_eq!(s["status"], "succeeded");
    assert_eq!(s["steps"][0]["approvals"][0]["by"], "alice");
    assert_eq!(s["steps"][0]["approvals"][0]["note"], "done in SIM");
}

#[cfg(unix)]
#[test]
fn ctrl_c_cancels_kills_the_step_and_exits_130() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "c", description: "d" });
           step("long", #{ run: |ctx| sh("sleep 60") });"#,
    );
    let mut child = t.bare().args(["run", "rb.rhai"]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert!(Instant::now() < deadline, "step never started");
        let logs = t.path().join(".waymark/runs");
        let started = std::fs::read_dir(&logs)
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| {
                std::fs::read_to_string(e.unwrap().path().join("journal.jsonl")).unwrap_or_default()
            })
            .is_some_and(|j| j.contains("step_started"));
        if started {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    let s = t.status();
    assert_eq!(s["status"], "cancelled");
    assert_eq!(
        s["steps"][0]["state"], "unknown",
        "an interrupted step is neither done nor failed"
    );
}

#[test]
fn status_of_an_unknown_run_exits_2() {
    let o = Test::new().args(&["status", "nope"]).run();
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("no run `nope`"), "{}", o.stderr);
}

#[test]
fn a_second_process_cannot_drive_a_live_run() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "l", description: "d" });
           step("slow", #{ run: |ctx| sleep("3s") });"#,
    );
    let mut child = t.bare().args(["run", "rb.rhai"]).spawn().unwrap();
    wait_until("the run to start", || t.started_run(".waymark"));
    std::thread::sleep(Duration::from_millis(300));
    let id = t.run_id();
    let o = t.bare().args(["resume", &id]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("another waymark process"), "{err}");
    assert_eq!(child.wait().unwrap().code(), Some(0));
}

#[test]
fn a_timeout_interrupts_a_closure_stuck_in_a_script_loop() {
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "loop", description: "d" });
               step("spin", #{ run: |ctx| { let i = 0; loop { i += 1; } }, timeout: "300ms" });"#,
        )
        .args(&["run", "rb.rhai"]);
    let o = t.run();
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("spin FAILED: timed out after 300ms"),
        "{}",
        o.stderr
    );
}

#[test]
fn many_logging_steps_do_not_each_keep_a_file_open() {
    // With a low descriptor limit, one open log per finished step would fail the run.
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "fds", description: "d" });
           for i in 0..300 { step(`s${i}`, #{ run: |ctx| exec("true", []) }); }"#,
    );
    let o = t
        .bare()
        .args(["run", "rb.rhai", "--concurrency", "8"])
        .pre_exec_nofile(128)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!String::from_utf8_lossy(&o.stderr).contains("Too many open files"));
}

trait NoFile {
    fn pre_exec_nofile(&mut self, n: u64) -> &mut Self;
}

impl NoFile for std::process::Command {
    fn pre_exec_nofile(&mut self, n: u64) -> &mut Self {
        use std::os::unix::process::CommandExt;
        // SAFETY: setrlimit is async-signal-safe and touches only this child.
        unsafe {
            self.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: n,
                    rlim_max: n,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            })
        }
    }
}
