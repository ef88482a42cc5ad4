//! `now()`: the wall clock for runbooks, as a `time` value that prints as RFC 3339 UTC,
//! compares, and subtracts to seconds — so a runbook can log when something happened,
//! measure how long a change took, or stop before a maintenance window closes without
//! shelling out to `date`.
//!
//! Reading the clock is a run-time act (a step's result must not depend on when the
//! runbook was loaded), so `now()` is refused at load time like the other primitives.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rhai::{Engine, EvalAltResult, NativeCallContext, Position};

use super::step_env::require;
use crate::duration::parse_duration;

/// A point in time (UTC), with millisecond precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Time(SystemTime);

impl Time {
    fn text(&self) -> String {
        humantime::format_rfc3339_millis(self.0).to_string()
    }

    /// Seconds since the Unix epoch (negative before it).
    fn unix(&self) -> f64 {
        match self.0.duration_since(UNIX_EPOCH) {
            Ok(d) => d.as_secs_f64(),
            Err(e) => -e.duration().as_secs_f64(),
        }
    }

    fn shifted(self, by: &str, later: bool, pos: Position) -> Result<Time, Box<EvalAltResult>> {
        let d = parse_duration(by).map_err(|e| err(e, pos))?;
        let t = if later {
            self.0.checked_add(d)
        } else {
            self.0.checked_sub(d)
        };
        t.map(Time)
            .ok_or_else(|| err(format!("time {} ± {by} is out of range", self.text()), pos))
    }
}

fn err(msg: impl Into<String>, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(msg.into().into(), pos))
}

/// `b - a` in seconds (negative when `b` is earlier).
fn seconds_between(a: &Time, b: &Time) -> f64 {
    match b.0.duration_since(a.0) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// Register `now()`, `parse_time()`, and the `time` type's operators and properties.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Time>("time");
    engine.register_fn(
        "now",
        |ctx: NativeCallContext| -> Result<Time, Box<EvalAltResult>> {
            require(&ctx, "now")?;
            Ok(Time(SystemTime::now()))
        },
    );
    engine.register_fn(
        "parse_time",
        |ctx: NativeCallContext, s: &str| -> Result<Time, Box<EvalAltResult>> {
            humantime::parse_rfc3339_weak(s.trim()).map(Time).map_err(|e| {
                err(
                    format!("parse_time: `{s}` is not an RFC 3339 time such as 2026-12-02T17:30:00Z ({e})"),
                    ctx.call_position(),
                )
            })
        },
    );
    engine.register_fn("to_string", |t: &mut Time| t.text());
    engine.register_fn("to_debug", |t: &mut Time| t.text());
    engine.register_get("unix", |t: &mut Time| t.unix());
    engine.register_get("elapsed", |t: &mut Time| {
        seconds_between(t, &Time(SystemTime::now()))
    });
    engine.register_fn("-", |a: Time, b: Time| seconds_between(&b, &a));
    engine.register_fn("+", |ctx: NativeCallContext, t: Time, by: &str| {
        t.shifted(by, true, ctx.call_position())
    });
    engine.register_fn("-", |ctx: NativeCallContext, t: Time, by: &str| {
        t.shifted(by, false, ctx.call_position())
    });
    engine.register_fn("==", |a: Time, b: Time| a == b);
    engine.register_fn("!=", |a: Time, b: Time| a != b);
    engine.register_fn("<", |a: Time, b: Time| a < b);
    engine.register_fn("<=", |a: Time, b: Time| a <= b);
    engine.register_fn(">", |a: Time, b: Time| a > b);
    engine.register_fn(">=", |a: Time, b: Time| a >= b);
    engine.register_fn("format_seconds", |secs: f64| format_seconds(secs));
}

/// Seconds as a duration a person reads ("1m 30s", "250ms"), the form waymark's options take.
fn format_seconds(secs: f64) -> String {
    if !secs.is_finite() {
        return format!("{secs}");
    }
    let sign = if secs < 0.0 { "-" } else { "" };
    let d = Duration::from_millis((secs.abs() * 1000.0).round().min(u64::MAX as f64) as u64);
    format!("{sign}{}", humantime::format_duration(d))
}
