//! `rollout(name, items, options)`: a rolling change over many items, expanded at load
//! time into ordinary steps and gates so that plan, journal, resume and the report need
//! nothing new to show it.
//!
//! For batches B1..Bn of the items it declares, in order:
//! - `NAME:ITEM` for each item of B1, after the rollout's own `after`; the step options
//!   apply to each, and its closures receive `(ctx, item)`;
//! - `NAME:batch-1`, after B1's items, whatever their outcome (`When::Ran`): it
//!   counts the rollout's failed items so far and fails when they exceed
//!   `max_failures` — so nothing after it, the next batch included, starts;
//! - between batches, `NAME:gate-1` (`between: "gate"`) or `NAME:verify-1`
//!   (`between: |ctx, batch| …`) after the barrier;
//! - B2's items after that, and so on. The last barrier's name is what `rollout`
//!   returns, for later steps' `after`.
//!
//! An item's failure does not stop the run (the scheduler leaves that to the barrier)
//! but the run still ends `failed`, listing it; `resume` re-runs exactly the failed
//! items and what had not started, as for any step.

use super::declaration::{
    valid_step_name, Budget, Callable, Dep, RolloutPart, StepDecl, StepKind, When,
};
use super::options::{self, KeyPositions, MakeCallable, STEP_OPTIONS};
use crate::diagnostic::{did_you_mean, Diagnostic, SrcPos};
use rhai::{Array, Dynamic, FnPtr, Map};
use std::sync::Arc;

/// Options of `rollout()` beyond the step options every item takes.
pub const ROLLOUT_OPTIONS: &[&str] = &["batches", "max_failures", "between", "concurrency"];

/// What one `rollout()` call declares.
pub struct Expanded {
    /// Items, barriers and between-batch steps, in declaration order.
    pub steps: Vec<StepDecl>,
    /// The last barrier: later steps put it in `after`.
    pub last: String,
    /// `concurrency: N`: the group the items share and its limit.
    pub limit: Option<(String, usize)>,
}

/// Everything a call site provides: its position, where keys are, how closures are made.
pub struct Site<'a> {
    /// Where `rollout(` was called.
    pub call: Option<SrcPos>,
    /// Option key positions.
    pub keys: &'a dyn KeyPositions,
    /// Turns closures into callables.
    pub mk: &'a mut dyn MakeCallable,
}

