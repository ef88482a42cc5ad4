//! What the declaration functions share while one script loads: the declarations so
//! far, the diagnostics, and per-library caches that keep a 10,000-step load linear.

use crate::diagnostic::{Diagnostic, SourceMap};
use crate::dsl::declaration::{RunbookDecl, StepDecl};
use crate::dsl::positions::KeyIndex;
use crate::hashing::FastMap;
use rhai::{Dynamic, ImmutableString, Map, NativeCallContext};
use std::collections::hash_map::Entry;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// The script functions of one function library by name, found once per library: a
/// 10,000-step script has 10,000 closures in one library, and searching it for each
/// closure was quadratic. Names and definitions are the library's own, shared.
pub(super) struct Library {
    /// The file the library was compiled from.
    pub(super) file: Arc<str>,
    /// Per name, the first definition in the file (whose parameters the `ctx` lint
    /// reads) and the last one with a body position (whose text is the closure's).
    /// Overloads are told apart by where they are written, never by the library's
    /// order: Rhai keys a library by hashes seeded per process, so its order — and a
    /// fingerprint taken from it — changed from one process to the next.
    pub(super) by_name: FastMap<ImmutableString, (Def, Option<Def>)>,
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
    pub(super) libraries: FastMap<usize, Library>,
    // Each closure's text once sliced, by library and name: a closure declared in a
    // loop is one function, sliced once rather than once per step.
    pub(super) texts: crate::dsl::recent::Recent<(usize, String), Option<String>>,
    pub(super) callees: crate::dsl::callees::CalleeCache,
    // The runtime state the last declaration's closures carry, for the next to share.
    #[allow(deprecated)]
    last_env: Option<Arc<rhai::NativeCallContextStore>>,
}

impl State {
    /// The script has run: no more declarations, and what they needed is let go (the
    /// engine keeps this state for as long as the runbook lives).
    pub(super) fn finish(&mut self) {
        self.loading = false;
        self.libraries = FastMap::default();
        self.texts = Default::default();
        self.callees = Default::default();
        self.last_env = None;
    }

    /// The runtime state closures declared by the call `ctx` carry: the previous
    /// declaration's when only the call's position differs, as for consecutive
    /// `step()` calls (a copy each was a tenth of a 10,000-step load's heap).
    #[allow(deprecated)]
    pub(super) fn env_at(&mut self, ctx: &NativeCallContext) -> Arc<rhai::NativeCallContextStore> {
        if let Some(last) = self.last_env.as_ref().filter(|last| same_state(last, ctx)) {
            return last.clone();
        }
        let mut store = ctx.store_data();
        store.global.num_operations = Default::default();
        let env = Arc::new(store);
        self.last_env = Some(env.clone());
        env
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
        let mut by_name: FastMap<ImmutableString, (Def, Option<Def>)> = FastMap::default();
        for (_, _, n, _, def) in m.iter_script_fn_info() {
            let placed = def.body.start_position().line().is_some();
            let name = if def.name.as_str() == n {
                def.name.clone()
            } else {
                n.into()
            };
            match by_name.entry(name) {
                Entry::Occupied(mut e) => {
                    let (first, text) = e.get_mut();
                    if written_at(def) < written_at(first) {
                        *first = def.clone();
                    }
                    if placed
                        && text
                            .as_ref()
                            .is_none_or(|t| written_at(def) > written_at(t))
                    {
                        *text = Some(def.clone());
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

// Where `def` is written, for ordering overloads: by its body's start, those without a
// position last, then by arity (two definitions of one name and arity are one function).
fn written_at(def: &Def) -> (bool, usize, usize, usize) {
    let at = def.body.start_position();
    (
        at.line().is_none(),
        at.line().unwrap_or(0),
        at.position().unwrap_or(0),
        def.params.len(),
    )
}

/// Whether `env` holds the runtime state of the call `ctx`, but for the position and
/// the operation count (reset in every copy): every field of Rhai's
/// `GlobalRuntimeState` that this build of Rhai has (no `debugging` feature), compared
/// by identity where it is shared. A tag other than `()` is not compared: not shared.
#[allow(deprecated)]
fn same_state(env: &rhai::NativeCallContextStore, ctx: &NativeCallContext) -> bool {
    fn same<T>(a: &Option<rhai::Shared<T>>, b: &Option<rhai::Shared<T>>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => rhai::Shared::ptr_eq(a, b),
            (None, None) => true,
            _ => false,
        }
    }
    let (a, b) = (&env.global, ctx.global_runtime_state());
    env.fn_name == ctx.fn_name()
        && env.source.as_deref() == ctx.fn_source()
        && a.source == b.source
        && a.lib.len() == b.lib.len()
        && a.lib
            .iter()
            .zip(b.lib.iter())
            .all(|(x, y)| rhai::Shared::ptr_eq(x, y))
        && a.num_imports() == b.num_imports()
        && a.iter_imports_raw()
            .zip(b.iter_imports_raw())
            .all(|((n, m), (o, p))| n == o && rhai::Shared::ptr_eq(m, p))
        && a.num_modules_loaded == b.num_modules_loaded
        && a.level == b.level
        && a.scope_level == b.scope_level
        && a.always_search_scope == b.always_search_scope
        && same(&a.embedded_module_resolver, &b.embedded_module_resolver)
        && same(&a.constants, &b.constants)
        && a.tag.is_unit()
        && b.tag.is_unit()
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

    /// The sources loaded so far, locked (after the state, where both are held).
    pub(super) fn sources(&self) -> std::sync::MutexGuard<'_, SourceMap> {
        self.sources.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the sources loaded so far (the map holds `Arc`s): a copy, because the
    /// closures a declaration makes lock the sources again while it is parsed.
    pub(super) fn sources_now(&self) -> SourceMap {
        self.sources().clone()
    }
}
