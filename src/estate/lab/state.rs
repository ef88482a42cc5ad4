//! The shape of the lab state: every simulated server, the operations recorded so far,
//! and the files operations wrote that later operations read (backups, data stores).
//! It is what `lab/NAME.json` holds and what `lab show --json` prints.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::estate::inventory::Inventory;
use crate::estate::itms;

/// A policy on a simulated NS.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Policy {
    /// GUID-shaped id.
    pub id: String,
    /// Name as shown in the console.
    pub name: String,
    /// Enabled.
    pub enabled: bool,
    /// For clones: the test group they target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// For clones: the id they were cloned from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Policy {
    /// The policy as operations report it.
    pub(crate) fn to_json(&self) -> Value {
        let (kind, action, audience) = itms::classify_policy(&self.name);
        serde_json::json!({
            "id": self.id, "name": self.name, "enabled": self.enabled,
            "kind": kind, "action": action, "audience": audience,
        })
    }
}

/// Agents managed by a simulated NS, by group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Fleet {
    /// `clients`, `site_servers`, or the test group's name.
    pub group: String,
    /// Computers.
    pub count: u64,
    /// Symantec Management Agent release.
    pub agent: String,
    /// Plug-in release.
    pub plugin: String,
}

/// The agent and plug-in release one site server of an NS reports (its NS's
/// `site_servers` entry; the inventory's site servers with `ns` = that NS).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct SiteAgent {
    /// Symantec Management Agent release.
    pub agent: String,
    /// Site-server plug-in release.
    pub plugin: String,
}

/// Index fragmentation waiting for `defragment_cmdb`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub(crate) struct Fragmentation {
    /// Indexes at 5–30 %.
    pub reorganize: u32,
    /// Indexes above 30 %.
    pub rebuild: u32,
}

/// One simulated server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct ServerState {
    /// Role name.
    pub role: String,
    /// NS version name (NS only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Hierarchy replication enabled.
    #[serde(default)]
    pub replication_enabled: bool,
    /// A replication job is running.
    #[serde(default)]
    pub replication_job_running: bool,
    /// Member of a hierarchy.
    #[serde(default)]
    pub hierarchy_member: bool,
    /// SQL Server collation (for an NS: of the SQL server holding its CMDB).
    pub collation: String,
    /// CMDB collation (NS only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_collation: Option<String>,
    /// A CMDB exists on the NS's SQL server.
    #[serde(default)]
    pub cmdb_present: bool,
    /// Free space on the OS drive.
    pub disk_free_gb: f64,
    /// Size of the OS drive.
    pub disk_size_gb: f64,
    /// CPU cores.
    pub cores: u32,
    /// Memory.
    pub ram_gb: u32,
    /// Virtual hardware.
    #[serde(default)]
    pub r#virtual: bool,
    /// OS caption.
    pub os: String,
    /// IIS version.
    #[serde(default)]
    pub iis: Option<String>,
    /// .NET 4.x Release value.
    #[serde(default)]
    pub dotnet_release: Option<u64>,
    /// Java version.
    #[serde(default)]
    pub java: Option<String>,
    /// SQL Server product version (NS: of its SQL server).
    #[serde(default)]
    pub sql_version: Option<String>,
    /// DCOM enabled.
    pub dcom_enabled: bool,
    /// IIS pools and their state.
    #[serde(default)]
    pub app_pools: Vec<(String, String)>,
    /// Pools still separated from the defaults.
    #[serde(default)]
    pub app_pools_separated: Vec<String>,
    /// SMP log errors.
    #[serde(default)]
    pub log_errors: u32,
    /// SMP log warnings.
    #[serde(default)]
    pub log_warnings: u32,
    /// Installed products (NS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub products: Vec<String>,
    /// Legacy Agent Communication.
    #[serde(default)]
    pub lac_enabled: bool,
    /// Policies (NS), including clones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policies: Vec<Policy>,
    /// Agents by group (NS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<Fleet>,
    /// The site servers this NS manages, by name (NS). Kept on the NS because their
    /// versions are what its CMDB records.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub site_servers: BTreeMap<String, SiteAgent>,
    /// The test group's name (NS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_group: Option<String>,
    /// Settings to carry over in an off-box migration (NS).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub settings: Map<String, Value>,
    /// Fragmented indexes (NS).
    #[serde(default)]
    pub fragmented: Fragmentation,
    /// Windows scheduled tasks named NS.* (NS).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scheduled_tasks: Vec<String>,
    /// Remaining injected faults per operation.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fail: BTreeMap<String, u32>,
    /// Source NS of an imported data store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub imported_from: Option<String>,
    /// Source NS of a restored CMDB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdb_restored_from: Option<String>,
}

impl ServerState {
    /// The NS version, or "" for other roles.
    pub(crate) fn version(&self) -> &str {
        self.version.as_deref().unwrap_or("")
    }

    /// The CMDB collation (the server collation when none is recorded).
    pub(crate) fn db_collation(&self) -> &str {
        self.db_collation.as_deref().unwrap_or(&self.collation)
    }
}

/// A CMDB backup the lab knows about.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Backup {
    /// File written.
    pub file: String,
    /// NS whose CMDB it holds.
    pub source: String,
    /// Collation of the backed-up database.
    pub db_collation: String,
    /// Event sequence number that wrote it.
    pub seq: u64,
}

/// A Migration Wizard data store the lab knows about.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct DataStore {
    /// File written.
    pub file: String,
    /// NS it was exported from.
    pub source: String,
    /// Products installed on the source.
    pub products: Vec<String>,
    /// Agents of the source.
    pub agents: Vec<Fleet>,
}

/// The whole lab estate as stored in `lab/NAME.json` (and printed by `lab show --json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct LabState {
    /// Estate name.
    pub estate: String,
    /// Servers by name.
    pub servers: BTreeMap<String, ServerState>,
    /// Every operation, in order.
    pub events: Vec<Value>,
    /// CMDB backups written.
    #[serde(default)]
    pub backups: Vec<Backup>,
    /// KMS key backups written: (NS, file).
    #[serde(default)]
    pub kms_backups: Vec<(String, String)>,
    /// Data stores exported.
    #[serde(default)]
    pub data_stores: Vec<DataStore>,
    /// [`Inventory::lab_fingerprint`] of the inventory this state was seeded from.
    #[serde(default)]
    pub seeded_from: String,
}

impl LabState {
    /// A warning when the inventory's lab facts changed since this state was seeded
    /// (the lab keeps the simulated state; edits take effect after `lab reset`).
    pub(crate) fn stale_warning(&self, inv: &Inventory, reset: &str) -> Option<String> {
        (self.seeded_from != inv.lab_fingerprint()).then(|| {
            format!(
                "the inventory of lab estate `{}` changed since its state was seeded; the lab keeps the simulated state \
                 (run `{reset}` to re-seed from the edited inventory)",
                self.estate
            )
        })
    }

    /// The next event sequence number.
    pub(crate) fn next_seq(&self) -> u64 {
        self.events
            .last()
            .and_then(|e| e.get("seq"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
            + 1
    }
}
