//! Policies on an NS: listing them by pattern and audience, disabling them before an
//! upgrade and re-enabling exactly those afterwards, and cloning upgrade policies for
//! the test group of a phased agent upgrade.

use serde_json::{json, Value};

use super::agents::propagate_agents;
use super::Ctx;
use crate::estate::itms;
use crate::estate::lab::seed::lab_guid;
use crate::estate::lab::state::{Policy, ServerState};
use crate::estate::EstateError;

fn selected_policies(c: &Ctx, me: &ServerState) -> Vec<Policy> {
    let patterns = c.args.patterns();
    let audience = c.args.str("audience").unwrap_or_else(|| "all".into());
    me.policies
        .iter()
        .filter(|p| p.group.is_none())
        .filter(|p| patterns.iter().any(|pat| itms::sql_like(&p.name, pat)))
        .filter(|p| audience == "all" || itms::classify_policy(&p.name).2 == audience)
        .cloned()
        .collect()
}

pub(super) fn list_policies(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    let list: Vec<Value> = selected_policies(c, me)
        .iter()
        .map(Policy::to_json)
        .collect();
    Ok(json!({"server": c.server, "policies": list}))
}

fn unknown_ids(c: &Ctx, me: &ServerState, ids: &[String]) -> Option<EstateError> {
    let unknown: Vec<&String> = ids
        .iter()
        .filter(|id| me.policies.iter().all(|p| !p.id.eq_ignore_ascii_case(id)))
        .collect();
    (!unknown.is_empty()).then(|| {
        c.script_error(format!(
            "no policy with id {} on {}",
            unknown
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            c.server
        ))
    })
}

pub(super) fn disable_policies(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    let chosen: Vec<Policy> = match c.args.list("ids") {
        Some(ids) => {
            if let Some(e) = unknown_ids(c, me, &ids) {
                return Err(e);
            }
            me.policies
                .iter()
                .filter(|p| ids.iter().any(|id| p.id.eq_ignore_ascii_case(id)))
                .cloned()
                .collect()
        }
        None => selected_policies(c, me),
    };
    let (was_on, was_off): (Vec<Policy>, Vec<Policy>) = chosen.into_iter().partition(|p| p.enabled);
    let ids: Vec<String> = was_on.iter().map(|p| p.id.clone()).collect();
    for p in &mut c.me_mut()?.policies {
        if ids.contains(&p.id) {
            p.enabled = false;
        }
    }
    c.note("disabled", json!(ids));
    let disabled: Vec<Value> = was_on
        .iter()
        .map(|p| {
            let mut v = p.to_json();
            v["enabled"] = json!(false);
            v
        })
        .collect();
    let already: Vec<Value> = was_off.iter().map(Policy::to_json).collect();
    Ok(json!({"server": c.server, "disabled": disabled, "already_disabled": already}))
}

pub(super) fn enable_policies(c: &mut Ctx) -> Result<Value, EstateError> {
    let ids = c.args.list("ids").unwrap_or_default();
    let me = c.me()?;
    if let Some(e) = unknown_ids(c, me, &ids) {
        return Err(e);
    }
    let me = c.me_mut()?;
    for p in &mut me.policies {
        if ids.iter().any(|id| p.id.eq_ignore_ascii_case(id)) {
            p.enabled = true;
        }
    }
    propagate_agents(me);
    Ok(json!({"server": c.server, "enabled": ids}))
}

pub(super) fn clone_policies(c: &mut Ctx) -> Result<Value, EstateError> {
    let ids = c.args.list("ids").unwrap_or_default();
    let group = c.args.str("group").unwrap_or_default();
    let server_index = c
        .inv
        .servers
        .iter()
        .position(|s| s.name == c.server)
        .unwrap_or(0);
    let me = c.me()?;
    if let Some(e) = unknown_ids(c, me, &ids) {
        return Err(e);
    }
    let test_group = me.test_group.clone().unwrap_or_default();
    if group != test_group {
        return Err(c.script_error(format!(
            "no filter named '{group}' on {} (the lab's test group is '{test_group}')",
            c.server
        )));
    }
    let sources: Vec<Policy> = me
        .policies
        .iter()
        .filter(|p| ids.iter().any(|id| p.id.eq_ignore_ascii_case(id)))
        .cloned()
        .collect();
    let first = me.policies.len() + 1;
    let me = c.me_mut()?;
    let mut clones = Vec::new();
    for (n, src) in (first..).zip(sources) {
        let clone = Policy {
            id: lab_guid(server_index, n),
            name: format!("{} (clone for {group})", src.name),
            enabled: true,
            group: Some(group.clone()),
            source: Some(src.id.clone()),
        };
        clones.push(json!({"id": clone.id, "source": src.id, "name": clone.name}));
        me.policies.push(clone);
    }
    propagate_agents(me);
    c.note("clones", json!(clones.len()));
    Ok(json!({"server": c.server, "group": group, "clones": clones}))
}
#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::estate::lab::testing::*;

    #[test]
    fn policies_disabled_then_restored_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let e = demo(dir.path());
        let before = call(&e, "list_policies", "ns-hq", json!({})).unwrap();
        let off_before: Vec<Value> = before["policies"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["enabled"] == false)
            .cloned()
            .collect();
        assert_eq!(off_before.len(), 1, "one policy starts disabled");
        let d = call(&e, "disable_policies", "ns-hq", json!({})).unwrap();
        assert_eq!(d["disabled"].as_array().unwrap().len(), 7);
        assert_eq!(d["already_disabled"].as_array().unwrap().len(), 1);
        let all_off = call(&e, "list_policies", "ns-hq", json!({})).unwrap();
        assert!(all_off["policies"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["enabled"] == false));
        call(
            &e,
            "enable_policies",
            "ns-hq",
            json!({"ids": d["disabled"].clone()}),
        )
        .unwrap();
        let after = call(&e, "list_policies", "ns-hq", json!({})).unwrap();
        assert_eq!(
            after, before,
            "exactly the previously enabled policies are back"
        );
        let ghost = "00000000-0000-4000-8000-000000000000";
        let err = call(&e, "enable_policies", "ns-hq", json!({"ids": [ghost]})).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("no policy with id {ghost}")),
            "{err}"
        );
    }
}
