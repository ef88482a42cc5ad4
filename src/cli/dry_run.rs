//! `run --dry-run`: each wave's steps with what they would do, from the executor's
//! recording primitives; nothing runs and nothing waits.

use crate::dsl::StepKind;
use crate::exit::{CliError, Exit};
use crate::plan::Plan;
use std::sync::Arc;

pub(super) fn dry_run(
    rb: &crate::dsl::Runbook,
    plan: &Plan,
    estate: Arc<dyn crate::estate::Estate>,
) -> Result<Exit, CliError> {
    outln!(
        "dry run of {} against `{}` ({} driver{}): nothing is executed, nothing waits; values only a run would give are shown as <…>",
        plan.name,
        estate.inventory().name,
        estate.driver(),
        if estate.is_rehearsal() {
            ", a rehearsal estate"
        } else {
            ""
        }
    );
    if estate.driver() == "windows" {
        if rb.params.get("expected_build").map(String::as_str) == Some("UNVERIFIED") {
            outln!("warning: expected_build is still UNVERIFIED: a real run refuses it. Read the Altiris.NS file version on a server known to be at 7.5 SP1 HF5 and pass --param expected_build=VERSION");
        }
        outln!("each server's scripts run through:");
        for server in &estate.inventory().servers {
            outln!("  {}", crate::estate::windows::transport::describe(server));
        }
    }
    let mut n = 0;
    for (w, members) in plan.waves.iter().enumerate() {
        outln!("\nwave {}:", w + 1);
        for &i in members {
            n += 1;
            let d = &plan.steps[i].decl;
            if d.kind == StepKind::Gate {
                outln!(
                    "  {n}. gate {} — a person approves: {}",
                    d.name,
                    d.title.as_deref().unwrap_or("")
                );
                for line in d.instructions.as_deref().unwrap_or("").lines() {
                    outln!("       > {line}");
                }
                continue;
            }
            outln!(
                "  {n}. {}{}",
                d.name,
                d.title
                    .as_deref()
                    .map(|t| format!(" — {t}"))
                    .unwrap_or_default()
            );
            let (calls, stopped) = crate::executor::dry_run_step(rb, plan, i, Some(estate.clone()));
            for (what, lines) in calls {
                if lines.is_empty() {
                    outln!("       {what}");
                    continue;
                }
                outln!("       {what}:");
                for l in lines.iter().flat_map(|l| l.lines()) {
                    outln!("         {l}");
                }
            }
            match stopped {
                Some(crate::executor::DryStop::DependsOn(why)) => {
                    outln!("       (the rest of this step {why})")
                }
                Some(crate::executor::DryStop::Failed(e)) => outln!(
                    "       (the description stops here: {})",
                    e.lines().next().unwrap_or("")
                ),
                None => {}
            }
        }
    }
    Ok(Exit::Ok)
}
