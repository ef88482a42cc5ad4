//! Loading a runbook: evaluate the Rhai script once, collecting what `runbook()`,
//! `step()` and `gate()` declare. Loading has no side effects: the primitives that
//! act on the world refuse to run outside a step (see [`super::step_env`]).
//!
//! One concept per file: [`runbook_ref`] (where a runbook comes from), [`shared`] (what
//! the declaration functions share during one load), [`declare`] (those functions),
//! [`closures`] (a closure becomes a [`Callable`](super::declaration::Callable)),
//! [`script_errors`] (script errors as diagnostics), [`optimise`] (the script's
//! functions optimised a batch at a time); this file runs one load.

mod closures;
mod declare;
mod optimise;
mod runbook_ref;
mod script_errors;
mod shared;

pub(crate) use declare::describing_engine;
pub use runbook_ref::RunbookRef;
pub(crate) use script_errors::eval_diagnostic;

use super::declaration::{RunbookDecl, StepDecl};
use super::resolver::{display_path, Resolver};
use crate::diagnostic::{Diagnostic, SourceMap, SrcPos};
use crate::shipped;
use rhai::{Dynamic, Engine, Scope};
use script_errors::to_pos;
use shared::Shared;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What to load.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    /// The runbook.
    pub runbook: RunbookRef,
    /// `--param key=value`, in the order given.
    pub params: Vec<(String, String)>,
    /// The `inventory` global (already parsed; `()` when there is none).
    pub inventory: serde_json::Value,
}

/// A loaded runbook: declarations plus what is needed to call their closures later.
pub struct Runbook {
    /// What `runbook()` declared.
    pub decl: RunbookDecl,
    /// Steps and gates in declaration order; empty after [`crate::plan::Plan::load`],
    /// which moves them into the plan.
    pub steps: Vec<StepDecl>,
    /// Parameter values: `--param` merged over defaults.
    pub params: BTreeMap<String, String>,
    /// The `inventory` global as Rhai sees it.
    pub inventory: Dynamic,
    /// The engine the closures must be called with.
    pub engine: Arc<Engine>,
    /// Every file read, for diagnostics and closure source.
    pub sources: SourceMap,
    /// The runbook's file (display form) or shipped name.
    pub file: Arc<str>,
    // The script's parsed top level, run once while loading and needed no more. It is
    // freed with the runbook, not at the end of the load: freeing 10,000 written-out
    // `step()` calls (~12 MB of small allocations) was ~7% of loading them, and the
    // commands leave the runbook to process exit (`cli::leave_to_exit`). It was alive at
    // the load's peak anyway (during evaluation); the peak grew ~1 MiB (docs/performance.md).
    _top: Option<rhai::AST>,
}

/// A failed load: every diagnostic found, with the sources needed to render them.
#[derive(Debug)]
pub struct LoadError {
    /// The problems, in the order found.
    pub diagnostics: Vec<Diagnostic>,
    /// The declarations gathered when loading completed despite errors in them, so
    /// the plan can still be checked and every problem reported at once.
    pub partial: Option<(String, Vec<StepDecl>, BTreeMap<String, String>)>,
    /// The `runbook()` declaration, when the script got that far: `show` and `list`
    /// describe a runbook whose required parameters were not given.
    pub declared: Option<Box<RunbookDecl>>,
    /// Sources for rendering.
    pub sources: SourceMap,
}

impl From<LoadError> for crate::exit::CliError {
    fn from(e: LoadError) -> Self {
        Self::diagnostics(crate::exit::Exit::BadInput, &e.diagnostics, &e.sources)
    }
}

impl LoadError {
    /// Render for the terminal.
    pub fn render(&self) -> String {
        crate::diagnostic::render(&self.diagnostics, &self.sources)
    }
}

