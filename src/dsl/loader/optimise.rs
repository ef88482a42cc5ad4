//! A script's functions optimised as `compile` would, a batch at a time: Rhai's
//! optimiser holds, besides the parsed functions, a copy of every function's signature
//! and the optimised library it builds, so for a 10,000-step runbook (10,000 closures)
//! optimising the library at once was the peak of the whole load — about 7 MB more
//! than optimising it in batches.
//!
//! Batches give the same functions: at [`OptimizationLevel::Simple`], the level the
//! engine uses, the optimiser reads the library only for what it evaluates in full
//! (`Full` folds a call with constant arguments unless a script function overrides
//! it), so a body is optimised the same whichever other functions are in its batch. At
//! any other level the library is optimised at once, as before. The optimised library
//! is built in the parsed library's order, as `compile` builds it, so it lists its
//! functions in the same order.

use rhai::{Engine, ImmutableString, Module, OptimizationLevel, Scope, ScriptFuncDef, Shared, AST};
use std::collections::HashMap;

/// Functions per batch: small next to a long runbook's library, large enough that
/// each batch's fixed cost does not count.
const BATCH: usize = 1024;

/// What tells one function from another in a library: its name, its number of
/// parameters and, for a method, its type.
type Signature = (ImmutableString, usize, Option<ImmutableString>);

fn signature(def: &ScriptFuncDef) -> Signature {
    (def.name.clone(), def.params.len(), def.this_type.clone())
}

/// The functions of `top` (parsed without optimisation), optimised at `level`, as an
/// AST of its own; `top` keeps its statements and loses its functions.
pub(super) fn functions(engine: &Engine, top: &mut AST, level: OptimizationLevel) -> AST {
    if level != OptimizationLevel::Simple {
        let functions = top.clone_functions_only();
        top.clear_functions();
        return engine.optimize_ast(&Scope::new(), functions, level);
    }
    let parsed = top.shared_lib().clone();
    top.clear_functions();
    let mut defs: Vec<Option<Shared<ScriptFuncDef>>> = parsed
        .iter_script_fn_info()
        .map(|(.., def)| Some(def.clone()))
        .collect();
    // The parsed library goes; each batch below holds its functions only while it is
    // optimised.
    drop(parsed);
    let mut done: Vec<Option<Shared<ScriptFuncDef>>> = vec![None; defs.len()];
    for start in (0..defs.len()).step_by(BATCH) {
        let end = (start + BATCH).min(defs.len());
        let mut at: HashMap<Signature, usize> = HashMap::with_capacity(end - start);
        let mut batch = Module::new();
        for (i, slot) in defs.iter_mut().enumerate().take(end).skip(start) {
            if let Some(def) = slot.as_ref() {
                at.insert(signature(def), i);
                batch.set_script_fn(def.clone());
            }
        }
        let optimised = engine.optimize_ast(&Scope::new(), AST::new_from_module(batch), level);
        for (.., def) in optimised.shared_lib().iter_script_fn_info() {
            if let Some(&i) = at.get(&signature(def)) {
                done[i] = Some(def.clone());
            }
        }
        // The parsed functions go, but one the optimiser did not give back (it gives
        // back every one) would keep its parsed body rather than go missing.
        for (slot, parsed) in done[start..end].iter_mut().zip(&mut defs[start..end]) {
            let parsed = parsed.take();
            if slot.is_none() {
                *slot = parsed;
            }
        }
    }
    AST::new_from_module(Module::from(done.into_iter().flatten()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A library of more than two batches: overloads, a script function shadowing a
    /// native one, and bodies the optimiser folds.
    fn parsed(engine: &mut Engine) -> AST {
        let mut script =
            String::from("fn helper(x) { x + 1 }\nfn helper(x, y) { x + y }\nfn len(x) { 99 }\n");
        for i in 0..2 * BATCH + 100 {
            script.push_str(&format!(
                "let c{i} = |ctx| {{ let z = {i} + 2; if false {{ helper(z) }}; len(\"abc\") + helper(z, 1) }};\n"
            ));
        }
        engine.set_optimization_level(OptimizationLevel::None);
        let ast = engine.compile(&script).expect("compiles");
        engine.set_optimization_level(OptimizationLevel::Simple);
        ast
    }

    #[test]
    fn batches_give_the_library_optimising_it_at_once_gives() {
        let mut engine = crate::dsl::engine::new_engine();
        let ast = parsed(&mut engine);
        let level = engine.optimization_level();
        assert_eq!(level, OptimizationLevel::Simple, "the level loading uses");
        let at_once = engine.optimize_ast(&Scope::new(), ast.clone_functions_only(), level);
        let mut top = ast.clone();
        let batched = functions(&engine, &mut top, level);
        // Debug shows every function's statements (with positions) in library order.
        assert_eq!(format!("{batched:?}"), format!("{at_once:?}"));
        assert_ne!(
            format!("{at_once:?}"),
            format!("{:?}", ast.clone_functions_only()),
            "the optimiser changed the bodies"
        );
        assert!(!top.has_functions());
        assert_eq!(top.statements().len(), ast.statements().len());
    }
}
