//! Maps of the step context that refuse names they do not hold.
//!
//! A Rhai map answers `()` for a key it lacks, so `ctx.params.sevrer` deployed to nothing
//! and `ctx.parms.server` failed with Rhai's own words about getters. `ctx`, `ctx.params`,
//! `ctx.outputs` and `ctx.results` are [`StrictMap`]s instead: reading a name they do not
//! hold fails the step with the name, a did-you-mean and (through the caller's error
//! rendering) the closure's position. They still look like maps to scripts: `type_of` says
//! `"map"`, and `in`, `keys`, `values`, `len`, property and index access work as on a map.
//! `check` catches the literal cases earlier: see [`check_reads`].

use crate::diagnostic::did_you_mean;
use rhai::{Dynamic, Engine, EvalAltResult, ImmutableString, Map, Position};
use std::sync::Arc;

/// The fields of `ctx` (SPEC §2), for did-you-mean hints at `check` time.
pub const CTX_FIELDS: &[&str] = &[
    "params",
    "inventory",
    "step",
    "run_id",
    "attempt",
    "outputs",
    "results",
    "dry_run",
];

/// The steps of a run as `ctx.outputs` needs them: which name is which step, and which
/// steps are ancestors of which. The plan implements it; a trait, so the language does
/// not depend on the plan that is built from it.
pub trait StepGraph: Send + Sync {
    /// The step called `name`, if any.
    fn index_of(&self, name: &str) -> Option<usize>;
    /// Whether step `i` is an ancestor of step `node`.
    fn is_ancestor(&self, i: usize, node: usize) -> bool;
    /// Every step's name, in plan order.
    fn step_names(&self) -> Vec<&str>;
}

/// What a [`StrictMap`] holds, which decides what a missing name means.
#[derive(Clone)]
pub enum Holds {
    /// `ctx` itself.
    Ctx,
    /// `ctx.params`: declared parameters that have no value read as `()`.
    Params(Arc<[String]>),
    /// `ctx.outputs` of step `node`: ancestors without an output read as `()`.
    Outputs {
        /// The plan, to tell a non-ancestor from a step that does not exist.
        plan: Option<Arc<dyn StepGraph>>,
        /// The step whose context this is.
        node: usize,
    },
    /// `ctx.results` of `step`: one entry per direct dependency that finished.
    Results(Arc<str>),
}

/// Where a lazy `ctx.outputs` finds outputs when a script reads them: a store shared by
/// every step of the run, so a step costs what it reads rather than what its ancestors
/// wrote (a fresh map of every ancestor's output per attempt made a 10,000-step run
/// whose steps return maps take 9–17 s).
pub trait OutputSource: Send + Sync {
    /// The output of step `i` as a Rhai value, if it has finished with one.
    fn output(&self, i: usize) -> Option<Dynamic>;
    /// Every finished ancestor of `node` (and `node` itself) with an output, by name:
    /// what `keys`, `values`, `len` and printing need.
    fn all(&self, node: usize) -> Map;
}

/// A read-only map that fails on names it does not hold (see the module docs).
#[derive(Clone)]
pub struct StrictMap {
    /// The entries (for a lazy `ctx.outputs`, those read or written so far).
    pub map: Map,
    /// What the entries are.
    pub holds: Holds,
    /// An entry shared between many maps and copied into `map` only when a script first
    /// uses it: `ctx.inventory` is as large as the estate, and copying it into every
    /// step's `ctx` made each step cost the estate's size (a run quadratic in it).
    deferred: Option<(&'static str, Arc<Dynamic>)>,
    /// For `ctx.outputs`: where the entries not yet in `map` are looked up.
    lazy: Option<Arc<dyn OutputSource>>,
}

impl StrictMap {
    /// Wrap `map` as a value scripts can read like a map.
    pub fn dynamic(map: Map, holds: Holds) -> Dynamic {
        Dynamic::from(StrictMap {
            map,
            holds,
            deferred: None,
            lazy: None,
        })
    }

    /// `ctx.outputs` of step `node` of `plan`, whose entries are looked up in `source`
    /// when read. It means what the full map means (SPEC §2: every finished ancestor's
    /// output, the step's own included): only a script that asks for all of them
    /// (`keys`, `values`, `len`, printing) has the map built.
    pub fn lazy_outputs(
        plan: Arc<dyn StepGraph>,
        node: usize,
        source: Arc<dyn OutputSource>,
    ) -> Dynamic {
        Dynamic::from(StrictMap {
            map: Map::new(),
            holds: Holds::Outputs {
                plan: Some(plan),
                node,
            },
            deferred: None,
            lazy: Some(source),
        })
    }

