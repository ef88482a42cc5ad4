//! What an inventory says about one server: its role, how it is reached, and the
//! simulated facts the lab seeds from. Plain data; validation lives in `validate/`.

use std::collections::BTreeMap;

use serde::Deserialize;

pub(crate) use crate::estate::itms::Role;

/// Which driver executes estate operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// The simulated rehearsal estate.
    Lab,
    /// Real Windows servers.
    Windows,
}

impl Driver {
    /// The name used in inventories and returned by `Estate::driver`.
    pub fn as_str(self) -> &'static str {
        match self {
            Driver::Lab => "lab",
            Driver::Windows => "windows",
        }
    }
}

/// How the windows driver reaches a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportKind {
    /// PowerShell on the machine running waymark.
    Local,
    /// `ssh HOST pwsh ...`.
    Ssh,
    /// A local PowerShell running `Invoke-Command -ComputerName HOST`.
    PsRemoting,
}

impl TransportKind {
    /// The name used in inventories.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Local => "local",
            TransportKind::Ssh => "ssh",
            TransportKind::PsRemoting => "psremoting",
        }
    }
}

/// Facts of a simulated server (`[server.lab]`); `None` means the healthy default.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LabFacts {
    /// NS version name, e.g. "7.5 SP1 HF5" or "7.6".
    pub version: Option<String>,
    /// SQL Server collation.
    pub collation: Option<String>,
    /// CMDB collation.
    pub db_collation: Option<String>,
    /// Free space on the OS drive.
    pub disk_free_gb: Option<f64>,
    /// Size of the OS drive.
    pub disk_size_gb: Option<f64>,
    /// CPU cores.
    pub cores: Option<u32>,
    /// Memory.
    pub ram_gb: Option<u32>,
    /// Runs on virtual hardware.
    #[serde(rename = "virtual")]
    pub is_virtual: Option<bool>,
    /// OS caption.
    pub os: Option<String>,
    /// IIS version ("8.5").
    pub iis: Option<String>,
    /// .NET 4.x `Release` registry value.
    pub dotnet_release: Option<u64>,
    /// Java version, absent = not installed.
    pub java: Option<String>,
    /// SQL Server product version.
    pub sql_version: Option<String>,
    /// Hierarchy replication enabled (default: on for NS servers in a hierarchy).
    pub replication_enabled: Option<bool>,
    /// A replication job is running right now.
    pub replication_job_running: Option<bool>,
    /// `EnableDCOM` = `Y`.
    pub dcom_enabled: Option<bool>,
    /// IIS application pools still separated from the defaults.
    pub app_pools_separated: Option<Vec<String>>,
    /// Errors in the SMP logs.
    pub log_errors: Option<u32>,
    /// Warnings in the SMP logs.
    pub log_warnings: Option<u32>,
    /// Installed ITMS products.
    pub products: Option<Vec<String>>,
    /// Legacy Agent Communication enabled.
    pub lac_enabled: Option<bool>,
    /// Name of the test group (filter) used for phased agent upgrades.
    pub test_group: Option<String>,
    /// Transient faults: the first N calls of an operation fail.
    pub fail: Option<BTreeMap<String, u32>>,
    /// A site server whose agent does not take the upgrade policies (offline, package
    /// download blocked, ...). Read from the inventory at each call, not seeded: setting
    /// it back to false and resuming is how a rehearsal plays fixing the machine, so it
    /// is left out of the seed fingerprint (no `lab reset` is asked for).
    #[serde(skip_serializing)]
    pub agent_upgrade_fails: Option<bool>,
}

/// One server of the estate.
#[derive(Debug, Clone, PartialEq)]
pub struct Server {
    /// Host name.
    pub name: String,
    /// Its ITMS role, when `role` names one (`ns`, `sql`, `site`, `gateway`); the
    /// ITMS runbooks and the drivers act on this.
    pub role: Option<Role>,
    /// `role` as written, any string (a team's own "web", "db", ...); `None` when absent.
    pub role_name: Option<String>,
    /// Groups it belongs to (`groups = [...]`), for runbooks that act on a group.
    pub groups: Vec<String>,
    /// Free-form facts for runbooks (`vars = { ... }`): strings, numbers, bools, arrays.
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Where to connect (`address`; default: the name).
    pub address: Option<String>,
    /// Port to connect to (ssh).
    pub port: Option<u16>,
    /// User to connect as (ssh).
    pub user: Option<String>,
    /// Private key file (ssh).
    pub identity_file: Option<String>,
    /// known_hosts file to check host keys against (ssh; default the user's own).
    pub known_hosts: Option<String>,
    /// Parent NS in the hierarchy (NS only).
    pub parent: Option<String>,
    /// The NS that manages a site server (site servers only; the inventory's only NS
    /// when not written).
    pub ns: Option<String>,
    /// SQL host or `HOST\INSTANCE` holding the CMDB (NS only).
    pub sql: Option<String>,
    /// Managed endpoints.
    pub endpoints: Option<u64>,
    /// How the windows driver reaches it.
    pub transport: TransportKind,
    /// Simulated facts (lab driver).
    pub lab: LabFacts,
    /// Line of its `[[server]]` table, for messages.
    pub line: usize,
}

impl Server {
    /// A server with defaults, for building inventories in code and tests.
    pub fn new(name: &str, role: Role) -> Server {
        Server {
            name: name.to_string(),
            role: Some(role),
            role_name: Some(role.as_str().to_string()),
            groups: Vec::new(),
            vars: BTreeMap::new(),
            address: None,
            port: None,
            user: None,
            identity_file: None,
            known_hosts: None,
            parent: None,
            ns: None,
            sql: None,
            endpoints: None,
            transport: TransportKind::Local,
            lab: LabFacts::default(),
            line: 0,
        }
    }

    /// True for an NS (the ITMS role `ns`).
    pub fn is_ns(&self) -> bool {
        self.role == Some(Role::Ns)
    }

    /// What the server is, for messages ("an NS", "a `web` server").
    pub fn describe_role(&self) -> String {
        match (self.role, &self.role_name) {
            (Some(r), _) => r.describe().to_string(),
            (None, Some(n)) => format!("a `{}` server", n.escape_debug()),
            (None, None) => "a server without a role".to_string(),
        }
    }

    /// Where to connect: `address`, else the name.
    pub fn address(&self) -> &str {
        self.address.as_deref().unwrap_or(&self.name)
    }

    /// The SQL instance holding this NS's CMDB as given to `sqlcmd -S`.
    pub fn sql_instance(&self) -> Option<&str> {
        self.sql.as_deref()
    }

    /// The host part of [`Server::sql_instance`].
    pub fn sql_host(&self) -> Option<&str> {
        self.sql
            .as_deref()
            .map(|s| s.split('\\').next().unwrap_or(s))
    }
}
