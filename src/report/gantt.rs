//! The timeline as a Gantt chart: one row per step or gate that did anything, one bar
//! per attempt (a retried failure in light red, so retries stand out) and one striped
//! bar per stretch a gate waited for a person, on a time axis from the run's start.

use super::html::{esc, state_fill};
use super::timeline::{AttemptEnd, Timeline, WaitEnd};
use super::PlanNode;
use crate::duration::format_duration;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

const LABEL_W: f64 = 270.0;
const CHART_W: f64 = 900.0;
const ROW_H: f64 = 20.0;
const TOP: f64 = 24.0;
/// Rows beyond this are left to the steps table.
const MAX_ROWS: usize = 1500;

/// A tick spacing giving at most ~10 ticks over `span`.
fn tick(span: Duration) -> Duration {
    const STEPS_MS: [u64; 21] = [
        1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000,
        120_000, 300_000, 600_000, 1_800_000, 3_600_000,
    ];
    let ms = span.as_millis() as u64;
    for s in STEPS_MS {
        if ms / s <= 10 {
            return Duration::from_millis(s);
        }
    }
    // Beyond ten hours: whole hours.
    Duration::from_millis(3_600_000 * (ms / 36_000_000 + 1))
}

fn label(name: &str) -> String {
    const MAX: usize = 38;
    if name.chars().count() <= MAX {
        return name.to_string();
    }
    let mut t: Vec<char> = name.chars().rev().take(MAX - 1).collect();
    t.reverse();
    format!("…{}", t.into_iter().collect::<String>())
}

