//! Team mode as a team would use it: the state in a real PostgreSQL, commands from
//! several "hosts" (`WAYMARK_HOST`) and processes against the same database. One file
//! over 600 lines: the scenarios share their runbooks and helpers, and each reads as
//! one story of a team's night.

use crate::harness::{expect_code, step, wait_until, Test};
use crate::pg;
use std::process::{Child, Output, Stdio};

const GATED: &str = r#"runbook(#{ name: "g", description: "d" });
step("before", #{ run: |ctx| { log("doing before"); sh("echo before >> effects") } });
gate("sim", #{ after: "before", title: "Upgrade in SIM", instructions: "Run SIM." });
step("after", #{ after: "sim", run: |ctx| sh("echo after >> effects") });
"#;

fn wm(t: &Test, url: &str, host: &str, args: &[&str]) -> Output {
    t.bare()
        .args(args)
        .args(["--state-dir", url])
        .env("WAYMARK_HOST", host)
        .output()
        .unwrap()
}

/// `waymark run rb.rhai` against `url` in the background, as host `host` (the machine's
/// own name when `None`), with `env` added and its stderr going to `stderr`.
pub(crate) fn spawn_run(
    t: &Test,
    url: &str,
    host: Option<&str>,
    env: &[(&str, &str)],
    stderr: Stdio,
) -> Child {
    let mut cmd = t.bare();
    cmd.args(["run", "rb.rhai", "--state-dir", url]);
    if let Some(h) = host {
        cmd.env("WAYMARK_HOST", h);
    }
    cmd.envs(env.iter().copied())
        .stderr(stderr)
        .spawn()
        .unwrap()
}

/// Wait until the runbook's first step has touched the file `started`.
fn wait_started(t: &Test, what: &str) {
    wait_until(what, || t.path().join("started").exists().then_some(()));
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn status(t: &Test, url: &str, run: &str) -> serde_json::Value {
    let o = wm(t, url, "c", &["status", run, "--json"]);
    expect_code(&o, 0);
    serde_json::from_slice(&o.stdout).unwrap()
}

/// Host b cannot see host a's processes, so it stops before any decision and names them;
/// the operator kills them "on host a" (the same machine here) and tells b so. Returns b's
/// refusal.
fn kill_on_a_what_b_cannot_see(t: &Test, url: &str, id: &str, refused: Output) -> Output {
    expect_code(&refused, 3);
    let e = text(&refused);
    assert!(
        e.contains("started on host a") && e.contains("--orphans-checked"),
        "{e}"
    );
    let v = status(t, url, id);
    assert_eq!(v["orphans"], serde_json::json!([]), "{v}");
    let groups = v["orphans_elsewhere"]
        .as_array()
        .expect("groups on a")
        .clone();
    assert!(!groups.is_empty(), "{v}");
    for g in &groups {
        assert_eq!(g["host"], "a", "{v}");
        for pgid in g["pgids"].as_array().unwrap() {
            unsafe { libc::kill(-(pgid.as_i64().unwrap() as i32), libc::SIGKILL) };
        }
    }
    refused
}

fn latest_run(t: &Test, url: &str) -> String {
    let o = wm(t, url, "c", &["runs", "--json"]);
    expect_code(&o, 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array().unwrap().last().unwrap()["run_id"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_run_paused_on_one_host_is_approved_from_another_and_resumed_from_a_third() {
    let Some((_c, _db, url)) =
        pg::database("a_run_paused_on_one_host_is_approved_from_another_and_resumed_from_a_third")
    else {
        return;
    };
    let t = Test::new().file("rb.rhai", GATED);
    expect_code(&wm(&t, &url, "a", &["run", "rb.rhai"]), 3);
    let id = latest_run(&t, &url);
    // Nothing of the run is on this machine's disk: it is all in the database.
    assert!(!t.path().join(".waymark").exists());
    let s = status(&t, &url, &id);
    assert_eq!(step(&s, "before")["state"], "succeeded");
    assert_eq!(step(&s, "sim")["state"], "awaiting_approval");
    // The hint names the database, so an approver elsewhere can paste it.
    let cmd = step(&s, "sim")["commands"]["approve"].as_str().unwrap();
    assert!(cmd.contains(&format!("--state-dir {url}")), "{cmd}");

    let o = wm(&t, &url, "c", &["approve", &id, "sim", "--note", "checked"]);
    expect_code(&o, 0);
    let o = wm(&t, &url, "b", &["resume", &id]);
    expect_code(&o, 0);
    assert_eq!(t.read("effects"), "before\nafter\n");

    let s = status(&t, &url, &id);
    assert_eq!(s["status"], "succeeded");
    // The approver's account is the database role the server authenticated.
    assert_eq!(step(&s, "sim")["approvals"][0]["account"], "postgres");
    assert_eq!(step(&s, "sim")["approvals"][0]["note"], "checked");
    // Step logs are in the database too.
    let o = wm(&t, &url, "c", &["log", &id, "before"]);
    expect_code(&o, 0);
    assert!(text(&o).contains("[log] doing before"), "{}", text(&o));
}

#[test]
fn a_second_host_is_refused_while_the_lease_is_live_with_holder_and_expiry() {
    let Some((_c, _db, url)) =
        pg::database("a_second_host_is_refused_while_the_lease_is_live_with_holder_and_expiry")
    else {
        return;
    };
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "slow", description: "d" });
step("wait", #{ run: |ctx| sh("touch started; sleep 5") });"#,
    );
    let mut a = spawn_run(&t, &url, Some("host-a"), &[], Stdio::inherit());
    wait_started(&t, "the step started");
    let id = latest_run(&t, &url);
    let o = wm(&t, &url, "host-b", &["resume", &id]);
    expect_code(&o, 2);
    let e = text(&o);
    assert!(e.contains("host-a") && e.contains("expires at"), "{e}");
    assert!(a.wait().unwrap().success());
    let s = status(&t, &url, &id);
    assert_eq!(s["status"], "succeeded");
}

#[test]
fn a_driver_killed_on_one_host_is_finished_by_another_with_every_step_once() {
    let Some((_c, _db, url)) =
        pg::database("a_driver_killed_on_one_host_is_finished_by_another_with_every_step_once")
    else {
        return;
    };
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "k", description: "d" });
step("one", #{ run: |ctx| sh("echo one >> effects") });
step("two", #{ after: "one", run: |ctx| sh("echo two >> effects; touch started; sleep 30") });
step("three", #{ after: "two", run: |ctx| sh("echo three >> effects") });"#,
    );
    let lease = [("WAYMARK_LEASE", "2s")];
    let mut a = spawn_run(&t, &url, Some("a"), &lease, Stdio::inherit());
    wait_started(&t, "step two started");
    unsafe { libc::kill(a.id() as i32, libc::SIGKILL) };
    let _ = a.wait();
    // Its step's process is still sleeping on host a: once the lease of the dead driver
    // has run out, b says it cannot tell, the operator kills it on a and tells b so.
    let id = latest_run(&t, &url);
    let refused = wait_until("the dead driver's lease expired", || {
        let o = t
            .bare()
            .args(["resume", &id, "--kill-orphans", "--rerun", "two"])
            .args(["--state-dir", &url])
            .env("WAYMARK_HOST", "b")
            .envs(lease)
            .output()
            .unwrap();
        (o.status.code() != Some(2) || !text(&o).contains("expires at")).then_some(o)
    });
    kill_on_a_what_b_cannot_see(&t, &url, &id, refused);
    let resumed = t
        .bare()
        .args(["resume", &id, "--orphans-checked", "--rerun", "two"])
        .args(["--state-dir", &url])
        .env("WAYMARK_HOST", "b")
        .envs(lease)
        .output()
        .unwrap();
    // `two` runs again (its effect happened in full or not, and --rerun says so); the
    // others exactly once.
    let _ = resumed;
    let effects = t.read("effects");
    assert_eq!(effects.matches("one").count(), 1, "{effects}");
    assert_eq!(effects.matches("three").count(), 1, "{effects}");
    let s = status(&t, &url, &id);
    assert_eq!(s["status"], "succeeded", "{s}");
}

#[cfg(unix)]
#[test]
fn a_stopped_driver_woken_after_another_host_took_over_is_fenced() {
    let Some((_c, _db, url)) =
        pg::database("a_stopped_driver_woken_after_another_host_took_over_is_fenced")
    else {
        return;
    };
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "f", description: "d" });
step("one", #{ run: |ctx| sh("touch started; sleep 3; echo one >> effects"), idempotent: true });
step("two", #{ after: "one", run: |ctx| sh("echo two >> effects") });"#,
    );
    let lease = [("WAYMARK_LEASE", "2s")];
    let a = spawn_run(&t, &url, Some("a"), &lease, Stdio::piped());
    wait_started(&t, "step one started");
    unsafe { libc::kill(a.id() as i32, libc::SIGSTOP) };
    let id = latest_run(&t, &url);
    let refused = wait_until("a's lease expired", || {
        let o = t
            .bare()
            .args(["resume", &id, "--rerun", "one", "--kill-orphans"])
            .args(["--state-dir", &url])
            .env("WAYMARK_HOST", "b")
            .envs(lease)
            .output()
            .unwrap();
        (!text(&o).contains("expires at")).then_some(o)
    });
    kill_on_a_what_b_cannot_see(&t, &url, &id, refused);
    let b = t
        .bare()
        .args(["resume", &id, "--rerun", "one", "--orphans-checked"])
        .args(["--state-dir", &url])
        .env("WAYMARK_HOST", "b")
        .envs(lease)
        .output()
        .unwrap();
    expect_code(&b, 0);
    unsafe { libc::kill(a.id() as i32, libc::SIGCONT) };
    let out = a.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains(&format!("lost ownership of run {id} to b")),
        "{e}"
    );
    let s = status(&t, &url, &id);
    assert_eq!(s["status"], "succeeded");
    // The fenced driver wrote nothing after waking: `two` ran once, by b.
    assert_eq!(t.read("effects").matches("two").count(), 1);
}

#[test]
fn a_server_restart_mid_run_loses_nothing() {
    let Some(c) = pg::own_cluster("a_server_restart_mid_run_loses_nothing") else {
        return;
    };
    let url = c.database("restart");
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "r", description: "d" });
step("one", #{ run: |ctx| sh("touch started; sleep 2; echo one >> effects") });
step("two", #{ after: "one", run: |ctx| sh("echo two >> effects") });"#,
    );
    let a = spawn_run(&t, &url, Some("a"), &[], Stdio::piped());
    wait_started(&t, "step one started");
    c.restart(std::time::Duration::from_secs(1));
    let out = a.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(t.read("effects"), "one\ntwo\n");
    let id = latest_run(&t, &url);
    assert_eq!(status(&t, &url, &id)["status"], "succeeded");
}

#[test]
fn lab_show_and_reset_work_against_the_database() {
    let Some((_c, _db, url)) = pg::database("lab_show_and_reset_work_against_the_database") else {
        return;
    };
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "l", description: "d" });
step("check", #{ run: |ctx| ns_version("ns-hq") });"#,
    );
    let o = wm(&t, &url, "a", &["run", "rb.rhai"]);
    expect_code(&o, 0);
    let o = wm(&t, &url, "b", &["lab", "show", "--json"]);
    expect_code(&o, 0);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(!v["events"].as_array().unwrap().is_empty(), "{v}");
    let o = wm(&t, &url, "b", &["lab", "reset"]);
    expect_code(&o, 0);
    assert!(text(&o).contains("reset"), "{}", text(&o));
    let o = wm(&t, &url, "b", &["lab", "show", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["events"].as_array().unwrap().is_empty(), "{v}");
}

/// The grants the operator guide documents for the two roles (docs/operator-guide.md),
/// under names of this database's own (roles are cluster-wide); returns the runner's
/// URL, the approver's URL and the approver's role name.
fn roles(c: &pg::Cluster, db: &str) -> (String, String, String) {
    let (approver, runner) = (format!("approver_{db}"), format!("runner_{db}"));
    c.sql(
        db,
        &format!(
            "CREATE ROLE {approver} LOGIN; \
             GRANT SELECT ON ALL TABLES IN SCHEMA public TO {approver}; \
             GRANT INSERT ON waymark_decisions TO {approver}; \
             GRANT USAGE ON SEQUENCE waymark_decisions_id_seq TO {approver};"
        ),
    );
    c.sql(
        db,
        &format!(
            "CREATE ROLE {runner} LOGIN; \
             GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {runner}; \
             GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {runner};"
        ),
    );
    (c.url_of(db, &runner), c.url_of(db, &approver), approver)
}

#[test]
fn an_approver_role_approves_but_cannot_drive_and_a_runner_role_drives() {
    let Some((c, db, url)) =
        pg::database("an_approver_role_approves_but_cannot_drive_and_a_runner_role_drives")
    else {
        return;
    };
    let t = Test::new().file("rb.rhai", GATED);
    // The owner creates the schema once (any waymark command does); then the roles.
    expect_code(&wm(&t, &url, "admin", &["runs"]), 0);
    let (runner, approver, who) = roles(c, &db);

    expect_code(&wm(&t, &runner, "a", &["run", "rb.rhai"]), 3);
    let id = latest_run(&t, &runner);
    // The approver cannot take the lease, hence cannot append a record either.
    let o = wm(&t, &approver, "c", &["resume", &id]);
    expect_code(&o, 2);
    assert!(text(&o).contains("permission denied"), "{}", text(&o));
    let o = wm(&t, &approver, "c", &["approve", &id, "sim"]);
    expect_code(&o, 0);
    expect_code(&wm(&t, &runner, "b", &["resume", &id]), 0);
    let s = status(&t, &approver, &id);
    assert_eq!(s["status"], "succeeded");
    assert_eq!(step(&s, "sim")["approvals"][0]["account"], who.as_str());
    // Writing the journal directly is refused to the approver by the database itself.
    let may = |what: &str| c.sql_as(&db, &who, &format!("SELECT has_table_privilege({what})"));
    assert_eq!(may("'waymark_journal', 'INSERT'"), "f");
    assert_eq!(may("'waymark_runs', 'UPDATE'"), "f");
}

#[test]
fn log_follow_status_watch_report_and_rollback_work_against_the_database() {
    let Some((_c, _db, url)) =
        pg::database("log_follow_status_watch_report_and_rollback_work_against_the_database")
    else {
        return;
    };
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "w", description: "d" });
step("one", #{ run: |ctx| sh("echo do-one >> effects"), undo: |ctx| sh("echo undo-one >> effects") });
step("slow", #{ after: "one", run: |ctx| {
    sh("touch started");
    log("line 1");
    sleep("500ms");
    log("line 2");
    sleep("500ms");
    fail("bad end");
} });"#,
    );
    let mut run = spawn_run(&t, &url, None, &[], Stdio::null());
    wait_started(&t, "slow started");
    let id = latest_run(&t, &url);
    let watch = t
        .bare()
        .args(["status", &id, "--watch", "--state-dir", &url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let follow = wm(&t, &url, "c", &["log", &id, "slow", "--follow"]);
    expect_code(&follow, 0);
    let out = String::from_utf8_lossy(&follow.stdout);
    let (one, two) = (out.find("line 1").unwrap(), out.find("line 2").unwrap());
    assert!(one < two, "{out}");
    assert!(out.contains("error: bad end"), "{out}");
    assert_eq!(run.wait().unwrap().code(), Some(1));
    let watched = watch.wait_with_output().unwrap();
    let w = String::from_utf8_lossy(&watched.stderr);
    assert!(w.contains(&format!("run {id} failed")), "{w}");

    let report = t.path().join("r.html");
    let o = wm(
        &t,
        &url,
        "c",
        &["report", &id, "--output", report.to_str().unwrap()],
    );
    expect_code(&o, 0);
    let page = std::fs::read_to_string(&report).unwrap();
    assert!(page.contains("line 2"), "the report carries the step log");

    let o = wm(&t, &url, "b", &["rollback", &id, "--yes"]);
    expect_code(&o, 1);
    assert_eq!(t.read("effects"), "do-one\nundo-one\n");
    assert_eq!(status(&t, &url, &id)["status"], "rolled_back");
}

#[test]
fn an_outage_longer_than_the_lease_stops_the_run_and_resume_finishes_it_once_back() {
    let Some(c) = pg::own_cluster(
        "an_outage_longer_than_the_lease_stops_the_run_and_resume_finishes_it_once_back",
    ) else {
        return;
    };
    let url = c.database("outage");
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "o", description: "d" });
step("one", #{ run: |ctx| sh("touch started; sleep 1; echo one >> effects"), idempotent: true });
step("two", #{ after: "one", run: |ctx| sh("echo two >> effects") });"#,
    );
    let lease = [("WAYMARK_LEASE", "2s")];
    // Started and resumed on the same host: only there can its process be looked for.
    let a = spawn_run(&t, &url, Some("a"), &lease, Stdio::piped());
    wait_started(&t, "step one started");
    c.restart(std::time::Duration::from_secs(8));
    let out = a.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{e}");
    // It said why, and nothing after `one` started.
    assert!(e.contains("lost the connection"), "{e}");
    assert!(!t.read("effects").contains("two"), "{e}");
    let id = latest_run(&t, &url);
    let o = wm(&t, &url, "a", &["resume", &id]);
    expect_code(&o, 0);
    assert!(
        t.read("effects").ends_with("one\ntwo\n"),
        "{}",
        t.read("effects")
    );
    assert_eq!(status(&t, &url, &id)["status"], "succeeded");
}

