//! `lab show` and `lab reset`: the rehearsal estate's state, read and reset.

use crate::exit::{CliError, Exit};
use crate::state::Store;
use std::path::Path;

/// `waymark lab show`.
pub(super) fn lab_show(
    inventory: Option<&Path>,
    store: &Store,
    json: bool,
) -> Result<Exit, CliError> {
    let doc = crate::estate::lab::show(inventory, store)?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        out!("{}", crate::estate::lab::show_text(&doc));
    }
    Ok(Exit::Ok)
}

/// `waymark lab reset`.
pub(super) fn lab_reset(inventory: Option<&Path>, store: &Store) -> Result<Exit, CliError> {
    let removed = crate::estate::lab::reset(inventory, store)?;
    outln!(
        "{}",
        if removed {
            "lab estate reset to the inventory's facts"
        } else {
            "the lab estate was already fresh"
        }
    );
    Ok(Exit::Ok)
}
