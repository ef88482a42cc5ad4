//! `run --dry-run` as an operator reads it before a change window: it never waits, never
//! invents results (a value only a run would give is unknown, and a decision on it is
//! reported as depending on run time), shows every command it can know, and never
//! shows Rhai's internals.

use crate::harness::{expect_code, Test};

// The reporting team's shape: pause replay, back up, restart a standby and wait for it,
// resume replay, check the lag.
const PG: &str = r#"runbook(#{ name: "pg", description: "standby upgrade" });
step("pause", #{ run: |ctx| {
    exec("psql", ["-c", "SELECT pg_wal_replay_pause()"]);
    sleep("10m");
} });
step("backup", #{ after: "pause", run: |ctx| {
    let r = sh("pg_basebackup -D /backups/base", #{ check: false });
    if r.code != 0 { sh("rm -rf /backups/base"); fail("backup failed"); }
    sh("psql -c 'ALTER SYSTEM SET hot_standby = on'");
} });
step("standby", #{ after: "backup", run: |ctx| {
    sh("pg_ctlcluster 15 main restart");
    wait_until(|| sh("pg_isready", #{ check: false }).code == 0, #{ timeout: "1h", every: "5s" });
    sh("psql -c 'SELECT pg_wal_replay_resume()'");
    let lag = exec("psql", ["-tAc", "SELECT lag"]).stdout.trim().parse_int();
    if lag > 100 { warn("lagging") }
} });
step("report", #{ after: "standby", run: |ctx| {
    if ctx.dry_run { log("would mail the lag to the DBA list"); return; }
    for b in ctx.outputs.standby.blockers { sh(`echo ${b}`) }
} });
step("summary", #{ after: "standby", run: |ctx| {
    for b in ctx.outputs.backup.files { sh(`echo ${b}`) }
} });
"#;

#[test]
fn a_dry_run_waited_out_every_sleep_and_wait_until_and_invented_results() {
    let t = Test::new().file("pg.rhai", PG);
    let started = std::time::Instant::now();
    let o = t
        .bare()
        .args(["run", "pg.rhai", "--dry-run"])
        .output()
        .unwrap();
    // It would take more than an hour if it waited; not a speed measurement.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    expect_code(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    for known in [
        "SELECT pg_wal_replay_pause()",
        "sleep 10m",
        "pg_basebackup -D /backups/base",
        "pg_ctlcluster 15 main restart",
        "wait until the condition below holds (every 5s, at most 1h",
        "pg_isready",
        "SELECT pg_wal_replay_resume()",
        "SELECT lag",
        "log: would mail the lag to the DBA list",
    ] {
        assert!(out.contains(known), "dry run lacks {known}:\n{out}");
    }
    // The failure branch is not shown as if it would run: the backup's result is unknown.
    assert!(!out.contains("rm -rf"), "{out}");
    for why in [
        "(the rest of this step depends on run time: the result of sh pg_basebackup -D /backups/base)",
        "(the rest of this step depends on run time: the result of exec psql -tAc 'SELECT lag')",
        "(the rest of this step depends on run time: the output of step backup)",
    ] {
        assert!(out.contains(why), "lacks {why}:\n{out}");
    }
    for internal in [
        "Function not found",
        "getter is not registered",
        "For loop expects",
        "@ '",
        "type '()'",
    ] {
        assert!(
            !out.contains(internal),
            "Rhai internals leak ({internal}):\n{out}"
        );
    }
    assert!(
        !t.path().join(".waymark/runs").exists(),
        "a dry run records no run"
    );
}

// The shipped runbook's most important step showed nothing in a dry-run, and its steps
// leaked "Unknown property 'blockers' - a getter is not registered for type '()'".
#[test]
fn the_shipped_onbox_dry_run_shows_disable_policies_and_no_rhai_internals() {
    let t = Test::new();
    let o = t
        .bare()
        .args(["run", "itms-7.6/hierarchy", "--dry-run", "--inventory"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/estates/windows.toml"
        ))
        .output()
        .unwrap();
    expect_code(&o, 0);
    let out = String::from_utf8_lossy(&o.stdout);
    // The step's own lines: indented deeper than the numbered steps.
    let disable: String = out
        .lines()
        .skip_while(|l| !l.contains("upgrade:smp02:disable-policies —"))
        .skip(1)
        .take_while(|l| l.starts_with("       "))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(disable.contains("disable_policies on smp02"), "{disable}");
    assert!(out.contains("DisablePolicyItem"), "{out}");
    assert!(
        out.contains("warning: expected_build is still UNVERIFIED"),
        "{out}"
    );
    assert!(
        out.contains("smp02: this machine's PowerShell runs Invoke-Command -ComputerName 'smp02'"),
        "{out}"
    );
    assert!(
        out.contains("depends on run time: the output of step preflight:smp02"),
        "{out}"
    );
    for internal in [
        "Function not found",
        "getter is not registered",
        "For loop expects",
        "@ 'stdlib",
    ] {
        assert!(
            !out.contains(internal),
            "Rhai internals leak ({internal}):\n{out}"
        );
    }
}

// The banner said "nothing real is touched" for a lab estate while the runbook's own
// commands ran for real.
#[test]
fn the_rehearsal_banner_says_local_commands_run_for_real() {
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "b", description: "d" });
step("a", #{ run: |ctx| sh("echo hi") });"#,
    );
    let o = t.bare().args(["run", "rb.rhai"]).output().unwrap();
    expect_code(&o, 0);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("nothing real is touched"), "{err}");
    assert!(
        err.contains("exec, sh and ps in steps run for real on this machine"),
        "{err}"
    );
}
