//! `waymark lab show`: the state as a JSON document (`--json`) and its text rendering —
//! one line per server, then every recorded operation in order.

use serde_json::{json, Value};

use super::LabEstate;
use crate::estate::EstateError;

impl LabEstate {
    /// The `lab show --json` document.
    pub(crate) fn show_json(&self) -> Result<Value, EstateError> {
        let st = self.state()?;
        let mut v = serde_json::to_value(&st).map_err(|e| EstateError::State {
            path: self.file.path.display().to_string(),
            message: format!("cannot encode: {e}"),
        })?;
        if let Some(w) = st.stale_warning(&self.inv, self.file.reset_command()) {
            v["warning"] = json!(w);
        }
        Ok(v)
    }
}

/// Human rendering of a `lab show --json` document.
pub(crate) fn show_text(doc: &Value) -> String {
    let mut out = String::new();
    let estate = doc["estate"].as_str().unwrap_or("?");
    out.push_str(&format!("Lab estate `{estate}` (rehearsal)\n\n"));
    if let Some(w) = doc["warning"].as_str() {
        out.push_str(&format!("warning: {w}\n\n"));
    }
    out.push_str(&format!(
        "{:<18} {:<8} {:<13} {:<12} {:<10} {}\n",
        "SERVER", "ROLE", "VERSION", "REPLICATION", "LAC", "NOTES"
    ));
    if let Some(servers) = doc["servers"].as_object() {
        // A site server's agent is what its NS records of it.
        let site_agent = |site: &str| {
            servers.iter().find_map(|(ns, v)| {
                let a = &v["site_servers"][site];
                a.is_object().then(|| {
                    format!(
                        "agent {}, plug-in {} (as {ns} records it)",
                        a["agent"].as_str().unwrap_or("?"),
                        a["plugin"].as_str().unwrap_or("?")
                    )
                })
            })
        };
        for (name, s) in servers {
            let role = s["role"].as_str().unwrap_or("");
            let version = s["version"].as_str().unwrap_or("-");
            let (repl, lac) = if role == "ns" {
                (
                    if s["replication_enabled"].as_bool() == Some(true) {
                        "on"
                    } else {
                        "off"
                    },
                    if s["lac_enabled"].as_bool() == Some(true) {
                        "on"
                    } else {
                        "off"
                    },
                )
            } else {
                ("-", "-")
            };
            let mut notes = Vec::new();
            if s["replication_job_running"].as_bool() == Some(true) {
                notes.push("replication job running".to_string());
            }
            if let Some(db) = s["db_collation"].as_str() {
                if Some(db) != s["collation"].as_str() {
                    notes.push(format!("CMDB collation {db}"));
                }
            }
            if let Some(f) = s["fail"].as_object() {
                for (op, n) in f {
                    if n.as_u64().unwrap_or(0) > 0 {
                        notes.push(format!("{op} fails {n}x"));
                    }
                }
            }
            if let Some(from) = s["imported_from"].as_str() {
                notes.push(format!("imported from {from}"));
            }
            if role == "site" {
                notes.extend(site_agent(name));
            }
            out.push_str(&format!(
                "{name:<18} {role:<8} {version:<13} {repl:<12} {lac:<10} {}\n",
                notes.join("; ")
            ));
        }
    }
    let events = doc["events"].as_array().cloned().unwrap_or_default();
    out.push_str(&format!("\nEvents ({}):\n", events.len()));
    if events.is_empty() {
        out.push_str("  (none yet)\n");
    }
    for e in &events {
        let status = if e["ok"].as_bool() == Some(true) {
            "ok".to_string()
        } else {
            let first = e["error"]
                .as_str()
                .unwrap_or("failed")
                .lines()
                .next()
                .unwrap_or("")
                .to_string();
            format!("FAILED: {first}")
        };
        // Which way a replication switch went is the point of the event.
        let op = match (e["op"].as_str().unwrap_or(""), e["enabled"].as_bool()) {
            ("set_replication", Some(true)) => "set_replication (on)".to_string(),
            ("set_replication", Some(false)) => "set_replication (off)".to_string(),
            (op, _) => op.to_string(),
        };
        out.push_str(&format!(
            "  {:>4}  {:<26} {:<18} {}\n",
            e["seq"].as_u64().unwrap_or(0),
            op,
            e["server"].as_str().unwrap_or(""),
            status
        ));
    }
    out
}
#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::estate::lab::testing::*;
    use crate::estate::lab::{reset, show, show_text};

    #[test]
    fn show_renders_servers_and_events() {
        let dir = tempfile::tempdir().unwrap();
        let e = demo(dir.path());
        call(&e, "set_replication", "ns-apac", json!({"enabled": false})).unwrap();
        let doc = show(None, &crate::state::Store::dir(dir.path())).unwrap();
        assert_eq!(doc["servers"]["ns-apac"]["replication_enabled"], false);
        assert_eq!(doc["events"][0]["op"], "set_replication");
        let text = show_text(&doc);
        assert!(text.contains("Lab estate `demo-lab` (rehearsal)"), "{text}");
        assert!(text.contains("set_replication"), "{text}");
        // A site server's row says what its NS records of its agent.
        let row = text
            .lines()
            .find(|l| l.starts_with("site-lon-01 "))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(
            row.ends_with("agent 7.5, plug-in 7.5 (as ns-emea records it)"),
            "{row}"
        );
        assert!(reset(None, &crate::state::Store::dir(dir.path())).unwrap());
        assert_eq!(
            show(None, &crate::state::Store::dir(dir.path())).unwrap()["events"],
            json!([])
        );
    }
}
