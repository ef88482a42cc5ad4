//! What a step's closure can call: the script functions (of the runbook and of every
//! module it imports) reachable from the closure's body, with their source text.
//!
//! A step's fingerprint covers these (SPEC §9), so an edit to an imported helper used by
//! a finished step is caught on resume like an edit to the closure itself. Reachability
//! is by name: every function call, method call, string literal (`Fn("name")`,
//! `call("name")`) and function-pointer constant in a body names the functions it may
//! reach, in any module in scope, whatever their arity — an over-approximation, so an
//! edit is never missed, while an edit to a helper that only other steps use leaves this
//! step's fingerprint alone (fixing the helper of a failed step must not block resume).

use crate::diagnostic::SourceMap;
use crate::hashing::FastMap;
use rhai::{ASTNode, Expr, ScriptFuncDef, Stmt};
use rhai::{FnPtr, ImmutableString, Module, Shared};
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// One script function a closure can call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callee {
    /// `name/arity`: what the fingerprint covers besides the text (the file is left out,
    /// since its display form depends on the working directory).
    pub name: Arc<str>,
    /// The file it is defined in, for messages.
    pub file: Arc<str>,
    /// `fn name(params) { body }` as written.
    pub source: Arc<str>,
}

#[derive(Clone)]
struct Def {
    file: Arc<str>,
    def: Shared<ScriptFuncDef>,
}

/// The definitions of one name, in the order searched: nearly always one, and a
/// 10,000-step script has 10,000 names (its closures), so no vector for one.
enum Defs {
    One(Def),
    Many(Vec<Def>),
}

impl Defs {
    fn push(&mut self, d: Def) {
        match self {
            Defs::One(first) => *self = Defs::Many(vec![first.clone(), d]),
            Defs::Many(v) => v.push(d),
        }
    }

    fn all(&self) -> &[Def] {
        match self {
            Defs::One(d) => std::slice::from_ref(d),
            Defs::Many(v) => v,
        }
    }
}

/// A runtime state (kept, so its address is not reused), its modules in scope and the
/// key of their index.
struct InScope {
    #[allow(deprecated)]
    env: Arc<rhai::NativeCallContextStore>,
    modules: Vec<Shared<Module>>,
    key: Vec<usize>,
}

/// Function-name index of one set of modules in scope, built once and shared by every
/// closure declared with that scope (a 10,000-step script has one). Names are the
/// modules' own strings, shared.
#[derive(Default)]
struct Index {
    by_name: FastMap<ImmutableString, Defs>,
    /// Module variables (`export const`), reached as `module::NAME`: name → (file, value).
    vars: HashMap<String, Vec<(Arc<str>, String)>>,
    text: HashMap<usize, Option<Arc<str>>>,
    /// What a function name reaches, once found: a closure declared in a loop is the
    /// same function for every step it declares.
    reach: super::recent::Recent<String, Arc<[Callee]>>,
}

/// Per-load cache of indexes, keyed by the identity of the modules in scope, and of
/// what each function body's walk found.
#[derive(Default)]
pub(crate) struct CalleeCache {
    indexes: FastMap<Vec<usize>, Index>,
    walks: Walks,
    /// What a closure that reaches no function gets: most closures, one list.
    none: Arc<[Callee]>,
    /// The last runtime state asked about: declarations share one while it does not
    /// change, and its modules in scope are found once.
    scope: Option<InScope>,
}

/// What one walk of a function body finds, for both of its readers: the names it may
/// call (the callees, here) and the property chains it reads off plain variables (the
/// `ctx` lint, [`super::strict::check_reads`]). Rhai shows a body's statements only to
/// the walk of an AST, which has to be built for the one function: once per body, not
/// once per reader, and once per load for a closure declared in a loop.
pub(crate) struct BodyWalk {
    names: Arc<[String]>,
    /// `var.field…` chains, in the order the walk met them.
    pub reads: Vec<super::strict::Read>,
}

/// Walks by function body (pointer identity; the entry keeps the body alive, so the
/// address is not reused while the load lasts). Walks that found nothing — most
/// closures' — share one.
struct Walks {
    by_body: FastMap<usize, (Shared<ScriptFuncDef>, Arc<BodyWalk>)>,
    nothing: Arc<BodyWalk>,
}

impl Default for Walks {
    fn default() -> Self {
        Walks {
            by_body: FastMap::default(),
            nothing: Arc::new(BodyWalk {
                names: Arc::new([]),
                reads: Vec::new(),
            }),
        }
    }
}

