//! The `status --json` document: the contract's shape for a run and its steps, with the
//! fields this wave added (accounts, gate declarations, rejections, undo attempts).

use super::RunState;
use serde_json::{json, Value};

impl RunState {
    /// The `status --json` document (SPEC §3).
    pub(crate) fn to_status_json(&self) -> Value {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|s| {
                let approvals: Vec<Value> = s
                    .approvals
                    .iter()
                    .map(|a| {
                        json!({ "by": a.by, "account": a.account, "host": a.host, "at": a.at, "note": a.note })
                    })
                    .collect();
                let mut step = json!({
                    "name": s.name,
                    "kind": s.kind.as_str(),
                    "state": s.state.as_str(),
                    "attempts": s.attempts,
                    "started_at": s.started_at,
                    "finished_at": s.finished_at,
                    "error": s.error,
                    "output": s.output.clone().unwrap_or(Value::Null),
                    "approvals": approvals,
                });
                if let Some(g) = &s.gate {
                    step["title"] = json!(g.title);
                    step["instructions"] = json!(g.instructions);
                    step["approvals_needed"] = json!(g.approvals.max(1));
                    step["separate_approver"] = json!(g.separate_approver);
                }
                if !s.rejections.is_empty() {
                    step["rejections"] = s
                        .rejections
                        .iter()
                        .map(|a| json!({ "by": a.by, "account": a.account, "host": a.host, "at": a.at, "note": a.note }))
                        .collect();
                }
                // Only rolled-back runs have them; other steps keep the contract's shape.
                if !s.undo_attempts.is_empty() {
                    step["undo_attempts"] = s
                        .undo_attempts
                        .iter()
                        .map(|u| {
                            json!({
                                "at": u.at,
                                "outcome": if u.error.is_some() { "failed" } else { "succeeded" },
                                "error": u.error,
                            })
                        })
                        .collect();
                }
                step
            })
            .collect();
        json!({
            "run_id": self.run_id,
            "runbook": self.runbook,
            "status": self.status.as_str(),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "steps": steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::Journal;
    use crate::journal::record::Event;
    use serde_json::{json, Value};

    #[test]
    fn status_json_has_the_spec_shape() {
        let mut j = Journal::start(&[("a", "step"), ("g", "gate")]);
        j.started_step("a", 1).succeeded("a", 1);
        j.push(Event::GateWaiting { gate: "g".into() });
        j.approved("g", "bob").gate_passed("g");
        let doc = j.replay(true).to_status_json();
        let keys = |v: &Value| -> Vec<String> {
            let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(
            keys(&doc),
            [
                "finished_at",
                "run_id",
                "runbook",
                "started_at",
                "status",
                "steps"
            ]
        );
        assert_eq!(doc["status"], "running");
        assert_eq!(doc["finished_at"], Value::Null);
        let steps = doc["steps"].as_array().unwrap();
        assert_eq!(
            keys(&steps[0]),
            [
                "approvals",
                "attempts",
                "error",
                "finished_at",
                "kind",
                "name",
                "output",
                "started_at",
                "state"
            ]
        );
        assert_eq!(steps[0]["state"], "succeeded");
        assert_eq!(steps[0]["attempts"], 1);
        assert_eq!(steps[0]["output"], json!({ "step": "a" }));
        assert_eq!(steps[1]["kind"], "gate");
        assert_eq!(steps[1]["state"], "approved");
        let approval = &steps[1]["approvals"][0];
        // SPEC §9 extends the §3 shape with the account and host.
        assert_eq!(keys(approval), ["account", "at", "by", "host", "note"]);
        assert_eq!(approval["by"], "bob");
        assert_eq!(approval["account"], "bob-account");
    }
}
