//! The lab grows linearly with the estate: `itms-7.6/preflight` against lab estates of
//! 100, 1,000 and 2,000 site servers. Each operation used to rewrite the whole state file
//! (1,000 servers: 33 s, 2,000: 136 s); it now appends what it changed. After that, every
//! step still copied the whole inventory into its `ctx` (and the preflight's probes
//! copied and scanned it again), and loading the inventory counted lines from the top
//! for every server; both grew with the square of the estate (2,000: 29.9 s).
//!
//! Run with `cargo bench --bench lab_preflight`. The time is the whole `waymark run`,
//! with a fresh state dir per size; the last column (ms per server) stays flat when the
//! growth is linear.

// Benchmarks report on the terminal, and a closed stdout there is a real error.
#![allow(clippy::disallowed_macros)]

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::Instant;

const SIZES: [usize; 3] = [100, 1_000, 2_000];

/// A lab inventory: one NS, its SQL server and `sites` site servers.
fn inventory(sites: usize) -> String {
    let mut s = format!(
        "name = \"bench{sites}\"\ndriver = \"lab\"\n\n[[server]]\nname = \"ns-hq\"\nrole = \"ns\"\nsql = \"sql-hq\"\nendpoints = 12000\n\n[[server]]\nname = \"sql-hq\"\nrole = \"sql\"\n"
    );
    for i in 0..sites {
        let _ = write!(
            s,
            "\n[[server]]\nname = \"site-{i:05}\"\nrole = \"site\"\nendpoints = 500\n"
        );
    }
    s
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_waymark");
    let dir = tempfile::tempdir().expect("temp dir");
    println!("lab_preflight: itms-7.6/preflight on a lab estate (whole `waymark run`)");
    for sites in SIZES {
        let inv = dir.path().join(format!("inv{sites}.toml"));
        std::fs::write(&inv, inventory(sites)).expect("write inventory");
        let state = dir.path().join(format!("state{sites}"));
        let start = Instant::now();
        let status = Command::new(bin)
            .args(["run", "itms-7.6/preflight", "--yes", "--inventory"])
            .arg(&inv)
            .arg("--state-dir")
            .arg(&state)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run waymark");
        let took = start.elapsed();
        println!(
            "  {sites:>5} site servers: {:>8.2} s  ({:.2} ms per server){}",
            took.as_secs_f64(),
            took.as_secs_f64() * 1000.0 / (sites + 2) as f64,
            if status.success() {
                String::new()
            } else {
                format!("  (exit {:?})", status.code())
            }
        );
    }
}
