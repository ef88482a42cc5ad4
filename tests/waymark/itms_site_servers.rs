//! The agents runbooks' site-server rollout, rehearsed on `examples/estates/site-servers.toml`:
//! each site server an NS manages is verified on its own after the site-server policies
//! and before any client policy of that NS; one that does not take the upgrade stops its
//! NS's clients when over `site_server_failures`, and `resume`, once the lab fact is
//! fixed, checks only that site server again before the clients go on.

use crate::harness::Test;
use crate::itms::{cmd, estate, events, ok_events, run, seq, step_state, wm};
use serde_json::Value;

/// The site servers of the estate, by NS.
const SITES: &[(&str, &str)] = &[
    ("ns-hq", "pkg-hq-01"),
    ("ns-hq", "pkg-hq-02"),
    ("ns-hq", "pkg-hq-03"),
    ("ns-emea", "pkg-emea-01"),
];

/// A test dir holding the estate as `inv.toml` (pkg-hq-02 does not take the upgrade),
/// its servers already at 7.6 with agents left for `itms-7.6/agents`.
fn servers_upgraded() -> Test {
    let text = std::fs::read_to_string(estate("site-servers")).unwrap();
    assert!(text.contains("agent_upgrade_fails = true"));
    let t = Test::new().file("inv.toml", &text);
    let o = run(
        &t,
        "itms-7.6/hierarchy",
        &["--inventory", "inv.toml", "--param", "agents=later"],
    );
    assert_eq!(o.code, 0, "{o:?}");
    t
}

fn lab_events(t: &Test) -> Vec<Value> {
    let o = wm(t, &["lab", "show", "--json", "--inventory", "inv.toml"]);
    assert_eq!(o.code, 0, "{o:?}");
    events(&serde_json::from_str(&o.stdout).unwrap())
}

/// `agent_versions` calls on `ns` about one site server.
fn site_checks<'a>(evs: &'a [Value], ns: &str, site: &str) -> Vec<&'a Value> {
    ok_events(evs, "agent_versions", Some(ns))
        .into_iter()
        .filter(|e| e["computer"] == site)
        .collect()
}

