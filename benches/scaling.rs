//! The scaling table: load + plan and resume of 1,000 / 10,000 / 100,000 explicit
//! `step()` calls, time and peak memory, so a cost that grows faster than the work shows
//! as a ratio above 10 between two rows.
//!
//! Run with `cargo bench --bench scaling`. Each measurement is its own process (peak
//! memory is per process): load + plan in a child of this bench that reports its own
//! `VmHWM`, resume as `waymark resume` of a run whose last step failed, with the child's
//! `ru_maxrss` from `wait4`. The sizes take turns, pass after pass, so a slower minute
//! of the machine falls on every row alike rather than on one row's ratio. Targets
//! (10,000 steps): load + plan ≤ 100 ms and ≤ 50 MiB. The resume target (≤ 60 ms) is
//! `resume_10k`'s, whose runbook generates its steps in a loop; these written-out steps
//! take longer to load than that whole resume, so this resume is printed beside its own
//! load rather than against that target.
//!
//! `cargo bench --bench scaling -- --instructions` counts instead of timing (it needs
//! valgrind, and takes ~15 minutes): each size's load + plan, and one of 200,000 steps,
//! under cachegrind, with its instructions and simulated cache misses per step, and the
//! same per step added from one size to the next, which leaves out the process's fixed
//! cost. The counts are the same on every run of the same binary, whatever the machine
//! is doing.

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
/// The sizes `--instructions` counts: one more than the timed table, since between
/// 10,000 and 100,000 steps the load's data outgrows the last-level cache, and only a
/// size past that shows whether the misses per step keep rising or level off.
const COUNTED: [usize; 4] = [1_000, 10_000, 100_000, 200_000];
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
/// Under valgrind (`unlimited`) the load runs ~50 times slower than the machine, so
/// its wall-clock limit is lifted; the operation budget stays.
fn child_load(path: &Path, steps: usize, unlimited: bool) {
    if unlimited {
        waymark::dsl::engine::set_load_time_limit(Duration::from_secs(24 * 3600));
    }
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

/// One load + plan of the `n`-step runbook at `path`, in a child: its time and peak.
fn load_once(path: &Path, n: usize) -> (Duration, u64) {
    let me = std::env::current_exe().expect("own path");
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
    (Duration::from_micros(f.next().unwrap()), f.next().unwrap())
}

/// One `waymark resume` of a fresh `n`-step run whose one step after the last layer
/// failed, in `dir` (removed after): its time and peak.
fn resume_once(dir: &Path, text: &str, n: usize) -> (Duration, u64) {
    std::fs::create_dir_all(dir).expect("dir");
    std::fs::write(dir.join("rb.rhai"), text).expect("write runbook");
    let wm = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_waymark"));
        c.current_dir(dir).env("NO_COLOR", "1");
        c
    };
    let (_, _, first) = timed(wm().args(["run", "rb.rhai", "--concurrency", "64"]));
    assert_eq!(first.code(), Some(1), "the first run must fail at `last`");
    std::fs::write(dir.join("ok"), "").expect("write flag");
    let (took, peak, status) = timed(wm().args(["resume"]));
    assert!(status.success(), "resume of {n} steps failed");
    let _ = std::fs::remove_dir_all(dir);
    (took, peak)
}

/// Each size's turns in one pass: the 1,000-step rows take ~10 ms, where a
/// millisecond of the machine's noise moves a ratio by a tenth, so they take more.
fn turns(n: usize) -> usize {
    match n {
        100_000.. => 1,
        10_000.. => 2,
        _ => 5,
    }
}

/// Passes over all the sizes: 3 gives 15 / 6 / 3 measurements per row.
const PASSES: usize = 3;

/// The median time of `runs` and their largest peak, with the fastest and slowest.
fn row(runs: &[(Duration, u64)]) -> Row {
    let mut times: Vec<Duration> = runs.iter().map(|r| r.0).collect();
    times.sort();
    Row {
        median: times[times.len() / 2],
        fastest: times[0],
        slowest: times[times.len() - 1],
        peak: runs.iter().map(|r| r.1).max().unwrap_or(0),
    }
}

