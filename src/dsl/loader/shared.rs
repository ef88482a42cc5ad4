//! What the declaration functions share while one script loads: the declarations so
//! far, the diagnostics, and per-library caches that keep a 10,000-step load linear.

use crate::diagnostic::{Diagnostic, SourceMap};
use crate::dsl::declaration::{RunbookDecl, StepDecl};
use crate::dsl::positions::KeyIndex;
use rhai::{Dynamic, ImmutableString, Map};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

/// The script functions of one function library by name, found once per library: a
/// 10,000-step script has 10,000 closures in one library, and searching it for each
/// closure was quadratic. Names and definitions are the library's own, shared.
pub(super) struct Library {
    /// The file the library was compiled from.
    pub(super) file: Arc<str>,
    /// Per name, the first definition in library order (whose parameters the `ctx`
    /// lint reads) and the last one with a body position (whose text is the closure's).
    pub(super) by_name: HashMap<ImmutableString, (Def, Option<Def>)>,
}

pub(super) type Def = rhai::Shared<rhai::ScriptFuncDef>;

#[derive(Default)]
pub(super) struct State {
    pub(super) loading: bool,
    pub(super) main_file: Arc<str>,
    pub(super) runbook: Option<RunbookDecl>,
    pub(super) steps: Vec<StepDecl>,
    pub(super) diags: Vec<Diagnostic>,
    pub(super) cli_params: Vec<(String, String)>,
    pub(super) params: BTreeMap<String, String>,
    // Function libraries by identity.
    pub(super) libraries: HashMap<usize, Library>,
    // Each closure's text once sliced, by library and name: a closure declared in a
    // loop is one function, sliced once rather than once per step.
    pub(super) texts: crate::dsl::recent::Recent<(usize, String), Option<String>>,
    pub(super) callees: crate::dsl::callees::CalleeCache,
}

impl State {
    /// The script has run: no more declarations, and what they needed is let go (the
    /// engine keeps this state for as long as the runbook lives).
    pub(super) fn finish(&mut self) {
        self.loading = false;
        self.libraries = HashMap::new();
        self.texts = Default::default();
        self.callees = Default::default();
    }

    /// The script functions of library `m` by name, indexed on first use.
    pub(super) fn library(&mut self, m: &rhai::Module) -> &Library {
        let key = m as *const rhai::Module as usize;
        let main = &self.main_file;
        self.libraries
            .entry(key)
            .or_insert_with(|| Library::of(m, main))
    }
}

impl Library {
    fn of(m: &rhai::Module, main: &Arc<str>) -> Library {
        let mut by_name: HashMap<ImmutableString, (Def, Option<Def>)> = HashMap::new();
        for (_, _, n, _, def) in m.iter_script_fn_info() {
            let placed = def.body.start_position().line().is_some();
            let name = if def.name.as_str() == n {
                def.name.clone()
            } else {
                n.into()
            };
            match by_name.entry(name) {
                Entry::Occupied(mut e) => {
                    if placed {
                        e.get_mut().1 = Some(def.clone());
                    }
                }
                Entry::Vacant(e) => {
                    e.insert((def.clone(), placed.then(|| def.clone())));
                }
            }
        }
        Library {
            file: m.id().map(Arc::from).unwrap_or_else(|| main.clone()),
            by_name,
        }
    }
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
