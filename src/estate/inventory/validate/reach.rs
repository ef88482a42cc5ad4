//! The keys of a server that runbooks read (`groups`, `vars`) and that a transport
//! connects with (`address`, `port`, `user`, `identity_file`, `known_hosts`).

use std::collections::BTreeMap;

use toml::Spanned;

use super::super::error::Collector;
use super::super::raw::RawServer;
use crate::estate::names::check_host_name;

/// The keys of a server a runbook reads or a transport connects with, checked.
pub(super) struct ReachKeys {
    pub(super) groups: Vec<String>,
    pub(super) vars: BTreeMap<String, serde_json::Value>,
    pub(super) address: Option<String>,
    pub(super) port: Option<u16>,
    pub(super) user: Option<String>,
    pub(super) identity_file: Option<String>,
    pub(super) known_hosts: Option<String>,
}

pub(super) fn keys(name: &str, r: &RawServer, c: &mut Collector<'_>) -> ReachKeys {
    ReachKeys {
        groups: groups(name, r.groups.iter().flat_map(|g| g.get_ref()), c),
        vars: r
            .vars
            .as_ref()
            .map(|v| vars(name, v, c))
            .unwrap_or_default(),
        address: r.address.as_ref().and_then(|a| address(name, a, c)),
        port: r.port.as_ref().and_then(|p| port(name, p, c)),
        user: r.user.as_ref().and_then(|v| ssh_word(name, "user", v, c)),
        identity_file: (r.identity_file.as_ref())
            .and_then(|v| ssh_word(name, "identity_file", v, c)),
        known_hosts: (r.known_hosts.as_ref()).and_then(|v| ssh_word(name, "known_hosts", v, c)),
    }
}

/// Group names are used as words in runbooks and step names: keep them plain.
fn groups<'a>(
    name: &str,
    given: impl Iterator<Item = &'a Spanned<String>>,
    c: &mut Collector<'_>,
) -> Vec<String> {
    let mut groups: Vec<String> = Vec::new();
    for g in given {
        let text = g.get_ref();
        let plain = !text.is_empty()
            && text
                .chars()
                .all(|ch| ch.is_alphanumeric() || matches!(ch, '-' | '_' | '.'));
        if !plain {
            c.at(
                g.span().start,
                format!("server `{name}` has group `{}`: group names are letters, digits, '-', '_' and '.'", text.escape_debug()),
                Some("for example: groups = [\"web\", \"eu-west\"]".into()),
            );
        } else if !groups.contains(text) {
            groups.push(text.clone());
        }
    }
    groups
}

fn vars(
    name: &str,
    v: &Spanned<toml::Table>,
    c: &mut Collector<'_>,
) -> BTreeMap<String, serde_json::Value> {
    let mut vars = BTreeMap::new();
    for (k, val) in v.get_ref() {
        match plain_var(val) {
            Some(j) => {
                vars.insert(k.clone(), j);
            }
            None => c.at(
                v.span().start,
                format!(
                    "server `{name}`: vars.{} is a {}; vars hold strings, numbers, booleans and arrays of them",
                    k.escape_debug(),
                    val.type_str()
                ),
                Some("write the value as a string, or split the table into several vars".into()),
            ),
        }
    }
    vars
}

fn address(name: &str, a: &Spanned<String>, c: &mut Collector<'_>) -> Option<String> {
    let text = a.get_ref();
    if text.parse::<std::net::IpAddr>().is_ok() || check_host_name(text).is_ok() {
        return Some(text.clone());
    }
    c.at(
        a.span().start,
        format!(
            "server `{name}` has address `{}`, which is neither a host name nor an IP address",
            text.escape_debug()
        ),
        Some("for example: address = \"10.0.0.5\" or address = \"web1.example.com\"".into()),
    );
    None
}

fn port(name: &str, p: &Spanned<i64>, c: &mut Collector<'_>) -> Option<u16> {
    match u16::try_from(*p.get_ref()) {
        Ok(n) if n > 0 => Some(n),
        _ => {
            c.at(
                p.span().start,
                format!(
                    "server `{name}` has port {}; a port is 1 to 65535",
                    p.get_ref()
                ),
                Some("for example: port = 22".into()),
            );
            None
        }
    }
}

/// A user or file name handed to ssh: ssh reads a leading '-' as an option, so a
/// value must never start with one.
fn ssh_word(name: &str, key: &str, v: &Spanned<String>, c: &mut Collector<'_>) -> Option<String> {
    let text = v.get_ref();
    if text.is_empty()
        || text.starts_with('-')
        || text.chars().any(char::is_control)
        || (key == "user" && text.contains(char::is_whitespace))
    {
        c.at(
            v.span().start,
            format!(
                "server `{name}` has {key} `{}`, which cannot be passed to ssh safely",
                text.escape_debug()
            ),
            Some(format!(
                "{key} must be non-empty, not start with '-', and have no control characters{}",
                if key == "user" { " or spaces" } else { "" }
            )),
        );
        return None;
    }
    Some(text.clone())
}

/// A `vars` value as JSON when it is one a runbook can use (no tables, no dates).
fn plain_var(v: &toml::Value) -> Option<serde_json::Value> {
    Some(match v {
        toml::Value::String(s) => serde_json::Value::from(s.clone()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Float(f) => serde_json::Value::from(*f),
        toml::Value::Boolean(b) => serde_json::Value::from(*b),
        toml::Value::Array(a) => {
            serde_json::Value::Array(a.iter().map(plain_var).collect::<Option<Vec<_>>>()?)
        }
        toml::Value::Datetime(_) | toml::Value::Table(_) => return None,
    })
}
