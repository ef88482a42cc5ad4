//! `docs/runbook-language.md` against the code: every option key, `ctx` field, estate error
//! field and function a runbook can use must be described there (estate operations in
//! `docs/estate-ops.md`). The lists come from the code's own tables and from the Rhai
//! engine's registry, so adding an option or a primitive without documenting it fails here.

use crate::harness::Test;
use std::collections::BTreeSet;
use waymark::dsl::{engine, estate_ops, exec, options, primitives, rollout, strict, StepKind};

fn doc(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The text of the `## title` section (up to the next `## ` heading).
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let head = format!("\n## {title}\n");
    let start = doc
        .find(&head)
        .unwrap_or_else(|| panic!("docs/runbook-language.md has no section `## {title}`"))
        + head.len();
    let rest = &doc[start..];
    &rest[..rest.find("\n## ").unwrap_or(rest.len())]
}

/// The first-column keys of a section's table rows: "| `key` | ..." → "key".
fn table_keys(section: &str) -> BTreeSet<String> {
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split_once("` |"))
        .map(|(k, _)| k.to_string())
        .collect()
}

fn assert_same(what: &str, code: &[&str], documented: BTreeSet<String>) {
    let code: BTreeSet<String> = code.iter().map(|s| s.to_string()).collect();
    let missing: Vec<_> = code.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&code).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "docs/runbook-language.md, {what}: not documented {missing:?}; documented but not in the code {stale:?}"
    );
}

#[test]
fn reference_lists_every_option_and_function() {
    let reference = doc("runbook-language.md");
    for (title, keys) in [
        ("Runbook options", options::RUNBOOK_OPTIONS),
        ("Parameter options", options::PARAM_OPTIONS),
        ("Notify options", options::NOTIFY_OPTIONS),
        ("Step options", options::STEP_OPTIONS),
        ("Gate options", options::GATE_OPTIONS),
        ("Process options", exec::OPTIONS),
        ("Rollout options", rollout::ROLLOUT_OPTIONS),
    ] {
        assert_same(title, keys, table_keys(section(&reference, title)));
    }

    let ctx: BTreeSet<String> = table_keys(section(&reference, "`ctx`"))
        .into_iter()
        .filter_map(|k| k.strip_prefix("ctx.").map(str::to_string))
        .collect();
    assert_same("`ctx` fields", strict::CTX_FIELDS, ctx);

    let errors = section(&reference, "Errors");
    assert_same(
        "estate_error fields",
        estate_ops::THROWN_FIELDS,
        table_keys(errors),
    );
    for kind in estate_ops::FINAL_KINDS {
        assert!(
            errors.contains(&format!("`{kind}`")),
            "final estate error kind `{kind}` is not in the Errors section"
        );
    }

    let functions = section(&reference, "Functions inside steps");
    let wait_row = functions
        .lines()
        .find(|l| l.starts_with("| `wait_until("))
        .expect("a wait_until row");
    for k in primitives::WAIT_OPTIONS {
        assert!(
            wait_row.contains(k),
            "wait_until option `{k}` is not in its row"
        );
    }

    // Every function waymark registers, minus Rhai's own (its standard library, and the
    // operators, getters and indexers waymark overloads for its types).
    let name_of = |sig: &String| sig.split('(').next().unwrap_or("").to_string();
    let rhai_own: BTreeSet<String> = rhai::Engine::new()
        .gen_fn_signatures(true)
        .iter()
        .map(name_of)
        .collect();
    let ops: BTreeSet<&str> = waymark::estate::OPS.iter().map(|o| o.name).collect();
    let mut names: BTreeSet<String> = engine::new_engine()
        .gen_fn_signatures(false)
        .iter()
        .map(name_of)
        .filter(|n| n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .filter(|n| n.starts_with(|c: char| c.is_ascii_alphabetic()))
        .filter(|n| !rhai_own.contains(n))
        .collect();
    names.extend(
        [
            "runbook",
            "rollout",
            StepKind::Step.as_str(),
            StepKind::Gate.as_str(),
        ]
        .map(str::to_string),
    );
    assert!(
        names.contains("exec") && names.contains("backup_cmdb"),
        "the engine's registry was not read: {names:?}"
    );
    let estate_ops_doc = doc("estate-ops.md");
    let mut missing = Vec::new();
    for n in &names {
        let found = if ops.contains(n.as_str()) {
            estate_ops_doc.contains(&format!("`{n}`")) || estate_ops_doc.contains(&format!("`{n}("))
        } else {
            reference.contains(&format!("`{n}("))
        };
        if !found {
            missing.push(n.clone());
        }
    }
    assert!(
        missing.is_empty(),
        "functions a runbook can call but the reference does not describe (as `name(`; estate operations in docs/estate-ops.md): {missing:?}"
    );
}

#[test]
fn user_visible_text_cites_docs_not_spec() {
    // Help text, errors and the shipped scripts reach users, who do not have SPEC.
    let mut texts = Vec::new();
    for sub in [
        "", "status", "plan", "lab show", "runs", "check", "list", "show",
    ] {
        let mut args: Vec<&str> = sub.split_whitespace().collect();
        args.push("--help");
        texts.push(Test::new().args(&args).run().stdout);
    }
    let bad_inventory = Test::new()
        .file("inv.toml", "driver = \"lab\"\nsevers = 1\n")
        .args(&["check", "itms-7.6/preflight", "--inventory", "inv.toml"])
        .run();
    assert_eq!(bad_inventory.code, 2, "{bad_inventory:?}");
    texts.push(bad_inventory.stderr);
    for t in &texts {
        assert!(!t.contains("SPEC"), "user-visible text cites SPEC:\n{t}");
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["stdlib", "runbooks/itms-7.6"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(!text.contains("SPEC"), "{} cites SPEC", path.display());
        }
    }
}

#[test]
fn doc_comment_before_a_statement_is_a_load_error_at_its_line() {
    // rhai's `metadata` feature (which lets waymark read its own function registry) keeps
    // `///` for functions: elsewhere it is a diagnostic, documented in the reference.
    let out = Test::new()
        .file(
            "r.rhai",
            "runbook(#{ name: \"x\" });\n/// not a function\nlet a = 1;\n",
        )
        .args(&["check", "r.rhai"])
        .run();
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("r.rhai:2:1"), "{}", out.stderr);
    assert!(out.stderr.contains("function definition"), "{}", out.stderr);
}
