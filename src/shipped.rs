//! Runbooks and stdlib modules shipped inside the binary (embedded by `build.rs`).

include!(concat!(env!("OUT_DIR"), "/shipped.rs"));

/// The source of a shipped runbook such as `itms-7.6/onbox`.
pub fn runbook(name: &str) -> Option<&'static str> {
    let name = name.strip_suffix(".rhai").unwrap_or(name);
    RUNBOOKS.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// The source of a stdlib module such as `itms`.
pub fn stdlib(name: &str) -> Option<&'static str> {
    let name = name.strip_suffix(".rhai").unwrap_or(name);
    STDLIB.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}

/// Names of every shipped runbook, sorted.
pub fn runbook_names() -> Vec<&'static str> {
    let mut v: Vec<_> = RUNBOOKS.iter().map(|(n, _)| *n).collect();
    v.sort_unstable();
    v
}

/// Names of every stdlib module, sorted.
pub fn stdlib_names() -> Vec<&'static str> {
    let mut v: Vec<_> = STDLIB.iter().map(|(n, _)| *n).collect();
    v.sort_unstable();
    v
}
