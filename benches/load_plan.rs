//! SPEC §8: load + plan of a generated 10,000-step runbook in ≤ 300 ms.
//!
//! Run with `cargo bench --bench load_plan`. The runbook is written out step by step
//! (10,000 `step()` calls, each with its own closure, 100 layers of 100), the worst
//! case for parsing and closure bookkeeping; the median of several runs is reported.

// Benchmarks report on the terminal, and a closed stdout there is a real error.
#![allow(clippy::disallowed_macros)]

use std::time::Instant;
use waymark::dsl::{LoadRequest, RunbookRef};
use waymark::plan::Plan;

/// Write a layered runbook: `width` steps per layer, each after two steps of the layer above.
pub fn generate(layers: usize, width: usize) -> String {
    let mut s = String::from("runbook(#{ name: \"bench\", description: \"generated\" });\n");
    for l in 0..layers {
        for w in 0..width {
            let after = if l == 0 {
                String::new()
            } else {
                format!(
                    "after: [\"s{}-{}\", \"s{}-{}\"], ",
                    l - 1,
                    w,
                    l - 1,
                    (w + 1) % width
                )
            };
            s.push_str(&format!(
                "step(\"s{l}-{w}\", #{{ {after}run: |ctx| () }});\n"
            ));
        }
    }
    s
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bench.rhai");
    std::fs::write(&path, generate(100, 100)).expect("write runbook");
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
        "load+plan 10,000 steps: median {:.1} ms (min {:.1} ms, max {:.1} ms) — target ≤ 300 ms",
        median.as_secs_f64() * 1e3,
        times[0].as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3
    );
}
