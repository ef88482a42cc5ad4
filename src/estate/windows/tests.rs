//! The windows driver against a fake transport: scripts asked for, results parsed,
//! refusals, and result keys equal to the lab's.

use std::sync::Mutex;

use super::parse::rows;
use super::transport::PsOutput;
use super::*;
use crate::cancel::CancelToken;
use crate::estate::inventory::Server;

/// Answers scripts from a queue and remembers what it was asked to run.
struct FakeTransport {
    replies: Mutex<Vec<PsOutput>>,
    seen: Mutex<Vec<(String, String)>>,
}

impl FakeTransport {
    fn new(stdouts: &[&str]) -> Arc<FakeTransport> {
        Arc::new(FakeTransport {
            replies: Mutex::new(
                stdouts
                    .iter()
                    .rev()
                    .map(|s| PsOutput {
                        code: Some(0),
                        stdout: s.to_string(),
                        stderr: String::new(),
                    })
                    .collect(),
            ),
            seen: Mutex::new(Vec::new()),
        })
    }
}

impl Transport for FakeTransport {
    fn run_powershell(
        &self,
        server: &Server,
        script: &str,
        _: &OpContext,
    ) -> Result<PsOutput, EstateError> {
        self.seen
            .lock()
            .unwrap()
            .push((server.name.clone(), script.to_string()));
        Ok(self.replies.lock().unwrap().pop().unwrap_or(PsOutput {
            code: Some(1),
            stdout: String::new(),
            stderr: "no reply queued".into(),
        }))
    }
}

fn inv() -> Inventory {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/estates/windows.toml");
    Inventory::load(&path).unwrap()
}

fn call_with(
    t: Arc<FakeTransport>,
    op: &str,
    server: &str,
    args: Value,
) -> Result<Value, EstateError> {
    let e = WindowsEstate::with_transport(inv(), t);
    let token = CancelToken::new();
    let log = |_: &str| {};
    let cx = OpContext {
        cancel: &token,
        log: &log,
        redactor: &crate::redact::Redactor::new(),
    };
    e.call(op, server, args.as_object().unwrap(), &cx)
}

#[test]
fn json_line_is_found_after_noise() {
    let v = parse_json_line("WARNING: x\n{\"a\":1}\r\n\n").unwrap();
    assert_eq!(v["a"], 1);
    assert!(parse_json_line("[1,2]\nnope").is_none());
}

#[test]
fn sql_rows_keep_extra_separators_in_the_last_field() {
    let v = json!({"rows": ["WAYMARK|3|7.6.1383.0|Agent | odd name", "other"]});
    assert_eq!(
        rows(&v, 3),
        vec![vec!["3", "7.6.1383.0", "Agent | odd name"]]
    );
}

#[test]
fn ns_version_picks_the_highest_build() {
    let t = FakeTransport::new(&[
        r#"{"assemblies":[{"path":"a","file_version":"7.5.3153.0","assembly_version":"7.5.3153.0"},{"path":"b","file_version":"7.6.1383.0 (built by: x)","assembly_version":"7.6.1383.0"}]}"#,
    ]);
    let r = call_with(t.clone(), "ns_version", "smp01", json!({})).unwrap();
    assert_eq!(
        r,
        json!({"server": "smp01", "release": "7.6", "version": null, "build": "7.6.1383.0"})
    );
    let seen = t.seen.lock().unwrap();
    assert_eq!(seen[0].0, "smp01");
    assert!(seen[0].1.contains("Altiris.NS.dll"));
}