/// Validate and expand `rollout(name, items, opts)`; `None` (with diagnostics) when it
/// cannot be declared.
pub fn expand(
    name: &str,
    items: &Dynamic,
    opts: &Map,
    site: Site,
    diags: &mut Vec<Diagnostic>,
) -> Option<Expanded> {
    let call = site.call.clone();
    let at = |key: &str| site.keys.key_pos(&call, &[key]).or_else(|| call.clone());
    let before = diags.len();
    if !valid_step_name(name) {
        diags.push(
            Diagnostic::at(call.clone(), format!("invalid rollout name `{name}`"))
                .help("names are non-empty and use letters, digits and `-_.:/@`"),
        );
    }
    let item_at = |element: Option<&str>| {
        site.keys
            .arg_pos(&call, 1, element)
            .or_else(|| call.clone())
    };
    let items = item_list(name, items, &item_at, diags);

    // The rollout's own options, then the step options each item takes.
    let mut step_opts = Map::new();
    for (k, v) in opts {
        let key = k.as_str();
        if ROLLOUT_OPTIONS.contains(&key) {
            continue;
        }
        if STEP_OPTIONS.contains(&key) {
            step_opts.insert(k.clone(), v.clone());
            continue;
        }
        let all = STEP_OPTIONS.iter().chain(ROLLOUT_OPTIONS).copied();
        let help = match did_you_mean(key, all) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!(
                "a rollout takes the step options and {}",
                ROLLOUT_OPTIONS.join(", ")
            ),
        };
        diags.push(
            Diagnostic::at(
                at(key),
                format!("unknown option `{key}` for rollout `{name}`"),
            )
            .help(help),
        );
    }
    if !step_opts.contains_key("run") {
        diags.push(
            Diagnostic::at(call.clone(), format!("rollout `{name}` has no `run`"))
                .help("add `run: |ctx, item| { … }`: the work for one item"),
        );
    }
    let concurrency = match opts.get("concurrency") {
        None => None,
        Some(v) => match v.as_int() {
            Ok(n) if n >= 1 => Some(n as usize),
            _ => {
                diags.push(
                    Diagnostic::at(
                        at("concurrency"),
                        format!("`concurrency` must be a whole number ≥ 1, not {v}"),
                    )
                    .help("the number of items of one batch that run at once"),
                );
                None
            }
        },
    };
    if concurrency.is_some() && step_opts.contains_key("group") {
        diags.push(
            Diagnostic::at(
                at("group"),
                format!("rollout `{name}` has both `group` and `concurrency`"),
            )
            .help("`concurrency` puts the items in a group of their own: keep one of the two"),
        );
    }
    let budget = match opts.get("max_failures") {
        None => Budget::Count(0),
        Some(v) => parse_budget(v).unwrap_or_else(|e| {
            diags.push(
                Diagnostic::at(at("max_failures"), format!("bad `max_failures`: {e}"))
                    .help("a count of items (`2`) or a percentage of them (`\"10%\"`)"),
            );
            Budget::Count(0)
        }),
    };
    let between = match opts.get("between") {
        None => Between::Nothing,
        Some(v) if v.is_string() && v.to_string() == "gate" => Between::Gate,
        Some(v) => match v.clone().try_cast::<FnPtr>() {
            Some(fp) => Between::Verify(site.mk.callable(fp)),
            None => {
                diags.push(
                    Diagnostic::at(
                        at("between"),
                        format!("`between` must be \"gate\" or a closure `|ctx, batch| …`, not {v}"),
                    )
                    .help("a gate waits for a person after each batch; a closure verifies a batch before the next starts"),
                );
                Between::Nothing
            }
        },
    };
    let ends = match opts.get("batches") {
        None => Ok(vec![items.len()]),
        Some(v) => batch_ends(v, items.len()),
    };
    let ends = ends.unwrap_or_else(|e| {
        diags.push(
            Diagnostic::at(at("batches"), format!("bad `batches`: {e}"))
                .help("cumulative sizes, counts or percentages of the items, increasing: `[1, \"10%\", \"50%\", \"100%\"]`"),
        );
        vec![items.len()]
    });
    let template = options::parse_step(
        StepDecl::new(name.to_string(), StepKind::Step, call.clone()),
        &step_opts,
        site.keys,
        site.mk,
        diags,
    );
    if diags.len() > before || items.is_empty() {
        return None;
    }

    let group = concurrency.map(|_| format!("rollout:{name}"));
    let n = ends.len();
    let total = items.len();
    let mut steps = Vec::new();
    let mut prev: Vec<Dep> = template.after.clone();
    let mut so_far = Vec::new();
    let mut start = 0;
    let mut last = String::new();
    for (k, &end) in ends.iter().enumerate() {
        let batch = k + 1;
        let mut names = Vec::new();
        for (item_name, value) in &items[start..end] {
            let mut d = template.clone();
            d.name = format!("{name}:{item_name}");
            d.after = prev.clone();
            let with_item = |c: Option<&Callable>| c.map(|c| c.with_extra("item", value.clone()));
            d.run = with_item(template.run.as_ref());
            d.check = with_item(template.check.as_deref()).map(Box::new);
            d.undo = with_item(template.undo.as_deref()).map(Box::new);
            if group.is_some() {
                d.group = group.clone();
            }
            d.rollout = Some(Arc::new(RolloutPart::Item {
                rollout: name.to_string(),
                batch,
            }));
            names.push(d.name.clone());
            steps.push(d);
        }
        so_far.extend(names.iter().cloned());
        let allowed = budget.allowed(total);
        let mut barrier = StepDecl::new(
            format!("{name}:batch-{batch}"),
            StepKind::Step,
            call.clone(),
        );
        barrier.title = Some(format!(
            "Rollout {name}, batch {batch} of {n}: {} item(s) done; {} at most {allowed} of {total} failed (max_failures {})",
            end - start,
            if batch < n { "the next batch starts if" } else { "the rollout passes if" },
            budget.describe()
        ));
        barrier.after = names.iter().map(|x| dep(x, &call)).collect();
        barrier.when = When::Ran;
        barrier.idempotent = true;
        barrier.tags = template.tags.clone();
        barrier.rollout = Some(Arc::new(RolloutPart::Barrier {
            rollout: name.to_string(),
            batch,
            batches: n,
            items: names.clone(),
            so_far: so_far.clone(),
            total,
            budget,
        }));
        last = barrier.name.clone();
        prev = vec![dep(&barrier.name, &call)];
        steps.push(barrier);
        if batch < n {
            let next = ends[k + 1] - end;
            let part = Some(Arc::new(RolloutPart::Between {
                rollout: name.to_string(),
                batch,
            }));
            match &between {
                Between::Nothing => {}
                Between::Gate => {
                    let mut g =
                        StepDecl::new(format!("{name}:gate-{batch}"), StepKind::Gate, call.clone());
                    g.title = Some(format!(
                        "Rollout {name}: batch {batch} of {n} done — go on?"
                    ));
                    g.instructions = Some(format!(
                        "Batch {batch} of {n} of rollout `{name}` has finished: {} item(s) ({}).\nIts results — which items failed, against max_failures {} — are in the log of step `{name}:batch-{batch}` (`waymark log RUN_ID {name}:batch-{batch}`; `waymark status` shows each item's state).\nCheck the batch, then approve to start batch {} ({next} more item(s)), or reject to stop the rollout here.",
                        end - start,
                        short_list(&items[start..end]),
                        budget.describe(),
                        batch + 1
                    ));
                    g.after = prev.clone();
                    g.tags = template.tags.clone();
                    g.rollout = part;
                    prev = vec![dep(&g.name, &call)];
                    steps.push(g);
                }
                Between::Verify(c) => {
                    let mut v = StepDecl::new(
                        format!("{name}:verify-{batch}"),
                        StepKind::Step,
                        call.clone(),
                    );
                    v.title = Some(format!("Rollout {name}: verify batch {batch} of {n}"));
                    let batch_map: Map = [
                        ("rollout".into(), Dynamic::from(name.to_string())),
                        ("index".into(), Dynamic::from(batch as i64)),
                        ("batches".into(), Dynamic::from(n as i64)),
                        (
                            "items".into(),
                            Dynamic::from_array(
                                items[start..end].iter().map(|(_, v)| v.clone()).collect(),
                            ),
                        ),
                        (
                            "barrier".into(),
                            Dynamic::from(format!("{name}:batch-{batch}")),
                        ),
                        (
                            "steps".into(),
                            Dynamic::from_array(
                                names.iter().map(|s| Dynamic::from(s.clone())).collect(),
                            ),
                        ),
                    ]
                    .into_iter()
                    .collect();
                    v.run = Some(c.with_extra("batch", Dynamic::from_map(batch_map)));
                    v.after = prev.clone();
                    v.retries = template.retries;
                    v.retry_delay = template.retry_delay;
                    v.timeout = template.timeout;
                    v.tags = template.tags.clone();
                    v.rollout = part;
                    prev = vec![dep(&v.name, &call)];
                    steps.push(v);
                }
            }
        }
        start = end;
    }
    Some(Expanded {
        steps,
        last,
        limit: group.zip(concurrency),
    })
}

