//! `rollout()` through the binary: batches in order and of the declared sizes, the
//! failure budget stopping later batches, concurrency inside a batch, a gate between
//! batches, a crash mid-batch, and `resume` re-running only the failed items.

use crate::harness::{step, wait_until, Test};

/// The journal's records of the latest run, in order.
fn journal(t: &Test) -> Vec<serde_json::Value> {
    std::fs::read_to_string(t.run_dir().join("journal.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Steps in the order the journal records `kind` for them.
fn order(t: &Test, kind: &str) -> Vec<String> {
    journal(t)
        .into_iter()
        .filter(|v| v["type"] == kind)
        .map(|v| v["step"].as_str().unwrap().to_string())
        .collect()
}

/// A runbook with a rollout over `items` (x1..xN) whose items fail while a file
/// `broken-ITEM` exists; every item run appends its name to `ran`.
fn fleet(n: usize, opts: &str) -> String {
    let items: Vec<String> = (1..=n).map(|i| format!("\"x{i}\"")).collect();
    format!(
        r#"runbook(#{{ name: "fleet", description: "a rollout" }});
let done = rollout("fleet", [{}], #{{
    {opts}
    run: |ctx, item| {{
        sh(`echo ${{item}} >> ran`);
        if sh(`test -f broken-${{item}}`, #{{ check: false }}).code == 0 {{ fail(`${{item}} is broken`) }}
        item
    }},
}});
step("after", #{{ after: done, run: |ctx| sh("echo after >> ran") }});
"#,
        items.join(", ")
    )
}

/// The run's last line `run ID failed: A, B` names exactly `names` (in any order:
/// items of one batch fail in parallel).
fn failed_line(out: &str, names: &[&str]) -> bool {
    out.lines()
        .filter(|l| l.starts_with("run ") && l.contains(" failed: "))
        .any(|l| {
            let mut listed: Vec<&str> = l
                .split(" failed: ")
                .nth(1)
                .unwrap_or("")
                .split(", ")
                .collect();
            listed.sort_unstable();
            listed == names
        })
}

fn ran(t: &Test) -> Vec<String> {
    t.read("ran").lines().map(str::to_string).collect()
}

#[test]
fn batches_run_in_order_with_their_declared_sizes() {
    let t = Test::new()
        .file("rb.rhai", &fleet(10, r#"batches: [1, "30%", 6, "100%"],"#))
        .args(&["run", "rb.rhai"]);
    let o = t.run();
    assert_eq!(o.code, 0, "{o:?}");
    let done = order(&t, "step_succeeded");
    let pos = |s: &str| {
        done.iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s} in {done:?}"))
    };
    // 1, then up to 3, then up to 6, then the rest: each batch after the barrier before it.
    let batches: [&[usize]; 4] = [&[1], &[2, 3], &[4, 5, 6], &[7, 8, 9, 10]];
    for (k, items) in batches.iter().enumerate() {
        let barrier = pos(&format!("fleet:batch-{}", k + 1));
        for i in *items {
            let item = pos(&format!("fleet:x{i}"));
            assert!(item < barrier, "x{i} before batch-{}: {done:?}", k + 1);
            if k > 0 {
                assert!(
                    pos(&format!("fleet:batch-{k}")) < item,
                    "x{i} after batch-{k}: {done:?}"
                );
            }
        }
    }
    assert!(pos("fleet:batch-4") < pos("after"));
    assert_eq!(ran(&t).len(), 11);
}

#[test]
fn the_budget_as_a_count_stops_the_batches_after_the_one_that_exceeded_it() {
    let t = Test::new()
        .file(
            "rb.rhai",
            &fleet(10, r#"batches: [2, 5], max_failures: 1,"#),
        )
        .file("broken-x3", "")
        .file("broken-x4", "")
        .args(&["run", "rb.rhai"]);
    let o = t.run();
    assert_eq!(o.code, 1, "{o:?}");
    // Both failures of batch 2 are listed, and the barrier says why it stopped.
    let all = format!("{}{}", o.stdout, o.stderr);
    assert!(
        failed_line(&all, &["fleet:batch-2", "fleet:x3", "fleet:x4"]),
        "{all}"
    );
    assert!(
        all.contains("over its failure budget after batch 2 of 3: 2 of 10 items failed"),
        "{all}"
    );
    let st = t.status();
    assert_eq!(st["status"], "failed", "{st}");
    assert_eq!(
        step(&st, "fleet:x5")["state"],
        "succeeded",
        "items of the batch finish"
    );
    for i in 6..=10 {
        assert_ne!(
            step(&st, &format!("fleet:x{i}"))["state"],
            "succeeded",
            "x{i} must not run"
        );
    }
    let mut r = ran(&t);
    r.sort();
    assert_eq!(r, ["x1", "x2", "x3", "x4", "x5"]);
}

#[test]
fn the_budget_as_a_percentage_lets_a_rollout_go_on_within_it() {
    // 20% of 10 tolerates two failures: every batch runs, the run still ends failed.
    let t = Test::new()
        .file(
            "rb.rhai",
            &fleet(10, r#"batches: [2, 5], max_failures: "20%","#),
        )
        .file("broken-x3", "")
        .file("broken-x4", "")
        .args(&["run", "rb.rhai"]);
    let o = t.run();
    assert_eq!(o.code, 1, "{o:?}");
    let st = t.status();
    for i in [1, 2, 5, 6, 7, 8, 9, 10] {
        assert_eq!(
            step(&st, &format!("fleet:x{i}"))["state"],
            "succeeded",
            "x{i}: {st}"
        );
    }
    assert_eq!(step(&st, "fleet:x3")["state"], "failed");
    assert_eq!(
        step(&st, "after")["state"],
        "succeeded",
        "within budget, later steps run"
    );
    let all = format!("{}{}", o.stdout, o.stderr);
    assert!(
        failed_line(&all, &["fleet:x3", "fleet:x4"]),
        "the failed items are listed: {all}"
    );

    // 10% of 10 is one: the second failure stops it.
    let t = Test::new()
        .file(
            "rb.rhai",
            &fleet(10, r#"batches: [2, 5], max_failures: "10%","#),
        )
        .file("broken-x3", "")
        .file("broken-x4", "")
        .args(&["run", "rb.rhai"]);
    assert_eq!(t.run().code, 1);
    let st = t.status();
    assert_ne!(step(&st, "fleet:x6")["state"], "succeeded", "{st}");
    assert_ne!(step(&st, "after")["state"], "succeeded", "{st}");
}

#[test]
fn items_of_a_batch_run_in_parallel_within_concurrency() {
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "fleet", description: "d" });
rollout("fleet", ["a", "b", "c", "d", "e", "f"], #{
    concurrency: 2,
    run: |ctx, item| sleep("200ms"),
});"#,
        )
        .args(&["run", "rb.rhai", "--concurrency", "8"]);
    let o = t.run();
    assert_eq!(o.code, 0, "{o:?}");
    // Replay the journal: how many items were running at once, at most.
    let (mut running, mut most) = (0i32, 0i32);
    for v in journal(&t) {
        let item = v["step"]
            .as_str()
            .is_some_and(|s| s.starts_with("fleet:") && !s.contains("batch-"));
        match v["type"].as_str() {
            Some("step_started") if item => running += 1,
            Some("step_succeeded" | "step_failed") if item => running -= 1,
            _ => {}
        }
        most = most.max(running);
    }
    assert_eq!(most, 2, "two items at a time, never more");
}

#[test]
fn a_gate_between_batches_pauses_the_run_until_approved() {
    let t = Test::new().file("rb.rhai", &fleet(4, r#"batches: [1, 2], between: "gate","#));
    let o = t
        .bare()
        .args(["run", "rb.rhai", "--non-interactive"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let st = t.status();
    assert_eq!(
        step(&st, "fleet:gate-1")["state"],
        "awaiting_approval",
        "{st}"
    );
    assert_eq!(step(&st, "fleet:x2")["state"], "pending");
    assert_eq!(ran(&t), ["x1"]);
    let id = t.run_id();
    let shown =
        String::from_utf8_lossy(&t.bare().args(["status"]).output().unwrap().stdout).to_string();
    assert!(
        shown.contains("Batch 1 of 3 of rollout `fleet` has finished: 1 item(s) (x1)"),
        "{shown}"
    );

    let a = t
        .bare()
        .args(["approve", &id, "fleet:gate-1"])
        .output()
        .unwrap();
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let r = t
        .bare()
        .args(["resume", &id, "--non-interactive"])
        .output()
        .unwrap();
    // The next gate pauses again after batch 2.
    assert_eq!(
        r.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(ran(&t), ["x1", "x2"]);
}

#[test]
fn resume_re_runs_only_the_failed_items_and_the_batches_not_started() {
    let t = Test::new()
        .file("rb.rhai", &fleet(6, r#"batches: [2, 4],"#))
        .file("broken-x3", "")
        .args(&["run", "rb.rhai"]);
    assert_eq!(t.run().code, 1);
    let mut first = ran(&t);
    first.sort();
    assert_eq!(first, ["x1", "x2", "x3", "x4"]);
    std::fs::remove_file(t.path().join("broken-x3")).unwrap();
    let id = t.run_id();
    let r = t.bare().args(["resume", &id, "--yes"]).output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let mut later = ran(&t)[4..].to_vec();
    // x3 again, then the batch that had not started; x1, x2 and x4 never again.
    assert_eq!(later.remove(0), "x3");
    later.sort();
    assert_eq!(later, ["after", "x5", "x6"]);
    assert_eq!(t.status()["status"], "succeeded");
}

#[test]
fn killed_in_the_middle_of_a_batch_a_run_resumes_where_it_was() {
    let items = r#"runbook(#{ name: "fleet", description: "d" });
rollout("fleet", ["x1", "x2", "x3", "x4"], #{
    batches: [2],
    idempotent: true,
    run: |ctx, item| {
        sh(`echo ${item} >> ran`);
        if item == "x3" && sh("test -f hold", #{ check: false }).code == 0 { sleep("60s") }
        item
    },
});"#;
    let t = Test::new().file("rb.rhai", items).file("hold", "");
    t.kill_9_once(&["run", "rb.rhai"], "x3 to start", || {
        t.read("ran").contains("x3").then_some(())
    });
    std::fs::remove_file(t.path().join("hold")).unwrap();
    let id = t.started_run(".waymark").unwrap();
    let r = t.bare().args(["resume", &id, "--yes"]).output().unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let ran = ran(&t);
    let count = |x: &str| ran.iter().filter(|r| *r == x).count();
    assert_eq!((count("x1"), count("x2")), (1, 1), "{ran:?}");
    assert_eq!(count("x3"), 2, "interrupted, so run again: {ran:?}");
    wait_until("the run to be recorded succeeded", || {
        (t.status()["status"] == "succeeded").then_some(())
    });
}

#[test]
fn plan_json_lists_the_batches() {
    let t = Test::new()
        .file(
            "rb.rhai",
            &fleet(
                10,
                r#"batches: [1, "50%"], max_failures: "10%", between: "gate","#,
            ),
        )
        .args(&["plan", "rb.rhai", "--format", "json"]);
    let o = t.run();
    assert_eq!(o.code, 0, "{o:?}");
    let plan: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let r = &plan["rollouts"][0];
    assert_eq!(r["name"], "fleet");
    assert_eq!(r["items"], 10);
    assert_eq!(r["max_failures"], "10%");
    assert_eq!(r["failures_allowed"], 1);
    let sizes: Vec<usize> = r["batches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["items"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes, [1, 4, 5]);
    assert_eq!(r["batches"][0]["barrier"], "fleet:batch-1");
    assert_eq!(r["batches"][0]["between"], "fleet:gate-1");
    assert_eq!(r["batches"][2]["between"], serde_json::Value::Null);
    let x1 = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "fleet:x1")
        .unwrap();
    assert_eq!(
        x1["rollout"],
        serde_json::json!({ "name": "fleet", "batch": 1, "role": "item" })
    );

    let text = t.bare().args(["plan", "rb.rhai"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("rollout fleet: 10 items in 3 batch(es) of 1, 4, 5; max_failures 10% (1 of 10 may fail)"), "{text}");
    for (format, batch) in [
        ("mermaid", "subgraph r0b2[\"fleet batch 2\"]"),
        ("dot", "label=\"fleet batch 2\";"),
    ] {
        let o = t
            .bare()
            .args(["plan", "rb.rhai", "--format", format])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(text.contains(batch), "{format}: {text}");
    }
    let dry = t
        .bare()
        .args(["run", "rb.rhai", "--dry-run"])
        .output()
        .unwrap();
    let dry = String::from_utf8_lossy(&dry.stdout);
    let at = |s: &str| dry.find(s).unwrap_or_else(|| panic!("{s} in {dry}"));
    assert!(
        at("fleet:x1") < at("fleet:batch-1") && at("fleet:gate-1") < at("fleet:x2"),
        "{dry}"
    );
}

#[test]
fn a_bad_rollout_is_reported_at_its_options() {
    let t = Test::new()
        .file(
            "rb.rhai",
            "runbook(#{ name: \"x\", description: \"y\" });\nrollout(\"a\", [], #{ run: |ctx, item| 1 });\nrollout(\"b\", [\"p\", \"q\", \"p\"], #{ run: |ctx, item| 1 });\nrollout(\"c\", [\"p\"], #{ title: \"batches: none\", batches: [5, 2], max_failures: \"lots\", run: |ctx, item| 1 });\nrollout(\"d\", [\"p\"], #{ batches: [\"150%\"], run: |ctx, item| 1 });\n",
        )
        .args(&["check", "rb.rhai"]);
    let o = t.run();
    assert_eq!(o.code, 2, "{o:?}");
    for (msg, at) in [
        ("rollout `a` has no items", "rb.rhai:2:14"),
        ("rollout `b` has item `p` twice", "rb.rhai:3:25"),
        (
            "bad `batches`: sizes are cumulative and must increase",
            "rb.rhai:4:48",
        ),
        (
            "bad `max_failures`: `lots` is neither a count nor a percentage",
            "rb.rhai:4:65",
        ),
        ("`150%` is more than 100% of the items", "rb.rhai:5:24"),
    ] {
        let i = o
            .stderr
            .find(msg)
            .unwrap_or_else(|| panic!("{msg} in {}", o.stderr));
        assert!(
            o.stderr[i..].contains(&format!("--> {at}")),
            "{msg} at {at}: {}",
            o.stderr
        );
    }
}

#[test]
fn the_fleet_example_stops_after_the_third_failure_and_resume_runs_only_what_is_left() {
    // 50 lab servers, three of which fail once; batches 1, 5, 50%, 100%; max_failures 2.
    let root = env!("CARGO_MANIFEST_DIR");
    let rb = format!("{root}/examples/fleet-rollout.rhai");
    let inv = format!("{root}/examples/estates/fleet.toml");
    let t = Test::new();
    let o = t
        .bare()
        .args([
            "run",
            &rb,
            "--inventory",
            &inv,
            "--yes",
            "--state-dir",
            "st",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let started = |t: &Test| -> Vec<String> {
        let id = t.started_run("st").unwrap();
        let text = std::fs::read_to_string(t.path().join("st/runs").join(id).join("journal.jsonl"))
            .unwrap();
        text.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|v| v["type"] == "step_started")
            .filter_map(|v| v["step"].as_str().map(String::from))
            .filter(|s| s.starts_with("change:web-"))
            .collect()
    };
    let first = started(&t);
    // Batches 1-3 (25 servers) ran; batch 4 never started.
    assert_eq!(first.len(), 25, "{first:?}");
    assert!(!first.iter().any(|s| s == "change:web-26"), "{first:?}");
    let id = t.started_run("st").unwrap();
    let r = t
        .bare()
        .args(["resume", &id, "--yes", "--state-dir", "st"])
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let again: Vec<String> = started(&t)[25..].to_vec();
    assert_eq!(
        again.len(),
        28,
        "the three failed and the 25 of batch 4: {again:?}"
    );
    for s in [
        "change:web-04",
        "change:web-12",
        "change:web-20",
        "change:web-50",
    ] {
        assert!(again.iter().any(|x| x == s), "{s} in {again:?}");
    }
}
