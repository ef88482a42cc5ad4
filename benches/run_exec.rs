//! 1,000 `exec("/bin/true")` steps in a 10×100 layered DAG at `--concurrency 8`: wall time
//! ≤ 1.25× `make -j8` on the same DAG (issue 16; SPEC §8 asks ≤ 1.5×).
//!
//! Run with `cargo bench --bench run_exec`. The bench writes a runbook and a Makefile with
//! the same graph: 10 layers of 100 steps, each step after steps `w` and `w+1 (mod 100)`
//! of the layer above, each running `/bin/true` (make runs a recipe without shell
//! metacharacters directly, as `exec` does). Every round runs both, alternating which
//! goes first so a change in the machine's load hits both alike; the verdict is the median
//! of the per-round ratios. waymark's time is the whole `waymark run`: start-up, load,
//! plan, the fsync'd journal, the step logs (each step's `[exec]` lines, in the run's
//! shared log file) and the live display on stderr.

// Benchmarks report on the terminal, and a closed stdout there is a real error.
#![allow(clippy::disallowed_macros)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const LAYERS: usize = 10;
const WIDTH: usize = 100;
const JOBS: usize = 8;
const ROUNDS: usize = 5;
const MAKE: &str = "/usr/bin/make";

fn main() {
    if !Path::new(MAKE).exists() || !Path::new("/bin/true").exists() {
        println!("run_exec: skipped ({MAKE} and /bin/true are needed)");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let rb = dir.path().join("exec.rhai");
    std::fs::write(&rb, runbook()).expect("write runbook");
    let makefile = dir.path().join("Makefile");
    std::fs::write(&makefile, makefile_text()).expect("write Makefile");

    let mut ratios = Vec::new();
    let (mut makes, mut waymarks) = (Vec::new(), Vec::new());
    for round in 0..ROUNDS {
        let state = dir.path().join(format!("state{round}"));
        let run_make = || {
            timed(
                Command::new(MAKE)
                    .arg(format!("-j{JOBS}"))
                    .arg("-f")
                    .arg(&makefile)
                    .current_dir(dir.path()),
            )
        };
        let run_waymark = || {
            timed(
                Command::new(env!("CARGO_BIN_EXE_waymark"))
                    .arg("run")
                    .arg(&rb)
                    .args(["--concurrency", &JOBS.to_string(), "--state-dir"])
                    .arg(&state)
                    .env("NO_COLOR", "1"),
            )
        };
        let (make, waymark) = if round % 2 == 0 {
            let m = run_make();
            (m, run_waymark())
        } else {
            let w = run_waymark();
            (run_make(), w)
        };
        println!(
            "round {round}: make -j{JOBS} {make:.3} s, waymark --concurrency {JOBS} {waymark:.3} s, ratio {:.2}",
            waymark / make
        );
        makes.push(make);
        waymarks.push(waymark);
        ratios.push(waymark / make);
    }
    println!(
        "{} exec(\"/bin/true\") steps, {LAYERS}×{WIDTH} layered DAG, {JOBS} at once: \
         make -j{JOBS} median {:.3} s, waymark median {:.3} s, \
         median ratio {:.2} (target ≤ 1.25, issue 16; SPEC §8: ≤ 1.5)",
        LAYERS * WIDTH,
        median(&mut makes),
        median(&mut waymarks),
        median(&mut ratios)
    );
}

/// Seconds `cmd` took; panics (failing the bench) if it did not succeed.
fn timed(cmd: &mut Command) -> f64 {
    let t = Instant::now();
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let secs = t.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    secs
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Step `l`-`w` depends on steps `w` and `w+1` of layer `l-1`, as in run_noop.
fn deps(l: usize, w: usize) -> Vec<String> {
    if l == 0 {
        return vec![];
    }
    vec![
        format!("s{}-{w}", l - 1),
        format!("s{}-{}", l - 1, (w + 1) % WIDTH),
    ]
}

fn runbook() -> String {
    let mut s =
        String::from("runbook(#{ name: \"exec\", description: \"1,000 /bin/true steps\" });\n");
    for l in 0..LAYERS {
        for w in 0..WIDTH {
            let after: Vec<String> = deps(l, w).iter().map(|d| format!("\"{d}\"")).collect();
            s.push_str(&format!(
                "step(\"s{l}-{w}\", #{{ after: [{}], run: |ctx| exec(\"/bin/true\", []) }});\n",
                after.join(", ")
            ));
        }
    }
    s
}

fn makefile_text() -> String {
    let targets: Vec<String> = (0..LAYERS)
        .flat_map(|l| (0..WIDTH).map(move |w| format!("s{l}-{w}")))
        .collect();
    let last: Vec<String> = (0..WIDTH).map(|w| format!("s{}-{w}", LAYERS - 1)).collect();
    let mut s = format!(
        "all: {}\n.PHONY: all {}\n",
        last.join(" "),
        targets.join(" ")
    );
    for l in 0..LAYERS {
        for w in 0..WIDTH {
            s.push_str(&format!(
                "s{l}-{w}: {}\n\t/bin/true\n",
                deps(l, w).join(" ")
            ));
        }
    }
    s
}
