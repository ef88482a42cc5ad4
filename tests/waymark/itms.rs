//! The shipped ITMS 7.5 -> 7.6 runbooks, run end to end through the binary against lab
//! estates: what they change, in which order, and that blockers stop them before any
//! change. Each test has its own temp dir and `--state-dir`, so its lab starts fresh.
//! Over 600 lines on purpose: the scenarios share the estate rules above them
//! (hierarchy order, replication, nothing mutated), and each reads as one operator's run;
//! the stdlib's own functions are tested in `itms_stdlib.rs`.

use crate::harness::{Output, Test};
use serde_json::Value;
use std::collections::BTreeMap;

/// Estate operations that change a server (docs/estate-ops.md, column "mutating").
const MUTATING: &[&str] = &[
    "backup_ns",
    "backup_kms",
    "backup_cmdb",
    "run_scheduled_task",
    "disable_policies",
    "enable_policies",
    "clone_policies",
    "set_replication",
    "ns_upgrade",
    "defragment_cmdb",
    "restore_cmdb",
    "migration_export",
    "migration_import",
    "apply_settings",
    "set_lac",
];

/// The NS hierarchy of the demo estate and of examples/estates/hierarchy.toml: child -> parent.
const PARENTS: &[(&str, &str)] = &[
    ("ns-emea", "ns-hq"),
    ("ns-emea-branch", "ns-emea"),
    ("ns-apac", "ns-hq"),
];
const HIERARCHY_NS: &[&str] = &["ns-hq", "ns-emea", "ns-emea-branch", "ns-apac"];

pub(crate) fn estate(name: &str) -> String {
    format!(
        "{}/examples/estates/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// Run the binary in `t`'s dir with `--state-dir st` appended.
pub(crate) fn wm(t: &Test, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend_from_slice(&["--state-dir", "st"]);
    cmd(t, &all)
}

/// Run the binary in `t`'s dir with exactly `args` (for commands without a state dir).
pub(crate) fn cmd(t: &Test, args: &[&str]) -> Output {
    let o = t.bare().args(args).output().unwrap();
    Output {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

/// `waymark run RUNBOOK --yes` plus `extra`.
pub(crate) fn run(t: &Test, runbook: &str, extra: &[&str]) -> Output {
    let mut args = vec!["run", runbook, "--yes"];
    args.extend_from_slice(extra);
    wm(t, &args)
}

/// `waymark lab show --json` for the demo estate or `inventory`.
pub(crate) fn lab(t: &Test, inventory: Option<&str>) -> Value {
    let mut args = vec!["lab", "show", "--json"];
    if let Some(i) = inventory {
        args.extend_from_slice(&["--inventory", i]);
    }
    let o = wm(t, &args);
    assert_eq!(o.code, 0, "{o:?}");
    serde_json::from_str(&o.stdout).unwrap()
}

pub(crate) fn events(doc: &Value) -> Vec<Value> {
    doc["events"].as_array().cloned().unwrap_or_default()
}

pub(crate) fn seq(e: &Value) -> u64 {
    e["seq"].as_u64().unwrap()
}

fn ok(e: &Value) -> bool {
    e["ok"] == true
}

/// Successful events of `op`, optionally on `server`.
pub(crate) fn ok_events<'a>(evs: &'a [Value], op: &str, server: Option<&str>) -> Vec<&'a Value> {
    evs.iter()
        .filter(|e| e["op"] == op && ok(e) && server.is_none_or(|s| e["server"] == s))
        .collect()
}

fn parent_of(ns: &str) -> Option<&'static str> {
    PARENTS.iter().find(|(c, _)| *c == ns).map(|(_, p)| *p)
}

fn children_of(ns: &str) -> Vec<&'static str> {
    PARENTS
        .iter()
        .filter(|(_, p)| *p == ns)
        .map(|(c, _)| *c)
        .collect()
}

fn descendants_of(ns: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    let mut todo = children_of(ns);
    while let Some(c) = todo.pop() {
        out.push(c);
        todo.extend(children_of(c));
    }
    out
}

