//! The gate prompt in the operator's terminal: one at a time, cancellable, and the owner of
//! the terminal while it is open.
//!
//! A blocking prompt library cannot be closed from outside, so a gate approved from another
//! shell would leave a dead menu that swallows the operator's next Enter. This prompt reads
//! raw lines from stdin with `poll()`, checking between reads whether its gate was decided
//! elsewhere (then it says who decided, from which host, and closes). While it is open the
//! live display holds step output and shows it when the prompt closes, so lines of parallel
//! steps never land inside the question. Gates that become ready meanwhile queue up, and each
//! gets its prompt in turn. Answers go through the approval inbox like any other approval.

use crate::display::Display;
use crate::inbox::Decision;
use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// What the operator must see to decide a gate.
#[derive(Debug, Clone)]
pub(crate) struct Ask {
    /// The gate's name.
    pub gate: String,
    /// Its title.
    pub title: String,
    /// What to do and check.
    pub instructions: String,
    /// What it still needs (`needs 2 approvals from distinct accounts`), if worth saying.
    pub needs: Option<String>,
    /// Why this terminal's account cannot approve it (the starter on a `separate_approver`
    /// gate, or an account that already approved): then only reject and pause are offered,
    /// and the prompt stays open until the approval comes from elsewhere.
    pub cannot_approve: Option<String>,
}

/// The operator's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Approve or reject `gate`, with an optional note.
    Decide {
        /// The gate.
        gate: String,
        /// Approve or reject.
        decision: Decision,
        /// The note typed, if any.
        note: Option<String>,
    },
    /// Stop asking: the run pauses once nothing else can run.
    Pause,
}

/// Called with each answer (on the prompt's thread).
pub(crate) type OnAnswer = Box<dyn Fn(Answer) + Send + Sync>;

#[derive(Default)]
struct State {
    queue: VecDeque<Ask>,
    /// The gate whose prompt is open.
    current: Option<String>,
    /// Why the open prompt must close, once it must.
    cancel: Option<String>,
    decided: HashSet<String>,
    paused: bool,
    closed: bool,
    started: bool,
}

/// Asks gates in the terminal, one at a time, on a thread of its own.
pub(crate) struct GatePrompter {
    display: Arc<Display>,
    state: Mutex<State>,
    wake: Condvar,
    on_answer: OnAnswer,
}

enum Read {
    Line(String),
    Cancelled(String),
    Eof,
}

