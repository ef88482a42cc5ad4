//! References between servers: each NS's `parent` names another NS, the parents form
//! a tree (every cycle reported once, in order), and `sql` names a SQL host the driver
//! can reach.

use std::collections::{HashMap, HashSet};

use toml::Spanned;

use super::super::error::Collector;
use super::super::raw::RawServer;
use super::super::server::{Driver, Role, Server};
use crate::diagnostic::did_you_mean;
use crate::estate::names::check_instance_name;

/// Check the references of `servers` (validated one by one from `raw`, in order).
pub(super) fn check(
    servers: &[Server],
    raw: &[Spanned<RawServer>],
    driver: Option<Driver>,
    c: &mut Collector<'_>,
) {
    let names = Names::of(servers);
    for (s, rs) in servers.iter().zip(raw) {
        let r = rs.get_ref();
        if !s.is_ns() {
            continue;
        }
        if let Some(p) = &r.parent {
            parent(s, p, servers, &names, c);
        }
        if let Some(q) = &r.sql {
            sql_ref(s, q, &names.all, &names.sql, driver, c);
        }
    }
    cycles(servers, raw, &names.ns, c);
}

/// Each site server's `ns` names an NS of the inventory; without one it is managed by
/// the inventory's only NS. With several NSs an ITMS estate (one with a driver) must say
/// which: the agents runbook verifies each site server against its own NS.
pub(super) fn site_servers(
    servers: &mut [Server],
    raw: &[Spanned<RawServer>],
    driver: Option<Driver>,
    c: &mut Collector<'_>,
) {
    let ns: Vec<String> = servers
        .iter()
        .filter(|s| s.is_ns())
        .map(|s| s.name.clone())
        .collect();
    for (s, rs) in servers.iter_mut().zip(raw) {
        if s.role != Some(Role::Site) {
            continue;
        }
        let r = rs.get_ref();
        match &r.ns {
            Some(n) if !ns.contains(n.get_ref()) => {
                let help = match did_you_mean(n.get_ref(), ns.iter().map(String::as_str)) {
                    Some(sug) => format!("did you mean `{sug}`?"),
                    None => format!("`ns` is one of: {}", ns.join(", ")),
                };
                c.at(
                    n.span().start,
                    format!(
                        "site server `{}` names ns `{}`, which is not an NS in this inventory",
                        s.name,
                        n.get_ref().escape_debug()
                    ),
                    Some(help),
                );
            }
            Some(_) => {}
            None if ns.len() == 1 => s.ns = Some(ns[0].clone()),
            None if ns.len() > 1 && driver.is_some() => c.at(
                r.name.span().start,
                format!(
                    "site server `{}` has no `ns`, and this inventory has {} NSs",
                    s.name,
                    ns.len()
                ),
                Some(format!(
                    "add ns = \"NAME\": the NS that manages it, one of {}",
                    ns.join(", ")
                )),
            ),
            None => {}
        }
    }
}

/// The names of the servers, by what they may be referred to as.
struct Names<'a> {
    ns: Vec<&'a str>,
    all: Vec<&'a str>,
    sql: Vec<&'a str>,
}

impl<'a> Names<'a> {
    fn of(servers: &'a [Server]) -> Self {
        let with_role = |role: Role| {
            servers
                .iter()
                .filter(|s| s.role == Some(role))
                .map(|s| s.name.as_str())
                .collect()
        };
        Names {
            ns: with_role(Role::Ns),
            all: servers.iter().map(|s| s.name.as_str()).collect(),
            sql: with_role(Role::Sql),
        }
    }
}

