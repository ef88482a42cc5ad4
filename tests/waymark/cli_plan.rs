//! `list`, `check` and `plan` driven through the binary: output, formats, exit codes.

use crate::harness::Test;

const GOOD: &str = r#"runbook(#{ name: "Example", description: "An example" });
let b = step("backup", #{ title: "Back up", run: |ctx| 1, retries: 2, timeout: "1h" });
gate("sim", #{ after: b, title: "Upgrade in SIM", instructions: "Click through SIM." });
step("verify", #{ after: "sim", run: |ctx| 2, idempotent: true });
"#;

#[test]
fn check_accepts_a_valid_runbook() {
    let o = Test::new()
        .file("rb.rhai", GOOD)
        .args(&["check", "rb.rhai"])
        .run();
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("ok: Example"), "{}", o.stdout);
    assert!(
        o.stdout.contains("2 steps, 1 gates, 3 waves"),
        "{}",
        o.stdout
    );
}

#[test]
fn plan_text_shows_waves_gates_retries_and_non_idempotent_steps() {
    let o = Test::new()
        .file("rb.rhai", GOOD)
        .args(&["plan", "rb.rhai"])
        .run();
    assert_eq!(o.code, 0, "{o:?}");
    let s = o.stdout;
    assert!(s.contains("wave 1:") && s.contains("wave 3:"), "{s}");
    assert!(s.contains("gate sim — Upgrade in SIM"), "{s}");
    assert!(s.contains("retries 2") && s.contains("timeout 1h"), "{s}");
    assert!(s.contains("NOT idempotent"), "{s}");
}

#[test]
fn plan_json_has_the_contract_shape() {
    let o = Test::new()
        .file("rb.rhai", GOOD)
        .args(&["plan", "rb.rhai", "--format", "json"])
        .run();
    assert_eq!(o.code, 0, "{o:?}");
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["runbook"], "Example");
    let steps = v["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    for key in [
        "name",
        "kind",
        "after",
        "wave",
        "when",
        "idempotent",
        "group",
        "retries",
        "timeout",
    ] {
        assert!(steps[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(steps[1]["kind"], "gate");
    assert_eq!(steps[1]["after"], serde_json::json!(["backup"]));
    assert_eq!(steps[0]["timeout"], "1h");
    assert_eq!(
        v["waves"],
        serde_json::json!([["backup"], ["sim"], ["verify"]])
    );
}

#[test]
fn plan_mermaid_and_dot_draw_every_edge() {
    let t = Test::new().file("rb.rhai", GOOD);
    let m = t.args(&["plan", "rb.rhai", "--format", "mermaid"]).run();
    assert!(m.stdout.starts_with("flowchart TD"), "{}", m.stdout);
    assert!(
        m.stdout.contains("s0 --> s1") && m.stdout.contains("s1 --> s2"),
        "{}",
        m.stdout
    );
    let t = Test::new().file("rb.rhai", GOOD);
    let d = t.args(&["plan", "rb.rhai", "--format", "dot"]).run();
    assert!(
        d.stdout.contains("s0 -> s1;") && d.stdout.contains("shape=octagon"),
        "{}",
        d.stdout
    );
}

#[test]
fn a_bad_script_exits_2_with_file_line_column_and_caret() {
    let o = Test::new()
        .file(
            "rb.rhai",
            "runbook(#{ name: \"x\", description: \"y\" });\nstep(\"a\", #{ after: \"nope\" });\n",
        )
        .args(&["check", "rb.rhai"])
        .run();
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr
            .contains("error: `a` depends on `nope`, which is not declared"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("--> rb.rhai:2:14"), "{}", o.stderr);
    assert!(
        o.stderr.contains("2 | step(\"a\", #{ after: \"nope\" });"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("^"), "{}", o.stderr);
    assert!(o.stdout.is_empty());
}

#[test]
fn the_caret_points_at_the_option_key_not_at_the_same_word_inside_a_string() {
    let o = Test::new()
        .file(
            "rb.rhai",
            "runbook(#{ name: \"x\", description: \"y\" });\nstep(\"a\", #{ title: \"no timeout: x\", timeout: \"soon\", run: |ctx| 1 });\n",
        )
        .args(&["check", "rb.rhai"])
        .run();
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains("bad duration for `timeout`"),
        "{}",
        o.stderr
    );
    // Column 38 is `timeout` the key; the text scan used to answer 25, inside the title.
    assert!(o.stderr.contains("--> rb.rhai:2:38"), "{}", o.stderr);
    assert!(
        o.stderr
            .lines()
            .any(|l| l.ends_with(&format!("| {}^", " ".repeat(37)))),
        "{}",
        o.stderr
    );
}

#[test]
fn a_parameter_error_points_at_the_parameter_in_the_authors_map() {
    let o = Test::new()
        .file(
            "rb.rhai",
            "runbook(#{ name: \"x\", description: \"server: y\",\n  params: #{ server: #{ help: \"the server\", required: \"yes\" } } });\n",
        )
        .args(&["check", "rb.rhai"])
        .run();
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains("`required` must be true or false"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("--> rb.rhai:2:45"), "{}", o.stderr);
}

#[test]
fn a_parameter_block_composed_from_the_stdlib_still_points_into_the_authors_map() {
    let o = Test::new()
        .file(
            "rb.rhai",
            "import \"readiness\" as readiness;\nrunbook(#{ name: \"x\", description: \"y\",\n  params: readiness::parameters() + #{ server: #{ help: \"s\", required: true } } });\n",
        )
        .args(&["check", "rb.rhai", "--param", "log_sinse=1h"])
        .run();
    assert_eq!(o.code, 2, "{o:?}");
    // The stdlib's parameters are there (the typo is recognised)...
    assert!(
        o.stderr.contains("did you mean `log_since`?"),
        "{}",
        o.stderr
    );
    // ...and the missing one is shown where the author declared it.
    assert!(
        o.stderr.contains("missing required parameter `server`"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("--> rb.rhai:3:40"), "{}", o.stderr);
    // An unknown --param points at the author's `params` key.
    assert!(o.stderr.contains("--> rb.rhai:3:3"), "{}", o.stderr);
}

#[test]
fn an_unknown_runbook_exits_2_and_points_at_list() {
    let o = Test::new().args(&["check", "nope.rhai"]).run();
    assert_eq!(o.code, 2);
    assert!(
        o.stderr.contains("no runbook file `nope.rhai`"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("waymark list"), "{}", o.stderr);
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    assert_eq!(Test::new().args(&["plan"]).run().code, 2);
    assert_eq!(Test::new().args(&["frobnicate"]).run().code, 2);
    assert_eq!(
        Test::new()
            .args(&["plan", "x", "--param", "novalue"])
            .run()
            .code,
        2
    );
    let h = Test::new().args(&["plan", "--help"]).run();
    assert_eq!(h.code, 0);
    assert!(h.stdout.contains("Examples:"), "{}", h.stdout);
}

#[test]
fn every_hostile_case_exits_2_with_its_line() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases/error");
    for entry in std::fs::read_dir(&root).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let mut args = vec!["check".to_string(), path.display().to_string()];
        for l in text.lines().filter_map(|l| l.strip_prefix("// params:")) {
            for kv in l.split_whitespace() {
                args.push("--param".into());
                args.push(kv.into());
            }
        }
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = Test::new().args(&argv).run();
        assert_eq!(o.code, 2, "{}: {o:?}", path.display());
        assert!(
            o.stderr.starts_with("error: "),
            "{}: {}",
            path.display(),
            o.stderr
        );
        assert!(!o.stderr.contains("panicked"), "{}", o.stderr);
        if let Some(at) = text.lines().find_map(|l| l.strip_prefix("// at:")) {
            let name = path.file_name().unwrap().to_str().unwrap();
            assert!(
                o.stderr.contains(&format!("{name}:{}", at.trim())),
                "{}: {}",
                path.display(),
                o.stderr
            );
        }
    }
}

#[test]
fn inventory_servers_are_visible_and_a_bad_inventory_exits_2_with_its_line() {
    let rb = r#"runbook(#{ name: "inv", description: "d" });
for s in inventory.servers { if s.role == "ns" { step("up:" + s.name, #{ run: |ctx| s.name }); } }"#;
    let demo = Test::new()
        .file("rb.rhai", rb)
        .args(&["plan", "rb.rhai", "--format", "json"])
        .run();
    assert_eq!(demo.code, 0, "{demo:?}");
    assert!(
        demo.stdout.contains("up:ns-hq"),
        "the demo estate is the default: {}",
        demo.stdout
    );
    let bad = Test::new()
        .file("rb.rhai", rb)
        .file(
            "bad.toml",
            "name = \"x\"\ndriver = \"lab\"\n[[server]]\nname = \"ns 1\"\nrole = \"ns\"\n",
        )
        .args(&["check", "rb.rhai", "--inventory", "bad.toml"])
        .run();
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("bad.toml:4:"), "{}", bad.stderr);
    assert!(bad.stderr.contains("help:"), "{}", bad.stderr);
}