/// Replication state of every server after each event, replayed from `set_replication`
/// events over the seed (on for every NS of a hierarchy).
fn replication_at(evs: &[Value], at_seq: u64) -> BTreeMap<String, bool> {
    let mut on: BTreeMap<String, bool> =
        HIERARCHY_NS.iter().map(|n| (n.to_string(), true)).collect();
    for e in evs.iter().filter(|e| seq(e) < at_seq) {
        if e["op"] == "set_replication" && ok(e) {
            let server = e["server"].as_str().unwrap().to_string();
            on.insert(server, e["enabled"] == true);
        }
    }
    on
}

pub(crate) fn assert_nothing_mutated(doc: &Value, why: &str) {
    let changed: Vec<String> = events(doc)
        .iter()
        .filter(|e| MUTATING.iter().any(|m| e["op"] == *m))
        .map(|e| format!("{} on {} (ok={})", e["op"], e["server"], e["ok"]))
        .collect();
    assert!(
        changed.is_empty(),
        "{why}: mutating operations reached the estate: {changed:?}"
    );
}

pub(crate) fn status_json(t: &Test) -> Value {
    let o = wm(t, &["status", "--json"]);
    assert_eq!(o.code, 0, "{o:?}");
    serde_json::from_str(&o.stdout).unwrap()
}

pub(crate) fn step_state<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in status"))
}

/// Asserts what ITMS.md demands of a hierarchy upgrade, from the lab's event log.
fn assert_hierarchy_upgrade_rules(doc: &Value) {
    let evs = events(doc);
    let upgraded_at = |ns: &str| -> u64 {
        let ups = ok_events(&evs, "ns_upgrade", Some(ns));
        assert_eq!(ups.len(), 1, "{ns} must be upgraded exactly once: {ups:?}");
        seq(ups[0])
    };
    for ns in HIERARCHY_NS {
        let at = upgraded_at(ns);
        // Children (and everything below) before the parent.
        for d in descendants_of(ns) {
            assert!(
                upgraded_at(d) < at,
                "{d} must be upgraded before its ancestor {ns}"
            );
        }
        // Replication off on the server, its parent and its children during the upgrade.
        let state = replication_at(&evs, at);
        let mut around = vec![*ns];
        around.extend(parent_of(ns));
        around.extend(children_of(ns));
        for n in around {
            assert_eq!(
                state.get(n),
                Some(&false),
                "replication on {n} must be off while {ns} is upgraded"
            );
        }
        // A CMDB backup of this server after its children were upgraded, before its own upgrade.
        let children_done = children_of(ns)
            .iter()
            .map(|c| upgraded_at(c))
            .max()
            .unwrap_or(0);
        let fresh = ok_events(&evs, "backup_cmdb", Some(ns))
            .iter()
            .any(|b| seq(b) > children_done && seq(b) < at);
        assert!(
            fresh,
            "{ns} needs a CMDB backup taken just before its upgrade"
        );
    }
    // Replication back on everywhere, after the last upgrade.
    let last_upgrade = HIERARCHY_NS.iter().map(|n| upgraded_at(n)).max().unwrap();
    let end = replication_at(&evs, u64::MAX);
    for ns in HIERARCHY_NS {
        assert_eq!(
            end.get(*ns),
            Some(&true),
            "replication on {ns} must be back on"
        );
        let back_on = ok_events(&evs, "set_replication", Some(ns))
            .iter()
            .any(|e| e["enabled"] == true && seq(e) > last_upgrade);
        assert!(
            back_on,
            "replication on {ns} is re-enabled after every server is at 7.6"
        );
        assert_eq!(doc["servers"][*ns]["version"], "7.6");
        assert_eq!(doc["servers"][*ns]["replication_enabled"], true);
    }
}

#[test]
fn every_itms_runbook_is_listed_with_a_description() {
    let t = Test::new();
    let o = cmd(&t, &["list"]);
    assert_eq!(o.code, 0, "{o:?}");
    for name in ["preflight", "onbox", "offbox", "hierarchy", "agents"] {
        let line = o
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("itms-7.6/{name} ")))
            .unwrap_or_else(|| panic!("itms-7.6/{name} missing from:\n{}", o.stdout));
        assert!(line.contains("ITMS 7.6") && line.contains(" — "), "{line}");
    }
}

