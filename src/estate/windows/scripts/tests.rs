//! Snapshots of every generated script, and the skeleton test: hostile values change
//! only what sits inside quoted literals.

use super::*;
use insta::assert_snapshot;

const HOST: &str = "ns-hq";
const INSTANCE: &str = "sql-hq\\CMDB";
// Values that would break out of a naive template in every language involved.
const EVIL_HOST: &str = "ns'; Remove-Item -Recurse C:\\ #";
const EVIL_INSTANCE: &str = "sql$(calc)\\I`N'S";
const EVIL_TEXT: &str = "it's ‘x’; $(Stop-Computer) `whoami` ]; DROP DATABASE [x]; --";
const EVIL_PATH: &str = "D:\\O'Brien\\‘x’; $(Stop-Computer) `whoami`";

#[test]
fn snapshot_ns_version() {
    assert_snapshot!("ns_version", ns_version("ns_version"));
}

#[test]
fn snapshot_collation() {
    assert_snapshot!("collation_normal", collation(INSTANCE, "Symantec_CMDB"));
    assert_snapshot!("collation_hostile", collation(EVIL_INSTANCE, EVIL_TEXT));
}

#[test]
fn snapshot_disk_free() {
    assert_snapshot!("disk_free_default", disk_free(None));
    assert_snapshot!("disk_free_drive", disk_free(Some("D:")));
}

#[test]
fn snapshot_host_probes() {
    assert_snapshot!("hardware", hardware());
    assert_snapshot!("software_host", software_host());
    assert_snapshot!("software_sql", software_sql(INSTANCE));
    assert_snapshot!("installed_products", installed_products());
    assert_snapshot!("dcom", dcom());
    assert_snapshot!("app_pools", app_pools());
    assert_snapshot!("smp_log_errors", smp_log_errors(86400));
}

#[test]
fn snapshot_replication() {
    assert_snapshot!("replication_status_normal", replication_status(HOST));
    assert_snapshot!("replication_status_hostile", replication_status(EVIL_HOST));
    assert_snapshot!("set_replication_off", set_replication(HOST, false));
    assert_snapshot!(
        "set_replication_on_hostile",
        set_replication(EVIL_HOST, true)
    );
}

#[test]
fn snapshot_agents_and_policies() {
    assert_snapshot!(
        "agent_versions_all",
        agent_versions(INSTANCE, "Symantec_CMDB", None, None)
    );
    assert_snapshot!(
        "agent_versions_group_hostile",
        agent_versions(EVIL_INSTANCE, EVIL_TEXT, Some(EVIL_TEXT), None)
    );
    assert_snapshot!(
        "agent_versions_computer",
        agent_versions(INSTANCE, "Symantec_CMDB", None, Some("pkg-lon-01"))
    );
    assert_snapshot!(
        "agent_versions_group_and_computer_hostile",
        agent_versions(EVIL_INSTANCE, EVIL_TEXT, Some(EVIL_TEXT), Some(EVIL_TEXT))
    );
    let patterns: Vec<String> = crate::estate::itms::DEFAULT_POLICY_PATTERNS
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_snapshot!(
        "list_policies_patterns",
        list_policies("list_policies", INSTANCE, "Symantec_CMDB", &patterns, None)
    );
    assert_snapshot!(
        "list_policies_hostile",
        list_policies(
            "disable_policies",
            EVIL_INSTANCE,
            EVIL_TEXT,
            &[EVIL_TEXT.to_string()],
            None
        )
    );
    let ids = vec![
        "6f1c2a7e-0b1d-4e5f-9a3b-2c4d6e8f0a1b".to_string(),
        "0d9e8f7a-6b5c-4d3e-8f1a-2b3c4d5e6f7a".to_string(),
    ];
    assert_snapshot!(
        "list_policies_ids",
        list_policies(
            "disable_policies",
            INSTANCE,
            "Symantec_CMDB",
            &[],
            Some(&ids)
        )
    );
    assert_snapshot!(
        "disable_policy_items",
        policy_items("disable_policies", HOST, false, &ids)
    );
    assert_snapshot!(
        "enable_policy_items_hostile",
        policy_items("enable_policies", EVIL_HOST, true, &[EVIL_TEXT.to_string()])
    );
}