#[test]
fn ns_version_single_object_and_none_found() {
    let t = FakeTransport::new(&[
        r#"{"assemblies":{"path":"a","file_version":"7.5.3153.7400","assembly_version":"7.5.3153.0"}}"#,
    ]);
    assert_eq!(
        call_with(t, "ns_version", "smp01", json!({})).unwrap()["build"],
        "7.5.3153.7400"
    );
    let t = FakeTransport::new(&[r#"{"assemblies":[]}"#]);
    let e = call_with(t, "ns_version", "smp01", json!({})).unwrap_err();
    assert!(
        e.to_string().contains("Altiris.NS is not in the GAC"),
        "{e}"
    );
}

#[test]
fn verify_hf5_needs_an_explicit_build() {
    let t = FakeTransport::new(&[]);
    let e = call_with(
        t.clone(),
        "verify_version",
        "smp01",
        json!({"expected": "7.5 SP1 HF5"}),
    )
    .unwrap_err();
    assert_eq!(e.kind(), "bad_args");
    assert!(e.to_string().contains("not known to waymark"), "{e}");
    assert!(t.seen.lock().unwrap().is_empty(), "nothing ran");
    let t = FakeTransport::new(&[r#"{"assemblies":[{"file_version":"7.5.3153.7400"}]}"#]);
    let r = call_with(
        t,
        "verify_version",
        "smp01",
        json!({"expected": "7.5 SP1 HF5", "expected_build": "7.5.3153.7400"}),
    )
    .unwrap();
    assert_eq!(r["expected"], "7.5 SP1 HF5");
    let t = FakeTransport::new(&[r#"{"assemblies":[{"file_version":"7.5.3153.7400"}]}"#]);
    let e = call_with(t, "verify_version", "smp01", json!({"expected": "7.6"})).unwrap_err();
    assert_eq!(e.kind(), "refused");
    assert!(
        e.to_string()
            .contains("`smp01` runs Altiris.NS 7.5.3153.7400, expected 7.6"),
        "{e}"
    );
}

#[test]
fn collation_runs_on_the_sql_host_and_compares() {
    let t = FakeTransport::new(&["Changed database context\n{\"rows\":[\"WAYMARK|SQL_Latin1_General_CP1_CI_AS|Latin1_General_CI_AS\"]}"]);
    let r = call_with(t.clone(), "collation", "smp01", json!({})).unwrap();
    assert_eq!(r["matches"], false);
    assert_eq!(r["db_collation"], "Latin1_General_CI_AS");
    assert_eq!(t.seen.lock().unwrap()[0].0, "sqlcl01");
    let t = FakeTransport::new(&[r#"{"rows":["WAYMARK|SQL_Latin1_General_CP1_CI_AS|NULL"]}"#]);
    let e = call_with(t, "collation", "smp01", json!({})).unwrap_err();
    assert!(
        e.to_string()
            .contains("database Symantec_CMDB was not found"),
        "{e}"
    );
}

#[test]
fn failed_script_reports_stderr() {
    let t = Arc::new(FakeTransport {
        replies: Mutex::new(vec![PsOutput {
            code: Some(1),
            stdout: String::new(),
            stderr: "sqlcmd -S sqlcl01\\CMDB failed (exit 1): Login failed".into(),
        }]),
        seen: Mutex::new(Vec::new()),
    });
    let e = call_with(t, "backup_cmdb", "smp01", json!({})).unwrap_err();
    assert_eq!(e.kind(), "script");
    assert!(
        e.to_string()
            .contains("code 1: sqlcmd -S sqlcl01\\CMDB failed (exit 1): Login failed"),
        "{e}"
    );
}

#[test]
fn backup_cmdb_result_shape() {
    let t = FakeTransport::new(&[r#"{"rows":["WAYMARK|73400320"]}"#]);
    let r = call_with(
        t.clone(),
        "backup_cmdb",
        "smp01",
        json!({"dest": "E:\\Bak"}),
    )
    .unwrap();
    assert_eq!(r["file"], "E:\\Bak\\Symantec_CMDB_smp01.bak");
    assert_eq!(r["bytes"], 73400320);
    assert_eq!(r["verified"], true);
    let script = &t.seen.lock().unwrap()[0].1;
    assert!(
        script.contains(
            "RESTORE VERIFYONLY FROM DISK = N''E:\\Bak\\Symantec_CMDB_smp01.bak'' WITH CHECKSUM;"
        ),
        "{script}"
    );
}

#[test]
fn probes_parse_their_outputs() {
    let t = FakeTransport::new(&[
        r#"{"drive":"C:","free_bytes":53687091200,"size_bytes":214748364800}"#,
    ]);
    let r = call_with(t, "disk_free", "smp01", json!({})).unwrap();
    assert_eq!(
        (r["free_gb"].as_f64(), r["size_gb"].as_f64()),
        (Some(50.0), Some(200.0))
    );
    let t = FakeTransport::new(&[
        r#"{"cores":4,"logical_processors":8,"ram_bytes":17179869184,"manufacturer":"VMware, Inc.","model":"VMware Virtual Platform"}"#,
    ]);
    let r = call_with(t, "hardware", "smp01", json!({})).unwrap();
    assert_eq!(
        (r["ram_gb"].as_f64(), r["virtual"].as_bool()),
        (Some(16.0), Some(true))
    );
    let t = FakeTransport::new(&[
        r#"{"os":"Microsoft Windows Server 2012 R2 Standard","os_version":"6.3.9600","iis":"8.5","dotnet_release":378675,"java":null}"#,
        r#"{"rows":["WAYMARK|12.0.4100.1|Standard Edition (64-bit)"]}"#,
    ]);
    let r = call_with(t, "software", "smp01", json!({})).unwrap();
    assert_eq!(r["dotnet_451"], true);
    assert_eq!(r["sql_version"], "12.0.4100.1");
    assert_eq!(r["java"], Value::Null);
    let t = FakeTransport::new(&[r#"{"value":"Y"}"#]);
    assert_eq!(
        call_with(t, "dcom", "smp01", json!({})).unwrap()["enabled"],
        true
    );
    let t = FakeTransport::new(&[r#"{"value":null}"#]);
    assert_eq!(
        call_with(t, "dcom", "smp01", json!({})).unwrap()["enabled"],
        false
    );
    let t = FakeTransport::new(&[r#"{"member":"true"}"#]);
    let r = call_with(t, "replication_status", "smp01", json!({})).unwrap();
    assert_eq!(r["hierarchy_member"], true);
    assert_eq!(r["job_running"], Value::Null);
    let t = FakeTransport::new(&[r#"{"pools":{"name":"DefaultAppPool","state":"Started"}}"#]);
    let r = call_with(t, "app_pools", "smp01", json!({})).unwrap();
    assert_eq!(r["pools"][0]["name"], "DefaultAppPool");
    let t = FakeTransport::new(&[r#"{"files":3,"errors":2,"warnings":5,"samples":["x error y"]}"#]);
    assert_eq!(
        call_with(t, "smp_log_errors", "smp01", json!({"since": "2h"})).unwrap()["errors"],
        2
    );
    let t = FakeTransport::new(&[r#"{"rows":["WAYMARK|4|3"]}"#]);
    let r = call_with(t, "defragment_cmdb", "smp01", json!({})).unwrap();
    assert_eq!(
        (r["reorganized"].as_u64(), r["rebuilt"].as_u64()),
        (Some(4), Some(3))
    );
    let t = FakeTransport::new(&[r#"{"task":"NS.Package Refresh.{abc}","last_result":0}"#]);
    assert_eq!(
        call_with(t, "run_scheduled_task", "smp01", json!({})).unwrap()["last_result"],
        0
    );
}

#[test]
fn installed_products_are_classified_or_refused_when_empty() {
    let t = FakeTransport::new(&[
        r#"{"file":"C:\\x\\InstallHistoryPL.Xml","names":["Inventory Solution","Mobile Management Solution"]}"#,
    ]);
    let r = call_with(t, "installed_products", "smp01", json!({})).unwrap();
    assert_eq!(
        r["without_76_release"],
        json!(["Mobile Management Solution"])
    );
    let t = FakeTransport::new(&[r#"{"file":"C:\\x\\InstallHistoryPL.Xml","names":[]}"#]);
    let e = call_with(t, "installed_products", "smp01", json!({})).unwrap_err();
    assert!(e.to_string().contains("found no product names"), "{e}");
}

#[test]
fn agent_versions_compare_numerically() {
    let t = FakeTransport::new(&[
        r#"{"rows":["WAYMARK|120|7.6.1383.0|Symantec Management Agent","WAYMARK|30|7.5.3153.0|Symantec Management Agent","WAYMARK|150|7.10.1.0|Inventory Plug-in"]}"#,
    ]);
    let r = call_with(t, "agent_versions", "smp01", json!({"target": "7.6"})).unwrap();
    assert_eq!(r["total"], 300);
    assert_eq!(r["below_target"], 30);
    assert_eq!(
        r["rows"][2]["at_target"], true,
        "7.10 is above 7.6 numerically"
    );
    assert!(r.get("notes").is_none(), "{r}");
}

#[test]
fn one_site_servers_versions_come_from_its_ns_cmdb_with_the_join_marked_unverified() {
    let t = FakeTransport::new(&[
        r#"{"rows":["WAYMARK|1|7.6.1383.0|Symantec Management Agent","WAYMARK|1|7.5.3153.0|Package Server Agent"]}"#,
    ]);
    let r = call_with(
        t,
        "agent_versions",
        "smp01",
        json!({"computer": "pkg-lon-01", "target": "7.6"}),
    )
    .unwrap();
    assert_eq!(
        (r["total"].as_u64(), r["below_target"].as_u64()),
        (Some(2), Some(1))
    );
    assert_eq!(
        r["notes"][0],
        "the one-computer join (vComputer.Name) is unverified"
    );
}

#[test]
fn disable_policies_disables_only_enabled_ones_and_returns_them() {
    let t = FakeTransport::new(&[
        r#"{"rows":["WAYMARK|6F1C2A7E-0B1D-4E5F-9A3B-2C4D6E8F0A1B|1|Inventory Plug-in for Windows - Upgrade","WAYMARK|0D9E8F7A-6B5C-4D3E-8F1A-2B3C4D5E6F7A|0|Package Service Plug-in for Site Servers - Upgrade"]}"#,
        r#"{"done":["6f1c2a7e-0b1d-4e5f-9a3b-2c4d6e8f0a1b"]}"#,
    ]);
    let r = call_with(t.clone(), "disable_policies", "smp01", json!({})).unwrap();
    assert_eq!(
        r["disabled"][0]["id"],
        "6f1c2a7e-0b1d-4e5f-9a3b-2c4d6e8f0a1b"
    );
    assert_eq!(r["disabled"][0]["enabled"], false);
    assert_eq!(r["already_disabled"][0]["audience"], "site_servers");
    let seen = t.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].0, "sqlcl01");
    assert_eq!(seen[1].0, "smp01");
    assert!(seen[1].1.contains("DisablePolicyItem"));
    assert!(seen[1].1.contains("'6f1c2a7e-0b1d-4e5f-9a3b-2c4d6e8f0a1b'"));
    assert!(
        !seen[1].1.contains("0d9e8f7a"),
        "an already disabled policy is left alone"
    );
}

#[test]
fn ids_must_be_guids() {
    let t = FakeTransport::new(&[]);
    let e = call_with(t, "enable_policies", "smp01", json!({"ids": ["'); calc"]})).unwrap_err();
    assert_eq!(e.kind(), "bad_args");
}

#[test]
fn manual_operations_say_so_and_run_nothing() {
    for op in [
        "ns_upgrade",
        "migration_export",
        "backup_kms",
        "set_lac",
        "agent_registration_status",
    ] {
        let t = FakeTransport::new(&[]);
        let args = if op == "migration_export" {
            json!({"file": "D:\\x"})
        } else {
            json!({})
        };
        let e = call_with(t.clone(), op, "smp01", args).unwrap_err();
        assert_eq!(e.kind(), "manual", "{op}");
        assert!(e.to_string().contains("needs an operator"), "{e}");
        assert!(t.seen.lock().unwrap().is_empty());
    }
}

#[test]
fn describe_shows_the_scripts_with_their_host() {
    let e = WindowsEstate::with_transport(inv(), FakeTransport::new(&[]));
    let m = json!({"enabled": false});
    let d = e
        .describe("set_replication", "smp02", m.as_object().unwrap())
        .unwrap();
    assert_eq!(d.len(), 1);
    assert!(
        d[0].starts_with("# runs on smp02\n# waymark estate operation: set_replication\n"),
        "{}",
        d[0]
    );
    assert!(d[0].contains(
        "https://smp02/altiris/ASDK.NS/HierarchyManagementService.asmx/EnableHierarchyReplication"
    ));
    assert!(d[0].contains("-Body @{ enable = 'false' }"));
    let d = e.describe("ns_upgrade", "smp01", &Map::new()).unwrap();
    assert!(d[0].contains("needs an operator (gate)"), "{}", d[0]);
    let d = e
        .describe("disable_policies", "smp01", &Map::new())
        .unwrap();
    assert_eq!(d.len(), 2);
    assert!(d[0].starts_with("# runs on sqlcl01\n"));
}

/// The invariant of the estate layer: a runbook sees the same result keys from both
/// drivers, so it cannot tell them apart except by asking `driver()`.
#[test]
fn result_keys_match_the_lab() {
    let guid = "6f1c2a7e-0b1d-4e5f-9a3b-2c4d6e8f0a1b";
    let policy_row =
        format!(r#"{{"rows":["WAYMARK|{guid}|1|Inventory Plug-in for Windows - Upgrade"]}}"#);
    let cases: Vec<(&str, Value, Vec<String>)> = vec![
        ("ns_version", json!({}), vec![r#"{"assemblies":[{"file_version":"7.5.3153.0"}]}"#.into()]),
        ("verify_version", json!({"expected": "7.5 SP1 HF5", "expected_build": "7.5.3153.0"}), vec![r#"{"assemblies":[{"file_version":"7.5.3153.0"}]}"#.into()]),
        ("collation", json!({}), vec![r#"{"rows":["WAYMARK|A|A"]}"#.into()]),
        ("disk_free", json!({}), vec![r#"{"drive":"C:","free_bytes":1,"size_bytes":2}"#.into()]),
        ("hardware", json!({}), vec![r#"{"cores":8,"logical_processors":16,"ram_bytes":1,"manufacturer":"x","model":"y"}"#.into()]),
        ("software", json!({}), vec![r#"{"os":"x","iis":"8.5","dotnet_release":378675,"java":null}"#.into(), r#"{"rows":["WAYMARK|12.0|Std"]}"#.into()]),
        ("replication_status", json!({}), vec![r#"{"member":"true"}"#.into()]),
        ("installed_products", json!({}), vec![r#"{"file":"f","names":["Inventory Solution"]}"#.into()]),
        ("dcom", json!({}), vec![r#"{"value":"Y"}"#.into()]),
        ("app_pools", json!({}), vec![r#"{"pools":[]}"#.into()]),
        ("smp_log_errors", json!({}), vec![r#"{"files":1,"errors":0,"warnings":0,"samples":[]}"#.into()]),
        ("agent_versions", json!({"target": "7.6"}), vec![r#"{"rows":["WAYMARK|3|7.5.3153.0|Symantec Management Agent"]}"#.into()]),
        ("list_policies", json!({}), vec![policy_row.clone()]),
        ("backup_ns", json!({}), vec![r#"{"path":"D:\\x","files":3}"#.into()]),
        ("backup_cmdb", json!({}), vec![r#"{"rows":["WAYMARK|100"]}"#.into()]),
        ("run_scheduled_task", json!({}), vec![r#"{"task":"NS.Package Refresh","last_result":0}"#.into()]),
        ("disable_policies", json!({}), vec![policy_row, format!(r#"{{"done":["{guid}"]}}"#)]),
        ("defragment_cmdb", json!({}), vec![r#"{"rows":["WAYMARK|1|2"]}"#.into()]),
        ("set_replication", json!({"enabled": false}), vec![r#"{"enabled":false}"#.into()]),
    ];
    let lab_src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/estates/windows.toml"),
    )
    .unwrap()
    .replace("driver = \"windows\"", "driver = \"lab\"");
    let dir = tempfile::tempdir().unwrap();
    let lab = crate::estate::LabEstate::new(
        Inventory::parse(&lab_src, "lab.toml").unwrap(),
        &crate::state::Store::dir(dir.path()),
    );
    let token = CancelToken::new();
    let log = |_: &str| {};
    let cx = OpContext {
        cancel: &token,
        log: &log,
        redactor: &crate::redact::Redactor::new(),
    };
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    for (op, args, replies) in cases {
        let replies: Vec<&str> = replies.iter().map(String::as_str).collect();
        let w = call_with(FakeTransport::new(&replies), op, "smp01", args.clone())
            .unwrap_or_else(|e| panic!("windows {op}: {e}"));
        let l = lab
            .call(op, "smp01", args.as_object().unwrap(), &cx)
            .unwrap_or_else(|e| panic!("lab {op}: {e}"));
        assert_eq!(
            keys(&w),
            keys(&l),
            "result keys of `{op}` differ between drivers"
        );
        for list in ["policies", "disabled"] {
            if let (Some(a), Some(b)) = (w[list].get(0), l[list].get(0)) {
                assert_eq!(keys(a), keys(b), "`{op}`.{list}[] keys differ");
            }
        }
    }
}

#[test]
fn hostile_path_arguments_are_refused_before_anything_runs() {
    let t = FakeTransport::new(&[]);
    let e = call_with(
        t.clone(),
        "backup_cmdb",
        "smp01",
        json!({"file": "D:\\x\"; -i evil.sql"}),
    )
    .unwrap_err();
    assert_eq!(e.kind(), "bad_args");
    assert!(t.seen.lock().unwrap().is_empty());
}
