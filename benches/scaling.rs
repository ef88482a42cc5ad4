//! The scaling table: load + plan and resume of 1,000 / 10,000 / 100,000 explicit
//! `step()` calls, time and peak memory, so a cost that grows faster than the work shows
//! as a ratio above 10 between two rows.
//!
//! Run with `cargo bench --bench scaling`. Each measurement is its own process (peak
//! memory is per process): load + plan in a child of this bench that reports its own
//! `VmHWM`, resume as `waymark resume` of a run whose last step failed, with the child's
//! `ru_maxrss` from `wait4`. Targets (10,000 steps): load + plan ≤ 100 ms and ≤ 50 MiB.
//! The resume target (≤ 60 ms) is `resume_10k`'s, whose runbook generates its steps in a
//! loop; these written-out steps take longer to load than that whole resume, so this
//! resume is printed beside its own load rather than against that target.

// Benchmarks report on the terminal, and a closed stdout there is a real error.
#![allow(clippy::disallowed_macros)]

mod common;

use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use waymark::dsl::{LoadRequest, RunbookRef};
use waymark::plan::Plan;

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];
const WIDTH: usize = 100;

/// `n` explicit `step()` calls, 100 per layer, each after two steps of the layer above;
/// with `last`, one more step after the whole last layer that fails until `ok` exists.
fn runbook(n: usize, last: bool) -> String {
    let layers = n / WIDTH;
    let mut s = common::explicit_runbook(layers, WIDTH);
    if last {
        let prev: Vec<String> = (0..WIDTH)
            .map(|w| format!("\"s{}-{w}\"", layers - 1))
            .collect();
        s.push_str(&format!(
            "step(\"last\", #{{ after: [{}], run: |ctx| exec(\"test\", [\"-f\", \"ok\"]) }});\n",
            prev.join(", ")
        ));
    }
    s
}

/// This process's peak resident set (`VmHWM`), in KiB.
fn own_peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Child mode: load and plan the runbook at `path` once, print "MICROS KIB".
fn child_load(path: &Path, steps: usize) {
    let req = LoadRequest {
        runbook: RunbookRef::Path(path.to_path_buf()),
        params: vec![],
        inventory: serde_json::Value::Null,
    };
    let t = Instant::now();
    let (rb, plan) = Plan::load(&req).map_err(|e| e.render()).expect("loads");
    let took = t.elapsed();
    assert_eq!(plan.steps.len(), steps);
    println!("{} {}", took.as_micros(), own_peak_kib());
    // Freeing 100,000 declarations is not part of the figure.
    std::mem::forget((rb, plan));
}

/// Run `cmd` to its end; its wall time and peak RSS (KiB) from `wait4`.
fn timed(cmd: &mut Command) -> (Duration, u64, std::process::ExitStatus) {
    let t = Instant::now();
    // Reaped below by wait4, which also gives its peak memory; `Child::wait` would not.
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, whose pid we hold; both out-pointers are valid.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut ru) };
    assert_eq!(pid, child.id() as i32, "wait4");
    (
        t.elapsed(),
        ru.ru_maxrss as u64,
        std::process::ExitStatus::from_raw(status),
    )
}

fn median(mut v: Vec<(Duration, u64)>) -> (Duration, u64) {
    v.sort();
    v[v.len() / 2]
}

/// Load + plan of `n` steps: median time of `rounds` children, and the largest peak.
fn load_row(dir: &Path, n: usize, rounds: usize) -> (Duration, u64) {
    let path = dir.join(format!("load-{n}.rhai"));
    std::fs::write(&path, runbook(n, false)).expect("write runbook");
    let me = std::env::current_exe().expect("own path");
    let mut runs = Vec::new();
    for _ in 0..rounds {
        let out = Command::new(&me)
            .args(["--child-load", &path.display().to_string(), &n.to_string()])
            .output()
            .expect("child");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let mut f = text.split_whitespace().map(|x| x.parse::<u64>().unwrap());
        runs.push((Duration::from_micros(f.next().unwrap()), f.next().unwrap()));
    }
    let peak = runs.iter().map(|r| r.1).max().unwrap_or(0);
    (median(runs).0, peak)
}

