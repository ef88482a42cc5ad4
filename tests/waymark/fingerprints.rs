//! Step fingerprints: what an edit must change (the closure, anything it can call, its
//! options) and what it must not (code only other steps use, moving code around), and
//! compatibility with journals written before fingerprints covered called functions.

use std::path::Path;
use waymark::dsl::{LoadRequest, RunbookRef};
use waymark::plan::Plan;

fn plan_of(dir: &Path, files: &[(&str, &str)]) -> Plan {
    for (name, text) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    let req = LoadRequest {
        runbook: RunbookRef::Path(dir.join("rb.rhai")),
        params: vec![],
        inventory: serde_json::Value::Null,
    };
    Plan::load(&req)
        .unwrap_or_else(|e| panic!("{}", e.render()))
        .1
}

fn fp(plan: &Plan, step: &str) -> String {
    plan.fingerprints[plan.position(step).unwrap()].clone()
}

const LIB: &str = r#"
import "lib/deep" as deep;
fn backup(db) { `backup ${db} ` + deep::flags() }
fn restore(db) { `restore ${db}` }
"#;
const DEEP: &str = r#"fn flags() { "-b" }"#;
const RB: &str = r#"import "lib/sql" as sql;
runbook(#{ name: "f", description: "d" });
fn local_note(s) { `note ${s}` }
step("backup", #{ run: |ctx| sh(sql::backup("cmdb")) });
step("restore", #{ after: "backup", run: |ctx| sh(sql::restore("cmdb")) });
step("note", #{ run: |ctx| log(local_note("x")) });
"#;

fn fixture(dir: &Path) -> Plan {
    plan_of(
        dir,
        &[
            ("rb.rhai", RB),
            ("lib/sql.rhai", LIB),
            ("lib/deep.rhai", DEEP),
        ],
    )
}

#[test]
fn an_edit_to_an_imported_helper_went_unnoticed() {
    let dir = tempfile::tempdir().unwrap();
    let before = fixture(dir.path());
    // A helper of a helper, two imports away, used only by `backup`.
    let after = plan_of(
        dir.path(),
        &[("lib/deep.rhai", r#"fn flags() { "-b -x" }"#)],
    );
    assert_ne!(fp(&before, "backup"), fp(&after, "backup"));
    assert_eq!(
        fp(&before, "restore"),
        fp(&after, "restore"),
        "restore does not call it"
    );
    assert_eq!(fp(&before, "note"), fp(&after, "note"));
}

#[test]
fn an_edit_to_a_script_function_changes_only_the_steps_that_call_it() {
    let dir = tempfile::tempdir().unwrap();
    let before = fixture(dir.path());
    let after = plan_of(
        dir.path(),
        &[("rb.rhai", &RB.replace("`note ${s}`", "`NOTE ${s}`"))],
    );
    assert_ne!(fp(&before, "note"), fp(&after, "note"));
    assert_eq!(fp(&before, "backup"), fp(&after, "backup"));
    // Moving code (a blank line, a comment elsewhere) changes nothing.
    let moved = plan_of(
        dir.path(),
        &[
            ("rb.rhai", &format!("// moved\n\n{RB}")),
            ("lib/sql.rhai", &format!("\n\n{LIB}")),
        ],
    );
    assert_eq!(fp(&before, "backup"), fp(&moved, "backup"));
}

#[test]
fn a_function_reached_through_fn_pointer_or_closure_counts() {
    let dir = tempfile::tempdir().unwrap();
    let rb = |inner: &str| {
        format!(
            r#"runbook(#{{ name: "f", description: "d" }});
fn probe() {{ {inner} }}
fn poll() {{ wait_until(|| call(Fn("probe")), #{{ timeout: "1s" }}) }}
step("w", #{{ run: |ctx| poll() }});
"#
        )
    };
    let before = plan_of(dir.path(), &[("rb.rhai", &rb("true"))]);
    let after = plan_of(dir.path(), &[("rb.rhai", &rb("false"))]);
    assert_ne!(fp(&before, "w"), fp(&after, "w"));
}

// The fingerprints an older waymark (bare 16 hex digits, closure text only) recorded
// for this runbook: a run it started must not look changed to this one.
#[test]
fn fingerprints_of_journals_written_before_v2_are_still_reproduced() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_of(
        dir.path(),
        &[(
            "rb.rhai",
            r#"runbook(#{ name: "fp", description: "d", params: #{ p: #{ help: "h", default_value: "x" } } });
fn helper(x) { x + 1 }
step("a", #{ run: |ctx| helper(1), retries: 2, timeout: "5m", tags: ["t"] });
gate("g", #{ after: "a", instructions: "Do it.", approvals: 2 });
"#,
        )],
    );
    let params = waymark::plan::params_text(&[("p".to_string(), "x".to_string())].into());
    let v1 = |s: &str| waymark::plan::fingerprint_v1(&plan.step(s).unwrap().decl, &params);
    assert_eq!(v1("a"), "25ec46b3aa6249c2");
    assert_eq!(v1("g"), "e6f5889d7125c929");
    assert!(fp(&plan, "a").starts_with(waymark::plan::FINGERPRINT_V2));
}

// An imported module's exported constant (SQL text kept in a helper module, say) is part
// of what a closure that reads it can do.
#[test]
fn an_edit_to_an_imported_constant_changes_the_steps_that_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let rb = r#"import "lib/q" as q;
runbook(#{ name: "c", description: "d" });
step("a", #{ run: |ctx| sh(q::BACKUP) });
step("b", #{ run: |ctx| sh("true") });
"#;
    let before = plan_of(
        dir.path(),
        &[
            ("rb.rhai", rb),
            ("lib/q.rhai", "export const BACKUP = \"backup\";"),
        ],
    );
    let after = plan_of(
        dir.path(),
        &[("lib/q.rhai", "export const BACKUP = \"backup --compress\";")],
    );
    assert_ne!(fp(&before, "a"), fp(&after, "a"));
    assert_eq!(fp(&before, "b"), fp(&after, "b"));
}

// A run's journal keeps the v2 fingerprints this waymark computed; a later waymark must
// compute the same ones for the same files, or every resume would see changed steps.
// These values are pinned from the release that wrote them: a change in how the runbook
// is parsed, optimised or walked must not move them.
#[test]
fn v2_fingerprints_of_unchanged_files_stay_what_journals_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let plan = fixture(dir.path());
    let other = tempfile::tempdir().unwrap();
    let pointers = plan_of(
        other.path(),
        &[
            (
                "rb.rhai",
                r#"import "lib/q" as q;
runbook(#{ name: "f", description: "d", params: #{ p: #{ help: "h", default_value: "x" } } });
const LIMIT = 3;
fn probe() { true }
fn poll() { wait_until(|| call(Fn("probe")), #{ timeout: "1s" }) }
step("w", #{ run: |ctx| poll(), retries: 2, timeout: "5m", tags: ["t"] });
step("c", #{ after: "w", run: |ctx| sh(q::BACKUP + LIMIT), check: |ctx| 1 + 2 == 3, undo: |ctx| if false { probe() } });
gate("g", #{ after: "c", instructions: "Do it.", approvals: 2 });
"#,
            ),
            ("lib/q.rhai", "export const BACKUP = \"backup\";"),
        ],
    );
    let got: Vec<String> = [&plan, &pointers]
        .into_iter()
        .flat_map(|p| p.steps.iter().zip(&p.fingerprints))
        .map(|(s, fp)| format!("{} {fp}", s.decl.name))
        .collect();
    assert_eq!(got, PINNED, "{got:#?}");
}

const PINNED: &[&str] = &[
    "backup v2-cd466f7785173736",
    "restore v2-20077baf70552f4c",
    "note v2-06c66a9a6edc05d4",
    "w v2-df93cc1cb1a10c9b",
    "c v2-db98fd567f56bf89",
    "g v2-f170b509a8c33cc8",
];