/// Load a runbook: evaluate it once and collect its declarations.
pub fn load(req: &LoadRequest) -> Result<Runbook, LoadError> {
    let sources = Arc::new(Mutex::new(SourceMap::default()));
    let fail = |diags: Vec<Diagnostic>, sources: &Arc<Mutex<SourceMap>>| LoadError {
        diagnostics: diags,
        partial: None,
        declared: None,
        sources: sources.lock().unwrap_or_else(|e| e.into_inner()).clone(),
    };
    // One copy of the text, shared with the source map.
    let (file, text, base): (Arc<str>, Arc<str>, Option<PathBuf>) = match &req.runbook {
        RunbookRef::Path(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                fail(
                    vec![Diagnostic::new(format!(
                        "cannot read runbook {}: {e}",
                        p.display()
                    ))],
                    &sources,
                )
            })?;
            let canon = p.canonicalize().unwrap_or_else(|_| p.clone());
            let base = canon.parent().map(Path::to_path_buf);
            (display_path(&canon).into(), text.into(), base)
        }
        RunbookRef::Shipped(n) => {
            let text = shipped::runbook(n).unwrap_or_default().into();
            (format!("runbooks/{n}.rhai").into(), text, None)
        }
        RunbookRef::Recorded { main, files } => {
            let text = files
                .get(main)
                .map_or_else(|| "".into(), |t| t.as_str().into());
            (main.as_str().into(), text, None)
        }
    };
    sources
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(file.clone(), text.clone());

    let shared = Arc::new(Shared::new(
        file.clone(),
        req.params.clone(),
        sources.clone(),
    ));

    let mut engine = super::engine::new_engine();
    let mut resolver = Resolver::new(base, sources.clone()).with_root(&file);
    if let RunbookRef::Recorded { main, files } = &req.runbook {
        resolver = resolver.recorded(main, files.clone());
    }
    engine.set_module_resolver(resolver);
    declare::register_declarations(&mut engine, &shared);
    // Parsed once, unoptimised: the option keys' positions are read from this tree (an
    // optimised map of constants loses them), then its functions are optimised as
    // `compile` would (see below).
    let level = engine.optimization_level();
    engine.set_optimization_level(rhai::OptimizationLevel::None);
    let compiled = engine.compile(&*text);
    engine.set_optimization_level(level);
    let engine = Arc::new(engine);

    let inventory = rhai::serde::to_dynamic(&req.inventory).unwrap_or(Dynamic::UNIT);
    let mut scope = Scope::new();
    scope.push_constant_dynamic("params", shared.params_dyn.clone());
    scope.push_constant_dynamic("inventory", inventory.clone());

    let result = compiled.map_err(|e| {
        let pos = to_pos(&file, e.1);
        let mut d = Diagnostic::at(pos, format!("syntax error: {}", e.0));
        if text.contains("default:") || text.contains("default :") {
            d.help = Some("`default` is a reserved word in Rhai: a parameter's default is written `default_value`".into());
        }
        d
    });
    let mut top_level = None;
    let eval_err = match result {
        Err(d) => Some(d),
        Ok(ast) => {
            shared.keys.add_unoptimised(file.clone(), &ast);
            // The vector of declarations grows to a few megabytes at 10,000 steps:
            // sized for the calls written out at top level rather than doubled past them.
            shared
                .state()
                .steps
                .reserve_exact(declarations_written(&ast));
            // Only the functions are optimised — closures' bodies and script functions,
            // what steps run later and what fingerprints and the `ctx` lint read, exactly
            // as before. The top level runs once, here: optimising its 10,000 `step()`
            // calls cost more than it saved (a tenth of a load's instructions). A body
            // the optimiser would leave as it is, for all waymark reads of it, keeps its
            // parsed form and its walk (`callees.rs`); the others are optimised a batch
            // at a time, the parsed library let go as it goes: the optimiser's copies
            // were the peak of a long runbook's load (`optimise.rs`).
            let mut ast = {
                let mut st = shared.state();
                optimise::functions(&engine, ast, level, &mut |def| {
                    st.callees.walk_if_unchanged_by_optimiser(def)
                })
            };
            ast.set_source(file.as_ref());
            let ran = super::engine::LoadGuard::run(|| engine.run_ast_with_scope(&mut scope, &ast));
            top_level = Some(ast);
            ran.err().and_then(|e| eval_diagnostic(&file, &e))
        }
    };

    let mut st = shared.state();
    st.finish();
    shared.keys.clear();
    let mut diags = std::mem::take(&mut st.diags);
    let eval_ok = eval_err.is_none();
    if let Some(d) = eval_err {
        diags.push(d);
    }
    let Some(decl) = st.runbook.take() else {
        if diags.is_empty() {
            let mut d = Diagnostic::at(
                Some(SrcPos {
                    file: file.clone(),
                    line: 1,
                    col: 1,
                }),
                "the script never calls runbook(...)",
            );
            d.help = Some(
                "start the script with `runbook(#{ name: \"...\", description: \"...\" });`".into(),
            );
            diags.push(d);
        }
        return Err(fail(diags, &sources));
    };
    if !diags.is_empty() {
        let mut e = fail(diags, &sources);
        e.declared = Some(Box::new(decl.clone()));
        if eval_ok {
            e.partial = Some((
                decl.name.clone(),
                std::mem::take(&mut st.steps),
                st.params.clone(),
            ));
        }
        return Err(e);
    }
    let steps = std::mem::take(&mut st.steps);
    let params = std::mem::take(&mut st.params);
    drop(st);
    let sources = sources.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Runbook {
        decl,
        steps,
        params,
        inventory,
        engine,
        sources,
        file,
        _top: top_level,
    })
}

