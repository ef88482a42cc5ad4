//! The report page: escaping, the stylesheet and the sections, assembled into one HTML
//! document that needs nothing else — no script, font, image or style from anywhere —
//! so it opens from a USB stick on a machine with no network, and prints.
//!
//! Every piece of text that came from a runbook, a journal, a log or a person goes
//! through [`esc`]: step names, notes and logs are input, and a report is opened by
//! auditors who did not write them.

use super::timeline::RehearsalEnd;
use super::{gantt, svg_plan, Report, StepLogText};
use crate::duration::format_duration;
use crate::run_state::StepState;
use std::fmt::Write as _;
use std::time::Duration;

/// `text` safe inside an element or a quoted attribute.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters (other than tab and newline) are not valid in HTML text
            // and can only come from a binary log line; show where they were.
            c if c.is_control() && c != '\n' && c != '\t' && c != '\r' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// The CSS class (and colour) of a state; shared by the plan, the Gantt and the tables.
pub(crate) fn state_class(state: StepState) -> &'static str {
    match state {
        StepState::Succeeded | StepState::Approved => "ok",
        StepState::Failed | StepState::Rejected => "bad",
        StepState::Running => "run",
        StepState::AwaitingApproval => "wait",
        StepState::Skipped => "skip",
        StepState::Pending => "pend",
        StepState::Unknown => "unk",
        StepState::RolledBack => "back",
    }
}

/// Fill colours of the state classes, for SVG (which reads them through CSS too; the
/// explicit value keeps the picture right when the page is copied without its style).
pub(crate) fn state_fill(class: &str) -> &'static str {
    match class {
        "ok" => "#2e7d32",
        "bad" => "#c62828",
        "run" => "#1565c0",
        "wait" => "#8e24aa",
        "retry" => "#ef9a9a",
        "skip" => "#9e9e9e",
        "unk" => "#ef6c00",
        "back" => "#6d4c41",
        _ => "#cfd8dc",
    }
}

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Liberation Sans", Arial, sans-serif;
  margin: 0 auto; max-width: 1280px; padding: 1.5rem; color: #1b1f23; background: #fff; }
