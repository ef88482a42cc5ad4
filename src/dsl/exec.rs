//! `exec`, `sh` and `ps`: child processes of a step, through [`crate::process`].
//!
//! A non-zero exit throws (failing the step) unless `check: false` is passed; the
//! process group is killed when the step times out or the run is interrupted. With
//! `host: NAME` the same call runs on that inventory server ([`super::remote`]).

use super::remote::Call;
use super::step_env::require;
use crate::duration::parse_duration;
use crate::process::{self, ProcessSpec};
use rhai::{Array, Engine, EvalAltResult, Map, NativeCallContext, Position};

/// Options of `exec`, `sh` and `ps` (the reference test reads this list).
pub const OPTIONS: &[&str] = &["check", "timeout", "env", "cwd", "stdin", "host"];

fn err(msg: impl Into<String>, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(msg.into().into(), pos))
}

// Apply the options map to a spec; returns whether a non-zero exit throws.
fn apply(
    spec: &mut ProcessSpec,
    opts: &Map,
    what: &str,
    pos: Position,
) -> Result<bool, Box<EvalAltResult>> {
    for k in opts.keys() {
        if !OPTIONS.contains(&k.as_str()) {
            let hint = crate::diagnostic::did_you_mean(k, OPTIONS.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            return Err(err(
                format!(
                    "{what}: unknown option `{k}`{hint}; options: {}",
                    OPTIONS.join(", ")
                ),
                pos,
            ));
        }
    }
    if let Some(t) = opts.get("timeout") {
        let s = t
            .clone()
            .into_string()
            .map_err(|_| err(format!("{what}: `timeout` must be a duration string"), pos))?;
        spec.timeout = Some(parse_duration(&s).map_err(|e| err(format!("{what}: {e}"), pos))?);
    }
    if let Some(e) = opts.get("env") {
        let m = e
            .clone()
            .try_cast::<Map>()
            .ok_or_else(|| err(format!("{what}: `env` must be a map"), pos))?;
        spec.env = m
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }
    if let Some(c) = opts.get("cwd") {
        spec.cwd = Some(c.to_string().into());
    }
    if let Some(i) = opts.get("stdin") {
        spec.stdin = Some(i.to_string());
    }
    if let Some(h) = opts.get("host") {
        if !h.is_string() {
            return Err(err(
                format!("{what}: `host` must be the name of an inventory server"),
                pos,
            ));
        }
    }
    match opts.get("check") {
        None => Ok(true),
        Some(v) => v
            .as_bool()
            .map_err(|_| err(format!("{what}: `check` must be true or false"), pos)),
    }
}

fn run(
    ctx: &NativeCallContext,
    what: &str,
    call: Call,
    opts: &Map,
) -> Result<rhai::Dynamic, Box<EvalAltResult>> {
    let pos = ctx.call_position();
    let env = require(ctx, what)?;
    let host = opts.get("host").and_then(|h| h.clone().into_string().ok());
    // `script`: what `sh`/`ps` were given, which names their result better than the
    // shell command line wrapped around it.
    let (mut spec, script) = match (&call, &host) {
        (_, Some(_)) => (ProcessSpec::default(), None),
        (Call::Exec(program, args), None) => (ProcessSpec::new(*program, args.clone()), None),
        (Call::Sh(script), None) => (process::sh_spec(script), Some(*script)),
        (Call::Ps(script), None) => (
            process::ps_spec(script).map_err(|e| err(e.to_string(), pos))?,
            Some(*script),
        ),
    };
    let check = apply(&mut spec, opts, what, pos)?;
    let (out, command) = match host {
        Some(host) => {
            let (target, remote) = super::remote::prepare(&env, &host, &call, &spec, what, pos)?;
            let command = format!("{}: {}", target.name, remote.shown);
            if let Some(dry) = &env.dry_run {
                dry.record(format!("{what} on {host}"), vec![command.clone()]);
                return Ok(dry.unknown(format!(
                    "the result of {what} on {host}: {}",
                    brief(&remote.shown)
                )));
            }
            (
                super::remote::run(&env, &target, &remote, what, pos)?,
                command,
            )
        }
        None => {
            let command = process::describe(&spec);
            if let Some(dry) = &env.dry_run {
                let named = brief(script.unwrap_or(&command));
                dry.record(what.to_string(), vec![command]);
                return Ok(dry.unknown(format!("the result of {what} {named}")));
            }
            let out = process::run_process(&spec, &env.cancel, &env.log)
                .map_err(|e| super::remote::process_error(&env, e, pos))?;
            (out, command)
        }
    };
    if check && out.code != 0 {
        let tail: String = out
            .stderr
            .lines()
            .rev()
            .take(5)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        let mut msg = format!("`{command}` exited with code {}", out.code);
        if !tail.trim().is_empty() {
            msg.push_str(&format!(": {}", tail.trim()));
        }
        return Err(err(env.log.scrub(&msg), pos));
    }
    let mut m = Map::new();
    m.insert("code".into(), (out.code as i64).into());
    m.insert("stdout".into(), out.stdout.into());
    m.insert("stderr".into(), out.stderr.into());
    Ok(m.into())
}

// A command shortened to name it in "depends on the result of …".
fn brief(command: &str) -> String {
    let first = command.lines().next().unwrap_or("");
    let mut s: String = first.chars().take(60).collect();
    if s.len() < first.len() || command.contains('\n') {
        s.push('…');
    }
    s
}

fn args_of(a: Array, pos: Position) -> Result<Vec<String>, Box<EvalAltResult>> {
    a.into_iter()
        .map(|v| {
            if v.is_string() || v.is_int() || v.is_float() || v.is_bool() {
                Ok(v.to_string())
            } else {
                Err(err(
                    format!(
                        "exec: arguments must be strings or numbers, not {}",
                        v.type_name()
                    ),
                    pos,
                ))
            }
        })
        .collect()
}

/// Register `exec`, `sh` and `ps` (with and without an options map).
pub fn register(engine: &mut Engine) {
    engine.register_fn(
        "exec",
        |ctx: NativeCallContext, program: &str, args: Array| {
            let args = args_of(args, ctx.call_position())?;
            run(&ctx, "exec", Call::Exec(program, args), &Map::new())
        },
    );
    engine.register_fn(
        "exec",
        |ctx: NativeCallContext, program: &str, args: Array, opts: Map| {
            let args = args_of(args, ctx.call_position())?;
            run(&ctx, "exec", Call::Exec(program, args), &opts)
        },
    );
    engine.register_fn("sh", |ctx: NativeCallContext, script: &str| {
        run(&ctx, "sh", Call::Sh(script), &Map::new())
    });
    engine.register_fn("sh", |ctx: NativeCallContext, script: &str, opts: Map| {
        run(&ctx, "sh", Call::Sh(script), &opts)
    });
    let ps = |ctx: &NativeCallContext,
              script: &str,
              opts: &Map|
     -> Result<rhai::Dynamic, Box<EvalAltResult>> {
        require(ctx, "ps")?;
        // The script itself travels on PowerShell's stdin: a `stdin` option would
        // silently replace it.
        if opts.contains_key("stdin") {
            return Err(err(
                "ps: `stdin` is not available with ps (the script is passed to PowerShell on its stdin); use `exec` with `stdin` instead",
                ctx.call_position(),
            ));
        }
        run(ctx, "ps", Call::Ps(script), opts)
    };
    engine.register_fn("ps", move |ctx: NativeCallContext, script: &str| {
        ps(&ctx, script, &Map::new())
    });
    engine.register_fn(
        "ps",
        move |ctx: NativeCallContext, script: &str, opts: Map| ps(&ctx, script, &opts),
    );
}