impl Walks {
    fn of(&mut self, def: &Shared<ScriptFuncDef>) -> Arc<BodyWalk> {
        let key = Shared::as_ptr(def) as usize;
        if let Some((_, walk)) = self.by_body.get(&key) {
            return walk.clone();
        }
        self.keep(def, walk_body(def).0)
    }

    fn keep(&mut self, def: &Shared<ScriptFuncDef>, walk: BodyWalk) -> Arc<BodyWalk> {
        let walk = if walk.names.is_empty() && walk.reads.is_empty() {
            self.nothing.clone()
        } else {
            Arc::new(walk)
        };
        let key = Shared::as_ptr(def) as usize;
        self.by_body.insert(key, (def.clone(), walk.clone()));
        walk
    }
}

// Every module in scope: function libraries, imports, and their imports in turn.
#[allow(deprecated)]
fn modules_in_scope(env: &rhai::NativeCallContextStore) -> Vec<Shared<Module>> {
    let mut out: Vec<Shared<Module>> = env.global.lib.iter().cloned().collect();
    out.extend(env.global.iter_imports_raw().map(|(_, m)| m.clone()));
    let mut seen = HashSet::new();
    let mut i = 0;
    out.retain(|m| seen.insert(Shared::as_ptr(m) as usize));
    while i < out.len() {
        let subs: Vec<Shared<Module>> = out[i].iter_sub_modules().map(|(_, m)| m.clone()).collect();
        for m in subs {
            if seen.insert(Shared::as_ptr(&m) as usize) {
                out.push(m);
            }
        }
        i += 1;
    }
    out
}

impl Index {
    /// The index of `modules` (a module without a name is `main_file`).
    fn of(modules: &[Shared<Module>], main_file: &Arc<str>) -> Index {
        let mut by_name: FastMap<ImmutableString, Defs> = FastMap::default();
        let mut vars: HashMap<String, Vec<(Arc<str>, String)>> = HashMap::new();
        for m in modules {
            let file: Arc<str> = m.id().map(Arc::from).unwrap_or_else(|| main_file.clone());
            for (name, value) in m.iter_var() {
                vars.entry(name.to_string())
                    .or_default()
                    .push((file.clone(), format!("{value:?}")));
            }
            for (_, _, name, _, def) in m.iter_script_fn_info() {
                let d = Def {
                    file: file.clone(),
                    def: def.clone(),
                };
                let name = if def.name.as_str() == name {
                    def.name.clone()
                } else {
                    name.into()
                };
                match by_name.entry(name) {
                    Entry::Occupied(mut e) => e.get_mut().push(d),
                    Entry::Vacant(e) => {
                        e.insert(Defs::One(d));
                    }
                }
            }
        }
        Index {
            by_name,
            vars,
            text: HashMap::new(),
            reach: Default::default(),
        }
    }
}

