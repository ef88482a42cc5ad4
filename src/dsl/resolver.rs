//! `import` resolution: the stdlib embedded in the binary first, then files under the
//! runbook's own directory — never anything outside it.

use crate::diagnostic::SourceMap;
use crate::shipped;
use rhai::{Engine, EvalAltResult, Module, Position, Scope, Shared};

type SharedModule = Shared<Module>;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Resolves `import "name"` for one load.
pub(crate) struct Resolver {
    /// Canonical directory of the runbook; `None` for shipped runbooks (stdlib only).
    base: Option<PathBuf>,
    sources: Arc<Mutex<SourceMap>>,
    cache: Mutex<HashMap<String, SharedModule>>,
    /// The runbook's own file, as diagnostics name it: importing it is a cycle too.
    root: Option<String>,
    /// Per thread, the modules being evaluated, outermost first. A module found here
    /// again is an import cycle; without this check `a` → `b` → `a` recursed until the
    /// stack overflowed and the process aborted.
    in_progress: Mutex<HashMap<std::thread::ThreadId, Vec<String>>>,
    /// Resolve among a run's recorded sources instead: (directory of the recorded
    /// runbook, file → text).
    recorded: Option<(PathBuf, Arc<BTreeMap<String, String>>)>,
}

impl Resolver {
    /// A resolver for a runbook in `base` (or a shipped one when `None`).
    pub(crate) fn new(base: Option<PathBuf>, sources: Arc<Mutex<SourceMap>>) -> Self {
        Self {
            base,
            sources,
            cache: Mutex::new(HashMap::new()),
            root: None,
            in_progress: Mutex::new(HashMap::new()),
            recorded: None,
        }
    }

    /// Name the runbook's own file (as diagnostics show it), so importing it is a cycle.
    pub(crate) fn with_root(mut self, file: &str) -> Self {
        self.root = Some(file.to_string());
        self
    }

    /// Note that `name` is being evaluated on this thread, or say which cycle it closes.
    fn enter(&self, name: &str, pos: Position) -> Result<(), Box<EvalAltResult>> {
        let mut map = self.in_progress.lock().unwrap_or_else(|e| e.into_inner());
        let stack = map.entry(std::thread::current().id()).or_default();
        let start = stack.iter().position(|m| m == name);
        if start.is_some() || self.root.as_deref() == Some(name) {
            let mut chain: Vec<&str> = Vec::new();
            match start {
                Some(i) => chain.extend(stack[i..].iter().map(String::as_str)),
                None => {
                    chain.push(name);
                    chain.extend(stack.iter().map(String::as_str));
                }
            }
            chain.push(name);
            return Err(err(
                format!(
                    "import cycle: {} (a module cannot import itself, directly or through others)",
                    chain.join(" → ")
                ),
                pos,
            ));
        }
        stack.push(name.to_string());
        Ok(())
    }

    fn leave(&self) {
        let mut map = self.in_progress.lock().unwrap_or_else(|e| e.into_inner());
        let id = std::thread::current().id();
        if let Some(stack) = map.get_mut(&id) {
            stack.pop();
            if stack.is_empty() {
                map.remove(&id);
            }
        }
    }

    /// Resolve imports among `files`, recorded with `main` as the runbook, and nowhere else.
    pub(crate) fn recorded(mut self, main: &str, files: Arc<BTreeMap<String, String>>) -> Self {
        let dir = Path::new(main)
            .parent()
            .unwrap_or(Path::new(""))
            .to_path_buf();
        self.recorded = Some((dir, files));
        self
    }

    // The recorded file an import names: the stdlib name, else the path beside the
    // recorded runbook (compared lexically: the files may no longer exist).
    fn locate_recorded(
        dir: &Path,
        files: &BTreeMap<String, String>,
        path: &str,
        pos: Position,
    ) -> Result<(String, String), Box<EvalAltResult>> {
        let name = path.strip_suffix(".rhai").unwrap_or(path);
        let mut rel = PathBuf::from(path);
        if rel.extension().is_none() {
            rel.set_extension("rhai");
        }
        let mut beside = PathBuf::new();
        for c in dir.join(&rel).components() {
            match c {
                std::path::Component::ParentDir => {
                    beside.pop();
                }
                std::path::Component::CurDir => {}
                c => beside.push(c),
            }
        }
        [format!("stdlib/{name}.rhai"), beside.display().to_string()]
            .into_iter()
            .find_map(|k| files.get(&k).map(|t| (k, t.clone())))
            .ok_or_else(|| {
                err(
                    format!("the run's recorded sources have no module `{path}`"),
                    pos,
                )
            })
    }

    fn locate(&self, path: &str, pos: Position) -> Result<(String, String), Box<EvalAltResult>> {
        if let Some((dir, files)) = &self.recorded {
            return Self::locate_recorded(dir, files, path, pos);
        }
        if let Some(text) = shipped::stdlib(path) {
            let name = path.strip_suffix(".rhai").unwrap_or(path);
            return Ok((format!("stdlib/{name}.rhai"), text.to_string()));
        }
        let Some(base) = &self.base else {
            return Err(err(
                format!("no stdlib module named `{path}` (shipped runbooks may import only stdlib modules: {})", stdlib_list()),
                pos,
            ));
        };
        let mut rel = PathBuf::from(path);
        if rel.extension().is_none() {
            rel.set_extension("rhai");
        }
        let full = base.join(&rel);
        let canon = full.canonicalize().map_err(|_| {
            err(
                format!(
                    "cannot import `{path}`: no stdlib module of that name and no file {} (stdlib modules: {})",
                    full.display(),
                    stdlib_list()
                ),
                pos,
            )
        })?;
        if !canon.starts_with(base) {
            return Err(err(
                format!(
                    "import `{path}` resolves to {}, outside the runbook's directory {}: imports are limited to stdlib modules and files under the runbook's directory",
                    canon.display(),
                    base.display()
                ),
                pos,
            ));
        }
        let text = std::fs::read_to_string(&canon)
            .map_err(|e| err(format!("cannot read {}: {e}", canon.display()), pos))?;
        Ok((display_path(&canon), text))
    }
}

fn stdlib_list() -> String {
    shipped::STDLIB
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// How a file path is shown in diagnostics: relative to the current directory when possible.
pub(crate) fn display_path(p: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| cwd.canonicalize().ok())
        .and_then(|cwd| p.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| p.to_path_buf())
        .display()
        .to_string()
}

fn err(msg: String, pos: Position) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(msg.into(), pos))
}

impl rhai::ModuleResolver for Resolver {
    fn resolve(
        &self,
        engine: &Engine,
        _source: Option<&str>,
        path: &str,
        pos: Position,
    ) -> Result<SharedModule, Box<EvalAltResult>> {
        let (name, text) = self.locate(path, pos)?;
        if let Some(m) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
        {
            return Ok(m.clone());
        }
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.as_str().into(), text.as_str().into());
        let mut ast = engine.compile(&text).map_err(|e| {
            Box::new(EvalAltResult::ErrorInModule(
                name.clone(),
                Box::new(EvalAltResult::ErrorParsing(*e.0.clone(), e.1)),
                pos,
            ))
        })?;
        ast.set_source(name.as_str());
        self.enter(&name, pos)?;
        let evaluated = Module::eval_ast_as_new(Scope::new(), &ast, engine);
        self.leave();
        let mut module =
            evaluated.map_err(|e| Box::new(EvalAltResult::ErrorInModule(name.clone(), e, pos)))?;
        module.set_id(name.as_str());
        let shared: SharedModule = module.into();
        self.cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, shared.clone());
        Ok(shared)
    }
}
