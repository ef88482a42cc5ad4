//! After a blocker, the command waymark prints must work once the operator has fixed
//! the cause; and the ITMS runbooks refuse unsafe orders before they change anything.

use crate::harness::Test;

/// Run the binary in `t`'s dir with exactly `args`; (exit code, stderr).
fn wm(t: &Test, args: &[&str]) -> (i32, String) {
    let o = t.bare().args(args).output().unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// What the binary prints on stdout in `t`'s dir with exactly `args`.
fn stdout_of(t: &Test, args: &[&str]) -> String {
    let o = t.bare().args(args).output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The command after `label` in waymark's hint lines, split into arguments.
fn hinted(stderr: &str, label: &str) -> Vec<String> {
    let line = stderr
        .lines()
        .find(|l| l.trim_start().starts_with(label))
        .unwrap_or_else(|| panic!("no `{label}` hint in:\n{stderr}"));
    let cmd = line.split_once("waymark ").expect("a waymark command").1;
    cmd.split_whitespace().map(str::to_string).collect()
}

#[test]
fn preflight_blocker_fixed_then_hinted_resume_failed_the_same_way_forever() {
    let inv = std::fs::read_to_string(format!(
        "{}/examples/estates/low-disk.toml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let t = Test::new().file("inv.toml", &inv);
    let (code, err) = wm(
        &t,
        &[
            "run",
            "itms-7.6/preflight",
            "--inventory",
            "inv.toml",
            "--state-dir",
            "st",
            "--yes",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("only 4.0 GB free"), "{err}");
    assert!(err.contains("resume this run"), "{err}");
    let resume = hinted(&err, "after fixing it:");
    assert_eq!(resume[0], "resume");
    assert!(resume.iter().any(|a| a == "--state-dir"), "{resume:?}");

    // The operator frees disk space: in the lab, the fact changes and the lab re-seeds.
    let fixed = inv.replace("disk_free_gb = 4", "disk_free_gb = 120");
    assert_ne!(fixed, inv);
    std::fs::write(t.path().join("inv.toml"), fixed).unwrap();
    let (code, err) = wm(
        &t,
        &[
            "lab",
            "reset",
            "--inventory",
            "inv.toml",
            "--state-dir",
            "st",
        ],
    );
    assert_eq!(code, 0, "{err}");

    let args: Vec<&str> = resume.iter().map(String::as_str).collect();
    let (code, err) = wm(&t, &args);
    assert_eq!(
        code, 0,
        "the hinted command must work once the blocker is fixed:\n{err}"
    );
    assert!(err.contains("preflight:ns-01: fresh"), "{err}");
}

#[test]
fn a_fresh_probe_runs_again_on_resume_and_a_plain_one_does_not() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "fresh", description: "d" });
           let probe = step("probe", #{ fresh: true, run: |ctx| { sh("echo p >> probes"); let f = sh("cat fact").stdout; f.trim(); f } });
           let plain = step("plain", #{ run: |ctx| { sh("echo x >> plains"); 1 } });
           step("decide", #{ after: [probe, plain], run: |ctx| if ctx.outputs.probe != "ok" { fail("fact is " + ctx.outputs.probe) } });"#,
    )
    .file("fact", "bad\n");
    let (code, err) = wm(&t, &["run", "rb.rhai"]);
    assert_eq!(code, 1, "{err}");
    std::fs::write(t.path().join("fact"), "ok\n").unwrap();
    let (code, err) = wm(&t, &["resume", &t.run_id()]);
    assert_eq!(code, 0, "{err}");
    let count = |f: &str| {
        std::fs::read_to_string(t.path().join(f))
            .unwrap()
            .lines()
            .count()
    };
    assert_eq!(count("probes"), 2, "the fresh probe looked again");
    assert_eq!(count("plains"), 1, "a step that succeeded is not run again");
    // Nothing left to run after it: a succeeded run is not resumed at all.
    let (code, _) = wm(&t, &["resume", &t.run_id()]);
    assert_eq!(code, 0);
    assert_eq!(count("probes"), 2);
}

#[test]
fn a_fresh_step_with_an_undo_is_refused_at_check() {
    let o = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "fresh", description: "d" });
               step("p", #{ fresh: true, run: |ctx| 1, undo: |ctx| 2 });"#,
        )
        .args(&["check", "rb.rhai"])
        .run();
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains("`fresh`") && o.stderr.contains("undo"),
        "{}",
        o.stderr
    );
}

#[test]
fn onbox_on_a_parent_with_7_5_children_turned_replication_off_before_refusing() {
    let t = Test::new();
    let (code, err) = wm(
        &t,
        &[
            "run",
            "itms-7.6/onbox",
            "--param",
            "server=ns-hq",
            "--yes",
            "--state-dir",
            "st",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("Notification Servers below it still run 7.5")
            && err.contains("ns-emea (7.5 SP1 HF5)")
            && err.contains("ns-apac (7.5 SP1 HF5)")
            && err.contains("ns-emea-branch (7.5 SP1 HF5)")
            && err.contains("itms-7.6/hierarchy"),
        "{err}"
    );
    let text = stdout_of(&t, &["lab", "show", "--json", "--state-dir", "st"]);
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let changed: Vec<&str> = doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["op"].as_str())
        .filter(|op| {
            [
                "set_replication",
                "disable_policies",
                "backup_ns",
                "backup_cmdb",
            ]
            .contains(op)
        })
        .collect();
    assert!(changed.is_empty(), "refused before any change: {changed:?}");
}

#[test]
fn a_failure_after_changes_offered_resume_but_not_rollback() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "changes", description: "d" });
           let off = step("replication-off", #{ run: |ctx| set_replication("ns-hq", #{ enabled: false }),
                                                undo: |ctx| set_replication("ns-hq", #{ enabled: true }) });
           step("upgrade", #{ after: off, run: |ctx| fail("SIM reported an error") });"#,
    );
    let (code, err) = wm(&t, &["run", "rb.rhai", "--state-dir", "st"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("after fixing it:"), "{err}");
    let rollback = hinted(&err, "or give up and undo");
    assert_eq!(rollback[0], "rollback");
    assert!(rollback.iter().any(|a| a == "--yes"), "{rollback:?}");
    let args: Vec<&str> = rollback.iter().map(String::as_str).collect();
    let o = t.bare().args(&args).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    // Exit 1 is the contract's code for a rolled-back run; the undo ran.
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("rolled back"),
        "the hinted rollback must work:\n{out}"
    );
    // Before any change, there is nothing to roll back and no such line.
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "nochange", description: "d" });
           step("check", #{ run: |ctx| fail("blocked") });
           step("replication-off", #{ after: "check", run: |ctx| 1, undo: |ctx| 2 });"#,
    );
    let (code, err) = wm(&t, &["run", "rb.rhai"]);
    assert_eq!(code, 1, "{err}");
    assert!(!err.contains("rollback"), "{err}");
}

