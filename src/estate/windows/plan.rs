//! Which scripts an operation becomes on the windows driver, and on which host each
//! runs (the CMDB's T-SQL runs on the SQL host); or that no scriptable form is known.

use super::scripts as script;
use super::{transport_err, WindowsEstate};
use crate::estate::error::EstateError;
use crate::estate::inventory::Server;
use crate::estate::itms;
use crate::estate::names::{check_host_name, check_instance_name};
use crate::estate::op::Op;
use crate::estate::ops::{Args, OpInfo};

/// One script and the server whose transport runs it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Script {
    pub(super) host: String,
    pub(super) text: String,
}

/// What an operation turns into on this driver.
pub(super) enum Planned {
    /// Run these in order; each prints one JSON line.
    Scripts(Vec<Script>),
    /// No scriptable form is known: an operator must do it (a gate).
    Manual(&'static str),
}

impl WindowsEstate {
    fn sql_target(&self, op: &str, srv: &Server) -> Result<(String, String), EstateError> {
        let instance = srv.sql_instance().ok_or_else(|| EstateError::BadArgs {
            op: op.to_string(),
            message: format!("NS `{}` has no `sql` in the inventory", srv.name),
        })?;
        let host = srv.sql_host().unwrap_or(instance).to_string();
        check_host_name(&host).map_err(|m| transport_err(&srv.name, m))?;
        if let Some((_, inst)) = instance.split_once('\\') {
            check_instance_name(inst).map_err(|m| transport_err(&srv.name, m))?;
        }
        if self.inv.server(&host).is_none() {
            return Err(transport_err(
                &srv.name,
                format!("SQL host `{host}` is not in the inventory"),
            ));
        }
        Ok((host, instance.to_string()))
    }

