//! The lab estate's state file `STATE_DIR/lab/NAME.json`: its shape, how it is seeded
//! from the inventory's `[server.lab]` facts, and how it is read and written safely.
//!
//! Parallel steps (threads) and separate waymark processes share the file, so every
//! read-modify-write holds a file lock on `NAME.lock` (the data file itself is replaced
//! by rename, so it cannot carry the lock), and writes are atomic: temp file, fsync,
//! rename, directory fsync. A crash leaves either the old state or the new one.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::redact::Redactor;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::estate::inventory::{Inventory, Server};
use crate::estate::itms;
use crate::estate::EstateError;

/// Collation of a healthy default server.
pub const DEFAULT_COLLATION: &str = "SQL_Latin1_General_CP1_CI_AS";

/// Products of a healthy default NS.
const DEFAULT_PRODUCTS: &[&str] = &[
    "Symantec Management Platform",
    "Inventory Solution",
    "Software Management Solution",
    "Patch Management Solution",
];

/// Test group (filter) the phased agent upgrade targets, unless the inventory names one.
pub const DEFAULT_TEST_GROUP: &str = "Upgrade Test Group";

/// Lab policies: (name, enabled at seed). One is disabled so that "re-enable exactly
/// what was enabled" is observable, and one is not an agent policy at all.
const SEED_POLICIES: &[(&str, bool)] = &[
    ("Symantec Management Agent for Windows - Install", true),
    ("Symantec Management Agent for Windows - Upgrade", true),
    ("Symantec Management Agent for Site Servers - Upgrade", true),
    ("Inventory Plug-in for Windows - Install", true),
    ("Inventory Plug-in for Windows - Upgrade", true),
    ("Software Management Plug-in for Windows - Upgrade", true),
    ("Package Service Plug-in for Site Servers - Upgrade", true),
    ("Task Service Plug-in for Site Servers - Upgrade", false),
    ("Windows System Assessment Scan", true),
];

/// A policy on a simulated NS.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Policy {
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
    pub fn to_json(&self) -> Value {
        let (kind, action, audience) = itms::classify_policy(&self.name);
        serde_json::json!({
            "id": self.id, "name": self.name, "enabled": self.enabled,
            "kind": kind, "action": action, "audience": audience,
        })
    }
}

/// Agents managed by a simulated NS, by group.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Fleet {
    /// `clients`, `site_servers`, or the test group's name.
    pub group: String,
    /// Computers.
    pub count: u64,
    /// Symantec Management Agent release.
    pub agent: String,
    /// Plug-in release.
    pub plugin: String,
}

/// Index fragmentation waiting for `defragment_cmdb`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct Fragmentation {
    /// Indexes at 5–30 %.
    pub reorganize: u32,
    /// Indexes above 30 %.
    pub rebuild: u32,
}

/// One simulated server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerState {
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
    pub fn version(&self) -> &str {
        self.version.as_deref().unwrap_or("")
    }

    /// The CMDB collation (the server collation when none is recorded).
    pub fn db_collation(&self) -> &str {
        self.db_collation.as_deref().unwrap_or(&self.collation)
    }
}

/// A CMDB backup the lab knows about.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Backup {
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
pub struct DataStore {
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
pub struct LabState {
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
    /// A fresh state seeded from the inventory.
    pub fn seed(inv: &Inventory) -> LabState {
        let mut st = LabState {
            estate: inv.name.clone(),
            servers: BTreeMap::new(),
            events: Vec::new(),
            backups: Vec::new(),
            kms_backups: Vec::new(),
            data_stores: Vec::new(),
            seeded_from: inv.lab_fingerprint(),
        };
        st.add_missing(inv);
        st
    }

    /// Seed servers the inventory gained since the state was written; keep the rest.
    pub fn add_missing(&mut self, inv: &Inventory) {
        for (i, s) in inv.servers.iter().enumerate() {
            if !self.servers.contains_key(&s.name) {
                self.servers.insert(s.name.clone(), seed_server(inv, s, i));
            }
        }
    }

    /// A warning when the inventory's lab facts changed since this state was seeded
    /// (the lab keeps the simulated state; edits take effect after `lab reset`).
    pub fn stale_warning(&self, inv: &Inventory, reset: &str) -> Option<String> {
        (self.seeded_from != inv.lab_fingerprint()).then(|| {
            format!(
                "the inventory of lab estate `{}` changed since its state was seeded; the lab keeps the simulated state \
                 (run `{reset}` to re-seed from the edited inventory)",
                self.estate
            )
        })
    }