#[test]
fn lab_refused_an_ns_whose_sql_instance_is_not_a_server() {
    let t = Test::new().file(
        "inv.toml",
        "name = \"unlisted-sql\"\ndriver = \"lab\"\n\n[[server]]\nname = \"ns-hq\"\nrole = \"ns\"\nsql = \"sql-a\"\nendpoints = 2000\n",
    );
    let (code, err) = wm(
        &t,
        &[
            "run",
            "itms-7.6/onbox",
            "--inventory",
            "inv.toml",
            "--yes",
            "--state-dir",
            "st",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let text = stdout_of(
        &t,
        &[
            "lab",
            "show",
            "--inventory",
            "inv.toml",
            "--state-dir",
            "st",
        ],
    );
    assert!(
        text.contains("backup_cmdb") && text.contains("defragment_cmdb"),
        "{text}"
    );
}

#[test]
fn lab_show_text_did_not_say_which_way_replication_went() {
    let t = Test::new();
    let (code, err) = wm(
        &t,
        &["run", "itms-7.6/hierarchy", "--yes", "--state-dir", "st"],
    );
    assert_eq!(code, 0, "{err}");
    let text = stdout_of(&t, &["lab", "show", "--state-dir", "st"]);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("set_replication"))
        .collect();
    assert!(!lines.is_empty(), "{text}");
    assert!(
        lines
            .iter()
            .all(|l| l.contains("set_replication (on)") || l.contains("set_replication (off)")),
        "{lines:#?}"
    );
    assert!(lines.iter().any(|l| l.contains("(off)")) && lines.iter().any(|l| l.contains("(on)")));
}

#[test]
fn sim_gate_did_not_warn_that_sim_blocks_on_its_own_updates() {
    let t = Test::new();
    let text = stdout_of(
        &t,
        &[
            "run",
            "itms-7.6/onbox",
            "--param",
            "server=ns-emea-branch",
            "--dry-run",
            "--state-dir",
            "st",
        ],
    );
    assert!(
        text.contains("checks for updates to itself and blocks until they are")
            && text.contains("KB 178409")
            && text.contains("Install the updates it offers"),
        "{text}"
    );
}