/// `parent` of NS `s` names another NS of the inventory.
fn parent(
    s: &Server,
    p: &Spanned<String>,
    servers: &[Server],
    names: &Names<'_>,
    c: &mut Collector<'_>,
) {
    let ns_names = &names.ns;
    let pn = p.get_ref();
    if pn == &s.name {
        c.at(
            p.span().start,
            format!("NS `{}` names itself as its parent", s.name),
            Some("remove `parent` from the top of the hierarchy".into()),
        );
    } else if !ns_names.contains(&pn.as_str()) {
        let what = match servers.iter().find(|o| &o.name == pn) {
            Some(o) => format!("which is {}, not an NS", o.describe_role()),
            None => "which is not an NS in this inventory".into(),
        };
        let help = match did_you_mean(pn, ns_names.iter().copied()) {
            Some(sug) => format!("did you mean `{sug}`?"),
            None if ns_names.len() > 1 => format!(
                "parent must be one of: {}",
                ns_names
                    .iter()
                    .filter(|n| **n != s.name)
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => {
                "add the parent NS as a [[server]] with role = \"ns\", or remove `parent`".into()
            }
        };
        c.at(
            p.span().start,
            format!(
                "server `{}` names parent `{}`, {what}",
                s.name,
                pn.escape_debug()
            ),
            Some(help),
        );
    }
}

/// Follow parents from every NS; a walk that meets itself is a cycle. Each is reported
/// once, at the `parent` of its alphabetically first member.
fn cycles(
    servers: &[Server],
    raw: &[Spanned<RawServer>],
    ns_names: &[&str],
    c: &mut Collector<'_>,
) {
    let parent_of: HashMap<&str, &str> = servers
        .iter()
        .filter(|s| s.is_ns())
        .filter_map(|s| {
            let p = s.parent.as_deref()?;
            (p != s.name && ns_names.contains(&p)).then_some((s.name.as_str(), p))
        })
        .collect();
    let mut reported: HashSet<Vec<&str>> = HashSet::new();
    for (s, rs) in servers.iter().zip(raw) {
        let mut path: Vec<&str> = vec![s.name.as_str()];
        let mut cur = s.name.as_str();
        while let Some(&p) = parent_of.get(cur) {
            if let Some(pos) = path.iter().position(|n| *n == p) {
                let mut cycle: Vec<&str> = path[pos..].to_vec();
                let min = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, n)| **n)
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                cycle.rotate_left(min);
                if cycle[0] == s.name && reported.insert(cycle.clone()) {
                    let mut shown = cycle.clone();
                    shown.push(cycle[0]);
                    let span = rs
                        .get_ref()
                        .parent
                        .as_ref()
                        .map(|p| p.span().start)
                        .unwrap_or(0);
                    c.at(
                        span,
                        format!("the NS hierarchy has a cycle: {}", shown.join(" → ")),
                        Some(
                            "a hierarchy is a tree: remove `parent` from the server at its top"
                                .into(),
                        ),
                    );
                }
                break;
            }
            path.push(p);
            cur = p;
        }
    }
}

/// `sql` of an NS: a sql server, the NS itself, or (outside the windows driver) any
/// instance the lab can simulate.
fn sql_ref(
    s: &Server,
    q: &Spanned<String>,
    all_names: &[&str],
    sql_names: &[&str],
    driver: Option<Driver>,
    c: &mut Collector<'_>,
) {
    let text = q.get_ref();
    let at = q.span().start;
    // `sql` names the SQL Server instance (docs/estate-ops.md): the lab simulates it from
    // the NS's own facts, so it need not be a [[server]]. The windows driver runs the CMDB
    // T-SQL on that host through its transport, so there it must be one.
    let unlisted_ok = driver != Some(Driver::Windows);
    let windows_reason = "the windows driver runs the CMDB's T-SQL on the SQL host through that server's transport, so the host must be a [[server]] of the inventory";
    if let Some((host, inst)) = text.split_once('\\') {
        if let Err(m) = check_instance_name(inst) {
            c.at(
                at,
                format!("NS `{}`: {m}", s.name),
                Some("write sql = \"HOST\\\\INSTANCE\" with the instance's real name".into()),
            );
        }
        if !all_names.contains(&host) && !unlisted_ok {
            let help = match did_you_mean(host, all_names.iter().copied()) {
                Some(sug) => format!("did you mean `{sug}\\{inst}`?"),
                None => format!("add `{host}` as a [[server]] (role = \"sql\")"),
            };
            c.at(
                at,
                format!(
                    "NS `{}` names SQL instance `{}`, whose host `{}` is not in this inventory: {windows_reason}",
                    s.name,
                    text.escape_debug(),
                    host.escape_debug()
                ),
                Some(help),
            );
        }
        return;
    }
    // A plain name: a sql server, or the NS itself (SQL on the same box).
    if sql_names.contains(&text.as_str()) || text == &s.name {
        return;
    }
    let what = if all_names.contains(&text.as_str()) {
        "which is not a sql server".to_string()
    } else if unlisted_ok {
        return;
    } else {
        format!("which is not in this inventory: {windows_reason}")
    };
    let help = match did_you_mean(text, sql_names.iter().copied()) {
        Some(sug) => format!("did you mean `{sug}`?"),
        None => {
            "add the SQL host as a [[server]] with role = \"sql\", or use HOST\\INSTANCE".into()
        }
    };
    c.at(
        at,
        format!(
            "NS `{}` names sql `{}`, {what}",
            s.name,
            text.escape_debug()
        ),
        Some(help),
    );
}
