//! The table against the contract, argument checking and the generated docs.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::args::is_guid;
use super::docs::ops_markdown;
use super::*;

fn map(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

#[test]
fn spec_operations_are_in_the_table() {
    for name in [
        "backup_ns",
        "backup_cmdb",
        "set_replication",
        "ns_upgrade",
        "migration_export",
        "migration_import",
    ] {
        assert!(op_info(name).is_some(), "{name}");
    }
    let mut seen = std::collections::HashSet::new();
    for op in OPS {
        assert!(seen.insert(op.name), "duplicate op {}", op.name);
    }
    assert_eq!(
        op_info("set_replication").unwrap().arg_names(),
        vec!["enabled"]
    );
}

#[test]
fn unknown_op_suggests_a_name() {
    let e = lookup("backup_cmbd").unwrap_err().to_string();
    assert!(e.contains("did you mean `backup_cmdb`?"), "{e}");
}

#[test]
fn args_are_checked_against_the_table() {
    let op = op_info("set_replication").unwrap();
    let e = Args::check(op, &map(json!({"enable": false})))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown argument `enable`; did you mean `enabled`?"),
        "{e}"
    );
    let e = Args::check(op, &map(json!({}))).unwrap_err().to_string();
    assert!(e.contains("missing argument `enabled`"), "{e}");
    let e = Args::check(op, &map(json!({"enabled": "no"})))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`enabled` must be a bool, not a string"), "{e}");
    let m = map(json!({"enabled": false}));
    assert!(!Args::check(op, &m).unwrap().bool("enabled"));
}

#[test]
fn defaults_apply_when_absent_or_null() {
    let op = op_info("backup_cmdb").unwrap();
    let m = map(json!({"dest": null}));
    let a = Args::check(op, &m).unwrap();
    assert_eq!(a.str("dest").as_deref(), Some("D:\\Backups\\waymark"));
    assert!(a.bool("verify"));
    assert_eq!(a.str("database").as_deref(), Some("Symantec_CMDB"));
    let op = op_info("smp_log_errors").unwrap();
    let m = map(json!({}));
    assert_eq!(
        Args::check(op, &m).unwrap().duration("since"),
        Duration::from_secs(86400)
    );
    let m = map(json!({"since": "soon"}));
    assert!(Args::check(op, &m).is_err());
}

#[test]
fn lists_accept_ids_or_policy_objects() {
    let op = op_info("enable_policies").unwrap();
    let a = "6f1c2a7e-0b1d-4e5f-9a3b-2c4d6e8f0a1b";
    let b = "{0D9E8F7A-6B5C-4D3E-8F1A-2B3C4D5E6F7A}";
    let m = map(json!({"ids": [a, {"id": b, "name": "x"}]}));
    assert_eq!(
        Args::check(op, &m).unwrap().list("ids").unwrap(),
        vec![a, b]
    );
    let m = map(json!({"ids": [1]}));
    assert!(Args::check(op, &m).is_err());
    let e = Args::check(op, &map(json!({"ids": ["'); calc"]}))).unwrap_err();
    assert!(e.to_string().contains("is not a GUID"), "{e}");
    assert!(!is_guid("6f1c2a7e0b1d4e5f9a3b2c4d6e8f0a1b"));
}

#[test]
fn shared_semantics_refuse_bad_values() {
    let check = |op: &str, v: Value| Args::check(op_info(op).unwrap(), &map(v)).map(|_| ());
    assert!(check("list_policies", json!({"audience": "servers"})).is_err());
    assert!(check("disk_free", json!({"drive": "C:\\"})).is_err());
    assert!(check("disk_free", json!({"drive": "d:"})).is_ok());
    assert!(check("ns_upgrade", json!({"to": "8.0"})).is_err());
    assert!(check("verify_version", json!({"expected": "latest"})).is_err());
    assert!(check("defragment_cmdb", json!({"reorganize_above": 40})).is_err());
    assert!(check("backup_cmdb", json!({"dest": "D:\\a\"b"})).is_err());
    assert!(check("backup_cmdb", json!({"dest": "D:\\O'Brien; $(x)"})).is_ok());
    assert!(check("clone_policies", json!({"ids": [], "group": "a\nb"})).is_err());
}

#[test]
fn docs_file_matches_the_table() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/estate-ops.md");
    let doc = std::fs::read_to_string(&path).unwrap_or_default();
    const BEGIN: &str = "<!-- BEGIN GENERATED: ops_markdown() -->\n";
    const END: &str = "<!-- END GENERATED -->";
    if std::env::var_os("WAYMARK_UPDATE_DOCS").is_some() {
        let (head, tail) = match (doc.find(BEGIN), doc.find(END)) {
            (Some(b), Some(e)) => (doc[..b].to_string(), doc[e..].to_string()),
            _ => (doc.clone(), END.to_string() + "\n"),
        };
        std::fs::write(&path, format!("{head}{BEGIN}{}{tail}", ops_markdown())).unwrap();
        return;
    }
    assert!(
        doc.contains(&format!("{BEGIN}{}{END}", ops_markdown())),
        "docs/estate-ops.md is out of date: run `WAYMARK_UPDATE_DOCS=1 cargo test --lib docs_file_matches`"
    );
}
