//! Renderings of a plan: text for people, JSON for tools, Mermaid and DOT for diagrams.

use crate::dsl::declaration::RolloutPart;
use crate::dsl::{StepKind, When};
use crate::duration::format_duration;
use crate::plan::Plan;
use serde_json::json;
use std::fmt::Write as _;

/// One batch of a rollout, by step index.
struct Batch {
    index: usize,
    items: Vec<usize>,
    barrier: Option<usize>,
    between: Option<usize>,
}

/// A rollout as the plan holds it: its batches in order, and its budget.
struct Rollout<'a> {
    name: &'a str,
    max_failures: String,
    allowed: usize,
    total: usize,
    batches: Vec<Batch>,
}

/// The rollouts of a plan, from the parts their steps play.
fn rollouts(plan: &Plan) -> Vec<Rollout<'_>> {
    let mut out: Vec<Rollout> = Vec::new();
    for (i, s) in plan.steps.iter().enumerate() {
        let Some(part) = s.decl.rollout.as_deref() else {
            continue;
        };
        let (name, k) = part.batch();
        let pos = match out.iter().position(|r| r.name == name) {
            Some(p) => p,
            None => {
                out.push(Rollout {
                    name,
                    max_failures: String::new(),
                    allowed: 0,
                    total: 0,
                    batches: Vec::new(),
                });
                out.len() - 1
            }
        };
        let r = &mut out[pos];
        while r.batches.len() < k {
            let index = r.batches.len() + 1;
            r.batches.push(Batch {
                index,
                items: Vec::new(),
                barrier: None,
                between: None,
            });
        }
        let b = &mut r.batches[k - 1];
        match part {
            RolloutPart::Item { .. } => b.items.push(i),
            RolloutPart::Barrier { total, budget, .. } => {
                b.barrier = Some(i);
                r.total = *total;
                r.max_failures = budget.describe();
                r.allowed = budget.allowed(*total);
            }
            RolloutPart::Between { .. } => b.between = Some(i),
        }
    }
    out
}

fn names(plan: &Plan, idx: &[usize]) -> Vec<String> {
    idx.iter()
        .map(|&i| plan.steps[i].decl.name.clone())
        .collect()
}

