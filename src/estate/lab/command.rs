//! The entry points of `waymark lab show|reset`: open the lab estate an inventory names
//! (the built-in demo without one) and refuse estates that are not labs.

use std::path::Path;

use serde_json::Value;

use super::LabEstate;
use crate::estate::inventory::Driver;
use crate::estate::EstateError;
use crate::state::Store;

/// `waymark lab show --json` for the estate of `inventory` (the demo when `None`).
pub(crate) fn show(inventory: Option<&Path>, store: &Store) -> Result<Value, EstateError> {
    lab_of(inventory, store)?.show_json()
}

/// `waymark lab reset`: delete the state file; true when there was one.
pub(crate) fn reset(inventory: Option<&Path>, store: &Store) -> Result<bool, EstateError> {
    lab_of(inventory, store)?.reset()
}

fn lab_of(inventory: Option<&Path>, store: &Store) -> Result<LabEstate, EstateError> {
    let inv = crate::estate::load_inventory(inventory)?;
    if inv.driver != Some(Driver::Lab) {
        return Err(EstateError::BadArgs {
            op: "lab".into(),
            message: format!(
                "estate `{}` uses driver \"{}\"; `waymark lab` works on lab estates only",
                inv.name,
                inv.driver.map_or("(none)", Driver::as_str)
            ),
        });
    }
    Ok(LabEstate::new(inv, store))
}
