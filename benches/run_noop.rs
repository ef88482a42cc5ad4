//! SPEC §8: 10,000 no-op steps (layered DAG) with the durable journal: ≥ 10,000 steps/s,
//! peak memory ≤ 100 MiB.
//!
//! Run with `cargo bench --bench run_noop`. Drives the real binary (`waymark run`) on a
//! generated 100×100 layered runbook whose steps run an empty closure, so the figure
//! includes loading, planning, every fsync'd journal record and process start-up.
//! Peak RSS is the child's `ru_maxrss`.

use std::process::Command;
use std::time::Instant;

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rb = dir.path().join("noop.rhai");
    let script = r#"runbook(#{ name: "noop", description: "10,000 no-op steps" });
let prev = [];
for l in 0..100 {
    let layer = [];
    for w in 0..100 {
        let after = if prev.is_empty() { [] } else { [prev[w], prev[(w + 1) % 100]] };
        layer.push(step(`s${l}-${w}`, #{ after: after, run: |ctx| () }));
    }
    prev = layer;
}
"#;
    std::fs::write(&rb, script).expect("write runbook");
    let mut rates = Vec::new();
    for round in 0..3 {
        let state = dir.path().join(format!("state{round}"));
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_waymark"))
            .args([
                "run",
                rb.to_str().unwrap(),
                "--concurrency",
                "64",
                "--state-dir",
            ])
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
        rates.push(10_000.0 / secs);
        println!("round {round}: {secs:.2} s, {:.0} steps/s", 10_000.0 / secs);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru) };
    println!(
        "10,000 no-op steps: median {:.0} steps/s (target ≥ 10,000); peak RSS {:.1} MiB (target ≤ 100)",
        rates[1],
        ru.ru_maxrss as f64 / 1024.0
    );
}
