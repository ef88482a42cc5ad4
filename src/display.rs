//! The live view of a run: one line per state change on stderr, with elapsed time.
//!
//! Plain lines work in a terminal and in a log file alike; the journal, not this view,
//! is the record of what happened. In a terminal that takes colour, a pinned progress
//! area ([`crate::live`]) stays below the lines.

use crate::journal::Event;
use crate::scheduler::Node;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Prints run progress as events become durable.
pub(crate) struct Display {
    nodes: Arc<Vec<Node>>,
    started: Instant,
    state: Mutex<(usize, HashMap<String, Instant>)>,
    color: bool,
    /// stderr is a terminal: worth a "still running" line now and then.
    terminal: bool,
    stop: std::sync::atomic::AtomicBool,
    /// `warn()` lines raised during the run, as (step, line), for the recap.
    warnings: Mutex<Vec<(String, String)>>,
    /// Output waiting while a gate prompt owns the terminal (`Some` while it does).
    held: Mutex<Option<Vec<String>>>,
    /// The pinned progress area, in a terminal that takes colour (see [`Display::pinned`]).
    live: Option<crate::live::Live>,
}

/// `-v` given: `log()` lines of steps are shown live too (`warn()` lines always are).
static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Show steps' `log()` lines live (set from `-v`).
pub(crate) fn set_verbose(on: bool) {
    VERBOSE.store(on, std::sync::atomic::Ordering::Relaxed);
}

impl Display {
    /// A display for these nodes; `terminal` when stderr is one; `already_done`
    /// counts nodes finished before this process (resume).
    pub(crate) fn new(nodes: Arc<Vec<Node>>, terminal: bool, already_done: usize) -> Self {
        let color = crate::term::color(terminal);
        Self {
            terminal,
            nodes,
            started: Instant::now(),
            state: Mutex::new((already_done, HashMap::new())),
            color,
            stop: std::sync::atomic::AtomicBool::new(false),
            warnings: Mutex::new(Vec::new()),
            held: Mutex::new(None),
            live: None,
        }
    }

    /// Pin a progress area at the bottom of the terminal (overall progress, failures,
    /// waiting gates, each running step's time) when stderr is a terminal that takes
    /// colour; a pipe, CI log, `TERM=dumb` or `NO_COLOR` keeps the plain line log.
    pub(crate) fn pinned(mut self) -> Self {
        if self.color {
            let done = self.state.lock().map(|s| s.0).unwrap_or(0);
            self.live = Some(crate::live::Live::new(self.nodes.len(), done));
        }
        self
    }

    /// In a terminal, every `every` say what has been running a while and for how long,
    /// so a long step never looks like a hung tool.
    pub(crate) fn start_ticker(self: &Arc<Self>, every: std::time::Duration) {
        // The pinned area shows every running step's time already.
        if !self.terminal || self.live.is_some() {
            return;
        }
        let me = Arc::downgrade(self);
        std::thread::spawn(move || loop {
            std::thread::sleep(every);
            let Some(d) = me.upgrade() else { return };
            if d.stop.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            // While a prompt holds the terminal a "still running" line would be stale by
            // the time it is shown: skip it rather than pile them up.
            let held = d.held.lock().is_ok_and(|h| h.is_some());
            if let (false, Some(line)) = (held, d.running_line(every)) {
                let mut line = line;
                line.push('\n');
                d.write(line);
            }
        });
    }

