//! The sandboxed Rhai engine every runbook runs in: resource limits, no `eval`, and the
//! waymark functions registered.

use rhai::{Dynamic, Engine};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Operations a script may run while loading before it is stopped as runaway.
pub const LOAD_OPERATION_LIMIT: u64 = 20_000_000;
/// Wall-clock time a script may spend loading. Operations alone do not bound it: an
/// operation can cost time proportional to the data it touches (`a.push(i)` a million
/// times took ~200 s within the operation budget).
pub const LOAD_TIME_LIMIT: Duration = Duration::from_secs(10);
/// The limit loads in this process run under, in milliseconds: [`LOAD_TIME_LIMIT`]
/// unless the program embedding waymark raised it with [`set_load_time_limit`].
static LOAD_TIME_LIMIT_MS: AtomicU64 = AtomicU64::new(LOAD_TIME_LIMIT.as_millis() as u64);
/// The clock is read once per this many operations (a power of two), keeping the hook
/// cheap; at worst an operation costs ~0.1 ms, so the limit is overshot by milliseconds.
const CLOCK_EVERY_OPS: u64 = 256;
/// Largest string a script may build (exponential growth is stopped here).
pub const MAX_STRING: usize = 16 * 1024 * 1024;
/// Largest array or map.
pub const MAX_COLLECTION: usize = 1_000_000;

thread_local! {
    static LOADING: Cell<bool> = const { Cell::new(false) };
    /// When the current load began (set by [`LoadGuard::run`]).
    static LOAD_STARTED: Cell<Option<std::time::Instant>> = const { Cell::new(None) };
}

/// Sets the wall-clock limit on every later load in this process. The CLI never
/// changes it; a program that loads runbooks under an instruction counter (the
/// `scaling` benchmark runs a 100,000-step load under valgrind, ~50 times slower than
/// the machine) raises it. The operation budget still applies.
pub fn set_load_time_limit(limit: Duration) {
    let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
    LOAD_TIME_LIMIT_MS.store(ms, Ordering::Relaxed);
}

/// The wall-clock limit loads run under now.
pub fn load_time_limit() -> Duration {
    Duration::from_millis(LOAD_TIME_LIMIT_MS.load(Ordering::Relaxed))
}

/// Marks the current thread as loading a runbook for the duration of a closure, which
/// turns on the load-time operation budget.
pub struct LoadGuard;

impl LoadGuard {
    /// Run `f` with the load-time budget on.
    pub fn run<T>(f: impl FnOnce() -> T) -> T {
        let before = LOADING.with(|l| l.replace(true));
        let started = LOAD_STARTED.with(|s| s.replace(Some(std::time::Instant::now())));
        let out = f();
        LOADING.with(|l| l.set(before));
        LOAD_STARTED.with(|s| s.set(started));
        out
    }
}

/// Set the sandbox's limits on `engine`: call depth, expression depth, string and
/// collection sizes, modules and variables (and no string interning). The `load_plan` and
/// `resume_10k` benchmarks give a plain engine the same, to time Rhai alone.
pub fn set_limits(engine: &mut Engine) {
    engine
        .set_max_call_levels(64)
        .set_max_expr_depths(64, 64)
        .set_max_string_size(MAX_STRING)
        .set_max_array_size(MAX_COLLECTION)
        .set_max_map_size(MAX_COLLECTION)
        .set_max_modules(256)
        .set_max_variables(10_000);
    // The interner's cache upkeep dominated loading large generated runbooks.
    engine.set_max_strings_interned(0);
}

/// A fresh engine with the sandbox limits and every waymark primitive registered.
pub fn new_engine() -> Engine {
    let mut engine = Engine::new();
    set_limits(&mut engine);
    engine.disable_symbol("eval");
    // Called on every operation of every script: a step's closure checks whether its
    // step was cancelled; a load (which runs no step) checks its budgets, and looks for a
    // cancelled step only with its clock, every CLOCK_EVERY_OPS operations.
    engine.on_progress(|ops| {
        if !LOADING.with(Cell::get) {
            return super::step_env::cancelled_reason().map(Dynamic::from);
        }
        if ops > LOAD_OPERATION_LIMIT {
            return Some(Dynamic::from(format!(
                "the runbook was stopped after {LOAD_OPERATION_LIMIT} operations while loading"
            )));
        }
        if ops % CLOCK_EVERY_OPS == 0 {
            if let Some(reason) = super::step_env::cancelled_reason() {
                return Some(Dynamic::from(reason));
            }
            let started = LOAD_STARTED.with(Cell::get)?;
            let limit = load_time_limit();
            if started.elapsed() > limit {
                return Some(Dynamic::from(format!(
                    "the runbook was stopped after {} of loading ({ops} operations)",
                    crate::duration::format_duration(limit)
                )));
            }
        }
        None
    });
    engine.on_print(|s| super::step_env::print_line("print", s));
    engine.on_debug(|s, _, _| super::step_env::print_line("debug", s));
    super::primitives::register(&mut engine);
    super::exec::register(&mut engine);
    super::clock::register(&mut engine);
    super::remote::register(&mut engine);
    super::estate_ops::register(&mut engine);
    super::unknown::register(&mut engine);
    super::strict::register(&mut engine);
    super::inventory_fns::register(&mut engine);
    super::inventory_fns::register_text(&mut engine);
    engine
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raising the limit (never lowering it: loads in other tests run meanwhile) is
    /// seen by every later load, and a limit too long to count in milliseconds is
    /// the longest one rather than a panic.
    #[test]
    fn a_raised_load_time_limit_is_the_one_loads_run_under() {
        assert_eq!(load_time_limit(), LOAD_TIME_LIMIT);
        set_load_time_limit(Duration::MAX);
        assert_eq!(load_time_limit(), Duration::from_millis(u64::MAX));
        set_load_time_limit(Duration::from_secs(3600));
        assert_eq!(load_time_limit(), Duration::from_secs(3600));
        set_load_time_limit(LOAD_TIME_LIMIT);
    }
}
