//! Loading a runbook: evaluate the Rhai script once, collecting what `runbook()`,
//! `step()` and `gate()` declare. Loading has no side effects: the primitives that
//! act on the world refuse to run outside a step (see [`super::step_env`]).

use super::declaration::{Callable, RunbookDecl, StepDecl, StepKind};
use super::options::{self, KeyPositions, MakeCallable};
use super::positions::KeyIndex;
use super::resolver::{display_path, Resolver};
use crate::diagnostic::{did_you_mean, Diagnostic, SourceMap, SrcPos};
use crate::shipped;
use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext, Position, Scope};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Thrown inside the script to stop evaluation after a fatal declaration error that was
/// already recorded as a diagnostic.
const ABORT: &str = "\u{0}waymark-abort";

/// Where a runbook comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunbookRef {
    /// A file on disk.
    Path(PathBuf),
    /// A runbook shipped inside the binary (`itms-7.6/onbox`).
    Shipped(String),
    /// The sources a run's journal recorded: `main` among `files` (file → text). Imports
    /// resolve among `files` only, so the definitions a run started with can be rebuilt
    /// after the files (or the binary's stdlib) changed, to show what changed.
    Recorded {
        /// The runbook's own file, a key of `files`.
        main: String,
        /// Every file the run's load read.
        files: Arc<BTreeMap<String, String>>,
    },
}

impl RunbookRef {
    /// What a run's journal records so `resume` finds the same runbook from any working
    /// directory: a file's absolute path, or the shipped name.
    pub fn journal_source(&self) -> String {
        match self {
            RunbookRef::Path(p) => std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.clone())
                .display()
                .to_string(),
            RunbookRef::Shipped(name) => name.clone(),
            RunbookRef::Recorded { main, .. } => main.clone(),
        }
    }

    /// Interpret a RUNBOOK argument: an existing file wins, then a shipped name.
    pub fn from_arg(arg: &str) -> Result<Self, Diagnostic> {
        let p = Path::new(arg);
        if p.is_file() {
            return Ok(RunbookRef::Path(p.to_path_buf()));
        }
        if shipped::runbook(arg).is_some() {
            return Ok(RunbookRef::Shipped(
                arg.strip_suffix(".rhai").unwrap_or(arg).to_string(),
            ));
        }
        let names = shipped::runbook_names();
        let mut d = Diagnostic::new(format!(
            "no runbook file `{arg}` and no shipped runbook of that name"
        ));
        d.help = Some(match did_you_mean(arg, names.iter().copied()) {
            Some(n) => {
                format!("did you mean the shipped runbook `{n}`? (`waymark list` shows them all)")
            }
            None if p.exists() => format!("`{arg}` is not a file"),
            None => "give the path of a .rhai file, or a name from `waymark list`".into(),
        });
        Err(d)
    }

    /// How the runbook is named in messages and the journal.
    pub fn display(&self) -> String {
        match self {
            RunbookRef::Path(p) => p.display().to_string(),
            RunbookRef::Shipped(n) => n.clone(),
            RunbookRef::Recorded { main, .. } => format!("{main} (as recorded)"),
        }
    }
}

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

impl LoadError {
    /// Render for the terminal.
    pub fn render(&self) -> String {
        crate::diagnostic::render(&self.diagnostics, &self.sources)
    }
}

/// Where a function body is: (file, start (line, col), end (line, col)).
type BodySpan = (Arc<str>, (usize, usize), (usize, usize));

#[derive(Default)]
struct State {
    loading: bool,
    main_file: Arc<str>,
    runbook: Option<RunbookDecl>,
    steps: Vec<StepDecl>,
    diags: Vec<Diagnostic>,
    cli_params: Vec<(String, String)>,
    params: BTreeMap<String, String>,
    // Closure bodies per function library, found once per library.
    spans: HashMap<usize, HashMap<String, BodySpan>>,
    // Script functions by name per function library, found once per library: a
    // 10,000-step script has 10,000 closures in one library, and searching it for each
    // closure was quadratic.
    defs: HashMap<usize, HashMap<String, rhai::Shared<rhai::ScriptFuncDef>>>,
    callees: super::callees::CalleeCache,
}

