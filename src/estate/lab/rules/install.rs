//! Rules of the NS version itself: what runs, whether it is the expected version, and the
//! in-place upgrade with every blocker the vendor guide names (exact source version,
//! replication off around the server, children first, collation parity, disk space).
//! They share one file because the upgrade's refusals are the version probes' reasons.

use serde_json::{json, Value};

use super::agents::propagate_agents;
use super::Ctx;
use crate::estate::itms;
use crate::estate::{EstateError, Problem};

pub(super) fn ns_version(c: &mut Ctx) -> Result<Value, EstateError> {
    let v = c.me()?.version().to_string();
    Ok(json!({"server": c.server, "release": itms::release(&v), "version": v, "build": null}))
}

pub(super) fn verify_version(c: &mut Ctx) -> Result<Value, EstateError> {
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
        return Err(c.refused(vec![Problem::new(
            format!("`{}` runs {v}, expected {expected}", c.server),
            fix,
        )]));
    }
    Ok(
        json!({"server": c.server, "expected": expected, "release": itms::release(&v), "version": v, "build": null}),
    )
}

pub(super) fn installed_products(c: &mut Ctx) -> Result<Value, EstateError> {
    let mut v = itms::classify_products(&c.me()?.products);
    v["server"] = json!(c.server);
    v["notes"] = json!([]);
    Ok(v)
}

pub(super) fn ns_upgrade(c: &mut Ctx) -> Result<Value, EstateError> {
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
        return Err(c.refused(problems));
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
#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::estate::lab::testing::*;
    use std::path::Path;

    use crate::estate::lab::LabEstate;
    use crate::estate::{Estate, Inventory};

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
        let e = LabEstate::new(
            Inventory::load(&path).unwrap(),
            &crate::state::Store::dir(dir.path()),
        );
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
}