#[test]
fn snapshot_backups_and_maintenance() {
    assert_snapshot!("backup_ns_normal", backup_ns(HOST, "D:\\Backups\\waymark"));
    assert_snapshot!("backup_ns_hostile", backup_ns(EVIL_HOST, EVIL_PATH));
    assert_snapshot!(
        "backup_cmdb_normal",
        backup_cmdb(
            INSTANCE,
            "Symantec_CMDB",
            "D:\\Backups\\waymark\\Symantec_CMDB_ns-hq.bak",
            true
        )
    );
    assert_snapshot!(
        "backup_cmdb_hostile",
        backup_cmdb(EVIL_INSTANCE, EVIL_TEXT, EVIL_PATH, false)
    );
    assert_snapshot!(
        "restore_cmdb_normal",
        restore_cmdb(
            INSTANCE,
            "Symantec_CMDB",
            "E:\\Restore\\Symantec_CMDB_ns-hq.bak",
            false
        )
    );
    assert_snapshot!(
        "restore_cmdb_replace_hostile",
        restore_cmdb(EVIL_INSTANCE, EVIL_TEXT, EVIL_PATH, true)
    );
    assert_snapshot!(
        "defragment_cmdb",
        defragment_cmdb(INSTANCE, "Symantec_CMDB", 5, 30, 1000)
    );
    assert_snapshot!(
        "run_scheduled_task_wait",
        run_scheduled_task("NS.Package Refresh", true)
    );
    assert_snapshot!(
        "run_scheduled_task_hostile",
        run_scheduled_task(EVIL_TEXT, false)
    );
}

/// Every line outside a quoted literal must be the same for a hostile input as for
/// a plain one: the input can only ever change the *contents* of literals.
#[test]
fn hostile_values_only_change_literal_contents() {
    fn skeleton(script: &str) -> String {
        // Replace every PowerShell single-quoted literal by a placeholder.
        let q = &crate::quote::PS_SINGLE_QUOTES;
        let mut out = String::new();
        let mut chars = script.chars().peekable();
        while let Some(c) = chars.next() {
            if q.contains(&c) {
                loop {
                    match chars.next() {
                        Some(d) if q.contains(&d) => {
                            if chars.peek().is_some_and(|n| q.contains(n)) {
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        Some(_) => {}
                        None => panic!("unterminated literal in:\n{script}"),
                    }
                }
                out.push_str("'…'");
            } else {
                out.push(c);
            }
        }
        out
    }
    let pairs = [
        (
            collation(INSTANCE, "Symantec_CMDB"),
            collation(EVIL_INSTANCE, EVIL_TEXT),
        ),
        (
            set_replication(HOST, true),
            set_replication(EVIL_HOST, true),
        ),
        (backup_ns(HOST, "D:\\B"), backup_ns(EVIL_HOST, EVIL_PATH)),
        (
            backup_cmdb(INSTANCE, "Symantec_CMDB", "D:\\B\\x.bak", true),
            backup_cmdb(EVIL_INSTANCE, EVIL_TEXT, EVIL_PATH, true),
        ),
        (
            agent_versions(INSTANCE, "Symantec_CMDB", Some("Test"), Some("pkg-01")),
            agent_versions(EVIL_INSTANCE, EVIL_TEXT, Some(EVIL_TEXT), Some(EVIL_TEXT)),
        ),
        (
            run_scheduled_task("NS.Package Refresh", true),
            run_scheduled_task(EVIL_TEXT, true),
        ),
        (
            policy_items("enable_policies", HOST, true, &["a".into()]),
            policy_items("enable_policies", EVIL_HOST, true, &[EVIL_TEXT.into()]),
        ),
    ];
    for (plain, evil) in &pairs {
        assert_eq!(
            skeleton(plain),
            skeleton(evil),
            "hostile input changed the script shape:\n{evil}"
        );
        // One layer down: the T-SQL inside `$query` keeps its shape too.
        if let (Some(p), Some(e)) = (query_of(plain), query_of(evil)) {
            assert_eq!(
                tsql_skeleton(&p),
                tsql_skeleton(&e),
                "hostile input changed the T-SQL:\n{e}"
            );
        }
    }
}

/// The T-SQL text held by the script's `$query = '...'` literal.
fn query_of(script: &str) -> Option<String> {
    let start = script.find("$query = '")? + "$query = '".len();
    let mut out = String::new();
    let mut chars = script[start..].chars().peekable();
    let q = &crate::quote::PS_SINGLE_QUOTES;
    while let Some(c) = chars.next() {
        if q.contains(&c) {
            if chars.peek().is_some_and(|n| q.contains(n)) {
                out.push(chars.next()?);
            } else {
                return Some(out);
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// T-SQL with every string literal and bracketed identifier replaced by a placeholder.
fn tsql_skeleton(sql: &str) -> String {
    let mut out = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        let close = match c {
            '\'' => '\'',
            '[' => ']',
            'N' if chars.peek() == Some(&'\'') => {
                chars.next();
                '\''
            }
            _ => {
                out.push(c);
                continue;
            }
        };
        loop {
            match chars.next() {
                Some(d) if d == close => {
                    if chars.peek() == Some(&close) {
                        chars.next();
                    } else {
                        break;
                    }
                }
                Some(_) => {}
                None => panic!("unterminated T-SQL literal in {sql}"),
            }
        }
        out.push_str("<lit>");
    }
    out
}
