//! Turning `RUNBOOK --param --inventory` into a loaded runbook and a validated plan.

use super::RunbookArgs;
use crate::diagnostic::{Diagnostic, SourceMap};
use crate::dsl::{self, LoadRequest, RunbookRef};
use crate::exit::{CliError, Exit};
use crate::plan::Plan;

/// Load and plan, or the rendered diagnostics (exit 2); also what RUNBOOK named.
pub(super) fn load_and_plan(
    args: &RunbookArgs,
) -> Result<(RunbookRef, dsl::Runbook, Plan), CliError> {
    let req = request(args).map_err(|(d, s)| CliError::diagnostics(Exit::BadInput, &d, &s))?;
    let (rb, plan) = Plan::load(&req).map_err(CliError::from)?;
    Ok((req.runbook, rb, plan))
}

/// Load and plan, or the problems as diagnostics (for `check --json`): a bad RUNBOOK
/// argument or inventory is a diagnostic without a position.
pub(super) fn load_and_plan_diagnostics(
    args: &RunbookArgs,
) -> Result<(dsl::Runbook, Plan), (Vec<Diagnostic>, SourceMap)> {
    let req = request(args)?;
    Plan::load(&req).map_err(|e| (e.diagnostics, e.sources))
}

/// What RUNBOOK, `--param` and `--inventory` ask to load, or the problems with them
/// (an inventory's at their lines, with the text they point into).
pub(super) fn request(args: &RunbookArgs) -> Result<LoadRequest, (Vec<Diagnostic>, SourceMap)> {
    Ok(LoadRequest {
        runbook: RunbookRef::from_arg(&args.runbook)
            .map_err(|d| (vec![d], SourceMap::default()))?,
        params: args.params.clone(),
        inventory: crate::estate::load_inventory(args.inventory.as_deref())
            .map(|inv| inv.to_json())
            .map_err(|e| e.diagnostics())?,
    })
}
