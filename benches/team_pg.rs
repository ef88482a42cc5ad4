//! Team mode's cost: the state in PostgreSQL beside the local journal, same runbooks,
//! same invocation (so the same machine load).
//!
//! Run with `cargo bench --bench team_pg`. Starts its own throwaway cluster (the test
//! harness's, `tests/waymark/pg.rs`: installed server binaries, a temp dir, a free
//! loopback port, as `nobody` under root) and, without PostgreSQL binaries, says so
//! loudly and exits non-zero: a figure that was not measured must not look measured.
//!
//! - 10,000 no-op steps (the 100×100 layered runbook of `run_noop`, steps not
//!   idempotent, so every start is durable before the step runs) at `--concurrency 8`
//!   and `64`: steps/s of the whole `waymark run` process, and of its run phase alone
//!   (first to last journal record). Each round uses a fresh state directory and a fresh
//!   database; the two stores alternate within a round.
//! - `waymark resume` of a 10,000-step run with one step left (as `resume_10k`),
//!   process start to exit.

// Benchmarks report on the terminal, and a closed stdout there is a real error.
#![allow(clippy::disallowed_macros)]

mod common;

#[path = "../tests/waymark/pg.rs"]
#[allow(dead_code)] // the tests' per-test databases are not used here
mod pg;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

const STEPS: f64 = 10_000.0;
const ROUNDS: usize = 3;

/// Where a run keeps its state: a directory, or a database of the bench's cluster.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Dir,
    Pg,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Dir => "local journal",
            Kind::Pg => "PostgreSQL",
        }
    }
}

struct Bench {
    cluster: pg::Cluster,
    dir: tempfile::TempDir,
    n: usize,
}

impl Bench {
    /// A fresh state of `kind`: the `--state-dir` value, and the database name for Pg.
    fn fresh(&mut self, kind: Kind) -> (String, Option<String>) {
        self.n += 1;
        match kind {
            Kind::Dir => {
                let p = self.dir.path().join(format!("state-{}", self.n));
                (p.display().to_string(), None)
            }
            Kind::Pg => {
                let db = format!("bench_{}", self.n);
                (self.cluster.database(&db), Some(db))
            }
        }
    }

    fn waymark(&self, state: &str, args: &[&str]) -> (f64, std::process::Output) {
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_waymark"))
            .args(args)
            .args(["--state-dir", state])
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .output()
            .expect("run waymark");
        (t.elapsed().as_secs_f64(), out)
    }

    /// Seconds from the first to the last journal record of the one run in `state`.
    fn run_phase(&self, state: &str, db: Option<&str>) -> f64 {
        let (first, last) = match db {
            None => {
                let runs = Path::new(state).join("runs");
                let run = std::fs::read_dir(&runs)
                    .expect("runs dir")
                    .next()
                    .expect("one run")
                    .expect("run entry");
                let journal =
                    std::fs::read_to_string(run.path().join("journal.jsonl")).expect("journal");
                let ts = |line: &str| {
                    let v: serde_json::Value = serde_json::from_str(line).expect("record");
                    v["ts"].as_str().expect("ts").to_string()
                };
                (
                    ts(journal.lines().next().expect("first")),
                    ts(journal.lines().last().expect("last")),
                )
            }
            Some(db) => {
                let ts = |order: &str| {
                    self.cluster.sql(
                        db,
                        &format!(
                            "SELECT record->>'ts' FROM waymark_journal ORDER BY seq {order} LIMIT 1"
                        ),
                    )
                };
                (ts("ASC"), ts("DESC"))
            }
        };
        let at = |s: &str| humantime::parse_rfc3339(s).expect("RFC 3339 ts");
        at(&last)
            .duration_since(at(&first))
            .expect("time goes forward")
            .as_secs_f64()
            // Timestamps have millisecond resolution.
            .max(0.001)
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let cluster = match pg::Cluster::start() {
        Ok(c) => c,
        Err(why) => {
            eprintln!(
                "\n!!!!!!!!\n!!! team_pg benchmark DID NOT RUN: {why}.\n!!! Install the `postgresql` package (server binaries under /usr/lib/postgresql/*/bin, or set WAYMARK_PG_BIN).\n!!!!!!!!\n"
            );
            std::process::exit(1);
        }
    };
    let mut b = Bench {
        cluster,
        dir: tempfile::tempdir().expect("temp dir"),
        n: 0,
    };
    println!("load average at start: {}", load());
    let noop = common::layered_runbook("noop", "|ctx| ()", "");
    std::fs::write(b.dir.path().join("noop.rhai"), noop).expect("write runbook");
    let resume = common::layered_runbook(
        "resume",
        "|ctx| ()",
        r#"step("last", #{ after: prev, run: |ctx| exec("test", ["-f", "ok"]) });"#,
    );
    std::fs::write(b.dir.path().join("resume.rhai"), resume).expect("write runbook");

    for concurrency in [8, 64] {
        let c = concurrency.to_string();
        let mut rates = [
            (Kind::Dir, Vec::new(), Vec::new()),
            (Kind::Pg, Vec::new(), Vec::new()),
        ];
        for round in 0..ROUNDS {
            for (kind, whole, phase) in rates.iter_mut() {
                let (state, db) = b.fresh(*kind);
                let (secs, out) = b.waymark(&state, &["run", "noop.rhai", "--concurrency", &c]);
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let ph = b.run_phase(&state, db.as_deref());
                println!(
                    "{}, --concurrency {concurrency}, round {round}: {secs:.2} s, {:.0} steps/s \
                     (run phase {ph:.2} s, {:.0} steps/s)",
                    kind.label(),
                    STEPS / secs,
                    STEPS / ph
                );
                whole.push(STEPS / secs);
                phase.push(STEPS / ph);
            }
        }
        for (kind, whole, phase) in rates.iter_mut() {
            println!(
                "10,000 no-op steps, {}, --concurrency {concurrency}: median {:.0} steps/s; \
                 run phase alone {:.0} steps/s",
                kind.label(),
                median(whole),
                median(phase)
            );
        }
    }

    let mut times = [(Kind::Dir, Vec::new()), (Kind::Pg, Vec::new())];
    for round in 0..ROUNDS {
        for (kind, took) in times.iter_mut() {
            let (state, _) = b.fresh(*kind);
            let _ = std::fs::remove_file(b.dir.path().join("ok"));
            let (_, first) = b.waymark(&state, &["run", "resume.rhai", "--concurrency", "64"]);
            assert_eq!(
                first.status.code(),
                Some(1),
                "the first run must fail at `last`: {}",
                String::from_utf8_lossy(&first.stderr)
            );
            std::fs::write(b.dir.path().join("ok"), "").expect("write flag");
            let (secs, out) = b.waymark(&state, &["resume"]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            println!(
                "{}, round {round}: resume took {:.0} ms",
                kind.label(),
                secs * 1e3
            );
            took.push(secs);
        }
    }
    for (kind, took) in times.iter_mut() {
        println!(
            "resume of a 10,000-step run with one step left, {}: median {:.0} ms",
            kind.label(),
            median(took) * 1e3
        );
    }
    println!("load average at end: {}", load());
}
