//! Load + plan of a generated 10,000-step runbook: ≤ 100 ms (SPEC §8 asks ≤ 300 ms).
//!
//! Run with `cargo bench --bench load_plan`. The runbook is written out step by step
//! (10,000 `step()` calls, each with its own closure, 100 layers of 100), the worst
//! case for parsing and closure bookkeeping; the median of several runs is reported.

// Benchmarks report on the terminal, and a closed stdout there is a real error.
#![allow(clippy::disallowed_macros)]

mod common;

use std::time::Instant;
use waymark::dsl::{LoadRequest, RunbookRef};
use waymark::plan::Plan;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.rhai");
    let script = common::explicit_runbook(100, 100);
    std::fs::write(&path, &script).expect("write runbook");
    let req = LoadRequest {
        runbook: RunbookRef::Path(path),
        params: vec![],
        inventory: serde_json::Value::Null,
    };
    let mut times = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        let (_rb, plan) = Plan::load(&req).map_err(|e| e.render()).expect("loads");
        times.push(t.elapsed());
        assert_eq!(plan.steps.len(), 10_000);
        assert_eq!(plan.waves.len(), 100);
    }
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "load+plan 10,000 steps: median {:.1} ms (min {:.1} ms, max {:.1} ms) — target ≤ 100 ms (SPEC §8: ≤ 300 ms); peak memory: `cargo bench --bench scaling`",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
    println!(
        "  Rhai alone (parse + evaluate the same text, nothing of waymark): median {:.1} ms",
        common::rhai_alone(&script, 7).as_secs_f64() * 1e3
    );
}
