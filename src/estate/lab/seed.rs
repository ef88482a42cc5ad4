//! Building the lab state from an inventory: each server's simulated facts are its
//! `[server.lab]` values or the defaults of a healthy 7.5 SP1 HF5 estate, so an
//! inventory names only what differs from healthy.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::state::{Fleet, Fragmentation, LabState, Policy, ServerState, SiteAgent};
use crate::estate::inventory::{Inventory, Role, Server};
use crate::estate::itms;

/// Collation of a healthy default server.
pub(super) const DEFAULT_COLLATION: &str = "SQL_Latin1_General_CP1_CI_AS";

/// Products of a healthy default NS.
const DEFAULT_PRODUCTS: &[&str] = &[
    "Symantec Management Platform",
    "Inventory Solution",
    "Software Management Solution",
    "Patch Management Solution",
];

/// Test group (filter) the phased agent upgrade targets, unless the inventory names one.
pub(super) const DEFAULT_TEST_GROUP: &str = "Upgrade Test Group";

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

impl LabState {
    /// A fresh state seeded from the inventory.
    pub(crate) fn seed(inv: &Inventory) -> LabState {
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
    pub(crate) fn add_missing(&mut self, inv: &Inventory) {
        for (i, s) in inv.servers.iter().enumerate() {
            if !self.servers.contains_key(&s.name) {
                self.servers.insert(s.name.clone(), seed_server(inv, s, i));
            }
        }
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
        site_servers: inv
            .servers
            .iter()
            .filter(|o| is_ns && o.role == Some(Role::Site) && o.ns.as_deref() == Some(&s.name))
            .map(|o| {
                let at = SiteAgent {
                    agent: release.clone(),
                    plugin: release.clone(),
                };
                (o.name.clone(), at)
            })
            .collect(),
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
pub(super) fn lab_guid(server: usize, item: usize) -> String {
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
