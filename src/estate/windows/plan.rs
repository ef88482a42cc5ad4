//! Which scripts an operation becomes on the windows driver, and on which host each
//! runs (the CMDB's T-SQL runs on the SQL host); or that no scriptable form is known.

use super::scripts as script;
use super::{transport_err, WindowsEstate};
use crate::estate::error::EstateError;
use crate::estate::inventory::Server;
use crate::estate::itms;
use crate::estate::names::{check_host_name, check_instance_name};
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
        if info.manual_on_windows {
            return Ok(Planned::Manual(manual_reason(info.name)));
        }
        let on_self = |text: String| Script {
            host: srv.name.clone(),
            text,
        };
        let database = a.str("database").unwrap_or_else(|| itms::CMDB.into());
        let scripts = match info.name {
            "ns_version" | "verify_version" => vec![on_self(script::ns_version(info.name))],
            "collation" => {
                let (host, inst) = self.sql_target(info.name, srv)?;
                vec![Script {
                    host,
                    text: script::collation(&inst, &database),
                }]
            }
            "disk_free" => vec![on_self(script::disk_free(a.given_str("drive").as_deref()))],
            "hardware" => vec![on_self(script::hardware())],
            "software" => {
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
            "replication_status" => vec![on_self(script::replication_status(&srv.name))],
            "installed_products" => vec![on_self(script::installed_products())],
            "dcom" => vec![on_self(script::dcom())],
            "app_pools" => vec![on_self(script::app_pools())],
            "smp_log_errors" => vec![on_self(script::smp_log_errors(
                a.duration("since").as_secs(),
            ))],
            "agent_versions" => {
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
            "list_policies" | "disable_policies" => {
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
            "enable_policies" => {
                let ids = a.list("ids").unwrap_or_default();
                vec![on_self(script::policy_items(
                    info.name, &srv.name, true, &ids,
                ))]
            }
            "backup_ns" => vec![on_self(script::backup_ns(
                &srv.name,
                &a.str("dest").unwrap_or_default(),
            ))],
            "backup_cmdb" => {
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
            "restore_cmdb" => {
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
            "defragment_cmdb" => {
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
            "run_scheduled_task" => vec![on_self(script::run_scheduled_task(
                &a.str("task").unwrap_or_default(),
                a.bool("wait"),
            ))],
            "set_replication" => vec![on_self(script::set_replication(
                &srv.name,
                a.bool("enabled"),
            ))],
            other => {
                return Err(EstateError::UnknownOp {
                    op: other.to_string(),
                    suggestion: None,
                })
            }
        };
        Ok(Planned::Scripts(scripts))
    }
}

fn manual_reason(op: &str) -> &'static str {
    match op {
        "ns_upgrade" => "the upgrade runs in Symantec Installation Manager, which is GUI-only (no silent mode is known): make this a gate with SIM's steps, followed by verify_version",
        "migration_export" | "migration_import" => "the Migration Wizard (NSUpgradeWizard.exe in C:\\Program Files\\Altiris\\Upgrade) has no known command-line switches: make this a gate with the wizard's steps",
        "backup_kms" => "KMS keys are backed up through SIM to a .kms file; no command line is known: make this a gate",
        "clone_policies" => "ASDK can clone items (ItemManagementService CloneItem) but no call is known to target a clone at a test group: clone and target the policies in the console (a gate)",
        "agent_registration_status" => "RunReport needs the Agent Registration Status report's item GUID and its result layout is unverified: check the report in the console (a gate)",
        "get_settings" => "no scriptable read of the Task Server, agent communication, policy refresh and membership update settings is known: record them from the console (a gate)",
        "apply_settings" => "no scriptable write of these settings is known: re-enter them in the console (a gate)",
        "set_lac" => "no scriptable switch for Legacy Agent Communication is known: set it in the console (a gate)",
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
