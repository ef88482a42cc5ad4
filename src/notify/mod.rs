//! Notifications: tell people who are not at the operator's terminal that a gate waits
//! for them, or that the run paused, failed, was cancelled or succeeded.
//!
//! Two kinds of hook, set in the runbook (`runbook(#{ notify: #{ webhook, command } })`),
//! the inventory (`[notify]`) or the environment (`WAYMARK_NOTIFY_WEBHOOK`,
//! `WAYMARK_NOTIFY_COMMAND`), each key taken from the most specific place that sets it
//! (environment, then inventory, then runbook): a webhook gets the payload as a JSON
//! `POST` ([`http`]: plain `http://` only), a command gets it on stdin.
//!
//! A notification must never harm the run: hooks are called on a thread of their own
//! (the scheduler only queues a payload), a failing hook is retried a few times with a
//! short backoff and then logged as a warning, and the payload passes the run's
//! redactor so a secret never leaves in it.

pub(crate) mod http;

use crate::redact::Redactor;
use serde_json::{json, Value};
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

/// Where notifications go; empty when nobody configured a hook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// `http://` URL receiving a JSON `POST`.
    pub webhook: Option<String>,
    /// Program and arguments, run with the payload on stdin (no shell).
    pub command: Option<Vec<String>>,
}

impl Hooks {
    /// No hook at all.
    pub fn is_empty(&self) -> bool {
        self.webhook.is_none() && self.command.is_none()
    }

    /// Each key from `self`, else from `fallback`.
    pub fn or(self, fallback: &Hooks) -> Hooks {
        Hooks {
            webhook: self.webhook.or_else(|| fallback.webhook.clone()),
            command: self.command.or_else(|| fallback.command.clone()),
        }
    }

    /// The hooks set in the environment. `WAYMARK_NOTIFY_COMMAND` is either a JSON array
    /// (`["notify-send", "waymark"]`, run as is) or a command line run by `sh -c`.
    pub fn from_env() -> Result<Hooks, String> {
        let get = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let command = match get("WAYMARK_NOTIFY_COMMAND") {
            None => None,
            Some(v) if v.starts_with('[') => {
                let argv: Vec<String> = serde_json::from_str(&v).map_err(|e| {
                    format!("WAYMARK_NOTIFY_COMMAND is not a JSON array of strings: {e}")
                })?;
                check_command(&argv).map_err(|e| format!("WAYMARK_NOTIFY_COMMAND: {e}"))?;
                Some(argv)
            }
            Some(v) => Some(vec!["sh".into(), "-c".into(), v]),
        };
        let webhook = get("WAYMARK_NOTIFY_WEBHOOK");
        if let Some(w) = &webhook {
            http::parse_url(w).map_err(|e| format!("WAYMARK_NOTIFY_WEBHOOK: {e}"))?;
        }
        Ok(Hooks { webhook, command })
    }
}

/// A command hook needs a program to run.
pub(crate) fn check_command(argv: &[String]) -> Result<(), String> {
    match argv.first() {
        Some(p) if !p.trim().is_empty() => Ok(()),
        _ => Err(
            "the command needs at least a program name, e.g. [\"notify-send\", \"waymark\"]".into(),
        ),
    }
}

/// How hard delivery tries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Delivery {
    /// Attempts per hook and payload.
    pub attempts: u32,
    /// Wait before the second attempt; doubles after each failure.
    pub backoff: Duration,
    /// Connect / read / write timeout of a webhook, and run time limit of a command.
    pub timeout: Duration,
    /// How long a gate must have waited before its approvers are called: a gate decided
    /// within that time (at the terminal prompt, or by an approval already handed in
    /// before a resume, which the run picks up within a second) calls nobody.
    pub gate_delay: Duration,
}

impl Default for Delivery {
    fn default() -> Self {
        Delivery {
            attempts: 4,
            backoff: Duration::from_millis(250),
            timeout: Duration::from_secs(10),
            gate_delay: Duration::from_secs(3),
        }
    }
}

/// What the delivery thread is told.
enum Msg {
    /// Deliver this payload now (after any gate notification still held back).
    Now(Value),
    /// A gate began waiting: deliver this payload unless it is decided first.
    Gate(String, Value),
    /// The gate was approved or rejected.
    Decided(String),
}

/// What happened, as the payload's `event` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A gate began waiting for approval.
    GateWaiting,
    /// The run stopped to wait for people.
    RunPaused,
    /// The run failed.
    RunFailed,
    /// The run was interrupted.
    RunCancelled,
    /// The run finished successfully.
    RunSucceeded,
}

impl Kind {
    /// The payload's `event` value.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::GateWaiting => "gate_waiting",
            Kind::RunPaused => "run_paused",
            Kind::RunFailed => "run_failed",
            Kind::RunCancelled => "run_cancelled",
            Kind::RunSucceeded => "run_succeeded",
        }
    }
}

