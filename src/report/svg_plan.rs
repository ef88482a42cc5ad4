//! The plan as a picture: one column per wave (a step's wave is one more than its
//! latest dependency's), one box per step coloured by its final state, gates drawn as
//! hexagons, an arrow from each dependency. Drawn by waymark itself as inline SVG so
//! the report needs no layout engine and no network.

use super::html::{esc, state_class, state_fill};
use super::PlanNode;
use std::fmt::Write as _;

const BOX_W: usize = 210;
const BOX_H: usize = 26;
const COL_W: usize = 260;
const ROW_H: usize = 34;
const PAD: usize = 12;
/// Longest label drawn in a box; the full name is in the box's tooltip.
const LABEL_CHARS: usize = 30;
/// Beyond this many steps the picture stops being readable; the table still lists them.
pub(crate) const MAX_DRAWN: usize = 600;

/// Each node's wave: 0 without dependencies, else one more than its latest dependency.
/// A dependency cycle (impossible in a journaled plan, but the journal is input) is cut
/// where it is found rather than looping.
pub(crate) fn waves(nodes: &[PlanNode]) -> Vec<usize> {
    const UNSET: usize = usize::MAX;
    const VISITING: usize = usize::MAX - 1;
    let mut wave = vec![UNSET; nodes.len()];
    for start in 0..nodes.len() {
        // Iterative depth-first walk: a 10,000-step chain must not overflow the stack.
        let mut stack = vec![(start, 0usize)];
        while let Some((i, next)) = stack.pop() {
            if next == 0 {
                if wave[i] != UNSET && wave[i] != VISITING {
                    continue;
                }
                wave[i] = VISITING;
            }
            if let Some(&d) = nodes[i].after.get(next) {
                stack.push((i, next + 1));
                if d < nodes.len() && wave[d] == UNSET {
                    stack.push((d, 0));
                }
                continue;
            }
            wave[i] = nodes[i]
                .after
                .iter()
                .filter_map(|&d| wave.get(d).copied())
                .filter(|&w| w != UNSET && w != VISITING)
                .map(|w| w + 1)
                .max()
                .unwrap_or(0);
        }
    }
    wave
}

fn label(name: &str) -> String {
    if name.chars().count() <= LABEL_CHARS {
        return name.to_string();
    }
    // Keep the end: shipped step names share prefixes (`onbox:ns-hq:`) and differ last.
    let tail: String = {
        let mut t: Vec<char> = name.chars().rev().take(LABEL_CHARS - 1).collect();
        t.reverse();
        t.into_iter().collect()
    };
    format!("…{tail}")
}

