//! Estates: the servers a runbook acts on, behind one interface with two drivers.
//!
//! A runbook calls estate operations by name with a JSON argument map and gets a JSON
//! result; the table of operations is [`ops::OPS`]. The `lab` driver ([`lab`]) simulates
//! an estate and enforces ITMS.md's rules, for rehearsals; the `windows` driver
//! ([`windows`]) generates and runs the real PowerShell / T-SQL / ASDK calls.
//!
//! Architecture invariant: runbooks cannot tell the drivers apart except by asking
//! [`Estate::driver`]. Both take the same arguments, return the same result shapes and
//! fail with the same [`EstateError`] kinds. Nothing here knows about Rhai.

pub(crate) mod demo;
mod driver;
mod error;
pub(crate) mod inventory;
pub(crate) mod itms;
pub(crate) mod lab;
pub(crate) mod names;
pub(crate) mod op;
pub(crate) mod ops;
pub(crate) mod results;
pub(crate) mod ssh_target;
pub(crate) mod windows;

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};

pub(crate) use driver::prepare;
pub(crate) use driver::{Estate, OpContext};
pub(crate) use error::{EstateError, Problem};
pub(crate) use inventory::{Driver, Inventory, Server};
pub(crate) use lab::LabEstate;
pub use ops::{ArgInfo, ArgKind, OpInfo, OPS};
pub(crate) use windows::WindowsEstate;

/// Open the estate of `inventory` (the built-in demo lab when `None`); a lab estate's
/// state lives in `store`.
pub fn open(
    inventory: Option<&Path>,
    store: &crate::state::Store,
) -> Result<Arc<dyn Estate>, EstateError> {
    let inv = load_inventory(inventory)?;
    Ok(match inv.driver {
        Some(Driver::Lab) => Arc::new(LabEstate::new(inv, store)),
        Some(Driver::Windows) => Arc::new(WindowsEstate::new(inv)),
        None => Arc::new(NoDriver(inv)),
    })
}

/// The estate of an inventory without a `driver`: a team's own servers, listed for
/// runbooks that `exec`/`sh` on them. Every estate operation fails and says what to add.
struct NoDriver(Inventory);

impl NoDriver {
    fn refuse(&self, op: &str) -> EstateError {
        match ops::lookup(op) {
            Err(e) => e,
            Ok(_) => EstateError::NoDriver {
                op: op.to_string(),
                inventory: self.0.origin.clone(),
            },
        }
    }
}

impl Estate for NoDriver {
    fn driver(&self) -> &'static str {
        "none"
    }

    fn inventory(&self) -> &Inventory {
        &self.0
    }

    fn call(
        &self,
        op: &str,
        _server: &str,
        _args: &Map<String, Value>,
        _cx: &OpContext,
    ) -> Result<Value, EstateError> {
        Err(self.refuse(op))
    }

    fn describe(
        &self,
        op: &str,
        _server: &str,
        _args: &Map<String, Value>,
    ) -> Result<Vec<String>, EstateError> {
        Err(self.refuse(op))
    }
}

/// The inventory at `path`, or the built-in demo estate.
pub fn load_inventory(path: Option<&Path>) -> Result<Inventory, EstateError> {
    match path {
        Some(p) => Ok(Inventory::load(p)?),
        None => Ok(demo::inventory()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_without_inventory_is_the_demo_rehearsal() {
        let dir = tempfile::tempdir().unwrap();
        let e = open(None, &crate::state::Store::dir(dir.path())).unwrap();
        assert_eq!(e.driver(), "lab");
        assert!(e.is_rehearsal());
        assert_eq!(e.inventory().name, "demo-lab");
    }

    #[test]
    fn open_windows_inventory_is_not_a_rehearsal() {
        let dir = tempfile::tempdir().unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/estates/windows.toml");
        let e = open(Some(&path), &crate::state::Store::dir(dir.path())).unwrap();
        assert_eq!(e.driver(), "windows");
        assert!(!e.is_rehearsal());
    }

    #[test]
    fn every_example_inventory_is_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/estates");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let p = entry.unwrap().path();
            if p.extension().and_then(|e| e.to_str()) == Some("toml") {
                Inventory::load(&p).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 7, "expected the example estates, found {n}");
    }
}
