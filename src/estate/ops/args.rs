//! A call's arguments checked against its operation's row (unknown keys, missing
//! required keys, kinds, shared semantics), with typed getters that apply the
//! documented defaults.

use std::time::Duration;

use serde_json::{Map, Value};

use super::{ArgInfo, ArgKind, OpInfo};
use crate::diagnostic::did_you_mean;
use crate::estate::error::EstateError;

/// Arguments checked against an operation's table row, with typed getters that
/// apply the documented defaults.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Args<'a> {
    op: &'static OpInfo,
    map: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    /// Validate `map` for `op`: unknown keys, missing required keys, wrong types.
    pub(crate) fn check(
        op: &'static OpInfo,
        map: &'a Map<String, Value>,
    ) -> Result<Args<'a>, EstateError> {
        let bad = |message: String| EstateError::BadArgs {
            op: op.name.to_string(),
            message,
        };
        for key in map.keys() {
            if op.args.iter().all(|a| a.name != key) {
                let hint = match did_you_mean(key, op.args.iter().map(|a| a.name)) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None if op.args.is_empty() => "; it takes no arguments".into(),
                    None => format!("; it takes {}", names(op)),
                };
                return Err(bad(format!("unknown argument `{key}`{hint}")));
            }
        }
        for a in op.args {
            let v = map.get(a.name).filter(|v| !v.is_null());
            match v {
                None if a.required => {
                    return Err(bad(format!("missing argument `{}` ({})", a.name, a.help)))
                }
                None => {}
                Some(v) => check_kind(a, v).map_err(bad)?,
            }
        }
        let args = Args { op, map };
        semantics(&args).map_err(bad)?;
        Ok(args)
    }

    /// The operation these arguments are for.
    pub(crate) fn op(&self) -> &'static OpInfo {
        self.op
    }

    /// The raw argument map.
    pub(crate) fn raw(&self) -> &'a Map<String, Value> {
        self.map
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    fn default(&self, name: &str) -> Option<&'static str> {
        self.op
            .args
            .iter()
            .find(|a| a.name == name)
            .and_then(|a| a.default)
    }

    /// A string argument, or its default.
    pub(crate) fn str(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => self.default(name).map(str::to_string),
        }
    }

    /// A string argument that was given explicitly (ignores defaults).
    pub(crate) fn given_str(&self, name: &str) -> Option<String> {
        match self.get(name) {
            Some(Value::String(s)) => Some(s.clone()),
            _ => None,
        }
    }

    /// A boolean argument, or its default (false when there is none).
    pub(crate) fn bool(&self, name: &str) -> bool {
        match self.get(name) {
            Some(Value::Bool(b)) => *b,
            _ => self.default(name) == Some("true"),
        }
    }

    /// An integer argument, or its default (0 when there is none).
    pub(crate) fn int(&self, name: &str) -> i64 {
        match self.get(name).and_then(Value::as_i64) {
            Some(i) => i,
            None => self.default(name).and_then(|d| d.parse().ok()).unwrap_or(0),
        }
    }

    /// A duration argument, or its default.
    pub(crate) fn duration(&self, name: &str) -> Duration {
        self.str(name)
            .and_then(|s| crate::duration::parse_duration(&s).ok())
            .unwrap_or(Duration::ZERO)
    }

    /// A list argument: strings, or the `id` of objects. `None` when absent.
    pub(crate) fn list(&self, name: &str) -> Option<Vec<String>> {
        let items = self.get(name)?.as_array()?;
        Some(
            items
                .iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_string),
                    _ => None,
                })
                .collect(),
        )
    }

    /// A map argument.
    pub(crate) fn map(&self, name: &str) -> Option<&'a Map<String, Value>> {
        self.get(name).and_then(Value::as_object)
    }

    /// The policy name patterns (argument or the ITMS default).
    pub(crate) fn patterns(&self) -> Vec<String> {
        self.list("patterns").unwrap_or_else(|| {
            crate::estate::itms::DEFAULT_POLICY_PATTERNS
                .iter()
                .map(|s| s.to_string())
                .collect()
        })
    }
}

