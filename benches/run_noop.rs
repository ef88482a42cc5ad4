//! 10,000 no-op steps (layered DAG) with the durable journal; and what `ctx.outputs` costs.
//!
//! Run with `cargo bench --bench run_noop`. Drives the real binary (`waymark run`) on a
//! generated 100×100 layered runbook whose steps run an empty closure, so each figure
//! includes loading, planning, every journal record, the live display on stderr and
//! process start-up (the steps log nothing). The run phase (from the journal's
//! `run_started` to its last record, millisecond timestamps) is shown beside it.
//!
//! Targets (issue 16): at the default `--concurrency 4`, ≥ 20,000 steps/s for steps
//! declared `idempotent: true` — their `step_started` need not be durable before they run
//! (ARCHITECTURE.md, "Durability"). Steps that are not idempotent are shown beside: each
//! start waits for its fsync, so at most 4 share one and the disk's fsync latency bounds
//! the rate. SPEC §8's ≥ 10,000 steps/s and ≤ 100 MiB peak RSS still apply.
//!
//! Last, the same run where every step returns a small map against the no-output run at
//! `--concurrency 8`, alternating: each step's `ctx.outputs` means every finished
//! ancestor's output (~1,650 on this DAG); the target is ≤ 1.5× the no-output time.

// Benchmarks report on the terminal, and a closed stdout there is a real error.
#![allow(clippy::disallowed_macros)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

const STEPS: f64 = 10_000.0;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write = |name: &str, closure: &str, options: &str| {
        let path = dir.path().join(format!("{name}.rhai"));
        let script = common::layered_runbook_with(name, closure, options, "");
        std::fs::write(&path, script).expect("write runbook");
        path
    };
    let plain = write("noop", "|ctx| ()", "");
    let idempotent = write("idempotent", "|ctx| ()", "idempotent: true, ");
    let maps = write("outputs", "|ctx| #{ n: 1 }", "");
    let mut n = 0;
    let mut run = |rb: &Path, concurrency: usize| -> (f64, f64) {
        n += 1;
        let state = dir.path().join(format!("state-{n}"));
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_waymark"))
            .arg("run")
            .arg(rb)
            .args(["--concurrency", &concurrency.to_string(), "--state-dir"])
            .arg(&state)
            .env("NO_COLOR", "1")
            .output()
            .expect("run waymark");
        let secs = t.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        (secs, run_phase(&state))
    };

    for (label, rb, concurrency, target) in [
        ("not idempotent", &plain, 64, "≥ 10,000 (SPEC §8)"),
        ("not idempotent", &plain, 16, "≥ 10,000 (SPEC §8)"),
        ("not idempotent", &plain, 4, "none: fsync-bound, see README"),
        ("idempotent", &idempotent, 4, "≥ 20,000 (issue 16)"),
    ] {
        let mut rates = Vec::new();
        let mut phases = Vec::new();
        for round in 0..3 {
            let (secs, phase) = run(rb, concurrency);
            println!(
                "{label}, --concurrency {concurrency}, round {round}: {secs:.2} s, {:.0} steps/s \
                 (run phase {phase:.2} s, {:.0} steps/s)",
                STEPS / secs,
                STEPS / phase
            );
            rates.push(STEPS / secs);
            phases.push(STEPS / phase);
        }
        println!(
            "10,000 no-op steps, {label}, --concurrency {concurrency}: median {:.0} steps/s \
             (target {target}); run phase alone {:.0} steps/s",
            median(&mut rates),
            median(&mut phases)
        );
    }
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    println!(
        "peak RSS {:.1} MiB (target ≤ 100)",
        ru.ru_maxrss as f64 / 1024.0
    );

    let (mut without, mut with, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        let (a, b) = if round % 2 == 0 {
            let a = run(&plain, 8).0;
            (a, run(&maps, 8).0)
        } else {
            let b = run(&maps, 8).0;
            (run(&plain, 8).0, b)
        };
        println!(
            "round {round}: no outputs {a:.2} s, every step returns a map {b:.2} s, ratio {:.2}",
            b / a
        );
        without.push(a);
        with.push(b);
        ratios.push(b / a);
    }
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    println!(
        "10,000 steps each returning a map, --concurrency 8: median {:.2} s against {:.2} s \
         without outputs, median ratio {:.2} (target ≤ 1.5); peak RSS of all runs {:.1} MiB",
        median(&mut with),
        median(&mut without),
        median(&mut ratios),
        ru.ru_maxrss as f64 / 1024.0
    );
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Seconds from the first to the last record of the one run under `state`.
fn run_phase(state: &Path) -> f64 {
    let runs = state.join("runs");
    let run = std::fs::read_dir(&runs)
        .expect("runs dir")
        .next()
        .expect("one run")
        .expect("run entry");
    let journal = std::fs::read_to_string(run.path().join("journal.jsonl")).expect("journal");
    let ts = |line: &str| {
        let v: serde_json::Value = serde_json::from_str(line).expect("journal line");
        let ts = v["ts"].as_str().expect("ts").to_string();
        humantime::parse_rfc3339(&ts).expect("RFC 3339 ts")
    };
    let first = ts(journal.lines().next().expect("first record"));
    let last = ts(journal.lines().last().expect("last record"));
    last.duration_since(first)
        .expect("time goes forward")
        .as_secs_f64()
        // Timestamps have millisecond resolution.
        .max(0.001)
}