    /// Every entry: the deferred one copied in, and the full map of a lazy
    /// `ctx.outputs` built once.
    pub fn entries(&mut self) -> &mut Map {
        self.settle();
        if let (Some(source), Holds::Outputs { node, .. }) = (self.lazy.take(), &self.holds) {
            let mut all = source.all(*node);
            // What the script wrote through the map wins over what was looked up.
            all.extend(std::mem::take(&mut self.map));
            self.map = all;
        }
        &mut self.map
    }

    /// Whether `key` is an entry (for a lazy `ctx.outputs`: a finished ancestor with an
    /// output), as `key in map` asks.
    fn contains(&self, key: &str) -> bool {
        if self.map.contains_key(key) || self.is_deferred(key) {
            return true;
        }
        match (&self.lazy, &self.holds) {
            (
                Some(source),
                Holds::Outputs {
                    plan: Some(plan),
                    node,
                },
            ) => plan
                .index_of(key)
                .is_some_and(|i| plan.is_ancestor(i, *node) && source.output(i).is_some()),
            _ => false,
        }
    }

    /// [`StrictMap::dynamic`] with one more entry, `key`, copied from `value` only when
    /// a script reads it (or the whole map).
    pub fn dynamic_deferring(
        map: Map,
        holds: Holds,
        key: &'static str,
        value: Arc<Dynamic>,
    ) -> Dynamic {
        Dynamic::from(StrictMap {
            map,
            holds,
            deferred: Some((key, value)),
            lazy: None,
        })
    }

    /// Copy the deferred entry in; every entry is then in `map`.
    pub fn settle(&mut self) -> &mut Map {
        if let Some((key, value)) = self.deferred.take() {
            self.map
                .entry(key.into())
                .or_insert_with(|| (*value).clone());
        }
        &mut self.map
    }

    fn is_deferred(&self, key: &str) -> bool {
        self.deferred.as_ref().is_some_and(|(k, _)| *k == key)
    }

    fn get(&mut self, key: &str) -> Result<Dynamic, String> {
        if self.is_deferred(key) {
            self.settle();
        }
        if let Some(v) = self.map.get(key) {
            return Ok(v.clone());
        }
        if let (
            Some(source),
            Holds::Outputs {
                plan: Some(plan),
                node,
            },
        ) = (&self.lazy, &self.holds)
        {
            if let Some(i) = plan.index_of(key) {
                if plan.is_ancestor(i, *node) {
                    return Ok(source.output(i).unwrap_or(Dynamic::UNIT));
                }
            }
        }
        let present = || self.map.keys().map(|k| k.as_str());
        match &self.holds {
            Holds::Ctx => Err(format!(
                "`ctx` has no field `{key}`{}",
                hint(key, CTX_FIELDS.iter().copied(), CTX_FIELDS.join(", "))
            )),
            Holds::Params(declared) => {
                if declared.iter().any(|d| d == key) {
                    return Ok(Dynamic::UNIT);
                }
                Err(format!(
                    "the runbook declares no parameter `{key}` (ctx.params.{key}){}",
                    hint(
                        key,
                        declared.iter().map(String::as_str),
                        if declared.is_empty() {
                            "none".to_string()
                        } else {
                            declared.join(", ")
                        }
                    )
                ))
            }
            Holds::Outputs { plan, node } => {
                let Some(plan) = plan else {
                    return Err(format!(
                        "ctx.outputs has no `{key}`: it holds the outputs of this step's finished ancestors{}",
                        hint(key, present(), list(present()))
                    ));
                };
                let names = plan.step_names();
                let me = names.get(*node).copied().unwrap_or("?");
                match plan.index_of(key) {
                    Some(i) if plan.is_ancestor(i, *node) => Ok(Dynamic::UNIT),
                    Some(_) => Err(format!(
                        "ctx.outputs.{key}: step `{key}` is not an ancestor of `{me}`, so its output is never in `{me}`'s ctx.outputs; add `after: \"{key}\"` (directly or through a step after it)"
                    )),
                    None => Err(format!(
                        "ctx.outputs.{key}: the runbook has no step `{key}`{}",
                        hint(key, names.iter().copied(), list(present()))
                    )),
                }
            }
            Holds::Results(me) => Err(format!(
                "ctx.results has no `{key}`: it holds the finished direct dependencies of `{me}`{}",
                hint(key, present(), list(present()))
            )),
        }
    }
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = names.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// " (did you mean `x`?)" where a candidate is close, else the list of what there is.
fn hint<'a>(key: &str, candidates: impl IntoIterator<Item = &'a str>, all: String) -> String {
    match did_you_mean(key, candidates) {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => format!(" (there are: {all})"),
    }
}

fn err(msg: String) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(msg.into(), Position::NONE))
}

