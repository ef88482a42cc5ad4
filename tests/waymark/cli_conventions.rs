//! What operators expect of a command line: completions generated from the real argument
//! definitions, `--json` on the read commands `list` and `check`, and `show RUNBOOK`
//! listing parameters before anyone runs anything.

use crate::harness::Test;

const WITH_PARAMS: &str = r#"
runbook(#{
    name: "Patch web",
    description: "Drain, patch, re-enable",
    params: #{
        server: #{ help: "the host", required: true },
        dir: #{ help: "where backups go", default_value: "D:\\Backups" },
        note: #{ },
    },
});
step("a", #{ run: |ctx| log(ctx.params.server) });
gate("g", #{ after: "a", instructions: "look" });
"#;

fn json(out: &crate::harness::Output) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

#[test]
fn completions_for_each_shell_mention_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = Test::new().args(&["completions", shell]).run();
        assert_eq!(out.code, 0, "{shell}: {out:?}");
        for sub in [
            "list",
            "check",
            "show",
            "run",
            "resume",
            "approve",
            "completions",
        ] {
            assert!(out.stdout.contains(sub), "{shell} completion lacks `{sub}`");
        }
        assert!(out.stdout.contains("state-dir"), "{shell}: flags missing");
    }
    let bad = Test::new().args(&["completions", "tcsh"]).run();
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("bash"), "{}", bad.stderr);
}

#[test]
fn list_json_names_every_shipped_runbook_with_title_and_description() {
    let out = Test::new().args(&["list", "--json"]).run();
    assert_eq!(out.code, 0, "{out:?}");
    let doc = json(&out);
    let items = doc.as_array().expect("an array");
    let names: Vec<&str> = items.iter().filter_map(|i| i["name"].as_str()).collect();
    assert_eq!(names, waymark::shipped::runbook_names());
    // onbox needs `--param server`: its declaration is still read, not guessed from text.
    let onbox = items
        .iter()
        .find(|i| i["name"] == "itms-7.6/onbox")
        .expect("onbox");
    assert_eq!(onbox["title"], "ITMS 7.6 on-box upgrade");
    assert!(onbox["description"].as_str().unwrap().contains("In-place"));
}

#[test]
fn check_json_gives_counts_or_every_error_with_its_position() {
    let ok = Test::new()
        .file("r.rhai", WITH_PARAMS)
        .args(&["check", "r.rhai", "--param", "server=ns1", "--json"])
        .run();
    assert_eq!(ok.code, 0, "{ok:?}");
    let doc = json(&ok);
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["runbook"], "Patch web");
    assert_eq!(
        (doc["steps"].as_u64(), doc["gates"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(doc["waves"], 2);

    let bad = Test::new()
        .file(
            "r.rhai",
            "runbook(#{ name: \"x\" });\nstep(\"a\", #{ retries: 1, timout: \"5s\" });\nstep(\"b\", #{ after: \"nope\" });\n",
        )
        .args(&["check", "r.rhai", "--json"])
        .run();
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(
        bad.stderr.is_empty(),
        "JSON mode keeps stderr quiet: {}",
        bad.stderr
    );
    let doc = json(&bad);
    assert_eq!(doc["ok"], false);
    let errors = doc["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{doc:#}");
    let timout = errors
        .iter()
        .find(|e| e["message"].as_str().unwrap().contains("timout"))
        .expect("the misspelt option");
    assert_eq!(
        (timout["file"].as_str(), timout["line"].as_u64()),
        (Some("r.rhai"), Some(2))
    );
    assert!(timout["help"].as_str().unwrap().contains("timeout"));
    assert!(timout["rendered"].as_str().unwrap().contains("r.rhai:2:"));

    let missing = Test::new()
        .args(&["check", "no-such-runbook", "--json"])
        .run();
    assert_eq!(missing.code, 2);
    assert_eq!(json(&missing)["errors"][0]["line"], serde_json::Value::Null);
}

#[test]
fn show_lists_parameters_with_help_required_and_default_without_any_param() {
    let t = Test::new().file("r.rhai", WITH_PARAMS);
    let out = t.command().args(["show", "r.rhai"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.starts_with("r.rhai — Patch web\n  Drain, patch, re-enable\n"),
        "{text}"
    );
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no `{name}` line in:\n{text}"))
            .to_string()
    };
    assert!(line("server").contains("required") && line("server").contains("the host"));
    assert!(
        line("dir").contains(r#"default "D:\Backups""#),
        "{}",
        line("dir")
    );
    assert!(line("note").contains("optional"));
    assert!(
        text.contains("run: waymark run r.rhai --param server=VALUE"),
        "{text}"
    );

    let out = t
        .command()
        .args(["show", "r.rhai", "--json"])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["name"], "Patch web");
    assert_eq!(doc["params"]["server"]["required"], true);
    assert_eq!(doc["params"]["dir"]["default"], r"D:\Backups");
    assert_eq!(doc["params"]["note"]["default"], serde_json::Value::Null);
}

#[test]
fn show_reports_a_broken_runbook_instead_of_describing_it() {
    let out = Test::new()
        .file(
            "r.rhai",
            "runbook(#{ name: \"x\", descripton: \"typo\" });\n",
        )
        .args(&["show", "r.rhai"])
        .run();
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("r.rhai:1:"), "{}", out.stderr);
    assert!(out.stderr.contains("description"), "{}", out.stderr);
}

#[test]
fn defs_writes_definition_files_for_waymark_functions_and_every_stdlib_module() {
    let t = Test::new();
    let out = t.command().args(["defs", "editor"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let dir = t.path().join("editor");
    let stat = std::fs::read_to_string(dir.join("__static__.d.rhai")).unwrap();
    for f in [
        "fn exec(",
        "fn sh(",
        "fn wait_until(",
        "fn runbook(",
        "fn step(",
        "fn gate(",
        "fn backup_cmdb(",
    ] {
        assert!(stat.contains(f), "__static__.d.rhai lacks `{f}`");
    }
    assert!(
        !stat.contains("EvalAltResult") && !stat.contains(") -> ;"),
        "unparseable return types"
    );
    for m in waymark::shipped::stdlib_names() {
        let text = std::fs::read_to_string(dir.join(format!("{m}.d.rhai")))
            .unwrap_or_else(|e| panic!("{m}.d.rhai: {e}"));
        assert!(text.starts_with(&format!("module {m};")), "{m}: {text}");
    }
    let onbox = std::fs::read_to_string(dir.join("onbox.d.rhai")).unwrap();
    assert!(onbox.contains("fn declare_onbox("), "{onbox}");

    let blocked = Test::new().file("taken", "a file, not a directory");
    let out = blocked.command().args(["defs", "taken"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("taken"));
}

#[test]
fn ps_stdin_option_silently_replaced_the_script() {
    let out = Test::new()
        .file(
            "r.rhai",
            "runbook(#{ name: \"x\" });\nstep(\"p\", #{ run: |ctx| ps(\"Get-Date\", #{ stdin: \"y\" }) });\n",
        )
        .args(&["run", "r.rhai", "--yes"])
        .run();
    assert_eq!(out.code, 1, "{out:?}");
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("`stdin` is not available with ps"), "{all}");
}
