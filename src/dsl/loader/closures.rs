//! Turning a declaration's Rhai closures into [`Callable`]s: each closure's own copy
//! of what it captured, its source text (for fingerprints and messages), the functions
//! it calls, and the `ctx` names it reads checked at load time.

use super::script_errors::to_pos;
use super::shared::{Shared, State};
use crate::diagnostic::Diagnostic;
use crate::dsl::declaration::Callable;
use crate::dsl::options::MakeCallable;
use rhai::{Dynamic, FnPtr, Map, NativeCallContext};
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
        // The load's state is locked once for all of a closure's bookkeeping (each lock
        // and unlock is an atomic exchange; there were half a dozen per closure).
        let mut st = self.shared.state();
        let env = self.env.get_or_insert_with(|| st.env_at(self.ctx)).clone();
        let mut source = self
            .closure_source(&mut st, &fp)
            .unwrap_or_else(|| fp.fn_name().to_string());
        for v in fp.curry() {
            source.push_str(&format!("\n// captured: {v:?}"));
        }
        self.check_names(&mut st, &fp);
        let main = st.main_file.clone();
        let callees = st
            .callees
            .callees(&env, &fp, &main, &|| self.shared.sources_now());
        drop(st);
        Callable {
            fn_ptr: fp,
            env,
            source,
            callees,
            pos: self.ctx.call_position(),
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
    fn check_names(&self, st: &mut State, fp: &FnPtr) {
        let name = fp.fn_name();
        let captured = fp.curry().len();
        for m in self.ctx.iter_namespaces() {
            let def = st
                .library(m)
                .by_name
                .get(name)
                .map(|(first, _)| first.clone());
            let Some(def) = def else {
                continue;
            };
            // Captured variables come first; the closure's own `ctx` follows.
            let Some(ctx) = def.params.get(captured) else {
                return;
            };
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

    // The closure's text, sliced from its file once per function (the state is held:
    // the sources are locked after it, as everywhere).
    fn closure_source(&self, st: &mut State, fp: &FnPtr) -> Option<String> {
        let name = fp.fn_name();
        for m in self.ctx.iter_namespaces() {
            let key = m as *const rhai::Module as usize;
            let lib = st.library(m);
            let Some((_, Some(def))) = lib.by_name.get(name) else {
                continue;
            };
            let file = lib.file.clone();
            let (s, e) = (def.body.start_position(), def.body.end_position());
            let Some(line) = s.line() else {
                continue;
            };
            let start = (line, s.position().unwrap_or(1));
            let end = e.line().map(|l| (l, e.position().unwrap_or(1)));
            if let Some(text) = st.texts.get(|(k, n)| *k == key && n == name) {
                return text;
            }
            let sources = self.shared.sources();
            // A body without an end position runs to the end of its first line.
            let end = end.unwrap_or_else(|| {
                let last = sources
                    .line(&file, start.0)
                    .map_or(1, |l| l.chars().count());
                (start.0, last)
            });
            let text = sources.slice(&file, start, end);
            drop(sources);
            st.texts.put((key, name.to_string()), text.clone());
            return text;
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
