//! The running step's environment and the helpers every primitive shares: what a step
//! closure can reach (cancel token, log, redactor, dry-run recorder, estate), the
//! thread-local the executor sets around each closure call, and the load-time refusal.
//!
//! Its own module so the primitives (`primitives`, `exec`, `estate_ops`) depend on it and
//! not on each other: the `dsl/` modules form a DAG, with `engine` registering them all.

use crate::cancel::{CancelReason, CancelToken};
use crate::redact::Redactor;
use rhai::{Dynamic, EvalAltResult, NativeCallContext, Position};
use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything a running step's primitives need.
pub(crate) struct StepEnv {
    /// Set on timeout or Ctrl-C; primitives stop and the closure is interrupted.
    pub cancel: CancelToken,
    /// The step's log (redacts what it writes).
    pub log: crate::step_log::StepLog,
    /// Scrubs secret values from everything written.
    pub redactor: Redactor,
    /// `--dry-run`: primitives describe what they would do here instead of acting.
    pub dry_run: Option<DryRun>,
    /// The estate the run acts on.
    pub estate: Option<Arc<dyn crate::estate::Estate>>,
}

/// One thing a step would do: what, and the exact commands.
pub(crate) type DryCall = (String, Vec<String>);

/// What a step would do, collected during `--dry-run`.
#[derive(Debug, Clone, Default)]
pub(crate) struct DryRun(Arc<std::sync::Mutex<Vec<DryCall>>>);

impl DryRun {
    /// Note that `what` would run, with its exact commands.
    pub(crate) fn record(&self, what: String, commands: Vec<String>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((what, commands));
    }

    /// Everything noted so far, in order.
    pub(crate) fn take(&self) -> Vec<DryCall> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The result of something that would have run: unknown, standing for `what`.
    pub(crate) fn unknown(&self, what: impl Into<Arc<str>>) -> Dynamic {
        let what = what.into();
        super::unknown::touch(&what);
        super::unknown::Unknown::value(what)
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<StepEnv>>> = const { RefCell::new(None) };
}

/// Run `f` (a step closure call) with `env` as the current step environment.
pub(crate) fn with_env<T>(env: Arc<StepEnv>, f: impl FnOnce() -> T) -> T {
    let prev = CURRENT.with(|c| c.replace(Some(env)));
    let out = f();
    CURRENT.with(|c| *c.borrow_mut() = prev);
    out
}

fn current() -> Option<Arc<StepEnv>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Why the current step must stop, if it must (checked by the engine's progress hook).
pub(crate) fn cancelled_reason() -> Option<String> {
    // Called on every script operation: look, don't clone the environment.
    let reason = CURRENT.with(|c| c.borrow().as_ref().and_then(|env| env.cancel.reason()))?;
    Some(match reason {
        CancelReason::Timeout => "the step's timeout expired".to_string(),
        CancelReason::Interrupted => "the run was interrupted".to_string(),
    })
}

/// `print`/`debug`: into the step log when inside a step, else to stderr.
pub(crate) fn print_line(stream: &str, text: &str) {
    match current() {
        Some(env) => env.log.line(stream, text),
        None => errln!("{text}"),
    }
}

/// A script error at `pos`.
pub(crate) fn rt_err(msg: impl Into<String>, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(msg.into().into(), pos))
}

/// The running step's environment, or the load-time refusal naming `what`.
pub(crate) fn require(
    ctx: &NativeCallContext,
    what: &str,
) -> Result<Arc<StepEnv>, Box<EvalAltResult>> {
    current().ok_or_else(|| {
        rt_err(
            format!("`{what}` acts on the world and cannot be called while the runbook loads: call it inside a step's `run` closure"),
            ctx.call_position(),
        )
    })
}

/// Sleep that wakes early when the step is cancelled (and then fails the step).
pub(crate) fn interruptible_sleep(
    env: &StepEnv,
    d: Duration,
    pos: Position,
) -> Result<(), Box<EvalAltResult>> {
    let end = crate::duration::deadline_after(d);
    loop {
        if let Some(r) = cancelled_reason() {
            return Err(Box::new(EvalAltResult::ErrorTerminated(r.into(), pos)));
        }
        let now = Instant::now();
        if now >= end {
            return Ok(());
        }
        std::thread::sleep((end - now).min(Duration::from_millis(20)));
        let _ = env;
    }
}