struct Shared {
    state: Mutex<State>,
    sources: Arc<Mutex<SourceMap>>,
    keys: KeyIndex,
    params_dyn: Dynamic,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the sources loaded so far (the map holds `Arc`s): a copy, because the
    /// closures a declaration makes lock the sources again while it is parsed.
    fn sources_now(&self) -> SourceMap {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
    let (file, text, base): (Arc<str>, String, Option<PathBuf>) = match &req.runbook {
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
            (display_path(&canon).into(), text, base)
        }
        RunbookRef::Shipped(n) => {
            let text = shipped::runbook(n).unwrap_or_default().to_string();
            (format!("runbooks/{n}.rhai").into(), text, None)
        }
        RunbookRef::Recorded { main, files } => {
            let text = files.get(main).cloned().unwrap_or_default();
            (main.as_str().into(), text, None)
        }
    };
    sources
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(file.clone(), text.as_str().into());

    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            loading: true,
            main_file: file.clone(),
            cli_params: req.params.clone(),
            ..Default::default()
        }),
        sources: sources.clone(),
        keys: KeyIndex::default(),
        params_dyn: Dynamic::from_map(Map::new()).into_shared(),
    });

    let mut engine = super::engine::new_engine();
    let mut resolver = Resolver::new(base, sources.clone()).with_root(&file);
    if let RunbookRef::Recorded { main, files } = &req.runbook {
        resolver = resolver.recorded(main, files.clone());
    }
    engine.set_module_resolver(resolver);
    register_declarations(&mut engine, &shared);
    // Parsed once, unoptimised: the option keys' positions are read from this tree (an
    // optimised map of constants loses them), then its functions are optimised as
    // `compile` would (see below).
    let level = engine.optimization_level();
    engine.set_optimization_level(rhai::OptimizationLevel::None);
    let compiled = engine.compile(&text);
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
    let eval_err = match result {
        Err(d) => Some(d),
        Ok(ast) => {
            shared.keys.add_unoptimised(file.clone(), &ast);
            // Only the functions are optimised — closures' bodies and script functions,
            // what steps run later and what fingerprints and the `ctx` lint read, exactly
            // as before. The top level runs once, here: optimising its 10,000 `step()`
            // calls cost more than it saved (a tenth of a load's instructions).
            let mut top = ast;
            let mut ast = engine.optimize_ast(&Scope::new(), top.clone_functions_only(), level);
            top.clear_functions();
            ast.combine(top);
            ast.set_source(file.as_ref());
            super::engine::LoadGuard::run(|| engine.run_ast_with_scope(&mut scope, &ast))
                .err()
                .and_then(|e| eval_diagnostic(&file, &e))
        }
    };

    let mut st = shared.state();
    st.loading = false;
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
    })
}

fn to_pos(file: &Arc<str>, pos: Position) -> Option<SrcPos> {
    Some(SrcPos {
        file: file.clone(),
        line: pos.line()?,
        col: pos.position().unwrap_or(1),
    })
}

