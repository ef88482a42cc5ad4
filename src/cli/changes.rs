//! What changed in a runbook since a run started, in words an operator can check: the
//! steps whose fingerprints differ, and for each a diff of its option values and of the
//! text of its closures and of every function they can call. `resume` and `rollback`
//! refuse to act on an edited definition of something that already happened; the diff
//! is how the operator decides whether `--accept-changes` is right.

use crate::dsl::{Callable, RunbookRef, StepDecl};
use crate::journal::{Event, PlannedStep};
use crate::plan::{self, Plan};
use crate::run_state::RunState;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

/// The `run_sources` record of a loaded runbook: every file its load read, keyed as
/// diagnostics name them, and the fingerprints of `steps` (accepted changes).
pub(crate) fn sources_event(rb: &crate::dsl::Runbook, steps: Vec<PlannedStep>) -> Event {
    Event::RunSources {
        main: rb.file.to_string(),
        files: rb
            .sources
            .files()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        steps,
    }
}

/// The plan as the run's latest source snapshot defined it, loaded with the recorded
/// params and inventory; `None` when the journal has no snapshot (an older waymark) or
/// it no longer loads (the reason is then given instead of a diff).
pub(crate) fn recorded_plan(state: &RunState) -> Result<Plan, String> {
    let Some((main, files)) = &state.sources else {
        return Err("the journal has no copy of the sources (written by an older waymark)".into());
    };
    let inventory =
        crate::estate::load_inventory(state.inventory.as_deref().map(std::path::Path::new))
            .map(|inv| inv.to_json())
            .map_err(|e| e.to_string())?;
    let req = crate::dsl::LoadRequest {
        runbook: RunbookRef::Recorded {
            main: main.clone(),
            files: Arc::new(files.clone()),
        },
        params: state
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        inventory,
    };
    Plan::load(&req)
        .map(|(_, p)| p)
        .map_err(|e| format!("the recorded sources no longer load: {}", e.render().trim()))
}

/// A diff of everything the fingerprint covers between the recorded and current step,
/// indented for the terminal; empty when nothing differs but the params.
pub(crate) fn step_diff(old: &StepDecl, new: &StepDecl) -> String {
    let mut out = String::new();
    let now: BTreeMap<&str, String> = plan::option_values(new).into_iter().collect();
    for (k, was) in plan::option_values(old) {
        let is = now.get(k).cloned().unwrap_or_default();
        if was != is {
            let _ = writeln!(out, "    {k}: {} → {}", shown(&was), shown(&is));
        }
    }
    for ((k, a), b) in crate::dsl::CLOSURES
        .into_iter()
        .zip(old.closures())
        .zip(new.closures())
    {
        out.push_str(&closure_diff(k, a, b));
    }
    out.push_str(&callee_diff(old.closures(), new.closures()));
    out
}

/// A diff of a step's `undo` and of what it can call; empty when they are unchanged.
pub(crate) fn undo_diff(old: &StepDecl, new: &StepDecl) -> String {
    let mut out = closure_diff("undo", old.undo.as_deref(), new.undo.as_deref());
    out.push_str(&callee_diff([old.undo.as_deref()], [new.undo.as_deref()]));
    out
}

fn shown(v: &str) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        format!("{v:?}")
    }
}

fn closure_diff(what: &str, old: Option<&Callable>, new: Option<&Callable>) -> String {
    let text = |c: Option<&Callable>| c.map(|c| c.source.clone()).unwrap_or_default();
    let (a, b) = (text(old), text(new));
    if a == b {
        return String::new();
    }
    format!("    {what}:\n{}", unified(&a, &b))
}