    /// The next event sequence number.
    pub fn next_seq(&self) -> u64 {
        self.events
            .last()
            .and_then(|e| e.get("seq"))
            .and_then(Value::as_u64)
            .unwrap_or(0)
            + 1
    }
}

fn seed_server(inv: &Inventory, s: &Server, index: usize) -> ServerState {
    let f = &s.lab;
    let sql_facts = s
        .sql_host()
        .and_then(|h| inv.server(h))
        .filter(|h| h.name != s.name)
        .map(|h| &h.lab);
    let collation = f
        .collation
        .clone()
        .or_else(|| sql_facts.and_then(|l| l.collation.clone()))
        .unwrap_or_else(|| DEFAULT_COLLATION.to_string());
    let is_ns = s.is_ns();
    let in_hierarchy = is_ns && (s.parent.is_some() || !inv.children(&s.name).is_empty());
    let version = is_ns.then(|| {
        f.version
            .clone()
            .unwrap_or_else(|| itms::REQUIRED_SOURCE.to_string())
    });
    let release = version.as_deref().map(itms::release).unwrap_or_default();
    let test_group = f
        .test_group
        .clone()
        .unwrap_or_else(|| DEFAULT_TEST_GROUP.to_string());
    let endpoints = s.endpoints.unwrap_or(100);
    ServerState {
        role: s.role_name.clone().unwrap_or_default(),
        version,
        replication_enabled: f.replication_enabled.unwrap_or(in_hierarchy),
        replication_job_running: f.replication_job_running.unwrap_or(false),
        hierarchy_member: in_hierarchy,
        db_collation: is_ns.then(|| f.db_collation.clone().unwrap_or_else(|| collation.clone())),
        collation,
        cmdb_present: is_ns,
        disk_free_gb: f.disk_free_gb.unwrap_or(120.0),
        disk_size_gb: f.disk_size_gb.unwrap_or(400.0),
        cores: f.cores.unwrap_or(8),
        ram_gb: f.ram_gb.unwrap_or(16),
        r#virtual: f.is_virtual.unwrap_or(false),
        os: f
            .os
            .clone()
            .unwrap_or_else(|| "Microsoft Windows Server 2012 R2 Standard".into()),
        iis: f.iis.clone().or_else(|| Some("8.5".into())),
        dotnet_release: f.dotnet_release.or(Some(itms::DOTNET_451_RELEASE)),
        java: f.java.clone().or_else(|| Some("8.0.450.14".into())),
        sql_version: f
            .sql_version
            .clone()
            .or_else(|| sql_facts.and_then(|l| l.sql_version.clone()))
            .or_else(|| Some("12.0.4100.1".into())),
        dcom_enabled: f.dcom_enabled.unwrap_or(true),
        app_pools: {
            let mut pools = vec![("DefaultAppPool".to_string(), "Started".to_string())];
            for p in f.app_pools_separated.iter().flatten() {
                pools.push((p.clone(), "Started".into()));
            }
            pools
        },
        app_pools_separated: f.app_pools_separated.clone().unwrap_or_default(),
        log_errors: f.log_errors.unwrap_or(0),
        log_warnings: f.log_warnings.unwrap_or(0),
        products: if is_ns {
            f.products
                .clone()
                .unwrap_or_else(|| DEFAULT_PRODUCTS.iter().map(|p| p.to_string()).collect())
        } else {
            Vec::new()
        },
        lac_enabled: f.lac_enabled.unwrap_or(false),
        policies: if is_ns {
            SEED_POLICIES
                .iter()
                .enumerate()
                .map(|(n, (name, enabled))| Policy {
                    id: lab_guid(index, n + 1),
                    name: name.to_string(),
                    enabled: *enabled,
                    group: None,
                    source: None,
                })
                .collect()
        } else {
            Vec::new()
        },
        agents: if is_ns {
            let test = endpoints.min(20);
            let site = (endpoints / 2000).max(1);
            let clients = endpoints.saturating_sub(test);
            [
                ("site_servers", site),
                (test_group.as_str(), test),
                ("clients", clients),
            ]
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(g, n)| Fleet {
                group: g.to_string(),
                count: *n,
                agent: release.clone(),
                plugin: release.clone(),
            })
            .collect()
        } else {
            Vec::new()
        },
        test_group: is_ns.then_some(test_group),
        settings: if is_ns {
            default_settings()
        } else {
            Map::new()
        },
        fragmented: if is_ns {
            Fragmentation {
                reorganize: 14,
                rebuild: 3,
            }
        } else {
            Fragmentation::default()
        },
        scheduled_tasks: if is_ns {
            vec![
                "NS.Package Refresh.{3c1d6a0e-5b7f-4c1e-9a55-2f0d8e7b6a41}".into(),
                "NS.Delta Resource Membership Update.{8e2b4f10-77a3-4d2c-b1e9-0c5a6d3f9b22}".into(),
            ]
        } else {
            Vec::new()
        },
        fail: f.fail.clone().unwrap_or_default(),
        imported_from: None,
        cmdb_restored_from: None,
    }
}

