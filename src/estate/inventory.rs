//! Inventory files (SPEC §7): the TOML description of an estate, parsed and validated
//! into an [`Inventory`] before anything runs.
//!
//! Every check reports `FILE:LINE:COL` and a `help:` line with the fix, and all
//! semantic problems are gathered in one pass so an operator fixes the file once.
//! Only TOML syntax and shape errors (what serde sees) stop at the first problem.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::duration::parse_duration;

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

/// What a server is in the ITMS estate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A Notification Server (SMP server).
    Ns,
    /// A SQL Server host holding a CMDB.
    Sql,
    /// A site server (package, task, PXE services).
    Site,
    /// An internet gateway (CEM).
    Gateway,
}

impl Role {
    /// The name used in inventories.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ns => "ns",
            Role::Sql => "sql",
            Role::Site => "site",
            Role::Gateway => "gateway",
        }
    }

    /// A human name for messages ("an NS", "a sql server").
    pub fn describe(self) -> &'static str {
        match self {
            Role::Ns => "an NS",
            Role::Sql => "a sql server",
            Role::Site => "a site server",
            Role::Gateway => "an internet gateway",
        }
    }

    /// The ITMS role called `s`, if it is one.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "ns" => Some(Role::Ns),
            "sql" => Some(Role::Sql),
            "site" => Some(Role::Site),
            "gateway" => Some(Role::Gateway),
            _ => None,
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

/// A parsed, validated estate description.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// Estate name (the lab state file is `lab/NAME.json`).
    pub name: String,
    /// Which driver runs estate operations; `None` for an inventory that only lists
    /// servers for runbooks (estate operations then fail, saying to add one).
    pub driver: Option<Driver>,
    /// Simulated duration of each lab operation.
    pub lab_delay: Duration,
    /// Servers in file order.
    pub servers: Vec<Server>,
    /// Where it came from (a path, or `<demo>`).
    pub origin: String,
    /// Notification hooks of `[notify]`.
    pub notify: crate::notify::Hooks,
}

/// One problem in an inventory file.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryDiagnostic {
    /// 1-based line, 0 when the problem has no position.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub help: Option<String>,
}

/// Every problem found in an inventory file; renders as `FILE:LINE:COL: message` + `help:`.
#[derive(Debug, Clone, PartialEq)]
pub struct InventoryError {
    /// The file (or `<demo>`).
    pub file: String,
    /// The problems, in file order.
    pub diagnostics: Vec<InventoryDiagnostic>,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            if d.line == 0 {
                write!(f, "{}: {}", self.file, d.message)?;
            } else {
                write!(f, "{}:{}:{}: {}", self.file, d.line, d.col, d.message)?;
            }
            if let Some(h) = &d.help {
                write!(f, "\n  help: {h}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for InventoryError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInventory {
    name: Spanned<String>,
    driver: Option<Spanned<String>>,
    lab_delay: Option<Spanned<String>>,
    #[serde(default)]
    server: Vec<Spanned<RawServer>>,
    notify: Option<RawNotify>,
}

/// `[notify]`: where this estate's runs send notifications (see `crate::notify`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotify {
    webhook: Option<Spanned<String>>,
    command: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    name: Spanned<String>,
    role: Option<Spanned<String>>,
    groups: Option<Spanned<Vec<Spanned<String>>>>,
    vars: Option<Spanned<toml::Table>>,
    address: Option<Spanned<String>>,
    port: Option<Spanned<i64>>,
    user: Option<Spanned<String>>,
    identity_file: Option<Spanned<String>>,
    known_hosts: Option<Spanned<String>>,
    parent: Option<Spanned<String>>,
    sql: Option<Spanned<String>>,
    endpoints: Option<u64>,
    transport: Option<Spanned<String>>,
    lab: Option<Spanned<RawLab>>,
}

// Same keys as LabFacts; kept separate so `version` and `fail` carry spans for messages.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLab {
    version: Option<Spanned<String>>,
    collation: Option<String>,
    db_collation: Option<String>,
    disk_free_gb: Option<f64>,
    disk_size_gb: Option<f64>,
    cores: Option<u32>,
    ram_gb: Option<u32>,
    #[serde(rename = "virtual")]
    is_virtual: Option<bool>,
    os: Option<String>,
    iis: Option<String>,
    dotnet_release: Option<u64>,
    java: Option<String>,
    sql_version: Option<String>,
    replication_enabled: Option<bool>,
    replication_job_running: Option<bool>,
    dcom_enabled: Option<bool>,
    app_pools_separated: Option<Vec<String>>,
    log_errors: Option<u32>,
    log_warnings: Option<u32>,
    products: Option<Vec<String>>,
    lac_enabled: Option<bool>,
    test_group: Option<String>,
    fail: Option<Spanned<BTreeMap<String, u32>>>,
}

/// Far above any real NS; keeps the lab's arithmetic on endpoint counts safe.
const MAX_ENDPOINTS: u64 = 10_000_000;

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
    "fail",
];

// The one typo matcher, shared with every other diagnostic.
pub use crate::diagnostic::did_you_mean;

/// Host names: letters, digits, '-' and '.', at most 253 characters, not starting with '-'.
pub fn check_host_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a host name cannot be empty".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "host name is {} characters long; at most 253 are allowed",
            name.len()
        ));
    }
    if name.starts_with('-') {
        return Err(format!("host name `{name}` starts with '-'"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '.'))
    {
        return Err(format!(
            "host name `{}` contains {:?}; only letters, digits, '-' and '.' are allowed",
            name.escape_debug(),
            c
        ));
    }
    Ok(())
}

