//! The agents an NS manages: their versions by group, whether they can register, Legacy
//! Agent Communication, and the one rule every policy or version change goes through —
//! agents follow the enabled upgrade policies ([`propagate_agents`]).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::Ctx;
use crate::estate::itms;
use crate::estate::lab::state::{Fleet, ServerState};
use crate::estate::results::agent_rows_result;
use crate::estate::{EstateError, Problem};

pub(super) fn agent_versions(c: &mut Ctx) -> Result<Value, EstateError> {
    let group = c.args.given_str("group");
    let target = c.args.given_str("target");
    if let Some(computer) = c.args.given_str("computer") {
        return site_server_versions(c, &computer, group.as_deref(), target.as_deref());
    }
    let me = c.me()?;
    let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
    for f in me
        .agents
        .iter()
        .filter(|f| group.as_deref().is_none_or(|g| g == f.group))
    {
        *counts
            .entry(("Symantec Management Agent".into(), f.agent.clone()))
            .or_default() += f.count;
        *counts
            .entry(("Inventory Plug-in".into(), f.plugin.clone()))
            .or_default() += f.count;
    }
    let rows: Vec<(String, String, u64)> =
        counts.into_iter().map(|((a, v), n)| (a, v, n)).collect();
    Ok(agent_rows_result(c.server, rows, target.as_deref()))
}

/// One computer's rows. The lab knows individual computers only for the site servers
/// an NS manages (`ns` in the inventory); any other name reports nothing, as a CMDB
/// query for a computer that never reported would. A site server takes the NS's enabled
/// site-server upgrade policies when it is asked about (the lab's "next policy
/// refresh"), unless its `agent_upgrade_fails` fact — read from the inventory now, so
/// clearing it plays fixing the machine — holds it back.
fn site_server_versions(
    c: &mut Ctx,
    computer: &str,
    group: Option<&str>,
    target: Option<&str>,
) -> Result<Value, EstateError> {
    let stuck = c
        .inv
        .server(computer)
        .is_some_and(|s| s.lab.agent_upgrade_fails == Some(true));
    let me = c.me_mut()?;
    let rel = itms::release(me.version());
    let lac = me.lac_enabled;
    let on = |kind: &str| {
        me.policies.iter().any(|p| {
            let (k, a, aud) = itms::classify_policy(&p.name);
            p.enabled && p.group.is_none() && k == kind && a == "upgrade" && aud == "site_servers"
        })
    };
    let (agent_on, plugin_on) = (on("agent"), on("plugin"));
    let in_group = group.is_none_or(|g| g == "site_servers");
    let Some(site) = me
        .site_servers
        .iter_mut()
        .find(|(n, _)| n.eq_ignore_ascii_case(computer))
        .map(|(_, v)| v)
        .filter(|_| in_group)
    else {
        return Ok(agent_rows_result(c.server, Vec::new(), target));
    };
    let deaf = rel == itms::TARGET && itms::is_75(&site.agent) && !lac;
    if !stuck && !deaf {
        if agent_on && itms::compare_versions(&site.agent, &rel).is_lt() {
            site.agent = rel.clone();
        }
        if plugin_on && itms::compare_versions(&site.plugin, &rel).is_lt() {
            site.plugin = rel.clone();
        }
    }
    let rows = vec![
        (
            "Symantec Management Agent".to_string(),
            site.agent.clone(),
            1,
        ),
        ("Site Server Plug-in".to_string(), site.plugin.clone(), 1),
    ];
    if stuck {
        c.note("agent_upgrade_fails", json!(true));
    }
    Ok(agent_rows_result(c.server, rows, target))
}

pub(super) fn agent_registration_status(c: &mut Ctx) -> Result<Value, EstateError> {
    let me = c.me()?;
    let rel = itms::release(me.version());
    let total: u64 = me
        .agents
        .iter()
        .fold(0u64, |t, f| t.saturating_add(f.count));
    let registered: u64 = me
        .agents
        .iter()
        .filter(|f| {
            itms::release(&f.agent) == rel
                || (me.lac_enabled && rel == itms::TARGET && itms::is_75(&f.agent))
        })
        .fold(0u64, |t, f| t.saturating_add(f.count));
    Ok(json!({
        "server": c.server, "total": total, "registered": registered,
        "unregistered": total - registered, "lac_enabled": me.lac_enabled,
    }))
}

pub(super) fn set_lac(c: &mut Ctx) -> Result<Value, EstateError> {
    let enabled = c.args.bool("enabled");
    let me = c.me()?;
    if itms::release(me.version()) != itms::TARGET {
        return Err(c.refused(vec![Problem::new(
            format!(
                "`{}` runs {}; Legacy Agent Communication is a 7.6 setting",
                c.server,
                me.version()
            ),
            "upgrade or install 7.6 first",
        )]));
    }
    let me = c.me_mut()?;
    let changed = me.lac_enabled != enabled;
    me.lac_enabled = enabled;
    propagate_agents(me);
    Ok(json!({"server": c.server, "enabled": enabled, "changed": changed}))
}

