//! What happened when: every attempt of every step, every stretch a gate waited, every
//! approval and rejection, every gate rehearsal, read off the journal's records in order.
//!
//! [`crate::run_state`] says where each step *ended up* and keeps only its latest
//! attempt; a report also needs the history it replaces (a failed first attempt, a gate
//! that waited across a pause and a resume). That history is a different question of
//! the same records, so it is answered here rather than by growing the state replay.

use crate::journal::record::{Event, Record};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AttemptEnd {
    /// It succeeded (or a `check` probe said it had).
    Succeeded,
    /// It failed and another attempt followed.
    Retried,
    /// It failed for good.
    Failed,
    /// No end was recorded: still running (live run) or lost in a crash or interrupt.
    Open,
}

/// One attempt of one step.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Attempt {
    /// The step.
    pub step: String,
    /// 1-based attempt number as journaled.
    pub number: u32,
    /// Offset from the run's start.
    pub start: Duration,
    /// Offset of its end record, or of the last record when none came.
    pub end: Duration,
    /// How it ended.
    pub outcome: AttemptEnd,
    /// The error of a failed attempt.
    pub error: Option<String>,
}

/// How one stretch of a gate's waiting ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitEnd {
    /// Approved (possibly one of several approvals it needs).
    Approved,
    /// Rejected.
    Rejected,
    /// The run paused (or stopped) while the gate still waited.
    Stopped,
    /// Still waiting at the last record.
    Open,
}

/// One stretch of time a gate waited for a person.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Wait {
    /// The gate.
    pub gate: String,
    /// Offset from the run's start.
    pub start: Duration,
    /// Offset of the record that ended the wait, or of the last record.
    pub end: Duration,
    /// How it ended.
    pub outcome: WaitEnd,
}

/// How a gate's rehearsal ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RehearsalEnd {
    /// It played its part; the gate then asked for its approvals.
    Passed,
    /// It failed (or ran out of time), which rejected the gate.
    Failed(String),
    /// No end was recorded: still running, or cut short by a crash or Ctrl-C (resume
    /// plays it again).
    Open,
}

/// One run of a gate's `rehearse` (a lab playing the operator's part).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rehearsal {
    /// The gate.
    pub gate: String,
    /// When it started and, if it did, ended (RFC 3339, as journaled).
    pub started_at: String,
    pub ended_at: Option<String>,
    /// Offsets from the run's start.
    pub start: Duration,
    pub end: Duration,
    /// How it ended.
    pub outcome: RehearsalEnd,
}

/// One journaled approval or rejection, with everything the journal kept about it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Decision {
    /// The gate.
    pub gate: String,
    /// Approved (else rejected).
    pub approved: bool,
    /// The display name (`--by`, else the OS user).
    pub by: String,
    /// The authenticated identity, where the journal records one.
    pub account: Option<String>,
    /// The host it was decided on.
    pub host: String,
    /// When it was journaled (RFC 3339).
    pub at: String,
    /// The approver's note.
    pub note: Option<String>,
    /// The plan fingerprint the approver saw.
    pub plan_fingerprint: String,
}

/// The run's history as offsets from its first record.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Timeline {
    /// Every attempt, in the order they started.
    pub attempts: Vec<Attempt>,
    /// Every stretch of gate waiting, in the order they began.
    pub waits: Vec<Wait>,
    /// Every approval and rejection, in journal order.
    pub decisions: Vec<Decision>,
    /// Every gate rehearsal, in the order they started.
    pub rehearsals: Vec<Rehearsal>,
    /// Offsets where the run paused, stopped or was taken up again, with what happened.
    pub marks: Vec<(Duration, String)>,
    /// Offset of the last record: the length of the drawn time axis.
    pub span: Duration,
}

/// Parse a journal timestamp; `None` for one that is not RFC 3339.
pub(crate) fn parse_ts(ts: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(ts).ok()
}