/// `waymark resume` of an `n`-step run whose one step after the last layer failed:
/// median time of `rounds` resumes (each of a fresh run), and the largest peak.
fn resume_row(dir: &Path, n: usize, rounds: usize) -> (Duration, u64) {
    let text = runbook(n, true);
    let mut runs = Vec::new();
    for round in 0..rounds {
        let d = dir.join(format!("resume-{n}-{round}"));
        std::fs::create_dir_all(&d).expect("dir");
        std::fs::write(d.join("rb.rhai"), &text).expect("write runbook");
        let wm = || {
            let mut c = Command::new(env!("CARGO_BIN_EXE_waymark"));
            c.current_dir(&d).env("NO_COLOR", "1");
            c
        };
        let (_, _, first) = timed(wm().args(["run", "rb.rhai", "--concurrency", "64"]));
        assert_eq!(first.code(), Some(1), "the first run must fail at `last`");
        std::fs::write(d.join("ok"), "").expect("write flag");
        let (took, peak, status) = timed(wm().args(["resume"]));
        assert!(status.success(), "resume of {n} steps failed");
        runs.push((took, peak));
        let _ = std::fs::remove_dir_all(&d);
    }
    let peak = runs.iter().map(|r| r.1).max().unwrap_or(0);
    (median(runs).0, peak)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child-load") {
        let steps = args[i + 2].parse().expect("step count");
        child_load(Path::new(&args[i + 1]), steps);
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rows = Vec::new();
    for n in SIZES {
        // The 1,000-step rows take ~10 ms, where a millisecond of the machine's noise
        // moves a ratio by a tenth: their median is taken over more rounds.
        let rounds = match n {
            100_000.. => 3,
            10_000.. => 5,
            _ => 15,
        };
        let load = load_row(dir.path(), n, rounds);
        let resume = resume_row(dir.path(), n, rounds);
        println!(
            "{n:>7} steps: load+plan {:>8.1} ms {:>6.1} MiB | resume {:>8.1} ms {:>6.1} MiB",
            ms(load.0),
            mib(load.1),
            ms(resume.0),
            mib(resume.1)
        );
        rows.push((n, load, resume));
    }
    println!();
    // Per step too: where the ratio between two rows is above 10, this shows whether the
    // cost per step keeps rising (a cost growing with the runbook) or levels off.
    println!("| steps | load+plan | per step | peak | resume | per step | peak |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (n, load, resume) in &rows {
        println!(
            "| {n} | {:.0} ms | {:.1} µs | {:.0} MiB | {:.0} ms | {:.1} µs | {:.0} MiB |",
            ms(load.0),
            ms(load.0) * 1e3 / *n as f64,
            mib(load.1),
            ms(resume.0),
            ms(resume.0) * 1e3 / *n as f64,
            mib(resume.1)
        );
    }
    println!();
    // Linear growth: ten times the steps, about ten times the time (memory has a fixed
    // floor, the process itself, so its ratio stays below 10).
    for pair in rows.windows(2) {
        let (a, la, ra) = pair[0];
        let (b, lb, rb) = pair[1];
        println!(
            "{a} → {b} steps ({}×): load+plan time ×{:.1}, peak ×{:.1}; resume time ×{:.1}, peak ×{:.1} (linear: ≤ ×{})",
            b / a,
            ms(lb.0) / ms(la.0),
            mib(lb.1) / mib(la.1),
            ms(rb.0) / ms(ra.0),
            mib(rb.1) / mib(ra.1),
            b / a
        );
    }
    let (_, load, resume) = rows[1];
    println!(
        "10,000 steps: load+plan {:.0} ms (target ≤ 100 ms), peak {:.0} MiB (target ≤ 50 MiB); resume {:.0} ms, {:.0} ms more than its load+plan (the ≤ 60 ms resume target is `resume_10k`'s, a runbook that generates its steps in a loop)",
        ms(load.0),
        mib(load.1),
        ms(resume.0),
        ms(resume.0) - ms(load.0)
    );
}
