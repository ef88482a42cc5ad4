//! Result builders both drivers use, so an operation returns the same shape whichever
//! driver ran it (the lab computes the rows, windows parses them from SQL output).

use serde_json::{json, Value};

use super::itms;

/// The `agent_versions` result from `(agent, version, count)` rows.
pub(crate) fn agent_rows_result(
    server: &str,
    rows: Vec<(String, String, u64)>,
    target: Option<&str>,
) -> Value {
    let mut total = 0u64;
    let mut below = 0u64;
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|(agent, version, count)| {
            total = total.saturating_add(count);
            let at =
                target.map(|t| itms::compare_versions(&version, t) != std::cmp::Ordering::Less);
            if at == Some(false) {
                below = below.saturating_add(count);
            }
            json!({"agent": agent, "version": version, "count": count, "at_target": at})
        })
        .collect();
    json!({"server": server, "rows": rows, "total": total, "below_target": below})
}
