//! Semantic checks of an inventory once serde has read its shape. Every problem is
//! collected with its position so an operator fixes the file in one pass. One file per
//! concern: `server` (each server on its own), `reach` (the keys runbooks and transports
//! use), `hierarchy` (references between servers), `lab` (simulated facts); this file
//! checks the top-level keys and puts the parts together.

mod hierarchy;
mod lab;
mod reach;
mod server;

use std::collections::HashMap;
use std::time::Duration;

use toml::Spanned;

use super::error::Collector;
use super::raw::{RawInventory, RawNotify};
use super::server::{Driver, Server};
use crate::diagnostic::did_you_mean;
use crate::duration::parse_duration;

/// What survives validation (only used when nothing was reported).
pub(super) struct Checked {
    pub(super) name: String,
    pub(super) driver: Option<Driver>,
    pub(super) lab_delay: Duration,
    pub(super) servers: Vec<Server>,
    pub(super) notify: crate::notify::Hooks,
}

/// Check a whole inventory, reporting every problem to `c`.
pub(super) fn inventory(raw: &RawInventory, c: &mut Collector<'_>) -> Checked {
    estate_name(&raw.name, c);
    let driver = raw.driver.as_ref().map(|d| driver(d, c));
    let lab_delay = raw
        .lab_delay
        .as_ref()
        .map_or(Duration::ZERO, |d| lab_delay(d, c));
    if raw.server.is_empty() {
        c.at(
            0,
            "the inventory has no [[server]] entries".into(),
            Some("add at least one server: [[server]] name = \"ns-hq\" role = \"ns\"".into()),
        );
    }
    let mut seen = HashMap::new();
    let mut servers: Vec<Server> = raw
        .server
        .iter()
        .map(|rs| server::check(rs, driver, &mut seen, c))
        .collect();
    hierarchy::check(&servers, &raw.server, driver, c);
    hierarchy::site_servers(&mut servers, &raw.server, driver, c);
    let notify = raw
        .notify
        .as_ref()
        .map(|n| notify(n, c))
        .unwrap_or_default();
    Checked {
        name: raw.name.get_ref().clone(),
        driver,
        lab_delay,
        servers,
        notify,
    }
}

fn estate_name(name: &Spanned<String>, c: &mut Collector<'_>) {
    if let Err(m) = check_estate_name(name.get_ref()) {
        c.at(
            name.span().start,
            m,
            Some("for example: name = \"contoso\"".into()),
        );
    }
}

/// Estate names become file names (`lab/NAME.json`), so they are kept path-safe.
fn check_estate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 100 {
        return Err("the estate name must be 1 to 100 characters long".into());
    }
    if name.starts_with('.') || name.starts_with('-') {
        return Err(format!("estate name `{name}` cannot start with '.' or '-'"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "estate name `{}` contains {:?}; use letters, digits, '-', '_' and '.' (it names the lab state file)",
            name.escape_debug(),
            c
        ));
    }
    Ok(())
}

fn driver(d: &Spanned<String>, c: &mut Collector<'_>) -> Driver {
    match d.get_ref().as_str() {
        "lab" => Driver::Lab,
        "windows" => Driver::Windows,
        other => {
            let help = match did_you_mean(other, ["lab", "windows"]) {
                Some(s) => format!("did you mean `{s}`?"),
                None => {
                    "use driver = \"lab\" (rehearsal) or driver = \"windows\" (real servers)".into()
                }
            };
            c.at(
                d.span().start,
                format!("unknown driver `{}`", other.escape_debug()),
                Some(help),
            );
            Driver::Lab
        }
    }
}

fn lab_delay(d: &Spanned<String>, c: &mut Collector<'_>) -> Duration {
    parse_duration(d.get_ref()).unwrap_or_else(|m| {
        c.at(
            d.span().start,
            format!("lab_delay: {m}"),
            Some("for example: lab_delay = \"200ms\"".into()),
        );
        Duration::ZERO
    })
}

/// `[notify]`: the hooks this estate's runs call (see `crate::notify`).
fn notify(n: &RawNotify, c: &mut Collector<'_>) -> crate::notify::Hooks {
    let mut hooks = crate::notify::Hooks::default();
    if let Some(w) = &n.webhook {
        match crate::notify::http::parse_url(w.get_ref()) {
            Ok(_) => hooks.webhook = Some(w.get_ref().clone()),
            Err(m) => c.at(w.span().start, format!("[notify] {m}"), None),
        }
    }
    if let Some(cmd) = &n.command {
        match crate::notify::check_command(cmd.get_ref()) {
            Ok(()) => hooks.command = Some(cmd.get_ref().clone()),
            Err(m) => c.at(cmd.span().start, format!("[notify] command: {m}"), None),
        }
    }
    hooks
}
