//! `waymark report`: one self-contained HTML file about a run, for the change record.
//!
//! An upgrade night ends with a document for auditors and change boards: what ran,
//! when, how long, who approved which gate, what failed and what was retried. The
//! report is built only from what the run left on disk — the journal (replayed by
//! [`crate::run_state`] for final states and walked by [`timeline`] for the history),
//! the step logs, and for a lab rehearsal the lab estate's recorded operations — so it
//! can be produced at any time, for a live, paused or finished run, on any host that
//! sees the state directory.
//!
//! [`html`] assembles the page, [`svg_plan`] and [`gantt`] draw its two pictures.

pub(crate) mod gantt;
pub(crate) mod html;
pub(crate) mod svg_plan;
pub(crate) mod timeline;

use crate::estate::inventory::Driver;
use crate::journal::record::Event;
use crate::journal::JournalError;
use crate::redact::{Redactor, MIN_SECRET_CHARS};
use crate::run_state::{RunState, StepState};
use crate::state::{Run, StepLogBytes, Store};
use std::collections::HashMap;
use std::path::Path;
use timeline::Timeline;

/// The end of a step log kept in the report: enough for any failure's story, while a
/// run of chatty steps still gives a file a browser opens quickly.
pub(crate) const LOG_TAIL_BYTES: usize = 256 * 1024;

/// One node of the drawn plan.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlanNode {
    /// Step or gate name.
    pub name: String,
    /// `"step"` or `"gate"`.
    pub kind: String,
    /// Its final state.
    pub state: StepState,
    /// Indices (in the node list) of the steps it runs after.
    pub after: Vec<usize>,
    /// A gate's title, where the journal recorded it.
    pub title: Option<String>,
}

/// A step's log as shown: its end when it is long.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StepLogText {
    /// The (already redacted) text.
    pub text: String,
    /// Earlier lines were left out.
    pub truncated: bool,
}

/// The estate a run used, as far as the state directory still tells.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EstateView {
    /// The estate's name (or the inventory path, when it cannot be read any more).
    pub name: String,
    /// `lab`, `windows`, or why it is unknown.
    pub driver: String,
    /// Where the inventory came from.
    pub origin: String,
    /// A lab estate's recorded operations, in order.
    pub lab_events: Option<Vec<serde_json::Value>>,
}

/// Everything the page shows.
#[derive(Debug, Clone)]
pub(crate) struct Report {
    /// Final states.
    pub state: RunState,
    /// History.
    pub timeline: Timeline,
    /// The plan as journaled at start, in declaration order.
    pub plan: Vec<PlanNode>,
    /// Step logs by step name.
    pub logs: HashMap<String, StepLogText>,
    /// The estate.
    pub estate: EstateView,
    /// How many journal records the report was built from.
    pub records: usize,
    /// When the report was made.
    pub generated_at: String,
    /// Scrubs any secret value the reporting process knows of (from the environment)
    /// out of text that did not pass the run's redactor: parameters, notes, lab details.
    pub redactor: Redactor,
}

/// Why a report could not be made.
#[derive(Debug)]
pub(crate) struct ReportError(pub String);

impl std::fmt::Display for ReportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<JournalError> for ReportError {
    fn from(e: JournalError) -> Self {
        ReportError(e.to_string())
    }
}

/// The nodes of the plan journaled at the run's start, with their final states; steps
/// first seen later (added on resume) follow without edges.
pub(crate) fn plan_nodes(records: &[crate::journal::Record], state: &RunState) -> Vec<PlanNode> {
    let planned = records.iter().find_map(|r| match &r.event {
        Event::RunStarted { steps, .. } => Some(steps),
        _ => None,
    });
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut nodes: Vec<PlanNode> = Vec::new();
    let mut afters: Vec<&[String]> = Vec::new();
    for p in planned.into_iter().flatten() {
        if index.contains_key(p.name.as_str()) {
            continue;
        }
        index.insert(&p.name, nodes.len());
        nodes.push(PlanNode {
            name: p.name.clone(),
            kind: p.kind.clone(),
            state: StepState::Pending,
            after: Vec::new(),
            title: p.gate.as_ref().and_then(|g| g.title.clone()),
        });
        afters.push(&p.after);
    }
    for (node, after) in nodes.iter_mut().zip(afters) {
        node.after = after
            .iter()
            .filter_map(|a| index.get(a.as_str()).copied())
            .collect();
    }
    for s in &state.steps {
        match index.get(s.name.as_str()) {
            Some(&i) => nodes[i].state = s.state,
            None => nodes.push(PlanNode {
                name: s.name.clone(),
                kind: s.kind.as_str().to_string(),
                state: s.state,
                after: Vec::new(),
                title: None,
            }),
        }
    }
    nodes
}

