//! What the declaration functions share while one script loads: the declarations so
//! far, the diagnostics, and per-library caches that keep a 10,000-step load linear.

use crate::diagnostic::{Diagnostic, SourceMap};
use crate::dsl::declaration::{RunbookDecl, StepDecl};
use crate::dsl::positions::KeyIndex;
use rhai::{Dynamic, Map};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// Where a function body is: (file, start (line, col), end (line, col)).
pub(super) type BodySpan = (Arc<str>, (usize, usize), (usize, usize));

#[derive(Default)]
pub(super) struct State {
    pub(super) loading: bool,
    pub(super) main_file: Arc<str>,
    pub(super) runbook: Option<RunbookDecl>,
    pub(super) steps: Vec<StepDecl>,
    pub(super) diags: Vec<Diagnostic>,
    pub(super) cli_params: Vec<(String, String)>,
    pub(super) params: BTreeMap<String, String>,
    // Closure bodies per function library, found once per library.
    pub(super) spans: HashMap<usize, HashMap<String, BodySpan>>,
    // Each closure's text once sliced, by library and name: a closure declared in a
    // loop is one function, sliced once rather than once per step.
    pub(super) texts: crate::dsl::recent::Recent<(usize, String), Option<String>>,
    // Script functions by name per function library, found once per library: a
    // 10,000-step script has 10,000 closures in one library, and searching it for each
    // closure was quadratic.
    pub(super) defs: HashMap<usize, HashMap<String, rhai::Shared<rhai::ScriptFuncDef>>>,
    pub(super) callees: crate::dsl::callees::CalleeCache,
}

pub(super) struct Shared {
    pub(super) state: Mutex<State>,
    pub(super) sources: Arc<Mutex<SourceMap>>,
    pub(super) keys: KeyIndex,
    pub(super) params_dyn: Dynamic,
}

impl Shared {
    /// Shared state for one load of `main_file`, with the `--param` values given.
    pub(super) fn new(
        main_file: Arc<str>,
        cli_params: Vec<(String, String)>,
        sources: Arc<Mutex<SourceMap>>,
    ) -> Self {
        Shared {
            state: Mutex::new(State {
                loading: true,
                main_file,
                cli_params,
                ..Default::default()
            }),
            sources,
            keys: KeyIndex::default(),
            params_dyn: Dynamic::from_map(Map::new()).into_shared(),
        }
    }

    pub(super) fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the sources loaded so far (the map holds `Arc`s): a copy, because the
    /// closures a declaration makes lock the sources again while it is parsed.
    pub(super) fn sources_now(&self) -> SourceMap {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
