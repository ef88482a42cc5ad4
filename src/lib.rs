//! waymark: a runbook orchestrator.
//!
//! The pipeline is source → [`dsl`] (load: evaluate the Rhai script into declarations)
//! → [`plan`] (validated DAG, waves, fingerprints) → scheduler (run opaque actions
//! over the DAG) with every state change written to the [`journal`]. See ARCHITECTURE.md.

#![warn(unreachable_pub)]

#[macro_use]
pub(crate) mod term;
pub mod cancel;
pub mod cli;
pub mod diagnostic;
pub(crate) mod display;
pub mod dsl;
pub(crate) mod duration;
pub mod estate;
pub(crate) mod executor;
pub(crate) mod exit;
pub(crate) mod follow;
pub(crate) mod hashing;
pub(crate) mod hint;
pub(crate) mod inbox;
pub mod journal;
pub(crate) mod live;
pub(crate) mod notify;
pub(crate) mod orphans;
pub mod plan;
pub(crate) mod process;
pub(crate) mod prompt;
pub(crate) mod quote;
pub(crate) mod redact;
pub(crate) mod render;
pub(crate) mod report;
pub(crate) mod resume;
pub(crate) mod rollout;
pub(crate) mod run_state;
pub mod scheduler;
pub(crate) mod secret;
pub mod shipped;
pub(crate) mod ssh;
pub(crate) mod state;
pub(crate) mod step_log;
