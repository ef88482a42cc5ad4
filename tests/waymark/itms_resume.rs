//! Resuming the shipped ITMS runbooks part-way through, as an operator would after a
//! failure: the preflight judged the estate before the run changed it, so the resumed
//! run must not call the servers it upgraded itself blockers (a `BLOCKER` line that
//! blocks nothing), while a blocker found before any change still stops the resumed run
//! before any change — also one that appeared meanwhile.

use crate::harness::Test;
use crate::itms::{assert_nothing_mutated, estate, events, lab, run, status_json, step_state, wm};

/// The example estate `name` with the line `fact` in `server`'s `[server.lab]`.
fn with_lab_fact(name: &str, server: &str, fact: &str) -> String {
    let text = std::fs::read_to_string(estate(name)).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let start = lines
        .iter()
        .position(|l| l.trim_start().starts_with(&format!("name = \"{server}\"")))
        .unwrap_or_else(|| panic!("no server {server} in {name}"));
    let end = (start..lines.len())
        .find(|&i| lines[i].trim_start().starts_with("[[server]]"))
        .unwrap_or(lines.len());
    match (start..end).find(|&i| lines[i].trim_start().starts_with("[server.lab]")) {
        Some(lab) => lines.insert(lab + 1, fact.to_string()),
        None => lines
            .splice(end..end, ["[server.lab]".to_string(), fact.to_string()])
            .for_each(drop),
    }
    lines.join("\n") + "\n"
}

/// The example estate `name` where the lab fails the first TIMES calls of `op` on
/// `server` (transient), so a run stops there.
fn with_fault(name: &str, server: &str, op: &str, times: u32) -> String {
    with_lab_fact(name, server, &format!("fail = {{ {op} = {times} }}"))
}

/// Lines of `text` that report a blocker.
fn blocker_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains("BLOCKER")).collect()
}

/// A shipped runbook stopped by a lab fault after its upgrades.
struct Case {
    runbook: &'static str,
    estate: &'static str,
    /// The server whose operation fails.
    server: &'static str,
    /// The operation that fails after the upgrades, and how many times.
    fault: (&'static str, u32),
    /// The servers the first run upgrades before it stops.
    upgraded: &'static [&'static str],
}

#[test]
fn a_resume_after_the_upgrades_reports_no_blocker_for_servers_the_run_upgraded() {
    for case in [
        Case {
            runbook: "itms-7.6/hierarchy",
            estate: "hierarchy",
            server: "ns-hq",
            fault: ("defragment_cmdb", 2),
            upgraded: &["ns-emea-branch", "ns-emea", "ns-apac", "ns-hq"],
        },
        Case {
            runbook: "itms-7.6/onbox",
            estate: "single-ns",
            server: "ns-01",
            fault: ("defragment_cmdb", 2),
            upgraded: &["ns-01"],
        },
        // Off-box onto the same host name: the source's name now answers 7.6.
        Case {
            runbook: "itms-7.6/offbox",
            estate: "single-ns",
            server: "ns-01",
            fault: ("set_lac", 1),
            upgraded: &["ns-01"],
        },
    ] {
        let Case {
            runbook,
            estate: name,
            server,
            fault: (op, times),
            upgraded,
        } = case;
        let what = format!("{runbook} on {name}");
        let t = Test::new().file("inv.toml", &with_fault(name, server, op, times));
        let first = run(&t, runbook, &["--inventory", "inv.toml"]);
        assert_eq!(
            first.code, 1,
            "{what}: the injected fault stops the run: {first:?}"
        );
        let doc = lab(&t, Some("inv.toml"));
        for ns in upgraded {
            assert_eq!(
                doc["servers"][ns]["version"], "7.6",
                "{what}: the first run upgraded {ns} before it stopped"
            );
        }

        let resumed = wm(&t, &["resume", "--yes"]);
        assert_eq!(resumed.code, 0, "{what}: {resumed:?}");
        let out = format!("{}{}", resumed.stdout, resumed.stderr);
        assert_eq!(
            blocker_lines(&out),
            Vec::<&str>::new(),
            "{what}: the resumed run reported blockers:\n{out}"
        );
        assert!(
            !out.contains("▶ preflight:"),
            "{what}: the preflight passed before the first change and ran again:\n{out}"
        );
        let s = status_json(&t);
        assert_eq!(s["status"], "succeeded", "{what}");
        assert_eq!(step_state(&s, "preflight:verdict")["attempts"], 1, "{what}");
        let run_id = s["run_id"].as_str().unwrap();
        let log = wm(&t, &["log", run_id, &format!("preflight:{server}")]);
        assert_eq!(log.code, 0, "{what}: {log:?}");
        assert_eq!(blocker_lines(&log.stdout), Vec::<&str>::new(), "{what}");

        let evs = events(&lab(&t, Some("inv.toml")));
        for ns in upgraded {
            let upgrades = evs
                .iter()
                .filter(|e| e["op"] == "ns_upgrade" && e["server"] == *ns && e["changed"] == true)
                .count();
            assert_eq!(upgrades, 1, "{what}: {ns} upgraded exactly once");
        }
    }
}

#[test]
fn a_blocker_still_stops_the_resumed_run_before_any_change() {
    // ns-hq is short of disk: the first run stops at the verdict, having changed nothing.
    let low_disk = with_lab_fact("hierarchy", "ns-hq", "disk_free_gb = 4");
    let t = Test::new().file("inv.toml", &low_disk);
    let first = run(&t, "itms-7.6/hierarchy", &["--inventory", "inv.toml"]);
    assert_eq!(first.code, 1, "{first:?}");
    assert!(
        first.stderr.contains("- ns-hq: only 4.0 GB free"),
        "{}",
        first.stderr
    );
    assert_nothing_mutated(&lab(&t, Some("inv.toml")), "the blocked run");

    // The operator frees the disk; meanwhile someone upgraded ns-apac outside this run.
    let apac_at_76 = with_lab_fact("hierarchy", "ns-apac", "version = \"7.6\"");
    std::fs::write(t.path().join("inv.toml"), apac_at_76).unwrap();
    let reset = wm(&t, &["lab", "reset", "--inventory", "inv.toml"]);
    assert_eq!(reset.code, 0, "{reset:?}");

    let resumed = wm(&t, &["resume", "--yes"]);
    assert_eq!(resumed.code, 1, "{resumed:?}");
    let err = &resumed.stderr;
    assert!(
        err.contains("preflight:ns-apac: fresh (it only reads): running it again so preflight:verdict, still to run, sees today's facts"),
        "{err}"
    );
    assert!(
        err.contains("BLOCKER: ns-apac: already runs 7.6"),
        "the probe reports it: {err}"
    );
    assert!(
        err.contains("- ns-apac: already runs 7.6"),
        "the verdict fails on it: {err}"
    );
    assert!(!err.contains("GB free"), "the fixed blocker is gone: {err}");
    let s = status_json(&t);
    assert_eq!(step_state(&s, "preflight:verdict")["state"], "failed");
    assert_nothing_mutated(&lab(&t, Some("inv.toml")), "the resumed run");
}
