//! The `lab` driver: a simulated ITMS estate for rehearsals.
//!
//! State lives in `STATE_DIR/lab/NAME.json` ([`state_file`]), seeded from the
//! inventory. Every operation, refused or not, is appended to the state's `events` in
//! order, so a test (or an operator with `waymark lab show`) can see exactly what a
//! runbook did, and that nothing mutating happened before a blocker.
//!
//! The lab enforces ITMS.md's rules with messages that name the server and the fix:
//! exact source version, replication off on the server and its neighbours, no mixed
//! mode (children before parents), collation parity, disk space, no running replication
//! job, product parity for off-box migrations, KMS keys for a CMDB restored elsewhere.

mod state_file;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::inventory::{Driver, Inventory};
use super::itms;
use super::ops::{Args, OpInfo};
use super::{prepare, Estate, EstateError, OpContext, Problem};
use crate::cancel::CancelReason;
use state_file::{Backup, DataStore, Fleet, LabState, Policy, ServerState, StateFile};

/// The simulated estate.
pub struct LabEstate {
    inv: Inventory,
    file: StateFile,
    // Serialises threads of this process (the file lock serialises processes), and keeps
    // the state this process last wrote, valid while the files' stamp is unchanged: an
    // operation then costs what it changed, not a parse of the whole estate.
    mutex: Mutex<Option<Cached>>,
}

struct Cached {
    st: LabState,
    stamp: state_file::Stamp,
    /// Lines in the log beyond the base.
    log_lines: usize,
}

impl LabEstate {
    /// The lab estate of `inv`, with its state under `state_dir/lab/`.
    pub fn new(inv: Inventory, state_dir: &Path) -> LabEstate {
        let file = StateFile::new(state_dir, &inv);
        LabEstate {
            inv,
            file,
            mutex: Mutex::new(None),
        }
    }

    /// The state file's path.
    pub fn state_path(&self) -> &Path {
        &self.file.path
    }

    /// The current state (the seed, if no operation has run yet). Writes nothing.
    pub fn state(&self) -> Result<LabState, EstateError> {
        let _g = self.mutex.lock().unwrap_or_else(|e| e.into_inner());
        self.file.locked(|| self.file.load(&self.inv))
    }

    /// The `lab show --json` document.
    pub fn show_json(&self) -> Result<Value, EstateError> {
        let st = self.state()?;
        let mut v = serde_json::to_value(&st).map_err(|e| EstateError::State {
            path: self.file.path.display().to_string(),
            message: format!("cannot encode: {e}"),
        })?;
        if let Some(w) = st.stale_warning(&self.inv, self.file.reset_command()) {
            v["warning"] = json!(w);
        }
        Ok(v)
    }

    /// Forget the simulated state; the next operation starts from the seed again.
    pub fn reset(&self) -> Result<bool, EstateError> {
        let _g = self.mutex.lock().unwrap_or_else(|e| e.into_inner());
        self.file.remove()
    }

    fn simulate_delay(&self, cx: &OpContext) -> Result<(), CancelReason> {
        // An absurd delay that overflows the clock simply lasts until cancelled.
        let end = Instant::now().checked_add(self.inv.lab_delay);
        loop {
            if let Some(r) = cx.cancel.reason() {
                return Err(r);
            }
            let now = Instant::now();
            let left = match end {
                Some(end) if now >= end => return Ok(()),
                Some(end) => end - now,
                None => Duration::from_millis(20),
            };
            std::thread::sleep(left.min(Duration::from_millis(20)));
        }
    }

    /// Load, apply, record the event, save — all under both locks.
    fn transact(
        &self,
        info: &'static OpInfo,
        server: &str,
        args: &Args,
        cancelled: Option<CancelReason>,
        cx: &OpContext,
    ) -> Result<Value, EstateError> {
        let log = cx.log;
        let mut cache = self.mutex.lock().unwrap_or_else(|e| e.into_inner());
        self.file.locked(|| {
            let (mut st, mut log_lines) = match cache.take() {
                Some(c) if c.stamp == self.file.stamp() => (c.st, c.log_lines),
                _ => {
                    let (st, lines) = self.file.load_counting(&self.inv)?;
                    if let Some(w) = st.stale_warning(&self.inv, self.file.reset_command()) {
                        (log)(&format!("lab: warning: {w}"));
                    }
                    (st, lines)
                }
            };
            let seq = st.next_seq();
            let mut details = Map::new();
            let outcome = match cancelled {
                Some(r) => Err(EstateError::Cancelled(r)),
                None => {
                    let mut c = Ctx {
                        inv: &self.inv,
                        st: &mut st,
                        server,
                        args,
                        seq,
                        details: &mut details,
                    };
                    apply(info, &mut c)
                }
            };
            let mut ev = Map::new();
            ev.insert("seq".into(), json!(seq));
            ev.insert("op".into(), json!(info.name));
            ev.insert("server".into(), json!(server));
            for (k, v) in args.raw() {
                if !v.is_null() {
                    ev.insert(k.clone(), v.clone());
                }
            }
            ev.extend(details);
            ev.insert("ok".into(), json!(outcome.is_ok()));
            if let Err(e) = &outcome {
                ev.insert("error".into(), json!(e.to_string()));
                ev.insert("error_kind".into(), json!(e.kind()));
            }
            let ev = Value::Object(ev);
            st.events.push(ev.clone());
            // The first operation writes the base; later, compact once the log is half as
            // long as the history: each compaction then pays for as many appends, so the
            // total stays linear.
            if !self.file.path.exists() || log_lines + 1 > st.events.len().max(64) / 2 {
                self.file.compact(&st, cx.redactor)?;
                log_lines = 0;
            } else {
                let delta = state_file::Delta {
                    event: ev,
                    server: st
                        .servers
                        .get(server)
                        .map(|s| (server.to_string(), s.clone())),
                    backups: st.backups.clone(),
                    kms_backups: st.kms_backups.clone(),
                    data_stores: st.data_stores.clone(),
                };
                self.file.append(&delta, cx.redactor)?;
                log_lines += 1;
            }
            *cache = Some(Cached {
                stamp: self.file.stamp(),
                st,
                log_lines,
            });
            outcome
        })
    }
}

impl Estate for LabEstate {
    fn driver(&self) -> &'static str {
        "lab"
    }

    fn inventory(&self) -> &Inventory {
        &self.inv
    }

    fn call(
        &self,
        op: &str,
        server: &str,
        args: &Map<String, Value>,
        cx: &OpContext,
    ) -> Result<Value, EstateError> {
        let (info, srv, a) = prepare(&self.inv, op, server, args)?;
        (cx.log)(&format!("lab: {} on {} (rehearsal)", info.name, srv.name));
        let cancelled = self.simulate_delay(cx).err();
        let out = self.transact(info, &srv.name, &a, cancelled, cx);
        match &out {
            Ok(_) => (cx.log)(&format!("lab: {} on {}: ok", info.name, srv.name)),
            Err(e) => (cx.log)(&format!("lab: {e}")),
        }
        out
    }

    fn describe(
        &self,
        op: &str,
        server: &str,
        args: &Map<String, Value>,
    ) -> Result<Vec<String>, EstateError> {
        let (info, srv, _) = prepare(&self.inv, op, server, args)?;
        let shown: Map<String, Value> = args
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let args_text = if shown.is_empty() {
            String::new()
        } else {
            format!(" {}", Value::Object(shown))
        };
        Ok(vec![format!(
            "lab (rehearsal): {} on {}{} — {}",
            info.name, srv.name, args_text, info.summary
        )])
    }
}

/// `waymark lab show --json` for the estate of `inventory` (the demo when `None`).
pub fn show(inventory: Option<&Path>, state_dir: &Path) -> Result<Value, EstateError> {
    lab_of(inventory, state_dir)?.show_json()
}

/// `waymark lab reset`: delete the state file; true when there was one.
pub fn reset(inventory: Option<&Path>, state_dir: &Path) -> Result<bool, EstateError> {
    lab_of(inventory, state_dir)?.reset()
}

/// The state file path `lab show`/`lab reset` act on.
pub fn state_path(inventory: Option<&Path>, state_dir: &Path) -> Result<PathBuf, EstateError> {
    Ok(lab_of(inventory, state_dir)?.file.path.clone())
}

