//! Process groups that outlived a crash of waymark.
//!
//! Every group a step starts is journaled before its program runs (`process_started`,
//! see `process/gate.rs`). After `kill -9` or a power cut of the host running waymark
//! (not of the estate), a step that was in flight may still be acting: `sh -c "sleep 1;
//! echo x >> f"` writes a second later. An operator who looks at once sees no effect,
//! chooses `--rerun`, and the effect happens twice. So `status` reports such groups and
//! `resume` deals with them — waits or kills, the operator's choice — before any
//! decision about their step.
//!
//! A group can only be looked for on the host that started it: a process group id means
//! nothing in another host's `/proc` (team mode drives one run from several hosts). Each
//! `process_started` names its host; groups of another host are [`Elsewhere`] — never
//! called alive or gone from here — and the operator is told to look on that host.

use crate::process::group;
use crate::run_state::{RunState, StepState, StepStatus};
use std::time::{Duration, Instant};

/// A recorded process group of an in-flight step that is still alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Orphan {
    /// The step whose attempt started it.
    pub step: String,
    /// Its process group id.
    pub pgid: u32,
    /// Its leader's recorded start time (see [`group::start_time`]).
    pub start_time: u64,
}

/// The recorded process groups of an in-flight step, started on another host: whether
/// they still run can only be seen there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Elsewhere {
    /// The step whose attempt started them.
    pub step: String,
    /// The host that started them.
    pub host: String,
    /// Their process group ids on that host.
    pub pgids: Vec<u32>,
}

// Steps left in flight by a process that is gone, with process groups on record. A run
// that is live has none: its steps are `running`, not `unknown`.
fn in_flight(state: &RunState) -> impl Iterator<Item = &StepStatus> {
    state
        .steps
        .iter()
        .filter(|s| s.state == StepState::Unknown && !s.processes.is_empty())
}

// Whether `s`'s groups were started on `here` (a journal that names no host at all is
// taken to be this host's, as before hosts were recorded).
fn started_on(s: &StepStatus, here: &str) -> bool {
    s.processes_host.as_deref().is_none_or(|h| h == here)
}

/// The live groups, started on this host, of steps left in flight by a process that is
/// gone.
pub(crate) fn find(state: &RunState) -> Vec<Orphan> {
    find_on(state, &crate::journal::current_host())
}

/// [`find`] as seen from host `here`.
pub(crate) fn find_on(state: &RunState, here: &str) -> Vec<Orphan> {
    in_flight(state)
        .filter(|s| started_on(s, here))
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

/// The groups of steps left in flight that another host started: alive or not, this
/// host cannot tell.
pub(crate) fn elsewhere(state: &RunState) -> Vec<Elsewhere> {
    elsewhere_of(state, &crate::journal::current_host())
}

/// [`elsewhere`] as seen from host `here`.
pub(crate) fn elsewhere_of(state: &RunState, here: &str) -> Vec<Elsewhere> {
    in_flight(state)
        .filter(|s| !started_on(s, here))
        .map(|s| Elsewhere {
            step: s.name.clone(),
            host: s.processes_host.clone().unwrap_or_default(),
            pgids: s.processes.iter().map(|&(pgid, _)| pgid).collect(),
        })
        .collect()
}

/// What the operator must know of groups on other hosts, one line each, then what to
/// do: `again` is the command that resumes (`waymark resume RUN --state-dir …`), `status`
/// the one that shows the run.
pub(crate) fn describe_elsewhere(groups: &[Elsewhere], again: &str, status: &str) -> Vec<String> {
    let here = crate::journal::current_host();
    let mut lines: Vec<String> = groups
        .iter()
        .map(|g| {
            let ids: Vec<String> = g.pgids.iter().map(u32::to_string).collect();
            format!(
                "step {}: process group(s) {} were started on host {}; from {here} waymark cannot tell whether they still run",
                g.step,
                ids.join(", "),
                g.host
            )
        })
        .collect();
    let mut hosts: Vec<&str> = groups.iter().map(|g| g.host.as_str()).collect();
    hosts.sort_unstable();
    hosts.dedup();
    let on = hosts.join(", ");
    lines.push(format!(
        "on {on}: `{status}` lists those still running, and `{again} --kill-orphans` (or \
         --wait-orphans) run there deals with them"
    ));
    lines.push(format!(
        "once they are gone (ended, killed there, or {on} is down): `{again} --orphans-checked`"
    ));
    lines
}

/// One line per orphan: step, group, and what is in it.
pub(crate) fn describe(orphans: &[Orphan]) -> Vec<String> {
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
pub(crate) fn kill_command(o: &Orphan) -> String {
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
pub(crate) fn kill(orphans: &[Orphan], grace: Duration) -> Vec<Orphan> {
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
pub(crate) fn wait(orphans: &[Orphan], limit: Option<Duration>) -> Vec<Orphan> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Event;
    use crate::run_state::tests::Journal;

    fn process(j: &mut Journal, step: &str, pgid: u32, host: Option<&str>) {
        j.push(Event::ProcessStarted {
            step: step.into(),
            attempt: 1,
            pgid,
            start_time: 1,
            host: host.map(str::to_string),
        });
    }

    #[test]
    fn groups_are_judged_only_on_the_host_that_started_them() {
        // Started on `h` (`sample_run_started`); `old` was recorded before records named
        // their host, `moved` after a resume from `b`.
        let mut j = Journal::start(&[("old", "step"), ("new", "step"), ("moved", "step")]);
        j.started_step("old", 1);
        process(&mut j, "old", 5_000_001, None);
        j.started_step("new", 1);
        process(&mut j, "new", 5_000_002, Some("a"));
        j.push(Event::RunResumed {
            user: "alice".into(),
            host: "b".into(),
            plan_fingerprint: "fp".into(),
            changes: vec![],
            gates: vec![],
        });
        j.started_step("moved", 1);
        process(&mut j, "moved", 5_000_003, None);
        let state = j.replay(false);

        let from_h = elsewhere_of(&state, "h");
        let hosts: Vec<(&str, &str, &[u32])> = from_h
            .iter()
            .map(|e| (e.step.as_str(), e.host.as_str(), e.pgids.as_slice()))
            .collect();
        assert_eq!(
            hosts,
            [
                ("new", "a", &[5_000_002][..]),
                ("moved", "b", &[5_000_003][..])
            ]
        );
        let from_a = elsewhere_of(&state, "a");
        assert_eq!(
            from_a.iter().map(|e| e.step.as_str()).collect::<Vec<_>>(),
            ["old", "moved"]
        );
        // Those of this host are looked for in /proc (these pgids are beyond Linux's pid_max).
        assert!(find_on(&state, "h").is_empty());
    }
}
