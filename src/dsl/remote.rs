//! `host:` on `exec`, `sh` and `ps`: the same call, run on an inventory server over
//! ssh ([`crate::ssh`]). The arguments are quoted by waymark for the remote shell, the
//! step log shows the command once as `HOST: command`, and a step's timeout or Ctrl-C
//! stops the remote process group too. A host that cannot be reached is an
//! `estate_error` of kind `transient` (so `retries` apply); a name the inventory does
//! not list is `unknown_server`. `upload` and `download` copy files over the same
//! connection.

use rhai::{Dynamic, Engine, EvalAltResult, NativeCallContext, Position};

use super::estate_ops::thrown;
use super::step_env::{require, StepEnv};
use crate::estate::EstateError;
use crate::process::{ProcessOutput, ProcessSpec};
use crate::ssh::{check_remote_path, Direction, RemoteCommand, Shell, SshError, Target};

/// What `exec`, `sh` or `ps` was asked to run.
pub(crate) enum Call<'a> {
    /// `exec(program, args)`.
    Exec(&'a str, Vec<String>),
    /// `sh(script)`.
    Sh(&'a str),
    /// `ps(script)`.
    Ps(&'a str),
}

fn err(msg: impl Into<String>, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(msg.into().into(), pos))
}

fn throw(what: &str, host: &str, e: &EstateError, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(thrown(what, host, e), pos))
}

/// The inventory server `host` as ssh reaches it, and the command `call` becomes there
/// with the options already applied to `opts` (env, cwd, stdin, timeout).
pub(crate) fn prepare(
    env: &StepEnv,
    host: &str,
    call: &Call,
    opts: &ProcessSpec,
    what: &str,
    pos: Position,
) -> Result<(Target, RemoteCommand), Box<EvalAltResult>> {
    let Some(estate) = &env.estate else {
        return Err(err(format!("{what}: `host: \"{host}\"` needs an inventory listing it: run with --inventory FILE (see docs/operator-guide.md, \"Running on your own servers\")"), pos));
    };
    let inv = estate.inventory();
    let server = inv.server(host).ok_or_else(|| {
        let e = EstateError::UnknownServer {
            server: host.to_string(),
            suggestion: crate::diagnostic::did_you_mean(
                host,
                inv.servers.iter().map(|s| s.name.as_str()),
            )
            .map(str::to_string),
        };
        throw(what, host, &e, pos)
    })?;
    let target = crate::estate::ssh_target::target_of(server, inv);
    let (argv, powershell, shown) = match call {
        Call::Exec(program, args) => {
            let mut argv = vec![program.to_string()];
            argv.extend(args.iter().cloned());
            let shown = argv
                .iter()
                .map(|a| crate::ssh::posix_quote(a))
                .collect::<Vec<_>>()
                .join(" ");
            (argv, None, shown)
        }
        Call::Sh(script) => {
            if target.shell == Shell::PowerShell {
                return Err(err(format!("sh: `{host}` is a Windows host (its inventory's driver is windows): use ps"), pos));
            }
            let argv = vec!["/bin/sh".into(), "-c".into(), script.to_string()];
            (
                argv,
                None,
                format!("sh -c {}", crate::ssh::posix_quote(script)),
            )
        }
        Call::Ps(script) => (
            Vec::new(),
            Some(script.to_string()),
            format!("pwsh: {script}"),
        ),
    };
    let command = RemoteCommand {
        argv,
        env: opts.env.clone(),
        cwd: opts.cwd.as_ref().map(|c| c.to_string_lossy().into_owned()),
        stdin: opts.stdin.clone(),
        powershell,
        timeout: opts.timeout,
        shown,
    };
    Ok((target, command))
}

/// Run `command` on `target`; errors are thrown as the local ones are, a connection
/// failure as a `transient` estate error.
pub(crate) fn run(
    env: &StepEnv,
    target: &Target,
    command: &RemoteCommand,
    what: &str,
    pos: Position,
) -> Result<ProcessOutput, Box<EvalAltResult>> {
    crate::ssh::run(target, command, &env.cancel, &env.log)
        .map_err(|e| ssh_error(env, e, what, pos))
}

/// An ssh failure as scripts see it: a connection failure is a `transient` estate error,
/// a stop ends the closure, anything else is a runtime error; all redacted.
fn ssh_error(env: &StepEnv, e: SshError, what: &str, pos: Position) -> Box<EvalAltResult> {
    match e {
        SshError::Connect { host, message } => {
            let e = EstateError::Transient {
                op: what.to_string(),
                server: host.clone(),
                message: env
                    .log
                    .scrub(&format!("cannot reach `{host}` over ssh: {message}")),
            };
            throw(what, &host, &e, pos)
        }
        SshError::Cancelled(_) => Box::new(EvalAltResult::ErrorTerminated(
            Dynamic::from(env.log.scrub(&e.to_string())),
            pos,
        )),
        SshError::Process(p) => process_error(env, p, pos),
        e @ SshError::Copy { .. } => err(env.log.scrub(&e.to_string()), pos),
    }
}

/// `upload(host, local, remote)` / `download(host, remote, local)`.
fn transfer(
    ctx: &NativeCallContext,
    direction: Direction,
    host: &str,
    local: &str,
    remote: &str,
) -> Result<Dynamic, Box<EvalAltResult>> {
    let what = match direction {
        Direction::Upload => "upload",
        Direction::Download => "download",
    };
    let pos = ctx.call_position();
    let env = require(ctx, what)?;
    check_remote_path(remote).map_err(|m| err(format!("{what}: {m}"), pos))?;
    if local.is_empty() {
        return Err(err(format!("{what}: the local path is empty"), pos));
    }
    let (target, _) = prepare(
        &env,
        host,
        &Call::Exec("true", Vec::new()),
        &ProcessSpec::default(),
        what,
        pos,
    )?;
    if let Some(dry) = &env.dry_run {
        let shown = match direction {
            Direction::Upload => format!("{local} → {host}:{remote}"),
            Direction::Download => format!("{host}:{remote} → {local}"),
        };
        dry.record(format!("{what} on {host}"), vec![shown]);
        return Ok(Dynamic::UNIT);
    }
    if direction == Direction::Upload && !std::path::Path::new(local).is_file() {
        return Err(err(format!("upload: `{local}` is not a file"), pos));
    }
    crate::ssh::copy(
        &target,
        direction,
        std::path::Path::new(local),
        remote,
        &env.cancel,
        &env.log,
    )
    .map_err(|e| ssh_error(&env, e, what, pos))?;
    Ok(Dynamic::UNIT)
}

/// Register `upload` and `download`.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_fn(
        "upload",
        |ctx: NativeCallContext, host: &str, local: &str, remote: &str| {
            transfer(&ctx, Direction::Upload, host, local, remote)
        },
    );
    engine.register_fn(
        "download",
        |ctx: NativeCallContext, host: &str, remote: &str, local: &str| {
            transfer(&ctx, Direction::Download, host, local, remote)
        },
    );
}

/// A process error as scripts see it: stopped steps end the closure (not a catchable
/// error), anything else is a runtime error; both redacted.
pub(super) fn process_error(
    env: &StepEnv,
    e: crate::process::ProcessError,
    pos: Position,
) -> Box<EvalAltResult> {
    if matches!(
        e,
        crate::process::ProcessError::TimedOut { .. }
            | crate::process::ProcessError::Cancelled { .. }
    ) && env.cancel.is_cancelled()
    {
        return Box::new(EvalAltResult::ErrorTerminated(
            env.log.scrub(&e.to_string()).into(),
            pos,
        ));
    }
    err(env.log.scrub(&e.to_string()), pos)
}
