//! The general primitives scripts call inside step closures (`log`, `warn`, `fail`,
//! `sleep`, `wait_until`, `secret`); processes are in [`super::exec`], estate
//! operations in [`super::estate_ops`].
//!
//! Each one finds the running step's [`StepEnv`] (see [`super::step_env`]). At load time
//! there is none, so anything with a side effect refuses to run and the error names the
//! call and its position: loading a runbook cannot touch the world.

use super::step_env::{interruptible_sleep, require, rt_err};
use crate::duration::parse_duration;
use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext, Position};
use std::time::Duration;

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

/// Register the general primitives on `engine`.
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