/// Make [`StrictMap`] readable like a map in `engine`.
pub fn register(engine: &mut Engine) {
    engine
        .register_type_with_name::<StrictMap>("map")
        .register_indexer_get(
            |m: &mut StrictMap, k: ImmutableString| -> Result<Dynamic, Box<EvalAltResult>> {
                m.get(&k).map_err(err)
            },
        )
        // A step may change its own copy (`ctx.outputs.a.list.push(2)` writes back
        // through here); only names the map holds can be written.
        .register_indexer_set(
            |m: &mut StrictMap, k: ImmutableString, v: Dynamic| -> Result<(), Box<EvalAltResult>> {
                match m.settle().get_mut(k.as_str()) {
                    Some(slot) => {
                        *slot = v;
                        Ok(())
                    }
                    None => {
                        let _known = m.get(&k).map_err(err)?;
                        m.map.insert(k.as_str().into(), v);
                        Ok(())
                    }
                }
            },
        )
        .register_fn("contains", |m: &mut StrictMap, k: ImmutableString| {
            m.contains(&k)
        })
        .register_fn("keys", |m: &mut StrictMap| -> rhai::Array {
            m.entries()
                .keys()
                .map(|k| Dynamic::from(ImmutableString::from(k.as_str())))
                .collect()
        })
        .register_fn("values", |m: &mut StrictMap| -> rhai::Array {
            m.entries().values().cloned().collect()
        })
        .register_fn("len", |m: &mut StrictMap| m.entries().len() as rhai::INT)
        .register_fn("is_empty", |m: &mut StrictMap| m.entries().is_empty())
        .register_fn("to_map", |m: &mut StrictMap| m.entries().clone())
        .register_fn("to_string", |m: &mut StrictMap| {
            Dynamic::from_map(m.entries().clone()).to_string()
        })
        .register_fn("to_debug", |m: &mut StrictMap| {
            format!("{:?}", Dynamic::from_map(m.entries().clone()))
        });
}

/// A property chain read off a plain (not module-qualified) variable, `var.field…`:
/// what the `ctx` lint needs of a closure's body, found by the body's one walk
/// ([`super::callees::BodyWalk`]).
#[derive(Debug, PartialEq)]
pub(crate) struct Read {
    var: ImmutableString,
    field: String,
    pos: Position,
    /// The next name in the chain (`params` in `ctx.params.NAME` is followed by NAME).
    next: Option<(String, Position)>,
}

impl Read {
    /// The variable the chain starts from.
    pub(crate) fn var(&self) -> &str {
        &self.var
    }
}

/// The [`Read`] an `Expr::Dot` node is, if its left side is a plain variable and its
/// right side starts with a name.
pub(crate) fn read_of(e: &rhai::Expr) -> Option<Read> {
    use rhai::Expr;
    let Expr::Dot(x, _, _) = e else {
        return None;
    };
    let Expr::Variable(v, _, _) = &x.lhs else {
        return None;
    };
    if !v.2.is_empty() {
        return None;
    }
    let (field, pos, rest) = head(&x.rhs);
    let next = match rest.map(head) {
        Some((Some(p), ppos, _)) => Some((p, ppos)),
        _ => None,
    };
    Some(Read {
        var: v.1.clone(),
        field: field?,
        pos,
        next,
    })
}