fn lab_of(inventory: Option<&Path>, state_dir: &Path) -> Result<LabEstate, EstateError> {
    let inv = super::load_inventory(inventory)?;
    if inv.driver != Some(Driver::Lab) {
        return Err(EstateError::BadArgs {
            op: "lab".into(),
            message: format!(
                "estate `{}` uses driver \"{}\"; `waymark lab` works on lab estates only",
                inv.name,
                inv.driver.map_or("(none)", Driver::as_str)
            ),
        });
    }
    Ok(LabEstate::new(inv, state_dir))
}

/// Human rendering of a `lab show --json` document.
pub fn show_text(doc: &Value) -> String {
    let mut out = String::new();
    let estate = doc["estate"].as_str().unwrap_or("?");
    out.push_str(&format!("Lab estate `{estate}` (rehearsal)\n\n"));
    if let Some(w) = doc["warning"].as_str() {
        out.push_str(&format!("warning: {w}\n\n"));
    }
    out.push_str(&format!(
        "{:<18} {:<8} {:<13} {:<12} {:<10} {}\n",
        "SERVER", "ROLE", "VERSION", "REPLICATION", "LAC", "NOTES"
    ));
    if let Some(servers) = doc["servers"].as_object() {
        for (name, s) in servers {
            let role = s["role"].as_str().unwrap_or("");
            let version = s["version"].as_str().unwrap_or("-");
            let (repl, lac) = if role == "ns" {
                (
                    if s["replication_enabled"].as_bool() == Some(true) {
                        "on"
                    } else {
                        "off"
                    },
                    if s["lac_enabled"].as_bool() == Some(true) {
                        "on"
                    } else {
                        "off"
                    },
                )
            } else {
                ("-", "-")
            };
            let mut notes = Vec::new();
            if s["replication_job_running"].as_bool() == Some(true) {
                notes.push("replication job running".to_string());
            }
            if let Some(db) = s["db_collation"].as_str() {
                if Some(db) != s["collation"].as_str() {
                    notes.push(format!("CMDB collation {db}"));
                }
            }
            if let Some(f) = s["fail"].as_object() {
                for (op, n) in f {
                    if n.as_u64().unwrap_or(0) > 0 {
                        notes.push(format!("{op} fails {n}x"));
                    }
                }
            }
            if let Some(from) = s["imported_from"].as_str() {
                notes.push(format!("imported from {from}"));
            }
            out.push_str(&format!(
                "{name:<18} {role:<8} {version:<13} {repl:<12} {lac:<10} {}\n",
                notes.join("; ")
            ));
        }
    }
    let events = doc["events"].as_array().cloned().unwrap_or_default();
    out.push_str(&format!("\nEvents ({}):\n", events.len()));
    if events.is_empty() {
        out.push_str("  (none yet)\n");
    }
    for e in &events {
        let status = if e["ok"].as_bool() == Some(true) {
            "ok".to_string()
        } else {
            let first = e["error"]
                .as_str()
                .unwrap_or("failed")
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            format!("FAILED: {first}")
        };
        // Which way a replication switch went is the point of the event.
        let op = match (e["op"].as_str().unwrap_or(""), e["enabled"].as_bool()) {
            ("set_replication", Some(true)) => "set_replication (on)".to_string(),
            ("set_replication", Some(false)) => "set_replication (off)".to_string(),
            (op, _) => op.to_string(),
        };
        out.push_str(&format!(
            "  {:>4}  {:<26} {:<18} {}\n",
            e["seq"].as_u64().unwrap_or(0),
            op,
            e["server"].as_str().unwrap_or(""),
            status
        ));
    }
    out
}

struct Ctx<'a, 'b> {
    inv: &'a Inventory,
    st: &'a mut LabState,
    server: &'a str,
    args: &'a Args<'b>,
    seq: u64,
    details: &'a mut Map<String, Value>,
}

impl Ctx<'_, '_> {
    fn me(&self) -> Result<&ServerState, EstateError> {
        self.get(self.server)
    }

    fn get(&self, name: &str) -> Result<&ServerState, EstateError> {
        self.st.servers.get(name).ok_or_else(|| missing(name))
    }

    fn me_mut(&mut self) -> Result<&mut ServerState, EstateError> {
        let name = self.server;
        self.st.servers.get_mut(name).ok_or_else(|| missing(name))
    }

    fn refused(&self, op: &str, problems: Vec<Problem>) -> EstateError {
        EstateError::Refused {
            op: op.to_string(),
            server: self.server.to_string(),
            problems,
        }
    }

    fn script_error(&self, op: &str, message: String) -> EstateError {
        EstateError::Script {
            op: op.to_string(),
            server: self.server.to_string(),
            message,
        }
    }

    fn note(&mut self, key: &str, v: Value) {
        self.details.insert(key.to_string(), v);
    }

    /// Names of the parent and direct children of this NS, labelled for messages.
    fn neighbours(&self) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        if let Some(p) = self.inv.parent(self.server) {
            out.push((p.name.clone(), "its parent"));
        }
        for c in self.inv.children(self.server) {
            out.push((c.name.clone(), "its child"));
        }
        out
    }
}

fn missing(name: &str) -> EstateError {
    EstateError::State {
        path: String::new(),
        message: format!("server `{name}` is missing from the lab state; run `waymark lab reset`"),
    }
}

fn apply(info: &'static OpInfo, c: &mut Ctx) -> Result<Value, EstateError> {
    // Injected transient faults come first: the call "did not reach" the server.
    let op = info.name;
    let server = c.server.to_string();
    let me = c.me_mut()?;
    if let Some(n) = me.fail.get_mut(op) {
        if *n > 0 {
            *n -= 1;
            let left = *n;
            return Err(EstateError::Transient {
                op: op.to_string(),
                server,
                message: format!("injected lab fault ({left} more to come)"),
            });
        }
    }
    match op {
        "ns_version" => ns_version(c),
        "verify_version" => verify_version(c),
        "collation" => collation(c),
        "disk_free" => disk_free(c),
        "hardware" => hardware(c),
        "software" => software(c),
        "replication_status" => replication_status(c),
        "installed_products" => installed_products(c),
        "dcom" => dcom(c),
        "app_pools" => app_pools(c),
        "smp_log_errors" => smp_log_errors(c),
        "agent_versions" => agent_versions(c),
        "agent_registration_status" => agent_registration_status(c),
        "list_policies" => list_policies(c),
        "get_settings" => get_settings(c),
        "backup_ns" => backup_ns(c),
        "backup_kms" => backup_kms(c),
        "backup_cmdb" => backup_cmdb(c),
        "run_scheduled_task" => run_scheduled_task(c),
        "disable_policies" => disable_policies(c),
        "enable_policies" => enable_policies(c),
        "clone_policies" => clone_policies(c),
        "set_replication" => set_replication(c),
        "ns_upgrade" => ns_upgrade(c),
        "defragment_cmdb" => defragment_cmdb(c),
        "restore_cmdb" => restore_cmdb(c),
        "migration_export" => migration_export(c),
        "migration_import" => migration_import(c),
        "apply_settings" => apply_settings(c),
        "set_lac" => set_lac(c),
        other => Err(EstateError::UnknownOp {
            op: other.to_string(),
            suggestion: None,
        }),
    }
}

// ---- read-only probes ----

fn ns_version(c: &mut Ctx) -> Result<Value, EstateError> {
    let v = c.me()?.version().to_string();
    Ok(json!({"server": c.server, "release": itms::release(&v), "version": v, "build": null}))
}

fn verify_version(c: &mut Ctx) -> Result<Value, EstateError> {
    let expected = c.args.str("expected").unwrap_or_default();
    let v = c.me()?.version().to_string();
    // A bare release ("7.6") matches any version of it; a name must match exactly.
    let ok = if expected.contains(' ') {
        v == expected
    } else {
        itms::release(&v) == itms::release(&expected)
    };
    if !ok {
        let fix = if expected == itms::REQUIRED_SOURCE {
            format!(
                "bring `{}` to {} with SIM first",
                c.server,
                itms::REQUIRED_SOURCE
            )
        } else {
            format!(
                "the upgrade of `{}` did not complete: check SIM and its logs, then run the upgrade again",
                c.server
            )
        };
        return Err(c.refused(
            "verify_version",
            vec![Problem::new(
                format!("`{}` runs {v}, expected {expected}", c.server),
                fix,
            )],
        ));
    }
    Ok(
        json!({"server": c.server, "expected": expected, "release": itms::release(&v), "version": v, "build": null}),
    )
}

