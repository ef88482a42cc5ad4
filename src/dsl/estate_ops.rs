//! Estate operations as Rhai functions: every entry of [`crate::estate::OPS`] is
//! registered under its own name, `op(server)` and `op(server, #{ args })`, so the
//! language needs no per-operation code and runbooks cannot tell lab from windows
//! except by asking (`estate_driver()`, `is_rehearsal()`).

use super::step_env::{require, StepEnv};
use crate::estate::{EstateError, OpContext, OPS};
use rhai::{Dynamic, Engine, EvalAltResult, Map, NativeCallContext, Position};

fn err(msg: impl Into<String>, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(msg.into().into(), pos))
}

fn estate_of(
    env: &StepEnv,
    op: &str,
    pos: Position,
) -> Result<std::sync::Arc<dyn crate::estate::Estate>, Box<EvalAltResult>> {
    env.estate.clone().ok_or_else(|| {
        err(
            format!("`{op}` needs an estate, and this run has none"),
            pos,
        )
    })
}

fn call(
    ctx: &NativeCallContext,
    op: &'static str,
    server: &str,
    args: Map,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    let env = require(ctx, op)?;
    let estate = estate_of(&env, op, pos)?;
    let args: serde_json::Map<String, serde_json::Value> =
        match rhai::serde::from_dynamic(&Dynamic::from_map(args)) {
            Ok(serde_json::Value::Object(m)) => m,
            Ok(_) | Err(_) => {
                return Err(err(
                    format!("`{op}`: arguments must be a map of plain values"),
                    pos,
                ))
            }
        };
    if let Some(dry) = &env.dry_run {
        match estate.describe(op, server, &args) {
            Ok(lines) => dry.record(format!("{op} on {server}"), lines),
            Err(e) => dry.record(
                format!("{op} on {server}"),
                vec![format!("(cannot describe: {e})")],
            ),
        }
        return Ok(dry.unknown(format!("the result of {op} on {server}")));
    }
    env.log.line(
        "estate",
        &format!("{op} {server} {}", serde_json::Value::Object(args.clone())),
    );
    let log = |line: &str| env.log.line("estate", line);
    let cx = OpContext {
        cancel: &env.cancel,
        log: &log,
        redactor: &env.redactor,
    };
    match estate.call(op, server, &args, &cx) {
        Ok(v) => {
            env.log.line("estate", &format!("{op} {server} → {v}"));
            rhai::serde::to_dynamic(&v)
                .map_err(|e| err(format!("`{op}`: result not representable: {e}"), pos))
        }
        Err(e) => {
            if env.cancel.is_cancelled() {
                return Err(Box::new(EvalAltResult::ErrorTerminated(
                    e.to_string().into(),
                    pos,
                )));
            }
            Err(Box::new(EvalAltResult::ErrorRuntime(
                thrown(op, server, &e),
                pos,
            )))
        }
    }
}

/// An estate error as scripts catch it: an `estate_error` object with `kind`, `op`,
/// `server`, `message` and `fixes`, so a runbook tells a refusal from a transient fault
/// by its `kind`, not by its wording. `message` is the whole readable text, and what the
/// object reads as in a string (`${e}`, `log(e)`) or when nobody catches it (a map would
/// print as `#{...}`, with quotes escaped past the secret redactor); `fixes` lists what
/// to do, one entry per problem of a refusal.
#[derive(Debug, Clone)]
pub struct ThrownError {
    /// `EstateError::kind()`.
    pub kind: String,
    /// The operation.
    pub op: String,
    /// The server it was called on.
    pub server: String,
    /// The readable text.
    pub message: String,
    /// What to do.
    pub fixes: Vec<String>,
}

impl ThrownError {
    fn get(&self, field: &str) -> Option<Dynamic> {
        Some(match field {
            "kind" => self.kind.clone().into(),
            "op" => self.op.clone().into(),
            "server" => self.server.clone().into(),
            "message" => self.message.clone().into(),
            "fixes" => Dynamic::from_array(self.fixes.iter().cloned().map(Dynamic::from).collect()),
            _ => return None,
        })
    }
}

/// The value thrown for `e` raised by `op` on `server`.
pub fn thrown(op: &str, server: &str, e: &EstateError) -> Dynamic {
    Dynamic::from(ThrownError {
        kind: e.kind().to_string(),
        op: op.to_string(),
        server: server.to_string(),
        message: e.to_string(),
        fixes: e.fixes(),
    })
}

/// The message of a thrown estate error, for rendering one nobody caught.
pub fn thrown_message(v: &Dynamic) -> Option<String> {
    if let Some(t) = v.read_lock::<ThrownError>() {
        return Some(t.message.clone());
    }
    None
}

/// The fields of a thrown `estate_error`, as scripts read them.
pub const THROWN_FIELDS: &[&str] = &["kind", "op", "server", "message", "fixes"];

fn register_thrown(engine: &mut Engine) {
    engine.register_type_with_name::<ThrownError>("estate_error");
    for &field in THROWN_FIELDS {
        engine.register_get(field, move |t: &mut ThrownError| {
            t.get(field).unwrap_or(Dynamic::UNIT)
        });
    }
    engine
        .register_indexer_get(
            |t: &mut ThrownError, k: rhai::ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
                t.get(&k).ok_or_else(|| {
                    err(
                        format!("an estate_error has no `{k}` (it has kind, op, server, message, fixes)"),
                        Position::NONE,
                    )
                })
            },
        )
        .register_fn("contains", |t: &mut ThrownError, k: rhai::ImmutableString| {
            t.get(&k).is_some()
        })
        .register_fn("to_string", |t: &mut ThrownError| t.message.clone())
        .register_fn("to_debug", |t: &mut ThrownError| t.message.clone());
}

/// The kinds of estate error that asking again cannot change: a step failing with one of
/// these is not retried, whatever its `retries`.
pub const FINAL_KINDS: &[&str] = &[
    "refused",
    "manual",
    "bad_args",
    "wrong_role",
    "no_driver",
    "unknown_op",
    "unknown_server",
    "inventory",
];

/// The `kind` of a thrown estate error (or of a map a script threw in the same shape).
pub fn thrown_kind(v: &Dynamic) -> Option<String> {
    if let Some(t) = v.read_lock::<ThrownError>() {
        return Some(t.kind.clone());
    }
    let m = v.read_lock::<Map>()?;
    m.get("message")?;
    m.get("kind")?.clone().into_string().ok()
}

/// Register every estate operation plus `estate_driver()` and `is_rehearsal()`.
pub fn register(engine: &mut Engine) {
    register_thrown(engine);
    for info in OPS {
        let op = info.name;
        engine.register_fn(op, move |ctx: NativeCallContext, server: &str| {
            call(&ctx, op, server, Map::new())
        });
        engine.register_fn(
            op,
            move |ctx: NativeCallContext, server: &str, args: Map| call(&ctx, op, server, args),
        );
    }
    engine.register_fn(
        "estate_driver",
        |ctx: NativeCallContext| -> Result<String, Box<EvalAltResult>> {
            let env = require(&ctx, "estate_driver")?;
            Ok(estate_of(&env, "estate_driver", ctx.call_position())?
                .driver()
                .to_string())
        },
    );
    engine.register_fn(
        "is_rehearsal",
        |ctx: NativeCallContext| -> Result<bool, Box<EvalAltResult>> {
            let env = require(&ctx, "is_rehearsal")?;
            Ok(estate_of(&env, "is_rehearsal", ctx.call_position())?.is_rehearsal())
        },
    );
}