impl Timeline {
    /// Walk `records` (a whole journal, in order) into a timeline.
    pub(crate) fn from_records(records: &[Record]) -> Timeline {
        let origin = records.first().and_then(|r| parse_ts(&r.ts));
        // A timestamp that does not parse, or lies before the start (a clock stepped
        // back), is drawn at the last good offset rather than dropped or panicking.
        let mut last = Duration::ZERO;
        let mut t = Timeline::default();
        let mut open_attempt: HashMap<String, usize> = HashMap::new();
        let mut open_wait: HashMap<String, usize> = HashMap::new();
        let mut open_rehearsal: HashMap<String, usize> = HashMap::new();
        for r in records {
            let at = match (origin, parse_ts(&r.ts)) {
                (Some(o), Some(ts)) => ts.duration_since(o).unwrap_or(last).max(last),
                _ => last,
            };
            last = at;
            match &r.event {
                Event::StepStarted { step, attempt } => {
                    if let Some(i) = open_attempt.remove(step) {
                        t.attempts[i].end = at;
                    }
                    open_attempt.insert(step.clone(), t.attempts.len());
                    t.attempts.push(Attempt {
                        step: step.clone(),
                        number: *attempt,
                        start: at,
                        end: at,
                        outcome: AttemptEnd::Open,
                        error: None,
                    });
                }
                Event::StepSucceeded { step, .. } => {
                    if let Some(i) = open_attempt.remove(step) {
                        t.attempts[i].end = at;
                        t.attempts[i].outcome = AttemptEnd::Succeeded;
                    }
                }
                Event::StepFailed {
                    step,
                    error,
                    will_retry,
                    ..
                } => {
                    if let Some(i) = open_attempt.remove(step) {
                        let a = &mut t.attempts[i];
                        a.end = at;
                        a.outcome = if *will_retry {
                            AttemptEnd::Retried
                        } else {
                            AttemptEnd::Failed
                        };
                        a.error = Some(error.clone());
                    }
                }
                Event::StepUnknown { step, .. } => {
                    // Its end was never recorded; it is drawn up to the resume that found it.
                    if let Some(i) = open_attempt.remove(step) {
                        t.attempts[i].end = at;
                    }
                }
                // Written again after an approval that is not yet enough: one stretch.
                Event::GateWaiting { gate } if !open_wait.contains_key(gate) => {
                    open_wait.insert(gate.clone(), t.waits.len());
                    t.waits.push(Wait {
                        gate: gate.clone(),
                        start: at,
                        end: at,
                        outcome: WaitEnd::Open,
                    });
                }
                Event::GateApproved { gate, .. } | Event::GateRejected { gate, .. } => {
                    let approved = matches!(r.event, Event::GateApproved { .. });
                    if let Some(i) = open_wait.remove(gate) {
                        t.waits[i].end = at;
                        t.waits[i].outcome = if approved {
                            WaitEnd::Approved
                        } else {
                            WaitEnd::Rejected
                        };
                    }
                    t.decisions.push(decision(r, approved));
                }
                Event::RehearsalStarted { gate, .. } => {
                    // One cut short earlier stays open (its end was never recorded) and is
                    // drawn up to this one.
                    if let Some(i) = open_rehearsal.insert(gate.clone(), t.rehearsals.len()) {
                        t.rehearsals[i].end = at;
                    }
                    t.rehearsals.push(Rehearsal {
                        gate: gate.clone(),
                        started_at: r.ts.clone(),
                        ended_at: None,
                        start: at,
                        end: at,
                        outcome: RehearsalEnd::Open,
                    });
                }
                Event::RehearsalEnded { gate, error, .. } => {
                    if let Some(i) = open_rehearsal.remove(gate) {
                        let h = &mut t.rehearsals[i];
                        h.end = at;
                        h.ended_at = Some(r.ts.clone());
                        h.outcome = match error {
                            Some(e) => RehearsalEnd::Failed(e.clone()),
                            None => RehearsalEnd::Passed,
                        };
                    }
                }
                Event::RunPaused { reason, .. } => {
                    for (_, i) in open_wait.drain() {
                        t.waits[i].end = at;
                        t.waits[i].outcome = WaitEnd::Stopped;
                    }
                    t.marks.push((at, format!("paused: {reason}")));
                }
                Event::RunResumed { user, .. } => {
                    t.marks.push((at, format!("resumed by {user}")));
                }
                Event::RunFinished { status } => {
                    for (_, i) in open_wait.drain() {
                        t.waits[i].end = at;
                        t.waits[i].outcome = WaitEnd::Stopped;
                    }
                    for (_, i) in open_attempt.drain() {
                        t.attempts[i].end = at;
                    }
                    let status = serde_json::to_value(status)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default();
                    t.marks.push((at, status));
                }
                _ => {}
            }
        }
        for (_, i) in open_attempt {
            t.attempts[i].end = last;
        }
        for (_, i) in open_wait {
            t.waits[i].end = last;
        }
        // Never ended: still running, or cut short (a resume started it again, above).
        for (_, i) in open_rehearsal {
            t.rehearsals[i].end = last;
        }
        t.span = last;
        t
    }
}

