//! The command line: clap definitions turned into validated requests, then dispatched to
//! one function per command. Every command returns `Result<Exit, CliError>`; only
//! [`main`] prints errors and picks the exit code.

mod changes;
mod decide_cmds;
mod defs_cmds;
mod dry_run;
pub(crate) use crate::hint;
mod lab_cmds;
mod load;
mod log_cmds;
mod plan_cmds;
mod recap;
mod resume_cmds;
mod rollback_cmds;
mod run_cmds;
mod show_cmds;
mod status_cmds;
mod watch;

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
pub(crate) struct Cli {
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
    #[command(after_help = "Examples:\n  waymark list\n  waymark list --json")]
    List {
        /// Machine-readable output (JSON: name, title, description of each).
        #[arg(long)]
        json: bool,
    },
    /// Show a runbook's name, description and parameters (help, required or default).
    #[command(
        after_help = "Examples:\n  waymark show itms-7.6/onbox\n  waymark show ./upgrade.rhai --json\n\nThe runbook language: docs/runbook-language.md."
    )]
    Show {
        #[command(flatten)]
        runbook: RunbookArgs,
        /// Machine-readable output (JSON: name, description, params).
        #[arg(long)]
        json: bool,
    },
    /// Load and validate a runbook without running anything (exit 0 if valid, 2 if not).
    #[command(
        after_help = "Examples:\n  waymark check itms-7.6/onbox --param server=ns-hq\n  waymark check ./upgrade.rhai --inventory estate.toml"
    )]
    Check {
        #[command(flatten)]
        runbook: RunbookArgs,
        /// Machine-readable output (JSON: `ok`, counts, or every error with its position).
        #[arg(long)]
        json: bool,
    },
    /// Show the plan: waves, gates, retries, timeouts; as text, JSON, Mermaid or DOT.
    #[command(
        after_help = "Examples:\n  waymark plan itms-7.6/hierarchy\n  waymark plan ./upgrade.rhai --format json\n  waymark plan itms-7.6/onbox --format mermaid > plan.mmd"
    )]
    Plan(PlanArgs),
    /// Run a runbook: steps in dependency order, gates wait for approval, everything journaled.
    #[command(
        after_help = "Examples:\n  waymark run examples/hello.rhai --yes\n  waymark run ./upgrade.rhai --param server=ns01 --concurrency 4\n  waymark run itms-7.6/onbox --dry-run"
    )]
    Run(RunArgs),
    /// Continue a paused, failed, cancelled or crashed run without redoing finished steps.
    #[command(
        after_help = "Examples:\n  waymark resume\n  waymark resume 20261123-221500-ab12 --mark-done backup-cmdb\n  waymark resume 20261123-221500-ab12 --from verify-version"
    )]
    Resume(ResumeArgs),
    /// Run the `undo` of every succeeded step, newest first; the run ends rolled_back.
    #[command(
        after_help = "Rollback stops at the first failed undo unless --keep-going; an undo edited since its step ran is refused unless --accept-changes. See docs/operator-guide.md.\n\nExample:\n  waymark rollback 20261123-221500-ab12 --yes"
    )]
    Rollback {
        /// The run.
        run_id: String,
        /// Go ahead without asking.
        #[arg(long)]
        yes: bool,
        /// Run `undo` closures edited since their steps ran (shown as a diff first).
        #[arg(long)]
        accept_changes: bool,
        /// Carry on after a failed undo (by default rollback stops there, since earlier
        /// steps' undos may rely on it).
        #[arg(long)]
        keep_going: bool,
        /// Processes a crashed run left running: kill their process groups first.
        #[arg(long, conflicts_with = "wait_orphans")]
        kill_orphans: bool,
        /// Processes a crashed run left running: wait for them to end first.
        #[arg(long)]
        wait_orphans: bool,
        /// Processes a crashed run started on another host were checked there and are gone.
        #[arg(long)]
        orphans_checked: bool,
        #[command(flatten)]
        state: StateDirArg,
    },
    /// Show a run's state: every step, attempts, errors and approvals (latest run by default).
    #[command(
        after_help = "Examples:\n  waymark status\n  waymark status 20261123-221500-ab12 --json\n  waymark status 20261123-221500-ab12 --watch"
    )]
    Status {
        /// The run (default: the latest).
        run_id: Option<String>,
        /// Machine-readable output (JSON: the run, each step and gate, approvals).
        #[arg(long)]
        json: bool,
        /// Keep showing the run live (events, progress, waiting gates) until it stops.
        #[arg(long, short, conflicts_with = "json")]
        watch: bool,
        #[command(flatten)]
        state: StateDirArg,
    },
    /// List every run in the state directory.
    #[command(
        after_help = "Examples:\n  waymark runs\n  waymark runs --json --state-dir /var/lib/waymark"
    )]
    Runs {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        state: StateDirArg,
    },
    /// Print a run's step logs (one step, or all); --follow keeps printing until the run ends.
    #[command(
        after_help = "Examples:\n  waymark log 20261123-221500-ab12 backup-cmdb\n  waymark log 20261123-221500-ab12 onbox:ns-hq:backup-cmdb --follow"
    )]
    Log {
        /// The run.
        run_id: String,
        /// One step (default: every step).
        step: Option<String>,
        /// Keep printing new lines until the run stops (succeeds, fails, pauses or is cancelled).
        #[arg(long, short)]
        follow: bool,
        #[command(flatten)]
        state: StateDirArg,
    },
    /// Write a self-contained HTML report of a run: plan, timeline, approvals, steps, logs.
    #[command(
        after_help = "Examples:\n  waymark report 20261123-221500-ab12\n  waymark report 20261123-221500-ab12 --output change-4711.html\n\nThe file needs no network: no script, font or style is fetched. See docs/operator-guide.md."
    )]
    Report {
        /// The run.
        run_id: String,
        /// Where to write it (default: report-RUN_ID.html in the current directory; `-` for stdout).
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
        #[command(flatten)]
        state: StateDirArg,
    },
    /// Approve a gate of a run (works while the run is paused or still running).
    #[command(
        after_help = "Example:\n  waymark approve 20261123-221500-ab12 sim-upgrade --note \"SIM finished, 7.6 shown\""
    )]
    Approve(DecideArgs),
    /// Reject a gate of a run: the run fails at that gate.
    #[command(
        after_help = "Example:\n  waymark reject 20261123-221500-ab12 sim-upgrade --note \"readiness check failed on ns-emea\""
    )]
    Reject(DecideArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell, elvish).
    #[command(
        after_help = "Examples:\n  waymark completions bash > /etc/bash_completion.d/waymark\n  waymark completions zsh > \"${fpath[1]}/_waymark\"\n  waymark completions fish > ~/.config/fish/completions/waymark.fish\n  waymark completions powershell >> $PROFILE"
    )]
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write Rhai definition files (.d.rhai) of waymark's functions and stdlib for editors.
    #[command(
        after_help = "Examples:\n  waymark defs\n  waymark defs .rhai-defs\n\nThe Rhai language server reads *.d.rhai files in the workspace; see docs/runbook-language.md."
    )]
    Defs {
        /// Where to write them (created if needed).
        #[arg(default_value = "rhai-defs", value_name = "DIR")]
        dir: PathBuf,
    },
    /// The rehearsal (lab) estate: show its state and recorded operations, or reset it.
    #[command(
        subcommand,
        after_help = "Examples:\n  waymark lab show\n  waymark lab reset"
    )]
    Lab(LabCommand),
}