h1 { font-size: 1.6rem; margin: 0 0 .25rem; }
h2 { font-size: 1.2rem; border-bottom: 2px solid #d0d7de; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; margin: .5rem 0; }
th, td { border: 1px solid #d0d7de; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
table.kv th { width: 14rem; }
code, pre { font: 12px/1.4 ui-monospace, "DejaVu Sans Mono", Consolas, monospace; }
pre { background: #f6f8fa; padding: .5rem; overflow-x: auto; white-space: pre-wrap; word-break: break-all; margin: .25rem 0; }
.state { display: inline-block; padding: 0 .4rem; border-radius: .6rem; color: #fff; font-size: 12px; white-space: nowrap; }
.ok { background: #2e7d32; } .bad { background: #c62828; } .run { background: #1565c0; }
.wait { background: #8e24aa; } .skip { background: #9e9e9e; } .pend { background: #cfd8dc; color: #1b1f23; }
.unk { background: #ef6c00; } .back { background: #6d4c41; } .retry { background: #ef9a9a; color: #1b1f23; }
.muted { color: #57606a; }
.note { background: #fff8c5; border: 1px solid #d4a72c; padding: .4rem .6rem; }
.figure { overflow-x: auto; border: 1px solid #d0d7de; padding: .5rem; }
.legend span { margin-right: .6rem; }
svg text { font-family: system-ui, "Liberation Sans", Arial, sans-serif; }
details summary { cursor: pointer; }
.rehearsal { margin-top: .3rem; padding-left: .5rem; border-left: 3px solid #8e24aa; }
.rehearsal ul { margin: .2rem 0; padding-left: 1.2rem; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  .figure { overflow: visible; border: none; }
  svg { max-width: 100%; height: auto; }
  h2 { break-after: avoid; }
  tr, .figure { break-inside: avoid; }
  details > pre { display: none; }
  .state, .legend span { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

fn dur(d: Duration) -> String {
    format_duration(d)
}

/// Time between two journal timestamps, when both parse and the second is not earlier.
fn between(a: Option<&str>, b: Option<&str>) -> Option<Duration> {
    let a = super::timeline::parse_ts(a?)?;
    let b = super::timeline::parse_ts(b?)?;
    b.duration_since(a).ok()
}

fn state_badge(state: StepState) -> String {
    format!(
        r#"<span class="state {}">{}</span>"#,
        state_class(state),
        state.as_str()
    )
}

/// The whole page.
pub(crate) fn page(r: &Report) -> String {
    let s = &r.state;
    let mut h = String::with_capacity(64 * 1024);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>waymark run {} — {}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n",
        esc(&s.run_id),
        esc(&s.runbook)
    );
    let _ = writeln!(
        h,
        "<header><h1>{}</h1><p class=\"muted\">waymark run report · run <code>{}</code> · {}</p></header>",
        esc(&s.runbook),
        esc(&s.run_id),
        state_or_run_badge(r)
    );
    run_section(&mut h, r);
    let _ = write!(
        h,
        "<section id=\"plan\"><h2>Plan</h2>\n<p class=\"muted\">Steps in waves (a wave runs after the one to its left); gates are drawn as hexagons. Colours are each step's final state.</p>\n{}\n{}</section>\n",
        legend(),
        svg_plan::render(&r.plan)
    );
    let _ = write!(
        h,
        "<section id=\"timeline\"><h2>Timeline</h2>\n<p class=\"muted\">Every attempt of every step and every stretch a gate waited for a person, from the run's start. A failed attempt that was retried is light red.</p>\n{}</section>\n",
        gantt::render(&r.timeline, &r.plan)
    );
    stages_section(&mut h, r);
    approvals_section(&mut h, r);
    steps_section(&mut h, r);
    estate_section(&mut h, r);
    let _ = write!(
        h,
        "<footer><p class=\"muted\">Generated by waymark {} at {} from the run's journal ({} records) and step logs. Secrets are never written to either; step logs were redacted as they were written.</p></footer>\n</body>\n</html>\n",
        esc(env!("CARGO_PKG_VERSION")),
        esc(&r.generated_at),
        r.records
    );
    h
}

fn state_or_run_badge(r: &Report) -> String {
    let class = match r.state.status {
        crate::run_state::RunStatus::Succeeded => "ok",
        crate::run_state::RunStatus::Failed => "bad",
        crate::run_state::RunStatus::Running => "run",
        crate::run_state::RunStatus::Paused => "wait",
        crate::run_state::RunStatus::Cancelled | crate::run_state::RunStatus::Crashed => "unk",
        crate::run_state::RunStatus::RolledBack => "back",
    };
    format!(
        r#"<span id="run-status" class="state {class}">{}</span>"#,
        r.state.status
    )
}

fn legend() -> String {
    let mut out = String::from("<p class=\"legend\">");
    for (class, label) in [
        ("ok", "succeeded / approved"),
        ("bad", "failed / rejected"),
        ("retry", "failed, retried"),
        ("wait", "waiting for approval"),
        ("run", "running"),
        ("unk", "unknown"),
        ("skip", "skipped"),
        ("pend", "not started"),
        ("back", "rolled back"),
    ] {
        let _ = write!(out, r#"<span class="state {class}">{label}</span>"#);
    }
    out.push_str("</p>");
    out
}

fn run_section(h: &mut String, r: &Report) {
    let s = &r.state;
    h.push_str("<section id=\"run\"><h2>Run</h2>\n<table class=\"kv\">\n");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(h, "<tr><th>{k}</th><td>{v}</td></tr>");
    };
    row(
        "Runbook",
        format!(
            "{} <span class=\"muted\">({})</span>",
            esc(&s.runbook),
            esc(&s.source)
        ),
    );
    row("Run", format!("<code>{}</code>", esc(&s.run_id)));
    row("Status", state_or_run_badge(r));
    row(
        "Started by",
        format!("{} on {}", esc(&s.user), esc(&s.host)),
    );
    let estate = &r.estate;
    row(
        "Inventory",
        format!(
            "{} — driver <b>{}</b> <span class=\"muted\">({})</span>",
            esc(&estate.name),
            esc(&estate.driver),
            esc(&estate.origin)
        ),
    );
    row("Started", esc(s.started_at.as_deref().unwrap_or("—")));
    row(
        "Finished",
        esc(s.finished_at.as_deref().unwrap_or("— (not finished)")),
    );
    let total = between(s.started_at.as_deref(), s.finished_at.as_deref())
        .map(dur)
        .unwrap_or_else(|| format!("{} so far", dur(r.timeline.span)));
    row("Duration", esc(&total));
    if s.resumes > 0 {
        row("Resumed", format!("{} time(s)", s.resumes));
    }
    if let Some(reason) = &s.paused_reason {
        row("Paused because", esc(reason));
    }
    row(
        "Plan fingerprint",
        format!("<code>{}</code>", esc(&s.plan_fingerprint)),
    );
    let params = if s.params.is_empty() {
        "<span class=\"muted\">none</span>".to_string()
    } else {
        s.params
            .iter()
            .map(|(k, v)| format!("<code>{}={}</code>", esc(k), esc(&r.redactor.scrub(v))))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    row("Parameters", params);
    let counts = {
        let mut by: Vec<(StepState, usize)> = Vec::new();
        for st in &s.steps {
            match by.iter_mut().find(|(k, _)| *k == st.state) {
                Some((_, n)) => *n += 1,
                None => by.push((st.state, 1)),
            }
        }
        by.iter()
            .map(|(k, n)| format!("{} {n}", state_badge(*k)))
            .collect::<Vec<_>>()
            .join(" ")
    };
    row("Steps", format!("{} in all: {counts}", s.steps.len()));
    h.push_str("</table>\n</section>\n");
}

/// Steps grouped by their name up to the last `:` (`upgrade:ns-emea:backup-cmdb` is in
/// `upgrade:ns-emea`): how long each server's (or stage's) part of the run took, from
/// its first attempt or gate wait to its last end. Shown when names are grouped so.
fn stages_section(h: &mut String, r: &Report) {
    struct Stage {
        name: String,
        steps: usize,
        start: Duration,
        end: Duration,
        attempts: usize,
        failed: usize,
        waited: Duration,
    }
    let mut stages: Vec<Stage> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let prefix = |name: &str| name.rsplit_once(':').map(|(p, _)| p.to_string());
    let mut stage_of = |name: &str, stages: &mut Vec<Stage>| -> Option<usize> {
        let p = prefix(name)?;
        Some(*index.entry(p.clone()).or_insert_with(|| {
            stages.push(Stage {
                name: p,
                steps: 0,
                start: Duration::MAX,
                end: Duration::ZERO,
                attempts: 0,
                failed: 0,
                waited: Duration::ZERO,
            });
            stages.len() - 1
        }))
    };
    for s in &r.state.steps {
        if let Some(i) = stage_of(&s.name, &mut stages) {
            stages[i].steps += 1;
        }
    }
    for a in &r.timeline.attempts {
        if let Some(i) = stage_of(&a.step, &mut stages) {
            let st = &mut stages[i];
            st.start = st.start.min(a.start);
            st.end = st.end.max(a.end);
            st.attempts += 1;
            if matches!(
                a.outcome,
                super::timeline::AttemptEnd::Failed | super::timeline::AttemptEnd::Retried
            ) {
                st.failed += 1;
            }
        }
    }
    for w in &r.timeline.waits {
        if let Some(i) = stage_of(&w.gate, &mut stages) {
            let st = &mut stages[i];
            st.start = st.start.min(w.start);
            st.end = st.end.max(w.end);
            st.waited += w.end.saturating_sub(w.start);
        }
    }
    stages.retain(|s| s.steps >= 2);
    if stages.len() < 2 {
        return;
    }
    h.push_str("<section id=\"stages\"><h2>Stages</h2>\n<p class=\"muted\">Steps grouped by their name up to the last <code>:</code> (for the ITMS runbooks: one stage per server). Duration runs from the stage's first attempt or gate wait to its last end, waiting for people included.</p>\n<table>\n<tr><th>Stage</th><th>Steps</th><th>From</th><th>To</th><th>Duration</th><th>Waiting at gates</th><th>Attempts</th><th>Failed attempts</th></tr>\n");
    for st in &stages {
        let (from, to, took) = if st.start == Duration::MAX {
            ("—".to_string(), "—".to_string(), "not started".to_string())
        } else {
            (
                format!("+{}", dur(st.start)),
                format!("+{}", dur(st.end)),
                dur(st.end.saturating_sub(st.start)),
            )
        };
        let _ = writeln!(
            h,
            "<tr class=\"stage\"><td><code>{}</code></td><td>{}</td><td>{from}</td><td>{to}</td><td>{took}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&st.name),
            st.steps,
            dur(st.waited),
            st.attempts,
            st.failed,
        );
    }
    h.push_str("</table>\n</section>\n");
}

fn approvals_section(h: &mut String, r: &Report) {
    h.push_str("<section id=\"approvals\"><h2>Approvals</h2>\n");
    if r.timeline.decisions.is_empty() {
        h.push_str("<p>No gate was approved or rejected in this run.</p>\n");
    } else {
        h.push_str("<table>\n<tr><th>Gate</th><th>Decision</th><th>Account</th><th>Name</th><th>Host</th><th>Time</th><th>Note</th><th>Plan fingerprint</th></tr>\n");
        let titles: std::collections::HashMap<&str, &str> = r
            .plan
            .iter()
            .filter_map(|n| Some((n.name.as_str(), n.title.as_deref()?)))
            .collect();
        for d in &r.timeline.decisions {
            let title = titles
                .get(d.gate.as_str())
                .map(|t| format!("<br><span class=\"muted\">{}</span>", esc(t)))
                .unwrap_or_default();
            let (class, word) = if d.approved {
                ("ok", "approved")
            } else {
                ("bad", "rejected")
            };
            let _ = writeln!(
                h,
                "<tr class=\"decision\"><td>{}{title}</td><td><span class=\"state {class}\">{word}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                esc(&d.gate),
                d.account.as_deref().map(esc).unwrap_or_else(|| "<span class=\"muted\">not recorded</span>".into()),
                esc(&d.by),
                esc(&d.host),
                esc(&d.at),
                esc(&r.redactor.scrub(d.note.as_deref().unwrap_or(""))),
                esc(&d.plan_fingerprint),
            );
        }
        h.push_str("</table>\n");
    }
    let waiting: Vec<&str> = r
        .state
        .steps
        .iter()
        .filter(|s| s.state == StepState::AwaitingApproval)
        .map(|s| s.name.as_str())
        .collect();
    if !waiting.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"note\">Still waiting for approval: {}.</p>",
            waiting
                .iter()
                .map(|g| format!("<code>{}</code>", esc(g)))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    h.push_str("</section>\n");
}

fn steps_section(h: &mut String, r: &Report) {
    h.push_str("<section id=\"steps\"><h2>Steps</h2>\n<table>\n<tr><th>#</th><th>Step</th><th>Kind</th><th>State</th><th>Attempts</th><th>Duration</th><th>Error</th></tr>\n");
    for (i, s) in r.state.steps.iter().enumerate() {
        let took = between(s.started_at.as_deref(), s.finished_at.as_deref())
            .map(dur)
            .unwrap_or_default();
        let mut error = s.error.as_deref().map(esc).unwrap_or_default();
        if let Some(why) = &s.skip_reason {
            error = format!("<span class=\"muted\">skipped: {}</span>", esc(why));
        }
        if let Some(by) = &s.marked_done {
            error.push_str(&format!(
                "<span class=\"muted\">marked done by {}</span>",
                esc(by)
            ));
        }
        if s.verified {
            error.push_str("<span class=\"muted\">verified by its check probe</span>");
        }
        let log = match r.logs.get(&s.name) {
            Some(StepLogText { text, truncated }) => {
                let cut = if *truncated {
                    "<p class=\"muted\">Only the end of the log is shown; <code>waymark log</code> prints all of it.</p>"
                } else {
                    ""
                };
                format!(
                    "<details><summary>log ({} lines)</summary>{cut}<pre>{}</pre></details>",
                    text.lines().count(),
                    esc(text)
                )
            }
            None => String::new(),
        };
        let rehearsals = rehearsals_of(r, &s.name);
        let _ = writeln!(
            h,
            "<tr class=\"step\"><td>{}</td><td><code>{}</code>{log}{rehearsals}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{error}</td></tr>",
            i + 1,
            esc(&s.name),
            esc(s.kind.as_str()),
            state_badge(s.state),
            s.attempts,
            esc(&took),
        );
    }
    h.push_str("</table>\n</section>\n");
}

/// A gate's rehearsals (a lab playing the operator's part): when each started and ended,
/// how it ended, and what it did to the estate — the estate operations its gate's log
/// recorded between its start and its end.
fn rehearsals_of(r: &Report, gate: &str) -> String {
    let mut out = String::new();
    for h in r.timeline.rehearsals.iter().filter(|h| h.gate == gate) {
        let ended = match &h.ended_at {
            Some(end) => format!(
                ", ended {} (took {})",
                esc(end),
                esc(&between(Some(&h.started_at), Some(end))
                    .map(dur)
                    .unwrap_or_default())
            ),
            None => String::new(),
        };
        let outcome = match &h.outcome {
            RehearsalEnd::Passed => {
                "<span class=\"state ok\">passed</span> the gate then asked for its approvals"
                    .to_string()
            }
            RehearsalEnd::Failed(e) => format!(
                "<span class=\"state bad\">failed</span> {} — the gate was rejected",
                esc(e)
            ),
            RehearsalEnd::Open => "<span class=\"state unk\">did not end</span> the run stopped while it ran (a resume plays it again)".to_string(),
        };
        let log = r.logs.get(gate).map(|l| l.text.as_str()).unwrap_or("");
        let ops: Vec<String> = log
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(ts, _)| {
                *ts >= h.started_at.as_str() && h.ended_at.as_deref().is_none_or(|end| *ts <= end)
            })
            .filter_map(|(_, rest)| rest.strip_prefix("[estate] "))
            .filter(|op| op.contains(" → "))
            .map(|op| format!("<li><code>{}</code></li>", esc(op)))
            .collect();
        let changed = if ops.is_empty() {
            "<p class=\"muted\">No estate operation recorded in its log.</p>".to_string()
        } else {
            format!("<ul>{}</ul>", ops.concat())
        };
        let _ = write!(
            out,
            "<div class=\"rehearsal\"><strong>rehearsal</strong> started {}{ended}: {outcome}{changed}</div>",
            esc(&h.started_at)
        );
    }
    out
}

fn estate_section(h: &mut String, r: &Report) {
    let Some(events) = &r.estate.lab_events else {
        return;
    };
    let _ = writeln!(
        h,
        "<section id=\"estate\"><h2>Lab estate operations</h2>\n<p class=\"muted\">Every operation the rehearsal estate <code>{}</code> recorded since it was last reset, in order (runs against the same estate share this list).</p>",
        esc(&r.estate.name)
    );
    if events.is_empty() {
        h.push_str("<p>No operation recorded.</p>\n</section>\n");
        return;
    }
    h.push_str("<table>\n<tr><th>#</th><th>Operation</th><th>Server</th><th>Result</th><th>Details</th></tr>\n");
    for e in events {
        let text = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("");
        let ok = e.get("ok").and_then(|v| v.as_bool()).unwrap_or(false);
        let details: serde_json::Map<String, serde_json::Value> = e
            .as_object()
            .map(|m| {
                m.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "seq" | "op" | "server" | "ok"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        let details = if details.is_empty() {
            String::new()
        } else {
            serde_json::to_string(&details).unwrap_or_default()
        };
        let _ = writeln!(
            h,
            "<tr class=\"op\"><td>{}</td><td><code>{}</code></td><td>{}</td><td><span class=\"state {}\">{}</span></td><td><code>{}</code></td></tr>",
            e.get("seq").and_then(|v| v.as_u64()).unwrap_or(0),
            esc(text("op")),
            esc(text("server")),
            if ok { "ok" } else { "bad" },
            if ok { "ok" } else { "failed" },
            esc(&r.redactor.scrub(&details)),
        );
    }
    h.push_str("</table>\n</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esc_neutralises_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(esc("a\u{1b}[31mb"), "a\u{FFFD}[31mb");
    }
}
