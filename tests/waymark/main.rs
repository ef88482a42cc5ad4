//! waymark's integration tests: one test binary, one module per area.

mod cases;
mod cli_plan;
mod closures;
mod harness;