#[derive(Debug, Subcommand)]
enum LabCommand {
    /// Servers (version, replication, ...) and every operation recorded, in order.
    #[command(
        after_help = "Examples:\n  waymark lab show\n  waymark lab show --inventory examples/estates/hierarchy.toml --json"
    )]
    Show {
        /// Inventory of the lab estate (default: the built-in demo estate).
        #[arg(long, value_name = "FILE")]
        inventory: Option<PathBuf>,
        /// Machine-readable output (JSON: servers and recorded operations).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        state: StateDirArg,
    },
    /// Forget the lab estate's state: the next run starts from the inventory's facts.
    #[command(
        after_help = "Examples:\n  waymark lab reset\n  waymark lab reset --inventory examples/estates/hierarchy.toml"
    )]
    Reset {
        /// Inventory of the lab estate (default: the built-in demo estate).
        #[arg(long, value_name = "FILE")]
        inventory: Option<PathBuf>,
        #[command(flatten)]
        state: StateDirArg,
    },
}

/// `--state-dir` (env WAYMARK_STATE_DIR, default ./.waymark).
#[derive(Debug, Clone, Args)]
pub(crate) struct StateDirArg {
    /// Where runs and lab estates live.
    #[arg(
        long,
        env = "WAYMARK_STATE_DIR",
        default_value = ".waymark",
        value_name = "DIR"
    )]
    pub state_dir: PathBuf,
}

