//! The JSON line each script prints, turned into the result shape the lab returns.

use serde_json::{json, Value};

use crate::estate::error::EstateError;
use crate::estate::inventory::Server;
use crate::estate::itms;
use crate::estate::ops::Args;

use super::plan::backup_file;
use crate::estate::op::Op;

/// The last line of `stdout` that is a JSON object.
pub(super) fn parse_json_line(stdout: &str) -> Option<Value> {
    stdout
        .lines()
        .rev()
        .map(str::trim)
        .filter(|l| l.starts_with('{'))
        .find_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(Value::is_object)
}

/// The last few lines of some output, for error messages.
pub(super) fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(8);
    let t = lines[start..].join(" | ");
    if t.is_empty() {
        "(nothing)".into()
    } else {
        t
    }
}

/// The `WAYMARK|...` rows of a sqlcmd script, split into at most `n` fields (the last
/// field keeps any further `|`).
pub(super) fn rows(v: &Value, n: usize) -> Vec<Vec<String>> {
    v["rows"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .filter(|r| r.starts_with("WAYMARK|"))
                .map(|r| {
                    r.splitn(n + 1, '|')
                        .skip(1)
                        .map(|f| f.trim().to_string())
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn gb(bytes: &Value) -> Value {
    match bytes.as_f64() {
        Some(b) => json!((b / 1_073_741_824.0 * 10.0).round() / 10.0),
        None => Value::Null,
    }
}

fn null_if_sql_null(s: &str) -> Value {
    if s.is_empty() || s == "NULL" {
        Value::Null
    } else {
        json!(s)
    }
}

/// An operation's context for reading its scripts' output.
pub(super) struct Outcome<'a> {
    pub(super) op: Op,
    pub(super) srv: &'a Server,
    pub(super) a: &'a Args<'a>,
}

impl Outcome<'_> {
    fn fail(&self, message: String) -> EstateError {
        EstateError::Script {
            op: self.op.name().to_string(),
            server: self.srv.name.clone(),
            message,
        }
    }

    /// Map the scripts' JSON lines to the operation's result.
    pub(super) fn parse(&self, outs: &[Value]) -> Result<Value, EstateError> {
        let server = self.srv.name.as_str();
        let first = outs.first().cloned().unwrap_or(Value::Null);
        let database = self.a.str("database").unwrap_or_else(|| itms::CMDB.into());
        Ok(match self.op {
            Op::NsVersion | Op::VerifyVersion => {
                let (release, build) = self.best_assembly(&first)?;
                json!({"server": server, "release": release, "version": null, "build": build})
            }
            Op::Collation => {
                let r = rows(&first, 2);
                let row = r
                    .first()
                    .ok_or_else(|| self.fail("the collation query returned no row".into()))?;
                let sc = row.first().map(String::as_str).unwrap_or("");
                let dc = row.get(1).map(String::as_str).unwrap_or("");
                if null_if_sql_null(dc).is_null() {
                    return Err(self.fail(format!(
                        "database {database} was not found on {}",
                        self.srv.sql.as_deref().unwrap_or("?")
                    )));
                }
                json!({"server": server, "sql": self.srv.sql, "server_collation": sc, "db_collation": dc, "matches": sc == dc})
            }
            Op::DiskFree => json!({
                "server": server, "drive": first["drive"],
                "free_gb": gb(&first["free_bytes"]), "size_gb": gb(&first["size_bytes"]),
            }),
            Op::Hardware => {
                let model = first["model"].as_str().unwrap_or("");
                let maker = first["manufacturer"].as_str().unwrap_or("");
                let both = format!("{maker} {model}").to_lowercase();
                let virt = ["virtual", "vmware", "xen", "kvm", "qemu", "hvm"]
                    .iter()
                    .any(|k| both.contains(k));
                let ram = first["ram_bytes"]
                    .as_f64()
                    .map(|b| (b / 1_073_741_824.0).round());
                json!({
                    "server": server, "cores": first["cores"], "logical_processors": first["logical_processors"],
                    "ram_gb": ram, "virtual": virt, "model": model,
                })
            }
            Op::Software => {
                let sql_version = outs
                    .get(1)
                    .and_then(|v| rows(v, 2).into_iter().next())
                    .and_then(|r| r.first().cloned());
                let release = first["dotnet_release"].as_u64();
                json!({
                    "server": server, "os": first["os"], "iis": first["iis"],
                    "dotnet_release": release,
                    "dotnet_451": release.is_some_and(|r| r >= itms::DOTNET_451_RELEASE),
                    "java": first["java"], "sql_version": sql_version,
                })
            }
            Op::ReplicationStatus => {
                let member = first["member"]
                    .as_str()
                    .map(|s| s.trim().eq_ignore_ascii_case("true"));
                json!({
                    "server": server, "hierarchy_member": member, "enabled": null, "job_running": null,
                    "notes": [
                        "replication enabled: no ASDK getter is known; check Settings > Hierarchy in the console",
                        "replication job running: check that the Current Replication Activity report is empty",
                    ],
                })
            }
            Op::InstalledProducts => {
                let names: Vec<String> = first["names"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                if names.is_empty() {
                    return Err(self.fail(format!(
                        "found no product names in {} (its layout is unverified); list the products from SIM's Installed Products page",
                        first["file"].as_str().unwrap_or("InstallHistoryPL.Xml")
                    )));
                }
                let mut v = itms::classify_products(&names);
                v["server"] = json!(server);
                v["notes"] = json!([
                    "read from InstallHistoryPL.Xml, whose layout is unverified: review the list"
                ]);
                v
            }
            Op::Dcom => {
                let value = first["value"].as_str().map(str::to_string);
                let on = value
                    .as_deref()
                    .is_some_and(|v| v.eq_ignore_ascii_case("Y"));
                json!({"server": server, "enabled": on, "value": value})
            }
            Op::AppPools => {
                let pools = match &first["pools"] {
                    Value::Array(a) => Value::Array(a.clone()),
                    Value::Object(o) => json!([o]),
                    _ => json!([]),
                };
                json!({
                    "server": server, "pools": pools, "separated": null,
                    "notes": ["compare the pools with the IIS defaults by hand: which were separated in 7.5 is not recorded anywhere known"],
                })
            }
            Op::SmpLogErrors => json!({
                "server": server, "files": first["files"], "errors": first["errors"],
                "warnings": first["warnings"], "samples": first["samples"],
                "notes": ["the SMP log line format is unverified: counts lines containing 'error' / 'warning'"],
            }),
            Op::AgentVersions => {
                let tuples = rows(&first, 3)
                    .into_iter()
                    .filter_map(|r| {
                        let count = r.first()?.parse::<u64>().ok()?;
                        Some((r.get(2)?.clone(), r.get(1)?.clone(), count))
                    })
                    .collect();
                let mut r = crate::estate::results::agent_rows_result(
                    server,
                    tuples,
                    self.a.given_str("target").as_deref(),
                );
                let mut notes = Vec::new();
                if self.a.given_str("group").is_some() {
                    notes.push(
                        "filter membership (CollectionMembership, vCollection) is unverified",
                    );
                }
                if self.a.given_str("computer").is_some() {
                    notes.push("the one-computer join (vComputer.Name) is unverified");
                }
                if !notes.is_empty() {
                    r["notes"] = json!(notes);
                }
                r
            }
            Op::ListPolicies => json!({"server": server, "policies": self.policies(&first)}),
            Op::EnablePolicies => {
                json!({"server": server, "enabled": self.a.list("ids").unwrap_or_default()})
            }
            Op::BackupNs => {
                json!({"server": server, "path": first["path"], "files": first["files"]})
            }
            Op::BackupCmdb => {
                let bytes = rows(&first, 1)
                    .first()
                    .and_then(|r| r.first())
                    .and_then(|b| b.parse::<f64>().ok())
                    .map(|b| b as u64);
                json!({
                    "server": server, "sql": self.srv.sql, "database": database,
                    "file": backup_file(self.srv, self.a), "verified": self.a.bool("verify"), "bytes": bytes,
                })
            }
            Op::RestoreCmdb => json!({
                "server": server, "sql": self.srv.sql, "database": database,
                "file": self.a.str("file"),
            }),
            Op::DefragmentCmdb => {
                let r = rows(&first, 2).into_iter().next().unwrap_or_default();
                let n = |i: usize| r.get(i).and_then(|x| x.parse::<u64>().ok());
                json!({
                    "server": server, "sql": self.srv.sql, "database": database,
                    "reorganized": n(0), "rebuilt": n(1),
                })
            }
            Op::RunScheduledTask => {
                json!({"server": server, "task": first["task"], "last_result": first["last_result"]})
            }
            Op::SetReplication => {
                json!({"server": server, "enabled": self.a.bool("enabled"), "changed": null})
            }
            // `disable_policies` acts on the listed policies (`WindowsEstate::disable`);
            // the rest are manual on Windows and never reach a script.
            Op::DisablePolicies
            | Op::AgentRegistrationStatus
            | Op::GetSettings
            | Op::BackupKms
            | Op::ClonePolicies
            | Op::NsUpgrade
            | Op::MigrationExport
            | Op::MigrationImport
            | Op::ApplySettings
            | Op::SetLac => {
                return Err(EstateError::UnknownOp {
                    op: self.op.name().to_string(),
                    suggestion: None,
                })
            }
        })
    }

    fn best_assembly(&self, v: &Value) -> Result<(String, String), EstateError> {
        let list = match &v["assemblies"] {
            Value::Array(a) => a.clone(),
            Value::Object(o) => vec![Value::Object(o.clone())],
            _ => Vec::new(),
        };
        let best = list
            .iter()
            .filter_map(|a| {
                a["file_version"]
                    .as_str()
                    .and_then(itms::leading_version)
                    .or_else(|| {
                        a["assembly_version"]
                            .as_str()
                            .and_then(itms::leading_version)
                    })
            })
            .max_by(|x, y| itms::compare_versions(x, y));
        match best {
            Some(build) => Ok((itms::release(&build), build)),
            None => Err(self.fail(format!(
                "Altiris.NS is not in the GAC of `{}`: is this a Notification Server?",
                self.srv.name
            ))),
        }
    }

    pub(super) fn policies(&self, v: &Value) -> Vec<Value> {
        let audience = self.a.str("audience").unwrap_or_else(|| "all".into());
        rows(v, 3)
            .into_iter()
            .filter_map(|r| {
                let id = r.first()?.to_lowercase();
                let enabled = r.get(1)? == "1";
                let name = r.get(2)?.clone();
                let (kind, action, aud) = itms::classify_policy(&name);
                (audience == "all" || audience == aud).then(|| {
                    json!({"id": id, "name": name, "enabled": enabled, "kind": kind, "action": action, "audience": aud})
                })
            })
            .collect()
    }
}
