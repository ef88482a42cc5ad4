//! Resume of a 10,000-step run with one step left: ≤ 60 ms to finish (SPEC §8 asks ≤ 200 ms).
//!
//! Run with `cargo bench --bench resume_10k`. A generated 100×100 layered runbook runs
//! until its very last step fails (a file it checks for is missing); the file is then
//! created and `waymark resume` is timed end to end: load, plan, journal replay and
//! fingerprint comparison of 10,000 steps, then the one step.

// Benchmarks report on the terminal, and a closed stdout there is a real error.
#![allow(clippy::disallowed_macros)]

mod common;

use std::process::Command;
use std::time::Instant;

fn main() {
    let mut times = Vec::new();
    let script = common::layered_runbook(
        "resume",
        "|ctx| ()",
        r#"step("last", #{ after: prev, run: |ctx| exec("test", ["-f", "ok"]) });"#,
    );
    for round in 0..5 {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("rb.rhai"), &script).expect("write runbook");
        let wm = || {
            let mut c = Command::new(env!("CARGO_BIN_EXE_waymark"));
            c.current_dir(dir.path()).env("NO_COLOR", "1");
            c
        };
        let first = wm()
            .args(["run", "rb.rhai", "--concurrency", "64"])
            .output()
            .expect("run");
        assert_eq!(
            first.status.code(),
            Some(1),
            "the first run must fail at `last`"
        );
        std::fs::write(dir.path().join("ok"), "").expect("write flag");
        let t = Instant::now();
        let out = wm().args(["resume"]).output().expect("resume");
        let took = t.elapsed();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        println!(
            "round {round}: resume took {:.0} ms",
            took.as_secs_f64() * 1e3
        );
        times.push(took);
    }
    times.sort();
    println!(
        "resume of a 10,000-step run with one step left: median {:.0} ms (target ≤ 60 ms; SPEC §8: ≤ 200 ms)",
        times[times.len() / 2].as_secs_f64() * 1e3
    );
    println!(
        "  Rhai alone (parse + evaluate the same runbook in this process, nothing of waymark): median {:.0} ms",
        common::rhai_alone(&script, 5).as_secs_f64() * 1e3
    );
}