/// The chart as an `<svg>` element (or a note when nothing ran).
pub(crate) fn render(t: &Timeline, plan: &[PlanNode]) -> String {
    // Rows in plan order, then anything the journal has that the plan did not.
    let mut order: Vec<&str> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let active: std::collections::HashSet<&str> = t
        .attempts
        .iter()
        .map(|a| a.step.as_str())
        .chain(t.waits.iter().map(|w| w.gate.as_str()))
        .collect();
    for name in plan
        .iter()
        .map(|n| n.name.as_str())
        .chain(t.attempts.iter().map(|a| a.step.as_str()))
        .chain(t.waits.iter().map(|w| w.gate.as_str()))
    {
        if active.contains(name) && !seen.contains_key(name) {
            seen.insert(name, order.len());
            order.push(name);
        }
    }
    if order.is_empty() {
        return "<p>No step has started yet.</p>".into();
    }
    let shown = order.len().min(MAX_ROWS);
    let span = t.span.max(Duration::from_millis(1));
    let scale = CHART_W / span.as_secs_f64();
    let x = |d: Duration| LABEL_W + d.as_secs_f64() * scale;
    let width = LABEL_W + CHART_W + 20.0;
    let height = TOP + shown as f64 * ROW_H + 10.0;
    let mut s = String::with_capacity(order.len() * 300);
    let _ = write!(
        s,
        "<div class=\"figure\"><svg id=\"gantt-svg\" role=\"img\" aria-label=\"timeline of {} attempts and {} gate waits over {}\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\">\n\
         <defs><pattern id=\"waiting\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"6\" height=\"6\" fill=\"#e1bee7\"/><rect width=\"3\" height=\"6\" fill=\"{}\"/></pattern></defs>\n",
        t.attempts.len(),
        t.waits.len(),
        format_duration(t.span),
        state_fill("wait"),
    );
    // Axis and grid.
    let step = tick(span);
    let mut at = Duration::ZERO;
    while at <= span {
        let gx = x(at);
        let _ = writeln!(
            s,
            "<line x1=\"{gx:.1}\" y1=\"{}\" x2=\"{gx:.1}\" y2=\"{height}\" stroke=\"#eaeef2\"/><text x=\"{gx:.1}\" y=\"14\" font-size=\"11\" fill=\"#57606a\" text-anchor=\"middle\">+{}</text>",
            TOP - 4.0,
            format_duration(at)
        );
        at += step;
    }
    for (m, what) in &t.marks {
        let mx = x(*m);
        let _ = writeln!(
            s,
            "<line class=\"mark\" x1=\"{mx:.1}\" y1=\"{}\" x2=\"{mx:.1}\" y2=\"{height}\" stroke=\"#57606a\" stroke-dasharray=\"4 3\"><title>+{}: {}</title></line>",
            TOP - 4.0,
            format_duration(*m),
            esc(what)
        );
    }
    for (row, name) in order.iter().take(shown).enumerate() {
        let y = TOP + row as f64 * ROW_H;
        let _ = writeln!(
            s,
            "<text x=\"4\" y=\"{:.1}\" font-size=\"11\" fill=\"#1b1f23\"><title>{}</title>{}</text>",
            y + 13.0,
            esc(name),
            esc(&label(name))
        );
    }
    let bar = |s: &mut String,
               row: usize,
               start: Duration,
               end: Duration,
               fill: &str,
               class: &str,
               tip: String| {
        let y = TOP + row as f64 * ROW_H + 3.0;
        let w = ((end.saturating_sub(start)).as_secs_f64() * scale).max(2.0);
        let _ = writeln!(
            s,
            "<rect class=\"{class}\" x=\"{:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{:.1}\" fill=\"{fill}\" rx=\"2\"><title>{}</title></rect>",
            x(start),
            ROW_H - 6.0,
            esc(&tip)
        );
    };
    for w in &t.waits {
        let Some(&row) = seen.get(w.gate.as_str()).filter(|&&r| r < shown) else {
            continue;
        };
        let how = match w.outcome {
            WaitEnd::Approved => "then approved",
            WaitEnd::Rejected => "then rejected",
            WaitEnd::Stopped => "until the run paused",
            WaitEnd::Open => "still waiting",
        };
        bar(
            &mut s,
            row,
            w.start,
            w.end,
            "url(#waiting)",
            "wait-bar",
            format!(
                "gate {} waited {} from +{}, {how}",
                w.gate,
                format_duration(w.end.saturating_sub(w.start)),
                format_duration(w.start)
            ),
        );
    }
    for a in &t.attempts {
        let Some(&row) = seen.get(a.step.as_str()).filter(|&&r| r < shown) else {
            continue;
        };
        let (class, how) = match a.outcome {
            AttemptEnd::Succeeded => ("ok", "succeeded".to_string()),
            AttemptEnd::Retried => ("retry", "failed, retried".to_string()),
            AttemptEnd::Failed => ("bad", "failed".to_string()),
            AttemptEnd::Open => ("unk", "no end recorded".to_string()),
        };
        let error = a
            .error
            .as_deref()
            .map(|e| format!(": {}", e.lines().next().unwrap_or("")))
            .unwrap_or_default();
        bar(
            &mut s,
            row,
            a.start,
            a.end,
            state_fill(class),
            &format!("attempt {class}"),
            format!(
                "{} attempt {} {how} after {} (from +{}){error}",
                a.step,
                a.number,
                format_duration(a.end.saturating_sub(a.start)),
                format_duration(a.start)
            ),
        );
    }
    s.push_str("</svg></div>\n");
    if shown < order.len() {
        let _ = writeln!(
            s,
            "<p class=\"note\">Only the first {shown} of {} rows are drawn; the steps table lists every step.</p>",
            order.len()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::timeline::Attempt;
    use crate::run_state::StepState;

    #[test]
    fn ticks_stay_few_on_any_span() {
        for ms in [1, 999, 61_000, 3_600_000, 80_000_000, 10_000_000_000] {
            let span = Duration::from_millis(ms);
            let n = span.as_millis() / tick(span).as_millis();
            assert!(n <= 10, "{ms}: {n}");
        }
    }

    #[test]
    fn each_attempt_is_a_bar_and_a_retry_is_marked() {
        let attempt = |n, s, e, outcome| Attempt {
            step: "s<1>".into(),
            number: n,
            start: Duration::from_millis(s),
            end: Duration::from_millis(e),
            outcome,
            error: None,
        };
        let t = Timeline {
            attempts: vec![
                attempt(1, 0, 100, AttemptEnd::Retried),
                attempt(2, 1100, 1200, AttemptEnd::Succeeded),
            ],
            span: Duration::from_millis(1200),
            ..Timeline::default()
        };
        let plan = vec![PlanNode {
            name: "s<1>".into(),
            kind: "step".into(),
            state: StepState::Succeeded,
            after: vec![],
            title: None,
        }];
        let svg = render(&t, &plan);
        assert_eq!(svg.matches("class=\"attempt ").count(), 2, "{svg}");
        assert!(svg.contains("class=\"attempt retry\""));
        assert!(svg.contains("s&lt;1&gt; attempt 1 failed, retried"));
        assert!(!svg.contains("s<1>"));
    }
}