impl GatePrompter {
    /// A prompter drawing on stderr, reading stdin, holding `display` while it asks.
    pub(crate) fn new(display: Arc<Display>, on_answer: OnAnswer) -> Arc<Self> {
        Arc::new(GatePrompter {
            display,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            on_answer,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queue `ask`; its prompt opens once the ones before it closed.
    pub(crate) fn ask(self: &Arc<Self>, ask: Ask) {
        let mut st = self.lock();
        if st.paused || st.closed || st.decided.contains(&ask.gate) {
            return;
        }
        st.queue.push_back(ask);
        if !st.started {
            st.started = true;
            let me = self.clone();
            let spawned = std::thread::Builder::new()
                .name("gate-prompt".into())
                .spawn(move || me.serve());
            if spawned.is_err() {
                // No thread, no prompt: the gate still waits for `waymark approve`.
                st.queue.clear();
                st.paused = true;
            }
        }
        self.wake.notify_all();
    }

    /// `gate` was decided (`why` says by whom): its prompt closes or is never shown.
    pub(crate) fn decided(&self, gate: &str, why: String) {
        let mut st = self.lock();
        st.decided.insert(gate.to_string());
        st.queue.retain(|a| a.gate != gate);
        if st.current.as_deref() == Some(gate) {
            st.cancel = Some(why);
        }
    }

    /// A prompt is open or waiting to open: the run should wait for it.
    pub(crate) fn busy(&self) -> bool {
        let st = self.lock();
        !st.paused && !st.closed && (st.current.is_some() || !st.queue.is_empty())
    }

    /// The run stopped: close any open prompt (saying `why`) and ask nothing more.
    pub(crate) fn close(&self, why: &str) {
        let mut st = self.lock();
        st.closed = true;
        st.queue.clear();
        if st.current.is_some() {
            // A gate decided just before the run ended keeps its own message (who decided).
            st.cancel.get_or_insert_with(|| why.to_string());
            drop(st);
            // The prompt thread notices within one poll interval and releases the display.
            for _ in 0..20 {
                if self.lock().current.is_none() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(25));
            }
        }
        self.wake.notify_all();
        self.display.release();
    }

    fn serve(self: Arc<Self>) {
        loop {
            let ask = {
                let mut st = self.lock();
                loop {
                    if st.closed || st.paused {
                        return;
                    }
                    if let Some(a) = st.queue.pop_front() {
                        st.current = Some(a.gate.clone());
                        st.cancel = None;
                        break a;
                    }
                    st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                }
            };
            self.display.hold();
            let answer = self.one(&ask);
            let pause = answer == Some(Answer::Pause);
            // The answer is handed over (to the inbox) while the prompt still counts as
            // open: the run keeps waiting for it, and the ask it makes before pausing finds
            // it. Handed over after, a run with nothing else to do paused on the gate the
            // operator had just approved.
            if let Some(a) = answer {
                (self.on_answer)(a);
            }
            {
                let mut st = self.lock();
                st.current = None;
                st.cancel = None;
                if pause {
                    st.paused = true;
                    st.queue.clear();
                }
            }
            self.display.release();
        }
    }

    // Ask one gate; `None` when it was decided elsewhere or the run stopped.
    fn one(&self, ask: &Ask) -> Option<Answer> {
        flush_typeahead();
        let mut text = format!("\n━━ gate {} — {}\n", ask.gate, ask.title);
        for l in ask.instructions.lines() {
            text.push_str(&format!("   {l}\n"));
        }
        if let Some(n) = &ask.needs {
            text.push_str(&format!("   ({n})\n"));
        }
        if let Some(why) = &ask.cannot_approve {
            text.push_str(&format!("   {why}\n"));
        }
        crate::term::write_err(&text);
        let question = match ask.cannot_approve {
            None => format!(
                "gate {}: [a]pprove, [r]eject or [p]ause (resume later)? ",
                ask.gate
            ),
            Some(_) => format!(
                "gate {}: [r]eject or [p]ause (resume later), or wait here for the approval? ",
                ask.gate
            ),
        };
        let choice = loop {
            crate::term::write_err(&question);
            match self.read_line() {
                Read::Line(l) => match l.trim().to_ascii_lowercase().as_str() {
                    "a" | "approve" if ask.cannot_approve.is_none() => break Decision::Approve,
                    "a" | "approve" => crate::term::write_err(&format!(
                        "{}\n",
                        ask.cannot_approve.as_deref().unwrap_or_default()
                    )),
                    "r" | "reject" => break Decision::Reject,
                    "p" | "pause" => {
                        crate::term::write_err(
                            "paused: the run stops once running steps finish; resume it later\n",
                        );
                        return Some(Answer::Pause);
                    }
                    _ if ask.cannot_approve.is_some() => {
                        crate::term::write_err("type r or p, then Enter\n")
                    }
                    _ => crate::term::write_err("type a, r or p, then Enter\n"),
                },
                Read::Cancelled(why) => {
                    crate::term::write_err(&format!("\n{why}\n"));
                    return None;
                }
                Read::Eof => return Some(Answer::Pause),
            }
        };
        crate::term::write_err(match choice {
            Decision::Approve => "note (what you checked; Enter for none): ",
            Decision::Reject => "why (Enter for no note): ",
        });
        let note = match self.read_line() {
            Read::Line(l) => Some(l.trim().to_string()).filter(|n| !n.is_empty()),
            Read::Cancelled(why) => {
                crate::term::write_err(&format!("\n{why}\n"));
                return None;
            }
            Read::Eof => None,
        };
        Some(Answer::Decide {
            gate: ask.gate.clone(),
            decision: choice,
            note,
        })
    }

    // One line from stdin, giving up when the open prompt is cancelled.
    fn read_line(&self) -> Read {
        let mut line = Vec::new();
        loop {
            if let Some(why) = self.lock().cancel.take() {
                return Read::Cancelled(why);
            }
            match read_byte(Duration::from_millis(100)) {
                ByteRead::Byte(b'\n') => {
                    return Read::Line(String::from_utf8_lossy(&line).into_owned());
                }
                ByteRead::Byte(b) => line.push(b),
                ByteRead::Nothing => {}
                ByteRead::Eof => return Read::Eof,
            }
        }
    }
}

enum ByteRead {
    Byte(u8),
    Nothing,
    Eof,
}

// One byte at a time: nothing is read ahead, so what the operator types after the prompt
// closed stays for whoever reads next.
#[cfg(unix)]
fn read_byte(wait: Duration) -> ByteRead {
    let mut fds = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, for the duration of the call.
    let n = unsafe { libc::poll(&mut fds, 1, wait.as_millis() as libc::c_int) };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        return if e.kind() == std::io::ErrorKind::Interrupted {
            ByteRead::Nothing
        } else {
            ByteRead::Eof
        };
    }
    if n == 0 {
        return ByteRead::Nothing;
    }
    let mut b = 0u8;
    // SAFETY: reads at most one byte into `b`, which outlives the call.
    let r = unsafe { libc::read(0, (&mut b as *mut u8).cast(), 1) };
    match r {
        1 => ByteRead::Byte(b),
        0 => ByteRead::Eof,
        _ => {
            let e = std::io::Error::last_os_error();
            if matches!(
                e.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::WouldBlock
            ) {
                ByteRead::Nothing
            } else {
                ByteRead::Eof
            }
        }
    }
}

#[cfg(not(unix))]
fn read_byte(_wait: Duration) -> ByteRead {
    use std::io::Read as _;
    let mut b = [0u8; 1];
    match std::io::stdin().read(&mut b) {
        Ok(1) => ByteRead::Byte(b[0]),
        _ => ByteRead::Eof,
    }
}

// Keys typed before a prompt appeared were meant for something else: an early `a` must not
// approve a gate the operator has not read.
fn flush_typeahead() {
    #[cfg(unix)]
    // SAFETY: tcflush on stdin has no memory-safety preconditions; failure is harmless.
    unsafe {
        libc::tcflush(0, libc::TCIFLUSH);
    }
}