/// Turn a script error into a diagnostic at its innermost position (None for an abort).
pub(crate) fn eval_diagnostic(file: &Arc<str>, err: &EvalAltResult) -> Option<Diagnostic> {
    let mut file = file.clone();
    let mut e = err;
    let mut outer: Vec<(Arc<str>, Position, String)> = Vec::new();
    loop {
        match e {
            EvalAltResult::ErrorInFunctionCall(name, src, inner, pos) => {
                outer.push((file.clone(), *pos, format!("in call to `{name}`")));
                if !src.is_empty() {
                    file = src.as_str().into();
                }
                e = inner;
            }
            EvalAltResult::ErrorInModule(name, inner, pos) => {
                outer.push((file.clone(), *pos, format!("in module `{name}`")));
                if !name.is_empty() {
                    file = name.as_str().into();
                }
                e = inner;
            }
            _ => break,
        }
    }
    let (msg, help) = match e {
        EvalAltResult::ErrorRuntime(v, _) => {
            // A thrown estate error is a map; uncaught, it reads as its message.
            let s = match super::estate_ops::thrown_message(v) {
                Some(m) => m,
                None => match v.read_lock::<Map>().and_then(|m| m.get("message").cloned()) {
                    Some(m) if super::estate_ops::thrown_kind(v).is_some() => m.to_string(),
                    _ => v.to_string(),
                },
            };
            if s == ABORT {
                return None;
            }
            (s, None)
        }
        EvalAltResult::ErrorTerminated(v, _) => (
            v.to_string(),
            Some("top-level code only declares steps; long work belongs inside a step's `run` closure".to_string()),
        ),
        EvalAltResult::ErrorTooManyOperations(_) => (
            "the script ran too many operations while loading".to_string(),
            Some("is there an endless loop at top level?".to_string()),
        ),
        EvalAltResult::ErrorDataTooLarge(what, _) => (
            format!("{what} grew beyond the sandbox limit while loading"),
            Some("runbooks may not build huge values at load time".to_string()),
        ),
        EvalAltResult::ErrorStackOverflow(_) => (
            "call stack too deep while loading".to_string(),
            Some("is a function calling itself without end?".to_string()),
        ),
        other => (other.to_string().split(" (line ").next().unwrap_or_default().to_string(), None),
    };
    let mut d = Diagnostic::at(to_pos(&file, e.position()), msg);
    d.help = help;
    for (f, p, m) in outer.into_iter().rev() {
        d = d.also(to_pos(&f, p), m);
    }
    Some(d)
}

fn abort() -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(ABORT.into(), Position::NONE))
}

fn call_pos(ctx: &NativeCallContext, main: &Arc<str>) -> Option<SrcPos> {
    let file: Arc<str> = ctx
        .call_source()
        .map(Arc::from)
        .unwrap_or_else(|| main.clone());
    to_pos(&file, ctx.call_position())
}

/// Option-key positions of the declarations' calls, from the AST of their files.
struct Keys<'a> {
    sources: &'a SourceMap,
    index: &'a KeyIndex,
}

impl KeyPositions for Keys<'_> {
    fn key_pos(&self, call: &Option<SrcPos>, path: &[&str]) -> Option<SrcPos> {
        self.index.key_pos(self.sources, call.as_ref()?, path)
    }

    fn arg_pos(
        &self,
        call: &Option<SrcPos>,
        index: usize,
        element: Option<&str>,
    ) -> Option<SrcPos> {
        self.index
            .arg_pos(self.sources, call.as_ref()?, index, element)
    }
}

struct Maker<'a, 'b> {
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
            let sources = self.shared.sources_now();
            let mut st = self.shared.state();
            let main = st.main_file.clone();
            st.callees.callees(&env, &fp, &main, &sources).into()
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

impl Maker<'_, '_> {
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
            let declared: Vec<String> = st
                .runbook
                .as_ref()
                .map(|r| r.params.keys().cloned().collect())
                .unwrap_or_default();
            let file: Arc<str> = m
                .id()
                .map(Arc::from)
                .unwrap_or_else(|| st.main_file.clone());
            for (msg, pos) in super::strict::check_closure(ctx, &def, &declared) {
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
                return sources.slice(&file, s, end);
            }
        }
        None
    }
}

