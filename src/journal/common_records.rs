//! The records a run writes by the thousand, decoded straight into their [`Event`].
//!
//! `Event` is an internally tagged enum (`"type":"step_started"` among its fields), and
//! serde decodes those by buffering every field of the line before it knows which
//! variant to build. A resume reads every record of its run — 20,000 for 10,000 steps,
//! and a first record listing every planned step — so that buffering was most of the
//! reading. Once the reader knows the type (off the line's head), these few are decoded
//! as plain structs, field for field the variants they stand for (same names, same
//! defaults; `tests` compares both decodings); every other type takes the enum's way.

use super::record::{Event, PlannedStep};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The event of `line`, a whole journal line whose record type is `kind`, if `kind` is
/// one decoded here; `None` sends it the enum's way. Fields that are not the event's
/// (`seq`, `ts`, `type`, `crc`) are skipped.
pub(crate) fn decode(kind: &str, line: &[u8]) -> Option<serde_json::Result<Event>> {
    Some(match kind {
        "step_started" => serde_json::from_slice::<StepStarted>(line).map(|r| Event::StepStarted {
            step: r.step,
            attempt: r.attempt,
        }),
        "step_succeeded" => {
            serde_json::from_slice::<StepSucceeded>(line).map(|r| Event::StepSucceeded {
                step: r.step,
                attempt: r.attempt,
                output: r.output,
                verified: r.verified,
            })
        }
        "process_started" => {
            serde_json::from_slice::<ProcessStarted>(line).map(|r| Event::ProcessStarted {
                step: r.step,
                attempt: r.attempt,
                pgid: r.pgid,
                start_time: r.start_time,
                host: r.host,
            })
        }
        "run_started" => serde_json::from_slice::<RunStarted>(line).map(|r| r.into_event(|s| s)),
        _ => return None,
    })
}

/// A `run_started` line's event without its planned steps (`steps` empty; the line is
/// still checked to be JSON): what a run's summary reads, when the steps of a long run
/// are most of the line.
pub(crate) fn run_started_head(line: &[u8]) -> serde_json::Result<Event> {
    serde_json::from_slice::<RunStarted<serde::de::IgnoredAny>>(line)
        .map(|r| r.into_event(|_| Vec::new()))
}

#[derive(Deserialize)]
struct StepStarted {
    step: String,
    attempt: u32,
}

#[derive(Deserialize)]
struct StepSucceeded {
    step: String,
    attempt: u32,
    #[serde(default)]
    output: serde_json::Value,
    #[serde(default)]
    verified: bool,
}

#[derive(Deserialize)]
struct ProcessStarted {
    step: String,
    attempt: u32,
    pgid: u32,
    #[serde(default)]
    start_time: u64,
    #[serde(default)]
    host: Option<String>,
}

/// `run_started`'s fields, its planned steps as `S` (or skipped).
#[derive(Deserialize)]
struct RunStarted<S = Vec<PlannedStep>> {
    run_id: String,
    runbook: String,
    source: String,
    params: BTreeMap<String, String>,
    #[serde(default)]
    inventory: Option<String>,
    user: String,
    host: String,
    plan_fingerprint: String,
    steps: S,
    version: String,
}