fn collation(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    let sql = c.inv.server(c.server).and_then(|s| s.sql.clone());
    Ok(json!({
        "server": c.server, "sql": sql,
        "server_collation": me.collation, "db_collation": me.db_collation(),
        "matches": me.collation == me.db_collation(),
    }))
}

fn disk_free(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    let drive = c.args.str("drive").unwrap_or_else(|| "C:".into());
    Ok(
        json!({"server": c.server, "drive": drive, "free_gb": me.disk_free_gb, "size_gb": me.disk_size_gb}),
    )
}

fn hardware(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    let model = if me.r#virtual {
        "Virtual Machine"
    } else {
        "Lab Server"
    };
    Ok(json!({
        "server": c.server, "cores": me.cores, "logical_processors": me.cores.saturating_mul(2),
        "ram_gb": me.ram_gb, "virtual": me.r#virtual, "model": model,
    }))
}

fn software(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    let is_ns = me.role == "ns";
    Ok(json!({
        "server": c.server, "os": me.os, "iis": me.iis,
        "dotnet_release": me.dotnet_release,
        "dotnet_451": me.dotnet_release.is_some_and(|r| r >= itms::DOTNET_451_RELEASE),
        "java": me.java,
        // Only an NS names its SQL instance, so only there can the version be asked.
        "sql_version": if is_ns { me.sql_version.clone() } else { None },
    }))
}

fn replication_status(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    Ok(json!({
        "server": c.server, "hierarchy_member": me.hierarchy_member,
        "enabled": me.replication_enabled, "job_running": me.replication_job_running,
        "notes": [],
    }))
}

fn installed_products(c: &mut Ctx) -> Result<Value, EstateError> {
    let mut v = itms::classify_products(&c.me()?.products);
    v["server"] = json!(c.server);
    v["notes"] = json!([]);
    Ok(v)
}

fn dcom(c: &mut Ctx) -> Result<Value, EstateError> {
    let on = c.me()?.dcom_enabled;
    Ok(json!({"server": c.server, "enabled": on, "value": if on { "Y" } else { "N" }}))
}

fn app_pools(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    let pools: Vec<Value> = me
        .app_pools
        .iter()
        .map(|(n, s)| json!({"name": n, "state": s}))
        .collect();
    Ok(
        json!({"server": c.server, "pools": pools, "separated": me.app_pools_separated, "notes": []}),
    )
}

fn smp_log_errors(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    let samples: Vec<String> = (0..me.log_errors.min(3))
        .map(|i| format!("Error: simulated SMP log error {} on {}", i + 1, c.server))
        .collect();
    Ok(json!({
        "server": c.server, "files": 4, "errors": me.log_errors,
        "warnings": me.log_warnings, "samples": samples, "notes": [],
    }))
}

fn agent_versions(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    let group = c.args.given_str("group");
    let target = c.args.given_str("target");
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for f in me
        .agents
        .iter()
        .filter(|f| group.as_deref().is_none_or(|g| g == f.group))
    {
        *counts
            .entry(("Symantec Management Agent".into(), f.agent.clone()))
            .or_default() += f.count;
        *counts
            .entry(("Inventory Plug-in".into(), f.plugin.clone()))
            .or_default() += f.count;
    }
    let rows: Vec<(String, String, u64)> =
        counts.into_iter().map(|((a, v), n)| (a, v, n)).collect();
    Ok(agent_rows_result(c.server, rows, target.as_deref()))
}

/// The `agent_versions` result from `(agent, version, count)` rows; shared with windows.
pub(crate) fn agent_rows_result(
    server: &str,
    rows: Vec<(String, String, u64)>,
    target: Option<&str>,
) -> Value {
    let mut total = 0u64;
    let mut below = 0u64;
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|(agent, version, count)| {
            total = total.saturating_add(count);
            let at =
                target.map(|t| itms::compare_versions(&version, t) != std::cmp::Ordering::Less);
            if at == Some(false) {
                below = below.saturating_add(count);
            }
            json!({"agent": agent, "version": version, "count": count, "at_target": at})
        })
        .collect();
    json!({"server": server, "rows": rows, "total": total, "below_target": below})
}

fn agent_registration_status(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    let rel = itms::release(me.version());
    let total: u64 = me
        .agents
        .iter()
        .fold(0u64, |t, f| t.saturating_add(f.count));
    let registered: u64 = me
        .agents
        .iter()
        .filter(|f| {
            itms::release(&f.agent) == rel
                || (me.lac_enabled && rel == itms::TARGET && itms::is_75(&f.agent))
        })
        .fold(0u64, |t, f| t.saturating_add(f.count));
    Ok(json!({
        "server": c.server, "total": total, "registered": registered,
        "unregistered": total - registered, "lac_enabled": me.lac_enabled,
    }))
}

fn selected_policies(c: &Ctx, me: &ServerState) -> Vec<Policy> {
    let patterns = c.args.patterns();
    let audience = c.args.str("audience").unwrap_or_else(|| "all".into());
    me.policies
        .iter()
        .filter(|p| p.group.is_none())
        .filter(|p| patterns.iter().any(|pat| itms::sql_like(&p.name, pat)))
        .filter(|p| audience == "all" || itms::classify_policy(&p.name).2 == audience)
        .cloned()
        .collect()
}

fn list_policies(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    let list: Vec<Value> = selected_policies(c, me)
        .iter()
        .map(Policy::to_json)
        .collect();
    Ok(json!({"server": c.server, "policies": list}))
}

fn get_settings(c: &mut Ctx) -> Result<Value, EstateError> {
    Ok(json!({"server": c.server, "settings": c.me()?.settings}))
}

// ---- mutating ----

fn backup_ns(c: &mut Ctx) -> Result<Value, EstateError> {
    let dest = c.args.str("dest").unwrap_or_default();
    let path = format!(
        "{}\\{}-ns-{:04}",
        dest.trim_end_matches('\\'),
        c.server,
        c.seq
    );
    c.note("path", json!(path));
    Ok(json!({"server": c.server, "path": path, "files": 1843}))
}

fn backup_kms(c: &mut Ctx) -> Result<Value, EstateError> {
    let dest = c.args.str("dest").unwrap_or_default();
    let file = format!("{}\\{}.kms", dest.trim_end_matches('\\'), c.server);
    c.st.kms_backups.push((c.server.to_string(), file.clone()));
    c.note("file", json!(file));
    Ok(json!({"server": c.server, "file": file}))
}

fn backup_file(c: &Ctx) -> String {
    c.args.given_str("file").unwrap_or_else(|| {
        let dest = c.args.str("dest").unwrap_or_default();
        format!(
            "{}\\Symantec_CMDB_{}.bak",
            dest.trim_end_matches('\\'),
            c.server
        )
    })
}

fn backup_cmdb(c: &mut Ctx) -> Result<Value, EstateError> {
    let file = backup_file(c);
    let database = c.args.str("database").unwrap_or_default();
    let verify = c.args.bool("verify");
    let me = c.me()?;
    let db_collation = me.db_collation().to_string();
    let endpoints = c
        .inv
        .server(c.server)
        .and_then(|s| s.endpoints)
        .unwrap_or(100);
    let sql = c.inv.server(c.server).and_then(|s| s.sql.clone());
    // WITH INIT overwrites: the newest backup to a file replaces the older record.
    c.st.backups.retain(|b| !b.file.eq_ignore_ascii_case(&file));
    c.st.backups.push(Backup {
        file: file.clone(),
        source: c.server.to_string(),
        db_collation,
        seq: c.seq,
    });
    c.note("file", json!(file));
    Ok(json!({
        "server": c.server, "sql": sql, "database": database, "file": file,
        "verified": verify, "bytes": endpoints.saturating_mul(6 * 1024 * 1024),
    }))
}