#[test]
fn preflight_passes_on_the_demo_estate_without_changing_anything() {
    let t = Test::new();
    let o = run(&t, "itms-7.6/preflight", &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let doc = lab(&t, None);
    assert_nothing_mutated(&doc, "preflight is read-only");
    let evs = events(&doc);
    for ns in HIERARCHY_NS {
        assert!(
            !ok_events(&evs, "collation", Some(ns)).is_empty(),
            "collation of {ns} read"
        );
        assert!(
            !ok_events(&evs, "verify_version", Some(ns)).is_empty(),
            "version of {ns} read"
        );
    }
    // The demo's single gateway earns the "at least two gateways" advisory, not a failure.
    let s = status_json(&t);
    assert_eq!(s["status"], "succeeded");
    let log = wm(
        &t,
        &["log", s["run_id"].as_str().unwrap(), "preflight:verdict"],
    );
    assert!(
        log.stdout.contains("gw-01 is the only Internet gateway"),
        "{}",
        log.stdout
    );
}

#[test]
fn hierarchy_upgrades_the_demo_estate_bottom_up_with_replication_off_around_each_upgrade() {
    let t = Test::new();
    let o = run(&t, "itms-7.6/hierarchy", &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let doc = lab(&t, None);
    assert_hierarchy_upgrade_rules(&doc);
    // Agents and plug-ins followed, and exactly the policies enabled before are enabled again.
    for ns in HIERARCHY_NS {
        let s = &doc["servers"][*ns];
        for fleet in s["agents"].as_array().unwrap() {
            assert_eq!(fleet["agent"], "7.6", "{ns}: {fleet}");
            assert_eq!(fleet["plugin"], "7.6", "{ns}: {fleet}");
        }
        let off: Vec<&str> = s["policies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["enabled"] == false)
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            off,
            ["Task Service Plug-in for Site Servers - Upgrade"],
            "{ns}: the policy disabled before the run stays disabled, all others are back"
        );
    }
}

#[test]
fn hierarchy_example_estate_follows_the_same_rules() {
    let t = Test::new();
    let inv = estate("hierarchy");
    let o = run(&t, "itms-7.6/hierarchy", &["--inventory", &inv]);
    assert_eq!(o.code, 0, "{o:?}");
    assert_hierarchy_upgrade_rules(&lab(&t, Some(&inv)));
}

#[test]
fn hierarchy_disables_replication_with_an_undo_that_re_enables_it() {
    let t = Test::new();
    let o = cmd(&t, &["plan", "itms-7.6/hierarchy", "--format", "json"]);
    assert_eq!(o.code, 0, "{o:?}");
    let plan: Value = serde_json::from_str(&o.stdout).unwrap();
    let steps = plan["steps"].as_array().unwrap();
    let wave_of = |name: &str| {
        steps
            .iter()
            .find(|s| s["name"] == name)
            .unwrap_or_else(|| panic!("no step {name}"))["wave"]
            .as_u64()
            .unwrap()
    };
    let last_off = HIERARCHY_NS
        .iter()
        .map(|n| wave_of(&format!("hierarchy:replication-off:{n}")))
        .max()
        .unwrap();
    for s in steps {
        let name = s["name"].as_str().unwrap();
        if name.starts_with("upgrade:") {
            assert!(
                s["wave"].as_u64().unwrap() > last_off,
                "{name} runs before replication is off everywhere"
            );
        }
    }
    let src = cmd(&t, &["plan", "itms-7.6/hierarchy"]);
    assert!(
        src.stdout
            .contains("Disable hierarchy replication on ns-hq")
            && src.stdout.contains("has undo"),
        "{}",
        src.stdout
    );
}

#[test]
fn onbox_upgrades_one_server_of_the_demo_estate() {
    let t = Test::new();
    let o = run(&t, "itms-7.6/onbox", &["--param", "server=ns-emea-branch"]);
    assert_eq!(o.code, 0, "{o:?}");
    let doc = lab(&t, None);
    let evs = events(&doc);
    assert_eq!(doc["servers"]["ns-emea-branch"]["version"], "7.6");
    assert_eq!(
        doc["servers"]["ns-emea"]["version"], "7.5 SP1 HF5",
        "only the named server"
    );
    let ups = ok_events(&evs, "ns_upgrade", None);
    assert_eq!(ups.len(), 1, "{ups:?}");
    let at = seq(ups[0]);
    assert!(ok_events(&evs, "backup_cmdb", Some("ns-emea-branch"))
        .iter()
        .any(|b| seq(b) < at));
    assert!(ok_events(&evs, "backup_ns", Some("ns-emea-branch"))
        .iter()
        .any(|b| seq(b) < at));
    assert!(
        ok_events(&evs, "run_scheduled_task", Some("ns-emea-branch"))
            .iter()
            .any(|b| seq(b) < at)
    );
    assert!(ok_events(&evs, "disable_policies", Some("ns-emea-branch"))
        .iter()
        .any(|b| seq(b) < at));
    let state = replication_at(&evs, at);
    assert!(!state["ns-emea-branch"], "replication off on the server");
    assert!(!state["ns-emea"], "the parent's replication is off too");
    // 7.5 and 7.6 cannot replicate: with its parent still at 7.5, replication stays off.
    assert_eq!(
        doc["servers"]["ns-emea-branch"]["replication_enabled"],
        false
    );
    assert!(
        o.stderr.contains("run ") && o.stderr.contains("succeeded"),
        "{}",
        o.stderr
    );
    assert!(ok_events(&evs, "defragment_cmdb", Some("ns-emea-branch"))
        .iter()
        .any(|b| seq(b) > at));
}

#[test]
fn onbox_on_a_single_ns_needs_no_server_parameter_and_restores_its_policies() {
    let t = Test::new();
    let inv = estate("single-ns");
    let o = run(&t, "itms-7.6/onbox", &["--inventory", &inv]);
    assert_eq!(o.code, 0, "{o:?}");
    let doc = lab(&t, Some(&inv));
    let ns = &doc["servers"]["ns-01"];
    assert_eq!(ns["version"], "7.6");
    assert_eq!(ns["lac_enabled"], true);
    let evs = events(&doc);
    // Step 4 disabled exactly what was enabled; steps 16-17 enabled exactly that again.
    let disabled = ok_events(&evs, "disable_policies", Some("ns-01"));
    assert_eq!(disabled.len(), 1);
    let mut enabled: Vec<String> = ok_events(&evs, "enable_policies", Some("ns-01"))
        .iter()
        .flat_map(|e| e["ids"].as_array().cloned().unwrap_or_default())
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let mut were_on: Vec<String> = disabled[0]["disabled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    enabled.sort();
    were_on.sort();
    assert_eq!(enabled, were_on);
    // Site servers first, then the cloned test group, then the originals for everyone.
    let first_enable = seq(ok_events(&evs, "enable_policies", Some("ns-01"))[0]);
    let clone = seq(ok_events(&evs, "clone_policies", Some("ns-01"))[0]);
    let last_enable = seq(ok_events(&evs, "enable_policies", Some("ns-01"))
        .last()
        .unwrap());
    assert!(first_enable < clone && clone < last_enable);
    for fleet in ns["agents"].as_array().unwrap() {
        assert_eq!(fleet["agent"], "7.6", "{fleet}");
    }
}

#[test]
fn a_transient_backup_fault_is_survived_by_retries() {
    let t = Test::new();
    let inv = estate("transient-fault");
    let o = run(&t, "itms-7.6/onbox", &["--inventory", &inv]);
    assert_eq!(o.code, 0, "{o:?}");
    let doc = lab(&t, Some(&inv));
    let backups: Vec<Value> = events(&doc)
        .into_iter()
        .filter(|e| e["op"] == "backup_cmdb")
        .collect();
    assert_eq!(backups.len(), 2, "{backups:?}");
    assert_eq!(backups[0]["ok"], false);
    assert_eq!(backups[0]["error_kind"], "transient");
    assert_eq!(backups[1]["ok"], true);
    let s = status_json(&t);
    assert_eq!(step_state(&s, "onbox:ns-hq:backup-cmdb")["attempts"], 2);
    assert_eq!(doc["servers"]["ns-hq"]["version"], "7.6");
}

#[test]
fn blockers_stop_every_changing_runbook_before_any_change() {
    // (estate, runbook, params, the server the message must name, what it must say)
    let cases: &[(&str, &str, &[&str], &str, &str)] = &[
        (
            "collation-mismatch",
            "itms-7.6/hierarchy",
            &[],
            "ns-emea",
            "collation",
        ),
        (
            "collation-mismatch",
            "itms-7.6/onbox",
            &["--param", "server=ns-emea"],
            "ns-emea",
            "collation",
        ),
        (
            "old-hotfix",
            "itms-7.6/hierarchy",
            &[],
            "ns-apac",
            "7.5 SP1 HF3",
        ),
        (
            "old-hotfix",
            "itms-7.6/onbox",
            &["--param", "server=ns-apac"],
            "ns-apac",
            "7.5 SP1 HF3",
        ),
        (
            "old-hotfix",
            "itms-7.6/offbox",
            &["--param", "source=ns-apac"],
            "ns-apac",
            "7.5 SP1 HF3",
        ),
        ("low-disk", "itms-7.6/onbox", &[], "ns-01", "GB free"),
    ];
    for (estate_name, runbook, params, server, says) in cases {
        let t = Test::new();
        let inv = estate(estate_name);
        let mut extra = vec!["--inventory", inv.as_str()];
        extra.extend_from_slice(params);
        let o = run(&t, runbook, &extra);
        let what = format!("{runbook} on {estate_name}");
        assert_eq!(o.code, 1, "{what}: {o:?}");
        let out = format!("{}{}", o.stdout, o.stderr);
        let blocker_line = out
            .lines()
            .find(|l| l.contains(server) && l.contains(says))
            .unwrap_or_else(|| panic!("{what}: no line names {server} and '{says}':\n{out}"));
        assert!(!blocker_line.is_empty());
        assert!(out.contains("fix:"), "{what}: the fix is named:\n{out}");
        assert_nothing_mutated(&lab(&t, Some(&inv)), &what);
        let s = status_json(&t);
        assert_eq!(
            step_state(&s, "preflight:verdict")["state"],
            "failed",
            "{what}"
        );
    }
}

#[test]
fn the_collation_blocker_also_names_the_parent_mismatch() {
    let t = Test::new();
    let inv = estate("collation-mismatch");
    let o = run(&t, "itms-7.6/preflight", &["--inventory", &inv]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains(
            "ns-emea: the CMDB collation Latin1_General_CI_AS differs from its parent ns-hq"
        ),
        "{}",
        o.stderr
    );
}

#[test]
fn offbox_migrates_to_a_new_server_with_product_parity() {
    let t = Test::new();
    let inv = estate("offbox");
    let o = run(
        &t,
        "itms-7.6/offbox",
        &[
            "--inventory",
            &inv,
            "--param",
            "source=ns-old",
            "--param",
            "target=ns-new",
        ],
    );
    assert_eq!(o.code, 0, "{o:?}");
    let doc = lab(&t, Some(&inv));
    let evs = events(&doc);
    let export = ok_events(&evs, "migration_export", Some("ns-old"));
    let import = ok_events(&evs, "migration_import", Some("ns-new"));
    assert_eq!((export.len(), import.len()), (1, 1));
    assert!(seq(export[0]) < seq(import[0]));
    let backup = ok_events(&evs, "backup_cmdb", Some("ns-old"));
    assert!(
        backup.iter().any(|b| seq(b) < seq(export[0])),
        "CMDB backed up before the export"
    );
    assert_eq!(doc["servers"]["ns-new"]["imported_from"], "ns-old");
    assert_eq!(
        doc["servers"]["ns-new"]["lac_enabled"], true,
        "LAC on for the 7.5 agents"
    );
    assert_eq!(
        doc["servers"]["ns-old"]["version"], "7.5 SP1 HF5",
        "the old server is left alone"
    );
}

#[test]
fn offbox_onto_the_same_host_name_restores_the_cmdb_when_asked() {
    let t = Test::new();
    let inv = estate("single-ns");
    let o = run(
        &t,
        "itms-7.6/offbox",
        &["--inventory", &inv, "--param", "restore_cmdb=yes"],
    );
    assert_eq!(o.code, 0, "{o:?}");
    let doc = lab(&t, Some(&inv));
    let evs = events(&doc);
    let restore = ok_events(&evs, "restore_cmdb", Some("ns-01"));
    assert_eq!(restore.len(), 1, "{evs:?}");
    let import = ok_events(&evs, "migration_import", Some("ns-01"));
    assert!(seq(restore[0]) < seq(import[0]));
    assert_eq!(doc["servers"]["ns-01"]["version"], "7.6");
}

#[test]
fn offbox_of_a_hierarchy_leaf_turns_replication_off_first() {
    let t = Test::new();
    let o = run(&t, "itms-7.6/offbox", &["--param", "source=ns-emea-branch"]);
    assert_eq!(o.code, 0, "{o:?}");
    let evs = events(&lab(&t, None));
    let export = seq(ok_events(&evs, "migration_export", Some("ns-emea-branch"))[0]);
    let state = replication_at(&evs, export);
    assert_eq!((state["ns-emea-branch"], state["ns-emea"]), (false, false));
}

#[test]
fn agents_runbook_upgrades_agents_after_the_servers_test_group_first() {
    let t = Test::new();
    let o = run(&t, "itms-7.6/hierarchy", &["--param", "agents=later"]);
    assert_eq!(o.code, 0, "{o:?}");
    let before = lab(&t, None);
    assert!(ok_events(&events(&before), "clone_policies", None).is_empty());
    for fleet in before["servers"]["ns-hq"]["agents"].as_array().unwrap() {
        assert_eq!(
            fleet["agent"], "7.5",
            "agents wait for the agents runbook: {fleet}"
        );
    }
    let o = run(&t, "itms-7.6/agents", &[]);
    assert_eq!(o.code, 0, "{o:?}");
    let after = lab(&t, None);
    let evs = events(&after);
    for ns in HIERARCHY_NS {
        let enables = ok_events(&evs, "enable_policies", Some(ns));
        let clone = seq(ok_events(&evs, "clone_policies", Some(ns))[0]);
        assert!(
            seq(enables[0]) < clone,
            "{ns}: site servers before the test group"
        );
        assert!(
            seq(enables.last().unwrap()) > clone,
            "{ns}: everyone after the test group"
        );
        for fleet in after["servers"][*ns]["agents"].as_array().unwrap() {
            assert_eq!(fleet["agent"], "7.6", "{ns}: {fleet}");
            assert_eq!(
                fleet["plugin"], fleet["agent"],
                "{ns}: agent and plug-in match"
            );
        }
    }
}

#[test]
fn agents_runbook_refuses_servers_still_at_7_5() {
    let t = Test::new();
    let o = run(&t, "itms-7.6/agents", &["--param", "server=ns-apac"]);
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("ns-apac does not run 7.6 yet"),
        "{}",
        o.stderr
    );
    assert_nothing_mutated(&lab(&t, None), "agents before the servers");
}

#[test]
fn dry_run_on_windows_shows_the_backup_tsql_the_collation_query_and_the_replication_call() {
    let t = Test::new();
    let inv = estate("windows");
    let o = wm(
        &t,
        &[
            "run",
            "itms-7.6/hierarchy",
            "--dry-run",
            "--inventory",
            &inv,
            "--param",
            "expected_build=7.5.3153.0",
        ],
    );
    assert_eq!(o.code, 0, "{o:?}");
    for needle in [
        "BACKUP DATABASE [Symantec_CMDB]",
        "RESTORE VERIFYONLY",
        "SERVERPROPERTY(''Collation'')",
        "HierarchyManagementService.asmx/EnableHierarchyReplication",
        // Each site server verified on its own NS's CMDB before the clients.
        "agents:smp01:site-server:pkg-lon-01",
        "WHERE vc.Name = N''pkg-lon-01''",
        // A gate's instructions quote the vendor guide word for word.
        "12. Click Begin install to start the upgrade",
        "On the \"Install Readiness Check\" page, resolve the requirements that are marked with a red icon, and then click Next",
    ] {
        assert!(o.stdout.contains(needle), "dry run lacks {needle}:\n{}", o.stdout);
    }
    assert!(
        !t.path().join("st/runs").exists(),
        "a dry run records no run"
    );
}

#[test]
fn hostile_host_names_in_an_inventory_are_rejected() {
    for name in ["ns-01;calc", "ns$(whoami)", "ns`id`", "ns-01' -or '1"] {
        let toml = format!(
            "name = \"evil\"\ndriver = \"windows\"\n[[server]]\nname = {}\nrole = \"ns\"\nsql = \"sql01\"\n",
            toml_string(name)
        );
        let t = Test::new().file("evil.toml", &toml);
        for args in [
            &["check", "itms-7.6/preflight", "--inventory", "evil.toml"][..],
            &[
                "run",
                "itms-7.6/preflight",
                "--inventory",
                "evil.toml",
                "--state-dir",
                "st",
            ][..],
        ] {
            let o = cmd(&t, args);
            assert_eq!(o.code, 2, "{args:?} with server {name:?}: {o:?}");
            assert!(o.stderr.contains("evil.toml:4:"), "{}", o.stderr);
        }
    }
}

#[test]
fn hostile_server_and_path_parameters_are_rejected_at_load() {
    let t = Test::new();
    let o = wm(
        &t,
        &[
            "run",
            "itms-7.6/onbox",
            "--yes",
            "--param",
            "server=ns-hq\"; calc; \"",
        ],
    );
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains("not a Notification Server"),
        "{}",
        o.stderr
    );
    let o = wm(
        &t,
        &[
            "run",
            "itms-7.6/onbox",
            "--yes",
            "--param",
            "server=ns-apac",
            "--param",
            "backup_dir=D:\\x\"; calc",
        ],
    );
    assert_eq!(o.code, 2, "{o:?}");
    assert!(
        o.stderr.contains("a Windows path cannot contain"),
        "{}",
        o.stderr
    );
    assert!(
        !t.path().join("st/lab").exists(),
        "nothing touched the estate"
    );
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn journal_records(t: &Test) -> u64 {
    let runs = t.path().join("st/runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::read_to_string(run.join("journal.jsonl"))
        .unwrap()
        .lines()
        .count() as u64
}

#[test]
fn a_rehearsal_killed_anywhere_resumes_without_an_operator_decision() {
    let inv = estate("single-ns");
    let clean = Test::new();
    let o = run(&clean, "itms-7.6/onbox", &["--inventory", &inv]);
    assert_eq!(o.code, 0, "{o:?}");
    let total = journal_records(&clean);
    let policies_after = |t: &Test| -> Vec<(String, bool)> {
        lab(t, Some(&inv))["servers"]["ns-01"]["policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    p["enabled"] == true,
                )
            })
            .collect()
    };
    let expected = policies_after(&clean);
    // Every ninth journal record keeps the sweep short while hitting every kind of
    // boundary: inside backups, policy steps, gates, replication and agent steps.
    for n in (3..total).step_by(9) {
        let t = Test::new();
        let crashed = t
            .bare()
            .args([
                "run",
                "itms-7.6/onbox",
                "--yes",
                "--inventory",
                &inv,
                "--state-dir",
                "st",
            ])
            .env("WAYMARK_CRASH_AFTER_SEQ", n.to_string())
            .output()
            .unwrap();
        assert_eq!(crashed.status.code(), None, "crash point {n}: not killed");
        let r = wm(&t, &["resume", "--yes"]);
        assert_eq!(
            r.code, 0,
            "crash point {n}: resume needed a decision or failed: {r:?}"
        );
        assert!(
            !r.stderr.contains("BLOCKER"),
            "crash point {n}: the resume called something a blocker yet went on: {}",
            r.stderr
        );
        let doc = lab(&t, Some(&inv));
        let upgrades: Vec<Value> = events(&doc)
            .into_iter()
            .filter(|e| e["op"] == "ns_upgrade" && e["changed"] == true)
            .collect();
        assert_eq!(upgrades.len(), 1, "crash point {n}: upgraded exactly once");
        assert_eq!(doc["servers"]["ns-01"]["version"], "7.6");
        assert_eq!(
            policies_after(&t),
            expected,
            "crash point {n}: policies restored as in a clean run"
        );
        assert_eq!(status_json(&t)["status"], "succeeded", "crash point {n}");
    }
}

#[test]
fn preflight_judges_every_example_estate() {
    // (estate, exit code, a server that must be named when it fails)
    let cases = [
        ("single-ns", 0, ""),
        ("hierarchy", 0, ""),
        ("offbox", 0, ""),
        ("transient-fault", 0, ""),
        // Ready for the upgrade: its faulty site server matters only to the agents.
        ("site-servers", 0, ""),
        ("collation-mismatch", 1, "ns-emea"),
        ("old-hotfix", 1, "ns-apac"),
        ("low-disk", 1, "ns-01"),
    ];
    for (name, code, server) in cases {
        let t = Test::new();
        let inv = estate(name);
        let o = run(&t, "itms-7.6/preflight", &["--inventory", &inv]);
        assert_eq!(o.code, code, "preflight on {name}: {o:?}");
        if code != 0 {
            assert!(
                o.stderr.contains(&format!("- {server}:"))
                    || o.stderr.contains(&format!("`{server}` runs")),
                "preflight on {name} names {server}: {}",
                o.stderr
            );
        }
        assert_nothing_mutated(&lab(&t, Some(&inv)), name);
    }
}
