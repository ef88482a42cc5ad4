//! Turning `RUNBOOK --param --inventory` into a loaded runbook and a validated plan.

use super::RunbookArgs;
use crate::dsl::{self, LoadRequest, RunbookRef};
use crate::exit::CliError;
use crate::plan::Plan;

/// Load and plan, or the rendered diagnostics (exit 2); also what RUNBOOK named.
pub fn load_and_plan(args: &RunbookArgs) -> Result<(RunbookRef, dsl::Runbook, Plan), CliError> {
    let runbook = RunbookRef::from_arg(&args.runbook)?;
    let inventory = inventory_value(args)?;
    let req = LoadRequest {
        runbook,
        params: args.params.clone(),
        inventory,
    };
    let (rb, plan) = Plan::load(&req).map_err(|e| CliError::bad_input(e.render()))?;
    Ok((req.runbook, rb, plan))
}

/// The `inventory` global: the parsed `--inventory` file, or the built-in demo estate.
fn inventory_value(args: &RunbookArgs) -> Result<serde_json::Value, CliError> {
    crate::estate::load_inventory(args.inventory.as_deref())
        .map(|inv| inv.to_json())
        .map_err(|e| CliError::bad_input(format!("error: {e}")))
}
