//! Hostile runbooks end with exit 2 and a message, never a panic or an abort: huge
//! durations, import cycles, and load-time work that is slow without being many
//! operations.

use crate::harness::Test;

fn assert_no_crash(o: &crate::harness::Output) {
    assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
    assert!(!o.stderr.contains("overflow"), "{}", o.stderr);
}

#[test]
fn huge_timeout_and_retry_delay_overflowed_instant_and_panicked_mid_run() {
    for key in ["timeout", "retry_delay"] {
        let rb = format!(
            "runbook(#{{ name: \"x\", description: \"y\" }});\n\
             step(\"a\", #{{ run: |ctx| 1, {key}: \"3000000000000000h\", retries: 3 }});\n"
        );
        for cmd in ["check", "run"] {
            let o = Test::new()
                .file("rb.rhai", &rb)
                .args(&[cmd, "rb.rhai"])
                .run();
            assert_eq!(o.code, 2, "{key} {cmd}: {o:?}");
            assert_no_crash(&o);
            assert!(
                o.stderr.contains(&format!("bad duration for `{key}`")),
                "{}",
                o.stderr
            );
            assert!(
                o.stderr.contains("longest duration waymark accepts (365d)"),
                "{}",
                o.stderr
            );
            assert!(o.stderr.contains("rb.rhai:2:28"), "{}", o.stderr);
        }
    }
}

#[test]
fn huge_duration_inside_a_step_overflowed_instant_and_panicked() {
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "x", description: "y" });
               step("s", #{ run: |ctx| sleep("3000000000000000h") });
               step("e", #{ run: |ctx| exec("true", [], #{ timeout: "99999999999d" }) });
               step("w", #{ run: |ctx| wait_until(|| false, #{ timeout: "1s", every: "9999999999999h" }) });"#,
        )
        .args(&["run", "rb.rhai", "--keep-going"]);
    let o = t.run();
    assert_eq!(o.code, 1, "{o:?}");
    assert_no_crash(&o);
    let s = t.status();
    for step in ["s", "e", "w"] {
        let st = crate::harness::step(&s, step);
        assert_eq!(st["state"], "failed", "{s}");
        let error = st["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("longest duration waymark accepts"),
            "{step}: {error}"
        );
    }
}

#[test]
fn import_cycle_overflowed_the_stack_and_aborted() {
    let runbook = |import: &str| {
        format!("import \"{import}\" as m;\nrunbook(#{{ name: \"c\", description: \"d\" }});\n")
    };
    let t = Test::new()
        .file("a.rhai", "import \"b\" as b;\nfn x() { 1 }\n")
        .file("b.rhai", "import \"a\" as a;\nfn y() { 2 }\n")
        .file("me.rhai", "import \"me\" as me;\n")
        .file("cycle.rhai", &runbook("a"))
        .file("selfish.rhai", &runbook("me"))
        .file("itself.rhai", &runbook("itself"));
    for (rb, cycle, at) in [
        ("cycle.rhai", "a.rhai → b.rhai → a.rhai", "b.rhai:1:8"),
        ("selfish.rhai", "me.rhai → me.rhai", "me.rhai:1:8"),
        (
            "itself.rhai",
            "itself.rhai → itself.rhai",
            "itself.rhai:1:8",
        ),
    ] {
        let o = t.bare().args(["check", rb]).output().unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{rb}: {stderr}");
        assert!(
            stderr.contains(&format!("import cycle: {cycle}")),
            "{rb}: {stderr}"
        );
        assert!(stderr.contains(at), "{rb}: {stderr}");
    }
}

#[test]
fn quadratic_load_ran_for_minutes_within_the_operation_budget() {
    let o = Test::new()
        .file(
            "rb.rhai",
            "let a = [];\nfor i in 0..1000000 { a.push(i); }\nrunbook(#{ name: \"c\", description: \"d\" });\n",
        )
        .args(&["check", "rb.rhai"])
        .run();
    assert_eq!(o.code, 2, "{o:?}");
    assert_no_crash(&o);
    assert!(
        o.stderr.contains("stopped after 10s of loading"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("rb.rhai:2:"), "{}", o.stderr);
}
