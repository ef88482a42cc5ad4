//! Author mistakes inside step closures fail loudly, with the name, a did-you-mean and
//! the position: at `check` where the name is a literal, at run time otherwise.

use crate::harness::{step, Test};

/// `run --keep-going` of `rb`, which must fail; its `status --json`.
fn run_failing(rb: &str) -> serde_json::Value {
    let t = Test::new()
        .file("rb.rhai", rb)
        .args(&["run", "rb.rhai", "--keep-going"]);
    let o = t.run();
    assert_eq!(o.code, 1, "{o:?}");
    t.status()
}

const HEAD: &str = r#"runbook(#{ name: "deploy", description: "d",
    params: #{ server: #{ help: "target host", default_value: "ns-hq" },
               note: #{ help: "optional, no default" } } });
"#;

#[test]
fn misspelled_param_in_a_closure_deployed_to_nothing() {
    let rb = format!(
        "{HEAD}step(\"deploy\", #{{ run: |ctx| sh(\"echo deploying to \" + ctx.params.sevrer + \" > out\") }});\n"
    );
    let t = Test::new().file("rb.rhai", &rb).args(&["check", "rb.rhai"]);
    let o = t.run();
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains("no parameter `sevrer`") && o.stderr.contains("did you mean `server`?"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("rb.rhai:4:"), "position: {}", o.stderr);
    // `run` refuses before anything happens.
    let o = t.bare().args(["run", "rb.rhai"]).output().unwrap();
    crate::harness::expect_code(&o, 2);
    assert!(!t.path().join("out").exists());
}

#[test]
fn misspelled_ctx_field_leaked_rhai_getter_text() {
    // Caught at check time where the name is a literal...
    let rb = format!("{HEAD}step(\"a\", #{{ run: |ctx| ctx.parms.server }});\n");
    let o = Test::new()
        .file("rb.rhai", &rb)
        .args(&["check", "rb.rhai"])
        .run();
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains("no field `parms`") && o.stderr.contains("did you mean `params`?"),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("getter"), "{}", o.stderr);
    // ...and at run time where it is computed.
    let rb = format!(
        "{HEAD}step(\"a\", #{{ run: |ctx| {{ let c = ctx; let f = \"parms\"; c[f].server }} }});\n\
         step(\"b\", #{{ run: |ctx| {{ let k = \"sevrer\"; ctx.params[k] }} }});\n\
         step(\"c\", #{{ run: |ctx| [ctx.params.server, ctx.params.note] }});\n"
    );
    let s = run_failing(&rb);
    let a = step(&s, "a")["error"].as_str().unwrap().to_string();
    assert!(
        a.contains("`ctx` has no field `parms` (did you mean `params`?)")
            && a.contains("rb.rhai:4:"),
        "{a}"
    );
    assert!(!a.contains("getter"), "{a}");
    let b = step(&s, "b")["error"].as_str().unwrap().to_string();
    assert!(
        b.contains("no parameter `sevrer`")
            && b.contains("did you mean `server`?")
            && b.contains("rb.rhai:5:"),
        "{b}"
    );
    // Declared parameters still read as their value, or () when they have none.
    assert_eq!(step(&s, "c")["output"], serde_json::json!(["ns-hq", null]));
}

#[test]
fn reading_the_output_of_a_step_that_is_not_an_ancestor_was_silently_unit() {
    let rb = format!(
        "{HEAD}let backup = step(\"backup\", #{{ run: |ctx| #{{ file: \"cmdb.bak\" }} }});\n\
         step(\"other\", #{{ run: |ctx| 1 }});\n\
         step(\"restore\", #{{ after: backup, run: |ctx| {{ let s = \"other\"; ctx.outputs[s] }} }});\n\
         step(\"typo\", #{{ after: backup, run: |ctx| {{ let s = \"backpu\"; ctx.outputs[s] }} }});\n\
         step(\"fine\", #{{ after: backup, run: |ctx| [type_of(ctx.outputs), \"backup\" in ctx.outputs, ctx.outputs.backup.file, ctx.outputs.keys()] }});\n"
    );
    let s = run_failing(&rb);
    let e = step(&s, "restore")["error"].as_str().unwrap().to_string();
    assert!(
        e.contains("step `other` is not an ancestor of `restore`") && e.contains("rb.rhai:6:"),
        "{e}"
    );
    let e = step(&s, "typo")["error"].as_str().unwrap().to_string();
    assert!(
        e.contains("no step `backpu`") && e.contains("did you mean `backup`?"),
        "{e}"
    );
    assert_eq!(
        step(&s, "fine")["output"],
        serde_json::json!(["map", true, "cmdb.bak", ["backup"]])
    );
}

#[test]
fn an_unstorable_output_failed_without_naming_the_step_or_its_closure() {
    let rb = format!("{HEAD}step(\"make\", #{{ run: |ctx| #{{ f: || 1 }} }});\n");
    let t = Test::new().file("rb.rhai", &rb).args(&["run", "rb.rhai"]);
    let o = t.run();
    assert_eq!(o.code, 1, "{o:?}");
    let e = step(&t.status(), "make")["error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        e.contains("step `make` returned a value that cannot be stored")
            && e.contains("a closure (Fn)")
            && e.contains("rb.rhai:4:1"),
        "{e}"
    );
}
