//! The value a `--dry-run` gives for anything only running something would tell: the
//! result of `exec`/`sh`/`ps` or of an estate operation, an earlier step's output.
//!
//! A dry-run must not present invented results as facts (an `exec` that "returned 0 with
//! empty output" shows the failure branch as skipped and makes parsing throw before the
//! commands that matter). An [`Unknown`] says what it stands for; reading a field of it
//! gives the same unknown, text built from it shows a placeholder, and anything that
//! decides on it (a comparison, a branch) stops that closure's description with
//! "depends on run time: …" instead of a Rhai error about types.

use rhai::{Dynamic, Engine, EvalAltResult, NativeCallContext};
use std::cell::RefCell;
use std::sync::Arc;

thread_local! {
    // The unknown value this thread's closure used last: what a Rhai error that did not
    // go through our operators (`for x in unknown`) most likely tripped over.
    static LAST: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// Forget the last unknown value used (a new closure's dry-run starts).
pub(crate) fn reset() {
    LAST.with(|l| *l.borrow_mut() = None);
}

/// Note that `what` was just produced or used.
pub(crate) fn touch(what: &Arc<str>) {
    LAST.with(|l| *l.borrow_mut() = Some(what.clone()));
}

fn last() -> Option<Arc<str>> {
    LAST.with(|l| l.borrow().clone())
}

/// Prefix of the error that stops a dry-run closure at a decision on an unknown value.
pub(crate) const DEPENDS: &str = "depends on run time: ";

/// A value known only at run time, and what it is (e.g. "the output of step preflight:smp02").
#[derive(Debug, Clone)]
pub(crate) struct Unknown(pub Arc<str>);

impl Unknown {
    /// An unknown value standing for `what`.
    pub(crate) fn value(what: impl Into<Arc<str>>) -> Dynamic {
        Dynamic::from(Unknown(what.into()))
    }

    fn placeholder(&self) -> String {
        format!("<{}>", self.0)
    }
}

fn decision(ctx: &NativeCallContext, u: &Unknown) -> Box<EvalAltResult> {
    touch(&u.0);
    Box::new(EvalAltResult::ErrorRuntime(
        format!("{DEPENDS}{}", u.0).into(),
        ctx.call_position(),
    ))
}

/// Register the unknown value's behaviour on `engine`.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<Unknown>("unknown value");
    engine.register_fn("to_string", |u: &mut Unknown| u.placeholder());
    engine.register_fn("to_debug", |u: &mut Unknown| u.placeholder());
    // A field or element of an unknown is as unknown as the whole.
    engine.register_indexer_get(|u: &mut Unknown, _k: &str| {
        touch(&u.0);
        u.clone()
    });
    engine.register_indexer_get(|u: &mut Unknown, _i: i64| {
        touch(&u.0);
        u.clone()
    });
    // Filling in a field of an unknown leaves it unknown.
    engine.register_indexer_set(|_u: &mut Unknown, _k: &str, _v: Dynamic| {});
    // Text built from an unknown shows where it goes.
    // Trimming an unknown text gives the same unknown text, not a decision.
    engine.register_fn("trimmed", |u: Unknown| Dynamic::from(u));
    engine.register_fn("+", |a: &str, u: Unknown| format!("{a}{}", u.placeholder()));
    engine.register_fn("+", |u: Unknown, b: &str| format!("{}{b}", u.placeholder()));
    for op in [
        "==", "!=", "<", ">", "<=", ">=", "&&", "||", "+", "-", "*", "/", "%",
    ] {
        engine.register_fn(
            op,
            |ctx: NativeCallContext, u: Unknown, _b: Dynamic| -> Result<bool, _> {
                Err(decision(&ctx, &u))
            },
        );
        engine.register_fn(
            op,
            |ctx: NativeCallContext, _a: Dynamic, u: Unknown| -> Result<bool, _> {
                Err(decision(&ctx, &u))
            },
        );
    }
    for f in [
        "len",
        "is_empty",
        "contains",
        "parse_json",
        "parse_int",
        "split",
        "trim",
        "lines",
    ] {
        engine.register_fn(f, |ctx: NativeCallContext, u: Unknown| -> Result<bool, _> {
            Err(decision(&ctx, &u))
        });
    }
}

/// What an error from a dry-run closure means, in plain words: a decision on an unknown
/// value, or (when Rhai tripped over one in a way not intercepted, e.g. `for x in
/// unknown`) what the last one used stood for; `None` for a real error, shown as such.
pub(crate) fn explain(err: &str) -> Option<String> {
    if let Some(i) = err.find(DEPENDS) {
        let rest = &err[i..];
        let end = rest
            .find(" @ ")
            .or(rest.find(" (line "))
            .unwrap_or(rest.len());
        return Some(rest[..end].to_string());
    }
    let about_types = [
        "unknown value",
        "For loop expects",
        "expects",
        "Function not found",
        "getter is not registered",
        "Unknown property",
    ]
    .iter()
    .any(|m| err.contains(m));
    match last() {
        Some(what) if about_types => Some(format!("{DEPENDS}{what}")),
        _ if err.contains("unknown value") => {
            Some(format!("{DEPENDS}a value only known when the run happens"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_is_explained_without_rhai_positions() {
        let e = "depends on run time: the output of step a @ 'stdlib/x.rhai' (line 3, position 9)";
        assert_eq!(
            explain(&format!("Runtime error: {e}")).as_deref(),
            Some("depends on run time: the output of step a")
        );
    }

    #[test]
    fn a_type_error_names_the_last_unknown_used_and_a_real_error_stays_one() {
        reset();
        assert_eq!(explain("For loop expects iterable type"), None);
        touch(&Arc::from("the result of list_policies on ns-hq"));
        assert_eq!(
            explain("For loop expects iterable type").as_deref(),
            Some("depends on run time: the result of list_policies on ns-hq")
        );
        assert_eq!(explain("backup failed: disk full"), None);
        reset();
    }
}
