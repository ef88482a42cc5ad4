//! The durable, append-only journal of a run (SPEC §5). Only this module does durable I/O.

pub mod record;

pub use record::{Event, FinalStatus, PlannedStep, Record};