/// Agents follow enabled upgrade policies: a group takes the NS's release once an
/// upgrade policy for it is enabled (clones for the test group, originals for the rest).
/// 7.5 agents only hear a 7.6 NS through Legacy Agent Communication.
pub(super) fn propagate_agents(s: &mut ServerState) {
    let rel = itms::release(s.version());
    let deaf = |agent: &str| rel == itms::TARGET && itms::is_75(agent) && !s.lac_enabled;
    let test = s.test_group.clone().unwrap_or_default();
    let on = |audience: &str, kind: &str, clones: bool| {
        s.policies.iter().any(|p| {
            let (k, a, aud) = itms::classify_policy(&p.name);
            p.enabled
                && k == kind
                && a == "upgrade"
                && if clones {
                    p.group.as_deref() == Some(test.as_str())
                } else {
                    p.group.is_none() && aud == audience
                }
        })
    };
    let flags: Vec<(bool, bool)> = s
        .agents
        .iter()
        .map(|f: &Fleet| {
            if deaf(&f.agent) {
                (false, false)
            } else if f.group == test {
                (on("", "agent", true), on("", "plugin", true))
            } else {
                (on(&f.group, "agent", false), on(&f.group, "plugin", false))
            }
        })
        .collect();
    for (f, (agent, plugin)) in s.agents.iter_mut().zip(flags) {
        if agent && itms::compare_versions(&f.agent, &rel).is_lt() {
            f.agent = rel.clone();
        }
        if plugin && itms::compare_versions(&f.plugin, &rel).is_lt() {
            f.plugin = rel.clone();
        }
    }
}
#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use crate::estate::lab::testing::*;

    #[test]
    fn phased_agent_upgrade_follows_policies() {
        let dir = tempfile::tempdir().unwrap();
        let e = lab(
            "name = \"a\"\ndriver = \"lab\"\n[[server]]\nname = \"ns-1\"\nrole = \"ns\"\nendpoints = 1000\n",
            dir.path(),
        );
        let d = call(&e, "disable_policies", "ns-1", json!({})).unwrap();
        call(&e, "ns_upgrade", "ns-1", json!({})).unwrap();
        let v = call(&e, "agent_versions", "ns-1", json!({"target": "7.6"})).unwrap();
        assert_eq!(
            v["below_target"], v["total"],
            "nothing upgrades while policies are off"
        );
        let upgrades: Vec<Value> = d["disabled"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["action"] == "upgrade" && p["audience"] == "clients")
            .cloned()
            .collect();
        call(
            &e,
            "clone_policies",
            "ns-1",
            json!({"ids": upgrades, "group": "Upgrade Test Group"}),
        )
        .unwrap();
        let t = call(
            &e,
            "agent_versions",
            "ns-1",
            json!({"group": "Upgrade Test Group", "target": "7.6"}),
        )
        .unwrap();
        assert_eq!(t["below_target"], 0);
        assert_eq!(t["total"], 40);
        let all = call(&e, "agent_versions", "ns-1", json!({"target": "7.6"})).unwrap();
        assert!(all["below_target"].as_u64().unwrap() > 0);
        call(
            &e,
            "enable_policies",
            "ns-1",
            json!({"ids": d["disabled"].clone()}),
        )
        .unwrap();
        let all = call(&e, "agent_versions", "ns-1", json!({"target": "7.6"})).unwrap();
        assert_eq!(all["below_target"], 0);
    }

    #[test]
    fn a_site_server_takes_its_ns_policies_unless_its_fact_holds_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let inv = "name = \"s\"\ndriver = \"lab\"\n[[server]]\nname = \"ns-1\"\nrole = \"ns\"\n\
                   [[server]]\nname = \"pkg-1\"\nrole = \"site\"\n\
                   [[server]]\nname = \"pkg-2\"\nrole = \"site\"\n[server.lab]\nagent_upgrade_fails = true\n";
        let e = lab(inv, dir.path());
        let look = |site: &str| {
            call(
                &e,
                "agent_versions",
                "ns-1",
                json!({"computer": site, "target": "7.6"}),
            )
            .unwrap()
        };
        call(&e, "disable_policies", "ns-1", json!({})).unwrap();
        call(&e, "ns_upgrade", "ns-1", json!({})).unwrap();
        call(&e, "set_lac", "ns-1", json!({"enabled": true})).unwrap();
        assert_eq!(look("pkg-1")["below_target"], 2, "policies still off");
        let site: Vec<String> = call(
            &e,
            "list_policies",
            "ns-1",
            json!({"audience": "site_servers"}),
        )
        .unwrap()["policies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect();
        call(&e, "enable_policies", "ns-1", json!({"ids": site})).unwrap();
        let ok = look("PKG-1");
        assert_eq!(
            (ok["total"].as_u64(), ok["below_target"].as_u64()),
            (Some(2), Some(0))
        );
        let stuck = look("pkg-2");
        assert_eq!(stuck["below_target"], 2, "{stuck}");
        // A computer the NS does not manage reports nothing, as the CMDB would.
        assert_eq!(look("ws-9")["total"], 0);
        assert_eq!(events(&e).last().unwrap()["computer"], "ws-9");
    }
}
