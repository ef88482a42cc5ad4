//! waymark: a runbook orchestrator.
//!
//! The pipeline is source → [`dsl`] (load: evaluate the Rhai script into declarations)
//! → [`plan`] (validated DAG, waves, fingerprints) → [`scheduler`] (run opaque actions
//! over the DAG) with every state change written to the [`journal`]. See ARCHITECTURE.md.

pub mod cancel;
pub mod duration;
pub mod estate;
pub mod journal;
pub mod process;
pub mod redact;
pub mod step_log;
