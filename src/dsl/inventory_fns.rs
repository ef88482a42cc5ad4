//! Pure runbook helpers, usable at load time and in closures: selecting the servers of
//! a group of the `inventory` global, and string helpers that return new values.
//!
//! A team's runbook declares one step per server of a group at load time
//! (`for s in servers_in(inventory, "web") { step(...) }`) and may select again inside
//! a closure, so the helper works on the plain map the `inventory` global is, with no
//! run context. A group no server is in is an error naming the groups that exist: a
//! misspelled group must not quietly declare no steps.

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map, NativeCallContext};

use crate::diagnostic::did_you_mean;

/// Register `servers_in(inventory, group)` (also callable as `inventory.servers_in(group)`).
pub(crate) fn register(engine: &mut Engine) {
    engine.register_fn(
        "servers_in",
        |ctx: NativeCallContext, inv: Map, group: &str| -> Result<Array, Box<EvalAltResult>> {
            servers_in(&inv, group)
                .map_err(|m| Box::new(EvalAltResult::ErrorRuntime(m.into(), ctx.call_position())))
        },
    );
}

fn groups_of(server: &Dynamic) -> Vec<String> {
    let Some(m) = server.read_lock::<Map>() else {
        return Vec::new();
    };
    m.get("groups")
        .and_then(|g| g.read_lock::<Array>().map(|a| a.clone()))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|g| g.into_string().ok())
        .collect()
}

/// The servers of `inv` (the `inventory` map) in `group`, in inventory order.
pub(crate) fn servers_in(inv: &Map, group: &str) -> Result<Array, String> {
    let servers: Array = inv
        .get("servers")
        .and_then(|s| s.read_lock::<Array>().map(|a| a.clone()))
        .ok_or("servers_in: the first argument must be the `inventory` global")?;
    let picked: Array = servers
        .iter()
        .filter(|s| groups_of(s).iter().any(|g| g == group))
        .cloned()
        .collect();
    if !picked.is_empty() {
        return Ok(picked);
    }
    let mut known: Vec<String> = servers.iter().flat_map(groups_of).collect();
    known.sort();
    known.dedup();
    let mut msg = format!(
        "no server of the inventory is in group `{}`",
        group.escape_debug()
    );
    if let Some(s) = did_you_mean(group, known.iter().map(String::as_str)) {
        msg.push_str(&format!("; did you mean `{s}`?"));
    } else if known.is_empty() {
        msg.push_str("; no server has `groups`: add groups = [\"...\"] to its [[server]] (docs/operator-guide.md)");
    } else {
        msg.push_str(&format!("; its groups are: {}", known.join(", ")));
    }
    Err(msg)
}

/// Register the non-mutating string helpers: Rhai's own `trim` changes a string in
/// place and returns `()`, so `r.stdout.trim()` silently yields nothing; these return
/// the new value and leave the argument alone.
pub(crate) fn register_text(engine: &mut Engine) {
    engine.register_fn("trimmed", |s: &str| s.trim().to_string());
    engine.register_fn("lines", |s: &str| -> Array {
        s.lines().map(|l| Dynamic::from(l.to_string())).collect()
    });
}
