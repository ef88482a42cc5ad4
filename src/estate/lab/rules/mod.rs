//! The lab's simulation rules: one function per estate operation, grouped by the part of
//! ITMS they simulate. Each reads and changes the lab state through a [`Ctx`] and
//! enforces ITMS.md's rules with messages that name the server and the fix. This file
//! holds what every rule shares: the context, injected faults, and the dispatch.

mod agents;
mod backup;
mod host;
mod install;
mod migration;
mod policies;
mod replication;
mod sql;

use serde_json::{Map, Value};

use super::state::{LabState, ServerState};
use crate::estate::inventory::Inventory;
use crate::estate::ops::{Args, OpInfo};
use crate::estate::{EstateError, Problem};

/// What a rule sees: the estate, its state, the call.
pub(super) struct Ctx<'a, 'b> {
    pub(super) inv: &'a Inventory,
    pub(super) st: &'a mut LabState,
    pub(super) server: &'a str,
    pub(super) args: &'a Args<'b>,
    pub(super) seq: u64,
    pub(super) details: &'a mut Map<String, Value>,
}

impl Ctx<'_, '_> {
    fn me(&self) -> Result<&ServerState, EstateError> {
        self.get(self.server)
    }

    fn get(&self, name: &str) -> Result<&ServerState, EstateError> {
        self.st.servers.get(name).ok_or_else(|| missing(name))
    }

    fn me_mut(&mut self) -> Result<&mut ServerState, EstateError> {
        let name = self.server;
        self.st.servers.get_mut(name).ok_or_else(|| missing(name))
    }

    fn refused(&self, op: &str, problems: Vec<Problem>) -> EstateError {
        EstateError::Refused {
            op: op.to_string(),
            server: self.server.to_string(),
            problems,
        }
    }

    fn script_error(&self, op: &str, message: String) -> EstateError {
        EstateError::Script {
            op: op.to_string(),
            server: self.server.to_string(),
            message,
        }
    }

    fn note(&mut self, key: &str, v: Value) {
        self.details.insert(key.to_string(), v);
    }

    /// Names of the parent and direct children of this NS, labelled for messages.
    fn neighbours(&self) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        if let Some(p) = self.inv.parent(self.server) {
            out.push((p.name.clone(), "its parent"));
        }
        for c in self.inv.children(self.server) {
            out.push((c.name.clone(), "its child"));
        }
        out
    }
}

fn missing(name: &str) -> EstateError {
    EstateError::State {
        path: String::new(),
        message: format!("server `{name}` is missing from the lab state; run `waymark lab reset`"),
    }
}

/// Run the rule of `info` (after any injected fault) on the context's server.
pub(super) fn apply(info: &'static OpInfo, c: &mut Ctx) -> Result<Value, EstateError> {
    // Injected transient faults come first: the call "did not reach" the server.
    let op = info.name;
    let server = c.server.to_string();
    let me = c.me_mut()?;
    if let Some(n) = me.fail.get_mut(op) {
        if *n > 0 {
            *n -= 1;
            let left = *n;
            return Err(EstateError::Transient {
                op: op.to_string(),
                server,
                message: format!("injected lab fault ({left} more to come)"),
            });
        }
    }
    match op {
        "ns_version" => install::ns_version(c),
        "verify_version" => install::verify_version(c),
        "collation" => sql::collation(c),
        "disk_free" => host::disk_free(c),
        "hardware" => host::hardware(c),
        "software" => host::software(c),
        "replication_status" => replication::replication_status(c),
        "installed_products" => install::installed_products(c),
        "dcom" => host::dcom(c),
        "app_pools" => host::app_pools(c),
        "smp_log_errors" => host::smp_log_errors(c),
        "agent_versions" => agents::agent_versions(c),
        "agent_registration_status" => agents::agent_registration_status(c),
        "list_policies" => policies::list_policies(c),
        "get_settings" => migration::get_settings(c),
        "backup_ns" => backup::backup_ns(c),
        "backup_kms" => backup::backup_kms(c),
        "backup_cmdb" => sql::backup_cmdb(c),
        "run_scheduled_task" => host::run_scheduled_task(c),
        "disable_policies" => policies::disable_policies(c),
        "enable_policies" => policies::enable_policies(c),
        "clone_policies" => policies::clone_policies(c),
        "set_replication" => replication::set_replication(c),
        "ns_upgrade" => install::ns_upgrade(c),
        "defragment_cmdb" => sql::defragment_cmdb(c),
        "restore_cmdb" => sql::restore_cmdb(c),
        "migration_export" => migration::migration_export(c),
        "migration_import" => migration::migration_import(c),
        "apply_settings" => migration::apply_settings(c),
        "set_lac" => agents::set_lac(c),
        other => Err(EstateError::UnknownOp {
            op: other.to_string(),
            suggestion: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::estate::lab::testing::*;
    use std::path::Path;

    use crate::estate::lab::LabEstate;
    use crate::estate::Inventory;

    #[test]
    fn fault_injection_is_consumed_once_and_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/estates/transient-fault.toml");
        let inv = Inventory::load(&path).unwrap();
        let e = LabEstate::new(inv.clone(), dir.path());
        let err = call(&e, "backup_cmdb", "ns-hq", json!({})).unwrap_err();
        assert!(err.is_transient(), "{err}");
        drop(e);
        // A new process (a resumed run) sees the fault consumed.
        let e = LabEstate::new(inv, dir.path());
        let r = call(&e, "backup_cmdb", "ns-hq", json!({})).unwrap();
        assert_eq!(r["verified"], true);
        let evs = ops_of(&e);
        assert_eq!(
            evs,
            vec![
                ("backup_cmdb".into(), "ns-hq".into(), false),
                ("backup_cmdb".into(), "ns-hq".into(), true)
            ]
        );
        assert_eq!(events(&e)[0]["error_kind"], "transient");
    }
}
