//! The table of estate operations: names, arguments, results. Both drivers implement
//! exactly this table, and the DSL registers one Rhai function per row without any
//! per-operation code, so this table *is* the estate's contract with runbooks.
//!
//! `docs/estate-ops.md` is generated from it ([`ops_markdown`]) and a test keeps the two equal.

use std::time::Duration;

use serde_json::{Map, Value};

use super::itms::Role;
use super::EstateError;
use crate::diagnostic::did_you_mean;

/// The JSON type an argument takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    /// A string (no `"` or control characters: it may reach a native command line).
    Str,
    /// A Windows path (no characters Windows forbids in paths).
    Path,
    /// `true` / `false`.
    Bool,
    /// An integer.
    Int,
    /// A duration string such as `"24h"`.
    Duration,
    /// An array of strings (or of objects with an `"id"` string, for policy lists).
    List,
    /// An object.
    Map,
}

impl ArgKind {
    fn name(self) -> &'static str {
        match self {
            ArgKind::Str => "string",
            ArgKind::Path => "path",
            ArgKind::Bool => "bool",
            ArgKind::Int => "int",
            ArgKind::Duration => "duration",
            ArgKind::List => "list",
            ArgKind::Map => "map",
        }
    }

    fn with_article(self) -> &'static str {
        match self {
            ArgKind::Int => "an int",
            ArgKind::Str => "a string",
            ArgKind::Path => "a path (string)",
            ArgKind::Bool => "a bool",
            ArgKind::Duration => "a duration string",
            ArgKind::List => "a list",
            ArgKind::Map => "a map",
        }
    }
}

/// One documented argument of an operation.
#[derive(Debug, Clone, Copy)]
pub struct ArgInfo {
    /// Key in the argument map.
    pub name: &'static str,
    /// JSON type.
    pub kind: ArgKind,
    /// Must be given.
    pub required: bool,
    /// Default used when absent (machine-read for scalar kinds; prose for lists).
    pub default: Option<&'static str>,
    /// What it means.
    pub help: &'static str,
}

/// One estate operation.
#[derive(Debug, Clone, Copy)]
pub struct OpInfo {
    /// Name, as called from runbooks.
    pub name: &'static str,
    /// One line: what it does.
    pub summary: &'static str,
    /// Changes the estate (false = read-only probe, safe to repeat).
    pub mutating: bool,
    /// No scriptable form is known on real servers: the windows driver refuses it and a
    /// runbook must make it a gate (whose `rehearse` may call it in the lab).
    pub manual_on_windows: bool,
    /// Roles of the server it applies to (empty = any role).
    pub roles: &'static [Role],
    /// Documented arguments; any other key is an error.
    pub args: &'static [ArgInfo],
    /// Shape of the JSON result.
    pub result: &'static str,
}

impl OpInfo {
    /// The argument names, in table order.
    pub fn arg_names(&self) -> Vec<&'static str> {
        self.args.iter().map(|a| a.name).collect()
    }
}

const fn arg(name: &'static str, kind: ArgKind, help: &'static str) -> ArgInfo {
    ArgInfo {
        name,
        kind,
        required: false,
        default: None,
        help,
    }
}

const fn req(name: &'static str, kind: ArgKind, help: &'static str) -> ArgInfo {
    ArgInfo {
        name,
        kind,
        required: true,
        default: None,
        help,
    }
}

const fn def(
    name: &'static str,
    kind: ArgKind,
    default: &'static str,
    help: &'static str,
) -> ArgInfo {
    ArgInfo {
        name,
        kind,
        required: false,
        default: Some(default),
        help,
    }
}

const NS: &[Role] = &[Role::Ns];
const ANY: &[Role] = &[];

const DEST: ArgInfo = def(
    "dest",
    ArgKind::Path,
    "D:\\Backups\\waymark",
    "backup folder (on the server that writes the backup; must exist)",
);
const DATABASE: ArgInfo = def(
    "database",
    ArgKind::Str,
    "Symantec_CMDB",
    "CMDB database name",
);
const PATTERNS: ArgInfo = ArgInfo {
    name: "patterns",
    kind: ArgKind::List,
    required: false,
    default: Some("[\"%Agent% - Install\", \"%Agent% - Upgrade\", \"%Plug-in% - Install\", \"%Plug-in% - Upgrade\"]"),
    help: "SQL LIKE patterns selecting policies by name (review with list_policies first)",
};
const AUDIENCE: ArgInfo = def(
    "audience",
    ArgKind::Str,
    "all",
    "\"clients\" | \"site_servers\" | \"all\" (derived from the policy name)",
);