fn names(op: &OpInfo) -> String {
    op.args
        .iter()
        .map(|a| format!("`{}`", a.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_kind(a: &ArgInfo, v: &Value) -> Result<(), String> {
    let wrong = || {
        format!(
            "argument `{}` must be {}, not {}",
            a.name,
            a.kind.with_article(),
            type_name(v)
        )
    };
    match a.kind {
        ArgKind::Str => {
            let s = v.as_str().ok_or_else(wrong)?;
            crate::quote::check_plain_text(a.name, s)
        }
        ArgKind::Path => {
            let s = v.as_str().ok_or_else(wrong)?;
            crate::quote::check_windows_path(a.name, s)
        }
        ArgKind::Bool => v.as_bool().map(|_| ()).ok_or_else(wrong),
        ArgKind::Int => v.as_i64().map(|_| ()).ok_or_else(wrong),
        ArgKind::Map => v.as_object().map(|_| ()).ok_or_else(wrong),
        ArgKind::Duration => {
            let s = v.as_str().ok_or_else(wrong)?;
            crate::duration::parse_duration(s)
                .map(|_| ())
                .map_err(|m| format!("argument `{}`: {m}", a.name))
        }
        ArgKind::List => {
            let items = v.as_array().ok_or_else(wrong)?;
            for item in items {
                let text = match item {
                    Value::String(s) => Some(s.as_str()),
                    Value::Object(o) => o.get("id").and_then(Value::as_str),
                    _ => None,
                };
                if let Some(t) = text {
                    crate::quote::check_plain_text(a.name, t)?;
                } else {
                    return Err(format!(
                        "argument `{}` must list strings (or objects with an \"id\"), found {}",
                        a.name,
                        type_name(item)
                    ));
                }
            }
            Ok(())
        }
    }
}

/// Checks on argument values that both drivers must apply identically, so a runbook
/// gets the same refusal in a rehearsal as on real servers.
fn semantics(a: &Args) -> Result<(), String> {
    for id in a.list("ids").unwrap_or_default() {
        if !is_guid(&id) {
            return Err(format!(
                "policy id `{id}` is not a GUID; pass ids from list_policies or disable_policies"
            ));
        }
    }
    if let Some(aud) = a.given_str("audience") {
        if !matches!(aud.as_str(), "clients" | "site_servers" | "all") {
            return Err(format!(
                "audience `{aud}` is not one of \"clients\", \"site_servers\", \"all\""
            ));
        }
    }
    if let Some(d) = a.given_str("drive") {
        let b = d.as_bytes();
        if !(b.len() == 2 && b[0].is_ascii_alphabetic() && b[1] == b':') {
            return Err(format!("drive `{d}` must be a drive letter such as \"C:\""));
        }
    }
    if let Some(to) = a.given_str("to") {
        if to != crate::estate::itms::TARGET {
            return Err(format!(
                "`to` is `{to}`, but only {} is supported",
                crate::estate::itms::TARGET
            ));
        }
    }
    if let Some(e) = a.given_str("expected") {
        if crate::estate::itms::leading_version(&crate::estate::itms::release(&e)).is_none() {
            return Err(format!(
                "expected `{e}` is not a version such as \"7.5 SP1 HF5\" or \"7.6\""
            ));
        }
    }
    if a.op.name == "defragment_cmdb" {
        let (reorg, rebuild) = (a.int("reorganize_above"), a.int("rebuild_above"));
        if !(0 <= reorg && reorg < rebuild && rebuild <= 100) {
            return Err(format!(
                "need 0 <= reorganize_above ({reorg}) < rebuild_above ({rebuild}) <= 100"
            ));
        }
        if a.int("min_pages") < 0 {
            return Err("min_pages cannot be negative".into());
        }
    }
    Ok(())
}

/// True when `s` looks like a GUID (ASDK identifies items by GUID).
pub(crate) fn is_guid(s: &str) -> bool {
    let t = s
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .unwrap_or(s);
    let parts: Vec<&str> = t.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(n, p)| p.len() == *n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a map",
    }
}