/// The decision `r` records, with any field a newer journal adds (such as the approver's
/// authenticated `account`) read from its serialized form, so older and newer journals
/// both render.
fn decision(r: &Record, approved: bool) -> Decision {
    let v = serde_json::to_value(&r.event).unwrap_or_default();
    let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(String::from);
    Decision {
        gate: text("gate").unwrap_or_default(),
        approved,
        by: text("by").unwrap_or_default(),
        account: text("account"),
        host: text("host").unwrap_or_default(),
        // When the approver gave it, which for an advance approval is before it was
        // journaled; older journals only have the journal time.
        at: text("at").unwrap_or_else(|| r.ts.clone()),
        note: text("note"),
        plan_fingerprint: text("plan_fingerprint").unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn rec(seq: u64, ms: u64, event: Event) -> Record {
        let ts =
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_millis(ms);
        Record {
            seq,
            ts: humantime::format_rfc3339_millis(ts).to_string(),
            event,
        }
    }

    #[test]
    fn a_retried_step_has_two_attempts_and_the_first_failed() {
        let records = vec![
            rec(1, 0, Event::sample_run_started(&[("a", "step")])),
            rec(
                2,
                100,
                Event::StepStarted {
                    step: "a".into(),
                    attempt: 1,
                },
            ),
            rec(
                3,
                300,
                Event::StepFailed {
                    step: "a".into(),
                    attempt: 1,
                    error: "boom".into(),
                    will_retry: true,
                },
            ),
            rec(
                4,
                1300,
                Event::StepStarted {
                    step: "a".into(),
                    attempt: 2,
                },
            ),
            rec(
                5,
                1500,
                Event::StepSucceeded {
                    step: "a".into(),
                    attempt: 2,
                    output: serde_json::Value::Null,
                    verified: false,
                },
            ),
        ];
        let t = Timeline::from_records(&records);
        assert_eq!(t.attempts.len(), 2);
        assert_eq!(t.attempts[0].outcome, AttemptEnd::Retried);
        assert_eq!(t.attempts[0].error.as_deref(), Some("boom"));
        assert_eq!(t.attempts[0].start, Duration::from_millis(100));
        assert_eq!(t.attempts[0].end, Duration::from_millis(300));
        assert_eq!(t.attempts[1].outcome, AttemptEnd::Succeeded);
        assert_eq!(t.span, Duration::from_millis(1500));
    }

    #[test]
    fn a_gate_wait_ends_at_a_pause_and_starts_again_after_resume() {
        let records = vec![
            rec(1, 0, Event::sample_run_started(&[("g", "gate")])),
            rec(2, 10, Event::GateWaiting { gate: "g".into() }),
            rec(
                3,
                20,
                Event::RunPaused {
                    reason: "gate".into(),
                    waiting_on: vec!["g".into()],
                },
            ),
            rec(
                4,
                5000,
                Event::RunResumed {
                    user: "bob".into(),
                    host: "h".into(),
                    plan_fingerprint: "fp".into(),
                    changes: vec![],
                    gates: vec![],
                },
            ),
            rec(5, 5010, Event::GateWaiting { gate: "g".into() }),
            rec(
                6,
                5020,
                Event::GateApproved {
                    gate: "g".into(),
                    by: "carol".into(),
                    host: "h2".into(),
                    note: Some("ok".into()),
                    plan_fingerprint: "fp".into(),
                    account: None,
                    at: None,
                },
            ),
        ];
        let t = Timeline::from_records(&records);
        assert_eq!(t.waits.len(), 2);
        assert_eq!(t.waits[0].outcome, WaitEnd::Stopped);
        assert_eq!(t.waits[1].outcome, WaitEnd::Approved);
        assert_eq!(t.waits[1].start, Duration::from_millis(5010));
        assert_eq!(t.decisions.len(), 1);
        let d = &t.decisions[0];
        assert_eq!((d.by.as_str(), d.host.as_str()), ("carol", "h2"));
        assert_eq!(d.note.as_deref(), Some("ok"));
        assert_eq!(d.account, None);
        assert_eq!(t.marks.len(), 2);
    }

    #[test]
    fn bad_timestamps_do_not_panic_or_go_backwards() {
        let mut records = vec![
            rec(1, 1000, Event::sample_run_started(&[("a", "step")])),
            rec(
                2,
                0,
                Event::StepStarted {
                    step: "a".into(),
                    attempt: 1,
                },
            ),
        ];
        records.push(Record {
            seq: 3,
            ts: "not a time".into(),
            event: Event::StepSucceeded {
                step: "a".into(),
                attempt: 1,
                output: serde_json::Value::Null,
                verified: false,
            },
        });
        let t = Timeline::from_records(&records);
        assert_eq!(t.attempts[0].start, Duration::ZERO);
        assert_eq!(t.attempts[0].end, Duration::ZERO);
    }

    #[test]
    fn a_rehearsal_cut_short_stays_open_and_the_next_one_ends() {
        let started = |seq, ms| {
            rec(
                seq,
                ms,
                Event::RehearsalStarted {
                    gate: "g".into(),
                    attempt: 1,
                },
            )
        };
        let ended = |seq, ms, error: Option<&str>| {
            rec(
                seq,
                ms,
                Event::RehearsalEnded {
                    gate: "g".into(),
                    attempt: 1,
                    error: error.map(String::from),
                },
            )
        };
        let records = vec![
            rec(1, 0, Event::sample_run_started(&[("g", "gate")])),
            started(2, 100),
            // A crash, then a resume plays it again: once it passes, once it fails.
            started(3, 500),
            ended(4, 700, None),
            started(5, 900),
            ended(6, 950, Some("refused")),
        ];
        let t = Timeline::from_records(&records);
        let got: Vec<(u64, u64, Option<&str>, &RehearsalEnd)> = t
            .rehearsals
            .iter()
            .map(|h| {
                (
                    h.start.as_millis() as u64,
                    h.end.as_millis() as u64,
                    h.ended_at.as_deref().map(|e| &e[20..23]),
                    &h.outcome,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (100, 500, None, &RehearsalEnd::Open),
                (500, 700, Some("700"), &RehearsalEnd::Passed),
                (
                    900,
                    950,
                    Some("950"),
                    &RehearsalEnd::Failed("refused".into())
                ),
            ]
        );
    }
}