/// A GUID-shaped, deterministic id for lab items (server index, item number).
pub fn lab_guid(server: usize, item: usize) -> String {
    format!("1ab00000-0000-4000-8000-{:06x}{:06x}", server, item)
}

fn default_settings() -> Map<String, Value> {
    let v = serde_json::json!({
        "task_server": { "tickle_interval": "1m", "remove_completed_tasks_after_days": 30 },
        "agent_communication": { "https": false, "port": 80 },
        "policy_refresh": { "interval": "1h" },
        "membership_update": { "delta_interval": "5m", "complete_schedule": "daily 04:00" },
    });
    v.as_object().cloned().unwrap_or_default()
}

/// What one operation changed, appended to `NAME.log` so an operation costs what it
/// changed, not the size of the estate: rewriting all of `NAME.json` after every
/// operation made a preflight of 1,000 site servers quadratic (33 s; 2,000: 136 s).
/// Only the operation's own server changes (`me_mut`); the lists of backups and data
/// stores are small (one entry per NS operation) and are carried whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delta {
    /// The event recorded (it carries the operation's `seq`).
    pub event: Value,
    /// The operation's server and its state afterwards.
    pub server: Option<(String, ServerState)>,
    /// CMDB backups afterwards.
    pub backups: Vec<Backup>,
    /// KMS key backups afterwards.
    pub kms_backups: Vec<(String, String)>,
    /// Data stores afterwards.
    pub data_stores: Vec<DataStore>,
}

impl LabState {
    fn apply(&mut self, d: Delta) {
        if let Some((name, state)) = d.server {
            self.servers.insert(name, state);
        }
        self.events.push(d.event);
        self.backups = d.backups;
        self.kms_backups = d.kms_backups;
        self.data_stores = d.data_stores;
    }
}

/// What identifies the files' content without reading them (another process wrote
/// when it changed): lengths and modification times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp(Option<(u64, std::time::SystemTime)>, u64);

/// Where an estate's lab state lives, and the only code that reads or writes it:
/// `NAME.json` holds the state as of its last compaction, `NAME.log` one [`Delta`] per
/// operation since (a line whose event `seq` the base already has is skipped, so a crash
/// between writing the base and removing the log changes nothing).
#[derive(Debug, Clone)]
pub struct StateFile {
    /// `STATE_DIR/lab/NAME.json`.
    pub path: PathBuf,
    lock_path: PathBuf,
    tmp_path: PathBuf,
    log_path: PathBuf,
    /// The exact `waymark lab reset` command for this estate, for error messages.
    reset: String,
}

impl StateFile {
    /// The state file of `inv`'s estate under `state_dir`.
    pub fn new(state_dir: &Path, inv: &Inventory) -> StateFile {
        let name = inv.name.as_str();
        let reset = crate::hint::lab_reset(&inv.origin, state_dir);
        let dir = state_dir.join("lab");
        StateFile {
            path: dir.join(format!("{name}.json")),
            lock_path: dir.join(format!("{name}.lock")),
            tmp_path: dir.join(format!("{name}.json.tmp")),
            log_path: dir.join(format!("{name}.log")),
            reset,
        }
    }

    /// The exact `waymark lab reset` command for this estate (with the flags it needs).
    pub fn reset_command(&self) -> &str {
        &self.reset
    }

    /// The files' [`Stamp`] now.
    pub fn stamp(&self) -> Stamp {
        let base = fs::metadata(&self.path)
            .ok()
            .and_then(|m| Some((m.len(), m.modified().ok()?)));
        let log = fs::metadata(&self.log_path).map_or(0, |m| m.len());
        Stamp(base, log)
    }

