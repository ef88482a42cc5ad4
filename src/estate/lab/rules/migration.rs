//! Off-box migration: the Migration Wizard's data store (exported from a 7.5 SP1 HF5 NS,
//! imported into 7.6 with product parity) and the settings carried over by hand.

use serde_json::{json, Value};

use super::agents::propagate_agents;
use super::Ctx;
use crate::estate::itms;
use crate::estate::lab::state::DataStore;
use crate::estate::{EstateError, Problem};

pub(super) fn get_settings(c: &mut Ctx) -> Result<Value, EstateError> {
    Ok(json!({"server": c.server, "settings": c.me()?.settings}))
}

pub(super) fn apply_settings(c: &mut Ctx) -> Result<Value, EstateError> {
    let settings = c.args.map("settings").cloned().unwrap_or_default();
    let keys: Vec<String> = settings.keys().cloned().collect();
    let me = c.me_mut()?;
    for (k, v) in settings {
        me.settings.insert(k, v);
    }
    Ok(json!({"server": c.server, "applied": keys}))
}

pub(super) fn migration_export(c: &mut Ctx) -> Result<Value, EstateError> {
    let file = c.args.str("file").unwrap_or_default();
    let me = c.me()?;
    if me.version() != itms::REQUIRED_SOURCE {
        return Err(c.refused(vec![Problem::new(
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
        )]));
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

pub(super) fn migration_import(c: &mut Ctx) -> Result<Value, EstateError> {
    let file = c.args.str("file").unwrap_or_default();
    let Some(store) =
        c.st.data_stores
            .iter()
            .find(|d| d.file.eq_ignore_ascii_case(&file))
            .cloned()
    else {
        return Err(c.script_error(format!(
            "no data store at '{file}': export one with migration_export first"
        )));
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
        return Err(c.refused(problems));
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
#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::estate::lab::testing::*;

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
}
