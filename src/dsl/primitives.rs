//! Primitives scripts call inside step closures (`exec`, `sh`, `ps`, `log`, `sleep`, ...).
//!
//! Each one finds the running step's [`StepEnv`] in a thread-local set by the executor.
//! At load time there is none, so anything with a side effect refuses to run and the
//! error names the call and its position: loading a runbook cannot touch the world.

use crate::cancel::{CancelReason, CancelToken};
use crate::duration::parse_duration;
use crate::redact::Redactor;
use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext, Position};
use std::cell::RefCell;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything a running step's primitives need.
pub struct StepEnv {
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
pub type DryCall = (String, Vec<String>);

/// What a step would do, collected during `--dry-run`.
#[derive(Debug, Clone, Default)]
pub struct DryRun(Arc<std::sync::Mutex<Vec<DryCall>>>);

impl DryRun {
    /// Note that `what` would run, with its exact commands.
    pub fn record(&self, what: String, commands: Vec<String>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((what, commands));
    }

    /// Everything noted so far, in order.
    pub fn take(&self) -> Vec<DryCall> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The result of something that would have run: unknown, standing for `what`.
    pub fn unknown(&self, what: impl Into<Arc<str>>) -> Dynamic {
        let what = what.into();
        super::unknown::touch(&what);
        super::unknown::Unknown::value(what)
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<StepEnv>>> = const { RefCell::new(None) };
}

/// Run `f` (a step closure call) with `env` as the current step environment.
pub fn with_env<T>(env: Arc<StepEnv>, f: impl FnOnce() -> T) -> T {
    let prev = CURRENT.with(|c| c.replace(Some(env)));
    let out = f();
    CURRENT.with(|c| *c.borrow_mut() = prev);
    out
}

fn current() -> Option<Arc<StepEnv>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Why the current step must stop, if it must (checked by the engine's progress hook).
pub fn cancelled_reason() -> Option<String> {
    // Called on every script operation: look, don't clone the environment.
    let reason = CURRENT.with(|c| c.borrow().as_ref().and_then(|env| env.cancel.reason()))?;
    Some(match reason {
        CancelReason::Timeout => "the step's timeout expired".to_string(),
        CancelReason::Interrupted => "the run was interrupted".to_string(),
    })
}

/// `print`/`debug`: into the step log when inside a step, else to stderr.
pub fn print_line(stream: &str, text: &str) {
    match current() {
        Some(env) => env.log.line(stream, text),
        None => errln!("{text}"),
    }
}

fn rt_err(msg: impl Into<String>, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(msg.into().into(), pos))
}

/// The running step's environment, or the load-time refusal naming `what`.
pub fn require(ctx: &NativeCallContext, what: &str) -> Result<Arc<StepEnv>, Box<EvalAltResult>> {
    current().ok_or_else(|| {
        rt_err(
            format!("`{what}` acts on the world and cannot be called while the runbook loads: call it inside a step's `run` closure"),
            ctx.call_position(),
        )
    })
}

/// Sleep that wakes early when the step is cancelled (and then fails the step).
pub fn interruptible_sleep(
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

fn duration_arg(v: &Dynamic, what: &str, pos: Position) -> Result<Duration, Box<EvalAltResult>> {
    if v.is_string() {
        let s = v.clone().into_string().unwrap_or_default();
        return parse_duration(&s).map_err(|e| rt_err(format!("{what}: {e}"), pos));
    }
    Err(rt_err(
        format!("{what}: expected a duration string such as \"30s\""),
        pos,
    ))
}

/// Options of `wait_until(probe, #{ ... })`.
pub const WAIT_OPTIONS: &[&str] = &["timeout", "every", "message"];

/// Register every primitive on `engine`.
pub fn register(engine: &mut Engine) {
    engine.register_fn(
        "log",
        |ctx: NativeCallContext, msg: Dynamic| -> Result<(), Box<EvalAltResult>> {
            let env = require(&ctx, "log")?;
            // What a closure says in a dry-run (`if ctx.dry_run { log(...) }`) is part
            // of its description.
            if let Some(dry) = &env.dry_run {
                dry.record(format!("log: {msg}"), Vec::new());
            }
            env.log.line("log", &msg.to_string());
            Ok(())
        },
    );
    engine.register_fn(
        "warn",
        |ctx: NativeCallContext, msg: Dynamic| -> Result<(), Box<EvalAltResult>> {
            let env = require(&ctx, "warn")?;
            env.log.line("warn", &msg.to_string());
            Ok(())
        },
    );
    engine.register_fn(
        "fail",
        |ctx: NativeCallContext, msg: Dynamic| -> Result<(), Box<EvalAltResult>> {
            Err(rt_err(msg.to_string(), ctx.call_position()))
        },
    );
    engine.register_fn(
        "sleep",
        |ctx: NativeCallContext, d: Dynamic| -> Result<(), Box<EvalAltResult>> {
            let env = require(&ctx, "sleep")?;
            let d = duration_arg(&d, "sleep", ctx.call_position())?;
            // A dry-run never waits: it says it would.
            if let Some(dry) = &env.dry_run {
                dry.record(
                    format!("sleep {}", crate::duration::format_duration(d)),
                    Vec::new(),
                );
                return Ok(());
            }
            interruptible_sleep(&env, d, ctx.call_position())
        },
    );
    engine.register_fn(
        "wait_until",
        |ctx: NativeCallContext, probe: FnPtr, opts: Map| -> Result<bool, Box<EvalAltResult>> {
            wait_until(&ctx, probe, &opts)
        },
    );
    engine.register_fn(
        "wait_until",
        |ctx: NativeCallContext, probe: FnPtr| -> Result<bool, Box<EvalAltResult>> {
            wait_until(&ctx, probe, &Map::new())
        },
    );
    engine.register_fn(
        "secret",
        |ctx: NativeCallContext, name: &str| -> Result<String, Box<EvalAltResult>> {
            let env = require(&ctx, "secret")?;
            crate::secret::resolve(name, &env.redactor).map_err(|e| rt_err(e, ctx.call_position()))
        },
    );
    super::exec::register(engine);
    super::estate_ops::register(engine);
    super::unknown::register(engine);
}

fn wait_until(
    ctx: &NativeCallContext,
    probe: FnPtr,
    opts: &Map,
) -> Result<bool, Box<EvalAltResult>> {
    let env = require(ctx, "wait_until")?;
    let pos = ctx.call_position();
    for k in opts.keys() {
        if !WAIT_OPTIONS.contains(&k.as_str()) {
            return Err(rt_err(
                format!(
                    "wait_until: unknown option `{k}` (options: {})",
                    WAIT_OPTIONS.join(", ")
                ),
                pos,
            ));
        }
    }
    let timeout = match opts.get("timeout") {
        Some(v) => duration_arg(v, "wait_until timeout", pos)?,
        None => Duration::from_secs(300),
    };
    let every = match opts.get("every") {
        Some(v) => duration_arg(v, "wait_until every", pos)?,
        None => Duration::from_secs(5),
    };
    if let Some(dry) = &env.dry_run {
        // Describe one poll and move on: the condition's answer is only known at run
        // time, and what follows runs only once it holds.
        dry.record(
            format!(
                "wait until the condition below holds (every {}, at most {}; the step fails after that)",
                crate::duration::format_duration(every),
                crate::duration::format_duration(timeout)
            ),
            Vec::new(),
        );
        let _ = probe.call_within_context::<Dynamic>(ctx, ());
        return Ok(true);
    }
    let message = opts.get("message").map(|m| m.to_string());
    let deadline = crate::duration::deadline_after(timeout);
    loop {
        let ok = probe.call_within_context::<Dynamic>(ctx, ())?;
        if ok.as_bool().unwrap_or(false) {
            return Ok(true);
        }
        if crate::duration::deadline_after(every) > deadline {
            let waited = crate::duration::format_duration(timeout);
            // The author's words say what was awaited; without them, the last answer
            // of the probe is the best clue (a `false` and a `()` mean different bugs).
            let text = match &message {
                Some(m) => format!("{m} (waited {waited})"),
                None => {
                    let mut last = format!("{ok:?}");
                    if last.chars().count() > 200 {
                        last = last.chars().take(200).collect::<String>() + "…";
                    }
                    format!("wait_until: condition still false after {waited}; the probe last returned {last}")
                }
            };
            return Err(rt_err(text, pos));
        }
        interruptible_sleep(&env, every, pos)?;
    }
}
