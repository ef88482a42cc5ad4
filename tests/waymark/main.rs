//! waymark's integration tests: one test binary, one module per area.

mod cases;
mod cli_plan;
mod cli_run;
mod closures;
mod crash;
mod estate_errors;
mod follow;
mod harness;
mod hostile;
mod itms;
mod misspellings;
mod notify;
mod report;
mod resume;
mod scheduler;
mod secrets;
