//! The declaration functions a script calls while it loads — `runbook()`, `step()`,
//! `gate()`, `rollout()` — each validating its options and recording a declaration
//! or a diagnostic in the load's [`Shared`] state.

use super::closures::Maker;
use super::script_errors::{abort, call_pos};
use super::shared::Shared;
use crate::diagnostic::{did_you_mean, Diagnostic, SourceMap, SrcPos};
use crate::dsl::declaration::{valid_step_name, StepDecl, StepKind};
use crate::dsl::options::{self, KeyPositions};
use crate::dsl::positions::KeyIndex;
use rhai::{Dynamic, Engine, EvalAltResult, Map, NativeCallContext};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Option-key positions of the declarations' calls, from the AST of their files.
struct Keys<'a> {
    shared: &'a Shared,
    index: &'a KeyIndex,
}

impl<'a> Keys<'a> {
    fn new(shared: &'a Shared) -> Self {
        Keys {
            shared,
            index: &shared.keys,
        }
    }

    // The text of `file`, for a file whose keys are not indexed yet.
    fn text(&self, file: &str) -> Option<Arc<str>> {
        self.shared.sources().get(file).cloned()
    }
}

impl KeyPositions for Keys<'_> {
    fn key_pos(&self, call: &Option<SrcPos>, path: &[&str]) -> Option<SrcPos> {
        self.index.key_pos(&|f| self.text(f), call.as_ref()?, path)
    }

    fn arg_pos(
        &self,
        call: &Option<SrcPos>,
        index: usize,
        element: Option<&str>,
    ) -> Option<SrcPos> {
        self.index
            .arg_pos(&|f| self.text(f), call.as_ref()?, index, element)
    }
}

/// Where `fname()` was called, if a step, gate or rollout may be declared now: only
/// while the runbook loads, and after `runbook()`.
fn may_declare(
    ctx: &NativeCallContext,
    shared: &Shared,
    fname: &str,
) -> Result<Option<SrcPos>, Box<EvalAltResult>> {
    let mut st = shared.state();
    let pos = call_pos(ctx, &st.main_file);
    if !st.loading {
        return Err(Box::new(EvalAltResult::ErrorRuntime(
            format!("{fname}() can only be called while the runbook loads, not inside a step")
                .into(),
            ctx.call_position(),
        )));
    }
    if st.runbook.is_none() {
        let d = Diagnostic::at(pos, format!("{fname}() called before runbook(...)"))
            .help("call `runbook(#{ name: ... })` once at the top of the script, before any step, gate or rollout");
        st.diags.push(d);
        return Err(abort());
    }
    Ok(pos)
}

fn declare(
    ctx: NativeCallContext,
    shared: &Shared,
    kind: StepKind,
    name: Dynamic,
    opts: Dynamic,
) -> Result<String, Box<EvalAltResult>> {
    let fname = kind.as_str();
    let pos = may_declare(&ctx, shared, fname)?;
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
    let keys = Keys::new(shared);
    let mut maker = Maker::new(&ctx, shared);
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
    let pos = may_declare(&ctx, shared, "rollout")?;
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
    let keys = Keys::new(shared);
    let mut maker = Maker::new(&ctx, shared);
    let mut diags = Vec::new();
    let site = crate::dsl::rollout::Site {
        call: pos,
        keys: &keys,
        mk: &mut maker,
    };
    let expanded = crate::dsl::rollout::expand(&name, &items, &opts, site, &mut diags);
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
    let keys = Keys::new(shared);
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
    let mut engine = crate::dsl::engine::new_engine();
    let shared = Arc::new(Shared::new(
        Arc::from(""),
        Vec::new(),
        Arc::new(Mutex::new(SourceMap::default())),
    ));
    register_declarations(&mut engine, &shared);
    engine
}

pub(super) fn register_declarations(engine: &mut Engine, shared: &Arc<Shared>) {
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
