//! `list`, `check` and `plan`: commands that load and validate but run nothing.

use super::load::load_and_plan;
use super::{PlanFormat, RunbookArgs};
use crate::dsl::{self, LoadRequest, RunbookRef, StepKind};
use crate::exit::{CliError, Exit};
use crate::render;
use crate::shipped;

/// `waymark list`: every shipped runbook with its declared name and description.
pub(super) fn list(json: bool) -> Result<Exit, CliError> {
    let names = shipped::runbook_names();
    let described: Vec<(&str, String, String)> = names
        .iter()
        .map(|&n| {
            let (title, description) = describe(n);
            (n, title, description)
        })
        .collect();
    if json {
        let doc: Vec<_> = described
            .iter()
            .map(|(n, t, d)| serde_json::json!({ "name": n, "title": t, "description": d }))
            .collect();
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    if names.is_empty() {
        outln!("no runbooks are shipped in this build");
        return Ok(Exit::Ok);
    }
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    for (name, title, description) in described {
        outln!("{name:width$}  {title} — {description}");
    }
    Ok(Exit::Ok)
}

/// A shipped runbook's declared name and description. Loading needs required
/// parameters; the declaration survives their absence, and the text is the last resort.
fn describe(name: &str) -> (String, String) {
    let req = LoadRequest {
        runbook: RunbookRef::Shipped(name.to_string()),
        params: Vec::new(),
        inventory: crate::estate::load_inventory(None)
            .map(|i| i.to_json())
            .unwrap_or_default(),
    };
    match dsl::load(&req) {
        Ok(rb) => (rb.decl.name, rb.decl.description),
        Err(e) => match e.declared {
            Some(d) => (d.name, d.description),
            None => describe_statically(shipped::runbook(name).unwrap_or_default()),
        },
    }
}

// For a runbook that does not get as far as `runbook()`: the `name:`/`description:` strings.
fn describe_statically(src: &str) -> (String, String) {
    let grab = |key: &str| {
        src.lines()
            .find_map(|l| l.trim().strip_prefix(key))
            .map(|rest| {
                rest.trim()
                    .trim_start_matches(':')
                    .trim()
                    .trim_end_matches(',')
                    .trim_matches('"')
                    .to_string()
            })
            .unwrap_or_default()
    };
    (grab("name"), grab("description"))
}

/// `waymark check`: load and validate; print a one-line summary, or with `json` one
/// document either way (exit 2 still says it is invalid).
pub(super) fn check(args: &RunbookArgs, json: bool) -> Result<Exit, CliError> {
    if json {
        return check_json(args);
    }
    let (_, rb, plan) = load_and_plan(args)?;
    let (steps, gates) = counts(&plan);
    outln!(
        "ok: {} ({}) — {} steps, {} gates, {} waves",
        rb.decl.name,
        rb.file,
        steps,
        gates,
        plan.waves.len()
    );
    super::leave_to_exit((rb, plan));
    Ok(Exit::Ok)
}

fn counts(plan: &crate::plan::Plan) -> (usize, usize) {
    let gates = plan
        .steps
        .iter()
        .filter(|s| s.decl.kind == StepKind::Gate)
        .count();
    (plan.steps.len() - gates, gates)
}

// `check --json`: `{"ok": true, "runbook", "file", "steps", "gates", "waves"}` or
// `{"ok": false, "errors": [{"message", "file", "line", "column", "help", "rendered"}]}`.
fn check_json(args: &RunbookArgs) -> Result<Exit, CliError> {
    let errors = match super::load::load_and_plan_diagnostics(args) {
        Ok((rb, plan)) => {
            let (steps, gates) = counts(&plan);
            let doc = serde_json::json!({
                "ok": true,
                "runbook": rb.decl.name,
                "file": rb.file.as_ref(),
                "steps": steps,
                "gates": gates,
                "waves": plan.waves.len(),
            });
            outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
            super::leave_to_exit((rb, plan));
            return Ok(Exit::Ok);
        }
        Err((diags, sources)) => diags
            .iter()
            .map(|d| {
                let pos = d.primary.as_ref().map(|l| &l.pos);
                serde_json::json!({
                    "message": d.message,
                    "file": pos.map(|p| p.file.as_ref()),
                    "line": pos.map(|p| p.line),
                    "column": pos.map(|p| p.col),
                    "help": d.help,
                    "rendered": crate::diagnostic::render(std::slice::from_ref(d), &sources),
                })
            })
            .collect::<Vec<_>>(),
    };
    let doc = serde_json::json!({ "ok": false, "errors": errors });
    outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    Ok(Exit::BadInput)
}

/// `waymark plan`: the validated plan in the chosen format.
pub(super) fn plan(args: &RunbookArgs, format: PlanFormat) -> Result<Exit, CliError> {
    let (_, rb, plan) = load_and_plan(args)?;
    let out = match format {
        PlanFormat::Text => render::plan_text(&plan),
        PlanFormat::Json => {
            serde_json::to_string_pretty(&render::plan_json(&plan)).unwrap_or_default() + "\n"
        }
        PlanFormat::Mermaid => render::plan_mermaid(&plan),
        PlanFormat::Dot => render::plan_dot(&plan),
    };
    out!("{out}");
    super::leave_to_exit((rb, plan));
    Ok(Exit::Ok)
}
