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
use crate::estate::op::Op;
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

    /// A refusal of this call's operation on this server.
    fn refused(&self, problems: Vec<Problem>) -> EstateError {
        EstateError::Refused {
            op: self.args.op().name.to_string(),
            server: self.server.to_string(),
            problems,
        }
    }

    /// This call's operation failed on this server as a script would.
    fn script_error(&self, message: String) -> EstateError {
        EstateError::Script {
            op: self.args.op().name.to_string(),
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
    match info.op()? {
        Op::NsVersion => install::ns_version(c),
        Op::VerifyVersion => install::verify_version(c),
        Op::Collation => sql::collation(c),
        Op::DiskFree => host::disk_free(c),
        Op::Hardware => host::hardware(c),
        Op::Software => host::software(c),
        Op::ReplicationStatus => replication::replication_status(c),
        Op::InstalledProducts => install::installed_products(c),
        Op::Dcom => host::dcom(c),
        Op::AppPools => host::app_pools(c),
        Op::SmpLogErrors => host::smp_log_errors(c),
        Op::AgentVersions => agents::agent_versions(c),
        Op::AgentRegistrationStatus => agents::agent_registration_status(c),
        Op::ListPolicies => policies::list_policies(c),
        Op::GetSettings => migration::get_settings(c),
        Op::BackupNs => backup::backup_ns(c),
        Op::BackupKms => backup::backup_kms(c),
        Op::BackupCmdb => sql::backup_cmdb(c),
        Op::RunScheduledTask => host::run_scheduled_task(c),
        Op::DisablePolicies => policies::disable_policies(c),
        Op::EnablePolicies => policies::enable_policies(c),
        Op::ClonePolicies => policies::clone_policies(c),
        Op::SetReplication => replication::set_replication(c),
        Op::NsUpgrade => install::ns_upgrade(c),
        Op::DefragmentCmdb => sql::defragment_cmdb(c),
        Op::RestoreCmdb => sql::restore_cmdb(c),
        Op::MigrationExport => migration::migration_export(c),
        Op::MigrationImport => migration::migration_import(c),
        Op::ApplySettings => migration::apply_settings(c),
        Op::SetLac => agents::set_lac(c),
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
        let e = LabEstate::new(inv.clone(), &crate::state::Store::dir(dir.path()));
        let err = call(&e, "backup_cmdb", "ns-hq", json!({})).unwrap_err();
        assert!(err.is_transient(), "{err}");
        drop(e);
        // A new process (a resumed run) sees the fault consumed.
        let e = LabEstate::new(inv, &crate::state::Store::dir(dir.path()));
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