impl CalleeCache {
    /// The functions the closure `fp` (declared with runtime state `env`, in `main_file`)
    /// can reach, sorted by name. The closure itself is not among them. `sources` gives
    /// the text of the files loaded so far, asked only when a function's text is needed.
    #[allow(deprecated)]
    pub(crate) fn callees(
        &mut self,
        env: &Arc<rhai::NativeCallContextStore>,
        fp: &FnPtr,
        main_file: &Arc<str>,
        sources: &dyn Fn() -> SourceMap,
    ) -> Arc<[Callee]> {
        if !matches!(&self.scope, Some(last) if Arc::ptr_eq(&last.env, env)) {
            let modules = modules_in_scope(env);
            let key = modules.iter().map(|m| Shared::as_ptr(m) as usize).collect();
            self.scope = Some(InScope {
                env: env.clone(),
                modules,
                key,
            });
        }
        let Some(InScope { modules, key, .. }) = &self.scope else {
            return self.none.clone();
        };
        let index = match self.indexes.get_mut(key) {
            Some(index) => index,
            None => self
                .indexes
                .entry(key.clone())
                .or_insert_with(|| Index::of(modules, main_file)),
        };
        let name = fp.fn_name();
        // A closure whose body calls nothing reaches nothing: most closures, found
        // without the search's sets.
        if name.starts_with("anon$") {
            let defs = index.by_name.get(name).map_or(&[][..], Defs::all);
            if defs.iter().all(|d| self.walks.of(&d.def).names.is_empty()) {
                return self.none.clone();
            }
        }
        if let Some(found) = index.reach.get(|n| n == name) {
            return found;
        }
        let mut texts: Option<SourceMap> = None;
        let mut found: BTreeMap<(String, usize), Callee> = BTreeMap::new();
        let mut walked: HashSet<usize> = HashSet::new();
        let mut todo: Vec<String> = vec![fp.fn_name().to_string()];
        let mut queued: HashSet<String> = todo.iter().cloned().collect();
        while let Some(name) = todo.pop() {
            if let Some(var) = name.strip_prefix(VAR) {
                for (file, value) in index.vars.get(var).into_iter().flatten() {
                    found.insert(
                        (name.clone(), 0),
                        Callee {
                            name: format!("const {var}").into(),
                            file: file.clone(),
                            source: value.as_str().into(),
                        },
                    );
                }
                continue;
            }
            let Some(defs) = index.by_name.get(name.as_str()) else {
                continue; // a native function or primitive
            };
            for d in defs.all() {
                let ptr = Shared::as_ptr(&d.def) as usize;
                if !walked.insert(ptr) {
                    continue;
                }
                let walk = self.walks.of(&d.def);
                for n in walk.names.iter() {
                    if queued.insert(n.clone()) {
                        todo.push(n.clone());
                    }
                }
                // Anonymous functions (closures) are part of the text that encloses them.
                if name.starts_with("anon$") {
                    continue;
                }
                let text = index
                    .text
                    .entry(ptr)
                    .or_insert_with(|| {
                        let sources = texts.get_or_insert_with(sources);
                        function_text(sources, &d.file, &d.def).map(Arc::from)
                    })
                    .clone();
                let arity = d.def.params.len();
                found.insert(
                    (name.clone(), arity),
                    Callee {
                        name: format!("{name}/{arity}").into(),
                        file: d.file.clone(),
                        source: text.unwrap_or_else(|| Arc::from("")),
                    },
                );
            }
        }
        let found: Arc<[Callee]> = if found.is_empty() {
            self.none.clone()
        } else {
            found.into_values().collect()
        };
        index.reach.put(fp.fn_name().to_string(), found.clone());
        found
    }

    /// The walk of `def`'s body, made once per load.
    pub(crate) fn walk(&mut self, def: &Shared<ScriptFuncDef>) -> Arc<BodyWalk> {
        self.walks.of(def)
    }

    /// Whether Rhai's optimiser would leave what the walk of `def`'s (parsed) body finds
    /// as it is ([`unchanged_by_optimiser`]); if so the walk is kept for the load, and
    /// the parsed body is the one to run.
    pub(crate) fn walk_if_unchanged_by_optimiser(&mut self, def: &Shared<ScriptFuncDef>) -> bool {
        let (walk, unchanged) = walk_body(def);
        if unchanged {
            self.walks.keep(def, walk);
        }
        unchanged
    }
}

// Marks a module variable among the names a body uses.
const VAR: &str = "\u{0}var:";

// One walk of `def`'s body, and whether the optimiser would leave what it finds as it is.
// The names are every name it may call: calls, method calls, string literals, function
// pointer constants; and module variables it reads (`m::NAME`), marked with [`VAR`].
fn walk_body(def: &Shared<ScriptFuncDef>) -> (BodyWalk, bool) {
    let mut one = Module::new();
    one.set_script_fn(def.clone());
    let mut names = Vec::new();
    let mut reads = Vec::new();
    let mut unchanged = true;
    rhai::AST::new_from_module(one).walk(&mut |path: &[ASTNode]| {
        unchanged = unchanged && unchanged_by_optimiser(path);
        match path.last() {
            Some(ASTNode::Expr(Expr::FnCall(x, _) | Expr::MethodCall(x, _)))
            | Some(ASTNode::Stmt(Stmt::FnCall(x, _))) => names.push(x.name.to_string()),
            Some(ASTNode::Expr(Expr::StringConstant(s, _))) => names.push(s.to_string()),
            Some(ASTNode::Expr(Expr::Variable(x, ..))) if !x.2.is_empty() => {
                names.push(format!("{VAR}{}", x.1));
            }
            Some(ASTNode::Expr(Expr::DynamicConstant(v, _))) => {
                if let Some(fp) = v.read_lock::<FnPtr>() {
                    names.push(fp.fn_name().to_string());
                }
            }
            Some(ASTNode::Expr(e @ Expr::Dot(..))) => reads.extend(super::strict::read_of(e)),
            _ => {}
        }
        true
    });
    let walk = BodyWalk {
        names: names.into(),
        reads,
    };
    (walk, unchanged)
}