/// SQL Server instance names: letters, digits, `_` and `$`, at most 16 characters.
pub fn check_instance_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 16 {
        return Err(format!(
            "SQL instance name `{}` must be 1 to 16 characters long",
            name.escape_debug()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '$'))
    {
        return Err(format!(
            "SQL instance name `{}` contains {:?}; only letters, digits, '_' and '$' are allowed",
            name.escape_debug(),
            c
        ));
    }
    Ok(())
}

/// Estate names become file names (`lab/NAME.json`), so they are kept path-safe.
fn check_estate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 100 {
        return Err("the estate name must be 1 to 100 characters long".into());
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err(format!("estate name `{name}` cannot start with '.' or '-'"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "estate name `{}` contains {:?}; use letters, digits, '-', '_' and '.' (it names the lab state file)",
            name.escape_debug(),
            c
        ));
    }
    Ok(())
}

/// Lab versions must start with a `MAJOR.MINOR` release so the lab can compare them.
fn check_version_name(v: &str) -> Result<(), String> {
    let rel = crate::estate::itms::release(v);
    let ok = rel
        .split_once('.')
        .map(|(a, b)| {
            !a.is_empty()
                && !b.is_empty()
                && a.chars().all(|c| c.is_ascii_digit())
                && b.chars().all(|c| c.is_ascii_digit())
        })
        .unwrap_or(false);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "lab version `{}` does not start with a release such as 7.5 or 7.6",
            v.escape_debug()
        ))
    }
}

struct Collector<'s> {
    source: &'s str,
    diags: Vec<(usize, InventoryDiagnostic)>,
}

impl Collector<'_> {
    fn at(&mut self, offset: usize, message: String, help: Option<String>) {
        let (line, col) = line_col(self.source, offset);
        self.diags.push((
            offset,
            InventoryDiagnostic {
                line,
                col,
                message,
                help,
            },
        ));
    }
}

/// 1-based line and column of a byte offset.
fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

impl Inventory {
    /// Read and validate an inventory file.
    pub fn load(path: &Path) -> Result<Inventory, InventoryError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| InventoryError {
            file: file.clone(),
            diagnostics: vec![InventoryDiagnostic {
                line: 0,
                col: 0,
                message: format!("cannot read the inventory: {e}"),
                help: Some("pass an existing TOML file with --inventory, or omit it to use the built-in demo lab".into()),
            }],
        })?;
        Inventory::parse(&text, &file)
    }

    /// Parse and validate inventory text; `file` names it in messages.
    pub fn parse(source: &str, file: &str) -> Result<Inventory, InventoryError> {
        let raw: RawInventory = toml::from_str(source).map_err(|e| InventoryError {
            file: file.to_string(),
            diagnostics: vec![toml_diagnostic(source, &e)],
        })?;
        let mut c = Collector {
            source,
            diags: Vec::new(),
        };

        let name = raw.name.get_ref().clone();
        if let Err(m) = check_estate_name(&name) {
            c.at(
                raw.name.span().start,
                m,
                Some("for example: name = \"contoso\"".into()),
            );
        }
        let driver = raw.driver.as_ref().map(|d| match d.get_ref().as_str() {
            "lab" => Driver::Lab,
            "windows" => Driver::Windows,
            other => {
                let help = match did_you_mean(other, ["lab", "windows"]) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => {
                        "use driver = \"lab\" (rehearsal) or driver = \"windows\" (real servers)"
                            .into()
                    }
                };
                c.at(
                    d.span().start,
                    format!("unknown driver `{}`", other.escape_debug()),
                    Some(help),
                );
                Driver::Lab
            }
        });
        let lab_delay = match &raw.lab_delay {
            None => Duration::ZERO,
            Some(d) => match parse_duration(d.get_ref()) {
                Ok(v) => v,
                Err(m) => {
                    c.at(
                        d.span().start,
                        format!("lab_delay: {m}"),
                        Some("for example: lab_delay = \"200ms\"".into()),
                    );
                    Duration::ZERO
                }
            },
        };
        if raw.server.is_empty() {
            c.at(
                0,
                "the inventory has no [[server]] entries".into(),
                Some("add at least one server: [[server]] name = \"ns-hq\" role = \"ns\"".into()),
            );
        }

        let servers = validate_servers(&raw.server, driver, &mut c);
        let mut notify = crate::notify::Hooks::default();
        if let Some(n) = &raw.notify {
            if let Some(w) = &n.webhook {
                match crate::notify::http::parse_url(w.get_ref()) {
                    Ok(_) => notify.webhook = Some(w.get_ref().clone()),
                    Err(m) => c.at(w.span().start, format!("[notify] {m}"), None),
                }
            }
            if let Some(cmd) = &n.command {
                match crate::notify::check_command(cmd.get_ref()) {
                    Ok(()) => notify.command = Some(cmd.get_ref().clone()),
                    Err(m) => c.at(cmd.span().start, format!("[notify] command: {m}"), None),
                }
            }
        }

        if !c.diags.is_empty() {
            c.diags.sort_by_key(|(o, _)| *o);
            return Err(InventoryError {
                file: file.to_string(),
                diagnostics: c.diags.into_iter().map(|(_, d)| d).collect(),
            });
        }
        Ok(Inventory {
            name,
            driver,
            lab_delay,
            servers,
            origin: file.to_string(),
            notify,
        })
    }

    /// The server called `name`.
    pub fn server(&self, name: &str) -> Option<&Server> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// All Notification Servers, in file order.
    pub fn ns(&self) -> impl Iterator<Item = &Server> {
        self.servers.iter().filter(|s| s.is_ns())
    }

    /// The parent NS of `name`, if it has one.
    pub fn parent(&self, name: &str) -> Option<&Server> {
        self.server(name)
            .and_then(|s| s.parent.as_deref())
            .and_then(|p| self.server(p))
    }

    /// The direct children of NS `name`, in file order.
    pub fn children(&self, name: &str) -> Vec<&Server> {
        self.servers
            .iter()
            .filter(|s| s.parent.as_deref() == Some(name))
            .collect()
    }

    /// Every NS below `name` in the hierarchy (children, their children, ...).
    pub fn descendants(&self, name: &str) -> Vec<&Server> {
        let mut out = Vec::new();
        let mut stack = vec![name.to_string()];
        while let Some(n) = stack.pop() {
            for c in self.children(&n) {
                if out.iter().all(|o: &&Server| o.name != c.name) {
                    out.push(c);
                    stack.push(c.name.clone());
                }
            }
        }
        out
    }

    /// Number of ancestors of `name` (0 at the top of the hierarchy).
    pub fn depth(&self, name: &str) -> usize {
        let mut d = 0;
        let mut cur = self.parent(name);
        // Validation rejects cycles; the bound only guards hand-built inventories.
        while let Some(p) = cur {
            d += 1;
            if d > self.servers.len() {
                break;
            }
            cur = self.parent(&p.name);
        }
        d
    }

    /// NS names ordered bottom-up: every child before its parent (deepest first, then file order).
    pub fn bottom_up(&self) -> Vec<&str> {
        let mut ns: Vec<(usize, usize, &str)> = self
            .servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.is_ns())
            .map(|(i, s)| (self.depth(&s.name), i, s.name.as_str()))
            .collect();
        ns.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        ns.into_iter().map(|(_, _, n)| n).collect()
    }

    /// A digest of everything the lab seeds from, to notice an edited inventory.
    pub fn lab_fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let facts: Vec<serde_json::Value> = self
            .servers
            .iter()
            .map(|s| {
                serde_json::json!([
                    s.name,
                    s.role.map(Role::as_str),
                    s.parent,
                    s.sql,
                    s.endpoints,
                    s.lab
                ])
            })
            .collect();
        let text = serde_json::to_string(&facts).unwrap_or_default();
        let digest = Sha256::digest(text.as_bytes());
        digest.iter().take(8).map(|b| format!("{b:02x}")).collect()
    }

    /// The inventory as the Rhai `inventory` global sees it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "driver": self.driver.map(Driver::as_str),
            "servers": self.servers.iter().map(|s| serde_json::json!({
                "name": s.name,
                "role": s.role_name,
                "groups": s.groups,
                "vars": s.vars,
                "address": s.address(),
                "port": s.port,
                "user": s.user,
                "identity_file": s.identity_file,
                "known_hosts": s.known_hosts,
                "parent": s.parent,
                "sql": s.sql,
                "endpoints": s.endpoints,
                "transport": s.transport.as_str(),
            })).collect::<Vec<_>>(),
        })
    }
}