    /// Append one operation's [`Delta`] durably, secrets scrubbed.
    pub fn append(&self, d: &Delta, redactor: &Redactor) -> Result<(), EstateError> {
        let encode = |e: serde_json::Error| self.err(format!("cannot encode: {e}"));
        let mut v = serde_json::to_value(d).map_err(encode)?;
        if !redactor.is_empty() {
            redactor.scrub_json(&mut v);
        }
        let mut line = serde_json::to_vec(&v).map_err(encode)?;
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| self.err(format!("cannot open {}: {e}", self.log_path.display())))?;
        f.write_all(&line)
            .and_then(|_| f.sync_data())
            .map_err(|e| self.err(format!("cannot write {}: {e}", self.log_path.display())))
    }

    /// Write `st` as the new base and drop the log it includes.
    pub fn compact(&self, st: &LabState, redactor: &Redactor) -> Result<(), EstateError> {
        self.save(st, redactor)?;
        match fs::remove_file(&self.log_path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.err(format!("cannot remove {}: {e}", self.log_path.display()))),
        }
    }

    /// Replay the log over `st`; returns how many lines it held.
    fn replay(&self, st: &mut LabState) -> Result<usize, EstateError> {
        let text = match fs::read_to_string(&self.log_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(self.err(format!("cannot read {}: {e}", self.log_path.display()))),
        };
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        for (i, line) in lines.iter().enumerate() {
            let d: Delta = match serde_json::from_str(line) {
                Ok(d) => d,
                // A torn last line: the operation's append did not finish.
                Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
                Err(e) => {
                    return Err(self.err(format!(
                        "{} line {} damaged ({e}); run `{}` to start the rehearsal over",
                        self.log_path.display(),
                        i + 1,
                        self.reset
                    )))
                }
            };
            let seq = d.event.get("seq").and_then(Value::as_u64).unwrap_or(0);
            if seq >= st.next_seq() {
                st.apply(d);
            }
        }
        Ok(lines.len())
    }

    fn err(&self, message: String) -> EstateError {
        EstateError::State {
            path: self.path.display().to_string(),
            message,
        }
    }

    /// Run `f` holding the cross-process lock of this estate.
    pub fn locked<T>(&self, f: impl FnOnce() -> Result<T, EstateError>) -> Result<T, EstateError> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| self.err(format!("cannot create {}: {e}", dir.display())))?;
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock_path)
            .map_err(|e| self.err(format!("cannot open lock file: {e}")))?;
        lock.lock()
            .map_err(|e| self.err(format!("cannot lock: {e}")))?;
        let out = f();
        // Closing the file releases the lock as well; unlocking first makes the order explicit.
        let _ = lock.unlock();
        out
    }

    /// The stored state (with servers new to the inventory seeded), or a fresh seed.
    pub fn load(&self, inv: &Inventory) -> Result<LabState, EstateError> {
        self.load_counting(inv).map(|(st, _)| st)
    }

    /// [`StateFile::load`], and how many log lines it replayed.
    pub fn load_counting(&self, inv: &Inventory) -> Result<(LabState, usize), EstateError> {
        let mut st = match fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                self.err(format!(
                    "damaged ({e}); run `{}` to start the rehearsal over",
                    self.reset
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LabState::seed(inv),
            Err(e) => return Err(self.err(format!("cannot read: {e}"))),
        };
        let lines = self.replay(&mut st)?;
        st.add_missing(inv);
        Ok((st, lines))
    }

    /// Replace the state atomically and durably, with the run's secrets scrubbed from
    /// every string (operation arguments, settings a server was given): the file
    /// outlives the run and is shown by `lab show`.
    pub fn save(&self, st: &LabState, redactor: &Redactor) -> Result<(), EstateError> {
        let encode = |e: serde_json::Error| self.err(format!("cannot encode: {e}"));
        let mut bytes = if redactor.is_empty() {
            serde_json::to_vec_pretty(st).map_err(encode)?
        } else {
            let mut v = serde_json::to_value(st).map_err(encode)?;
            redactor.scrub_json(&mut v);
            serde_json::to_vec_pretty(&v).map_err(encode)?
        };
        bytes.push(b'\n');
        let mut f = File::create(&self.tmp_path)
            .map_err(|e| self.err(format!("cannot write {}: {e}", self.tmp_path.display())))?;
        f.write_all(&bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| self.err(format!("cannot write {}: {e}", self.tmp_path.display())))?;
        drop(f);
        fs::rename(&self.tmp_path, &self.path)
            .map_err(|e| self.err(format!("cannot replace: {e}")))?;
        // The rename is only durable once the directory entry is.
        if let Some(dir) = self.path.parent() {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Delete the state (and its lock file); true when there was a state to delete.
    pub fn remove(&self) -> Result<bool, EstateError> {
        self.locked(|| {
            let _ = fs::remove_file(&self.tmp_path);
            let had_log = fs::remove_file(&self.log_path).is_ok();
            match fs::remove_file(&self.path) {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(had_log),
                Err(e) => Err(self.err(format!("cannot delete: {e}"))),
            }
        })
    }
}
