//! `[server.lab]`: the simulated facts of a server. Versions must be comparable and
//! `fail` may only name operations of the estate's table.

use toml::Spanned;

use super::super::error::Collector;
use super::super::raw::RawLab;
use super::super::server::LabFacts;
use crate::diagnostic::did_you_mean;

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

/// The `[server.lab]` facts of `server`, checked.
pub(super) fn facts(server: &str, l: &Spanned<RawLab>, c: &mut Collector<'_>) -> LabFacts {
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
        let ops: Vec<&str> = crate::estate::op::Op::ALL
            .iter()
            .map(|o| o.name())
            .collect();
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
        agent_upgrade_fails: r.agent_upgrade_fails,
        fail: r.fail.as_ref().map(|f| f.get_ref().clone()),
    }
}