fn validate_servers(
    raw: &[Spanned<RawServer>],
    driver: Option<Driver>,
    c: &mut Collector<'_>,
) -> Vec<Server> {
    let mut servers = Vec::new();
    let mut seen: HashMap<String, usize> = HashMap::new();
    // First pass: each server on its own.
    for rs in raw {
        let r = rs.get_ref();
        let name = r.name.get_ref().clone();
        if let Err(m) = check_host_name(&name) {
            c.at(
                r.name.span().start,
                m,
                Some("use the server's DNS host name, e.g. name = \"ns-hq\"".into()),
            );
        }
        let key = name.to_ascii_lowercase();
        if let Some(first) = seen.get(&key) {
            let (l, _) = line_col(c.source, *first);
            c.at(
                r.name.span().start,
                format!("server `{name}` is listed twice (first on line {l})"),
                Some(
                    "host names are case-insensitive and must be unique: remove or rename one"
                        .into(),
                ),
            );
        } else {
            seen.insert(key, r.name.span().start);
        }
        let role_name = r.role.as_ref().map(|r| r.get_ref().clone());
        let role = r.role.as_ref().and_then(|rr| {
            let text = rr.get_ref();
            if let Some(role) = Role::parse(text) {
                return Some(role);
            }
            if text.trim().is_empty() {
                c.at(
                    rr.span().start,
                    format!("server `{name}` has an empty role"),
                    Some("remove `role`, or give one such as role = \"web\"".into()),
                );
                return None;
            }
            // Any role is a team's own, but in an estate with a driver (an ITMS estate) a
            // near miss of an ITMS role is a typo that would silently drop the server
            // from the ITMS runbooks.
            if driver.is_some() {
                if let Some(s) = did_you_mean(text, ["ns", "sql", "site", "gateway"]) {
                    c.at(
                        rr.span().start,
                        format!("server `{name}` has unknown role `{}`", text.escape_debug()),
                        Some(format!("did you mean `{s}`?")),
                    );
                }
            }
            None
        });
        let reach = reach_keys(&name, r, c);
        let transport = match r.transport.as_ref().map(|t| t.get_ref().as_str()) {
            None | Some("local") => TransportKind::Local,
            Some("ssh") => TransportKind::Ssh,
            Some("psremoting") => TransportKind::PsRemoting,
            Some(other) => {
                let help = match did_you_mean(other, ["local", "ssh", "psremoting"]) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "transport is one of \"local\", \"ssh\", \"psremoting\"".into(),
                };
                let span = r.transport.as_ref().map(|t| t.span().start).unwrap_or(0);
                c.at(
                    span,
                    format!(
                        "server `{name}` has unknown transport `{}`",
                        other.escape_debug()
                    ),
                    Some(help),
                );
                TransportKind::Local
            }
        };
        if role != Some(Role::Ns) {
            let what = Server {
                role,
                role_name: role_name.clone(),
                ..Server::new(&name, Role::Site)
            }
            .describe_role();
            if let Some(p) = &r.parent {
                c.at(
                    p.span().start,
                    format!(
                        "server `{name}` is {what} but has a `parent`; only NS servers form the hierarchy"
                    ),
                    Some("remove `parent`, or set role = \"ns\"".into()),
                );
            }
            if let Some(s) = &r.sql {
                c.at(
                    s.span().start,
                    format!("server `{name}` is {what} but has `sql`; only an NS has a CMDB"),
                    Some("remove `sql`, or set role = \"ns\"".into()),
                );
            }
        } else if driver == Some(Driver::Windows) && r.sql.is_none() {
            c.at(
                r.name.span().start,
                format!("NS `{name}` has no `sql`; the windows driver needs the SQL instance of its CMDB"),
                Some("add sql = \"SQLHOST\" or sql = \"SQLHOST\\\\INSTANCE\" (the host must be in this inventory)".into()),
            );
        }
        if r.endpoints.is_some_and(|n| n > MAX_ENDPOINTS) {
            c.at(
                r.name.span().start,
                format!("server `{name}` has more than {MAX_ENDPOINTS} endpoints"),
                Some("give the number of managed endpoints (the sizing tables stop at 20,000 per NS)".into()),
            );
        }
        let lab = match &r.lab {
            None => LabFacts::default(),
            Some(l) => lab_facts(&name, l, c),
        };
        servers.push(Server {
            name,
            role,
            role_name,
            groups: reach.groups,
            vars: reach.vars,
            address: reach.address,
            port: reach.port,
            user: reach.user,
            identity_file: reach.identity_file,
            known_hosts: reach.known_hosts,
            parent: r.parent.as_ref().map(|p| p.get_ref().clone()),
            sql: r.sql.as_ref().map(|p| p.get_ref().clone()),
            endpoints: r.endpoints,
            transport,
            lab,
            line: line_col(c.source, rs.span().start).0,
        });
    }

    // Second pass: references between servers.
    let ns_names: Vec<&str> = servers
        .iter()
        .filter(|s| s.is_ns())
        .map(|s| s.name.as_str())
        .collect();
    let all_names: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
    let sql_names: Vec<&str> = servers
        .iter()
        .filter(|s| s.role == Some(Role::Sql))
        .map(|s| s.name.as_str())
        .collect();
    for (s, rs) in servers.iter().zip(raw) {
        let r = rs.get_ref();
        if !s.is_ns() {
            continue;
        }
        if let Some(p) = &r.parent {
            let pn = p.get_ref();
            if pn == &s.name {
                c.at(
                    p.span().start,
                    format!("NS `{}` names itself as its parent", s.name),
                    Some("remove `parent` from the top of the hierarchy".into()),
                );
            } else if !ns_names.contains(&pn.as_str()) {
                let what = match servers.iter().find(|o| &o.name == pn) {
                    Some(o) => format!("which is {}, not an NS", o.describe_role()),
                    None => "which is not an NS in this inventory".into(),
                };
                let help = match did_you_mean(pn, ns_names.iter().copied()) {
                    Some(sug) => format!("did you mean `{sug}`?"),
                    None if ns_names.len() > 1 => format!(
                        "parent must be one of: {}",
                        ns_names
                            .iter()
                            .filter(|n| **n != s.name)
                            .map(|n| format!("`{n}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None => {
                        "add the parent NS as a [[server]] with role = \"ns\", or remove `parent`"
                            .into()
                    }
                };
                c.at(
                    p.span().start,
                    format!(
                        "server `{}` names parent `{}`, {what}",
                        s.name,
                        pn.escape_debug()
                    ),
                    Some(help),
                );
            }
        }
        if let Some(q) = &r.sql {
            check_sql_ref(s, q, &all_names, &sql_names, driver, c);
        }
    }

    // Cycles: follow parents; a walk that meets itself is a cycle. Report each once.
    let parent_of: HashMap<&str, &str> = servers
        .iter()
        .filter(|s| s.is_ns())
        .filter_map(|s| {
            let p = s.parent.as_deref()?;
            (p != s.name && ns_names.contains(&p)).then_some((s.name.as_str(), p))
        })
        .collect();
    let mut reported: HashSet<Vec<&str>> = HashSet::new();
    for (s, rs) in servers.iter().zip(raw) {
        let mut path: Vec<&str> = vec![s.name.as_str()];
        let mut cur = s.name.as_str();
        while let Some(&p) = parent_of.get(cur) {
            if let Some(pos) = path.iter().position(|n| *n == p) {
                let mut cycle: Vec<&str> = path[pos..].to_vec();
                let min = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, n)| **n)
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                cycle.rotate_left(min);
                if cycle[0] == s.name && reported.insert(cycle.clone()) {
                    let mut shown = cycle.clone();
                    shown.push(cycle[0]);
                    let span = rs
                        .get_ref()
                        .parent
                        .as_ref()
                        .map(|p| p.span().start)
                        .unwrap_or(0);
                    c.at(
                        span,
                        format!("the NS hierarchy has a cycle: {}", shown.join(" → ")),
                        Some(
                            "a hierarchy is a tree: remove `parent` from the server at its top"
                                .into(),
                        ),
                    );
                }
                break;
            }
            path.push(p);
            cur = p;
        }
    }
    servers
}

