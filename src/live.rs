//! The pinned area of the live view: in a terminal, the bottom lines show the run's
//! progress (done / total, failed, waiting at gates, elapsed) and each running step
//! with its elapsed time, while event lines scroll above it.
//!
//! Drawn by indicatif (cursor movement, redraws, width handling are its job, not
//! hand-written escape codes here). [`crate::display::Display`] stays the one owner of
//! the terminal: it sends its lines through [`Live::println`] and hides the area while
//! a gate prompt has the screen. Only used where colour is (a terminal, no `NO_COLOR`,
//! no `TERM=dumb`); elsewhere the plain line log is the whole view.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

/// Running steps drawn one per line; more are summed up on one line.
const MAX_RUNNING_LINES: usize = 6;
/// How often the overall line's clock and a running step's spinner move.
const OVERALL_TICK: Duration = Duration::from_millis(500);
const SPINNER_TICK: Duration = Duration::from_millis(250);

/// The counts the summary line shows.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Steps and gates finished (succeeded, failed for good, skipped, decided).
    pub done: usize,
    /// All of them.
    pub total: usize,
    /// Failed for good.
    pub failed: usize,
    /// Gates waiting for approval, by name.
    pub waiting: BTreeSet<String>,
}

impl Progress {
    /// `3 failed · waiting: sim-upgrade, review-logs` (empty when nothing is notable).
    pub(crate) fn message(&self) -> String {
        let mut parts = Vec::new();
        if self.failed > 0 {
            parts.push(format!("{} failed", self.failed));
        }
        if !self.waiting.is_empty() {
            let names: Vec<&str> = self.waiting.iter().map(String::as_str).take(3).collect();
            let more = self.waiting.len().saturating_sub(names.len());
            let more = if more > 0 {
                format!(" +{more}")
            } else {
                String::new()
            };
            parts.push(format!(
                "{} waiting at gates: {}{more}",
                self.waiting.len(),
                names.join(", ")
            ));
        }
        parts.join(" · ")
    }
}

struct State {
    progress: Progress,
    /// Steps with a line of their own, and those beyond [`MAX_RUNNING_LINES`] in order.
    lines: HashMap<String, ProgressBar>,
    overflow: Vec<String>,
}

/// The pinned area.
pub(crate) struct Live {
    multi: MultiProgress,
    overall: ProgressBar,
    more: ProgressBar,
    state: Mutex<State>,
}

impl Live {
    /// A pinned area on stderr for a run of `total` nodes, `done` of them finished before.
    pub(crate) fn new(total: usize, done: usize) -> Live {
        Self::with_target(total, done, ProgressDrawTarget::stderr())
    }

