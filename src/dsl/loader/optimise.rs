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

use super::shared::Def;
use rhai::{Engine, ImmutableString, Module, OptimizationLevel, Scope, ScriptFuncDef, AST};
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

/// The script `ast` (parsed without optimisation) with its functions optimised at
/// `level`; its top level is left as parsed. A function for which `unchanged` holds —
/// the optimiser would leave everything waymark reads of its body as it is (see
/// [`crate::dsl::callees`]) — keeps its parsed body, which runs as the optimised one
/// would; when that is every function (most long runbooks: their closures call a
/// primitive or return `()`), the AST is returned as it is.
pub(super) fn functions(
    engine: &Engine,
    ast: AST,
    level: OptimizationLevel,
    unchanged: &mut dyn FnMut(&Def) -> bool,
) -> AST {
    let mut top = ast;
    if level != OptimizationLevel::Simple {
        let functions = top.clone_functions_only();
        top.clear_functions();
        let mut ast = engine.optimize_ast(&Scope::new(), functions, level);
        ast.combine(top);
        return ast;
    }
    // A function kept as parsed is done already; the others wait in `parsed`, by the
    // same index, for their batch.
    let fns = top.shared_lib().iter_script_fn_info();
    let (mut done, mut parsed): (Vec<Option<Def>>, Vec<Option<Def>>) = fns
        .map(|(.., def)| {
            if unchanged(def) {
                (Some(def.clone()), None)
            } else {
                (None, Some(def.clone()))
            }
        })
        .unzip();
    if parsed.iter().all(Option::is_none) {
        return top;
    }
    top.clear_functions();
    // Optimised a batch at a time; the parsed ones go as each batch is done.
    let todo: Vec<usize> = (0..parsed.len()).filter(|&i| parsed[i].is_some()).collect();
    for batch_at in todo.chunks(BATCH) {
        let mut at: HashMap<Signature, usize> = HashMap::with_capacity(batch_at.len());
        let mut batch = Module::new();
        for &i in batch_at {
            if let Some(def) = parsed[i].as_ref() {
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
        // One the optimiser did not give back (it gives back every one) would keep its
        // parsed body rather than go missing.
        for &i in batch_at {
            let def = parsed[i].take();
            if done[i].is_none() {
                done[i] = def;
            }
        }
    }
    let mut ast = AST::new_from_module(Module::from(done.into_iter().flatten()));
    ast.combine(top);
    ast
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhai::Shared;

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

    /// Each function's name and arity with its definition (statements with positions),
    /// in library order.
    fn defs(ast: &AST) -> Vec<((String, usize), String)> {
        ast.shared_lib()
            .iter_script_fn_info()
            .map(|(.., def)| ((def.name.to_string(), def.params.len()), format!("{def:?}")))
            .collect()
    }

    #[test]
    fn batches_give_the_library_optimising_it_at_once_gives() {
        let mut engine = crate::dsl::engine::new_engine();
        let ast = parsed(&mut engine);
        let level = engine.optimization_level();
        assert_eq!(level, OptimizationLevel::Simple, "the level loading uses");
        let at_once = engine.optimize_ast(&Scope::new(), ast.clone_functions_only(), level);
        let batched = functions(&engine, ast.clone(), level, &mut |_| false);
        assert_eq!(defs(&batched), defs(&at_once));
        assert_ne!(
            defs(&at_once),
            defs(&ast),
            "the optimiser changed the bodies"
        );
        assert_eq!(
            format!("{:?}", batched.statements()),
            format!("{:?}", ast.statements()),
            "the top level as parsed"
        );
    }

    /// Each function's definition by name and arity.
    fn by_signature(ast: &AST) -> HashMap<(String, usize), String> {
        defs(ast).into_iter().collect()
    }

    #[test]
    fn functions_the_optimiser_would_leave_alone_keep_their_parsed_bodies() {
        let mut engine = crate::dsl::engine::new_engine();
        let ast = parsed(&mut engine);
        let level = engine.optimization_level();
        let at_once = engine.optimize_ast(&Scope::new(), ast.clone_functions_only(), level);
        // Every other function kept.
        let mut kept = std::collections::HashSet::new();
        let mut n = 0;
        let mixed = functions(&engine, ast.clone(), level, &mut |def| {
            n += 1;
            let keep = n % 2 == 0;
            if keep {
                kept.insert((def.name.to_string(), def.params.len()));
            }
            keep
        });
        let (parsed, optimised, got) = (
            by_signature(&ast),
            by_signature(&at_once),
            by_signature(&mixed),
        );
        assert_eq!(got.len(), parsed.len());
        assert!(kept.len() > BATCH && kept.len() < parsed.len());
        for (sig, got) in &got {
            let want = if kept.contains(sig) {
                &parsed[sig]
            } else {
                &optimised[sig]
            };
            assert_eq!(got, want, "{sig:?}");
        }
        assert_eq!(mixed.statements().len(), ast.statements().len());
        // Every one kept: the script as parsed, not a copy.
        let kept = functions(&engine, ast.clone(), level, &mut |_| true);
        assert!(Shared::ptr_eq(kept.shared_lib(), ast.shared_lib()));
    }
}