/// The keys of a server a runbook reads or a transport connects with, checked.
struct ReachKeys {
    groups: Vec<String>,
    vars: BTreeMap<String, serde_json::Value>,
    address: Option<String>,
    port: Option<u16>,
    user: Option<String>,
    identity_file: Option<String>,
    known_hosts: Option<String>,
}

fn reach_keys(name: &str, r: &RawServer, c: &mut Collector<'_>) -> ReachKeys {
    let mut groups = Vec::new();
    for g in r.groups.iter().flat_map(|g| g.get_ref()) {
        let text = g.get_ref();
        // Group names are used as words in runbooks and step names: keep them plain.
        let plain = !text.is_empty()
            && text
                .chars()
                .all(|ch| ch.is_alphanumeric() || matches!(ch, '-' | '_' | '.'));
        if !plain {
            c.at(
                g.span().start,
                format!("server `{name}` has group `{}`: group names are letters, digits, '-', '_' and '.'", text.escape_debug()),
                Some("for example: groups = [\"web\", \"eu-west\"]".into()),
            );
        } else if !groups.contains(text) {
            groups.push(text.clone());
        }
    }
    let mut vars = BTreeMap::new();
    if let Some(v) = &r.vars {
        for (k, val) in v.get_ref() {
            match plain_var(val) {
                Some(j) => {
                    vars.insert(k.clone(), j);
                }
                None => c.at(
                    v.span().start,
                    format!(
                        "server `{name}`: vars.{} is a {}; vars hold strings, numbers, booleans and arrays of them",
                        k.escape_debug(),
                        val.type_str()
                    ),
                    Some("write the value as a string, or split the table into several vars".into()),
                ),
            }
        }
    }
    let address = r.address.as_ref().and_then(|a| {
        let text = a.get_ref();
        if text.parse::<std::net::IpAddr>().is_ok() || check_host_name(text).is_ok() {
            Some(text.clone())
        } else {
            c.at(
                a.span().start,
                format!("server `{name}` has address `{}`, which is neither a host name nor an IP address", text.escape_debug()),
                Some("for example: address = \"10.0.0.5\" or address = \"web1.example.com\"".into()),
            );
            None
        }
    });
    let port = r
        .port
        .as_ref()
        .and_then(|p| match u16::try_from(*p.get_ref()) {
            Ok(n) if n > 0 => Some(n),
            _ => {
                c.at(
                    p.span().start,
                    format!(
                        "server `{name}` has port {}; a port is 1 to 65535",
                        p.get_ref()
                    ),
                    Some("for example: port = 22".into()),
                );
                None
            }
        });
    // ssh reads a leading '-' as an option: a user or file name must never start with one.
    let word = |key: &str, v: &Option<Spanned<String>>, c: &mut Collector<'_>| {
        let v = v.as_ref()?;
        let text = v.get_ref();
        if text.is_empty()
            || text.starts_with('-')
            || text.chars().any(char::is_control)
            || (key == "user" && text.contains(char::is_whitespace))
        {
            c.at(
                v.span().start,
                format!(
                    "server `{name}` has {key} `{}`, which cannot be passed to ssh safely",
                    text.escape_debug()
                ),
                Some(format!(
                    "{key} must be non-empty, not start with '-', and have no control characters{}",
                    if key == "user" { " or spaces" } else { "" }
                )),
            );
            return None;
        }
        Some(text.clone())
    };
    ReachKeys {
        groups,
        vars,
        address,
        port,
        user: word("user", &r.user, c),
        identity_file: word("identity_file", &r.identity_file, c),
        known_hosts: word("known_hosts", &r.known_hosts, c),
    }
}

