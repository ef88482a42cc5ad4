//! Inventory files (SPEC §7): the TOML description of an estate, parsed and validated
//! into an [`Inventory`] before anything runs.
//!
//! Every check is a `Diagnostic` at its `FILE:LINE:COL` with a `help:` line, and all
//! semantic problems are gathered in one pass so an operator fixes the file once.
//! Only TOML syntax and shape errors (what serde sees) stop at the first problem.
//!
//! Layout: `raw` is the TOML as serde reads it, `validate/` turns it into the
//! [`Server`]s of `server` (one file per concern), `error` collects the problems; this
//! file is the validated [`Inventory`] and the questions runbooks and drivers ask it.

mod error;
mod raw;
mod server;
#[cfg(test)]
mod tests;
mod validate;

use std::path::Path;
use std::time::Duration;

use crate::diagnostic::Diagnostic;

use self::error::Collector;
pub(crate) use self::error::InventoryError;
use self::raw::{toml_diagnostic, RawInventory};
pub(crate) use self::server::{Driver, Role, Server, TransportKind};

/// A parsed, validated estate description.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// Estate name (the lab state file is `lab/NAME.json`).
    pub name: String,
    /// Which driver runs estate operations; `None` for an inventory that only lists
    /// servers for runbooks (estate operations then fail, saying to add one).
    pub driver: Option<Driver>,
    /// Simulated duration of each lab operation.
    pub lab_delay: Duration,
    /// Servers in file order.
    pub servers: Vec<Server>,
    /// Where it came from (a path, or `<demo>`).
    pub origin: String,
    /// Notification hooks of `[notify]`.
    pub notify: crate::notify::Hooks,
}

impl Inventory {
    /// Read and validate an inventory file.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            let d = Diagnostic::new(format!("cannot read the inventory {file}: {e}")).help(
                "pass an existing TOML file with --inventory, or omit it to use the built-in demo lab",
            );
            InventoryError::new(&file, None, vec![d])
        })?;
        Inventory::parse(&text, &file)
    }

    /// Parse and validate inventory text; `file` names it in messages.
    pub fn parse(source: &str, file: &str) -> Result<Inventory, InventoryError> {
        let raw: RawInventory = toml::from_str(source).map_err(|e| {
            InventoryError::new(file, Some(source), vec![toml_diagnostic(file, source, &e)])
        })?;
        let mut c = Collector::new(source, file);
        let checked = validate::inventory(&raw, &mut c);
        c.finish()?;
        Ok(Inventory {
            name: checked.name,
            driver: checked.driver,
            lab_delay: checked.lab_delay,
            servers: checked.servers,
            origin: file.to_string(),
            notify: checked.notify,
        })
    }

    /// The server called `name`.
    pub fn server(&self, name: &str) -> Option<&Server> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// All Notification Servers, in file order.
    pub fn ns(&self) -> impl Iterator<Item = &Server> {
        self.servers.iter().filter(|s| s.is_ns())
    }

    /// The parent NS of `name`, if it has one.
    pub fn parent(&self, name: &str) -> Option<&Server> {
        self.server(name)
            .and_then(|s| s.parent.as_deref())
            .and_then(|p| self.server(p))
    }

    /// The direct children of NS `name`, in file order.
    pub fn children(&self, name: &str) -> Vec<&Server> {
        self.servers
            .iter()
            .filter(|s| s.parent.as_deref() == Some(name))
            .collect()
    }

    /// Every NS below `name` in the hierarchy (children, their children, ...).
    pub fn descendants(&self, name: &str) -> Vec<&Server> {
        let mut out = Vec::new();
        let mut stack = vec![name.to_string()];
        while let Some(n) = stack.pop() {
            for c in self.children(&n) {
                if out.iter().all(|o: &&Server| o.name != c.name) {
                    out.push(c);
                    stack.push(c.name.clone());
                }
            }
        }
        out
    }

    /// Number of ancestors of `name` (0 at the top of the hierarchy).
    pub fn depth(&self, name: &str) -> usize {
        let mut d = 0;
        let mut cur = self.parent(name);
        // Validation rejects cycles; the bound only guards hand-built inventories.
        while let Some(p) = cur {
            d += 1;
            if d > self.servers.len() {
                break;
            }
            cur = self.parent(&p.name);
        }
        d
    }

    /// NS names ordered bottom-up: every child before its parent (deepest first, then file order).
    pub fn bottom_up(&self) -> Vec<&str> {
        let mut ns: Vec<(usize, usize, &str)> = self
            .servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_ns())
            .map(|(i, s)| (self.depth(&s.name), i, s.name.as_str()))
            .collect();
        ns.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        ns.into_iter().map(|(_, _, n)| n).collect()
    }

    /// A digest of everything the lab seeds from, to notice an edited inventory.
    pub fn lab_fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let facts: Vec<serde_json::Value> = self
            .servers
            .iter()
            .map(|s| {
                serde_json::json!([
                    s.name,
                    s.role.map(Role::as_str),
                    s.parent,
                    s.sql,
                    s.endpoints,
                    s.lab
                ])
            })
            .collect();
        let text = serde_json::to_string(&facts).unwrap_or_default();
        let digest = Sha256::digest(text.as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// The inventory as the Rhai `inventory` global sees it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "driver": self.driver.map(Driver::as_str),
            "servers": self.servers.iter().map(|s| serde_json::json!({
                "name": s.name,
                "role": s.role_name,
                "groups": s.groups,
                "vars": s.vars,
                "address": s.address(),
                "port": s.port,
                "user": s.user,
                "identity_file": s.identity_file,
                "known_hosts": s.known_hosts,
                "parent": s.parent,
                "ns": s.ns,
                "sql": s.sql,
                "endpoints": s.endpoints,
                "transport": s.transport.as_str(),
            })).collect::<Vec<_>>(),
        })
    }
}