/// Every estate operation.
pub const OPS: &[OpInfo] = &[
    // ---- read-only probes ----
    OpInfo {
        name: "ns_version",
        summary: "NS version: release, version name (lab) and Altiris.NS build (windows, GAC)",
        mutating: false,
        manual_on_windows: false,
        roles: NS,
        args: &[],
        result: "{server, release, version, build}",
    },
    OpInfo {
        name: "verify_version",
        summary: "fail unless the NS is at the expected version",
        mutating: false,
        manual_on_windows: false,
        roles: NS,
        args: &[
            req("expected", ArgKind::Str, "\"7.5 SP1 HF5\" or \"7.6\""),
            def(
                "expected_build",
                ArgKind::Str,
                "UNVERIFIED",
                "windows: the Altiris.NS file version that means `expected`; the 7.5 SP1 HF5 build is not known to waymark, so it must be given for anything but 7.6",
            ),
        ],
        result: "{server, expected, release, version, build}; fails with kind refused when different",
    },
    OpInfo {
        name: "collation",
        summary: "SQL Server collation vs CMDB collation",
        mutating: false,
        manual_on_windows: false,
        roles: NS,
        args: &[DATABASE],
        result: "{server, sql, server_collation, db_collation, matches}",
    },
    OpInfo {
        name: "disk_free",
        summary: "free and total space of a drive (default: the OS drive)",
        mutating: false,
        manual_on_windows: false,
        roles: ANY,
        args: &[arg("drive", ArgKind::Str, "drive letter such as \"C:\" (default: the OS drive)")],
        result: "{server, drive, free_gb, size_gb}",
    },
    OpInfo {
        name: "hardware",
        summary: "cores, memory, virtual or physical",
        mutating: false,
        manual_on_windows: false,
        roles: ANY,
        args: &[],
        result: "{server, cores, logical_processors, ram_gb, virtual, model}",
    },
    OpInfo {
        name: "software",
        summary: "OS, IIS, .NET 4.x release, Java and (for an NS) SQL Server version",
        mutating: false,
        manual_on_windows: false,
        roles: ANY,
        args: &[],
        result: "{server, os, iis, dotnet_release, dotnet_451, java, sql_version}",
    },
    OpInfo {
        name: "replication_status",
        summary: "hierarchy membership, replication enabled, replication job running",
        mutating: false,
        manual_on_windows: false,
        roles: NS,
        args: &[],
        result: "{server, hierarchy_member, enabled, job_running, notes} (windows: enabled/job_running are null = check by hand)",
    },
    OpInfo {
        name: "installed_products",
        summary: "installed ITMS products, with those that have no 7.6 release or need manual data migration",
        mutating: false,
        manual_on_windows: false,
        roles: NS,
        args: &[],
        result: "{server, products, without_76_release, no_longer_bundled, needs_simultaneous_upgrade, manual_migration, notes}",
    },
    OpInfo {
        name: "dcom",
        summary: "HKLM\\SOFTWARE\\Microsoft\\Ole EnableDCOM",
        mutating: false,
        manual_on_windows: false,
        roles: ANY,
        args: &[],
        result: "{server, enabled, value}",
    },
    OpInfo {
        name: "app_pools",
        summary: "IIS application pools and their state",
        mutating: false,
        manual_on_windows: false,
        roles: NS,
        args: &[],
        result: "{server, pools: [{name, state}], separated: [names] | null (windows), notes}",
    },
    OpInfo {
        name: "smp_log_errors",
        summary: "errors and warnings in the SMP logs (onbox step 14)",
        mutating: false,
        manual_on_windows: false,
        roles: NS,
        args: &[def("since", ArgKind::Duration, "24h", "how far back to look")],
        result: "{server, files, errors, warnings, samples, notes}",
    },
    OpInfo {
        name: "agent_versions",
        summary: "agent and plug-in versions reported to the NS (Inv_AeX_AC_Client_Agent)",
        mutating: false,
        manual_on_windows: false,
        roles: NS,
        args: &[
            arg("group", ArgKind::Str, "only computers in this filter (e.g. the test group)"),
            arg("target", ArgKind::Str, "version to compare with numerically, e.g. \"7.6\""),
        ],
        result: "{server, rows: [{agent, version, count, at_target}], total, below_target}",
    },
    OpInfo {
        name: "agent_registration_status",
        summary: "agents registered with (talking to) this NS",
        mutating: false,
        manual_on_windows: true,
        roles: NS,
        args: &[],
        result: "{server, total, registered, unregistered, lac_enabled}",
    },
    OpInfo {
        name: "list_policies",
        summary: "agent and plug-in install/upgrade policies with their enabled state",
        mutating: false,
        manual_on_windows: false,
        roles: NS,
        args: &[PATTERNS, AUDIENCE],
        result: "{server, policies: [{id, name, enabled, kind, action, audience}]}",
    },
    OpInfo {
        name: "get_settings",
        summary: "settings to re-apply after an off-box migration (Task Server, agent communication, policy refresh, membership update)",
        mutating: false,
        manual_on_windows: true,
        roles: NS,
        args: &[],
        result: "{server, settings: {task_server, agent_communication, policy_refresh, membership_update}}",
    },
    // ---- mutating ----
    OpInfo {
        name: "backup_ns",
        summary: "copy the NS install folder to a dated backup folder",
        mutating: true,
        manual_on_windows: false,
        roles: NS,
        args: &[DEST],
        result: "{server, path, files}",
    },
    OpInfo {
        name: "backup_kms",
        summary: "back up the KMS cryptographic keys to a .kms file (SIM; needed to restore the CMDB on new hardware)",
        mutating: true,
        manual_on_windows: true,
        roles: NS,
        args: &[DEST],
        result: "{server, file}",
    },
    OpInfo {
        name: "backup_cmdb",
        summary: "BACKUP DATABASE ... WITH CHECKSUM, INIT, then RESTORE VERIFYONLY",
        mutating: true,
        manual_on_windows: false,
        roles: NS,
        args: &[
            DEST,
            arg("file", ArgKind::Path, "backup file (default: DEST\\Symantec_CMDB_SERVER.bak)"),
            DATABASE,
            def("verify", ArgKind::Bool, "true", "run RESTORE VERIFYONLY after the backup"),
        ],
        result: "{server, sql, database, file, verified, bytes}",
    },
    OpInfo {
        name: "run_scheduled_task",
        summary: "run the Windows task NS.<name>* (name may carry a GUID suffix) and wait for it",
        mutating: true,
        manual_on_windows: false,
        roles: NS,
        args: &[
            def("task", ArgKind::Str, "NS.Package Refresh", "task name prefix"),
            def("wait", ArgKind::Bool, "true", "wait until the task is no longer running"),
        ],
        result: "{server, task, last_result}",
    },
    OpInfo {
        name: "disable_policies",
        summary: "disable the enabled agent/plug-in install/upgrade policies; returns exactly which were disabled",
        mutating: true,
        manual_on_windows: false,
        roles: NS,
        args: &[
            arg("ids", ArgKind::List, "policy ids (default: every policy matching patterns and audience)"),
            PATTERNS,
            AUDIENCE,
        ],
        result: "{server, disabled: [policy], already_disabled: [policy]}  (policy = {id, name, enabled, kind, action, audience})",
    },
    OpInfo {
        name: "enable_policies",
        summary: "enable policies by id (pass the `disabled` list of disable_policies to restore exactly those)",
        mutating: true,
        manual_on_windows: false,
        roles: NS,
        args: &[req("ids", ArgKind::List, "policy ids, or policy objects with an `id`")],
        result: "{server, enabled: [ids]}",
    },
    OpInfo {
        name: "clone_policies",
        summary: "clone upgrade policies and target the clones at a test group",
        mutating: true,
        manual_on_windows: true,
        roles: NS,
        args: &[
            req("ids", ArgKind::List, "policy ids, or policy objects with an `id`"),
            req("group", ArgKind::Str, "the test group (filter) the clones target"),
        ],
        result: "{server, group, clones: [{id, source, name}]}",
    },
    OpInfo {
        name: "set_replication",
        summary: "enable or disable hierarchy replication on an NS (ASDK EnableHierarchyReplication)",
        mutating: true,
        manual_on_windows: false,
        roles: NS,
        args: &[req("enabled", ArgKind::Bool, "true to enable, false to disable")],
        result: "{server, enabled, changed} (windows: changed is null)",
    },
    OpInfo {
        name: "ns_upgrade",
        summary: "upgrade the NS in place to 7.6 (SIM; in the lab this plays SIM and enforces ITMS.md's rules)",
        mutating: true,
        manual_on_windows: true,
        roles: NS,
        args: &[def("to", ArgKind::Str, "7.6", "target version")],
        result: "{server, from, to, changed, uninstalled}",
    },
    OpInfo {
        name: "defragment_cmdb",
        summary: "index maintenance: reorganize at 5-30 % fragmentation, rebuild above 30 %",
        mutating: true,
        manual_on_windows: false,
        roles: NS,
        args: &[
            DATABASE,
            def("reorganize_above", ArgKind::Int, "5", "fragmentation % from which an index is reorganized"),
            def("rebuild_above", ArgKind::Int, "30", "fragmentation % above which an index is rebuilt"),
            def("min_pages", ArgKind::Int, "1000", "ignore indexes smaller than this"),
        ],
        result: "{server, sql, database, reorganized, rebuilt}",
    },
    OpInfo {
        name: "restore_cmdb",
        summary: "RESTORE DATABASE from a backup file onto this NS's SQL server (off-box step 4)",
        mutating: true,
        manual_on_windows: false,
        roles: NS,
        args: &[
            req("file", ArgKind::Path, "backup file, as seen by the SQL server"),
            DATABASE,
            def("replace", ArgKind::Bool, "false", "overwrite an existing database (WITH REPLACE)"),
        ],
        result: "{server, sql, database, file}",
    },
    OpInfo {
        name: "migration_export",
        summary: "export ITMS data to a data store file with the Migration Wizard",
        mutating: true,
        manual_on_windows: true,
        roles: NS,
        args: &[req("file", ArgKind::Path, "data store file")],
        result: "{server, file, products}",
    },
    OpInfo {
        name: "migration_import",
        summary: "import a data store into this (7.6) NS with the Migration Wizard; checks product parity",
        mutating: true,
        manual_on_windows: true,
        roles: NS,
        args: &[req("file", ArgKind::Path, "data store file written by migration_export")],
        result: "{server, file, source, imported, manual_data}",
    },
    OpInfo {
        name: "apply_settings",
        summary: "re-apply recorded settings (the `settings` of get_settings)",
        mutating: true,
        manual_on_windows: true,
        roles: NS,
        args: &[req("settings", ArgKind::Map, "settings map as returned by get_settings")],
        result: "{server, applied: [keys]}",
    },
    OpInfo {
        name: "set_lac",
        summary: "enable or disable Legacy Agent Communication on a 7.6 NS",
        mutating: true,
        manual_on_windows: true,
        roles: NS,
        args: &[def("enabled", ArgKind::Bool, "true", "LAC on or off")],
        result: "{server, enabled, changed}",
    },
];

