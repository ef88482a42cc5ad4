//! The runs in a state store, oldest first, for `runs` and for choosing the run
//! `resume` and `status` open; unreadable runs become warnings, never errors.

use super::RunSummary;
use crate::state::Store;

/// The runs found in a state store, oldest first, and the ones that were skipped.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunListing {
    /// `(run id, summary)` sorted by start time.
    pub runs: Vec<(String, RunSummary)>,
    /// One message per run that could not be read, and journal warnings of the others.
    pub warnings: Vec<String>,
}

impl RunListing {
    /// The warnings to print when run `chosen` is about to be opened, which prints its
    /// own journal's warnings: everything else, so each is shown once.
    pub(crate) fn warnings_besides<'a>(
        &'a self,
        chosen: Option<&'a str>,
    ) -> impl Iterator<Item = &'a String> + 'a {
        self.warnings
            .iter()
            .filter(move |w| chosen.is_none_or(|id| !w.contains(id)))
    }
}

/// Every run in `store`, sorted by start time; unreadable runs become warnings.
pub(crate) fn list_runs(store: &Store) -> RunListing {
    let mut listing = RunListing::default();
    let ids = match store.run_ids() {
        Ok(ids) => ids,
        Err(e) => {
            listing.warnings.push(e);
            return listing;
        }
    };
    for run_id in ids {
        let loaded = store
            .run(&run_id)
            .and_then(|run| RunSummary::load(&run).map_err(|e| e.to_string()));
        match loaded {
            Ok((state, warnings)) => {
                listing.warnings.extend(warnings);
                listing.runs.push((run_id, state));
            }
            Err(e) => listing.warnings.push(format!("skipping run {run_id}: {e}")),
        }
    }
    listing
        .runs
        .sort_by(|(a_id, a), (b_id, b)| (&a.started_at, a_id).cmp(&(&b.started_at, b_id)));
    listing
}
#[cfg(test)]
mod tests {
    use super::super::tests::{started, DIAMOND};
    use super::*;
    use crate::journal::record::{Event, FinalStatus};
    use crate::run_state::RunStatus;

    #[test]
    fn list_runs_sorts_by_start_and_skips_unreadable_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let state_dir = tmp.path();
        let runs = state_dir.join("runs");
        let store = Store::dir(state_dir);
        // Named so that directory order and start order disagree.
        for (id, steps) in [("run-b", DIAMOND), ("run-a", &[("x", "step")][..])] {
            let run = store.run(id).unwrap();
            let (w, _) = run.create_journal(started(steps)).unwrap();
            w.append_blocking(vec![Event::RunFinished {
                status: FinalStatus::Succeeded,
            }])
            .unwrap();
            // Millisecond timestamps: make sure the second run starts later.
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        std::fs::create_dir_all(runs.join("broken")).unwrap();
        std::fs::write(runs.join("broken").join("journal.jsonl"), b"").unwrap();
        std::fs::write(runs.join("stray-file"), b"not a run").unwrap();

        let listing = list_runs(&store);
        let ids: Vec<&str> = listing.runs.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, ["run-b", "run-a"]);
        assert!(listing
            .runs
            .iter()
            .all(|(_, s)| s.status == RunStatus::Succeeded));
        assert_eq!(listing.warnings.len(), 1, "{:?}", listing.warnings);
        assert!(
            listing.warnings[0].contains("broken"),
            "{:?}",
            listing.warnings
        );
        assert!(
            listing.warnings[0].contains("empty"),
            "{:?}",
            listing.warnings
        );
    }

    #[test]
    fn list_runs_of_a_fresh_state_dir_is_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let listing = list_runs(&Store::dir(tmp.path()));
        assert!(listing.runs.is_empty() && listing.warnings.is_empty());
    }
}