/// The journal of run `id`, one record per line.
fn journal(t: &Test, id: &str) -> Vec<Value> {
    std::fs::read_to_string(t.path().join("st/runs").join(id).join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Item steps of the site-server rollouts that `records` start.
fn items_started(records: &[Value]) -> Vec<String> {
    records
        .iter()
        .filter(|v| v["type"] == "step_started")
        .filter_map(|v| v["step"].as_str().map(str::to_string))
        .filter(|s| s.contains(":site-server:") && !s.contains(":batch-"))
        .collect()
}

/// `status RUN --json` (not the latest run: two runs may start in the same second).
fn status_of(t: &Test, id: &str) -> Value {
    let o = wm(t, &["status", id, "--json"]);
    assert_eq!(o.code, 0, "{o:?}");
    serde_json::from_str(&o.stdout).unwrap()
}

/// Run `runbook` with `extra` and return its output and run id.
fn run_new(t: &Test, runbook: &str, extra: &[&str]) -> (crate::harness::Output, String) {
    let earlier = run_ids(t);
    let o = run(t, runbook, extra);
    // (ids sort by second, then at random: the new one is the one not there before)
    let id = run_ids(t)
        .into_iter()
        .find(|i| !earlier.contains(i))
        .unwrap_or_else(|| panic!("no new run: {o:?}"));
    (o, id)
}

fn run_ids(t: &Test) -> Vec<String> {
    std::fs::read_dir(t.path().join("st/runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn a_site_server_over_the_budget_keeps_its_clients_waiting_until_resume_checks_it_again() {
    let t = servers_upgraded();
    let (o, id) = run_new(&t, "itms-7.6/agents", &["--inventory", "inv.toml"]);
    assert_eq!(o.code, 1, "{o:?}");
    // The item names the machine and the fix; the barrier the budget and the command.
    assert!(
        o.stderr.contains("site server pkg-hq-02 is not at 7.6")
            && o.stderr
                .contains("only the site servers that failed are checked again"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains(
            "rollout `agents:ns-hq:site-server` is over its failure budget after batch 1 of 1: 1 of 3 items failed, max_failures 0 allows 0 (agents:ns-hq:site-server:pkg-hq-02)"
        ),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("waymark resume"), "{}", o.stderr);
    let st = status_of(&t, &id);
    assert_eq!(
        step_state(&st, "agents:ns-hq:site-server:pkg-hq-02")["state"],
        "failed"
    );
    for ok in ["pkg-hq-01", "pkg-hq-03"] {
        assert_eq!(
            step_state(&st, &format!("agents:ns-hq:site-server:{ok}"))["state"],
            "succeeded"
        );
    }
    // Site servers before clients: ns-hq's site servers were checked after its
    // site-server policies, and no client policy of ns-hq was touched.
    let evs = lab_events(&t);
    let site_enable = seq(ok_events(&evs, "enable_policies", Some("ns-hq"))[0]);
    for (_, site) in SITES.iter().filter(|(ns, _)| *ns == "ns-hq") {
        let checks = site_checks(&evs, "ns-hq", site);
        assert!(!checks.is_empty(), "{site} checked");
        assert!(
            checks.iter().all(|e| seq(e) > site_enable),
            "{site} after the policies"
        );
    }
    assert!(ok_events(&evs, "clone_policies", Some("ns-hq")).is_empty());
    assert_eq!(ok_events(&evs, "enable_policies", Some("ns-hq")).len(), 1);
    let not_done: Vec<String> = SITES
        .iter()
        .map(|(ns, site)| format!("agents:{ns}:site-server:{site}"))
        .filter(|s| step_state(&st, s)["state"] != "succeeded")
        .collect();

    // The machine is fixed: the lab fact is read at each call, no `lab reset` needed.
    let fixed = t
        .read("inv.toml")
        .replace("agent_upgrade_fails = true", "agent_upgrade_fails = false");
    std::fs::write(t.path().join("inv.toml"), fixed).unwrap();
    let before = journal(&t, &id).len();
    let o = wm(&t, &["resume", &id, "--yes"]);
    assert_eq!(o.code, 0, "{o:?}");
    // Only the failed item and the items that had not started ran again.
    let mut again = items_started(&journal(&t, &id)[before..]);
    again.sort();
    let mut want = not_done.clone();
    want.sort();
    assert_eq!(again, want);
    assert!(again.contains(&"agents:ns-hq:site-server:pkg-hq-02".to_string()));
    let evs = lab_events(&t);
    for (ns, site) in SITES {
        let last_check = site_checks(&evs, ns, site)
            .iter()
            .map(|e| seq(e))
            .max()
            .unwrap_or_else(|| panic!("{site} checked"));
        let clone = seq(ok_events(&evs, "clone_policies", Some(ns))[0]);
        assert!(
            last_check < clone,
            "{ns}: {site} verified before the clients"
        );
    }
    let o = wm(&t, &["lab", "show", "--json", "--inventory", "inv.toml"]);
    let doc: Value = serde_json::from_str(&o.stdout).unwrap();
    for ns in ["ns-hq", "ns-emea"] {
        for fleet in doc["servers"][ns]["agents"].as_array().unwrap() {
            assert_eq!(fleet["agent"], "7.6", "{ns}: {fleet}");
        }
    }
    assert_eq!(
        doc["servers"]["ns-hq"]["site_servers"]["pkg-hq-02"]["agent"],
        "7.6"
    );
}

#[test]
fn within_the_budget_the_clients_go_on_and_the_run_still_names_the_site_server() {
    let t = servers_upgraded();
    let (o, id) = run_new(
        &t,
        "itms-7.6/agents",
        &[
            "--inventory",
            "inv.toml",
            "--param",
            "site_server_failures=1",
        ],
    );
    assert_eq!(o.code, 1, "{o:?}");
    let failed_line = o
        .stderr
        .lines()
        .find(|l| l.starts_with("run ") && l.contains(" failed: "))
        .unwrap_or_else(|| panic!("{}", o.stderr));
    assert!(
        failed_line.ends_with(" failed: agents:ns-hq:site-server:pkg-hq-02"),
        "{failed_line}"
    );
    // The filter-wide check allows the one site server already counted, and says so.
    assert!(
        o.stderr
            .contains("within the failure budget: agents:ns-hq:site-server:pkg-hq-02"),
        "{}",
        o.stderr
    );
    let evs = lab_events(&t);
    let clone = seq(ok_events(&evs, "clone_policies", Some("ns-hq"))[0]);
    assert!(site_checks(&evs, "ns-hq", "pkg-hq-02")
        .iter()
        .all(|e| seq(e) < clone));
    let st = status_of(&t, &id);
    assert_eq!(step_state(&st, "agents:ns-hq:report")["state"], "succeeded");
}

#[test]
fn a_budget_that_is_neither_a_count_nor_a_percentage_is_refused_at_load() {
    let t = Test::new();
    for bad in ["lots", "-1", "150%"] {
        let o = cmd(
            &t,
            &[
                "check",
                "itms-7.6/agents",
                "--inventory",
                &estate("site-servers"),
                "--param",
                &format!("site_server_failures={bad}"),
            ],
        );
        assert_eq!(o.code, 2, "{bad}: {o:?}");
        assert!(
            o.stderr
                .contains(&format!("--param site_server_failures={bad}")),
            "{bad}: {}",
            o.stderr
        );
    }
}