fn callee_diff<const N: usize, const M: usize>(
    old: [Option<&Callable>; N],
    new: [Option<&Callable>; M],
) -> String {
    let all = |cs: &[Option<&Callable>]| -> BTreeMap<Arc<str>, (Arc<str>, Arc<str>)> {
        cs.iter()
            .flatten()
            .flat_map(|c| c.callees.iter())
            .map(|f| (f.name.clone(), (f.file.clone(), f.source.clone())))
            .collect()
    };
    let (a, b) = (all(&old), all(&new));
    let mut out = String::new();
    let names: std::collections::BTreeSet<&Arc<str>> = a.keys().chain(b.keys()).collect();
    for name in names {
        let (was, is) = (a.get(name), b.get(name));
        if was.map(|x| &x.1) == is.map(|x| &x.1) {
            continue;
        }
        let file = is.or(was).map(|x| x.0.to_string()).unwrap_or_default();
        let text =
            |x: Option<&(Arc<str>, Arc<str>)>| x.map(|x| x.1.to_string()).unwrap_or_default();
        let label = if name.starts_with("const ") {
            name.to_string()
        } else {
            format!("fn {name}")
        };
        let _ = write!(
            out,
            "    {label} ({file}){}:\n{}",
            match (was, is) {
                (None, _) => ", newly called",
                (_, None) => ", no longer called",
                _ => "",
            },
            unified(&text(was), &text(is))
        );
    }
    out
}

// A unified diff, `-` recorded / `+` now, indented under its heading.
fn unified(a: &str, b: &str) -> String {
    let (a, b) = (format!("{a}\n"), format!("{b}\n"));
    let diff = similar::TextDiff::from_lines(&a, &b);
    let text = diff
        .unified_diff()
        .context_radius(2)
        .header("recorded", "now")
        .to_string();
    text.lines().map(|l| format!("      {l}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::LoadRequest;
    use crate::resume::differs;

    fn load(runbook: RunbookRef) -> (crate::dsl::Runbook, Plan) {
        Plan::load(&LoadRequest {
            runbook,
            params: vec![],
            inventory: crate::estate::load_inventory(None).unwrap().to_json(),
        })
        .unwrap_or_else(|e| panic!("{}", e.render()))
    }

    fn recorded(rb: &crate::dsl::Runbook) -> RunbookRef {
        let Event::RunSources { main, files, .. } = sources_event(rb, Vec::new()) else {
            unreachable!()
        };
        RunbookRef::Recorded {
            main,
            files: Arc::new(files),
        }
    }

    // A diff is only as good as the plan rebuilt from the journal's copy of the sources.
    #[test]
    fn recorded_sources_rebuild_the_same_plan_for_shipped_and_file_runbooks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("lib")).unwrap();
        std::fs::write(
            dir.path().join("lib/sql.rhai"),
            "import \"lib/deep\" as d;\nfn backup(db) { `backup ${db}` + d::f() }",
        )
        .unwrap();
        std::fs::write(dir.path().join("lib/deep.rhai"), "fn f() { \"!\" }").unwrap();
        std::fs::write(
            dir.path().join("rb.rhai"),
            "import \"lib/sql\" as sql;\nrunbook(#{ name: \"r\", description: \"d\" });\nstep(\"a\", #{ run: |ctx| sh(sql::backup(\"x\")) });\n",
        )
        .unwrap();
        for runbook in [
            RunbookRef::Path(dir.path().join("rb.rhai")),
            RunbookRef::Shipped("itms-7.6/hierarchy".into()),
        ] {
            let (rb, plan) = load(runbook);
            let (_, again) = load(recorded(&rb));
            let fps = |p: &Plan| -> Vec<String> { p.fingerprints.clone() };
            assert_eq!(fps(&plan), fps(&again));
        }
    }

    #[test]
    fn a_v1_fingerprint_is_compared_by_the_v1_rule() {
        let (rb, plan) = load(RunbookRef::Shipped("itms-7.6/preflight".into()));
        let v1 = plan::fingerprint_v1(&plan.steps[0].decl, &plan::params_text(&rb.params));
        assert!(
            !differs(&v1, &plan, 0, &rb.params),
            "an older journal's step is unchanged"
        );
        assert!(!differs(&plan.fingerprints[0], &plan, 0, &rb.params));
        assert!(differs("0123456789abcdef", &plan, 0, &rb.params));
        assert!(differs("v2-0123456789abcdef", &plan, 0, &rb.params));
    }
}