/// The operation called `name`.
pub fn op_info(name: &str) -> Option<&'static OpInfo> {
    OPS.iter().find(|o| o.name == name)
}

/// Look an operation up, or explain which names exist.
pub fn lookup(name: &str) -> Result<&'static OpInfo, EstateError> {
    op_info(name).ok_or_else(|| EstateError::UnknownOp {
        op: name.to_string(),
        suggestion: did_you_mean(name, OPS.iter().map(|o| o.name)).map(str::to_string),
    })
}

/// Arguments checked against an operation's table row, with typed getters that
/// apply the documented defaults.
#[derive(Debug, Clone, Copy)]
pub struct Args<'a> {
    op: &'static OpInfo,
    map: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    /// Validate `map` for `op`: unknown keys, missing required keys, wrong types.
    pub fn check(
        op: &'static OpInfo,
        map: &'a Map<String, Value>,
    ) -> Result<Args<'a>, EstateError> {
        let bad = |message: String| EstateError::BadArgs {
            op: op.name.to_string(),
            message,
        };
        for key in map.keys() {
            if op.args.iter().all(|a| a.name != key) {
                let hint = match did_you_mean(key, op.args.iter().map(|a| a.name)) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None if op.args.is_empty() => "; it takes no arguments".into(),
                    None => format!("; it takes {}", names(op)),
                };
                return Err(bad(format!("unknown argument `{key}`{hint}")));
            }
        }
        for a in op.args {
            let v = map.get(a.name).filter(|v| !v.is_null());
            match v {
                None if a.required => {
                    return Err(bad(format!("missing argument `{}` ({})", a.name, a.help)))
                }
                None => {}
                Some(v) => check_kind(a, v).map_err(bad)?,
            }
        }
        let args = Args { op, map };
        semantics(&args).map_err(bad)?;
        Ok(args)
    }

    /// The operation these arguments are for.
    pub fn op(&self) -> &'static OpInfo {
        self.op
    }

    /// The raw argument map.
    pub fn raw(&self) -> &'a Map<String, Value> {
        self.map
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn default(&self, name: &str) -> Option<&'static str> {
        self.op
            .args
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.default)
    }

    /// A string argument, or its default.
    pub fn str(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => self.default(name).map(str::to_string),
        }
    }

    /// A string argument that was given explicitly (ignores defaults).
    pub fn given_str(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// A boolean argument, or its default (false when there is none).
    pub fn bool(&self, name: &str) -> bool {
        match self.get(name) {
            Some(Value::Bool(b)) => *b,
            _ => self.default(name) == Some("true"),
        }
    }

    /// An integer argument, or its default (0 when there is none).
    pub fn int(&self, name: &str) -> i64 {
        match self.get(name).and_then(Value::as_i64) {
            Some(i) => i,
            None => self.default(name).and_then(|d| d.parse().ok()).unwrap_or(0),
        }
    }

    /// A duration argument, or its default.
    pub fn duration(&self, name: &str) -> Duration {
        self.str(name)
            .and_then(|s| crate::duration::parse_duration(&s).ok())
            .unwrap_or(Duration::ZERO)
    }

    /// A list argument: strings, or the `id` of objects. `None` when absent.
    pub fn list(&self, name: &str) -> Option<Vec<String>> {
        let items = self.get(name)?.as_array()?;
        Some(
            items
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_string),
                    _ => None,
                })
                .collect(),
        )
    }

    /// A map argument.
    pub fn map(&self, name: &str) -> Option<&'a Map<String, Value>> {
        self.get(name).and_then(Value::as_object)
    }

    /// The policy name patterns (argument or the ITMS default).
    pub fn patterns(&self) -> Vec<String> {
        self.list("patterns").unwrap_or_else(|| {
            super::itms::DEFAULT_POLICY_PATTERNS
                .iter()
                .map(|s| s.to_string())
                .collect()
        })
    }
}

