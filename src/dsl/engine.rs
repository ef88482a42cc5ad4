//! The sandboxed Rhai engine every runbook runs in: resource limits, no `eval`, and the
//! waymark functions registered.

use rhai::{Dynamic, Engine};
use std::cell::Cell;

/// Operations a script may run while loading before it is stopped as runaway.
pub const LOAD_OPERATION_LIMIT: u64 = 20_000_000;
/// Largest string a script may build (exponential growth is stopped here).
pub const MAX_STRING: usize = 16 * 1024 * 1024;
/// Largest array or map.
pub const MAX_COLLECTION: usize = 1_000_000;

thread_local! {
    static LOADING: Cell<bool> = const { Cell::new(false) };
}

/// Marks the current thread as loading a runbook for the duration of a closure, which
/// turns on the load-time operation budget.
pub struct LoadGuard;

impl LoadGuard {
    /// Run `f` with the load-time budget on.
    pub fn run<T>(f: impl FnOnce() -> T) -> T {
        let before = LOADING.with(|l| l.replace(true));
        let out = f();
        LOADING.with(|l| l.set(before));
        out
    }
}

/// A fresh engine with the sandbox limits and every waymark primitive registered.
pub fn new_engine() -> Engine {
    let mut engine = Engine::new();
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
    engine.disable_symbol("eval");
    engine.on_progress(|ops| {
        if let Some(reason) = super::primitives::cancelled_reason() {
            return Some(Dynamic::from(reason));
        }
        if ops > LOAD_OPERATION_LIMIT && LOADING.with(Cell::get) {
            return Some(Dynamic::from(format!(
                "the runbook was stopped after {LOAD_OPERATION_LIMIT} operations while loading"
            )));
        }
        None
    });
    engine.on_print(|s| super::primitives::print_line("print", s));
    engine.on_debug(|s, _, _| super::primitives::print_line("debug", s));
    super::primitives::register(&mut engine);
    engine
}
