//! The command line: clap definitions turned into validated requests, then dispatched to
//! one function per command. Every command returns `Result<Exit, CliError>`; only
//! [`main`] prints errors and picks the exit code.

mod load;
mod plan_cmds;

use crate::exit::Exit;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// waymark — run runbooks with a durable journal, manual gates and resume.
#[derive(Debug, Parser)]
#[command(
    name = "waymark",
    version,
    about = "Runbook orchestrator: Rhai runbooks, a durable journal, manual gates and resume",
    after_help = "Examples:\n  waymark list\n  waymark plan itms-7.6/hierarchy\n  waymark check ./my-runbook.rhai --param server=ns01"
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug); RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// What the user asked for.
#[derive(Debug, Subcommand)]
enum Command {
    /// List the runbooks shipped inside waymark, with their descriptions.
    #[command(after_help = "Example:\n  waymark list")]
    List,
    /// Load and validate a runbook without running anything (exit 0 if valid, 2 if not).
    #[command(
        after_help = "Examples:\n  waymark check itms-7.6/onbox --param server=ns-hq\n  waymark check ./upgrade.rhai --inventory estate.toml"
    )]
    Check(RunbookArgs),
    /// Show the plan: waves, gates, retries, timeouts; as text, JSON, Mermaid or DOT.
    #[command(
        after_help = "Examples:\n  waymark plan itms-7.6/hierarchy\n  waymark plan ./upgrade.rhai --format json\n  waymark plan itms-7.6/onbox --format mermaid > plan.mmd"
    )]
    Plan(PlanArgs),
}

/// The runbook and its inputs (shared by check, plan and run).
#[derive(Debug, Clone, Args)]
pub struct RunbookArgs {
    /// Path of a .rhai file, or the name of a shipped runbook (see `waymark list`).
    pub runbook: String,
    /// Set a runbook parameter (repeatable).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    pub params: Vec<(String, String)>,
    /// Inventory (TOML) describing the estate; default: the built-in demo lab estate.
    #[arg(long, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
}

/// Output format of `plan`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PlanFormat {
    /// Waves for people.
    Text,
    /// Machine-readable (shape in SPEC §3).
    Json,
    /// Mermaid flowchart.
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

#[derive(Debug, Args)]
struct PlanArgs {
    #[command(flatten)]
    runbook: RunbookArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: PlanFormat,
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{s}` is not KEY=VALUE")),
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Parse arguments, run the command, print any error; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                Exit::BadInput as i32
            } else {
                0
            };
            let _ = e.print();
            return code;
        }
    };
    init_tracing(cli.verbose);
    let result = match cli.command {
        Command::List => plan_cmds::list(),
        Command::Check(a) => plan_cmds::check(&a),
        Command::Plan(a) => plan_cmds::plan(&a.runbook, a.format),
    };
    match result {
        Ok(code) => code as i32,
        Err(e) => {
            eprint!("{}", e.message);
            if !e.message.ends_with('\n') {
                eprintln!();
            }
            e.exit as i32
        }
    }
}