    fn with_target(total: usize, done: usize, target: ProgressDrawTarget) -> Live {
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(total as u64));
        overall.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30.green/white}] {pos}/{len} done  {msg:.bold}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        overall.set_position(done as u64);
        overall.enable_steady_tick(OVERALL_TICK);
        let more = multi.add(ProgressBar::hidden());
        more.set_style(
            ProgressStyle::with_template("  {msg:.dim}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Live {
            multi,
            overall,
            more,
            state: Mutex::new(State {
                progress: Progress {
                    done,
                    total,
                    ..Progress::default()
                },
                lines: HashMap::new(),
                overflow: Vec::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn refresh(&self, st: &State) {
        self.overall.set_position(st.progress.done as u64);
        self.overall.set_message(st.progress.message());
        if st.overflow.is_empty() {
            self.more.finish_and_clear();
        } else {
            if self.more.is_finished() || self.more.is_hidden() {
                self.more.reset();
            }
            self.more.set_message(format!(
                "… and {} more running: {}",
                st.overflow.len(),
                st.overflow
                    .iter()
                    .take(4)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            self.more.tick();
        }
    }

    /// A step began an attempt.
    pub(crate) fn started(&self, step: &str, attempt: u32) {
        let mut st = self.lock();
        if st.lines.contains_key(step) || st.overflow.iter().any(|s| s == step) {
            return;
        }
        if st.lines.len() >= MAX_RUNNING_LINES {
            st.overflow.push(step.to_string());
        } else {
            let bar = self
                .multi
                .insert_before(&self.more, ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("  {spinner:.cyan} {msg} {elapsed:.dim}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            let a = if attempt > 1 {
                format!(" (attempt {attempt})")
            } else {
                String::new()
            };
            bar.set_message(format!("{step}{a}"));
            bar.enable_steady_tick(SPINNER_TICK);
            st.lines.insert(step.to_string(), bar);
        }
        self.refresh(&st);
    }

    /// A step's attempt ended; `finished` when no retry follows, `failed` when it failed
    /// for good.
    pub(crate) fn ended(&self, step: &str, finished: bool, failed: bool) {
        let mut st = self.lock();
        if let Some(bar) = st.lines.remove(step) {
            bar.finish_and_clear();
            self.multi.remove(&bar);
            // A step waiting for a line takes the freed one.
            if !st.overflow.is_empty() {
                let next = st.overflow.remove(0);
                drop(st);
                self.started(&next, 1);
                st = self.lock();
            }
        } else {
            st.overflow.retain(|s| s != step);
        }
        if finished {
            st.progress.done += 1;
        }
        if failed {
            st.progress.failed += 1;
        }
        self.refresh(&st);
    }

    /// A gate began waiting.
    pub(crate) fn gate_waiting(&self, gate: &str) {
        let mut st = self.lock();
        st.progress.waiting.insert(gate.to_string());
        self.refresh(&st);
    }

    /// A gate was decided (it no longer waits; its step end counts it as done).
    pub(crate) fn gate_decided(&self, gate: &str) {
        let mut st = self.lock();
        st.progress.waiting.remove(gate);
        self.refresh(&st);
    }

    /// The counts as drawn.
    #[cfg(test)]
    pub(crate) fn progress(&self) -> Progress {
        self.lock().progress.clone()
    }

    /// Print `line` (without its newline) above the pinned area.
    pub(crate) fn println(&self, line: &str) {
        // Fails only when the terminal is gone; the journal is the record.
        let _ = self.multi.println(line);
    }

    /// Take the pinned area off the screen (a prompt needs it); [`Live::show`] brings it back.
    ///
    /// Erasing and hiding are two steps, so nothing may draw between them: a steady tick
    /// there (on a loaded machine the ticker threads run whenever they get a core) drew the
    /// area again above the prompt, where nothing erased it. The ticks are stopped first —
    /// stopping joins each ticker thread — and holding the state lock keeps the run's own
    /// updates out until the area is hidden.
    pub(crate) fn hide(&self) {
        let st = self.lock();
        self.ticking(&st, false);
        let _ = self.multi.clear();
        self.multi.set_draw_target(ProgressDrawTarget::hidden());
    }

    /// Draw the pinned area again.
    pub(crate) fn show(&self) {
        let st = self.lock();
        self.multi.set_draw_target(ProgressDrawTarget::stderr());
        self.ticking(&st, true);
    }

    // The steady ticks: the overall line's clock and each running step's spinner.
    fn ticking(&self, st: &State, on: bool) {
        let bars = std::iter::once((&self.overall, OVERALL_TICK))
            .chain(st.lines.values().map(|b| (b, SPINNER_TICK)));
        for (bar, every) in bars {
            if on {
                bar.enable_steady_tick(every);
            } else {
                bar.disable_steady_tick();
            }
        }
    }

    /// The run stopped: remove the area so the scrollback holds only the event lines.
    pub(crate) fn clear(&self) {
        let st = self.lock();
        for bar in st.lines.values() {
            bar.finish_and_clear();
        }
        self.more.finish_and_clear();
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counts_follow_steps_gates_and_retries() {
        let live = Live::with_target(5, 1, ProgressDrawTarget::hidden());
        live.started("a", 1);
        live.ended("a", false, false); // failed, will retry
        live.started("a", 2);
        live.ended("a", true, false);
        live.started("b", 1);
        live.ended("b", true, true);
        live.gate_waiting("g");
        let p = live.progress();
        assert_eq!((p.done, p.total, p.failed), (3, 5, 1));
        assert_eq!(p.message(), "1 failed · 1 waiting at gates: g");
        live.gate_decided("g");
        assert_eq!(live.progress().message(), "1 failed");
        live.clear();
    }

    #[test]
    fn running_steps_beyond_the_lines_wait_their_turn() {
        let live = Live::with_target(20, 0, ProgressDrawTarget::hidden());
        for i in 0..MAX_RUNNING_LINES + 2 {
            live.started(&format!("s{i}"), 1);
        }
        assert_eq!(live.lock().lines.len(), MAX_RUNNING_LINES);
        assert_eq!(live.lock().overflow.len(), 2);
        live.ended("s0", true, false);
        assert!(live
            .lock()
            .lines
            .contains_key(&format!("s{MAX_RUNNING_LINES}")));
        assert_eq!(live.lock().overflow.len(), 1);
        let last = format!("s{}", MAX_RUNNING_LINES + 1);
        live.ended(&last, true, false);
        assert!(live.lock().overflow.is_empty());
        assert_eq!(live.progress().done, 2);
    }

    #[test]
    fn many_waiting_gates_are_summed_up() {
        let p = Progress {
            waiting: ["a", "b", "c", "d", "e"]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            ..Progress::default()
        };
        assert_eq!(p.message(), "5 waiting at gates: a, b, c +2");
    }
}
