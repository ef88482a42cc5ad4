//! Estate operations as an enum, so a driver dispatches with an exhaustive `match`
//! instead of matching names: an operation added to the table ([`super::OPS`]) without
//! a variant here fails `op_table_and_enum_agree`, and a variant without a driver's rule
//! does not compile.
//!
//! The table stays the one place that documents operations (arguments, results,
//! roles); this enum only names its rows. It depends on nothing, so the inventory can
//! check operation names (a lab's `fail` keys) without depending on the table.

/// One estate operation, in the order of the table's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    /// `ns_version`
    NsVersion,
    /// `verify_version`
    VerifyVersion,
    /// `collation`
    Collation,
    /// `disk_free`
    DiskFree,
    /// `hardware`
    Hardware,
    /// `software`
    Software,
    /// `replication_status`
    ReplicationStatus,
    /// `installed_products`
    InstalledProducts,
    /// `dcom`
    Dcom,
    /// `app_pools`
    AppPools,
    /// `smp_log_errors`
    SmpLogErrors,
    /// `agent_versions`
    AgentVersions,
    /// `agent_registration_status`
    AgentRegistrationStatus,
    /// `list_policies`
    ListPolicies,
    /// `get_settings`
    GetSettings,
    /// `backup_ns`
    BackupNs,
    /// `backup_kms`
    BackupKms,
    /// `backup_cmdb`
    BackupCmdb,
    /// `run_scheduled_task`
    RunScheduledTask,
    /// `disable_policies`
    DisablePolicies,
    /// `enable_policies`
    EnablePolicies,
    /// `clone_policies`
    ClonePolicies,
    /// `set_replication`
    SetReplication,
    /// `ns_upgrade`
    NsUpgrade,
    /// `defragment_cmdb`
    DefragmentCmdb,
    /// `restore_cmdb`
    RestoreCmdb,
    /// `migration_export`
    MigrationExport,
    /// `migration_import`
    MigrationImport,
    /// `apply_settings`
    ApplySettings,
    /// `set_lac`
    SetLac,
}

impl Op {
    /// Every operation, in table order.
    pub(crate) const ALL: [Op; 30] = [
        Op::NsVersion,
        Op::VerifyVersion,
        Op::Collation,
        Op::DiskFree,
        Op::Hardware,
        Op::Software,
        Op::ReplicationStatus,
        Op::InstalledProducts,
        Op::Dcom,
        Op::AppPools,
        Op::SmpLogErrors,
        Op::AgentVersions,
        Op::AgentRegistrationStatus,
        Op::ListPolicies,
        Op::GetSettings,
        Op::BackupNs,
        Op::BackupKms,
        Op::BackupCmdb,
        Op::RunScheduledTask,
        Op::DisablePolicies,
        Op::EnablePolicies,
        Op::ClonePolicies,
        Op::SetReplication,
        Op::NsUpgrade,
        Op::DefragmentCmdb,
        Op::RestoreCmdb,
        Op::MigrationExport,
        Op::MigrationImport,
        Op::ApplySettings,
        Op::SetLac,
    ];

    /// The name runbooks call it by (its table row's `name`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Op::NsVersion => "ns_version",
            Op::VerifyVersion => "verify_version",
            Op::Collation => "collation",
            Op::DiskFree => "disk_free",
            Op::Hardware => "hardware",
            Op::Software => "software",
            Op::ReplicationStatus => "replication_status",
            Op::InstalledProducts => "installed_products",
            Op::Dcom => "dcom",
            Op::AppPools => "app_pools",
            Op::SmpLogErrors => "smp_log_errors",
            Op::AgentVersions => "agent_versions",
            Op::AgentRegistrationStatus => "agent_registration_status",
            Op::ListPolicies => "list_policies",
            Op::GetSettings => "get_settings",
            Op::BackupNs => "backup_ns",
            Op::BackupKms => "backup_kms",
            Op::BackupCmdb => "backup_cmdb",
            Op::RunScheduledTask => "run_scheduled_task",
            Op::DisablePolicies => "disable_policies",
            Op::EnablePolicies => "enable_policies",
            Op::ClonePolicies => "clone_policies",
            Op::SetReplication => "set_replication",
            Op::NsUpgrade => "ns_upgrade",
            Op::DefragmentCmdb => "defragment_cmdb",
            Op::RestoreCmdb => "restore_cmdb",
            Op::MigrationExport => "migration_export",
            Op::MigrationImport => "migration_import",
            Op::ApplySettings => "apply_settings",
            Op::SetLac => "set_lac",
        }
    }

    /// The operation called `name`, if any.
    pub(crate) fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::estate::OPS;

    #[test]
    fn op_table_and_enum_agree() {
        let table: Vec<&str> = OPS.iter().map(|o| o.name).collect();
        let names: Vec<&str> = Op::ALL.iter().map(|o| o.name()).collect();
        assert_eq!(names, table, "Op::ALL must list the table's rows in order");
        for info in OPS {
            assert_eq!(info.op().unwrap().name(), info.name);
        }
        assert_eq!(Op::from_name("ns_upgrad"), None);
    }
}