/// The last [`LOG_TAIL_BYTES`] of a step's log (its rotated generation first).
fn log_tail(log: StepLogBytes) -> Option<StepLogText> {
    if log.current.is_none() && log.rotated.is_empty() {
        return None;
    }
    let mut bytes = log.rotated;
    bytes.extend(log.current.unwrap_or_default());
    let truncated = bytes.len() > LOG_TAIL_BYTES;
    if truncated {
        let cut = bytes.len() - LOG_TAIL_BYTES;
        // Start at a line boundary so the first shown line is whole.
        let start = bytes[cut..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(cut, |p| cut + p + 1);
        bytes.drain(..start);
    }
    Some(StepLogText {
        text: String::from_utf8_lossy(&bytes).into_owned(),
        truncated,
    })
}

/// What the state tells about the estate of a run with `inventory`.
pub(crate) fn estate_view(inventory: Option<&str>, store: &Store) -> EstateView {
    let origin = inventory.unwrap_or("the built-in demo estate").to_string();
    match crate::estate::load_inventory(inventory.map(Path::new)) {
        Ok(inv) => {
            let driver = inv.driver.map_or("none", Driver::as_str).to_string();
            let lab_events = (inv.driver == Some(Driver::Lab)).then(|| {
                store
                    .lab(&inv.name)
                    .read_base()
                    .ok()
                    .flatten()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                    .and_then(|v| v.get("events").and_then(|e| e.as_array()).cloned())
                    .unwrap_or_default()
            });
            EstateView {
                name: inv.name,
                driver,
                origin,
                lab_events,
            }
        }
        Err(e) => EstateView {
            name: origin.clone(),
            driver: format!(
                "unknown (the inventory cannot be read now: {})",
                e.to_string().lines().next().unwrap_or("")
            ),
            origin,
            lab_events: None,
        },
    }
}

/// A redactor knowing every secret value this process's environment holds
/// (`WAYMARK_SECRET_*`), the ones a run started from this shell would have used.
pub(crate) fn env_redactor() -> Redactor {
    let r = Redactor::new();
    for (k, v) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("WAYMARK_SECRET_") {
            // secret() refuses shorter values; scrubbing one would garble the page.
            if let Some(v) = v.to_str().filter(|v| v.chars().count() >= MIN_SECRET_CHARS) {
                r.add(v);
            }
        }
    }
    r
}

/// Gather everything about `run`.
pub(crate) fn build(run: &Run) -> Result<Report, ReportError> {
    let contents = run.read_journal()?;
    let state = RunState::replay(&contents.records, run.is_held());
    let timeline = Timeline::from_records(&contents.records);
    let plan = plan_nodes(&contents.records, &state);
    let names: Vec<String> = state.steps.iter().map(|s| s.name.clone()).collect();
    let logs = run
        .read_step_logs(&names)
        .into_iter()
        .zip(&names)
        .filter_map(|(log, name)| log_tail(log).map(|l| (name.clone(), l)))
        .collect();
    let estate = estate_view(state.inventory.as_deref(), &run.store());
    Ok(Report {
        records: contents.records.len(),
        state,
        timeline,
        plan,
        logs,
        estate,
        generated_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        redactor: env_redactor(),
    })
}