/// A `vars` value as JSON when it is one a runbook can use (no tables, no dates).
fn plain_var(v: &toml::Value) -> Option<serde_json::Value> {
    Some(match v {
        toml::Value::String(s) => serde_json::Value::from(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Value::from(*f),
        toml::Value::Boolean(b) => serde_json::Value::from(*b),
        toml::Value::Array(a) => {
            serde_json::Value::Array(a.iter().map(plain_var).collect::<Option<Vec<_>>>()?)
        }
        toml::Value::Datetime(_) | toml::Value::Table(_) => return None,
    })
}

fn check_sql_ref(
    s: &Server,
    q: &Spanned<String>,
    all_names: &[&str],
    sql_names: &[&str],
    driver: Option<Driver>,
    c: &mut Collector<'_>,
) {
    let text = q.get_ref();
    let at = q.span().start;
    // `sql` names the SQL Server instance (docs/estate-ops.md): the lab simulates it from
    // the NS's own facts, so it need not be a [[server]]. The windows driver runs the CMDB
    // T-SQL on that host through its transport, so there it must be one.
    let unlisted_ok = driver != Some(Driver::Windows);
    let windows_reason = "the windows driver runs the CMDB's T-SQL on the SQL host through that server's transport, so the host must be a [[server]] of the inventory";
    if let Some((host, inst)) = text.split_once('\\') {
        if let Err(m) = check_instance_name(inst) {
            c.at(
                at,
                format!("NS `{}`: {m}", s.name),
                Some("write sql = \"HOST\\\\INSTANCE\" with the instance's real name".into()),
            );
        }
        if !all_names.contains(&host) && !unlisted_ok {
            let help = match did_you_mean(host, all_names.iter().copied()) {
                Some(sug) => format!("did you mean `{sug}\\{inst}`?"),
                None => format!("add `{host}` as a [[server]] (role = \"sql\")"),
            };
            c.at(
                at,
                format!(
                    "NS `{}` names SQL instance `{}`, whose host `{}` is not in this inventory: {windows_reason}",
                    s.name,
                    text.escape_debug(),
                    host.escape_debug()
                ),
                Some(help),
            );
        }
        return;
    }
    // A plain name: a sql server, or the NS itself (SQL on the same box).
    if sql_names.contains(&text.as_str()) || text == &s.name {
        return;
    }
    let what = if all_names.contains(&text.as_str()) {
        "which is not a sql server".to_string()
    } else if unlisted_ok {
        return;
    } else {
        format!("which is not in this inventory: {windows_reason}")
    };
    let help = match did_you_mean(text, sql_names.iter().copied()) {
        Some(sug) => format!("did you mean `{sug}`?"),
        None => {
            "add the SQL host as a [[server]] with role = \"sql\", or use HOST\\INSTANCE".into()
        }
    };
    c.at(
        at,
        format!(
            "NS `{}` names sql `{}`, {what}",
            s.name,
            text.escape_debug()
        ),
        Some(help),
    );
}

fn lab_facts(server: &str, l: &Spanned<RawLab>, c: &mut Collector<'_>) -> LabFacts {
    let r = l.get_ref();
    if let Some(v) = &r.version {
        if let Err(m) = check_version_name(v.get_ref()) {
            c.at(
                v.span().start,
                format!("server `{server}`: {m}"),
                Some("for example: version = \"7.5 SP1 HF5\"".into()),
            );
        }
    }
    if let Some(f) = &r.fail {
        let ops: Vec<&str> = crate::estate::ops::OPS.iter().map(|o| o.name).collect();
        for op in f.get_ref().keys() {
            if !ops.contains(&op.as_str()) {
                let help = match did_you_mean(op, ops.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => "keys of `fail` are operation names, see docs/estate-ops.md".into(),
                };
                c.at(
                    f.span().start,
                    format!(
                        "server `{server}`: `fail` names unknown operation `{}`",
                        op.escape_debug()
                    ),
                    Some(help),
                );
            }
        }
    }
    for (key, v) in [
        ("disk_free_gb", r.disk_free_gb),
        ("disk_size_gb", r.disk_size_gb),
    ] {
        if let Some(x) = v {
            if !x.is_finite() || x < 0.0 {
                c.at(
                    l.span().start,
                    format!("server `{server}`: {key} must be a non-negative number"),
                    None,
                );
            }
        }
    }
    LabFacts {
        version: r.version.as_ref().map(|v| v.get_ref().clone()),
        collation: r.collation.clone(),
        db_collation: r.db_collation.clone(),
        disk_free_gb: r.disk_free_gb,
        disk_size_gb: r.disk_size_gb,
        cores: r.cores,
        ram_gb: r.ram_gb,
        is_virtual: r.is_virtual,
        os: r.os.clone(),
        iis: r.iis.clone(),
        dotnet_release: r.dotnet_release,
        java: r.java.clone(),
        sql_version: r.sql_version.clone(),
        replication_enabled: r.replication_enabled,
        replication_job_running: r.replication_job_running,
        dcom_enabled: r.dcom_enabled,
        app_pools_separated: r.app_pools_separated.clone(),
        log_errors: r.log_errors,
        log_warnings: r.log_warnings,
        products: r.products.clone(),
        lac_enabled: r.lac_enabled,
        test_group: r.test_group.clone(),
        fail: r.fail.as_ref().map(|f| f.get_ref().clone()),
    }
}

/// Turn a toml/serde error into a diagnostic, adding "did you mean" for unknown keys.
fn toml_diagnostic(source: &str, e: &toml::de::Error) -> InventoryDiagnostic {
    let (line, col) = e
        .span()
        .map(|s| line_col(source, s.start))
        .unwrap_or((0, 0));
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
    InventoryDiagnostic {
        line,
        col,
        message,
        help,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(src: &str) -> Result<Inventory, InventoryError> {
        Inventory::parse(src, "inv.toml")
    }

    fn err(src: &str) -> String {
        match parse(src) {
            Ok(_) => panic!("expected an error for:\n{src}"),
            Err(e) => e.to_string(),
        }
    }

    const GOOD: &str = r#"
name = "contoso"
driver = "lab"
lab_delay = "5ms"

[[server]]
name = "ns-hq"
role = "ns"
sql = "sql-hq"
endpoints = 12000

[[server]]
name = "ns-emea"
role = "ns"
parent = "ns-hq"
sql = "sql-emea\\CMDB"

[[server]]
name = "ns-emea-branch"
role = "ns"
parent = "ns-emea"
sql = "ns-emea-branch"

[[server]]
name = "sql-hq"
role = "sql"

[[server]]
name = "sql-emea"
role = "sql"

[server.lab]
collation = "Latin1_General_CI_AS"
fail = { backup_cmdb = 2 }
"#;

    #[test]
    fn parses_a_hierarchy_and_orders_it_bottom_up() {
        let inv = parse(GOOD).unwrap();
        assert_eq!(inv.name, "contoso");
        assert_eq!(inv.driver, Some(Driver::Lab));
        assert_eq!(inv.lab_delay, Duration::from_millis(5));
        assert_eq!(inv.bottom_up(), vec!["ns-emea-branch", "ns-emea", "ns-hq"]);
        assert_eq!(inv.depth("ns-emea-branch"), 2);
        assert_eq!(
            inv.parent("ns-emea").map(|s| s.name.as_str()),
            Some("ns-hq")
        );
        assert_eq!(inv.children("ns-hq").len(), 1);
        assert_eq!(inv.descendants("ns-hq").len(), 2);
        assert_eq!(
            inv.server("ns-emea").and_then(|s| s.sql_host()),
            Some("sql-emea")
        );
        let sql = inv.server("sql-emea").unwrap();
        assert_eq!(sql.lab.fail.as_ref().unwrap()["backup_cmdb"], 2);
        let j = inv.to_json();
        assert_eq!(j["servers"][1]["parent"], "ns-hq");
        assert_eq!(j["driver"], "lab");
    }

    #[test]
    fn unknown_parent_names_line_and_suggests_the_close_ns() {
        let e = err(r#"name = "x"
driver = "lab"
[[server]]
name = "ns-hq"
role = "ns"
[[server]]
name = "ns-emea"
role = "ns"
parent = "ns-hq2"
"#);
        assert!(
            e.starts_with("inv.toml:9:10: server `ns-emea` names parent `ns-hq2`, which is not an NS in this inventory"),
            "{e}"
        );
        assert!(e.contains("help: did you mean `ns-hq`?"), "{e}");
    }

    #[test]
    fn parent_on_a_non_ns_and_parent_that_is_not_an_ns() {
        let e = err(r#"name = "x"
driver = "lab"
[[server]]
name = "sql-hq"
role = "sql"
parent = "ns-hq"
[[server]]
name = "ns-hq"
role = "ns"
parent = "sql-hq"
"#);
        assert!(
            e.contains("inv.toml:6:10: server `sql-hq` is a sql server but has a `parent`"),
            "{e}"
        );
        assert!(e.contains("inv.toml:10:10: server `ns-hq` names parent `sql-hq`, which is a sql server, not an NS"), "{e}");
    }

    #[test]
    fn a_cycle_is_named_in_order() {
        let e = err(r#"name = "x"
driver = "lab"
[[server]]
name = "ns-a"
role = "ns"
parent = "ns-c"
[[server]]
name = "ns-b"
role = "ns"
parent = "ns-a"
[[server]]
name = "ns-c"
role = "ns"
parent = "ns-b"
"#);
        assert!(
            e.contains("inv.toml:6:10: the NS hierarchy has a cycle: ns-a → ns-c → ns-b → ns-a"),
            "{e}"
        );
        assert_eq!(e.matches("cycle").count(), 1, "reported once: {e}");
    }

    #[test]
    fn all_semantic_errors_are_reported_at_once() {
        let e = parse(
            r#"name = "x"
driver = "labb"
lab_delay = "fast"
[[server]]
name = "-bad"
role = "nss"
transport = "winrm"
[[server]]
name = "ns-1"
role = "ns"
sql = "sqlx"
[[server]]
name = "NS-1"
role = "ns"
sql = "ns-1\\bad-instance-name-too-long"
"#,
        )
        .unwrap_err();
        let text = e.to_string();
        // `sqlx` is not listed: fine for a lab (it simulates the instance), so not among them.
        assert_eq!(e.diagnostics.len(), 7, "{text}");
        assert!(
            text.contains("inv.toml:2:10: unknown driver `labb`\n  help: did you mean `lab`?"),
            "{text}"
        );
        assert!(text.contains("inv.toml:3:13: lab_delay:"), "{text}");
        assert!(
            text.contains("inv.toml:5:8: host name `-bad` starts with '-'"),
            "{text}"
        );
        assert!(
            text.contains(
                "inv.toml:6:8: server `-bad` has unknown role `nss`\n  help: did you mean `ns`?"
            ),
            "{text}"
        );
        assert!(
            text.contains("inv.toml:7:13: server `-bad` has unknown transport `winrm`"),
            "{text}"
        );
        assert!(!text.contains("sqlx"), "{text}");
        assert!(
            text.contains("inv.toml:13:8: server `NS-1` is listed twice (first on line 9)"),
            "{text}"
        );
        assert!(text.contains("inv.toml:15:7: NS `NS-1`: SQL instance name `bad-instance-name-too-long` must be 1 to 16"), "{text}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_a_suggestion() {
        let e = err(r#"name = "x"
driver = "lab"
[[server]]
name = "ns-hq"
role = "ns"
endpoint = 5
"#);
        assert!(
            e.starts_with("inv.toml:6:1: unknown field `endpoint`"),
            "{e}"
        );
        assert!(e.contains("help: did you mean `endpoints`?"), "{e}");
        let e = err(r#"name = "x"
driver = "lab"
[[server]]
name = "ns-hq"
role = "ns"
[server.lab]
replication = true
"#);
        assert!(
            e.starts_with("inv.toml:7:1: unknown field `replication`"),
            "{e}"
        );
        assert!(e.contains("did you mean `replication_enabled`?"), "{e}");
    }

    #[test]
    fn syntax_errors_carry_a_position() {
        let e = err("name = \"x\"\ndriver = \n");
        assert!(e.starts_with("inv.toml:2:"), "{e}");
    }

    #[test]
    fn host_and_instance_names_are_checked() {
        for bad in [
            "",
            "-x",
            "a b",
            "ns;rm",
            "ns'x",
            "ns`x",
            "ns$(x)",
            "ns\nx",
            &"a".repeat(254),
        ] {
            assert!(check_host_name(bad).is_err(), "{bad:?}");
        }
        for good in ["ns-hq", "NS01.corp.example.com", "a"] {
            assert!(check_host_name(good).is_ok(), "{good:?}");
        }
        assert!(check_instance_name("SQLEXPRESS").is_ok());
        assert!(check_instance_name("MY_INST$1").is_ok());
        assert!(check_instance_name("x-y").is_err());
        assert!(check_instance_name("ABCDEFGHIJKLMNOPQ").is_err());
    }

    #[test]
    fn estate_names_cannot_escape_the_lab_directory() {
        let e =
            err("name = \"../etc\"\ndriver = \"lab\"\n[[server]]\nname = \"a\"\nrole = \"ns\"\n");
        assert!(
            e.contains("inv.toml:1:8: estate name `../etc` cannot start with '.'"),
            "{e}"
        );
    }

    #[test]
    fn windows_ns_needs_sql_and_fail_keys_must_be_operations() {
        let e = err(r#"name = "x"
driver = "windows"
[[server]]
name = "ns-hq"
role = "ns"
[server.lab]
fail = { backup_cmbd = 1 }
"#);
        assert!(e.contains("NS `ns-hq` has no `sql`"), "{e}");
        assert!(
            e.contains(
                "`fail` names unknown operation `backup_cmbd`\n  help: did you mean `backup_cmdb`?"
            ),
            "{e}"
        );
    }

    #[test]
    fn lab_refused_an_ns_whose_sql_instance_is_not_a_server_of_the_inventory() {
        let lab = r#"name = "x"
driver = "lab"
[[server]]
name = "ns-hq"
role = "ns"
sql = "sql-a"
[[server]]
name = "ns-b"
role = "ns"
parent = "ns-hq"
sql = "sqlcl01\\CMDB"
"#;
        let inv = parse(lab).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            inv.server("ns-hq").and_then(|s| s.sql.as_deref()),
            Some("sql-a")
        );
        // The windows driver needs the host to reach it, and says so.
        let e = err(&lab.replace("driver = \"lab\"", "driver = \"windows\""));
        assert!(
            e.contains("NS `ns-hq` names sql `sql-a`, which is not in this inventory: the windows driver runs the CMDB's T-SQL on the SQL host"),
            "{e}"
        );
        assert!(
            e.contains("whose host `sqlcl01` is not in this inventory: the windows driver"),
            "{e}"
        );
    }

    #[test]
    fn sql_must_be_a_sql_server_or_the_ns_itself() {
        let e = err(r#"name = "x"
driver = "lab"
[[server]]
name = "ns-hq"
role = "ns"
sql = "site-1"
[[server]]
name = "site-1"
role = "site"
"#);
        assert!(
            e.contains("NS `ns-hq` names sql `site-1`, which is not a sql server"),
            "{e}"
        );
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let e = Inventory::load(Path::new("/nonexistent/inv.toml")).unwrap_err();
        assert!(e
            .to_string()
            .starts_with("/nonexistent/inv.toml: cannot read the inventory"));
    }

    #[test]
    fn team_inventory_without_driver_loads_with_roles_groups_vars_and_reach_keys() {
        let inv = parse(
            r#"name = "team"
[[server]]
name = "web1"
role = "web"
groups = ["web", "eu", "web"]
vars = { weight = 3, ratio = 0.5, canary = true, tags = ["a", "b"], owner = "ops" }
address = "192.0.2.7"
port = 2222
user = "deploy"
identity_file = "~/.ssh/id_team"
known_hosts = "keys/known_hosts"
transport = "ssh"
[[server]]
name = "db1"
"#,
        )
        .unwrap();
        assert_eq!(inv.driver, None);
        let w = &inv.servers[0];
        assert_eq!((w.role, w.role_name.as_deref()), (None, Some("web")));
        assert_eq!(w.groups, ["web", "eu"]);
        assert_eq!(w.vars["weight"], 3);
        assert_eq!(w.vars["tags"], serde_json::json!(["a", "b"]));
        assert_eq!(
            (w.address(), w.port, w.user.as_deref()),
            ("192.0.2.7", Some(2222), Some("deploy"))
        );
        assert_eq!(w.transport, TransportKind::Ssh);
        let d = &inv.servers[1];
        assert_eq!((d.role_name.as_deref(), d.address()), (None, "db1"));
        let j = inv.to_json();
        assert_eq!(j["driver"], serde_json::Value::Null);
        assert_eq!(j["servers"][0]["vars"]["owner"], "ops");
        assert_eq!(j["servers"][1]["address"], "db1");
    }

    #[test]
    fn team_keys_are_validated_with_positions() {
        let e = err(r#"name = "team"
[[server]]
name = "web1"
groups = ["web", "no spaces"]
vars = { nested = { a = 1 } }
address = "not a host!"
port = 70000
user = "-oProxyCommand=x"
"#);
        assert!(
            e.contains("inv.toml:4:18: server `web1` has group `no spaces`"),
            "{e}"
        );
        assert!(
            e.contains("inv.toml:5:8: server `web1`: vars.nested is a table"),
            "{e}"
        );
        assert!(
            e.contains("inv.toml:6:11: server `web1` has address `not a host!`"),
            "{e}"
        );
        assert!(
            e.contains("inv.toml:7:8: server `web1` has port 70000; a port is 1 to 65535"),
            "{e}"
        );
        assert!(e.contains("inv.toml:8:8: server `web1` has user `-oProxyCommand=x`, which cannot be passed to ssh safely"), "{e}");
        let e = err("name = \"team\"\n[[server]]\nname = \"web1\"\ngroup = [\"web\"]\n");
        assert!(e.starts_with("inv.toml:4:1: unknown field `group`"), "{e}");
        assert!(e.contains("help: did you mean `groups`?"), "{e}");
    }

    #[test]
    fn custom_roles_in_an_itms_estate_keep_itms_validation() {
        // A team's own role is fine next to ITMS servers; a near miss of an ITMS role
        // is still a typo there, and `parent` still belongs to an NS only.
        let e = err(r#"name = "x"
driver = "lab"
[[server]]
name = "ns-hq"
role = "ns"
[[server]]
name = "mon1"
role = "monitoring"
parent = "ns-hq"
[[server]]
name = "s1"
role = "sitee"
"#);
        assert!(
            e.contains("inv.toml:9:10: server `mon1` is a `monitoring` server but has a `parent`"),
            "{e}"
        );
        assert!(
            e.contains(
                "inv.toml:12:8: server `s1` has unknown role `sitee`\n  help: did you mean `site`?"
            ),
            "{e}"
        );
        // Without a driver the same words are a team's roles.
        let inv = parse("name = \"x\"\n[[server]]\nname = \"s1\"\nrole = \"sitee\"\n").unwrap();
        assert_eq!(inv.servers[0].role_name.as_deref(), Some("sitee"));
    }
}
