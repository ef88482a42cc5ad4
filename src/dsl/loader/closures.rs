//! Turning a declaration's Rhai closures into [`Callable`]s: each closure's own copy
//! of what it captured, its source text (for fingerprints and messages), the functions
//! it calls, and the `ctx` names it reads checked at load time.

use super::script_errors::to_pos;
use super::shared::Shared;
use crate::diagnostic::Diagnostic;
use crate::dsl::declaration::Callable;
use crate::dsl::options::MakeCallable;
use rhai::{Dynamic, FnPtr, Map, NativeCallContext};
use std::collections::HashMap;
use std::sync::Arc;

pub(super) struct Maker<'a, 'b> {
    ctx: &'a NativeCallContext<'b>,
    shared: &'a Shared,
    #[allow(deprecated)]
    env: Option<Arc<rhai::NativeCallContextStore>>,
}

impl MakeCallable for Maker<'_, '_> {
    #[allow(deprecated)]
    fn callable(&mut self, mut fp: FnPtr) -> Callable {
        // Rhai shares a captured variable between every closure that captures it, and a
        // loop variable is one variable: take each closure's own copy now.
        for v in fp.iter_curry_mut() {
            *v = detach(v);
        }
        let env = self
            .env
            .get_or_insert_with(|| {
                let mut store = self.ctx.store_data();
                store.global.num_operations = Default::default();
                Arc::new(store)
            })
            .clone();
        let mut source = self
            .closure_source(&fp)
            .unwrap_or_else(|| fp.fn_name().to_string());
        for v in fp.curry() {
            source.push_str(&format!("\n// captured: {v:?}"));
        }
        self.check_names(&fp);
        let callees = {
            let mut st = self.shared.state();
            let main = st.main_file.clone();
            st.callees
                .callees(&env, &fp, &main, &|| self.shared.sources_now())
        };
        Callable {
            fn_ptr: fp,
            env,
            source,
            callees,
            extra: None,
        }
    }
}

impl<'a, 'b> Maker<'a, 'b> {
    pub(super) fn new(ctx: &'a NativeCallContext<'b>, shared: &'a Shared) -> Self {
        Maker {
            ctx,
            shared,
            env: None,
        }
    }

    /// Report the literal names a closure reads that cannot exist (`ctx.parms`,
    /// `ctx.params.sevrer`), at their positions, so `check` finds them before a run.
    fn check_names(&self, fp: &FnPtr) {
        let name = fp.fn_name();
        let captured = fp.curry().len();
        for m in self.ctx.iter_namespaces() {
            let key = m as *const rhai::Module as usize;
            let def = self
                .shared
                .state()
                .defs
                .entry(key)
                .or_insert_with(|| {
                    let mut by_name = HashMap::new();
                    // The first of a name, as a search in library order finds it.
                    for (_, _, n, _, def) in m.iter_script_fn_info() {
                        by_name.entry(n.to_string()).or_insert_with(|| def.clone());
                    }
                    by_name
                })
                .get(name)
                .cloned();
            let Some(def) = def else {
                continue;
            };
            // Captured variables come first; the closure's own `ctx` follows.
            let Some(ctx) = def.params.get(captured) else {
                return;
            };
            let mut st = self.shared.state();
            // The body's one walk, shared with the callee search (and with every other
            // closure of the same body: one declared in a loop is walked once).
            let walk = st.callees.walk(&def);
            let reads = walk.reads.iter().filter(|r| r.var() == ctx.as_str());
            if reads.clone().next().is_none() {
                return;
            }
            let declared: Vec<String> = st
                .runbook
                .as_ref()
                .map(|r| r.params.keys().cloned().collect())
                .unwrap_or_default();
            let file: Arc<str> = m
                .id()
                .map(Arc::from)
                .unwrap_or_else(|| st.main_file.clone());
            for (msg, pos) in crate::dsl::strict::check_reads(ctx, reads, &declared) {
                st.diags.push(Diagnostic::at(to_pos(&file, pos), msg));
            }
            return;
        }
    }

    fn closure_source(&self, fp: &FnPtr) -> Option<String> {
        let name = fp.fn_name();
        let mut st = self.shared.state();
        let main = st.main_file.clone();
        for m in self.ctx.iter_namespaces() {
            let key = m as *const rhai::Module as usize;
            let spans = st.spans.entry(key).or_insert_with(|| {
                let file: Arc<str> = m.id().map(Arc::from).unwrap_or_else(|| main.clone());
                m.iter_script_fn_info()
                    .filter_map(|(_, _, n, _, def)| {
                        let s = def.body.start_position();
                        let e = def.body.end_position();
                        let start = (s.line()?, s.position().unwrap_or(1));
                        let end = match e.line() {
                            Some(l) => (l, e.position().unwrap_or(1)),
                            None => (start.0, usize::MAX / 2),
                        };
                        Some((n.to_string(), (file.clone(), start, end)))
                    })
                    .collect()
            });
            if let Some((file, s, e)) = spans.get(name).cloned() {
                if let Some(text) = st.texts.get(|(k, n)| *k == key && n == name) {
                    return text;
                }
                drop(st);
                let sources = self
                    .shared
                    .sources
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let end = if e.1 >= usize::MAX / 4 {
                    (
                        e.0,
                        sources.line(&file, e.0).map_or(1, |l| l.chars().count()),
                    )
                } else {
                    e
                };
                let text = sources.slice(&file, s, end);
                drop(sources);
                self.shared
                    .state()
                    .texts
                    .put((key, name.to_string()), text.clone());
                return text;
            }
        }
        None
    }
}

/// A deep copy of a value with no sharing left (captured variables become plain values).
fn detach(v: &Dynamic) -> Dynamic {
    let v = v.flatten_clone();
    if v.is_array() {
        let arr = v.into_array().unwrap_or_default();
        return Dynamic::from_array(arr.iter().map(detach).collect());
    }
    if v.is_map() {
        let map = v.cast::<Map>();
        return Dynamic::from_map(map.iter().map(|(k, x)| (k.clone(), detach(x))).collect());
    }
    v
}