    /// `… running 2/10: backup-cmdb 1m05s, package-refresh 12s` for steps running ≥ `min`.
    pub(crate) fn running_line(&self, min: std::time::Duration) -> Option<String> {
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
    pub(crate) fn event(&self, ev: &Event) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let total = self.nodes.len();
        let line = match ev {
            Event::StepStarted { step, attempt } => {
                if let Some(live) = &self.live {
                    live.started(step, *attempt);
                }
                st.1.insert(step.clone(), Instant::now());
                let a = if *attempt > 1 {
                    format!(" (attempt {attempt})")
                } else {
                    String::new()
                };
                format!("{} {step}{a}", self.paint("36", "▶"))
            }
            Event::StepSucceeded { step, .. } => {
                if let Some(live) = &self.live {
                    live.gate_decided(step);
                    live.ended(step, true, false);
                }
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
                if let Some(live) = &self.live {
                    live.gate_decided(step);
                    live.ended(step, !will_retry, !will_retry);
                }
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
                if let Some(live) = &self.live {
                    live.ended(step, true, false);
                }
                st.0 += 1;
                format!(
                    "{} {step} skipped: {reason}  ({}/{total})",
                    self.paint("33", "−"),
                    st.0
                )
            }
            // Shown by the executor ([`Display::gate_waits`]) in order with the decisions
            // it journals; the scheduler's copy of the event arrives on another thread.
            Event::GateWaiting { .. } => return,
            Event::RehearsalStarted { gate, .. } => {
                format!("{} gate {gate}: rehearsing", self.paint("36", "▶"))
            }
            Event::RehearsalEnded {
                gate,
                error: Some(error),
                ..
            } => format!(
                "{} gate {gate}: rehearsal failed: {error}",
                self.paint("31", "✗")
            ),
            Event::RehearsalEnded { gate, .. } => {
                format!("{} gate {gate}: rehearsed", self.paint("32", "✓"))
            }
            Event::GateApproved {
                gate,
                by,
                account,
                host,
                note,
                ..
            } => {
                if let Some(live) = &self.live {
                    live.gate_decided(gate);
                }
                let how = if note.as_deref() == Some("--yes") {
                    " (--yes)".to_string()
                } else {
                    decider(by, account.as_deref(), host)
                };
                let by = account.as_deref().unwrap_or(by);
                format!(
                    "{} gate {gate} approved by {by}{how}",
                    self.paint("32", "✓")
                )
            }
            Event::GateRejected {
                gate,
                by,
                account,
                host,
                ..
            } => {
                if let Some(live) = &self.live {
                    live.gate_decided(gate);
                }
                let how = decider(by, account.as_deref(), host);
                let by = account.as_deref().unwrap_or(by);
                format!(
                    "{} gate {gate} rejected by {by}{how}",
                    self.paint("31", "✗")
                )
            }
            _ => return,
        };
        drop(st);
        self.line(&line);
    }

    /// Write `[hh:mm:ss] text`.
    fn line(&self, text: &str) {
        let t = self.started.elapsed().as_secs();
        let clock = format!("[{:02}:{:02}:{:02}]", t / 3600, t / 60 % 60, t % 60);
        // One write per line: stderr is unbuffered, and `eprintln!` would issue a write
        // for every formatted piece (four per line), which showed in 10,000-step runs.
        let mut out = String::with_capacity(clock.len() + text.len() + 2);
        out.push_str(&clock);
        out.push(' ');
        out.push_str(text);
        out.push('\n');
        self.write(out);
    }

    /// The one way output reaches the terminal: held while a prompt owns it.
    fn write(&self, text: String) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        match (held.as_mut(), &self.live) {
            (Some(buf), _) => buf.push(text),
            (None, Some(live)) => live.println(text.strip_suffix('\n').unwrap_or(&text)),
            // A closed stderr must not stop the run.
            (None, None) => crate::term::write_err(&text),
        }
    }

    /// A prompt takes the terminal: lines are kept until [`Display::release`].
    pub(crate) fn hold(&self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.get_or_insert_with(Vec::new);
        if let Some(live) = &self.live {
            live.hide();
        }
    }

    /// The prompt is gone: show what was held, in order, and write directly again.
    pub(crate) fn release(&self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(buf) = held.take() {
            if !buf.is_empty() {
                crate::term::write_err(&buf.concat());
            }
            if let Some(live) = &self.live {
                live.show();
            }
        }
    }

    /// One line a step wrote to its log: `warn()` lines are shown (and kept for the
    /// recap), `log()` lines with `-v`; process output stays in the step's log file.
    pub(crate) fn step_line(&self, step: &str, stream: &str, line: &str) {
        match stream {
            "warn" => {
                self.warnings
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((step.to_string(), line.to_string()));
                self.notice(&format!("{step}: {line}"));
            }
            "log" if VERBOSE.load(std::sync::atomic::Ordering::Relaxed) => {
                self.line(&format!("{} {step}: {line}", self.paint("2", "·")));
            }
            _ => {}
        }
    }

    /// `⏸ gate G waits for approval`.
    pub(crate) fn gate_waits(&self, gate: &str) {
        if let Some(live) = &self.live {
            live.gate_waiting(gate);
        }
        self.line(&format!(
            "{} gate {gate} waits for approval",
            self.paint("35", "⏸")
        ));
    }

    /// The `warn()` lines raised so far, as (step, line).
    pub(crate) fn warnings(&self) -> Vec<(String, String)> {
        self.warnings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How long this display has been running.
    pub(crate) fn elapsed(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// A line that is not an event: what a gate decided beyond the journal, a warning.
    pub(crate) fn notice(&self, line: &str) {
        self.line(&format!("{} {line}", self.paint("33", "!")));
    }

    /// Called once the run stops.
    pub(crate) fn finish(&self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(live) = &self.live {
            live.clear();
        }
    }
}

/// ` (as NAME, from HOST)`: the display name when it differs from the account, and the host,
/// so an operator sees who decided and where.
fn decider(by: &str, account: Option<&str>, host: &str) -> String {
    match account {
        Some(a) if a != by => format!(" (as {by}, on {host})"),
        _ => format!(" (on {host})"),
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
            budgeted: false,
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
