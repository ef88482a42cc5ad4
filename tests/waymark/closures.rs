//! The three Rhai pitfalls the contract requires waymark to solve, each pinned here by
//! calling the declared closures the way the scheduler does: later, on another thread.

use rhai::Dynamic;
use std::path::Path;
use waymark::dsl::{self, LoadRequest, Runbook, RunbookRef};

fn load_in(dir: &Path, files: &[(&str, &str)], main: &str) -> Runbook {
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let req = LoadRequest {
        runbook: RunbookRef::Path(dir.join(main)),
        params: vec![],
        inventory: serde_json::Value::Null,
    };
    dsl::load(&req).unwrap_or_else(|e| panic!("{}", e.render()))
}

fn run_on_other_thread(rb: &Runbook, step: &str) -> String {
    let decl = rb.steps.iter().find(|s| s.name == step).unwrap().clone();
    let engine = rb.engine.clone();
    std::thread::spawn(move || {
        let c = decl.run.expect("step has run");
        c.call(&engine, Dynamic::from_map(Default::default()))
            .unwrap_or_else(|e| panic!("{e}"))
            .to_string()
    })
    .join()
    .unwrap()
}

#[test]
fn top_level_import_is_visible_inside_a_step_closure() {
    let dir = tempfile::tempdir().unwrap();
    let rb = load_in(
        dir.path(),
        &[
            ("lib/greet.rhai", "fn hello(s) { `hello ${s}` }"),
            (
                "rb.rhai",
                r#"import "lib/greet" as g;
                   runbook(#{ name: "t", description: "d" });
                   step("a", #{ run: |ctx| g::hello("a") });"#,
            ),
        ],
        "rb.rhai",
    );
    assert_eq!(run_on_other_thread(&rb, "a"), "hello a");
}

#[test]
fn closure_declared_inside_a_module_function_sees_that_modules_imports() {
    let dir = tempfile::tempdir().unwrap();
    let rb = load_in(
        dir.path(),
        &[
            ("lib/inner.rhai", "fn twice(s) { s + s }"),
            (
                "lib/outer.rhai",
                r#"import "lib/inner" as inner;
                   fn declare(name) { step(name, #{ run: |ctx| inner::twice(name) }); }"#,
            ),
            (
                "rb.rhai",
                r#"import "lib/outer" as o;
                   runbook(#{ name: "t", description: "d" });
                   o::declare("ab");"#,
            ),
        ],
        "rb.rhai",
    );
    assert_eq!(run_on_other_thread(&rb, "ab"), "abab");
}

#[test]
fn each_loop_iteration_keeps_its_own_captured_value() {
    let dir = tempfile::tempdir().unwrap();
    let rb = load_in(
        dir.path(),
        &[(
            "rb.rhai",
            r#"runbook(#{ name: "t", description: "d" });
               for s in ["ns-hq", "ns-emea", "ns-apac"] {
                   let label = "upgrade " + s;
                   step("up:" + s, #{ run: |ctx| label + " (" + s + ")" });
               }"#,
        )],
        "rb.rhai",
    );
    for s in ["ns-hq", "ns-emea", "ns-apac"] {
        assert_eq!(
            run_on_other_thread(&rb, &format!("up:{s}")),
            format!("upgrade {s} ({s})")
        );
    }
}

#[test]
fn default_value_is_the_parameter_default() {
    let dir = tempfile::tempdir().unwrap();
    let rb = load_in(
        dir.path(),
        &[(
            "rb.rhai",
            r#"runbook(#{ name: "t", description: "d",
                   params: #{ dir: #{ help: "backups", default_value: "D:\\Backups" } } });
               step("a", #{ run: |ctx| params.dir });"#,
        )],
        "rb.rhai",
    );
    assert_eq!(
        rb.params.get("dir").map(String::as_str),
        Some("D:\\Backups")
    );
    assert_eq!(run_on_other_thread(&rb, "a"), "D:\\Backups");
}

#[test]
fn fingerprint_ignores_moved_lines_but_sees_changed_closures() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"runbook(#{ name: "t", description: "d" });
step("a", #{ run: |ctx| { 1 + 1 } });"#;
    let fp = |text: &str| {
        let rb = load_in(dir.path(), &[("rb.rhai", text)], "rb.rhai");
        waymark::plan::Plan::build(&rb).unwrap().fingerprints[0].clone()
    };
    let base = fp(body);
    assert_eq!(
        fp(&format!("// a comment\n\n{body}")),
        base,
        "moving a step must not change it"
    );
    assert_ne!(
        fp(&body.replace("1 + 1", "1 + 2")),
        base,
        "editing the closure must change it"
    );
    assert_ne!(
        fp(&body.replace("#{ run", "#{ retries: 1, run")),
        base,
        "editing options must change it"
    );
}
