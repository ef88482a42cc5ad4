//! Hierarchy replication: its state, and switching it, which is refused while the
//! server and a neighbour run different releases (no mixed mode).

use serde_json::{json, Value};

use super::Ctx;
use crate::estate::itms;
use crate::estate::{EstateError, Problem};

pub(super) fn replication_status(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    Ok(json!({
        "server": c.server, "hierarchy_member": me.hierarchy_member,
        "enabled": me.replication_enabled, "job_running": me.replication_job_running,
        "notes": [],
    }))
}

pub(super) fn set_replication(c: &mut Ctx) -> Result<Value, EstateError> {
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
            return Err(c.refused(problems));
        }
    }
    let me = c.me_mut()?;
    let changed = me.replication_enabled != enabled;
    me.replication_enabled = enabled;
    c.note("changed", json!(changed));
    Ok(json!({"server": c.server, "enabled": enabled, "changed": changed}))
}
#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::estate::lab::testing::*;

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
}
