//! The live view of a run: one line per state change on stderr, with elapsed time.
//!
//! Plain lines work in a terminal and in a log file alike; the journal, not this view,
//! is the record of what happened.

use crate::journal::Event;
use crate::scheduler::Node;
use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Prints run progress as events become durable.
pub struct Display {
    nodes: Arc<Vec<Node>>,
    started: Instant,
    state: Mutex<(usize, HashMap<String, Instant>)>,
    color: bool,
    stop: std::sync::atomic::AtomicBool,
}

impl Display {
    /// A display for these nodes; `color` when stderr is a terminal; `already_done`
    /// counts nodes finished before this process (resume).
    pub fn new(nodes: Arc<Vec<Node>>, color: bool, already_done: usize) -> Self {
        let color = color && std::env::var_os("NO_COLOR").is_none();
        Self {
            nodes,
            started: Instant::now(),
            state: Mutex::new((already_done, HashMap::new())),
            color,
            stop: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// In a terminal, every `every` say what has been running a while and for how long,
    /// so a long step never looks like a hung tool.
    pub fn start_ticker(self: &Arc<Self>, every: std::time::Duration) {
        if !self.color {
            return;
        }
        let me = Arc::downgrade(self);
        std::thread::spawn(move || loop {
            std::thread::sleep(every);
            let Some(d) = me.upgrade() else { return };
            if d.stop.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            if let Some(line) = d.running_line(every) {
                eprintln!("{line}");
            }
        });
    }

    /// `… running 2/10: backup-cmdb 1m05s, package-refresh 12s` for steps running ≥ `min`.
    pub fn running_line(&self, min: std::time::Duration) -> Option<String> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut long: Vec<(&String, std::time::Duration)> =
            st.1.iter()
                .map(|(n, t)| (n, t.elapsed()))
                .filter(|(_, e)| *e >= min)
                .collect();
        if long.is_empty() {
            return None;
        }
        long.sort_by_key(|l| std::cmp::Reverse(l.1));
        let items: Vec<String> = long
            .iter()
            .map(|(n, e)| {
                format!(
                    "{n} {}",
                    crate::duration::format_duration(std::time::Duration::from_secs(e.as_secs()))
                )
            })
            .collect();
        Some(format!(
            "{} running ({}/{} done): {}",
            self.paint("2", "…"),
            st.0,
            self.nodes.len(),
            items.join(", ")
        ))
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    /// Show one durable event.
    pub fn event(&self, ev: &Event) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let total = self.nodes.len();
        let t = self.started.elapsed().as_secs();
        let clock = format!("[{:02}:{:02}:{:02}]", t / 3600, t / 60 % 60, t % 60);
        let line = match ev {
            Event::StepStarted { step, attempt } => {
                st.1.insert(step.clone(), Instant::now());
                let a = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                format!("{} {step}{a}", self.paint("36", "▶"))
            }
            Event::StepSucceeded { step, .. } => {
                st.0 += 1;
                let took =
                    st.1.remove(step)
                        .map(|s| format!(" in {:.1}s", s.elapsed().as_secs_f64()))
                        .unwrap_or_default();
                format!("{} {step}{took}  ({}/{total})", self.paint("32", "✓"), st.0)
            }
            Event::StepFailed {
                step,
                error,
                will_retry,
                ..
            } => {
                if !will_retry {
                    st.0 += 1;
                }
                let what = if *will_retry {
                    "failed, will retry"
                } else {
                    "FAILED"
                };
                format!("{} {step} {what}: {error}", self.paint("31", "✗"))
            }
            Event::StepSkipped { step, reason } => {
                st.0 += 1;
                format!(
                    "{} {step} skipped: {reason}  ({}/{total})",
                    self.paint("33", "−"),
                    st.0
                )
            }
            Event::GateWaiting { gate } => {
                format!("{} gate {gate} waits for approval", self.paint("35", "⏸"))
            }
            Event::GateApproved { gate, by, .. } => {
                format!("{} gate {gate} approved by {by}", self.paint("32", "✓"))
            }
            Event::GateRejected { gate, by, .. } => {
                format!("{} gate {gate} rejected by {by}", self.paint("31", "✗"))
            }
            _ => return,
        };
        // One write per line: stderr is unbuffered, and `eprintln!` would issue a write
        // for every formatted piece (four per line), which showed in 10,000-step runs.
        let mut out = String::with_capacity(clock.len() + line.len() + 2);
        out.push_str(&clock);
        out.push(' ');
        out.push_str(&line);
        out.push('\n');
        // Like `eprintln!` but without its panic: a closed stderr must not stop the run.
        let _ = std::io::stderr().lock().write_all(out.as_bytes());
    }

    /// Called once the run stops.
    pub fn finish(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::NodeKind;

    #[test]
    fn the_running_line_names_long_steps_with_their_time() {
        let node = |n: &str| Node {
            name: n.into(),
            kind: NodeKind::Step,
            deps: vec![],
            dependents: vec![],
            when: crate::dsl::When::Success,
            retries: 0,
            retry_delay: std::time::Duration::ZERO,
            timeout: None,
            group: None,
        };
        let d = Display::new(Arc::new(vec![node("a"), node("b")]), false, 0);
        d.event(&Event::StepStarted {
            step: "a".into(),
            attempt: 1,
        });
        let line = d.running_line(std::time::Duration::ZERO).unwrap();
        assert!(line.contains("running (0/2 done): a 0s"), "{line}");
        d.event(&Event::StepSucceeded {
            step: "a".into(),
            attempt: 1,
            output: serde_json::Value::Null,
            verified: false,
        });
        assert_eq!(d.running_line(std::time::Duration::ZERO), None);
    }
}
