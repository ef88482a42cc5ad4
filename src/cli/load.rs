//! Turning `RUNBOOK --param --inventory` into a loaded runbook and a validated plan.

use super::RunbookArgs;
use crate::dsl::{self, LoadRequest, RunbookRef};
use crate::exit::CliError;
use crate::plan::Plan;

/// Load and plan, or the rendered diagnostics (exit 2).
pub fn load_and_plan(args: &RunbookArgs) -> Result<(dsl::Runbook, Plan), CliError> {
    let runbook = RunbookRef::from_arg(&args.runbook)?;
    let inventory = inventory_value(args)?;
    let req = LoadRequest {
        runbook,
        params: args.params.clone(),
        inventory,
    };
    Plan::load(&req).map_err(|e| CliError::bad_input(e.render()))
}

fn inventory_value(args: &RunbookArgs) -> Result<serde_json::Value, CliError> {
    match &args.inventory {
        None => Ok(serde_json::Value::Null),
        Some(p) => Err(CliError::bad_input(format!(
            "--inventory {}: inventories are not supported yet",
            p.display()
        ))),
    }
}
