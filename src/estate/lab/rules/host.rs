//! Probes of the Windows host under an NS or site server (disk, hardware, software, DCOM,
//! IIS pools, the SMP log) and its scheduled tasks: facts the preflight reads, seeded
//! from the inventory's `[server.lab]` and never changed by an upgrade.

use serde_json::{json, Value};

use super::Ctx;
use crate::estate::itms;
use crate::estate::EstateError;

pub(super) fn disk_free(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    let drive = c.args.str("drive").unwrap_or_else(|| "C:".into());
    Ok(
        json!({"server": c.server, "drive": drive, "free_gb": me.disk_free_gb, "size_gb": me.disk_size_gb}),
    )
}

pub(super) fn hardware(c: &mut Ctx) -> Result<Value, EstateError> {
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

pub(super) fn software(c: &mut Ctx) -> Result<Value, EstateError> {
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

pub(super) fn dcom(c: &mut Ctx) -> Result<Value, EstateError> {
    let on = c.me()?.dcom_enabled;
    Ok(json!({"server": c.server, "enabled": on, "value": if on { "Y" } else { "N" }}))
}

pub(super) fn app_pools(c: &mut Ctx) -> Result<Value, EstateError> {
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

pub(super) fn smp_log_errors(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    let samples: Vec<String> = (0..me.log_errors.min(3))
        .map(|i| format!("Error: simulated SMP log error {} on {}", i + 1, c.server))
        .collect();
    Ok(json!({
        "server": c.server, "files": 4, "errors": me.log_errors,
        "warnings": me.log_warnings, "samples": samples, "notes": [],
    }))
}

pub(super) fn run_scheduled_task(c: &mut Ctx) -> Result<Value, EstateError> {
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
        [] => Err(c.script_error(format!(
            "no scheduled task matches '{task}*' on {}",
            c.server
        ))),
        many => Err(c.script_error(format!(
            "several scheduled tasks match '{task}*': {}; give the exact name as `task`",
            many.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::estate::lab::testing::*;

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
}
