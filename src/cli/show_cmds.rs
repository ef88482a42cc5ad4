//! `show` and `completions`: what an operator asks before running anything — which
//! parameters a runbook takes (as `just --list` shows recipes), and shell completion.

use super::RunbookArgs;
use crate::dsl::{self, RunbookDecl};
use crate::exit::{CliError, Exit};

/// `waymark show RUNBOOK`: name, description and every parameter with its help, and
/// whether it is required or what its default is. Needs no `--param`: the declaration
/// is read even when required parameters are missing.
pub(super) fn show(args: &RunbookArgs, json: bool) -> Result<Exit, CliError> {
    let req = super::load::request(args)
        .map_err(|(d, s)| CliError::diagnostics(Exit::BadInput, &d, &s))?;
    let decl: RunbookDecl = match dsl::load(&req) {
        Ok(rb) => rb.decl,
        Err(e) => match e.declared {
            Some(d) if only_missing_params(&e.diagnostics) => *d,
            _ => return Err(CliError::from(e)),
        },
    };
    if json {
        let params: serde_json::Map<String, serde_json::Value> = decl
            .params
            .iter()
            .map(|(name, p)| {
                let v = serde_json::json!({
                    "help": p.help,
                    "required": p.required,
                    "default": p.default_value,
                });
                (name.clone(), v)
            })
            .collect();
        let doc = serde_json::json!({
            "runbook": args.runbook,
            "name": decl.name,
            "description": decl.description,
            "params": params,
        });
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(Exit::Ok);
    }
    outln!("{} — {}", args.runbook, decl.name);
    if !decl.description.is_empty() {
        outln!("  {}", decl.description);
    }
    if decl.params.is_empty() {
        outln!("\nno parameters");
    } else {
        outln!("\nparameters:");
        let rows: Vec<(&String, String, &str)> = decl
            .params
            .iter()
            .map(|(name, p)| {
                let how = match (&p.default_value, p.required) {
                    (_, true) => "required".to_string(),
                    (Some(d), false) => format!("default \"{d}\""),
                    (None, false) => "optional".to_string(),
                };
                (name, how, p.help.as_str())
            })
            .collect();
        let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let how_width = rows.iter().map(|r| r.1.chars().count()).max().unwrap_or(0);
        for (name, how, help) in rows {
            let line = format!("  {name:width$}  {how:how_width$}  {help}");
            outln!("{}", line.trim_end());
        }
    }
    let required: Vec<String> = decl
        .params
        .iter()
        .filter(|(_, p)| p.required)
        .map(|(n, _)| format!(" --param {n}=VALUE"))
        .collect();
    let inventory = args
        .inventory
        .as_ref()
        .map(|i| format!(" --inventory {}", super::hint::quote(&i.to_string_lossy())))
        .unwrap_or_default();
    outln!(
        "\nrun: waymark run {}{}{inventory}",
        super::hint::quote(&args.runbook),
        required.concat()
    );
    Ok(Exit::Ok)
}

// A runbook that stopped only because required parameters were not given can still be
// shown; any other problem is the operator's to see.
fn only_missing_params(diags: &[crate::diagnostic::Diagnostic]) -> bool {
    diags
        .iter()
        .all(|d| d.message.starts_with("missing required parameter"))
}

/// `waymark completions SHELL`: the completion script, generated from the same clap
/// definition that parses the arguments, so it can never list a stale flag.
pub(super) fn completions(shell: clap_complete::Shell) -> Result<Exit, CliError> {
    let mut cmd = <super::Cli as clap::CommandFactory>::command();
    // Into memory first: the generator panics on a closed pipe, `out!` does not.
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut cmd, "waymark", &mut buf);
    out!("{}", String::from_utf8_lossy(&buf));
    Ok(Exit::Ok)
}
