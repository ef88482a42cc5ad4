//! The read commands about recorded runs: `runs`, `log` (also `--follow`) and `report`,
//! and how a command finds the run it names (or the latest).

use super::run_cmds::io_err;
use crate::exit::{CliError, Exit};
use crate::run_state::{list_runs, RunState};
use crate::state::{Run, Store};
use std::path::{Path, PathBuf};

/// The run `run` names, or the latest run in `store` when `None`.
pub(super) fn resolve_run(store: &Store, run: Option<&str>) -> Result<Run, CliError> {
    match run {
        Some(id) => {
            let found = store.run(id).map_err(CliError::bad_input)?;
            if !found.exists() {
                return Err(CliError::bad_input(format!(
                    "no run `{id}` in {} (see `{}`)",
                    store.describe(),
                    super::hint::runs(store)
                )));
            }
            Ok(found)
        }
        None => {
            let listing = list_runs(store);
            // A damaged latest run is skipped by the listing: say so rather than show an
            // older run as if it were the latest.
            let latest = listing.runs.last().map(|(id, _)| id.as_str());
            for w in listing.warnings_besides(latest) {
                errln!("warning: {w}");
            }
            let (id, _) = listing.runs.last().ok_or_else(|| {
                CliError::bad_input(format!("no runs in {}", store.describe_runs()))
            })?;
            store.run(id).map_err(CliError::bad_input)
        }
    }
}

/// `waymark runs`.
pub(super) fn runs(store: &Store, json: bool) -> Result<Exit, CliError> {
    let listing = list_runs(store);
    for w in &listing.warnings {
        errln!("warning: {w}");
    }
    if json {
        let v: Vec<_> = listing
            .runs
            .iter()
            .map(|(id, s)| {
                serde_json::json!({ "run_id": id, "runbook": s.runbook, "status": s.status.as_str(), "started_at": s.started_at, "finished_at": s.finished_at })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    if listing.runs.is_empty() {
        outln!("no runs in {}", store.describe());
    }
    for (id, s) in &listing.runs {
        outln!(
            "{id}  {:<11} {}  {}",
            s.status.as_str(),
            s.started_at.as_deref().unwrap_or(""),
            s.runbook
        );
    }
    Ok(Exit::Ok)
}

/// `waymark log RUN [STEP]`.
pub(super) fn log(
    store: &Store,
    run: &str,
    step: Option<&str>,
    follow: bool,
) -> Result<Exit, CliError> {
    let target = resolve_run(store, Some(run))?;
    let (state, _) = RunState::load(&target).map_err(|e| CliError::bad_input(e.to_string()))?;
    let names: Vec<String> = match step {
        Some(s) => {
            if state.step(s).is_none() {
                let all = state.to_status_json();
                let names: Vec<&str> = all["steps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x["name"].as_str())
                    .collect();
                let hint = crate::diagnostic::did_you_mean(s, names.iter().copied())
                    .map(|n| format!(" (did you mean `{n}`?)"))
                    .unwrap_or_default();
                return Err(CliError::bad_input(format!(
                    "run {run} has no step `{s}`{hint}"
                )));
            }
            vec![s.to_string()]
        }
        None => state.to_status_json()["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x["name"].as_str().map(String::from))
            .collect(),
    };
    if follow {
        return follow_logs(&target, names, step.is_some());
    }
    let logs = target.read_step_logs(&names);
    for (name, log) in names.into_iter().zip(logs) {
        if let Some(bytes) = log.current {
            if step.is_none() {
                outln!("== {name}");
            }
            out!("{}", String::from_utf8_lossy(&bytes));
        } else if step.is_some() {
            outln!("(no log lines for {name})");
        }
        if let Some(s) = state.step(&name) {
            for u in &s.undo_attempts {
                match &u.error {
                    Some(e) => outln!("undo failed at {}: {e}", u.at),
                    None => outln!("undo succeeded at {}", u.at),
                }
            }
            if let Some(e) = s.error.as_ref().filter(|_| s.undo_attempts.is_empty()) {
                outln!("{}", crate::diagnostic::error_line(e));
            }
        }
    }
    Ok(Exit::Ok)
}

/// `waymark log --follow`: print new lines of `names`' logs (prefixed with the step's
/// name when there are several) until the run's process lets go of it.
fn follow_logs(target: &Run, names: Vec<String>, one: bool) -> Result<Exit, CliError> {
    use std::io::Write as _;
    let run = target.id();
    let tails = target.follow_step_logs(&names);
    let mut tails: Vec<(String, crate::state::StepLogTail)> =
        names.into_iter().zip(tails).collect();
    if !target.is_held() {
        errln!("run {run} is not running: printing its logs as they are");
    }
    let stdout = std::io::stdout();
    loop {
        // Checked before reading, so the last read after the run stopped sees everything.
        let live = target.is_held();
        let mut out = stdout.lock();
        for (name, tail) in &mut tails {
            let lines = if live { tail.poll() } else { tail.rest() };
            for line in lines {
                let written = if one {
                    writeln!(out, "{line}")
                } else {
                    writeln!(out, "[{name}] {line}")
                };
                if written.is_err() {
                    // The reader went away (`| head`): nothing left to do.
                    return Ok(Exit::Ok);
                }
            }
        }
        let _ = out.flush();
        drop(out);
        if !live {
            break;
        }
        target.wait_for_change(std::time::Duration::from_millis(200));
    }
    let (state, _) = RunState::load(target).map_err(|e| CliError::bad_input(e.to_string()))?;
    if one {
        if let Some(e) = tails
            .first()
            .and_then(|(n, _)| state.step(n))
            .and_then(|s| s.error.as_ref())
        {
            outln!("{}", crate::diagnostic::error_line(e));
        }
    }
    errln!("run {run} {}", state.status);
    Ok(Exit::Ok)
}

/// `waymark report RUN [--output FILE]`.
pub(super) fn report(store: &Store, run: &str, output: Option<&Path>) -> Result<Exit, CliError> {
    let target = resolve_run(store, Some(run))?;
    let id = target.id();
    let report = crate::report::build(&target).map_err(|e| CliError::bad_input(e.to_string()))?;
    let page = crate::report::render(&report);
    if output == Some(Path::new("-")) {
        use std::io::Write as _;
        let _ = std::io::stdout().lock().write_all(page.as_bytes());
        return Ok(Exit::Ok);
    }
    let path = output
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(format!("report-{id}.html")));
    std::fs::write(&path, page)
        .map_err(|e| io_err(&format!("cannot write {}", path.display()), e))?;
    errln!(
        "report of run {id} ({}) written to {}",
        report.state.status,
        path.display()
    );
    Ok(Exit::Ok)
}
