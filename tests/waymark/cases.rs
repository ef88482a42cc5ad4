//! Data-driven DSL and plan tests: every `tests/cases/**/*.rhai` states in its header
//! comments what loading and planning it must give.
//!
//! Header lines: `// expect-waves: a | b c` (the plan's waves), `// expect-error: TEXT`
//! (a diagnostic whose message contains TEXT; repeat for several, in order), `// at: L:C`
//! (primary position of the first error), `// also: L:C` (a secondary position),
//! `// help: TEXT` (its help contains TEXT), `// params: k=v k2=v2`.

use std::path::{Path, PathBuf};
use waymark::diagnostic::Diagnostic;
use waymark::dsl::{LoadRequest, RunbookRef};
use waymark::plan::Plan;

struct Expect {
    waves: Option<String>,
    errors: Vec<String>,
    at: Option<(usize, usize)>,
    also: Option<(usize, usize)>,
    help: Option<String>,
    params: Vec<(String, String)>,
}

fn header(path: &Path) -> Expect {
    let text = std::fs::read_to_string(path).unwrap();
    let mut e = Expect {
        waves: None,
        errors: vec![],
        at: None,
        also: None,
        help: None,
        params: vec![],
    };
    let pos = |s: &str| {
        let (l, c) = s.trim().split_once(':').unwrap();
        (l.parse().unwrap(), c.parse().unwrap())
    };
    for line in text.lines().take_while(|l| l.starts_with("//")) {
        let l = line.trim_start_matches("//").trim();
        if let Some(v) = l.strip_prefix("expect-waves:") {
            e.waves = Some(v.trim().to_string());
        } else if let Some(v) = l.strip_prefix("expect-error:") {
            e.errors.push(v.trim().to_string());
        } else if let Some(v) = l.strip_prefix("at:") {
            e.at = Some(pos(v));
        } else if let Some(v) = l.strip_prefix("also:") {
            e.also = Some(pos(v));
        } else if let Some(v) = l.strip_prefix("help:") {
            e.help = Some(v.trim().to_string());
        } else if let Some(v) = l.strip_prefix("params:") {
            e.params = v
                .split_whitespace()
                .map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    (k.to_string(), v.to_string())
                })
                .collect();
        }
    }
    e
}

fn load_and_plan(path: &Path, params: Vec<(String, String)>) -> Result<Plan, Vec<Diagnostic>> {
    let req = LoadRequest {
        runbook: RunbookRef::Path(path.to_path_buf()),
        params,
        inventory: serde_json::Value::Null,
    };
    Plan::load(&req).map(|(_, p)| p).map_err(|e| e.diagnostics)
}

fn cases(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cases")
        .join(dir);
    let mut v: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    assert!(!v.is_empty());
    v
}

fn waves_of(plan: &Plan) -> String {
    plan.waves
        .iter()
        .map(|w| {
            let mut names: Vec<&str> = w
                .iter()
                .map(|&i| plan.steps[i].decl.name.as_str())
                .collect();
            names.sort_unstable();
            names.join(" ")
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

#[test]
fn plan_cases_give_their_waves() {
    for path in cases("plan") {
        let e = header(&path);
        let plan = load_and_plan(&path, e.params)
            .unwrap_or_else(|d| panic!("{}: unexpected errors: {d:#?}", path.display()));
        assert_eq!(
            waves_of(&plan),
            e.waves.expect("plan case needs expect-waves"),
            "{}",
            path.display()
        );
    }
}

#[test]
fn error_cases_give_their_diagnostics() {
    for path in cases("error") {
        let e = header(&path);
        assert!(
            !e.errors.is_empty(),
            "{}: error case needs expect-error",
            path.display()
        );
        let diags = match load_and_plan(&path, e.params) {
            Ok(_) => panic!("{}: loaded without error", path.display()),
            Err(d) => d,
        };
        let msgs: Vec<&str> = diags.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            diags.len(),
            e.errors.len(),
            "{}: got {msgs:#?}",
            path.display()
        );
        for (d, want) in diags.iter().zip(&e.errors) {
            assert!(
                d.message.contains(want.as_str()),
                "{}: `{}` lacks `{want}`",
                path.display(),
                d.message
            );
        }
        let first = &diags[0];
        if let Some((l, c)) = e.at {
            let p = first
                .primary
                .as_ref()
                .unwrap_or_else(|| panic!("{}: no position", path.display()));
            assert_eq!(
                (p.pos.line, p.pos.col),
                (l, c),
                "{}: {}",
                path.display(),
                first.message
            );
            assert!(
                p.pos
                    .file
                    .ends_with(path.file_name().unwrap().to_str().unwrap()),
                "{}",
                p.pos.file
            );
        }
        if let Some((l, c)) = e.also {
            assert!(
                first
                    .secondary
                    .iter()
                    .any(|s| (s.pos.line, s.pos.col) == (l, c)),
                "{}: secondary {:?}",
                path.display(),
                first.secondary
            );
        }
        if let Some(h) = e.help {
            let got = first.help.clone().unwrap_or_default();
            assert!(
                got.contains(&h),
                "{}: help `{got}` lacks `{h}`",
                path.display()
            );
        }
    }
}