/// A deep copy of a value with no sharing left (captured variables become plain values).
pub(crate) fn detach(v: &Dynamic) -> Dynamic {
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

pub(crate) use super::declaration::valid_step_name;

fn declare(
    ctx: NativeCallContext,
    shared: &Shared,
    kind: StepKind,
    name: Dynamic,
    opts: Dynamic,
) -> Result<String, Box<EvalAltResult>> {
    let fname = kind.as_str();
    let main = shared.state().main_file.clone();
    let pos = call_pos(&ctx, &main);
    {
        let mut st = shared.state();
        if !st.loading {
            return Err(Box::new(EvalAltResult::ErrorRuntime(
                format!("{fname}() can only be called while the runbook loads, not inside a step")
                    .into(),
                ctx.call_position(),
            )));
        }
        if st.runbook.is_none() {
            let mut d = Diagnostic::at(pos, format!("{fname}() called before runbook(...)"));
            d.help = Some("call `runbook(#{ name: ... })` once at the top of the script, before any step or gate".into());
            st.diags.push(d);
            return Err(abort());
        }
    }
    let name_str = if name.is_string() {
        name.into_string().unwrap_or_default()
    } else {
        let t = name.type_name();
        shared.state().diags.push(Diagnostic::at(
            pos,
            format!("the name of a {fname} must be a string, not {t}"),
        ));
        return Ok(String::new());
    };
    let mut diags = Vec::new();
    if !valid_step_name(&name_str) {
        diags.push(
            Diagnostic::at(pos.clone(), format!("invalid {fname} name `{name_str}`"))
                .help("names are non-empty and use letters, digits and `-_.:/@`"),
        );
    }
    let opts_map = if opts.is_map() {
        opts.cast::<Map>()
    } else if opts.is_unit() {
        Map::new()
    } else {
        let t = opts.type_name();
        diags.push(Diagnostic::at(
            pos.clone(),
            format!("the options of {fname} `{name_str}` must be a map `#{{ ... }}`, not {t}"),
        ));
        Map::new()
    };
    let sources = shared.sources_now();
    let keys = Keys {
        sources: &sources,
        index: &shared.keys,
    };
    let mut maker = Maker {
        ctx: &ctx,
        shared,
        env: None,
    };
    let decl = options::parse_step(
        StepDecl::new(name_str.clone(), kind, pos),
        &opts_map,
        &keys,
        &mut maker,
        &mut diags,
    );
    let mut st = shared.state();
    st.diags.extend(diags);
    st.steps.push(decl);
    Ok(name_str)
}

/// `rollout(name, items, opts)`: validate, expand into steps (see [`super::rollout`])
/// and return the name of its last barrier, for later steps' `after`.
fn declare_rollout(
    ctx: NativeCallContext,
    shared: &Shared,
    name: Dynamic,
    items: Dynamic,
    opts: Dynamic,
) -> Result<String, Box<EvalAltResult>> {
    let main = shared.state().main_file.clone();
    let pos = call_pos(&ctx, &main);
    {
        let mut st = shared.state();
        if !st.loading {
            return Err(Box::new(EvalAltResult::ErrorRuntime(
                "rollout() can only be called while the runbook loads, not inside a step".into(),
                ctx.call_position(),
            )));
        }
        if st.runbook.is_none() {
            let d = Diagnostic::at(pos, "rollout() called before runbook(...)")
                .help("call `runbook(#{ name: ... })` once at the top of the script, before any step, gate or rollout");
            st.diags.push(d);
            return Err(abort());
        }
    }
    let Some(name) = name.clone().into_string().ok() else {
        let t = name.type_name();
        shared.state().diags.push(Diagnostic::at(
            pos,
            format!("the name of a rollout must be a string, not {t}"),
        ));
        return Ok(String::new());
    };
    let Some(opts) = opts.clone().try_cast::<Map>() else {
        let t = opts.type_name();
        shared.state().diags.push(
            Diagnostic::at(
                pos,
                format!("the options of rollout `{name}` must be a map `#{{ ... }}`, not {t}"),
            )
            .help("write `rollout(NAME, ITEMS, #{ run: |ctx, item| { … } })`"),
        );
        return Ok(String::new());
    };
    let sources = shared.sources_now();
    let keys = Keys {
        sources: &sources,
        index: &shared.keys,
    };
    let mut maker = Maker {
        ctx: &ctx,
        shared,
        env: None,
    };
    let mut diags = Vec::new();
    let site = super::rollout::Site {
        call: pos,
        keys: &keys,
        mk: &mut maker,
    };
    let expanded = super::rollout::expand(&name, &items, &opts, site, &mut diags);
    let mut st = shared.state();
    st.diags.extend(diags);
    let Some(e) = expanded else {
        return Ok(format!("{name}:batch-1"));
    };
    if let (Some((group, n)), Some(rb)) = (e.limit, st.runbook.as_mut()) {
        rb.limits.insert(group, n);
    }
    st.steps.extend(e.steps);
    Ok(e.last)
}

fn declare_runbook(
    ctx: NativeCallContext,
    shared: &Shared,
    opts: Dynamic,
) -> Result<(), Box<EvalAltResult>> {
    let main = shared.state().main_file.clone();
    let pos = call_pos(&ctx, &main);
    let sources = shared.sources_now();
    let mut st = shared.state();
    if !st.loading {
        return Err(Box::new(EvalAltResult::ErrorRuntime(
            "runbook() can only be called while the runbook loads".into(),
            ctx.call_position(),
        )));
    }
    if let Some(first) = &st.runbook {
        let d = Diagnostic::at(pos, "runbook() called a second time")
            .also(first.pos.clone(), "first called here")
            .help("a script calls runbook(...) exactly once");
        st.diags.push(d);
        return Err(abort());
    }
    let Some(map) = opts.try_cast::<Map>() else {
        st.diags.push(
            Diagnostic::at(pos, "runbook() takes a map")
                .help("write `runbook(#{ name: \"...\", description: \"...\" });`"),
        );
        return Err(abort());
    };
    let mut diags = Vec::new();
    let keys = Keys {
        sources: &sources,
        index: &shared.keys,
    };
    let decl = options::parse_runbook(&map, pos.clone(), &keys, &mut diags);

    // Merge --param over defaults; every problem with parameters stops the load,
    // since the rest of the script may depend on them.
    let mut values = BTreeMap::new();
    for (k, v) in &st.cli_params {
        if !decl.params.contains_key(k) {
            let mut d = Diagnostic::at(
                keys.key_pos(&pos, &["params"]).or(pos.clone()),
                format!("--param `{k}` is not a parameter of this runbook"),
            );
            d.help = Some(
                match did_you_mean(k, decl.params.keys().map(String::as_str)) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None if decl.params.is_empty() => "this runbook declares no parameters".into(),
                    None => format!(
                        "declared parameters: {}",
                        decl.params.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                },
            );
            diags.push(d);
        } else {
            values.insert(k.clone(), v.clone());
        }
    }
    for (name, p) in &decl.params {
        if values.contains_key(name) {
            continue;
        }
        match (&p.default_value, p.required) {
            (Some(d), _) => {
                values.insert(name.clone(), d.clone());
            }
            (None, true) => {
                let help = if p.help.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", p.help)
                };
                diags.push(
                    Diagnostic::at(
                        keys.key_pos(&pos, &["params", name]).or(pos.clone()),
                        format!("missing required parameter `{name}`{help}"),
                    )
                    .help(format!("pass `--param {name}=VALUE`")),
                );
            }
            (None, false) => {}
        }
    }
    let fatal = !diags.is_empty();
    st.diags.extend(diags);
    let mut params_dyn = shared.params_dyn.clone();
    if let Some(mut w) = params_dyn.write_lock::<Map>() {
        for (k, v) in &values {
            w.insert(k.as_str().into(), v.clone().into());
        }
    }
    st.params = values;
    st.runbook = Some(decl);
    if fatal {
        return Err(abort());
    }
    Ok(())
}

