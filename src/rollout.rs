//! What a rollout's barrier decides at run time (its declaration is `dsl/rollout.rs`):
//! once a batch's items have finished, count the rollout's failed items so far against
//! its failure budget. Within budget the barrier succeeds and the next batch may start;
//! beyond it the barrier fails, so nothing after it starts — items already running
//! finish, being in the batch the barrier waited for.

use crate::dsl::declaration::RolloutPart;
use serde_json::{json, Value};

/// One line for the barrier's step log: the batch's results in words.
pub(crate) fn summary(out: &Value) -> String {
    let list = |k: &str| -> Vec<String> {
        out[k]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (here, so_far) = (list("failed_in_batch"), list("failed_so_far"));
    format!(
        "batch {} of {} of rollout {}: {} item(s), {} failed{}; {} failed so far, max_failures allows {}",
        out["batch"],
        out["batches"],
        out["rollout"].as_str().unwrap_or(""),
        out["items"],
        here.len(),
        if here.is_empty() {
            String::new()
        } else {
            format!(" ({})", here.join(", "))
        },
        so_far.len(),
        out["max_failures"]
    )
}

/// The barrier's verdict: its output (the batch's results) or why the rollout stops.
/// `failed(name)` says whether the item step `name` ended failed.
pub(crate) fn barrier(part: &RolloutPart, failed: impl Fn(&str) -> bool) -> Result<Value, String> {
    let RolloutPart::Barrier {
        rollout,
        batch,
        batches,
        items,
        so_far,
        total,
        budget,
    } = part
    else {
        return Ok(Value::Null);
    };
    let failed_so_far: Vec<&str> = so_far
        .iter()
        .map(String::as_str)
        .filter(|n| failed(n))
        .collect();
    let failed_here: Vec<&str> = items
        .iter()
        .map(String::as_str)
        .filter(|n| failed(n))
        .collect();
    let allowed = budget.allowed(*total);
    if failed_so_far.len() > allowed {
        let next = if batch + 1 == *batches {
            format!("batch {batches} does not start")
        } else if batch < batches {
            format!("batches {}-{batches} do not start", batch + 1)
        } else {
            "the steps after the rollout do not start".to_string()
        };
        return Err(format!(
            "rollout `{rollout}` is over its failure budget after batch {batch} of {batches}: {} of {total} items failed, max_failures {} allows {allowed} ({}); {next}. Fix them, then `waymark resume` re-runs the failed items and goes on",
            failed_so_far.len(),
            budget.describe(),
            failed_so_far.join(", "),
        ));
    }
    Ok(json!({
        "rollout": rollout,
        "batch": batch,
        "batches": batches,
        "items": items.len(),
        "failed_in_batch": failed_here,
        "failed_so_far": failed_so_far,
        "max_failures": allowed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dsl::declaration::Budget;

    fn part(budget: Budget) -> RolloutPart {
        RolloutPart::Barrier {
            rollout: "fleet".into(),
            batch: 2,
            batches: 3,
            items: vec!["fleet:c".into(), "fleet:d".into()],
            so_far: vec![
                "fleet:a".into(),
                "fleet:b".into(),
                "fleet:c".into(),
                "fleet:d".into(),
            ],
            total: 10,
            budget,
        }
    }

    #[test]
    fn within_the_budget_the_batch_passes_with_its_failures_listed() {
        let out = barrier(&part(Budget::Count(2)), |n| {
            n == "fleet:a" || n == "fleet:d"
        })
        .unwrap();
        assert_eq!(out["failed_in_batch"], json!(["fleet:d"]));
        assert_eq!(out["failed_so_far"], json!(["fleet:a", "fleet:d"]));
        assert_eq!(
            summary(&out),
            "batch 2 of 3 of rollout fleet: 2 item(s), 1 failed (fleet:d); 2 failed so far, max_failures allows 2"
        );
    }

    #[test]
    fn over_the_budget_counted_across_batches_the_rollout_stops() {
        let e = barrier(&part(Budget::Count(1)), |n| {
            n == "fleet:a" || n == "fleet:d"
        })
        .unwrap_err();
        assert!(e.contains("2 of 10 items failed"), "{e}");
        assert!(e.contains("fleet:a, fleet:d"), "{e}");
        assert!(e.contains("batch 3 does not start"), "{e}");
        // 10% of 10 is one item.
        assert!(barrier(&part(Budget::Percent(10)), |n| n == "fleet:a"
            || n == "fleet:d")
        .is_err());
        assert!(barrier(&part(Budget::Percent(20)), |n| n == "fleet:a"
            || n == "fleet:d")
        .is_ok());
    }
}