/// The report as one HTML document.
pub(crate) fn render(report: &Report) -> String {
    html::page(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::{PlannedStep, Record};

    fn rec(seq: u64, ms: u64, event: Event) -> Record {
        let ts = std::time::SystemTime::UNIX_EPOCH
            + std::time::Duration::from_secs(1_800_000_000)
            + std::time::Duration::from_millis(ms);
        Record {
            seq,
            ts: humantime::format_rfc3339_millis(ts).to_string(),
            event,
        }
    }

    /// A run with a retried step, an approved gate whose approver wrote markup in the
    /// note, and a step that failed for good.
    fn sample() -> Report {
        let mut start = Event::sample_run_started(&[
            ("backup", "step"),
            ("<sign-off>", "gate"),
            ("upgrade", "step"),
        ]);
        if let Event::RunStarted { steps, .. } = &mut start {
            let after = |s: &mut PlannedStep, a: &str| s.after = vec![a.to_string()];
            after(&mut steps[1], "backup");
            steps[1].gate = Some(crate::journal::record::GateInfo {
                title: Some("Sign <off>".into()),
                ..Default::default()
            });
            after(&mut steps[2], "<sign-off>");
        }
        let records = vec![
            rec(1, 0, start),
            rec(
                2,
                10,
                Event::StepStarted {
                    step: "backup".into(),
                    attempt: 1,
                },
            ),
            rec(
                3,
                20,
                Event::StepFailed {
                    step: "backup".into(),
                    attempt: 1,
                    error: "transient".into(),
                    will_retry: true,
                },
            ),
            rec(
                4,
                1020,
                Event::StepStarted {
                    step: "backup".into(),
                    attempt: 2,
                },
            ),
            rec(
                5,
                1030,
                Event::StepSucceeded {
                    step: "backup".into(),
                    attempt: 2,
                    output: serde_json::Value::Null,
                    verified: false,
                },
            ),
            rec(
                6,
                1040,
                Event::GateWaiting {
                    gate: "<sign-off>".into(),
                },
            ),
            rec(
                7,
                61_040,
                Event::GateApproved {
                    gate: "<sign-off>".into(),
                    by: "Carol <cab>".into(),
                    host: "jump-1".into(),
                    note: Some("<script>alert(1)</script>".into()),
                    plan_fingerprint: "fp".into(),
                    account: None,
                    at: None,
                },
            ),
            rec(
                8,
                61_050,
                Event::StepStarted {
                    step: "upgrade".into(),
                    attempt: 1,
                },
            ),
            rec(
                9,
                62_050,
                Event::StepFailed {
                    step: "upgrade".into(),
                    attempt: 1,
                    error: "exit 1 <stderr>".into(),
                    will_retry: false,
                },
            ),
            rec(
                10,
                62_060,
                Event::RunFinished {
                    status: crate::journal::record::FinalStatus::Failed,
                },
            ),
        ];
        let state = RunState::replay(&records, false);
        let plan = plan_nodes(&records, &state);
        let mut logs = HashMap::new();
        logs.insert(
            "upgrade".to_string(),
            StepLogText {
                text: "line one\n</pre><img src=x onerror=alert(2)>\n".into(),
                truncated: false,
            },
        );
        Report {
            records: records.len(),
            timeline: Timeline::from_records(&records),
            state,
            plan,
            logs,
            estate: EstateView {
                name: "contoso".into(),
                driver: "lab".into(),
                origin: "contoso.toml".into(),
                lab_events: Some(vec![
                    serde_json::json!({"seq": 1, "op": "backup_cmdb", "server": "ns-hq", "ok": false, "error": "<injected>"}),
                ]),
            },
            generated_at: "2027-01-15T08:00:00Z".into(),
            redactor: Redactor::new(),
        }
    }

    #[test]
    fn the_page_has_every_section_and_no_external_reference() {
        let page = render(&sample());
        for id in ["run", "plan", "timeline", "approvals", "steps", "estate"] {
            assert!(
                page.contains(&format!("<section id=\"{id}\">")),
                "missing {id}"
            );
        }
        assert!(page.contains("id=\"plan-svg\"") && page.contains("id=\"gantt-svg\""));
        assert!(page.contains("@media print"));
        assert!(
            !page.contains("<script"),
            "a report must not need or carry script"
        );
        for external in ["http:", "https:", "src=\"//", "href=\"//", "url(//"] {
            assert!(!page.contains(external), "{external}");
        }
    }

    #[test]
    fn text_from_the_journal_and_logs_is_escaped() {
        let page = render(&sample());
        assert!(!page.contains("<img"), "log escaped");
        assert!(!page.contains("<sign-off>"), "step name escaped");
        assert!(!page.contains("<cab>"), "approver escaped");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("&lt;injected&gt;"));
    }

    #[test]
    fn the_audit_and_steps_tell_who_approved_and_what_was_retried() {
        let r = sample();
        let page = render(&r);
        assert_eq!(page.matches("<tr class=\"decision\">").count(), 1);
        assert!(page.contains("<td>jump-1</td>"));
        assert!(
            page.contains("<br><span class=\"muted\">Sign &lt;off&gt;</span>"),
            "gate title"
        );
        assert!(page.contains("not recorded"), "no account in this journal");
        assert_eq!(page.matches("class=\"attempt retry\"").count(), 1);
        assert_eq!(page.matches("class=\"wait-bar\"").count(), 1);
        assert!(page.contains("gate &lt;sign-off&gt; waited 1m from +1.0s, then approved"));
        // backup: succeeded after 2 attempts
        assert!(page.contains("<td><code>backup</code></td><td>step</td><td><span class=\"state ok\">succeeded</span></td><td>2</td>"));
        assert_eq!(r.plan[2].after, vec![1]);
        assert_eq!(page.matches("<tr class=\"op\">").count(), 1);
    }

    #[test]
    fn stages_group_steps_by_name_prefix_with_their_span() {
        let mut r = sample();
        // Without grouped names there is no stages table.
        assert!(!render(&r).contains("id=\"stages\""));
        for s in &mut r.state.steps {
            s.name = format!("srv-{}:{}", s.name.len() % 2, s.name);
        }
        for a in &mut r.timeline.attempts {
            a.step = format!("srv-{}:{}", a.step.len() % 2, a.step);
        }
        for w in &mut r.timeline.waits {
            w.gate = format!("srv-{}:{}", w.gate.len() % 2, w.gate);
        }
        // backup (6) and <sign-off> (10) are in srv-0, upgrade (7) alone in srv-1: one
        // stage of two steps is not worth a table.
        assert!(!render(&r).contains("id=\"stages\""));
        r.state.steps[2].name = "srv-0:upgrade".into();
        r.timeline.attempts[2].step = "srv-0:upgrade".into();
        r.state.steps.push(r.state.steps[0].clone());
        r.state.steps[3].name = "srv-1:a".into();
        r.state.steps.push(r.state.steps[0].clone());
        r.state.steps[4].name = "srv-1:b".into();
        let page = render(&r);
        assert!(page.contains("<section id=\"stages\">"), "{page}");
        // srv-0: from backup's first attempt (+10ms) to upgrade's failure (+1m2.0s),
        // a minute of it waiting at the gate, 3 attempts of which 2 failed.
        assert!(
            page.contains("<tr class=\"stage\"><td><code>srv-0</code></td><td>3</td><td>+10ms</td><td>+62.0s</td><td>62.0s</td><td>1m</td><td>3</td><td>2</td></tr>"),
            "{page}"
        );
        assert!(page.contains(
            "<td><code>srv-1</code></td><td>2</td><td>—</td><td>—</td><td>not started</td>"
        ));
    }

    #[test]
    fn parameters_and_notes_pass_the_redactor() {
        let mut r = sample();
        r.state
            .params
            .insert("token".into(), "hunter2-value".into());
        r.redactor.add("hunter2-value");
        let page = render(&r);
        assert!(!page.contains("hunter2-value"));
        assert!(page.contains("[REDACTED]"));
    }

    #[test]
    fn a_log_is_cut_to_its_end_at_a_line() {
        let line = "x".repeat(99) + "\n";
        let log = StepLogBytes {
            rotated: b"first\n".to_vec(),
            current: Some(line.repeat(LOG_TAIL_BYTES / 100 + 10).into_bytes()),
        };
        let l = log_tail(log).unwrap();
        assert!(l.truncated);
        assert!(l.text.len() <= LOG_TAIL_BYTES);
        assert!(l.text.starts_with('x') && !l.text.contains("first"));
        assert!(log_tail(StepLogBytes::default()).is_none());
    }
}
