//! Each `[[server]]` on its own: its name (valid, not listed twice), role, transport,
//! the keys only an NS may have, and its endpoint count.

use std::collections::HashMap;

use toml::Spanned;

use super::super::error::Collector;
use super::super::raw::RawServer;
use super::super::server::{Driver, LabFacts, Role, Server, TransportKind};
use crate::diagnostic::did_you_mean;
use crate::estate::names::check_host_name;

/// Far above any real NS; keeps the lab's arithmetic on endpoint counts safe.
const MAX_ENDPOINTS: u64 = 10_000_000;

/// Check one server; `seen` maps the lower-cased names so far to their offsets.
pub(super) fn check(
    rs: &Spanned<RawServer>,
    driver: Option<Driver>,
    seen: &mut HashMap<String, usize>,
    c: &mut Collector<'_>,
) -> Server {
    let r = rs.get_ref();
    let name = r.name.get_ref().clone();
    unique_host_name(&r.name, seen, c);
    let role_name = r.role.as_ref().map(|r| r.get_ref().clone());
    let role = r.role.as_ref().and_then(|rr| role(&name, rr, driver, c));
    let reach = super::reach::keys(&name, r, c);
    let transport = r
        .transport
        .as_ref()
        .map_or(TransportKind::Local, |t| transport(&name, t, c));
    if role == Some(Role::Ns) {
        ns_keys(&name, r, driver, c);
    } else {
        let what = Server {
            role,
            role_name: role_name.clone(),
            ..Server::new(&name, Role::Site)
        }
        .describe_role();
        not_ns_keys(&name, &what, r, c);
    }
    if let (Some(n), false) = (&r.ns, role == Some(Role::Site)) {
        c.at(
            n.span().start,
            format!("server `{name}` has `ns`, which only a site server has"),
            Some(
                "`ns` names the NS that manages a site server (role = \"site\"): remove it here"
                    .into(),
            ),
        );
    }
    if r.endpoints.is_some_and(|n| n > MAX_ENDPOINTS) {
        c.at(
            r.name.span().start,
            format!("server `{name}` has more than {MAX_ENDPOINTS} endpoints"),
            Some(
                "give the number of managed endpoints (the sizing tables stop at 20,000 per NS)"
                    .into(),
            ),
        );
    }
    let lab = match &r.lab {
        None => LabFacts::default(),
        Some(l) => super::lab::facts(&name, l, c),
    };
    Server {
        name,
        role,
        role_name,
        groups: reach.groups,
        vars: reach.vars,
        address: reach.address,
        port: reach.port,
        user: reach.user,
        identity_file: reach.identity_file,
        known_hosts: reach.known_hosts,
        parent: r.parent.as_ref().map(|p| p.get_ref().clone()),
        ns: r.ns.as_ref().map(|p| p.get_ref().clone()),
        sql: r.sql.as_ref().map(|p| p.get_ref().clone()),
        endpoints: r.endpoints,
        transport,
        lab,
        line: c.line_of(rs.span().start),
    }
}

/// A valid host name, not listed before (host names are case-insensitive).
fn unique_host_name(
    name: &Spanned<String>,
    seen: &mut HashMap<String, usize>,
    c: &mut Collector<'_>,
) {
    let text = name.get_ref();
    if let Err(m) = check_host_name(text) {
        c.at(
            name.span().start,
            m,
            Some("use the server's DNS host name, e.g. name = \"ns-hq\"".into()),
        );
    }
    let key = text.to_ascii_lowercase();
    if let Some(first) = seen.get(&key) {
        let l = c.line_of(*first);
        c.at(
            name.span().start,
            format!("server `{text}` is listed twice (first on line {l})"),
            Some("host names are case-insensitive and must be unique: remove or rename one".into()),
        );
    } else {
        seen.insert(key, name.span().start);
    }
}

/// The ITMS role `role` names, if it names one. Any other word is a team's own role.
fn role(
    name: &str,
    rr: &Spanned<String>,
    driver: Option<Driver>,
    c: &mut Collector<'_>,
) -> Option<Role> {
    let text = rr.get_ref();
    if let Some(role) = Role::parse(text) {
        return Some(role);
    }
    if text.trim().is_empty() {
        c.at(
            rr.span().start,
            format!("server `{name}` has an empty role"),
            Some("remove `role`, or give one such as role = \"web\"".into()),
        );
        return None;
    }
    // Any role is a team's own, but in an estate with a driver (an ITMS estate) a
    // near miss of an ITMS role is a typo that would silently drop the server
    // from the ITMS runbooks.
    if driver.is_some() {
        if let Some(s) = did_you_mean(text, ["ns", "sql", "site", "gateway"]) {
            c.at(
                rr.span().start,
                format!("server `{name}` has unknown role `{}`", text.escape_debug()),
                Some(format!("did you mean `{s}`?")),
            );
        }
    }
    None
}

fn transport(name: &str, t: &Spanned<String>, c: &mut Collector<'_>) -> TransportKind {
    match t.get_ref().as_str() {
        "local" => TransportKind::Local,
        "ssh" => TransportKind::Ssh,
        "psremoting" => TransportKind::PsRemoting,
        other => {
            let help = match did_you_mean(other, ["local", "ssh", "psremoting"]) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "transport is one of \"local\", \"ssh\", \"psremoting\"".into(),
            };
            c.at(
                t.span().start,
                format!(
                    "server `{name}` has unknown transport `{}`",
                    other.escape_debug()
                ),
                Some(help),
            );
            TransportKind::Local
        }
    }
}

/// An NS of the windows driver needs its CMDB's SQL instance.
fn ns_keys(name: &str, r: &RawServer, driver: Option<Driver>, c: &mut Collector<'_>) {
    if driver == Some(Driver::Windows) && r.sql.is_none() {
        c.at(
            r.name.span().start,
            format!("NS `{name}` has no `sql`; the windows driver needs the SQL instance of its CMDB"),
            Some("add sql = \"SQLHOST\" or sql = \"SQLHOST\\\\INSTANCE\" (the host must be in this inventory)".into()),
        );
    }
}

/// `parent` and `sql` belong to an NS only; `what` describes the server's role.
fn not_ns_keys(name: &str, what: &str, r: &RawServer, c: &mut Collector<'_>) {
    if let Some(p) = &r.parent {
        c.at(
            p.span().start,
            format!(
                "server `{name}` is {what} but has a `parent`; only NS servers form the hierarchy"
            ),
            Some("remove `parent`, or set role = \"ns\"".into()),
        );
    }
    if let Some(s) = &r.sql {
        c.at(
            s.span().start,
            format!("server `{name}` is {what} but has `sql`; only an NS has a CMDB"),
            Some("remove `sql`, or set role = \"ns\"".into()),
        );
    }
}