#[test]
fn a_live_run_picks_up_an_approval_made_from_another_host() {
    let Some((_c, _db, url)) =
        pg::database("a_live_run_picks_up_an_approval_made_from_another_host")
    else {
        return;
    };
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "live", description: "d" });
step("slow", #{ run: |ctx| sh("touch started; sleep 4") });
gate("g", #{ instructions: "Look." });
step("after", #{ after: "g", run: |ctx| sh("echo after >> effects") });"#,
    );
    let a = t
        .bare()
        .args(["run", "rb.rhai", "--non-interactive", "--state-dir", &url])
        .env("WAYMARK_HOST", "a")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = wait_until("the gate waits", || {
        if !t.path().join("started").exists() {
            return None;
        }
        let id = latest_run(&t, &url);
        (step(&status(&t, &url, &id), "g")["state"] == "awaiting_approval").then_some(id)
    });
    expect_code(&wm(&t, &url, "c", &["approve", &id, "g"]), 0);
    let out = a.wait_with_output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{e}");
    assert!(e.contains("approved by"), "{e}");
    assert_eq!(t.read("effects"), "after\n");
}

/// The issue's night: operator A starts the hierarchy rehearsal and is killed; approver C,
/// with a read-and-approve role, approves the gates from another process; operator B
/// resumes from another host and finishes; every host sees the same status, logs, lab.
#[test]
fn the_team_night_killed_operator_remote_approver_and_second_shift_finish_the_hierarchy() {
    let test =
        "the_team_night_killed_operator_remote_approver_and_second_shift_finish_the_hierarchy";
    let Some((c, db, url)) = pg::database(test) else {
        return;
    };
    let t = Test::new();
    expect_code(&wm(&t, &url, "admin", &["runs"]), 0);
    let (runner, approver, who) = roles(c, &db);
    let lease = [("WAYMARK_LEASE", "2s")];

    let mut a = t
        .bare()
        .args(["run", "itms-7.6/hierarchy", "--non-interactive"])
        .args(["--state-dir", &runner])
        .env("WAYMARK_HOST", "a")
        .envs(lease)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let id = wait_until("A has done something", || {
        let o = wm(&t, &approver, "c", &["runs", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        let id = v.as_array()?.last()?["run_id"].as_str()?.to_string();
        let s = status(&t, &approver, &id);
        let done = s["steps"]
            .as_array()?
            .iter()
            .filter(|x| x["state"] == "succeeded")
            .count();
        (done >= 3).then_some(id)
    });
    unsafe { libc::kill(a.id() as i32, libc::SIGKILL) };
    let _ = a.wait();

    let mut finished = false;
    for _ in 0..60 {
        let o = t
            .bare()
            .args(["resume", &id, "--kill-orphans", "--state-dir", &runner])
            .env("WAYMARK_HOST", "b")
            .envs(lease)
            .output()
            .unwrap();
        match o.status.code() {
            Some(0) => {
                finished = true;
                break;
            }
            // A's lease has not run out yet.
            Some(2) if text(&o).contains("expires at") => {
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            Some(3) => {
                let s = status(&t, &approver, &id);
                for g in s["steps"].as_array().unwrap() {
                    if g["state"] == "awaiting_approval" {
                        let name = g["name"].as_str().unwrap();
                        expect_code(&wm(&t, &approver, "c", &["approve", &id, name]), 0);
                    }
                }
            }
            other => panic!("resume exited {other:?}: {}", text(&o)),
        }
    }
    assert!(finished, "the run never finished");
    let s = status(&t, &approver, &id);
    assert_eq!(s["status"], "succeeded");
    let gates: Vec<&serde_json::Value> = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["kind"] == "gate")
        .collect();
    assert!(!gates.is_empty());
    for g in gates {
        assert_eq!(g["approvals"][0]["account"], who.as_str(), "{g}");
    }
    // The same from every host: the lab as B's role and as C's role.
    let show = |u: &str, host: &str| {
        let o = wm(&t, u, host, &["lab", "show", "--json"]);
        expect_code(&o, 0);
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let lab = show(&approver, "c");
    assert_eq!(lab, show(&runner, "b"));
    // (Not the exactly-once rules of tests/waymark/itms.rs: a gate's `rehearse` runs
    // again when a resumed run reopens the gate, with either store — reported.)
    for ns in ["ns-hq", "ns-emea", "ns-emea-branch", "ns-apac"] {
        assert_eq!(lab["servers"][ns]["version"], "7.6", "{ns}");
    }
    // And the log of a step B ran reads the same from C's role.
    let o = wm(&t, &approver, "c", &["log", &id]);
    expect_code(&o, 0);
    assert_eq!(o.stdout, wm(&t, &runner, "b", &["log", &id]).stdout);
}

#[test]
fn the_host_a_decision_and_a_resume_came_from_is_the_one_waymark_host_names() {
    let Some((_c, _db, url)) =
        pg::database("the_host_a_decision_and_a_resume_came_from_is_the_one_waymark_host_names")
    else {
        return;
    };
    let t = Test::new().file("rb.rhai", GATED);
    expect_code(&wm(&t, &url, "host-a", &["run", "rb.rhai"]), 3);
    let id = latest_run(&t, &url);
    expect_code(&wm(&t, &url, "desk-c", &["approve", &id, "sim"]), 0);
    expect_code(&wm(&t, &url, "host-b", &["resume", &id]), 0);
    let s = status(&t, &url, &id);
    assert_eq!(step(&s, "sim")["approvals"][0]["host"], "desk-c");
}

#[test]
fn no_secret_value_reaches_the_database() {
    let Some((c, db, url)) = pg::database("no_secret_value_reaches_the_database") else {
        return;
    };
    const KEY: &str = "s3cr3t-team-key-8812";
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "s", description: "d" });
step("use", #{ run: |ctx| {
    let k = secret("k");
    log("the key is " + k);
    sh("echo key=" + k);
    fail("still " + k)
} });"#,
    );
    let o = t
        .bare()
        .args(["run", "rb.rhai", "--state-dir", &url])
        .env("WAYMARK_SECRET_K", KEY)
        .output()
        .unwrap();
    expect_code(&o, 1);
    let everything = c.sql(
        &db,
        "SELECT string_agg(t, E'\\n') FROM ( \
           SELECT record::text AS t FROM waymark_journal \
           UNION ALL SELECT entry FROM waymark_step_logs \
           UNION ALL SELECT item::text FROM waymark_decisions \
           UNION ALL SELECT coalesce(base, '') FROM waymark_lab \
           UNION ALL SELECT line FROM waymark_lab_log) x",
    );
    assert!(everything.contains("the key is"), "{everything}");
    assert!(!everything.contains(KEY), "{everything}");
}

