//! waymark: a runbook orchestrator.
//!
//! The pipeline is source → [`dsl`] (load: evaluate the Rhai script into declarations)
//! → [`plan`] (validated DAG, waves, fingerprints) → scheduler (run opaque actions
//! over the DAG) with every state change written to the [`journal`]. See ARCHITECTURE.md.

#[macro_use]
pub mod term;
pub mod cancel;
pub mod cli;
pub mod diagnostic;
pub mod display;
pub mod dsl;
pub mod duration;
pub mod estate;
pub mod executor;
pub mod exit;
pub mod follow;
pub mod hint;
pub mod inbox;
pub mod journal;
pub mod live;
pub mod notify;
pub mod orphans;
pub mod plan;
pub mod process;
pub mod prompt;
pub mod redact;
pub mod render;
pub mod report;
pub mod resume;
pub mod rollout;
pub mod run_state;
pub mod scheduler;
pub mod secret;
pub mod shipped;
pub mod ssh;
pub mod state;
pub mod step_log;