fn run_scheduled_task(c: &mut Ctx) -> Result<Value, EstateError> {
    let task = c.args.str("task").unwrap_or_default();
    let me = c.me()?;
    let found: Vec<&String> = me
        .scheduled_tasks
        .iter()
        .filter(|t| t.starts_with(task.as_str()))
        .collect();
    match found.as_slice() {
        [one] => {
            let name = one.to_string();
            c.note("task", json!(name));
            Ok(json!({"server": c.server, "task": name, "last_result": 0}))
        }
        [] => Err(c.script_error(
            "run_scheduled_task",
            format!("no scheduled task matches '{task}*' on {}", c.server),
        )),
        many => Err(c.script_error(
            "run_scheduled_task",
            format!(
                "several scheduled tasks match '{task}*': {}; give the exact name as `task`",
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

fn unknown_ids(c: &Ctx, me: &ServerState, ids: &[String]) -> Option<EstateError> {
    let unknown: Vec<&String> = ids
        .iter()
        .filter(|id| me.policies.iter().all(|p| !p.id.eq_ignore_ascii_case(id)))
        .collect();
    (!unknown.is_empty()).then(|| {
        c.script_error(
            c.args.op().name,
            format!(
                "no policy with id {} on {}",
                unknown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                c.server
            ),
        )
    })
}

fn disable_policies(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    let chosen: Vec<Policy> = match c.args.list("ids") {
        Some(ids) => {
            if let Some(e) = unknown_ids(c, me, &ids) {
                return Err(e);
            }
            me.policies
                .iter()
                .filter(|p| ids.iter().any(|id| p.id.eq_ignore_ascii_case(id)))
                .cloned()
                .collect()
        }
        None => selected_policies(c, me),
    };
    let (was_on, was_off): (Vec<Policy>, Vec<Policy>) = chosen.into_iter().partition(|p| p.enabled);
    let ids: Vec<String> = was_on.iter().map(|p| p.id.clone()).collect();
    for p in &mut c.me_mut()?.policies {
        if ids.contains(&p.id) {
            p.enabled = false;
        }
    }
    c.note("disabled", json!(ids));
    let disabled: Vec<Value> = was_on
        .iter()
        .map(|p| {
            let mut v = p.to_json();
            v["enabled"] = json!(false);
            v
        })
        .collect();
    let already: Vec<Value> = was_off.iter().map(Policy::to_json).collect();
    Ok(json!({"server": c.server, "disabled": disabled, "already_disabled": already}))
}

fn enable_policies(c: &mut Ctx) -> Result<Value, EstateError> {
    let ids = c.args.list("ids").unwrap_or_default();
    let me = c.me()?;
    if let Some(e) = unknown_ids(c, me, &ids) {
        return Err(e);
    }
    let me = c.me_mut()?;
    for p in &mut me.policies {
        if ids.iter().any(|id| p.id.eq_ignore_ascii_case(id)) {
            p.enabled = true;
        }
    }
    propagate_agents(me);
    Ok(json!({"server": c.server, "enabled": ids}))
}

fn clone_policies(c: &mut Ctx) -> Result<Value, EstateError> {
    let ids = c.args.list("ids").unwrap_or_default();
    let group = c.args.str("group").unwrap_or_default();
    let server_index = c
        .inv
        .servers
        .iter()
        .position(|s| s.name == c.server)
        .unwrap_or(0);
    let me = c.me()?;
    if let Some(e) = unknown_ids(c, me, &ids) {
        return Err(e);
    }
    let test_group = me.test_group.clone().unwrap_or_default();
    if group != test_group {
        return Err(c.script_error(
            "clone_policies",
            format!(
                "no filter named '{group}' on {} (the lab's test group is '{test_group}')",
                c.server
            ),
        ));
    }
    let sources: Vec<Policy> = me
        .policies
        .iter()
        .filter(|p| ids.iter().any(|id| p.id.eq_ignore_ascii_case(id)))
        .cloned()
        .collect();
    let first = me.policies.len() + 1;
    let me = c.me_mut()?;
    let mut clones = Vec::new();
    for (n, src) in (first..).zip(sources) {
        let clone = Policy {
            id: state_file::lab_guid(server_index, n),
            name: format!("{} (clone for {group})", src.name),
            enabled: true,
            group: Some(group.clone()),
            source: Some(src.id.clone()),
        };
        clones.push(json!({"id": clone.id, "source": src.id, "name": clone.name}));
        me.policies.push(clone);
    }
    propagate_agents(me);
    c.note("clones", json!(clones.len()));
    Ok(json!({"server": c.server, "group": group, "clones": clones}))
}

fn set_replication(c: &mut Ctx) -> Result<Value, EstateError> {
    let enabled = c.args.bool("enabled");
    let me = c.me()?;
    if enabled {
        let rel = itms::release(me.version());
        let mut problems = Vec::new();
        for (n, what) in c.neighbours() {
            let other = itms::release(c.get(&n)?.version());
            if other != rel {
                problems.push(Problem::new(
                    format!(
                        "`{}` runs {rel} but {what} `{n}` runs {other}; 7.5 and 7.6 servers cannot replicate (no mixed mode)",
                        c.server
                    ),
                    format!("finish upgrading the whole hierarchy to {}, then enable replication", itms::TARGET),
                ));
            }
        }
        if !problems.is_empty() {
            return Err(c.refused("set_replication", problems));
        }
    }
    let me = c.me_mut()?;
    let changed = me.replication_enabled != enabled;
    me.replication_enabled = enabled;
    c.note("changed", json!(changed));
    Ok(json!({"server": c.server, "enabled": enabled, "changed": changed}))
}

fn ns_upgrade(c: &mut Ctx) -> Result<Value, EstateError> {
    let to = c.args.str("to").unwrap_or_else(|| itms::TARGET.into());
    let me = c.me()?;
    let from = me.version().to_string();
    if itms::release(&from) == itms::release(&to) {
        c.note("changed", json!(false));
        return Ok(
            json!({"server": c.server, "from": from, "to": to, "changed": false, "uninstalled": []}),
        );
    }
    let s = c.server;
    let mut problems = Vec::new();
    if from != itms::REQUIRED_SOURCE {
        problems.push(Problem::new(
            format!(
                "`{s}` runs {from}; an upgrade to {to} requires exactly {}",
                itms::REQUIRED_SOURCE
            ),
            format!("install {} on `{s}` with SIM first", itms::REQUIRED_SOURCE),
        ));
    }
    let mut around = vec![(s.to_string(), "this server")];
    around.extend(c.neighbours());
    for (n, what) in &around {
        if c.get(n)?.replication_enabled {
            problems.push(Problem::new(
                format!("hierarchy replication is enabled on `{n}` ({what}); replication cannot be on during an upgrade"),
                format!("disable it first: set_replication(enabled: false) on `{n}`"),
            ));
        }
    }
    if me.replication_job_running {
        problems.push(Problem::new(
            format!("a hierarchy replication job is running on `{s}`"),
            "wait until the Current Replication Activity report is empty, then retry",
        ));
    }
    let behind: Vec<String> = c
        .inv
        .descendants(s)
        .iter()
        .filter(|d| {
            c.get(&d.name)
                .map(|x| itms::is_75(x.version()))
                .unwrap_or(false)
        })
        .map(|d| format!("`{}`", d.name))
        .collect();
    if !behind.is_empty() {
        problems.push(Problem::new(
            format!(
                "{} below `{s}` still run 7.5; 7.5 and 7.6 servers cannot talk to each other (no mixed mode)",
                behind.join(", ")
            ),
            "upgrade the hierarchy bottom-up: children before their parent",
        ));
    }
    if me.collation != me.db_collation() {
        problems.push(Problem::new(
            format!(
                "on `{s}` the CMDB collation {} differs from the SQL Server collation {}; SIM cannot continue",
                me.db_collation(),
                me.collation
            ),
            "make the CMDB and SQL Server collations equal before upgrading",
        ));
    }
    for (n, what) in c.neighbours() {
        let other = c.get(&n)?;
        if other.db_collation() != me.db_collation() {
            problems.push(Problem::new(
                format!(
                    "the CMDB collation of `{s}` ({}) differs from {what} `{n}` ({}); a hierarchy needs one collation",
                    me.db_collation(),
                    other.db_collation()
                ),
                "align the CMDB collations of every NS in the hierarchy",
            ));
        }
    }
    if me.disk_free_gb < itms::LAB_MIN_FREE_GB {
        problems.push(Problem::new(
            format!(
                "only {} GB free on the OS drive of `{s}`; logs and posted data need room",
                me.disk_free_gb
            ),
            format!("free at least {} GB on the OS drive", itms::LAB_MIN_FREE_GB),
        ));
    }
    if !problems.is_empty() {
        return Err(c.refused("ns_upgrade", problems));
    }
    let me = c.me_mut()?;
    let uninstalled = itms::matching(&me.products, itms::WITHOUT_76_RELEASE);
    me.products.retain(|p| !uninstalled.contains(p));
    me.version = Some(to.clone());
    // An upgrade installation turns LAC on by default (vendor guide).
    me.lac_enabled = true;
    propagate_agents(me);
    c.note("from", json!(from));
    c.note("changed", json!(true));
    Ok(
        json!({"server": c.server, "from": from, "to": to, "changed": true, "uninstalled": uninstalled}),
    )
}

fn defragment_cmdb(c: &mut Ctx) -> Result<Value, EstateError> {
    let database = c.args.str("database").unwrap_or_default();
    let sql = c.inv.server(c.server).and_then(|s| s.sql.clone());
    let me = c.me_mut()?;
    let done = me.fragmented;
    me.fragmented = Default::default();
    Ok(json!({
        "server": c.server, "sql": sql, "database": database,
        "reorganized": done.reorganize, "rebuilt": done.rebuild,
    }))
}

fn restore_cmdb(c: &mut Ctx) -> Result<Value, EstateError> {
    let file = c.args.str("file").unwrap_or_default();
    let database = c.args.str("database").unwrap_or_default();
    let replace = c.args.bool("replace");
    let sql = c.inv.server(c.server).and_then(|s| s.sql.clone());
    let Some(backup) =
        c.st.backups
            .iter()
            .find(|b| b.file.eq_ignore_ascii_case(&file))
            .cloned()
    else {
        return Err(c.script_error(
            "restore_cmdb",
            format!("cannot open backup device '{file}': the lab knows only files written by backup_cmdb"),
        ));
    };
    let mut problems = Vec::new();
    if backup.source != c.server && !c.st.kms_backups.iter().any(|(ns, _)| *ns == backup.source) {
        problems.push(Problem::new(
            format!(
                "the KMS keys of `{}` were never backed up; the CMDB restored on `{}` could not decrypt its secrets",
                backup.source, c.server
            ),
            format!("run backup_kms on `{}` first", backup.source),
        ));
    }
    if c.me()?.cmdb_present && !replace {
        problems.push(Problem::new(
            format!(
                "database {database} already exists on the SQL server of `{}`",
                c.server
            ),
            "pass replace: true to overwrite it (RESTORE ... WITH REPLACE)",
        ));
    }
    if !problems.is_empty() {
        return Err(c.refused("restore_cmdb", problems));
    }
    let me = c.me_mut()?;
    me.db_collation = Some(backup.db_collation.clone());
    me.cmdb_present = true;
    me.cmdb_restored_from = Some(backup.source.clone());
    c.note("source", json!(backup.source));
    Ok(json!({"server": c.server, "sql": sql, "database": database, "file": file}))
}

fn migration_export(c: &mut Ctx) -> Result<Value, EstateError> {
    let file = c.args.str("file").unwrap_or_default();
    let me = c.me()?;
    if me.version() != itms::REQUIRED_SOURCE {
        return Err(c.refused(
            "migration_export",
            vec![Problem::new(
                format!(
                    "`{}` runs {}; migrating to 7.6 requires exactly {}",
                    c.server,
                    me.version(),
                    itms::REQUIRED_SOURCE
                ),
                format!(
                    "install {} on `{}` with SIM first",
                    itms::REQUIRED_SOURCE,
                    c.server
                ),
            )],
        ));
    }
    let store = DataStore {
        file: file.clone(),
        source: c.server.to_string(),
        products: me.products.clone(),
        agents: me.agents.clone(),
    };
    let products = store.products.clone();
    c.st.data_stores
        .retain(|d| !d.file.eq_ignore_ascii_case(&file));
    c.st.data_stores.push(store);
    Ok(json!({"server": c.server, "file": file, "products": products}))
}

fn migration_import(c: &mut Ctx) -> Result<Value, EstateError> {
    let file = c.args.str("file").unwrap_or_default();
    let Some(store) =
        c.st.data_stores
            .iter()
            .find(|d| d.file.eq_ignore_ascii_case(&file))
            .cloned()
    else {
        return Err(c.script_error(
            "migration_import",
            format!("no data store at '{file}': export one with migration_export first"),
        ));
    };
    let me = c.me()?;
    let s = c.server;
    let mut problems = Vec::new();
    if itms::release(me.version()) != itms::TARGET {
        problems.push(Problem::new(
            format!(
                "`{s}` runs {}; the data store can only be imported into {}",
                me.version(),
                itms::TARGET
            ),
            format!(
                "install {} on `{s}` first (same host name and IP as the old server)",
                itms::TARGET
            ),
        ));
    }
    let gone: Vec<String> = itms::matching(&store.products, itms::WITHOUT_76_RELEASE)
        .into_iter()
        .chain(itms::matching(&store.products, itms::NO_LONGER_BUNDLED))
        .collect();
    let missing: Vec<&String> = store
        .products
        .iter()
        .filter(|p| !gone.contains(p) && !me.products.iter().any(|q| q.eq_ignore_ascii_case(p)))
        .collect();
    if !missing.is_empty() {
        problems.push(Problem::new(
            format!(
                "product parity: `{s}` lacks {} installed on `{}`; the 7.5 data cannot be migrated without them",
                missing.iter().map(|p| format!("\"{p}\"")).collect::<Vec<_>>().join(", "),
                store.source
            ),
            format!("install at least the same products on `{s}` with SIM, then import again"),
        ));
    }
    if me.collation != me.db_collation() {
        problems.push(Problem::new(
            format!(
                "on `{s}` the CMDB collation {} differs from the SQL Server collation {}",
                me.db_collation(),
                me.collation
            ),
            "make the collations equal before importing",
        ));
    }
    if !problems.is_empty() {
        return Err(c.refused("migration_import", problems));
    }
    let manual = itms::matching(&store.products, itms::MANUAL_MIGRATION);
    let imported: Vec<String> = store
        .products
        .iter()
        .filter(|p| !gone.contains(p))
        .cloned()
        .collect();
    let me = c.me_mut()?;
    me.imported_from = Some(store.source.clone());
    me.agents = store.agents.clone();
    propagate_agents(me);
    c.note("source", json!(store.source));
    Ok(json!({
        "server": s, "file": file, "source": store.source,
        "imported": imported, "manual_data": manual,
    }))
}

fn apply_settings(c: &mut Ctx) -> Result<Value, EstateError> {
    let settings = c.args.map("settings").cloned().unwrap_or_default();
    let keys: Vec<String> = settings.keys().cloned().collect();
    let me = c.me_mut()?;
    for (k, v) in settings {
        me.settings.insert(k, v);
    }
    Ok(json!({"server": c.server, "applied": keys}))
}

fn set_lac(c: &mut Ctx) -> Result<Value, EstateError> {
    let enabled = c.args.bool("enabled");
    let me = c.me()?;
    if itms::release(me.version()) != itms::TARGET {
        return Err(c.refused(
            "set_lac",
            vec![Problem::new(
                format!(
                    "`{}` runs {}; Legacy Agent Communication is a 7.6 setting",
                    c.server,
                    me.version()
                ),
                "upgrade or install 7.6 first",
            )],
        ));
    }
    let me = c.me_mut()?;
    let changed = me.lac_enabled != enabled;
    me.lac_enabled = enabled;
    propagate_agents(me);
    Ok(json!({"server": c.server, "enabled": enabled, "changed": changed}))
}

/// Agents follow enabled upgrade policies: a group takes the NS's release once an
/// upgrade policy for it is enabled (clones for the test group, originals for the rest).
/// 7.5 agents only hear a 7.6 NS through Legacy Agent Communication.
fn propagate_agents(s: &mut ServerState) {
    let rel = itms::release(s.version());
    let deaf = |agent: &str| rel == itms::TARGET && itms::is_75(agent) && !s.lac_enabled;
    let test = s.test_group.clone().unwrap_or_default();
    let on = |audience: &str, kind: &str, clones: bool| {
        s.policies.iter().any(|p| {
            let (k, a, aud) = itms::classify_policy(&p.name);
            p.enabled
                && k == kind
                && a == "upgrade"
                && if clones {
                    p.group.as_deref() == Some(test.as_str())
                } else {
                    p.group.is_none() && aud == audience
                }
        })
    };
    let flags: Vec<(bool, bool)> = s
        .agents
        .iter()
        .map(|f: &Fleet| {
            if deaf(&f.agent) {
                (false, false)
            } else if f.group == test {
                (on("", "agent", true), on("", "plugin", true))
            } else {
                (on(&f.group, "agent", false), on(&f.group, "plugin", false))
            }
        })
        .collect();
    for (f, (agent, plugin)) in s.agents.iter_mut().zip(flags) {
        if agent && itms::compare_versions(&f.agent, &rel).is_lt() {
            f.agent = rel.clone();
        }
        if plugin && itms::compare_versions(&f.plugin, &rel).is_lt() {
            f.plugin = rel.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::CancelToken;

    fn lab(src: &str, dir: &Path) -> LabEstate {
        LabEstate::new(Inventory::parse(src, "t.toml").unwrap(), dir)
    }

    fn demo(dir: &Path) -> LabEstate {
        LabEstate::new(super::super::demo::inventory(), dir)
    }

    fn call(e: &LabEstate, op: &str, server: &str, args: Value) -> Result<Value, EstateError> {
        let token = CancelToken::new();
        let log = |_: &str| {};
        let cx = OpContext {
            cancel: &token,
            log: &log,
            redactor: &crate::redact::Redactor::new(),
        };
        let map = args.as_object().cloned().unwrap_or_default();
        e.call(op, server, &map, &cx)
    }

    fn events(e: &LabEstate) -> Vec<Value> {
        e.state().unwrap().events
    }

    fn ops_of(e: &LabEstate) -> Vec<(String, String, bool)> {
        events(e)
            .iter()
            .map(|v| {
                (
                    v["op"].as_str().unwrap().to_string(),
                    v["server"].as_str().unwrap().to_string(),
                    v["ok"].as_bool().unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn upgrade_refused_while_replication_is_on_at_parent_or_child() {
        let dir = tempfile::tempdir().unwrap();
        let e = demo(dir.path());
        let err = call(&e, "ns_upgrade", "ns-emea-branch", json!({})).unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), "refused");
        assert!(
            text.contains("replication is enabled on `ns-emea-branch` (this server)"),
            "{text}"
        );
        assert!(
            text.contains("replication is enabled on `ns-emea` (its parent)"),
            "{text}"
        );
        assert!(
            text.contains("fix: disable it first: set_replication(enabled: false) on `ns-emea`"),
            "{text}"
        );

        // Off on the branch itself: still refused while its parent replicates.
        call(
            &e,
            "set_replication",
            "ns-emea-branch",
            json!({"enabled": false}),
        )
        .unwrap();
        let text = call(&e, "ns_upgrade", "ns-emea-branch", json!({}))
            .unwrap_err()
            .to_string();
        assert!(
            !text.contains("on `ns-emea-branch` (this server)"),
            "{text}"
        );
        assert!(text.contains("`ns-emea` (its parent)"), "{text}");

        // A parent is refused while a direct child still replicates.
        let fresh = tempfile::tempdir().unwrap();
        let f = demo(fresh.path());
        call(&f, "set_replication", "ns-emea", json!({"enabled": false})).unwrap();
        call(&f, "set_replication", "ns-hq", json!({"enabled": false})).unwrap();
        let text = call(&f, "ns_upgrade", "ns-emea", json!({}))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("replication is enabled on `ns-emea-branch` (its child)"),
            "{text}"
        );

        call(&e, "set_replication", "ns-emea", json!({"enabled": false})).unwrap();
        // The branch now upgrades; the state and the event say so.
        let r = call(&e, "ns_upgrade", "ns-emea-branch", json!({})).unwrap();
        assert_eq!(r["from"], "7.5 SP1 HF5");
        assert_eq!(r["to"], "7.6");
        assert_eq!(
            e.state().unwrap().servers["ns-emea-branch"].version(),
            "7.6"
        );
        let last = events(&e).last().cloned().unwrap();
        assert_eq!(last["op"], "ns_upgrade");
        assert_eq!(last["ok"], true);
    }

    #[test]
    fn parent_before_child_is_refused_as_mixed_mode() {
        let dir = tempfile::tempdir().unwrap();
        let e = demo(dir.path());
        for s in ["ns-hq", "ns-emea", "ns-emea-branch", "ns-apac"] {
            call(&e, "set_replication", s, json!({"enabled": false})).unwrap();
        }
        let err = call(&e, "ns_upgrade", "ns-hq", json!({})).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`ns-emea`, `ns-emea-branch`, `ns-apac` below `ns-hq` still run 7.5")
                || text.contains("below `ns-hq` still run 7.5"),
            "{text}"
        );
        assert!(text.contains("children before their parent"), "{text}");
        for s in e.inventory().bottom_up() {
            call(&e, "ns_upgrade", s, json!({})).unwrap();
        }
        // Re-enable replication once all are 7.6; enabling earlier would be mixed mode.
        for s in ["ns-hq", "ns-emea", "ns-emea-branch", "ns-apac"] {
            call(&e, "set_replication", s, json!({"enabled": true})).unwrap();
        }
    }

    #[test]
    fn enabling_replication_in_mixed_mode_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let e = demo(dir.path());
        for s in ["ns-emea", "ns-emea-branch", "ns-hq"] {
            call(&e, "set_replication", s, json!({"enabled": false})).unwrap();
        }
        call(&e, "ns_upgrade", "ns-emea-branch", json!({})).unwrap();
        let text = call(
            &e,
            "set_replication",
            "ns-emea-branch",
            json!({"enabled": true}),
        )
        .unwrap_err()
        .to_string();
        assert!(text.contains("its parent `ns-emea` runs 7.5"), "{text}");
    }

    const SINGLE_HF3: &str = r#"
name = "hf3"
driver = "lab"
[[server]]
name = "ns-old"
role = "ns"
[server.lab]
version = "7.5 SP1 HF3"
"#;

    #[test]
    fn hf3_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let e = lab(SINGLE_HF3, dir.path());
        let text = call(&e, "ns_upgrade", "ns-old", json!({}))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains(
                "`ns-old` runs 7.5 SP1 HF3; an upgrade to 7.6 requires exactly 7.5 SP1 HF5"
            ),
            "{text}"
        );
        assert!(
            text.contains("fix: install 7.5 SP1 HF5 on `ns-old` with SIM first"),
            "{text}"
        );
        let text = call(
            &e,
            "verify_version",
            "ns-old",
            json!({"expected": "7.5 SP1 HF5"}),
        )
        .unwrap_err()
        .to_string();
        assert!(
            text.contains("`ns-old` runs 7.5 SP1 HF3, expected 7.5 SP1 HF5"),
            "{text}"
        );
        assert!(call(
            &e,
            "migration_export",
            "ns-old",
            json!({"file": "D:\\x.ds"})
        )
        .is_err());
        assert_eq!(
            e.state().unwrap().servers["ns-old"].version(),
            "7.5 SP1 HF3"
        );
    }

    #[test]
    fn collation_mismatch_is_reported_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/estates/collation-mismatch.toml");
        let e = LabEstate::new(Inventory::load(&path).unwrap(), dir.path());
        let r = call(&e, "collation", "ns-emea", json!({})).unwrap();
        assert_eq!(r["matches"], false);
        for s in e
            .inventory()
            .ns()
            .map(|s| s.name.clone())
            .collect::<Vec<_>>()
        {
            call(&e, "set_replication", &s, json!({"enabled": false})).unwrap();
        }
        let text = call(&e, "ns_upgrade", "ns-emea", json!({}))
            .unwrap_err()
            .to_string();
        assert!(text.contains("on `ns-emea` the CMDB collation Latin1_General_CI_AS differs from the SQL Server collation SQL_Latin1_General_CP1_CI_AS"), "{text}");
        assert!(text.contains("differs from its parent `ns-hq`"), "{text}");
    }

    #[test]
    fn low_disk_and_running_job_block_the_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        let e = lab(
            r#"name = "d"
driver = "lab"
[[server]]
name = "ns-1"
role = "ns"
[server.lab]
disk_free_gb = 4
replication_job_running = true
"#,
            dir.path(),
        );
        let text = call(&e, "ns_upgrade", "ns-1", json!({}))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("only 4 GB free on the OS drive of `ns-1`"),
            "{text}"
        );
        assert!(
            text.contains("replication job is running on `ns-1`"),
            "{text}"
        );
    }

    #[test]
    fn fault_injection_is_consumed_once_and_persists_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/estates/transient-fault.toml");
        let inv = Inventory::load(&path).unwrap();
        let e = LabEstate::new(inv.clone(), dir.path());
        let err = call(&e, "backup_cmdb", "ns-hq", json!({})).unwrap_err();
        assert!(err.is_transient(), "{err}");
        drop(e);
        // A new process (a resumed run) sees the fault consumed.
        let e = LabEstate::new(inv, dir.path());
        let r = call(&e, "backup_cmdb", "ns-hq", json!({})).unwrap();
        assert_eq!(r["verified"], true);
        let evs = ops_of(&e);
        assert_eq!(
            evs,
            vec![
                ("backup_cmdb".into(), "ns-hq".into(), false),
                ("backup_cmdb".into(), "ns-hq".into(), true)
            ]
        );
        assert_eq!(events(&e)[0]["error_kind"], "transient");
    }

    #[test]
    fn events_are_recorded_in_order_including_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let e = demo(dir.path());
        call(&e, "backup_ns", "ns-hq", json!({})).unwrap();
        call(&e, "ns_upgrade", "ns-hq", json!({})).unwrap_err();
        call(&e, "set_replication", "ns-hq", json!({"enabled": false})).unwrap();
        let evs = events(&e);
        let seqs: Vec<u64> = evs.iter().map(|v| v["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert_eq!(evs[1]["ok"], false);
        assert_eq!(evs[1]["error_kind"], "refused");
        assert_eq!(
            evs[2]["enabled"], false,
            "set_replication event carries `enabled`"
        );
        // Validation errors are not operations and leave no event.
        assert!(call(&e, "ns_upgrade", "nope", json!({})).is_err());
        assert_eq!(events(&e).len(), 3);
    }

    #[test]
    fn every_operation_rewrote_the_whole_estate_so_big_labs_went_quadratic() {
        let dir = tempfile::tempdir().unwrap();
        let e = demo(dir.path());
        // Enough operations for appends to the log and a compaction among them.
        for i in 0..80 {
            let enabled = i % 2 == 1;
            call(
                &e,
                "set_replication",
                "ns-apac",
                json!({ "enabled": enabled }),
            )
            .unwrap();
        }
        let log = dir.path().join("lab/demo-lab.log");
        let base = std::fs::read_to_string(e.state_path()).unwrap();
        let base_events = serde_json::from_str::<Value>(&base).unwrap()["events"]
            .as_array()
            .unwrap()
            .len();
        assert!(base_events < 80, "not every operation rewrites the base");
        assert!(log.exists(), "the rest is in the log");
        // Another process (a fresh estate object) sees base + log: every event, the last state.
        let other = demo(dir.path());
        let st = other.state().unwrap();
        assert_eq!(st.events.len(), 80);
        assert!(st.servers["ns-apac"].replication_enabled);
        // A torn last line (a crash mid-append) is ignored; the rest stands.
        let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
        std::io::Write::write_all(&mut f, b"{\"event\": {\"seq\"").unwrap();
        assert_eq!(demo(dir.path()).state().unwrap().events.len(), 80);
        assert!(reset(None, dir.path()).unwrap());
        assert!(!log.exists());
    }

    #[test]
    fn state_file_is_json_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let e = demo(dir.path());
        assert!(!e.state_path().exists(), "reading must not create state");
        call(&e, "ns_version", "ns-hq", json!({})).unwrap();
        let text = std::fs::read_to_string(e.state_path()).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["estate"], "demo-lab");
        assert_eq!(v["servers"]["ns-hq"]["version"], "7.5 SP1 HF5");
        assert_eq!(v["servers"]["ns-hq"]["replication_enabled"], true);
        assert!(!dir.path().join("lab/demo-lab.json.tmp").exists());
        assert_eq!(e.state_path(), dir.path().join("lab/demo-lab.json"));
        // A damaged file is a clear error that says how to recover.
        std::fs::write(e.state_path(), "{ not json").unwrap();
        let text = call(&e, "ns_version", "ns-hq", json!({}))
            .unwrap_err()
            .to_string();
        // The hint is the exact command: this estate's state dir is not the default.
        let reset = format!("`waymark lab reset --state-dir {}`", dir.path().display());
        assert!(text.contains(&reset), "{text}");
        assert!(e.reset().unwrap());
        assert!(!e.reset().unwrap());
    }

    #[test]
    fn parallel_callers_never_lose_events() {
        let dir = tempfile::tempdir().unwrap();
        let e = std::sync::Arc::new(demo(dir.path()));
        // Two estates on the same file stand in for two processes.
        let other = std::sync::Arc::new(demo(dir.path()));
        let mut handles = Vec::new();
        for i in 0..8 {
            let e = if i % 2 == 0 { e.clone() } else { other.clone() };
            handles.push(std::thread::spawn(move || {
                for _ in 0..5 {
                    call(&e, "disk_free", "ns-hq", json!({})).unwrap();
                }
            }));
        }
        for h in handles {
            h.join().unwrap();
        }
        let seqs: Vec<u64> = events(&e)
            .iter()
            .map(|v| v["seq"].as_u64().unwrap())
            .collect();
        assert_eq!(seqs, (1..=40).collect::<Vec<_>>());
    }

    #[test]
    fn policies_disabled_then_restored_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let e = demo(dir.path());
        let before = call(&e, "list_policies", "ns-hq", json!({})).unwrap();
        let off_before: Vec<Value> = before["policies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["enabled"] == false)
            .cloned()
            .collect();
        assert_eq!(off_before.len(), 1, "one policy starts disabled");
        let d = call(&e, "disable_policies", "ns-hq", json!({})).unwrap();
        assert_eq!(d["disabled"].as_array().unwrap().len(), 7);
        assert_eq!(d["already_disabled"].as_array().unwrap().len(), 1);
        let all_off = call(&e, "list_policies", "ns-hq", json!({})).unwrap();
        assert!(all_off["policies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["enabled"] == false));
        call(
            &e,
            "enable_policies",
            "ns-hq",
            json!({"ids": d["disabled"].clone()}),
        )
        .unwrap();
        let after = call(&e, "list_policies", "ns-hq", json!({})).unwrap();
        assert_eq!(
            after, before,
            "exactly the previously enabled policies are back"
        );
        let ghost = "00000000-0000-4000-8000-000000000000";
        let err = call(&e, "enable_policies", "ns-hq", json!({"ids": [ghost]})).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("no policy with id {ghost}")),
            "{err}"
        );
    }

    #[test]
    fn phased_agent_upgrade_follows_policies() {
        let dir = tempfile::tempdir().unwrap();
        let e = lab(
            "name = \"a\"\ndriver = \"lab\"\n[[server]]\nname = \"ns-1\"\nrole = \"ns\"\nendpoints = 1000\n",
            dir.path(),
        );
        let d = call(&e, "disable_policies", "ns-1", json!({})).unwrap();
        call(&e, "ns_upgrade", "ns-1", json!({})).unwrap();
        let v = call(&e, "agent_versions", "ns-1", json!({"target": "7.6"})).unwrap();
        assert_eq!(
            v["below_target"], v["total"],
            "nothing upgrades while policies are off"
        );
        let upgrades: Vec<Value> = d["disabled"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["action"] == "upgrade" && p["audience"] == "clients")
            .cloned()
            .collect();
        call(
            &e,
            "clone_policies",
            "ns-1",
            json!({"ids": upgrades, "group": "Upgrade Test Group"}),
        )
        .unwrap();
        let t = call(
            &e,
            "agent_versions",
            "ns-1",
            json!({"group": "Upgrade Test Group", "target": "7.6"}),
        )
        .unwrap();
        assert_eq!(t["below_target"], 0);
        assert_eq!(t["total"], 40);
        let all = call(&e, "agent_versions", "ns-1", json!({"target": "7.6"})).unwrap();
        assert!(all["below_target"].as_u64().unwrap() > 0);
        call(
            &e,
            "enable_policies",
            "ns-1",
            json!({"ids": d["disabled"].clone()}),
        )
        .unwrap();
        let all = call(&e, "agent_versions", "ns-1", json!({"target": "7.6"})).unwrap();
        assert_eq!(all["below_target"], 0);
    }

    #[test]
    fn offbox_migration_checks_parity_kms_and_lac() {
        let dir = tempfile::tempdir().unwrap();
        let e = lab(
            r#"name = "m"
driver = "lab"
[[server]]
name = "ns-old"
role = "ns"
endpoints = 500
[server.lab]
products = ["Inventory Solution", "Barcode Solution", "Mobile Management Solution"]
[[server]]
name = "ns-new"
role = "ns"
[server.lab]
version = "7.6"
products = ["Inventory Solution"]
"#,
            dir.path(),
        );
        call(
            &e,
            "backup_cmdb",
            "ns-old",
            json!({"file": "D:\\b\\old.bak"}),
        )
        .unwrap();
        let text = call(
            &e,
            "restore_cmdb",
            "ns-new",
            json!({"file": "D:\\b\\old.bak"}),
        )
        .unwrap_err()
        .to_string();
        assert!(
            text.contains("KMS keys of `ns-old` were never backed up"),
            "{text}"
        );
        assert!(text.contains("pass replace: true"), "{text}");
        call(&e, "backup_kms", "ns-old", json!({})).unwrap();
        call(
            &e,
            "restore_cmdb",
            "ns-new",
            json!({"file": "D:\\b\\old.bak", "replace": true}),
        )
        .unwrap();
        let ex = call(
            &e,
            "migration_export",
            "ns-old",
            json!({"file": "D:\\b\\old.ds"}),
        )
        .unwrap();
        assert_eq!(ex["products"].as_array().unwrap().len(), 3);
        let text = call(
            &e,
            "migration_import",
            "ns-new",
            json!({"file": "D:\\b\\old.ds"}),
        )
        .unwrap_err()
        .to_string();
        assert!(
            text.contains(
                "product parity: `ns-new` lacks \"Barcode Solution\" installed on `ns-old`"
            ),
            "{text}"
        );
        assert!(
            !text.contains("Mobile Management"),
            "no 7.6 release: not a parity problem: {text}"
        );
        // Rehearsal fix: the operator installs Barcode Solution (simulated by editing facts).
        let mut st = e.state().unwrap();
        st.servers
            .get_mut("ns-new")
            .unwrap()
            .products
            .push("Barcode Solution".into());
        e.file.save(&st, &crate::redact::Redactor::new()).unwrap();
        let r = call(
            &e,
            "migration_import",
            "ns-new",
            json!({"file": "D:\\b\\old.ds"}),
        )
        .unwrap();
        assert_eq!(
            r["manual_data"],
            json!(["Inventory Solution", "Barcode Solution"])
        );
        let reg = call(&e, "agent_registration_status", "ns-new", json!({})).unwrap();
        assert_eq!(
            reg["registered"], 0,
            "7.5 agents cannot talk to 7.6 without LAC"
        );
        call(&e, "set_lac", "ns-new", json!({})).unwrap();
        let reg = call(&e, "agent_registration_status", "ns-new", json!({})).unwrap();
        assert_eq!(reg["registered"], reg["total"]);
        let s = call(&e, "get_settings", "ns-old", json!({})).unwrap();
        let r = call(
            &e,
            "apply_settings",
            "ns-new",
            json!({"settings": s["settings"].clone()}),
        )
        .unwrap();
        assert_eq!(r["applied"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn upgrade_uninstalls_solutions_without_a_76_release() {
        let dir = tempfile::tempdir().unwrap();
        let e = lab(
            "name = \"u\"\ndriver = \"lab\"\n[[server]]\nname = \"ns-1\"\nrole = \"ns\"\n[server.lab]\nproducts = [\"Inventory Solution\", \"Mobile Management Solution\"]\n",
            dir.path(),
        );
        let p = call(&e, "installed_products", "ns-1", json!({})).unwrap();
        assert_eq!(
            p["without_76_release"],
            json!(["Mobile Management Solution"])
        );
        let r = call(&e, "ns_upgrade", "ns-1", json!({})).unwrap();
        assert_eq!(r["uninstalled"], json!(["Mobile Management Solution"]));
        let again = call(&e, "ns_upgrade", "ns-1", json!({})).unwrap();
        assert_eq!(again["changed"], false, "a repeated upgrade is a no-op");
        call(&e, "verify_version", "ns-1", json!({"expected": "7.6"})).unwrap();
    }

    #[test]
    fn cancellation_stops_a_delayed_operation() {
        let dir = tempfile::tempdir().unwrap();
        let e = lab(
            "name = \"c\"\ndriver = \"lab\"\nlab_delay = \"1h\"\n[[server]]\nname = \"ns-1\"\nrole = \"ns\"\n",
            dir.path(),
        );
        let token = CancelToken::new();
        token.cancel(CancelReason::Interrupted);
        let log = |_: &str| {};
        let cx = OpContext {
            cancel: &token,
            log: &log,
            redactor: &crate::redact::Redactor::new(),
        };
        let err = e.call("backup_ns", "ns-1", &Map::new(), &cx).unwrap_err();
        assert_eq!(err.kind(), "cancelled");
        assert_eq!(events(&e)[0]["error_kind"], "cancelled");
    }

    #[test]
    fn scheduled_task_is_found_by_prefix_despite_its_guid_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let e = demo(dir.path());
        let r = call(&e, "run_scheduled_task", "ns-hq", json!({})).unwrap();
        assert!(r["task"]
            .as_str()
            .unwrap()
            .starts_with("NS.Package Refresh.{"));
        let err = call(
            &e,
            "run_scheduled_task",
            "ns-hq",
            json!({"task": "NS.Nope"}),
        )
        .unwrap_err();
        assert_eq!(err.kind(), "script");
        let err = call(&e, "run_scheduled_task", "ns-hq", json!({"task": "NS."})).unwrap_err();
        assert!(
            err.to_string().contains("several scheduled tasks match"),
            "{err}"
        );
    }

    #[test]
    fn show_renders_servers_and_events() {
        let dir = tempfile::tempdir().unwrap();
        let e = demo(dir.path());
        call(&e, "set_replication", "ns-apac", json!({"enabled": false})).unwrap();
        let doc = show(None, dir.path()).unwrap();
        assert_eq!(doc["servers"]["ns-apac"]["replication_enabled"], false);
        assert_eq!(doc["events"][0]["op"], "set_replication");
        let text = show_text(&doc);
        assert!(text.contains("Lab estate `demo-lab` (rehearsal)"), "{text}");
        assert!(text.contains("set_replication"), "{text}");
        assert!(reset(None, dir.path()).unwrap());
        assert_eq!(show(None, dir.path()).unwrap()["events"], json!([]));
    }

    #[test]
    fn an_edited_inventory_is_noticed_not_silently_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let e = lab(SINGLE_HF3, dir.path());
        call(&e, "ns_version", "ns-old", json!({})).unwrap();
        assert!(e.show_json().unwrap().get("warning").is_none());
        let edited = lab(&SINGLE_HF3.replace("HF3", "HF5"), dir.path());
        let lines = std::sync::Mutex::new(Vec::new());
        let log = |l: &str| lines.lock().unwrap().push(l.to_string());
        let token = CancelToken::new();
        let cx = OpContext {
            cancel: &token,
            log: &log,
            redactor: &crate::redact::Redactor::new(),
        };
        let r = edited
            .call("ns_version", "ns-old", &Map::new(), &cx)
            .unwrap();
        assert_eq!(r["version"], "7.5 SP1 HF3", "the simulated state is kept");
        assert!(lines.lock().unwrap().iter().any(|l| l.contains(&format!(
            "run `waymark lab reset --inventory t.toml --state-dir {}`",
            dir.path().display()
        ))));
        assert!(show_text(&edited.show_json().unwrap())
            .contains("warning: the inventory of lab estate `hf3` changed"));
        edited.reset().unwrap();
        assert_eq!(
            call(&edited, "ns_version", "ns-old", json!({})).unwrap()["version"],
            "7.5 SP1 HF5"
        );
    }

    #[test]
    fn describe_is_one_line_and_runs_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let e = demo(dir.path());
        let m = json!({"enabled": false}).as_object().cloned().unwrap();
        let d = e.describe("set_replication", "ns-hq", &m).unwrap();
        assert_eq!(d.len(), 1);
        assert!(
            d[0].starts_with("lab (rehearsal): set_replication on ns-hq {\"enabled\":false}"),
            "{}",
            d[0]
        );
        assert!(!e.state_path().exists());
    }
}
