//! Renderings of a plan: text for people, JSON for tools, Mermaid and DOT for diagrams.

use crate::dsl::{StepKind, When};
use crate::duration::format_duration;
use crate::plan::Plan;
use serde_json::json;
use std::fmt::Write as _;

/// `plan --format json` (shape fixed by SPEC §3, plus `title` and `fingerprint`).
pub fn plan_json(plan: &Plan) -> serde_json::Value {
    let steps: Vec<_> = plan
        .steps
        .iter()
        .map(|s| {
            let d = &s.decl;
            json!({
                "name": d.name,
                "kind": d.kind.as_str(),
                "title": d.title,
                "after": s.deps.iter().map(|&j| plan.steps[j].decl.name.as_str()).collect::<Vec<_>>(),
                "wave": s.wave,
                "when": d.when.as_str(),
                "idempotent": d.idempotent,
                "group": d.group,
                "retries": d.retries,
                "timeout": d.timeout.map(format_duration),
                "fingerprint": s.fingerprint,
            })
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
    json!({ "runbook": plan.name, "steps": steps, "waves": waves })
}

/// `plan --format text`: waves, gates with titles, retries/timeouts, non-idempotent steps.
pub fn plan_text(plan: &Plan) -> String {
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
            if !s.deps.is_empty() {
                let names: Vec<&str> = s
                    .deps
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
pub fn plan_mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart TD\n");
    for (i, s) in plan.steps.iter().enumerate() {
        let label = s.decl.name.replace('"', "#quot;");
        let _ = match s.decl.kind {
            StepKind::Gate => writeln!(out, "    {}{{{{\"{label}\"}}}}", node_id(i)),
            StepKind::Step => writeln!(out, "    {}[\"{label}\"]", node_id(i)),
        };
    }
    for (i, s) in plan.steps.iter().enumerate() {
        for &j in &s.deps {
            let _ = writeln!(out, "    {} --> {}", node_id(j), node_id(i));
        }
    }
    out
}

/// `plan --format dot`: Graphviz; gates are drawn as octagons.
pub fn plan_dot(plan: &Plan) -> String {
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
    for (i, s) in plan.steps.iter().enumerate() {
        for &j in &s.deps {
            let _ = writeln!(out, "    {} -> {};", node_id(j), node_id(i));
        }
    }
    out.push_str("}\n");
    out
}