impl StateDirArg {
    /// The one place the state's location becomes a store; nothing past here sees it.
    pub(crate) fn store(&self) -> Result<crate::state::Store, crate::exit::CliError> {
        crate::state::Store::open(&self.state_dir).map_err(crate::exit::CliError::from)
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    runbook: RunbookArgs,
    #[command(flatten)]
    state: StateDirArg,
    /// Most steps running at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
    /// After a failure, keep running branches that do not depend on it.
    #[arg(long)]
    keep_going: bool,
    /// Give every gate one approval by your account (for rehearsals); a gate that needs a
    /// separate approver or several accounts still waits for them.
    #[arg(long)]
    yes: bool,
    /// Never prompt: a gate pauses the run (implied when stdin is not a terminal).
    #[arg(long)]
    non_interactive: bool,
    /// Print what would run, in order, and run nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Debug, Args)]
struct ResumeArgs {
    /// The run (default: the latest unfinished run).
    run_id: Option<String>,
    #[command(flatten)]
    state: StateDirArg,
    /// Give every gate one approval by your account (for rehearsals).
    #[arg(long)]
    yes: bool,
    /// Never prompt: a gate pauses the run.
    #[arg(long)]
    non_interactive: bool,
    /// An in-flight step did not happen: run it again (repeatable).
    #[arg(long, value_name = "STEP")]
    rerun: Vec<String>,
    /// An in-flight step did happen: record it as done (repeatable).
    #[arg(long, value_name = "STEP")]
    mark_done: Vec<String>,
    /// Run STEP and everything downstream of it again.
    #[arg(long, value_name = "STEP")]
    from: Option<String>,
    /// Continue even though steps that already succeeded were edited.
    #[arg(long)]
    accept_changes: bool,
    /// Processes a crashed run left running: kill their process groups first.
    #[arg(long, conflicts_with = "wait_orphans")]
    kill_orphans: bool,
    /// Processes a crashed run left running: wait for them to end first.
    #[arg(long)]
    wait_orphans: bool,
    /// Processes a crashed run started on another host were checked there and are gone.
    #[arg(long)]
    orphans_checked: bool,
    /// Most steps running at once.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1024))]
    concurrency: u16,
    /// After a failure, keep running branches that do not depend on it.
    #[arg(long)]
    keep_going: bool,
}

#[derive(Debug, Args)]
struct DecideArgs {
    /// The run.
    run_id: String,
    /// The gate.
    gate: String,
    /// Display name recorded beside your OS account (which is what gates count).
    #[arg(long, value_name = "NAME")]
    by: Option<String>,
    /// Why, or what was checked.
    #[arg(long)]
    note: Option<String>,
    #[command(flatten)]
    state: StateDirArg,
}

/// The runbook and its inputs (shared by check, plan and run).
#[derive(Debug, Clone, Args)]
pub(crate) struct RunbookArgs {
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
pub(crate) enum PlanFormat {
    /// Waves for people.
    Text,
    /// Machine-readable JSON: steps with their dependencies, waves, fingerprints.
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

/// Leave `big` for the operating system to reclaim: the command is about to end and the
/// process to exit. Freeing a 10,000-step plan's closures one by one held up the final
/// message by ~10 ms, and freeing them on another thread contends with this one for the
/// allocator's lock while the recap is written. Nothing left this way may have a side
/// effect on drop (no journal writer, no lock, no estate).
fn leave_to_exit<T>(big: T) {
    std::mem::forget(big);
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
        // Escape codes only for a person at a terminal, never into a file or pipe.
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
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
    tracing::debug!("arguments parsed, tracing on");
    crate::display::set_verbose(cli.verbose > 0);
    let result = (|| match cli.command {
        Command::List { json } => plan_cmds::list(json),
        Command::Check { runbook, json } => plan_cmds::check(&runbook, json),
        Command::Show { runbook, json } => show_cmds::show(&runbook, json),
        Command::Completions { shell } => show_cmds::completions(shell),
        Command::Defs { dir } => defs_cmds::defs(&dir),
        Command::Plan(a) => plan_cmds::plan(&a.runbook, a.format),
        Command::Run(a) => run_cmds::run(
            &a.runbook,
            &run_cmds::RunOptions {
                state: a.state.store()?,
                concurrency: a.concurrency as usize,
                keep_going: a.keep_going,
                yes: a.yes,
                dry_run: a.dry_run,
                non_interactive: a.non_interactive,
            },
        ),
        Command::Resume(a) => {
            // One store (one connection, for a database) for the whole resume.
            let store = a.state.store()?;
            resume_cmds::resume(
                &store,
                a.run_id.as_deref(),
                &run_cmds::RunOptions {
                    state: store.clone(),
                    concurrency: a.concurrency as usize,
                    keep_going: a.keep_going,
                    yes: a.yes,
                    dry_run: false,
                    non_interactive: a.non_interactive,
                },
                &resume_cmds::ResumeOptions {
                    rerun: a.rerun,
                    mark_done: a.mark_done,
                    from: a.from,
                    accept_changes: a.accept_changes,
                    orphans: resume_cmds::OrphanChoice::from_flags(a.kill_orphans, a.wait_orphans),
                    orphans_checked: a.orphans_checked,
                },
            )
        }
        Command::Rollback {
            run_id,
            yes,
            accept_changes,
            keep_going,
            kill_orphans,
            wait_orphans,
            orphans_checked,
            state,
        } => rollback_cmds::rollback(
            &state.store()?,
            &run_id,
            &rollback_cmds::RollbackOptions {
                yes,
                accept_changes,
                keep_going,
                orphans: resume_cmds::OrphanChoice::from_flags(kill_orphans, wait_orphans),
                orphans_checked,
            },
        ),
        Command::Status {
            run_id,
            json,
            watch: true,
            state,
        } => {
            let _ = json;
            watch::watch(&state.store()?, run_id.as_deref())
        }
        Command::Status {
            run_id,
            json,
            state,
            ..
        } => status_cmds::status(&state.store()?, run_id.as_deref(), json),
        Command::Runs { json, state } => log_cmds::runs(&state.store()?, json),
        Command::Log {
            run_id,
            step,
            follow,
            state,
        } => log_cmds::log(&state.store()?, &run_id, step.as_deref(), follow),
        Command::Report {
            run_id,
            output,
            state,
        } => log_cmds::report(&state.store()?, &run_id, output.as_deref()),
        Command::Approve(a) => decide_cmds::decide(
            &a.state.store()?,
            &a.run_id,
            &a.gate,
            a.by,
            a.note,
            crate::inbox::Decision::Approve,
        ),
        Command::Lab(LabCommand::Show {
            inventory,
            json,
            state,
        }) => lab_cmds::lab_show(inventory.as_deref(), &state.store()?, json),
        Command::Lab(LabCommand::Reset { inventory, state }) => {
            lab_cmds::lab_reset(inventory.as_deref(), &state.store()?)
        }
        Command::Reject(a) => decide_cmds::decide(
            &a.state.store()?,
            &a.run_id,
            &a.gate,
            a.by,
            a.note,
            crate::inbox::Decision::Reject,
        ),
    })();
    // The run's ssh master connections end with it (see `crate::ssh`).
    crate::ssh::shutdown();
    tracing::debug!("command done");
    match result {
        Ok(code) => code as i32,
        Err(e) => {
            // Diagnostics end with a blank line between them; the last one is not needed.
            errln!("{}", e.message().trim_end());
            e.exit as i32
        }
    }
}
