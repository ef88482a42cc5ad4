//! Process groups that outlived a crash of waymark.
//!
//! Every group a step starts is journaled before its program runs (`process_started`,
//! see `process/gate.rs`). After `kill -9` or a power cut of the host running waymark
//! (not of the estate), a step that was in flight may still be acting: `sh -c "sleep 1;
//! echo x >> f"` writes a second later. An operator who looks at once sees no effect,
//! chooses `--rerun`, and the effect happens twice. So `status` reports such groups and
//! `resume` deals with them — waits or kills, the operator's choice — before any
//! decision about their step.

use crate::process::group;
use crate::run_state::{RunState, StepState};
use std::time::{Duration, Instant};

/// A recorded process group of an in-flight step that is still alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    /// The step whose attempt started it.
    pub step: String,
    /// Its process group id.
    pub pgid: u32,
    /// Its leader's recorded start time (see [`group::start_time`]).
    pub start_time: u64,
}

/// The live groups of steps left in flight by a process that is gone. A run that is
/// live has none: its steps are `running`, not `unknown`.
pub fn find(state: &RunState) -> Vec<Orphan> {
    state
        .steps
        .iter()
        .filter(|s| s.state == StepState::Unknown)
        .flat_map(|s| {
            s.processes
                .iter()
                .filter(|(pgid, start)| group::is_alive(*pgid, *start))
                .map(|&(pgid, start_time)| Orphan {
                    step: s.name.clone(),
                    pgid,
                    start_time,
                })
        })
        .collect()
}

/// One line per orphan: step, group, and what is in it.
pub fn describe(orphans: &[Orphan]) -> Vec<String> {
    orphans
        .iter()
        .map(|o| {
            format!(
                "step {}: process group {} is still running{}",
                o.step,
                o.pgid,
                leader_command(o.pgid)
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// The shell command that ends `o` by hand.
pub fn kill_command(o: &Orphan) -> String {
    format!("kill -TERM -- -{}", o.pgid)
}

// The leader's command line, if it is still there (Linux).
fn leader_command(pgid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pgid}/cmdline")).ok()?;
    let words: Vec<String> = raw
        .split(|&b| b == 0)
        .filter(|w| !w.is_empty())
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// Stop every orphan: SIGTERM, then SIGKILL after `grace`; returns those still alive
/// after a further bounded wait (a process stuck in the kernel cannot be killed).
pub fn kill(orphans: &[Orphan], grace: Duration) -> Vec<Orphan> {
    for o in orphans.iter().filter(|o| still_ours(o)) {
        group::terminate(o.pgid);
    }
    let left = wait(orphans, Some(grace));
    for o in &left {
        group::kill(o.pgid);
    }
    wait(&left, Some(Duration::from_secs(5)))
}

/// Wait until every orphan has ended, or `limit` passes; returns those still alive.
pub fn wait(orphans: &[Orphan], limit: Option<Duration>) -> Vec<Orphan> {
    let started = Instant::now();
    loop {
        let left: Vec<Orphan> = orphans.iter().filter(|o| still_ours(o)).cloned().collect();
        if left.is_empty() || limit.is_some_and(|l| started.elapsed() >= l) {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn still_ours(o: &Orphan) -> bool {
    group::is_alive(o.pgid, o.start_time)
}