#[test]
fn a_unix_socket_host_reaches_the_same_runs() {
    let Some((c, db, url)) = pg::database("a_unix_socket_host_reaches_the_same_runs") else {
        return;
    };
    let t = Test::new().file("rb.rhai", GATED);
    expect_code(&wm(&t, &url, "a", &["run", "rb.rhai"]), 3);
    let id = latest_run(&t, &url);
    let socket = c.socket_url_of(&db, "postgres");
    assert_eq!(latest_run(&t, &socket), id);
}

#[test]
fn the_password_comes_from_pgpassword_or_the_pgpass_file_and_never_shows() {
    let test = "the_password_comes_from_pgpassword_or_the_pgpass_file_and_never_shows";
    let Some(c) = pg::own_cluster(test) else {
        return;
    };
    c.database("pw");
    c.require_password("wm", "pw-Secret-42");
    let url = c.url_of("pw", "wm");
    let t = Test::new().file("rb.rhai", GATED);
    let runs = |env: &[(&str, &str)]| {
        t.bare()
            .args(["runs", "--state-dir", &url])
            .env_remove("PGPASSWORD")
            .env("HOME", t.path())
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let o = runs(&[]);
    expect_code(&o, 2);
    assert!(text(&o).contains("cannot connect to"), "{}", text(&o));
    expect_code(&runs(&[("PGPASSWORD", "pw-Secret-42")]), 0);
    let pass = t.path().join("pgpass");
    std::fs::write(&pass, format!("127.0.0.1:{}:pw:wm:pw-Secret-42\n", c.port)).unwrap();
    expect_code(&runs(&[("PGPASSFILE", pass.to_str().unwrap())]), 0);
    // A password in the URL works too, and no hint or message repeats it.
    let with = url.replace("wm@", "wm:pw-Secret-42@");
    let o = t
        .bare()
        .args(["run", "rb.rhai", "--state-dir", &with])
        .output()
        .unwrap();
    expect_code(&o, 3);
    assert!(!text(&o).contains("pw-Secret-42"), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("--state-dir {url}")),
        "{}",
        text(&o)
    );
}