fn names(op: &OpInfo) -> String {
    op.args
        .iter()
        .map(|a| format!("`{}`", a.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_kind(a: &ArgInfo, v: &Value) -> Result<(), String> {
    let wrong = || {
        format!(
            "argument `{}` must be {}, not {}",
            a.name,
            a.kind.with_article(),
            type_name(v)
        )
    };
    match a.kind {
        ArgKind::Str => {
            let s = v.as_str().ok_or_else(wrong)?;
            super::quote::check_plain_text(a.name, s)
        }
        ArgKind::Path => {
            let s = v.as_str().ok_or_else(wrong)?;
            super::quote::check_windows_path(a.name, s)
        }
        ArgKind::Bool => v.as_bool().map(|_| ()).ok_or_else(wrong),
        ArgKind::Int => v.as_i64().map(|_| ()).ok_or_else(wrong),
        ArgKind::Map => v.as_object().map(|_| ()).ok_or_else(wrong),
        ArgKind::Duration => {
            let s = v.as_str().ok_or_else(wrong)?;
            crate::duration::parse_duration(s)
                .map(|_| ())
                .map_err(|m| format!("argument `{}`: {m}", a.name))
        }
        ArgKind::List => {
            let items = v.as_array().ok_or_else(wrong)?;
            for item in items {
                let text = match item {
                    Value::String(s) => Some(s.as_str()),
                    Value::Object(o) => o.get("id").and_then(Value::as_str),
                    _ => None,
                };
                if let Some(t) = text {
                    super::quote::check_plain_text(a.name, t)?;
                } else {
                    return Err(format!(
                        "argument `{}` must list strings (or objects with an \"id\"), found {}",
                        a.name,
                        type_name(item)
                    ));
                }
            }
            Ok(())
        }
    }
}

/// Checks on argument values that both drivers must apply identically, so a runbook
/// gets the same refusal in a rehearsal as on real servers.
fn semantics(a: &Args) -> Result<(), String> {
    for id in a.list("ids").unwrap_or_default() {
        if !is_guid(&id) {
            return Err(format!(
                "policy id `{id}` is not a GUID; pass ids from list_policies or disable_policies"
            ));
        }
    }
    if let Some(aud) = a.given_str("audience") {
        if !matches!(aud.as_str(), "clients" | "site_servers" | "all") {
            return Err(format!(
                "audience `{aud}` is not one of \"clients\", \"site_servers\", \"all\""
            ));
        }
    }
    if let Some(d) = a.given_str("drive") {
        let b = d.as_bytes();
        if !(b.len() == 2 && b[0].is_ascii_alphabetic() && b[1] == b':') {
            return Err(format!("drive `{d}` must be a drive letter such as \"C:\""));
        }
    }
    if let Some(to) = a.given_str("to") {
        if to != super::itms::TARGET {
            return Err(format!(
                "`to` is `{to}`, but only {} is supported",
                super::itms::TARGET
            ));
        }
    }
    if let Some(e) = a.given_str("expected") {
        if super::itms::leading_version(&super::itms::release(&e)).is_none() {
            return Err(format!(
                "expected `{e}` is not a version such as \"7.5 SP1 HF5\" or \"7.6\""
            ));
        }
    }
    if a.op.name == "defragment_cmdb" {
        let (reorg, rebuild) = (a.int("reorganize_above"), a.int("rebuild_above"));
        if !(0 <= reorg && reorg < rebuild && rebuild <= 100) {
            return Err(format!(
                "need 0 <= reorganize_above ({reorg}) < rebuild_above ({rebuild}) <= 100"
            ));
        }
        if a.int("min_pages") < 0 {
            return Err("min_pages cannot be negative".into());
        }
    }
    Ok(())
}

/// True when `s` looks like a GUID (ASDK identifies items by GUID).
pub fn is_guid(s: &str) -> bool {
    let t = s
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(s);
    let parts: Vec<&str> = t.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a map",
    }
}

/// The operation table as Markdown (the body of `docs/estate-ops.md`).
pub fn ops_markdown() -> String {
    let mut out = String::new();
    out.push_str("| op | mutating | windows | roles | args | result |\n");
    out.push_str("| --- | --- | --- | --- | --- | --- |\n");
    for op in OPS {
        let roles = if op.roles.is_empty() {
            "any".to_string()
        } else {
            op.roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let args = if op.args.is_empty() {
            "—".to_string()
        } else {
            op.args
                .iter()
                .map(|a| {
                    let mut s = format!("`{}`", a.name);
                    if a.required {
                        s.push_str(" (required)");
                    } else if let Some(d) = a.default {
                        s.push_str(&format!(" = `{d}`"));
                    }
                    s
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | `{}` |\n",
            op.name,
            if op.mutating { "yes" } else { "no" },
            if op.manual_on_windows {
                "**gate**"
            } else {
                "scripted"
            },
            roles,
            md(&args),
            md(op.result),
        ));
    }
    out.push('\n');
    for op in OPS {
        out.push_str(&format!("### `{}`\n{}.\n", op.name, md(op.summary)));
        for a in op.args {
            let req = if a.required { ", required" } else { "" };
            let d = a
                .default
                .map(|d| format!(", default `{d}`"))
                .unwrap_or_default();
            out.push_str(&format!(
                "- `{}` ({}{req}{d}): {}\n",
                a.name,
                a.kind.name(),
                md(a.help)
            ));
        }
        out.push('\n');
    }
    out
}

fn md(s: &str) -> String {
    s.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn spec_operations_are_in_the_table() {
        for name in [
            "backup_ns",
            "backup_cmdb",
            "set_replication",
            "ns_upgrade",
            "migration_export",
            "migration_import",
        ] {
            assert!(op_info(name).is_some(), "{name}");
        }
        let mut seen = std::collections::HashSet::new();
        for op in OPS {
            assert!(seen.insert(op.name), "duplicate op {}", op.name);
        }
        assert_eq!(
            op_info("set_replication").unwrap().arg_names(),
            vec!["enabled"]
        );
    }

    #[test]
    fn unknown_op_suggests_a_name() {
        let e = lookup("backup_cmbd").unwrap_err().to_string();
        assert!(e.contains("did you mean `backup_cmdb`?"), "{e}");
    }

    #[test]
    fn args_are_checked_against_the_table() {
        let op = op_info("set_replication").unwrap();
        let e = Args::check(op, &map(json!({"enable": false})))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("unknown argument `enable`; did you mean `enabled`?"),
            "{e}"
        );
        let e = Args::check(op, &map(json!({}))).unwrap_err().to_string();
        assert!(e.contains("missing argument `enabled`"), "{e}");
        let e = Args::check(op, &map(json!({"enabled": "no"})))
            .unwrap_err()
            .to_string();
        assert!(e.contains("`enabled` must be a bool, not a string"), "{e}");
        let m = map(json!({"enabled": false}));
        assert!(!Args::check(op, &m).unwrap().bool("enabled"));
    }

    #[test]
    fn defaults_apply_when_absent_or_null() {
        let op = op_info("backup_cmdb").unwrap();
        let m = map(json!({"dest": null}));
        let a = Args::check(op, &m).unwrap();
        assert_eq!(a.str("dest").as_deref(), Some("D:\\Backups\\waymark"));
        assert!(a.bool("verify"));
        assert_eq!(a.str("database").as_deref(), Some("Symantec_CMDB"));
        let op = op_info("smp_log_errors").unwrap();
        let m = map(json!({}));
        assert_eq!(
            Args::check(op, &m).unwrap().duration("since"),
            Duration::from_secs(86400)
        );
        let m = map(json!({"since": "soon"}));
        assert!(Args::check(op, &m).is_err());
    }

    #[test]
    fn lists_accept_ids_or_policy_objects() {
        let op = op_info("enable_policies").unwrap();
        let a = "6f1c2a7e-0b1d-4e5f-9a3b-2c4d6e8f0a1b";
        let b = "{0D9E8F7A-6B5C-4D3E-8F1A-2B3C4D5E6F7A}";
        let m = map(json!({"ids": [a, {"id": b, "name": "x"}]}));
        assert_eq!(
            Args::check(op, &m).unwrap().list("ids").unwrap(),
            vec![a, b]
        );
        let m = map(json!({"ids": [1]}));
        assert!(Args::check(op, &m).is_err());
        let e = Args::check(op, &map(json!({"ids": ["'); calc"]}))).unwrap_err();
        assert!(e.to_string().contains("is not a GUID"), "{e}");
        assert!(!is_guid("6f1c2a7e0b1d4e5f9a3b2c4d6e8f0a1b"));
    }

    #[test]
    fn shared_semantics_refuse_bad_values() {
        let check = |op: &str, v: Value| Args::check(op_info(op).unwrap(), &map(v)).map(|_| ());
        assert!(check("list_policies", json!({"audience": "servers"})).is_err());
        assert!(check("disk_free", json!({"drive": "C:\\"})).is_err());
        assert!(check("disk_free", json!({"drive": "d:"})).is_ok());
        assert!(check("ns_upgrade", json!({"to": "8.0"})).is_err());
        assert!(check("verify_version", json!({"expected": "latest"})).is_err());
        assert!(check("defragment_cmdb", json!({"reorganize_above": 40})).is_err());
        assert!(check("backup_cmdb", json!({"dest": "D:\\a\"b"})).is_err());
        assert!(check("backup_cmdb", json!({"dest": "D:\\O'Brien; $(x)"})).is_ok());
        assert!(check("clone_policies", json!({"ids": [], "group": "a\nb"})).is_err());
    }

    #[test]
    fn docs_file_matches_the_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/estate-ops.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_default();
        const BEGIN: &str = "<!-- BEGIN GENERATED: ops_markdown() -->\n";
        const END: &str = "<!-- END GENERATED -->";
        if std::env::var_os("WAYMARK_UPDATE_DOCS").is_some() {
            let (head, tail) = match (doc.find(BEGIN), doc.find(END)) {
                (Some(b), Some(e)) => (doc[..b].to_string(), doc[e..].to_string()),
                _ => (doc.clone(), END.to_string() + "\n"),
            };
            std::fs::write(&path, format!("{head}{BEGIN}{}{tail}", ops_markdown())).unwrap();
            return;
        }
        assert!(
            doc.contains(&format!("{BEGIN}{}{END}", ops_markdown())),
            "docs/estate-ops.md is out of date: run `WAYMARK_UPDATE_DOCS=1 cargo test --lib docs_file_matches`"
        );
    }
}
