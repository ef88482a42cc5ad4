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