/// The run a notification is about, and how its commands are spelled.
#[derive(Debug, Clone)]
pub(crate) struct RunInfo {
    /// The run's id.
    pub run_id: String,
    /// The runbook's name.
    pub runbook: String,
    /// ` --state-dir DIR` when the commands need it, else empty.
    pub state_dir_flag: String,
}

/// A gate as shown to its approvers.
#[derive(Debug, Clone)]
pub(crate) struct GateInfo {
    /// The gate's name.
    pub name: String,
    /// Its title.
    pub title: Option<String>,
    /// What the approver must do or check.
    pub instructions: Option<String>,
}

/// The JSON payload of one notification (shape in docs/operator-guide.md).
pub(crate) fn payload(run: &RunInfo, kind: Kind, gates: &[GateInfo], failed: &[String]) -> Value {
    let id = &run.run_id;
    let sd = &run.state_dir_flag;
    let gate_json: Vec<Value> = gates
        .iter()
        .map(|g| {
            json!({
                "name": g.name,
                "title": g.title,
                "instructions": g.instructions,
                "approve": format!("waymark approve {id} {}{sd}", g.name),
                "reject": format!("waymark reject {id} {} --note \"why\"{sd}", g.name),
            })
        })
        .collect();
    let resume = format!("waymark resume {id}{sd}");
    let names: Vec<&str> = gates.iter().map(|g| g.name.as_str()).collect();
    let text = match kind {
        Kind::GateWaiting => format!(
            "waymark: gate {} of run {id} ({}) waits for approval: waymark approve {id} {}{sd}",
            names.join(", "),
            run.runbook,
            names.first().copied().unwrap_or("")
        ),
        Kind::RunPaused => format!(
            "waymark: run {id} ({}) paused, waiting for approval of {}; then: {resume}",
            run.runbook,
            names.join(", ")
        ),
        Kind::RunFailed => format!(
            "waymark: run {id} ({}) FAILED: {}; after fixing it: {resume}",
            run.runbook,
            failed.join(", ")
        ),
        Kind::RunCancelled => format!(
            "waymark: run {id} ({}) was cancelled; continue with: {resume}",
            run.runbook
        ),
        Kind::RunSucceeded => format!("waymark: run {id} ({}) succeeded", run.runbook),
    };
    let mut commands = json!({
        "status": format!("waymark status {id}{sd}"),
        "report": format!("waymark report {id}{sd}"),
    });
    if kind != Kind::RunSucceeded {
        commands["resume"] = json!(resume);
    }
    if let Some(g) = gate_json.first() {
        commands["approve"] = g["approve"].clone();
    }
    json!({
        "event": kind.as_str(),
        "run_id": id,
        "runbook": run.runbook,
        "host": crate::journal::current_host(),
        "at": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "text": text,
        "gates": gate_json,
        "failed": failed,
        "commands": commands,
    })
}

/// Delivers payloads to the hooks on a thread of its own, in order.
pub(crate) struct Notifier {
    // Behind locks so the notifier can be shared with the scheduler's observer and
    // still be finished by whoever ends the run.
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    done: Mutex<mpsc::Receiver<()>>,
}

