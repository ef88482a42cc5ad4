//! waymark's integration tests: one test binary, one module per area.

// Tests may print what they did not run, and a closed stdout there is a real error.
#![allow(clippy::disallowed_macros)]

#[cfg(unix)]
mod accounts;
#[cfg(unix)]
mod approvals;
mod blockers;
mod cases;
mod cli_conventions;
mod cli_plan;
mod cli_run;
mod clock;
mod closures;
mod conveniences;
mod crash;
mod dry_run;
mod estate_errors;
mod fingerprints;
mod follow;
mod gates;
mod harness;
mod hostile;
mod itms;
mod itms_resume;
mod itms_site_servers;
mod itms_stdlib;
mod layering;
mod live;
mod misspellings;
mod notify;
mod pg;
mod pipes;
#[cfg(unix)]
mod pty;
mod recap;
mod reference;
mod rehearsals;
#[cfg(unix)]
mod remote;
mod report;
mod resume;
mod rollouts;
mod scheduler;
mod secrets;
#[cfg(unix)]
mod sshd;
mod step_logs;
mod team;
mod team_follow;
mod team_pg;
mod team_tls;
