//! SPEC §8: 10,000 no-op steps (layered DAG) with the durable journal: ≥ 10,000 steps/s,
//! peak memory ≤ 100 MiB.
//!
//! Run with `cargo bench --bench run_noop`. Drives the real binary (`waymark run`) on a
//! generated 100×100 layered runbook whose steps run an empty closure, so the headline
//! figure includes loading, planning, every fsync'd journal record, one log file per step,
//! the live display on stderr and process start-up. The run phase (from the journal's
//! `run_started` to its last record, millisecond timestamps) is shown beside it.
//!
//! SPEC §8 names no concurrency; the figure is taken at `--concurrency 64`, 16 and the
//! CLI's default of 4. A step's `step_started` must be durable before it runs, so at most
//! N steps share an fsync and at 4 the disk's fsync latency bounds the rate. Peak RSS is
//! the largest `ru_maxrss` of the children.
//!
//! Last, one run where every step returns a small map, at `--concurrency 8`: each step's
//! `ctx.outputs` then holds every ancestor's output (SPEC §2), ~1,650 entries on average
//! on this DAG. It is not a SPEC target; it shows what that contract costs.

// Benchmarks report on the terminal, and a closed stdout there is a real error.
#![allow(clippy::disallowed_macros)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

const STEPS: f64 = 10_000.0;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rb = dir.path().join("noop.rhai");
    let script = common::layered_runbook("noop", "|ctx| ()", "");
    std::fs::write(&rb, script).expect("write runbook");
    for (concurrency, rounds) in [(64, 5), (16, 3), (4, 3)] {
        let mut rates = Vec::new();
        let mut phases = Vec::new();
        for round in 0..rounds {
            let state = dir.path().join(format!("state-c{concurrency}-{round}"));
            let t = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_waymark"))
                .arg("run")
                .arg(&rb)
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
            let phase = run_phase(&state);
            println!(
                "--concurrency {concurrency}, round {round}: {secs:.2} s, {:.0} steps/s \
                 (run phase {phase:.2} s, {:.0} steps/s)",
                STEPS / secs,
                STEPS / phase
            );
            rates.push(STEPS / secs);
            phases.push(STEPS / phase);
        }
        println!(
            "10,000 no-op steps at --concurrency {concurrency}: median {:.0} steps/s \
             (target ≥ 10,000); run phase alone {:.0} steps/s",
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

    let with_outputs = dir.path().join("outputs.rhai");
    let script = common::layered_runbook("outputs", "|ctx| #{ n: 1 }", "");
    std::fs::write(&with_outputs, script).expect("write runbook");
    let t = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_waymark"))
        .arg("run")
        .arg(&with_outputs)
        .args(["--concurrency", "8", "--state-dir"])
        .arg(dir.path().join("state-outputs"))
        .env("NO_COLOR", "1")
        .output()
        .expect("run waymark");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secs = t.elapsed().as_secs_f64();
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    println!(
        "10,000 steps each returning a map, --concurrency 8: {secs:.1} s, {:.0} steps/s, \
         peak RSS of all runs so far {:.1} MiB (not a SPEC target: the cost of ctx.outputs)",
        STEPS / secs,
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