    pub(super) fn plan(
        &self,
        info: &OpInfo,
        srv: &Server,
        a: &Args,
    ) -> Result<Planned, EstateError> {
        check_host_name(&srv.name).map_err(|m| transport_err(&srv.name, m))?;
        let op = info.op()?;
        if info.manual_on_windows {
            return Ok(Planned::Manual(manual_reason(op)));
        }
        let on_self = |text: String| Script {
            host: srv.name.clone(),
            text,
        };
        let database = a.str("database").unwrap_or_else(|| itms::CMDB.into());
        let scripts = match op {
            Op::NsVersion | Op::VerifyVersion => vec![on_self(script::ns_version(info.name))],
            Op::Collation => {
                let (host, inst) = self.sql_target(info.name, srv)?;
                vec![Script {
                    host,
                    text: script::collation(&inst, &database),
                }]
            }
            Op::DiskFree => vec![on_self(script::disk_free(a.given_str("drive").as_deref()))],
            Op::Hardware => vec![on_self(script::hardware())],
            Op::Software => {
                let mut v = vec![on_self(script::software_host())];
                if srv.is_ns() {
                    let (host, inst) = self.sql_target(info.name, srv)?;
                    v.push(Script {
                        host,
                        text: script::software_sql(&inst),
                    });
                }
                v
            }
            Op::ReplicationStatus => vec![on_self(script::replication_status(&srv.name))],
            Op::InstalledProducts => vec![on_self(script::installed_products())],
            Op::Dcom => vec![on_self(script::dcom())],
            Op::AppPools => vec![on_self(script::app_pools())],
            Op::SmpLogErrors => vec![on_self(script::smp_log_errors(
                a.duration("since").as_secs(),
            ))],
            Op::AgentVersions => {
                let (host, inst) = self.sql_target(info.name, srv)?;
                vec![Script {
                    host,
                    text: script::agent_versions(
                        &inst,
                        itms::CMDB,
                        a.given_str("group").as_deref(),
                        a.given_str("computer").as_deref(),
                    ),
                }]
            }
            Op::ListPolicies | Op::DisablePolicies => {
                let (host, inst) = self.sql_target(info.name, srv)?;
                let ids = a.list("ids");
                vec![Script {
                    host,
                    text: script::list_policies(
                        info.name,
                        &inst,
                        itms::CMDB,
                        &a.patterns(),
                        ids.as_deref(),
                    ),
                }]
            }
            Op::EnablePolicies => {
                let ids = a.list("ids").unwrap_or_default();
                vec![on_self(script::policy_items(
                    info.name, &srv.name, true, &ids,
                ))]
            }
            Op::BackupNs => vec![on_self(script::backup_ns(
                &srv.name,
                &a.str("dest").unwrap_or_default(),
            ))],
            Op::BackupCmdb => {
                let (host, inst) = self.sql_target(info.name, srv)?;
                vec![Script {
                    host,
                    text: script::backup_cmdb(
                        &inst,
                        &database,
                        &backup_file(srv, a),
                        a.bool("verify"),
                    ),
                }]
            }
            Op::RestoreCmdb => {
                let (host, inst) = self.sql_target(info.name, srv)?;
                vec![Script {
                    host,
                    text: script::restore_cmdb(
                        &inst,
                        &database,
                        &a.str("file").unwrap_or_default(),
                        a.bool("replace"),
                    ),
                }]
            }
            Op::DefragmentCmdb => {
                let (host, inst) = self.sql_target(info.name, srv)?;
                vec![Script {
                    host,
                    text: script::defragment_cmdb(
                        &inst,
                        &database,
                        a.int("reorganize_above"),
                        a.int("rebuild_above"),
                        a.int("min_pages"),
                    ),
                }]
            }
            Op::RunScheduledTask => vec![on_self(script::run_scheduled_task(
                &a.str("task").unwrap_or_default(),
                a.bool("wait"),
            ))],
            Op::SetReplication => vec![on_self(script::set_replication(
                &srv.name,
                a.bool("enabled"),
            ))],
            // Operations with no known scriptable form are `manual_on_windows` in the
            // table and returned above; listed here so a new operation must choose.
            Op::AgentRegistrationStatus
            | Op::GetSettings
            | Op::BackupKms
            | Op::ClonePolicies
            | Op::NsUpgrade
            | Op::MigrationExport
            | Op::MigrationImport
            | Op::ApplySettings
            | Op::SetLac => return Ok(Planned::Manual(manual_reason(op))),
        };
        Ok(Planned::Scripts(scripts))
    }
}

fn manual_reason(op: Op) -> &'static str {
    match op {
        Op::NsUpgrade => "the upgrade runs in Symantec Installation Manager, which is GUI-only (no silent mode is known): make this a gate with SIM's steps, followed by verify_version",
        Op::MigrationExport | Op::MigrationImport => "the Migration Wizard (NSUpgradeWizard.exe in C:\\Program Files\\Altiris\\Upgrade) has no known command-line switches: make this a gate with the wizard's steps",
        Op::BackupKms => "KMS keys are backed up through SIM to a .kms file; no command line is known: make this a gate",
        Op::ClonePolicies => "ASDK can clone items (ItemManagementService CloneItem) but no call is known to target a clone at a test group: clone and target the policies in the console (a gate)",
        Op::AgentRegistrationStatus => "RunReport needs the Agent Registration Status report's item GUID and its result layout is unverified: check the report in the console (a gate)",
        Op::GetSettings => "no scriptable read of the Task Server, agent communication, policy refresh and membership update settings is known: record them from the console (a gate)",
        Op::ApplySettings => "no scriptable write of these settings is known: re-enter them in the console (a gate)",
        Op::SetLac => "no scriptable switch for Legacy Agent Communication is known: set it in the console (a gate)",
        _ => "no scriptable form of this operation is known: make it a gate",
    }
}

pub(super) fn backup_file(srv: &Server, a: &Args) -> String {
    a.given_str("file").unwrap_or_else(|| {
        let dest = a.str("dest").unwrap_or_default();
        format!(
            "{}\\Symantec_CMDB_{}.bak",
            dest.trim_end_matches('\\'),
            srv.name
        )
    })
}
