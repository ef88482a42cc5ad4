//! `list`, `check` and `plan`: commands that load and validate but run nothing.

use super::load::load_and_plan;
use super::{PlanFormat, RunbookArgs};
use crate::dsl::{self, LoadRequest, RunbookRef, StepKind};
use crate::exit::{CliError, Exit};
use crate::render;
use crate::shipped;

/// `waymark list`: every shipped runbook with its declared name and description.
pub fn list() -> Result<Exit, CliError> {
    let names = shipped::runbook_names();
    if names.is_empty() {
        outln!("no runbooks are shipped in this build");
        return Ok(Exit::Ok);
    }
    let width = names.iter().map(|n| n.len()).max().unwrap_or(0);
    for name in names {
        // Loading needs required params; describe what loads, and say so when it cannot.
        let req = LoadRequest {
            runbook: RunbookRef::Shipped(name.to_string()),
            params: Vec::new(),
            inventory: crate::estate::load_inventory(None)
                .map(|i| i.to_json())
                .unwrap_or_default(),
        };
        let desc = match dsl::load(&req) {
            Ok(rb) => format!("{} — {}", rb.decl.name, rb.decl.description),
            Err(_) => describe_statically(shipped::runbook(name).unwrap_or_default()),
        };
        outln!("{name:width$}  {desc}");
    }
    Ok(Exit::Ok)
}

// For a runbook that cannot load without parameters: the `name:`/`description:` strings.
fn describe_statically(src: &str) -> String {
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
    format!("{} — {}", grab("name"), grab("description"))
}

/// `waymark check`: load and validate; print a one-line summary.
pub fn check(args: &RunbookArgs) -> Result<Exit, CliError> {
    let (_, rb, plan) = load_and_plan(args)?;
    let gates = plan
        .steps
        .iter()
        .filter(|s| s.decl.kind == StepKind::Gate)
        .count();
    outln!(
        "ok: {} ({}) — {} steps, {} gates, {} waves",
        rb.decl.name,
        rb.file,
        plan.steps.len() - gates,
        gates,
        plan.waves.len()
    );
    Ok(Exit::Ok)
}

/// `waymark plan`: the validated plan in the chosen format.
pub fn plan(args: &RunbookArgs, format: PlanFormat) -> Result<Exit, CliError> {
    let (_, _rb, plan) = load_and_plan(args)?;
    let out = match format {
        PlanFormat::Text => render::plan_text(&plan),
        PlanFormat::Json => {
            serde_json::to_string_pretty(&render::plan_json(&plan)).unwrap_or_default() + "\n"
        }
        PlanFormat::Mermaid => render::plan_mermaid(&plan),
        PlanFormat::Dot => render::plan_dot(&plan),
    };
    out!("{out}");
    Ok(Exit::Ok)
}
