//! Every estate operation, one row each: its roles, arguments with kinds and
//! defaults, and the shape of its result.

use super::{ArgInfo, ArgKind, OpInfo};
use crate::estate::itms::Role;

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
            arg("computer", ArgKind::Str, "only this computer, by name (e.g. one site server, verified before the clients)"),
            arg("target", ArgKind::Str, "version to compare with numerically, e.g. \"7.6\""),
        ],
        result: "{server, rows: [{agent, version, count, at_target}], total, below_target} (windows, with group or computer: notes)",
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