impl Notifier {
    /// Start the delivery thread; `None` when there is no hook (nothing to do).
    pub(crate) fn start(hooks: Hooks, redactor: Redactor, delivery: Delivery) -> Option<Notifier> {
        if hooks.is_empty() {
            return None;
        }
        let webhook = match hooks.webhook.as_deref().map(http::parse_url).transpose() {
            Ok(w) => w,
            Err(e) => {
                warn(&format!("notifications: {e}"));
                None
            }
        };
        let (tx, rx) = mpsc::channel::<Msg>();
        let (done_tx, done) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("notify".into())
            .spawn(move || {
                let send = |mut p: Value| {
                    // Scrubbed at delivery, not when queued: a secret read by a step that
                    // is still running is known to the redactor by now.
                    redactor.scrub_json(&mut p);
                    let body = serde_json::to_vec(&p).unwrap_or_default();
                    let event = p["event"].as_str().unwrap_or("").to_string();
                    if let Some(url) = &webhook {
                        deliver(&event, "webhook", delivery, || {
                            http::post_json(url, &body, delivery.timeout).map(|_| ())
                        });
                    }
                    if let Some(argv) = &hooks.command {
                        deliver(&event, "command", delivery, || {
                            run_command(argv, &body, &event, delivery.timeout)
                        });
                    }
                };
                // Gate notifications held back until `gate_delay` passes, oldest first.
                let mut held: Vec<(Instant, String, Value)> = Vec::new();
                loop {
                    let msg = match held.first() {
                        Some((due, _, _)) => {
                            match rx.recv_timeout(due.saturating_duration_since(Instant::now())) {
                                Ok(m) => Some(m),
                                Err(mpsc::RecvTimeoutError::Timeout) => None,
                                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                            }
                        }
                        None => match rx.recv() {
                            Ok(m) => Some(m),
                            Err(_) => break,
                        },
                    };
                    match msg {
                        None => {
                            while held
                                .first()
                                .is_some_and(|(due, _, _)| *due <= Instant::now())
                            {
                                send(held.remove(0).2);
                            }
                        }
                        Some(Msg::Gate(gate, p)) => {
                            held.push((Instant::now() + delivery.gate_delay, gate, p))
                        }
                        Some(Msg::Decided(gate)) => held.retain(|(_, g, _)| *g != gate),
                        Some(Msg::Now(p)) => {
                            // Keep the order of events: a gate that still waits was
                            // waiting before the run paused or ended.
                            for (_, _, p) in held.drain(..) {
                                send(p);
                            }
                            send(p);
                        }
                    }
                }
                for (_, _, p) in held {
                    send(p);
                }
                let _ = done_tx.send(());
            });
        if let Err(e) = spawned {
            warn(&format!(
                "notifications are off: cannot start their thread: {e}"
            ));
            return None;
        }
        Some(Notifier {
            tx: Mutex::new(Some(tx)),
            done: Mutex::new(done),
        })
    }

    /// Queue a payload; returns at once.
    pub(crate) fn send(&self, payload: Value) {
        self.post(Msg::Now(payload));
    }

    /// `gate` began waiting: queue its payload, delivered unless the gate is decided
    /// within [`Delivery::gate_delay`].
    pub(crate) fn gate_waiting(&self, gate: &str, payload: Value) {
        self.post(Msg::Gate(gate.to_string(), payload));
    }

    /// `gate` was approved or rejected.
    pub(crate) fn gate_decided(&self, gate: &str) {
        self.post(Msg::Decided(gate.to_string()));
    }

    fn post(&self, msg: Msg) {
        if let Some(tx) = &*self.tx.lock().unwrap_or_else(|e| e.into_inner()) {
            let _ = tx.send(msg);
        }
    }

    /// No more payloads: wait up to `wait` for the queued ones to be delivered (the
    /// run's last notification must not die with the process), then give up on them.
    pub(crate) fn finish(&self, wait: Duration) {
        let Some(tx) = self.tx.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        drop(tx);
        let done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        if done.recv_timeout(wait).is_err() {
            warn(&format!(
                "notifications: gave up waiting for the hooks after {}",
                crate::duration::format_duration(wait)
            ));
        }
    }
}

fn warn(message: &str) {
    tracing::warn!("{message}");
    // One write per line, like the live display, so the two never interleave mid-line;
    // a closed stderr must not stop anything.
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("warning: {message}\n").as_bytes());
}

/// Try `attempt` up to `d.attempts` times with doubling backoff; warn when all fail.
fn deliver(event: &str, what: &str, d: Delivery, mut attempt: impl FnMut() -> Result<(), String>) {
    let mut pause = d.backoff;
    for n in 1..=d.attempts.max(1) {
        match attempt() {
            Ok(()) => return,
            Err(e) if n < d.attempts => {
                tracing::warn!("notification {event} by {what}: attempt {n} failed: {e}");
                std::thread::sleep(pause);
                pause = pause.saturating_mul(2);
            }
            Err(e) => warn(&format!(
                "notification `{event}` by {what} failed {n} times, giving up (the run is not affected): {e}"
            )),
        }
    }
}

/// Run a command hook with `body` on stdin; fails on a non-zero exit or after `timeout`.
fn run_command(argv: &[String], body: &[u8], event: &str, timeout: Duration) -> Result<(), String> {
    let (program, args) = argv.split_first().ok_or("the command hook is empty")?;
    let mut child = Command::new(program)
        .args(args)
        .env("WAYMARK_NOTIFY_EVENT", event)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A command that ignores its stdin closes the pipe early; that is its business.
        let _ = stdin.write_all(body);
    }
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read as _;
                    let _ = e.by_ref().take(2048).read_to_string(&mut err);
                }
                let err = err.lines().last().unwrap_or("").trim().to_string();
                return Err(format!(
                    "`{program}` exited with {status}{}",
                    if err.is_empty() {
                        String::new()
                    } else {
                        format!(": {err}")
                    }
                ));
            }
            Ok(None) if started.elapsed() >= timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{program}` still ran after {}; killed",
                    crate::duration::format_duration(timeout)
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for `{program}`: {e}")),
        }
    }
}

#[cfg(test)]
mod tests;