/// How many `step()` and `gate()` calls the script's top level writes out: what its
/// declarations take at least (a loop or a function may declare more).
fn declarations_written(ast: &rhai::AST) -> usize {
    ast.statements()
        .iter()
        .filter(|stmt| {
            // Unoptimised, a call written as a statement is an expression statement.
            let call = match stmt {
                rhai::Stmt::FnCall(call, _) => call,
                rhai::Stmt::Expr(e) => match &**e {
                    rhai::Expr::FnCall(call, _) => call,
                    _ => return false,
                },
                _ => return false,
            };
            ["step", "gate"].contains(&call.name.as_str())
        })
        .count()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_declarations_a_top_level_writes_out_are_counted() {
        let mut engine = rhai::Engine::new_raw();
        // As the loader parses: unoptimised, so calls stay expression statements.
        engine.set_optimization_level(rhai::OptimizationLevel::None);
        let ast = engine
            .compile(
                "runbook(#{ name: \"x\" });\nstep(\"a\", #{});\ngate(\"b\", #{});\nfor i in 0..3 { step(`c${i}`) }\nfn f() { step(\"d\") }\nlet s = step(\"e\");",
            )
            .expect("compiles");
        assert_eq!(super::declarations_written(&ast), 2);
    }

    #[test]
    fn declarations_share_runtime_state_until_it_changes_and_keep_their_position() {
        let text = "runbook(#{ name: \"x\" });\nstep(\"a\", #{ run: |ctx| 1 });\nstep(\"b\", #{ run: |ctx| 2, undo: |ctx| 3 });\nimport \"m\" as m;\nstep(\"c\", #{ run: |ctx| m::f() });\n";
        let files = [("rb.rhai", text), ("m.rhai", "fn f() { 4 }")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let req = super::LoadRequest {
            runbook: super::RunbookRef::Recorded {
                main: "rb.rhai".into(),
                files: std::sync::Arc::new(files),
            },
            params: vec![],
            inventory: serde_json::Value::Null,
        };
        let rb = super::load(&req).map_err(|e| e.render()).expect("loads");
        let run = |i: usize| rb.steps[i].run.as_ref().expect("run");
        let (a, b, c) = (run(0), run(1), run(2));
        assert!(
            std::sync::Arc::ptr_eq(&a.env, &b.env),
            "only the position differs"
        );
        let undo = rb.steps[1].undo.as_deref().expect("undo");
        assert!(std::sync::Arc::ptr_eq(&b.env, &undo.env));
        assert!(
            !std::sync::Arc::ptr_eq(&b.env, &c.env),
            "an import came between"
        );
        assert_eq!(
            [a.pos, b.pos, undo.pos, c.pos].map(|p| p.line()),
            [Some(2), Some(3), Some(3), Some(5)]
        );
        for (step, want) in [(a, 1), (b, 2), (undo, 3), (c, 4)] {
            let got = step.call(&rb.engine, rhai::Dynamic::UNIT).expect("calls");
            assert_eq!(got.as_int(), Ok(want));
        }
    }
}