struct Row {
    median: Duration,
    fastest: Duration,
    slowest: Duration,
    peak: u64,
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
        let unlimited = args.iter().any(|a| a == "--unlimited");
        child_load(Path::new(&args[i + 1]), steps, unlimited);
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    if args.iter().any(|a| a == "--instructions") {
        instructions(dir.path());
        return;
    }
    let paths: Vec<_> = SIZES
        .iter()
        .map(|&n| {
            let path = dir.path().join(format!("load-{n}.rhai"));
            std::fs::write(&path, runbook(n, false)).expect("write runbook");
            (path, runbook(n, true))
        })
        .collect();
    let mut loads = vec![Vec::new(); SIZES.len()];
    let mut resumes = vec![Vec::new(); SIZES.len()];
    for pass in 0..PASSES {
        for (k, &n) in SIZES.iter().enumerate() {
            for turn in 0..turns(n) {
                loads[k].push(load_once(&paths[k].0, n));
                let run_dir = dir.path().join(format!("resume-{n}-{pass}-{turn}"));
                resumes[k].push(resume_once(&run_dir, &paths[k].1, n));
            }
        }
        eprintln!("pass {} of {PASSES} done", pass + 1);
    }
    let rows: Vec<(usize, Row, Row)> = SIZES
        .iter()
        .enumerate()
        .map(|(k, &n)| (n, row(&loads[k]), row(&resumes[k])))
        .collect();
    for (n, load, resume) in &rows {
        println!(
            "{n:>7} steps: load+plan {:>8.1} ms ({:.1}–{:.1}) {:>6.1} MiB | resume {:>8.1} ms ({:.1}–{:.1}) {:>6.1} MiB",
            ms(load.median),
            ms(load.fastest),
            ms(load.slowest),
            mib(load.peak),
            ms(resume.median),
            ms(resume.fastest),
            ms(resume.slowest),
            mib(resume.peak)
        );
    }
    println!();
    // Per step too: where the ratio between two rows is above 10, this shows whether the
    // cost per step keeps rising (a cost growing with the runbook) or levels off.
    println!("| steps | load+plan | per step | peak | resume | per step | peak |");
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (n, load, resume) in &rows {
        println!(
            "| {n} | {:.0} ms | {:.1} µs | {:.0} MiB | {:.0} ms | {:.1} µs | {:.0} MiB |",
            ms(load.median),
            ms(load.median) * 1e3 / *n as f64,
            mib(load.peak),
            ms(resume.median),
            ms(resume.median) * 1e3 / *n as f64,
            mib(resume.peak)
        );
    }
    println!();
    // Linear growth: ten times the steps, about ten times the time (memory has a fixed
    // floor, the process itself, so its ratio stays below 10).
    for pair in rows.windows(2) {
        let (a, la, ra) = &pair[0];
        let (b, lb, rb) = &pair[1];
        println!(
            "{a} → {b} steps ({}×): load+plan time ×{:.1}, peak ×{:.1}; resume time ×{:.1}, peak ×{:.1} (linear: ≤ ×{})",
            b / a,
            ms(lb.median) / ms(la.median),
            mib(lb.peak) / mib(la.peak),
            ms(rb.median) / ms(ra.median),
            mib(rb.peak) / mib(ra.peak),
            b / a
        );
    }
    let (_, load, resume) = &rows[1];
    println!(
        "10,000 steps: load+plan {:.0} ms (target ≤ 100 ms), peak {:.0} MiB (target ≤ 50 MiB); resume {:.0} ms, {:.0} ms more than its load+plan (the ≤ 60 ms resume target is `resume_10k`'s, a runbook that generates its steps in a loop)",
        ms(load.median),
        mib(load.peak),
        ms(resume.median),
        ms(resume.median) - ms(load.median)
    );
}

/// What cachegrind counted in one load + plan (the whole child process).
struct Counts {
    instructions: u64,
    d1_misses: u64,
    ll_misses: u64,
}

/// The `--instructions` mode: each size's load + plan under cachegrind.
fn instructions(dir: &Path) {
    let me = std::env::current_exe().expect("own path");
    let mut counts = Vec::new();
    for n in COUNTED {
        let path = dir.join(format!("load-{n}.rhai"));
        std::fs::write(&path, runbook(n, false)).expect("write runbook");
        eprintln!("{n} steps under cachegrind…");
        let out = match Command::new("valgrind")
            .args(["--tool=cachegrind", "--cache-sim=yes"])
            // The caches simulated are this VM's as `lscpu` gives them (valgrind's own
            // guess here is a 256 MiB last level, which no runbook would outgrow).
            .args(["--D1=32768,8,64", "--LL=33554432,16,64"])
            .arg("--cachegrind-out-file=/dev/null")
            .arg(&me)
            .args(["--child-load", &path.display().to_string(), &n.to_string()])
            .arg("--unlimited")
            .output()
        {
            Ok(out) => out,
            Err(e) => {
                eprintln!(
                    "cannot run valgrind ({e}): install it (Debian: apt-get install valgrind)"
                );
                std::process::exit(2);
            }
        };
        let report = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{report}");
        // "==PID== I   refs:      763,363,606" and the like; D1 and LL misses are the
        // first number after their label (reads and writes together).
        let count = |label: &str| -> u64 {
            report
                .lines()
                .find_map(|l| l.split_once(label).map(|(_, rest)| rest))
                .and_then(|rest| rest.split_whitespace().next())
                .map(|v| v.replace(',', ""))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no `{label}` in cachegrind's report:\n{report}"))
        };
        counts.push(Counts {
            instructions: count("I   refs:"),
            d1_misses: count("D1  misses:"),
            ll_misses: count("LL misses:"),
        });
    }
    println!("| steps | instructions | per step | D1 misses per step | LL misses per step |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    for (n, c) in COUNTED.iter().zip(&counts) {
        let per = |v: u64| v as f64 / *n as f64;
        println!(
            "| {n} | {} | {:.0} | {:.0} | {:.1} |",
            c.instructions,
            per(c.instructions),
            per(c.d1_misses),
            per(c.ll_misses)
        );
    }
    println!();
    // Each step added from one size to the next: the process's fixed cost (start, the
    // engine, exit) drops out, so a cost growing with the runbook shows as a rise here.
    for (pair, c) in COUNTED.windows(2).zip(counts.windows(2)) {
        let added = (pair[1] - pair[0]) as f64;
        let per = |f: fn(&Counts) -> u64| (f(&c[1]) as f64 - f(&c[0]) as f64) / added;
        println!(
            "each step added from {} to {}: {:.0} instructions, {:.0} D1 misses, {:.1} LL misses",
            pair[0],
            pair[1],
            per(|c| c.instructions),
            per(|c| c.d1_misses),
            per(|c| c.ll_misses)
        );
    }
}