/// The plan as an `<svg>` element (or a note when it is too large to draw).
pub(crate) fn render(nodes: &[PlanNode]) -> String {
    if nodes.is_empty() {
        return "<p>The plan has no steps.</p>".into();
    }
    if nodes.len() > MAX_DRAWN {
        return format!(
            "<p class=\"note\">The plan has {} steps, too many to draw readably; the steps table below lists every one.</p>",
            nodes.len()
        );
    }
    let wave = waves(nodes);
    let columns = wave.iter().max().map_or(1, |w| w + 1);
    let mut row_of = vec![0usize; nodes.len()];
    let mut rows = vec![0usize; columns];
    for (i, &w) in wave.iter().enumerate() {
        row_of[i] = rows[w];
        rows[w] += 1;
    }
    let tallest = rows.iter().copied().max().unwrap_or(1);
    let width = PAD * 2 + (columns - 1) * COL_W + BOX_W;
    let height = PAD * 2 + 18 + tallest * ROW_H;
    let at = |i: usize| (PAD + wave[i] * COL_W, PAD + 18 + row_of[i] * ROW_H);
    let mut s = String::with_capacity(nodes.len() * 400);
    let _ = write!(
        s,
        "<div class=\"figure\"><svg id=\"plan-svg\" role=\"img\" aria-label=\"plan of {} steps in {columns} waves\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">\n\
         <defs><marker id=\"arrow\" viewBox=\"0 0 8 8\" refX=\"8\" refY=\"4\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L8,4 L0,8 z\" fill=\"#8c959f\"/></marker></defs>\n",
        nodes.len()
    );
    for w in 0..columns {
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#57606a\">wave {}</text>",
            PAD + w * COL_W,
            PAD + 10,
            w + 1
        );
    }
    for (i, n) in nodes.iter().enumerate() {
        let (x2, y2) = at(i);
        for &d in &n.after {
            if d >= nodes.len() {
                continue;
            }
            let (x1, y1) = at(d);
            let (x1, y1, y2) = (x1 + BOX_W, y1 + BOX_H / 2, y2 + BOX_H / 2);
            let mid = (x1 + x2) / 2;
            let _ = writeln!(
                s,
                "<path class=\"edge\" d=\"M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}\" fill=\"none\" stroke=\"#8c959f\" stroke-width=\"1\" marker-end=\"url(#arrow)\"/>"
            );
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        let (x, y) = at(i);
        let class = state_class(n.state);
        let fill = state_fill(class);
        let text_fill = if class == "pend" { "#1b1f23" } else { "#fff" };
        let kind = if n.kind == "gate" { "gate" } else { "step" };
        let _ = write!(
            s,
            "<g class=\"node {kind} {class}\"><title>{} {}: {}</title>",
            kind,
            esc(&n.name),
            n.state.as_str()
        );
        if kind == "gate" {
            let (r, b, m) = (x + BOX_W, y + BOX_H, y + BOX_H / 2);
            let _ = write!(
                s,
                "<polygon points=\"{x},{m} {},{y} {},{y} {r},{m} {},{b} {},{b}\" fill=\"{fill}\" stroke=\"#1b1f23\" stroke-width=\"1.5\"/>",
                x + 10,
                r - 10,
                r - 10,
                x + 10
            );
        } else {
            let _ = write!(
                s,
                "<rect x=\"{x}\" y=\"{y}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"4\" fill=\"{fill}\"/>"
            );
        }
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"{text_fill}\">{}</text></g>",
            x + if kind == "gate" { 14 } else { 6 },
            y + 17,
            esc(&label(&n.name))
        );
    }
    s.push_str("</svg></div>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_state::StepState;

    fn node(name: &str, kind: &str, state: StepState, after: &[usize]) -> PlanNode {
        PlanNode {
            name: name.into(),
            kind: kind.into(),
            state,
            after: after.to_vec(),
            title: None,
        }
    }

    #[test]
    fn waves_follow_the_latest_dependency_and_survive_cycles() {
        let nodes = vec![
            node("a", "step", StepState::Succeeded, &[]),
            node("b", "step", StepState::Succeeded, &[0]),
            node("c", "step", StepState::Succeeded, &[0, 1]),
            node("d", "step", StepState::Succeeded, &[4]),
            node("e", "step", StepState::Succeeded, &[3]),
            node("f", "step", StepState::Succeeded, &[99]),
        ];
        let w = waves(&nodes);
        assert_eq!(&w[..3], &[0, 1, 2]);
        assert!(w[3] <= 1 && w[4] <= 1, "{w:?}");
        assert_eq!(w[5], 0);
    }

    #[test]
    fn gates_are_hexagons_and_names_are_escaped() {
        let nodes = vec![
            node("<b>x</b>", "step", StepState::Failed, &[]),
            node("approve", "gate", StepState::Approved, &[0]),
        ];
        let svg = render(&nodes);
        assert!(!svg.contains("<b>x"), "{svg}");
        assert!(svg.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(svg.contains("<g class=\"node gate ok\">"));
        assert!(svg.contains("<polygon"));
        assert!(svg.contains("<g class=\"node step bad\">"));
        assert_eq!(svg.matches("class=\"edge\"").count(), 1);
    }

    #[test]
    fn long_names_keep_their_distinct_end() {
        let l = label("onbox:ns-emea-frankfurt-01:disable-policies-before-upgrade");
        assert!(l.starts_with('…') && l.ends_with("before-upgrade"), "{l}");
        assert_eq!(l.chars().count(), LABEL_CHARS);
    }
}
