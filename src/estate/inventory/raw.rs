//! The TOML shapes of an inventory as serde reads them (with spans for messages), the
//! keys allowed at each level, and serde's own errors turned into diagnostics.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::error::at;
use crate::diagnostic::{did_you_mean, Diagnostic};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawInventory {
    pub(super) name: Spanned<String>,
    pub(super) driver: Option<Spanned<String>>,
    pub(super) lab_delay: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) server: Vec<Spanned<RawServer>>,
    pub(super) notify: Option<RawNotify>,
}

/// `[notify]`: where this estate's runs send notifications (see `crate::notify`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNotify {
    pub(super) webhook: Option<Spanned<String>>,
    pub(super) command: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawServer {
    pub(super) name: Spanned<String>,
    pub(super) role: Option<Spanned<String>>,
    pub(super) groups: Option<Spanned<Vec<Spanned<String>>>>,
    pub(super) vars: Option<Spanned<toml::Table>>,
    pub(super) address: Option<Spanned<String>>,
    pub(super) port: Option<Spanned<i64>>,
    pub(super) user: Option<Spanned<String>>,
    pub(super) identity_file: Option<Spanned<String>>,
    pub(super) known_hosts: Option<Spanned<String>>,
    pub(super) parent: Option<Spanned<String>>,
    pub(super) ns: Option<Spanned<String>>,
    pub(super) sql: Option<Spanned<String>>,
    pub(super) endpoints: Option<u64>,
    pub(super) transport: Option<Spanned<String>>,
    pub(super) lab: Option<Spanned<RawLab>>,
}

// Same keys as LabFacts; kept separate so `version` and `fail` carry spans for messages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLab {
    pub(super) version: Option<Spanned<String>>,
    pub(super) collation: Option<String>,
    pub(super) db_collation: Option<String>,
    pub(super) disk_free_gb: Option<f64>,
    pub(super) disk_size_gb: Option<f64>,
    pub(super) cores: Option<u32>,
    pub(super) ram_gb: Option<u32>,
    #[serde(rename = "virtual")]
    pub(super) is_virtual: Option<bool>,
    pub(super) os: Option<String>,
    pub(super) iis: Option<String>,
    pub(super) dotnet_release: Option<u64>,
    pub(super) java: Option<String>,
    pub(super) sql_version: Option<String>,
    pub(super) replication_enabled: Option<bool>,
    pub(super) replication_job_running: Option<bool>,
    pub(super) dcom_enabled: Option<bool>,
    pub(super) app_pools_separated: Option<Vec<String>>,
    pub(super) log_errors: Option<u32>,
    pub(super) log_warnings: Option<u32>,
    pub(super) products: Option<Vec<String>>,
    pub(super) lac_enabled: Option<bool>,
    pub(super) test_group: Option<String>,
    pub(super) agent_upgrade_fails: Option<bool>,
    pub(super) fail: Option<Spanned<BTreeMap<String, u32>>>,
}

const TOP_KEYS: &[&str] = &["name", "driver", "lab_delay", "server"];
const SERVER_KEYS: &[&str] = &[
    "name",
    "role",
    "groups",
    "vars",
    "address",
    "port",
    "user",
    "identity_file",
    "known_hosts",
    "parent",
    "ns",
    "sql",
    "endpoints",
    "transport",
    "lab",
];
const LAB_KEYS: &[&str] = &[
    "version",
    "collation",
    "db_collation",
    "disk_free_gb",
    "disk_size_gb",
    "cores",
    "ram_gb",
    "virtual",
    "os",
    "iis",
    "dotnet_release",
    "java",
    "sql_version",
    "replication_enabled",
    "replication_job_running",
    "dcom_enabled",
    "app_pools_separated",
    "log_errors",
    "log_warnings",
    "products",
    "lac_enabled",
    "test_group",
    "agent_upgrade_fails",
    "fail",
];

/// Turn a toml/serde error into a diagnostic, adding "did you mean" for unknown keys.
pub(super) fn toml_diagnostic(file: &str, source: &str, e: &toml::de::Error) -> Diagnostic {
    let message = e.message().trim().to_string();
    let help = if let Some(rest) = message.strip_prefix("unknown field `") {
        let bad = rest.split('`').next().unwrap_or("");
        // serde lists the expected keys; prefer them, else every key we know.
        let expected: Vec<&str> = message
            .split_once("expected")
            .map(|(_, tail)| tail.split('`').skip(1).step_by(2).collect())
            .unwrap_or_default();
        let pool: Vec<&str> = if expected.is_empty() {
            TOP_KEYS
                .iter()
                .chain(SERVER_KEYS)
                .chain(LAB_KEYS)
                .copied()
                .collect()
        } else {
            expected.clone()
        };
        match did_you_mean(bad, pool.iter().copied()) {
            Some(s) => Some(format!("did you mean `{s}`?")),
            None if !expected.is_empty() => Some(format!(
                "allowed keys here: {}",
                expected
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            None => Some("remove the key; see examples/estates/ and docs/operator-guide.md for the inventory format".into()),
        }
    } else if message.starts_with("missing field") {
        Some("see examples/estates/ for a complete inventory (docs/operator-guide.md explains each key)".into())
    } else {
        None
    };
    at(file, source, e.span().map(|s| s.start), message, help)
}
