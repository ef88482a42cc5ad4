//! Script errors as diagnostics: an evaluation error becomes one diagnostic at its
//! innermost position with the calls around it, and a declaration error already
//! recorded stops evaluation with a silent abort.

use crate::diagnostic::{Diagnostic, SrcPos};
use rhai::{EvalAltResult, Map, NativeCallContext, Position};
use std::sync::Arc;

/// Thrown inside the script to stop evaluation after a fatal declaration error that was
/// already recorded as a diagnostic.
const ABORT: &str = "\u{0}waymark-abort";

pub(super) fn to_pos(file: &Arc<str>, pos: Position) -> Option<SrcPos> {
    Some(SrcPos {
        file: file.clone(),
        line: pos.line()?,
        col: pos.position().unwrap_or(1),
    })
}

/// Turn a script error into a diagnostic at its innermost position (None for an abort).
pub(crate) fn eval_diagnostic(file: &Arc<str>, err: &EvalAltResult) -> Option<Diagnostic> {
    let mut file = file.clone();
    let mut e = err;
    let mut outer: Vec<(Arc<str>, Position, String)> = Vec::new();
    loop {
        match e {
            EvalAltResult::ErrorInFunctionCall(name, src, inner, pos) => {
                outer.push((file.clone(), *pos, format!("in call to `{name}`")));
                if !src.is_empty() {
                    file = src.as_str().into();
                }
                e = inner;
            }
            EvalAltResult::ErrorInModule(name, inner, pos) => {
                outer.push((file.clone(), *pos, format!("in module `{name}`")));
                if !name.is_empty() {
                    file = name.as_str().into();
                }
                e = inner;
            }
            _ => break,
        }
    }
    let (msg, help) = match e {
        EvalAltResult::ErrorRuntime(v, _) => {
            // A thrown estate error is a map; uncaught, it reads as its message.
            let s = match crate::dsl::estate_ops::thrown_message(v) {
                Some(m) => m,
                None => match v.read_lock::<Map>().and_then(|m| m.get("message").cloned()) {
                    Some(m) if crate::dsl::estate_ops::thrown_kind(v).is_some() => m.to_string(),
                    _ => v.to_string(),
                },
            };
            if s == ABORT {
                return None;
            }
            (s, None)
        }
        EvalAltResult::ErrorTerminated(v, _) => (
            v.to_string(),
            Some("top-level code only declares steps; long work belongs inside a step's `run` closure".to_string()),
        ),
        EvalAltResult::ErrorTooManyOperations(_) => (
            "the script ran too many operations while loading".to_string(),
            Some("is there an endless loop at top level?".to_string()),
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => (
            format!("{what} grew beyond the sandbox limit while loading"),
            Some("runbooks may not build huge values at load time".to_string()),
        ),
        EvalAltResult::ErrorStackOverflow(_) => (
            "call stack too deep while loading".to_string(),
            Some("is a function calling itself without end?".to_string()),
        ),
        other => (other.to_string().split(" (line ").next().unwrap_or_default().to_string(), None),
    };
    let mut d = Diagnostic::at(to_pos(&file, e.position()), msg);
    d.help = help;
    for (f, p, m) in outer.into_iter().rev() {
        d = d.also(to_pos(&f, p), m);
    }
    Some(d)
}

pub(super) fn abort() -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(ABORT.into(), Position::NONE))
}

pub(super) fn call_pos(ctx: &NativeCallContext, main: &Arc<str>) -> Option<SrcPos> {
    // The runbook's own calls share its name rather than a copy each.
    let file: Arc<str> = match ctx.call_source() {
        Some(src) if src != &**main => Arc::from(src),
        _ => main.clone(),
    };
    to_pos(&file, ctx.call_position())
}