/// Keywords the optimiser folds or rewrites when their arguments are constants
/// (`Fn("f")` becomes a function pointer, `type_of(1)` a string), and the others that
/// act on functions or the scope: a call to any of them is left to the optimiser.
const REWRITTEN_CALLS: &[&str] = &[
    "Fn",
    "call",
    "curry",
    "type_of",
    "is_shared",
    "eval",
    "print",
    "debug",
    "is_def_fn",
    "is_def_var",
];

/// A constant the walk finds nothing in: the optimiser may drop it, and nothing goes.
fn names_nothing(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Unit(..)
            | Expr::BoolConstant(..)
            | Expr::IntegerConstant(..)
            | Expr::FloatConstant(..)
            | Expr::CharConstant(..)
    )
}

/// Whether Rhai's optimiser (at `OptimizationLevel::Simple`, the loading engine's) leaves
/// the node at the end of `path` — a node of a function body's walk, `path[0]` one of the
/// body's statements — and everything the walk finds in it as they are. Deliberately
/// narrow, so that it can be checked against the optimiser's source (rhai
/// `src/optimizer.rs`), and any node it does not know is "no" (the body is then
/// optimised as before):
/// - a statement is a function call, or an expression that is a call, a property chain,
///   or a constant that is not a string: the optimiser removes a statement only when it
///   is pure (a constant) or a bare variable, and a string statement would take its name
///   with it; no `let`/`const` (constant propagation), no `if`, loops, `switch`,
///   `return` or `throw` (dead code), no blocks;
/// - within it: constants, variables (no constant can be propagated into them: the body
///   declares none, the loading engine's global modules hold none, and a function sees no
///   other scope), calls and method calls that are neither operators (folded when their
///   arguments are constants) nor [`REWRITTEN_CALLS`], and property chains off a
///   variable (folded only off a constant map). No literal arrays or maps (the optimiser
///   turns constant ones into a value the walk does not look into), interpolated
///   strings, `&&`/`||`/`??`, indexing, closures or `this`.
///
/// Tested against the optimiser on every function of the shipped runbooks, the examples
/// and a set of bodies it does rewrite (`tests` below): where this says "unchanged", the
/// optimised body's walk finds exactly what the parsed body's does.
fn unchanged_by_optimiser(path: &[ASTNode]) -> bool {
    let Some(node) = path.last() else {
        return true;
    };
    let plain_call =
        |x: &rhai::FnCallExpr| !x.is_operator_call() && !REWRITTEN_CALLS.contains(&x.name.as_str());
    match node {
        ASTNode::Stmt(stmt) => {
            path.len() == 1
                && match stmt {
                    Stmt::Noop(..) => true,
                    Stmt::FnCall(x, _) => plain_call(x),
                    Stmt::Expr(e) => {
                        matches!(**e, Expr::FnCall(..) | Expr::Dot(..)) || names_nothing(e)
                    }
                    _ => false,
                }
        }
        ASTNode::Expr(e) => {
            let parent = path.len().checked_sub(2).map(|i| &path[i]);
            let in_chain = matches!(parent, Some(ASTNode::Expr(Expr::Dot(..))));
            match e {
                _ if names_nothing(e) => true,
                Expr::StringConstant(..) | Expr::Variable(..) => true,
                Expr::FnCall(x, _) => plain_call(x),
                Expr::MethodCall(x, _) => in_chain && plain_call(x),
                Expr::Property(..) => in_chain,
                // `var.rest` starts a chain; within one, each link starts with a name.
                Expr::Dot(x, ..) => {
                    if in_chain {
                        matches!(x.lhs, Expr::Property(..) | Expr::MethodCall(..))
                    } else {
                        matches!(x.lhs, Expr::Variable(..))
                    }
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// `fn name(params) body` as written in `file`, from the body's positions.
pub(crate) fn function_text(
    sources: &SourceMap,
    file: &str,
    def: &ScriptFuncDef,
) -> Option<String> {
    let s = def.body.start_position();
    let e = def.body.end_position();
    let start = (s.line()?, s.position().unwrap_or(1));
    let end = match e.line() {
        Some(l) => (l, e.position().unwrap_or(1)),
        None => (start.0, sources.line(file, start.0)?.chars().count()),
    };
    let body = sources.slice(file, start, end)?;
    let params: Vec<&str> = def.params.iter().map(|p| p.as_str()).collect();
    Some(format!("fn {}({}) {body}", def.name, params.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhai::{OptimizationLevel, Scope, AST};

    /// One function as [`classify`] finds it.
    struct Classified {
        name: String,
        /// What [`unchanged_by_optimiser`] says of its body.
        said_unchanged: bool,
        /// Whether the optimised body's walk finds what the parsed body's does.
        walk_same: bool,
    }

    /// Each function of `script` (parsed as the loader parses it), and where the rule
    /// says the optimiser leaves it unchanged, the check that the optimised body's walk
    /// is the parsed body's.
    fn classify(script: &str) -> Result<Vec<Classified>, String> {
        let mut engine = crate::dsl::engine::new_engine();
        let level = engine.optimization_level();
        assert_eq!(level, OptimizationLevel::Simple, "the level loading uses");
        engine.set_optimization_level(OptimizationLevel::None);
        let ast = engine.compile(script).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for (.., def) in ast.shared_lib().iter_script_fn_info() {
            let (parsed, unchanged) = walk_body(def);
            let mut one = Module::new();
            one.set_script_fn(def.clone());
            let optimised = engine.optimize_ast(&Scope::new(), AST::new_from_module(one), level);
            let (.., opt) = optimised
                .shared_lib()
                .iter_script_fn_info()
                .next()
                .expect("the optimiser gives the function back");
            let (walked, _) = walk_body(opt);
            let same = parsed.names == walked.names && parsed.reads == walked.reads;
            if unchanged {
                assert!(
                    same,
                    "said unchanged, but the optimiser changed what the walk finds in {}:\n{:?} {:?}\nagainst {:?} {:?}",
                    def.name, parsed.names, parsed.reads, walked.names, walked.reads
                );
            }
            out.push(Classified {
                name: def.name.to_string(),
                said_unchanged: unchanged,
                walk_same: same,
            });
        }
        Ok(out)
    }

    /// For `fn f(ctx) BODY`: (said unchanged, walk the same).
    fn one(body: &str) -> (bool, bool) {
        let got = classify(&format!("fn probe() {{ 1 }}\nfn f(ctx) {body}")).expect("compiles");
        let f = got.into_iter().find(|c| c.name == "f").expect("f");
        (f.said_unchanged, f.walk_same)
    }

    #[test]
    fn bodies_the_optimiser_leaves_alone_are_told_apart_from_those_it_rewrites() {
        for body in [
            "{ () }",
            "{ }",
            "{ sh(\"true\") }",
            "{ exec(\"test\", ctx.params.server) }",
            "{ log(\"a\"); ctx.outputs.backup }",
            "{ q::f(1, \"probe\", 2.5, 'c', true) }",
            "{ ctx.params.sevrer }",
            "{ ctx.inventory.servers.len() }",
            "{ wait_for(ctx.params.server, \"svc\"); probe() }",
        ] {
            assert_eq!(one(body), (true, true), "{body}");
        }
        // Each of these the optimiser rewrites in a way the walk sees.
        for body in [
            "{ \"probe\"; sh(\"x\") }",
            "{ if false { probe() } }",
            "{ call(\"pro\" + \"be\") }",
            "{ q::X; 1 }",
            "{ const N = \"probe\"; call(N) }",
            "{ Fn(\"probe\") }",
            "{ sh(type_of(1)) }",
            "{ exec(\"a\", [\"x\", \"probe\"]) }",
            "{ sh(#{ a: \"x\", b: \"probe\" }.a) }",
            "{ return 1; probe() }",
            "{ sh(`${\"pro\"}be`) }",
            "{ false && probe() }",
        ] {
            assert_eq!(one(body), (false, false), "{body}");
        }
    }

    /// Every `.rhai` file under `dir`, recursively.
    fn scripts(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                scripts(&path, out);
            } else if path.extension().is_some_and(|e| e == "rhai") {
                out.push(path);
            }
        }
    }

    #[test]
    fn every_function_of_the_shipped_runbooks_and_examples_said_unchanged_is() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["runbooks", "stdlib", "examples", "tests/cases"] {
            scripts(&root.join(dir), &mut files);
        }
        assert!(files.len() > 20, "{files:?}");
        let (mut functions, mut unchanged) = (0, 0);
        for file in &files {
            let text = std::fs::read_to_string(file).expect("read");
            // Scripts that are meant not to parse are someone else's test.
            let Ok(got) = classify(&text) else { continue };
            functions += got.len();
            unchanged += got.iter().filter(|c| c.said_unchanged).count();
        }
        // Not a vacuous check: both kinds are there.
        assert!(
            unchanged > 20 && unchanged < functions,
            "{unchanged} of {functions}"
        );
    }
}