enum Between {
    Nothing,
    Gate,
    Verify(Callable),
}

fn dep(name: &str, call: &Option<SrcPos>) -> Dep {
    Dep {
        name: name.to_string(),
        pos: call.clone(),
    }
}

fn short_list(items: &[(String, Dynamic)]) -> String {
    let mut s: Vec<&str> = items.iter().take(10).map(|(n, _)| n.as_str()).collect();
    if items.len() > 10 {
        s.push("…");
    }
    s.join(", ")
}

/// Each item's name (a string or number, or a map's `name`) and the value the
/// closures receive; problems go to `diags`.
fn item_list(
    name: &str,
    items: &Dynamic,
    at: &dyn Fn(Option<&str>) -> Option<SrcPos>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<(String, Dynamic)> {
    let Some(arr) = items.clone().try_cast::<Array>() else {
        diags.push(
            Diagnostic::at(
                at(None),
                format!("the items of rollout `{name}` must be an array, not {}", items.type_name()),
            )
            .help("for example `rollout(\"agents\", [\"ws-01\", \"ws-02\"], #{ run: |ctx, item| … })`"),
        );
        return Vec::new();
    };
    if arr.is_empty() {
        diags.push(
            Diagnostic::at(at(None), format!("rollout `{name}` has no items")).help(
                "a rollout over nothing would do nothing: check where the item list comes from",
            ),
        );
        return Vec::new();
    }
    let mut out: Vec<(String, Dynamic)> = Vec::with_capacity(arr.len());
    let mut seen = std::collections::HashSet::new();
    for v in arr {
        let item_name = if v.is_string() || v.is_int() {
            Some(v.to_string())
        } else {
            v.read_lock::<Map>().and_then(|m| {
                m.get("name")
                    .filter(|n| n.is_string())
                    .map(|n| n.to_string())
            })
        };
        let Some(item_name) = item_name else {
            diags.push(
                Diagnostic::at(
                    at(None),
                    format!(
                        "an item of rollout `{name}` is {} without a `name`",
                        v.type_name()
                    ),
                )
                .help("items are names (strings or numbers) or maps with a `name`"),
            );
            continue;
        };
        if !valid_step_name(&format!("{name}:{item_name}")) {
            diags.push(
                Diagnostic::at(
                    at(Some(&item_name)),
                    format!("item `{item_name}` of rollout `{name}` cannot be part of a step name"),
                )
                .help("item names use letters, digits and `-_.:/@`"),
            );
            continue;
        }
        if !seen.insert(item_name.clone()) {
            diags.push(
                Diagnostic::at(
                    at(Some(&item_name)),
                    format!("rollout `{name}` has item `{item_name}` twice"),
                )
                .help("each item gets a step of its own, named after it: remove the duplicate"),
            );
            continue;
        }
        out.push((item_name, v));
    }
    out
}

/// `2` or `"10%"`.
fn parse_budget(v: &Dynamic) -> Result<Budget, String> {
    if let Ok(n) = v.as_int() {
        return u32::try_from(n)
            .map(Budget::Count)
            .map_err(|_| format!("{n} is not a count of items"));
    }
    if v.is_string() {
        let s = v.to_string();
        if let Some(p) = percent(&s) {
            return p
                .filter(|p| *p <= 100)
                .map(Budget::Percent)
                .ok_or_else(|| format!("`{s}` is not a percentage from 0% to 100%"));
        }
        return Err(format!("`{s}` is neither a count nor a percentage"));
    }
    Err(format!(
        "{} is neither a count nor a percentage",
        v.type_name()
    ))
}

/// `Some(Some(p))` for "P%", `Some(None)` for a bad number before `%`, `None` without `%`.
fn percent(s: &str) -> Option<Option<u32>> {
    let n = s.trim().strip_suffix('%')?;
    Some(n.trim().parse::<u32>().ok())
}

/// Where each batch ends (exclusive indices into the items, increasing, the last one
/// `total`), from cumulative sizes: counts (capped at `total`) and percentages (rounded
/// up, so "10%" of 5 items is 1). Sizes must increase as written; a size that adds no
/// item for this many items is dropped, and items left after the last are a batch of
/// their own.
fn batch_ends(v: &Dynamic, total: usize) -> Result<Vec<usize>, String> {
    let Some(arr) = v.clone().try_cast::<Array>() else {
        return Err(format!("expected an array of sizes, not {}", v.type_name()));
    };
    if arr.is_empty() {
        return Err("no batches: leave `batches` out for one batch of every item".into());
    }
    // (as written, in percent of the items × 1000 for comparing counts with percentages
    // only through the resolved size)
    let mut ends: Vec<usize> = Vec::new();
    let mut last_written: Option<(bool, i64, String)> = None;
    let mut last_end = 0;
    for x in &arr {
        let (is_pct, value, end) = if let Ok(n) = x.as_int() {
            if n < 1 {
                return Err(format!("a batch size must be at least 1, not {n}"));
            }
            (false, n, (n as usize).min(total))
        } else if x.is_string() {
            let s = x.to_string();
            match percent(&s) {
                Some(Some(p)) if (1..=100).contains(&p) => (
                    true,
                    i64::from(p),
                    (total * p as usize).div_ceil(100).max(1),
                ),
                Some(Some(p)) if p > 100 => {
                    return Err(format!("`{s}` is more than 100% of the items"))
                }
                _ => {
                    return Err(format!(
                        "`{s}` is neither a count nor a percentage from 1% to 100%"
                    ))
                }
            }
        } else {
            return Err(format!(
                "a batch size is a count or a percentage, not {}",
                x.type_name()
            ));
        };
        let shown = x.to_string();
        if let Some((was_pct, was, was_shown)) = &last_written {
            let smaller = if *was_pct == is_pct {
                value <= *was
            } else {
                end < last_end
            };
            if smaller {
                return Err(format!(
                    "sizes are cumulative and must increase: `{shown}` after `{was_shown}`"
                ));
            }
        }
        last_written = Some((is_pct, value, shown));
        if end > last_end {
            ends.push(end);
            last_end = end;
        }
    }
    if last_end < total {
        ends.push(total);
    }
    Ok(ends)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ends(sizes: &str, total: usize) -> Result<Vec<usize>, String> {
        let engine = rhai::Engine::new();
        let v: Dynamic = engine.eval(sizes).unwrap();
        batch_ends(&v, total)
    }

    #[test]
    fn batches_are_cumulative_counts_and_percentages() {
        assert_eq!(
            ends(r#"[1, 5, "50%", "100%"]"#, 50).unwrap(),
            vec![1, 5, 25, 50]
        );
        assert_eq!(
            ends(r#"[1, "10%", "50%", "100%"]"#, 10).unwrap(),
            vec![1, 5, 10]
        );
        assert_eq!(ends(r#"[2]"#, 10).unwrap(), vec![2, 10]);
        assert_eq!(ends(r#"["34%"]"#, 3).unwrap(), vec![2, 3]);
        assert_eq!(ends(r#"[100]"#, 3).unwrap(), vec![3]);
    }

    #[test]
    fn batches_that_shrink_or_exceed_all_items_are_refused() {
        assert!(ends(r#"[5, 2]"#, 10).unwrap_err().contains("must increase"));
        assert!(ends(r#"["50%", "10%"]"#, 10)
            .unwrap_err()
            .contains("must increase"));
        assert!(ends(r#"["150%"]"#, 10)
            .unwrap_err()
            .contains("more than 100%"));
        assert!(ends(r#"[0]"#, 10).unwrap_err().contains("at least 1"));
        assert!(ends(r#"["x"]"#, 10).unwrap_err().contains("neither"));
        assert!(ends(r#"[]"#, 10).is_err());
    }

    #[test]
    fn a_budget_is_a_count_or_a_percentage() {
        let b = |s: &str| parse_budget(&rhai::Engine::new().eval::<Dynamic>(s).unwrap());
        assert_eq!(b("2"), Ok(Budget::Count(2)));
        assert_eq!(b(r#""10%""#), Ok(Budget::Percent(10)));
        assert!(b("-1").is_err());
        assert!(b(r#""110%""#).is_err());
        assert!(b(r#""lots""#).is_err());
        assert_eq!(Budget::Percent(10).allowed(50), 5);
        assert_eq!(Budget::Percent(10).allowed(9), 0);
    }
}