/// An engine with everything a runbook can call — the primitives and `runbook`, `step`,
/// `gate` — for describing the language (`waymark defs`), never for loading.
pub(crate) fn describing_engine() -> Engine {
    let mut engine = super::engine::new_engine();
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        sources: Arc::new(Mutex::new(SourceMap::default())),
        keys: KeyIndex::default(),
        params_dyn: Dynamic::from_map(Map::new()).into_shared(),
    });
    register_declarations(&mut engine, &shared);
    engine
}

fn register_declarations(engine: &mut Engine, shared: &Arc<Shared>) {
    let s = shared.clone();
    engine.register_fn("runbook", move |ctx: NativeCallContext, opts: Dynamic| {
        declare_runbook(ctx, &s, opts)
    });
    let s = shared.clone();
    engine.register_fn(
        "rollout",
        move |ctx: NativeCallContext, name: Dynamic, items: Dynamic, opts: Dynamic| {
            declare_rollout(ctx, &s, name, items, opts)
        },
    );
    for kind in [StepKind::Step, StepKind::Gate] {
        let s = shared.clone();
        engine.register_fn(
            kind.as_str(),
            move |ctx: NativeCallContext, name: Dynamic, opts: Dynamic| {
                declare(ctx, &s, kind, name, opts)
            },
        );
        let s = shared.clone();
        engine.register_fn(
            kind.as_str(),
            move |ctx: NativeCallContext, name: Dynamic| {
                declare(ctx, &s, kind, name, Dynamic::UNIT)
            },
        );
    }
}