impl<S> RunStarted<S> {
    /// The event, its planned steps made from what was decoded of them.
    fn into_event(self, steps: impl FnOnce(S) -> Vec<PlannedStep>) -> Event {
        Event::RunStarted {
            run_id: self.run_id,
            runbook: self.runbook,
            source: self.source,
            params: self.params,
            inventory: self.inventory,
            user: self.user,
            host: self.host,
            plan_fingerprint: self.plan_fingerprint,
            steps: steps(self.steps),
            version: self.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::{GateInfo, Record};
    use serde_json::json;

    fn both_ways(line: &str) -> (Option<Result<Event, String>>, Result<Event, String>) {
        let kind = serde_json::from_str::<serde_json::Value>(line)
            .ok()
            .and_then(|v| v["type"].as_str().map(str::to_string))
            .unwrap_or_default();
        let fast = decode(&kind, line.as_bytes()).map(|r| r.map_err(|e| e.to_string()));
        let slow = serde_json::from_str::<Record>(line)
            .map(|r| r.event)
            .map_err(|e| e.to_string());
        (fast, slow)
    }

    #[test]
    fn common_records_decode_as_the_enum_does() {
        let planned = |name: &str, gate: bool| PlannedStep {
            name: name.into(),
            kind: if gate { "gate" } else { "step" }.into(),
            fingerprint: "v2-0123456789abcdef".into(),
            after: vec!["a".into(), "b\"q".into()],
            gate: gate.then(|| GateInfo {
                title: Some("T".into()),
                instructions: "Do it.".into(),
                approvals: 2,
                separate_approver: true,
            }),
        };
        let events = [
            Event::StepStarted {
                step: "s0-0 ✓".into(),
                attempt: 3,
            },
            Event::StepSucceeded {
                step: "a".into(),
                attempt: 1,
                output: json!({"type": "run_finished", "seq": 9, "list": [1, "x"]}),
                verified: true,
            },
            Event::StepSucceeded {
                step: "a".into(),
                attempt: 1,
                output: serde_json::Value::Null,
                verified: false,
            },
            Event::ProcessStarted {
                step: "a".into(),
                attempt: 2,
                pgid: 4242,
                start_time: 99,
                host: Some("h".into()),
            },
            Event::ProcessStarted {
                step: "a".into(),
                attempt: 2,
                pgid: 4242,
                start_time: 0,
                host: None,
            },
            Event::RunStarted {
                run_id: "r".into(),
                runbook: "rb".into(),
                source: "/x/rb.rhai".into(),
                params: [("p".to_string(), "v\n".to_string())].into(),
                inventory: Some("inv.toml".into()),
                user: "u".into(),
                host: "h".into(),
                plan_fingerprint: "f".into(),
                steps: vec![planned("a", false), planned("g", true)],
                version: "0.1.0".into(),
            },
        ];
        for (i, event) in events.into_iter().enumerate() {
            let line = serde_json::to_string(&Record {
                seq: i as u64 + 1,
                ts: "2026-12-03T03:10:08.561Z".into(),
                event: event.clone(),
            })
            .unwrap();
            let (fast, slow) = both_ways(&line);
            assert_eq!(fast, Some(Ok(event.clone())), "{line}");
            assert_eq!(fast, Some(slow), "{line}");
            // A summary's first record: the same without the planned steps.
            if let Event::RunStarted { .. } = event {
                let mut head = event.clone();
                if let Event::RunStarted { steps, .. } = &mut head {
                    steps.clear();
                }
                assert_eq!(run_started_head(line.as_bytes()).unwrap(), head);
                let broken = line.replace(r#""kind":"gate""#, r#""kind":"gate"]"#);
                assert!(run_started_head(broken.as_bytes()).is_err(), "{broken}");
            }
        }
        // Lines from older journals, with fields left out that have defaults.
        for line in [
            r#"{"seq":5,"ts":"t","type":"step_succeeded","step":"a","attempt":1}"#,
            r#"{"seq":5,"ts":"t","type":"process_started","step":"a","attempt":1,"pgid":7}"#,
            r#"{"seq":1,"ts":"t","type":"run_started","run_id":"r","runbook":"b","source":"s","params":{},"user":"u","host":"h","plan_fingerprint":"f","steps":[{"name":"a","kind":"step","fingerprint":"x"}],"version":"v"}"#,
        ] {
            let (fast, slow) = both_ways(line);
            assert!(slow.is_ok(), "{line}");
            assert_eq!(fast, Some(slow), "{line}");
        }
        // What the enum refuses, this refuses.
        for line in [
            r#"{"seq":5,"ts":"t","type":"step_started","step":"a"}"#,
            r#"{"seq":5,"ts":"t","type":"step_started","step":"a","attempt":-1}"#,
            r#"{"seq":5,"ts":"t","type":"step_succeeded","step":7,"attempt":1}"#,
            r#"{"seq":1,"ts":"t","type":"run_started","run_id":"r"}"#,
        ] {
            let (fast, slow) = both_ways(line);
            assert!(slow.is_err(), "{line}");
            assert!(matches!(fast, Some(Err(_))), "{line}");
        }
        assert!(decode("gate_waiting", br#"{"type":"gate_waiting","gate":"g"}"#).is_none());
    }
}