/// Names a closure reads as literals that cannot exist: `ctx.FIELD` with an unknown field,
/// `ctx.params.NAME` with an undeclared parameter. `ctx` is the closure's first own
/// parameter (after its captured variables); `reads` are the property chains its body
/// reads. Returns (message, position) for each.
pub(crate) fn check_reads<'a>(
    ctx: &str,
    reads: impl IntoIterator<Item = &'a Read>,
    declared: &[String],
) -> Vec<(String, Position)> {
    let mut found = Vec::new();
    for r in reads.into_iter().filter(|r| r.var.as_str() == ctx) {
        let field = &r.field;
        if !CTX_FIELDS.contains(&field.as_str()) {
            found.push((
                format!(
                    "`{ctx}` has no field `{field}`{}",
                    hint(field, CTX_FIELDS.iter().copied(), CTX_FIELDS.join(", "))
                ),
                r.pos,
            ));
        } else if field == "params" {
            if let Some((p, ppos)) = &r.next {
                if !declared.contains(p) {
                    let all = if declared.is_empty() {
                        "none".to_string()
                    } else {
                        declared.join(", ")
                    };
                    found.push((
                        format!(
                            "the runbook declares no parameter `{p}` ({ctx}.params.{p}){}",
                            hint(p, declared.iter().map(String::as_str), all)
                        ),
                        *ppos,
                    ));
                }
            }
        }
    }
    found
}

/// The first name of a property chain (`a`, `a.b…`, `a[…]`, or a literal string index),
/// its position, and the rest of the chain.
fn head(e: &rhai::Expr) -> (Option<String>, Position, Option<&rhai::Expr>) {
    use rhai::Expr;
    match e {
        Expr::Property(p, pos) => (Some(p.2.to_string()), *pos, None),
        Expr::StringConstant(s, pos) => (Some(s.to_string()), *pos, None),
        Expr::Dot(x, _, _) | Expr::Index(x, _, _) => {
            let (name, pos, _) = head(&x.lhs);
            (name, pos, Some(&x.rhs))
        }
        _ => (None, Position::NONE, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx_with_inventory(inv: &Arc<Dynamic>) -> Dynamic {
        let mut map = Map::new();
        map.insert("step".into(), "a".into());
        StrictMap::dynamic_deferring(map, Holds::Ctx, "inventory", inv.clone())
    }

    fn eval(ctx: Dynamic, script: &str) -> Result<Dynamic, Box<EvalAltResult>> {
        let mut engine = Engine::new();
        register(&mut engine);
        let mut scope = rhai::Scope::new();
        scope.push("ctx", ctx);
        engine.eval_with_scope::<Dynamic>(&mut scope, script)
    }

    #[test]
    fn every_step_copied_the_whole_inventory_into_its_ctx_so_big_estates_went_quadratic() {
        let mut inv = Map::new();
        inv.insert("name".into(), "lab".into());
        inv.insert("servers".into(), Dynamic::from_array(vec!["ns-1".into()]));
        let inv = Arc::new(Dynamic::from_map(inv));
        let ctx = ctx_with_inventory(&inv);
        // Building a ctx shares the inventory; nothing is copied until a script reads it.
        assert_eq!(Arc::strong_count(&inv), 2);
        assert_eq!(ctx.clone().cast::<StrictMap>().map.len(), 1);
        // Read, it is the inventory, and the map looks as if it had always held it.
        let checks = r#"
            ctx.inventory.name == "lab" && ctx["inventory"].servers == ["ns-1"]
                && "inventory" in ctx && ctx.len() == 2
                && ctx.keys().contains("inventory") && ctx.to_map().inventory.name == "lab"
        "#;
        assert!(eval(ctx_with_inventory(&inv), checks)
            .unwrap()
            .as_bool()
            .unwrap());
        // `in`, `len` and `to_map` also see it before any read.
        for script in [
            r#""inventory" in ctx"#,
            "ctx.len() == 2",
            r#"ctx.to_map().inventory.name == "lab""#,
            r#"ctx.values().len() == 2"#,
        ] {
            let got = eval(ctx_with_inventory(&inv), script).unwrap();
            assert!(got.as_bool().unwrap(), "{script}");
        }
        // A step may replace its own copy, as with any field it holds.
        let got = eval(ctx_with_inventory(&inv), "ctx.inventory = 1; ctx.inventory").unwrap();
        assert_eq!(got.as_int().unwrap(), 1);
        let err = eval(ctx_with_inventory(&inv), "ctx.inventroy").unwrap_err();
        assert!(
            err.to_string().contains("did you mean `inventory`"),
            "{err}"
        );
        // The shared original is never changed by a step.
        assert_eq!(
            inv.clone_cast::<Map>()["name"]
                .clone()
                .into_string()
                .unwrap(),
            "lab"
        );
    }
}