/// `plan --format json` (the contract's shape, plus `title`, `fingerprint`, and
/// `rollout`/`rollouts` when the runbook has any).
pub(crate) fn plan_json(plan: &Plan) -> serde_json::Value {
    let steps: Vec<_> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let d = &s.decl;
            let mut step = json!({
                "name": d.name,
                "kind": d.kind.as_str(),
                "title": d.title,
                "after": plan.deps[i].iter().map(|&j| plan.steps[j].decl.name.as_str()).collect::<Vec<_>>(),
                "wave": plan.wave_of[i],
                "when": d.when.as_str(),
                "idempotent": d.idempotent,
                "group": d.group,
                "retries": d.retries,
                "timeout": d.timeout.map(format_duration),
                "fingerprint": plan.fingerprints[i],
            });
            if let Some(part) = d.rollout.as_deref() {
                let (name, batch) = part.batch();
                let role = match part {
                    RolloutPart::Item { .. } => "item",
                    RolloutPart::Barrier { .. } => "barrier",
                    RolloutPart::Between { .. } => "between",
                };
                step["rollout"] = json!({ "name": name, "batch": batch, "role": role });
            }
            step
        })
        .collect();
    let waves: Vec<Vec<&str>> = plan
        .waves
        .iter()
        .map(|w| {
            w.iter()
                .map(|&i| plan.steps[i].decl.name.as_str())
                .collect()
        })
        .collect();
    let mut doc = json!({ "runbook": plan.name, "steps": steps, "waves": waves });
    let rs = rollouts(plan);
    if !rs.is_empty() {
        doc["rollouts"] = rs
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "items": r.total,
                    "max_failures": r.max_failures,
                    "failures_allowed": r.allowed,
                    "batches": r.batches.iter().map(|b| json!({
                        "batch": b.index,
                        "items": names(plan, &b.items),
                        "barrier": b.barrier.map(|i| plan.steps[i].decl.name.as_str()),
                        "between": b.between.map(|i| plan.steps[i].decl.name.as_str()),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
    }
    doc
}

/// `plan --format text`: waves, gates with titles, retries/timeouts, non-idempotent steps.
pub(crate) fn plan_text(plan: &Plan) -> String {
    let mut out = String::new();
    let gates = plan
        .steps
        .iter()
        .filter(|s| s.decl.kind == StepKind::Gate)
        .count();
    let _ = writeln!(
        out,
        "{} — {} steps, {} gates, {} waves",
        plan.name,
        plan.steps.len() - gates,
        gates,
        plan.waves.len()
    );
    for r in rollouts(plan) {
        let sizes: Vec<String> = r
            .batches
            .iter()
            .map(|b| b.items.len().to_string())
            .collect();
        let _ = writeln!(
            out,
            "\nrollout {}: {} items in {} batch(es) of {}; max_failures {} ({} of {} may fail)",
            r.name,
            r.total,
            r.batches.len(),
            sizes.join(", "),
            r.max_failures,
            r.allowed,
            r.total
        );
        for b in &r.batches {
            let mut items = names(plan, &b.items);
            if items.len() > 8 {
                let more = items.len() - 6;
                items.truncate(6);
                items.push(format!("… {more} more"));
            }
            let mut line = format!("  batch {}: {}", b.index, items.join(", "));
            if let Some(i) = b.between {
                let _ = write!(line, " → {}", plan.steps[i].decl.name);
            }
            let _ = writeln!(out, "{line}");
        }
    }
    for (w, members) in plan.waves.iter().enumerate() {
        let _ = writeln!(out, "\nwave {}:", w + 1);
        for &i in members {
            let s = &plan.steps[i];
            let d = &s.decl;
            let mut line = match d.kind {
                StepKind::Gate => format!("  ⏸ gate {}", d.name),
                StepKind::Step => format!("  • {}", d.name),
            };
            if let Some(t) = &d.title {
                let _ = write!(line, " — {t}");
            }
            let mut notes = Vec::new();
            if !plan.deps[i].is_empty() {
                let names: Vec<&str> = plan.deps[i]
                    .iter()
                    .map(|&j| plan.steps[j].decl.name.as_str())
                    .collect();
                notes.push(format!("after {}", names.join(", ")));
            }
            if d.when != When::Success {
                notes.push(format!("when {}", d.when.as_str()));
            }
            if d.retries > 0 {
                notes.push(format!(
                    "retries {} (from {})",
                    d.retries,
                    format_duration(d.retry_delay)
                ));
            }
            if let Some(t) = d.timeout {
                notes.push(format!("timeout {}", format_duration(t)));
            }
            if let Some(g) = &d.group {
                notes.push(format!("group {g}"));
            }
            if d.kind == StepKind::Step && !d.idempotent && d.run.is_some() {
                notes.push(if d.check.is_some() {
                    "not idempotent (has check probe)".into()
                } else {
                    "NOT idempotent: resume asks before re-running".into()
                });
            }
            if d.kind == StepKind::Gate && d.approvals > 1 {
                notes.push(format!("{} approvers", d.approvals));
            }
            if d.kind == StepKind::Gate && d.separate_approver {
                notes.push("approver ≠ starter".into());
            }
            if d.undo.is_some() {
                notes.push("has undo".into());
            }
            let _ = writeln!(out, "{line}");
            if !notes.is_empty() {
                let _ = writeln!(out, "      {}", notes.join(" · "));
            }
        }
    }
    out
}

fn node_id(i: usize) -> String {
    format!("s{i}")
}

fn escape_label(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// `plan --format mermaid`: a flowchart; gates are drawn as hexagons.
pub(crate) fn plan_mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart TD\n");
    for (i, s) in plan.steps.iter().enumerate() {
        let label = s.decl.name.replace('"', "#quot;");
        let _ = match s.decl.kind {
            StepKind::Gate => writeln!(out, "    {}{{{{\"{label}\"}}}}", node_id(i)),
            StepKind::Step => writeln!(out, "    {}[\"{label}\"]", node_id(i)),
        };
    }
    for (i, deps) in plan.deps.iter().enumerate() {
        for &j in deps {
            let _ = writeln!(out, "    {} --> {}", node_id(j), node_id(i));
        }
    }
    for (n, r) in rollouts(plan).iter().enumerate() {
        for b in &r.batches {
            let label = format!("{} batch {}", r.name, b.index).replace('"', "#quot;");
            let _ = writeln!(out, "    subgraph r{n}b{}[\"{label}\"]", b.index);
            for &i in b.items.iter().chain(&b.barrier) {
                let _ = writeln!(out, "        {}", node_id(i));
            }
            let _ = writeln!(out, "    end");
        }
    }
    out
}

/// `plan --format dot`: Graphviz; gates are drawn as octagons.
pub(crate) fn plan_dot(plan: &Plan) -> String {
    let mut out = format!(
        "digraph \"{}\" {{\n    rankdir=TB;\n",
        escape_label(&plan.name)
    );
    for (i, s) in plan.steps.iter().enumerate() {
        let shape = match s.decl.kind {
            StepKind::Gate => "octagon",
            StepKind::Step => "box",
        };
        let _ = writeln!(
            out,
            "    {} [label=\"{}\", shape={shape}];",
            node_id(i),
            escape_label(&s.decl.name)
        );
    }
    for (i, deps) in plan.deps.iter().enumerate() {
        for &j in deps {
            let _ = writeln!(out, "    {} -> {};", node_id(j), node_id(i));
        }
    }
    for (n, r) in rollouts(plan).iter().enumerate() {
        for b in &r.batches {
            let _ = writeln!(out, "    subgraph cluster_r{n}b{} {{", b.index);
            let _ = writeln!(
                out,
                "        label=\"{}\";",
                escape_label(&format!("{} batch {}", r.name, b.index))
            );
            for &i in b.items.iter().chain(&b.barrier) {
                let _ = writeln!(out, "        {};", node_id(i));
            }
            let _ = writeln!(out, "    }}");
        }
    }
    out.push_str("}\n");
    out
}
