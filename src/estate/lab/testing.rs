//! What the lab's unit tests share: estates from inventory text or the demo, and a
//! call with a fresh cancel token and no secrets.

use std::path::Path;

use serde_json::Value;

use super::LabEstate;
use crate::cancel::CancelToken;
use crate::estate::{Estate, EstateError, Inventory, OpContext};
use crate::state::Store;

pub(crate) fn lab(src: &str, dir: &Path) -> LabEstate {
    LabEstate::new(Inventory::parse(src, "t.toml").unwrap(), &Store::dir(dir))
}

pub(crate) fn demo(dir: &Path) -> LabEstate {
    LabEstate::new(crate::estate::demo::inventory(), &Store::dir(dir))
}

pub(crate) fn call(
    e: &LabEstate,
    op: &str,
    server: &str,
    args: Value,
) -> Result<Value, EstateError> {
    let token = CancelToken::new();
    let log = |_: &str| {};
    let cx = OpContext {
        cancel: &token,
        log: &log,
        redactor: &crate::redact::Redactor::new(),
    };
    let map = args.as_object().cloned().unwrap_or_default();
    e.call(op, server, &map, &cx)
}

pub(crate) fn events(e: &LabEstate) -> Vec<Value> {
    e.state().unwrap().events
}

pub(crate) fn ops_of(e: &LabEstate) -> Vec<(String, String, bool)> {
    events(e)
        .iter()
        .map(|v| {
            (
                v["op"].as_str().unwrap().to_string(),
                v["server"].as_str().unwrap().to_string(),
                v["ok"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// One 7.5 SP1 HF3 NS: one hotfix short of the required source.
pub(crate) const SINGLE_HF3: &str = r#"
name = "hf3"
driver = "lab"
[[server]]
name = "ns-old"
role = "ns"
[server.lab]
version = "7.5 SP1 HF3"
"#;
