//! The scheduler driven with plain closures: journal order (a start durable before its
//! action, a success before any dependent), limits, retries, fail-fast, timeouts,
//! interrupts, the observer and prior results.
//!
//! Over 600 lines on purpose: each test is one scenario read top to bottom, sharing the
//! small harness at the top; gate scenarios are in `gates.rs`.

use super::*;
use crate::cancel::CancelReason;
use crate::journal::{read_journal, Record, JOURNAL_FILE};
use crate::journal::{Event, FinalStatus};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

mod gates;

/// An action made of a closure; gates are approved at once.
struct Probe<F>(F);

impl<F> Action for Probe<F>
where
    F: Fn(usize, u32, &CancelToken) -> Result<Value, String> + Send + Sync + 'static,
{
    fn run(
        &self,
        node: usize,
        attempt: u32,
        cancel: &CancelToken,
        _done: &FinishedView,
    ) -> Result<Value, String> {
        (self.0)(node, attempt, cancel)
    }

    fn gate(&self, _node: usize, _first: bool) -> GateState {
        GateState::Approved
    }
}

/// Steps named by `spec`, each with the indices of its dependencies.
fn dag(spec: &[(&str, &[usize])]) -> Vec<Node> {
    let mut nodes: Vec<Node> = spec
        .iter()
        .map(|(name, deps)| Node {
            name: name.to_string(),
            kind: NodeKind::Step,
            deps: deps.to_vec(),
            dependents: vec![],
            when: When::Success,
            retries: 0,
            retry_delay: Duration::from_millis(1),
            timeout: None,
            group: None,
            budgeted: false,
        })
        .collect();
    for i in 0..nodes.len() {
        for d in nodes[i].deps.clone() {
            nodes[d].dependents.push(i);
        }
    }
    nodes
}

/// `layers` layers of `width` steps, each depending on two steps of the layer above.
fn layered(layers: usize, width: usize) -> Vec<Node> {
    let names: Vec<String> = (0..layers * width)
        .map(|i| format!("s{}-{}", i / width, i % width))
        .collect();
    let deps: Vec<Vec<usize>> = (0..layers * width)
        .map(|i| {
            let (l, w) = (i / width, i % width);
            if l == 0 {
                vec![]
            } else {
                let above = (l - 1) * width;
                let mut d = vec![above + w, above + (w + 1) % width];
                d.dedup();
                d
            }
        })
        .collect();
    let spec: Vec<(&str, &[usize])> = names
        .iter()
        .zip(&deps)
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    dag(&spec)
}

fn journal_in(dir: &Path) -> (JournalWriter, PathBuf) {
    let first = Event::sample_run_started(&[]);
    let (w, _) = JournalWriter::create(dir, first).expect("create journal");
    (w, dir.join(JOURNAL_FILE))
}

fn options(concurrency: usize) -> Options {
    Options {
        concurrency,
        gate_poll: Duration::from_millis(10),
        ..Options::default()
    }
}

async fn run_with<F>(
    nodes: Vec<Node>,
    opts: Options,
    f: F,
    interrupt: CancelToken,
) -> (Outcome, Vec<Record>)
where
    F: Fn(usize, u32, &CancelToken) -> Result<Value, String> + Send + Sync + 'static,
{
    run_action(nodes, opts, Arc::new(Probe(f)), interrupt).await
}

/// Run `nodes` with `action` from scratch; the outcome and the journal it left.
async fn run_action(
    nodes: Vec<Node>,
    opts: Options,
    action: Arc<dyn Action>,
    interrupt: CancelToken,
) -> (Outcome, Vec<Record>) {
    let tmp = tempfile::tempdir().expect("temp dir");
    let (journal, path) = journal_in(tmp.path());
    let prior = vec![Prior::Pending; nodes.len()];
    let outcome = run(Arc::new(nodes), prior, opts, action, journal, interrupt)
        .await
        .expect("run");
    let records = read_journal(&path).expect("read journal").records;
    (outcome, records)
}

/// The journal's events about `step`, as `type@attempt` strings.
fn history(records: &[Record], step: &str) -> Vec<String> {
    records
        .iter()
        .filter(|r| r.event.step() == Some(step))
        .map(|r| match &r.event {
            Event::StepStarted { attempt, .. } => format!("started@{attempt}"),
            Event::StepSucceeded { attempt, .. } => format!("succeeded@{attempt}"),
            Event::StepFailed {
                attempt,
                will_retry,
                ..
            } => format!(
                "failed@{attempt}{}",
                if *will_retry { "+retry" } else { "" }
            ),
            Event::StepSkipped { .. } => "skipped".to_string(),
            other => format!("{other:?}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_is_durable_before_the_action_and_succeeded_before_any_dependent() {
    journal_order_holds(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_that_need_not_be_durable_first_still_has_every_dependency_durable() {
    journal_order_holds(false).await;
}

/// [`Probe`], but no step's start need be durable before it runs.
struct Eager<F>(Probe<F>);

impl<F> Action for Eager<F>
where
    F: Fn(usize, u32, &CancelToken) -> Result<Value, String> + Send + Sync + 'static,
{
    fn run(&self, n: usize, a: u32, c: &CancelToken, d: &FinishedView) -> Result<Value, String> {
        self.0.run(n, a, c, d)
    }
    fn gate(&self, n: usize, first: bool) -> GateState {
        self.0.gate(n, first)
    }
    fn must_record_start(&self, _node: usize) -> bool {
        false
    }
}

/// A layered run where each action reads the journal file as a crash would leave it:
/// every dependency's success must be there, and its own start when `record_start_first`.
async fn journal_order_holds(record_start_first: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let (journal, path) = journal_in(tmp.path());
    let nodes = layered(6, 10);
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let deps: Vec<Vec<usize>> = nodes.iter().map(|n| n.deps.clone()).collect();
    let violations = Arc::new(Mutex::new(Vec::new()));
    let seen = violations.clone();
    let journal_path = path.clone();
    // Each action reads the journal file as a crash would leave it: what is there
    // must already include its own start and every dependency's success.
    let action = Probe(move |node: usize, attempt: u32, _: &CancelToken| {
        let records = read_journal(&journal_path)
            .map_err(|e| e.to_string())?
            .records;
        let has = |want: &dyn Fn(&Event) -> bool| records.iter().any(|r| want(&r.event));
        let me = &names[node];
        if record_start_first
            && !has(
                &|e| matches!(e, Event::StepStarted { step, attempt: a } if step == me && *a == attempt),
            )
        {
            seen.lock()
                .unwrap()
                .push(format!("{me} ran before its start was on disk"));
        }
        for &d in &deps[node] {
            let dep = &names[d];
            if !has(&|e| matches!(e, Event::StepSucceeded { step, .. } if step == dep)) {
                seen.lock()
                    .unwrap()
                    .push(format!("{me} ran before {dep}'s success was on disk"));
            }
        }
        Ok(Value::Null)
    });
    let action: Arc<dyn Action> = if record_start_first {
        Arc::new(action)
    } else {
        Arc::new(Eager(action))
    };
    let outcome = run(
        Arc::new(nodes),
        vec![Prior::Pending; 60],
        options(8),
        action,
        journal,
        CancelToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Succeeded);
    assert_eq!(*violations.lock().unwrap(), Vec::<String>::new());
    let records = read_journal(&path).unwrap().records;
    for l in 0..6 {
        for w in 0..10 {
            assert_eq!(
                history(&records, &format!("s{l}-{w}")),
                ["started@1", "succeeded@1"]
            );
        }
    }
    assert!(matches!(
        records.last().map(|r| &r.event),
        Some(Event::RunFinished {
            status: FinalStatus::Succeeded
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_and_group_limits_are_never_exceeded() {
    let mut nodes = layered(3, 12);
    for (i, n) in nodes.iter_mut().enumerate() {
        if i % 2 == 0 {
            n.group = Some("db".into());
        }
    }
    let is_db: Vec<bool> = nodes.iter().map(|n| n.group.is_some()).collect();
    let now = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let peak = Arc::new((AtomicUsize::new(0), AtomicUsize::new(0)));
    let (n2, p2) = (now.clone(), peak.clone());
    let mut opts = options(4);
    opts.limits.insert("db".into(), 2);
    let (outcome, _) = run_with(
        nodes,
        opts,
        move |node, _, _| {
            let all = n2.0.fetch_add(1, Ordering::SeqCst) + 1;
            p2.0.fetch_max(all, Ordering::SeqCst);
            if is_db[node] {
                let db = n2.1.fetch_add(1, Ordering::SeqCst) + 1;
                p2.1.fetch_max(db, Ordering::SeqCst);
            }
            // Long enough for others to overlap if the limits let them.
            std::thread::sleep(Duration::from_millis(5));
            if is_db[node] {
                n2.1.fetch_sub(1, Ordering::SeqCst);
            }
            n2.0.fetch_sub(1, Ordering::SeqCst);
            Ok(Value::Null)
        },
        CancelToken::new(),
    )
    .await;
    assert_eq!(outcome, Outcome::Succeeded);
    assert!(peak.0.load(Ordering::SeqCst) <= 4, "{peak:?}");
    assert!(peak.1.load(Ordering::SeqCst) <= 2, "{peak:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_attempt_is_on_record_before_the_retry_starts() {
    let mut nodes = dag(&[("flaky", &[]), ("after", &[0])]);
    nodes[0].retries = 2;
    let (outcome, records) = run_with(
        nodes,
        options(4),
        |node, attempt, _| match (node, attempt) {
            (0, 1 | 2) => Err(format!("transient {attempt}")),
            _ => Ok(Value::from(attempt)),
        },
        CancelToken::new(),
    )
    .await;
    assert_eq!(outcome, Outcome::Succeeded);
    assert_eq!(
        history(&records, "flaky"),
        [
            "started@1",
            "failed@1+retry",
            "started@2",
            "failed@2+retry",
            "started@3",
            "succeeded@3"
        ]
    );
    assert_eq!(history(&records, "after"), ["started@1", "succeeded@1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_run_out_and_dependents_are_skipped() {
    let mut nodes = dag(&[("bad", &[]), ("after", &[0])]);
    nodes[0].retries = 1;
    let (outcome, records) = run_with(
        nodes,
        options(4),
        |_, _, _| Err("no".into()),
        CancelToken::new(),
    )
    .await;
    assert_eq!(outcome, Outcome::Failed(vec!["bad".into()]));
    assert_eq!(
        history(&records, "bad"),
        ["started@1", "failed@1+retry", "started@2", "failed@2"]
    );
    assert_eq!(history(&records, "after"), ["skipped"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_failure_no_new_step_starts_unless_keep_going() {
    for keep_going in [false, true] {
        let nodes = dag(&[("bad", &[]), ("b", &[]), ("c", &[])]);
        let mut opts = options(1);
        opts.keep_going = keep_going;
        let (outcome, records) = run_with(
            nodes,
            opts,
            |node, _, _| {
                if node == 0 {
                    Err("no".into())
                } else {
                    Ok(Value::Null)
                }
            },
            CancelToken::new(),
        )
        .await;
        assert_eq!(outcome, Outcome::Failed(vec!["bad".into()]));
        let others = [history(&records, "b"), history(&records, "c")];
        if keep_going {
            assert_eq!(others, [["started@1", "succeeded@1"]; 2]);
        } else {
            // The failure was still on its way to the disk when the slot came free;
            // once it settled, the steps that never started were finished as skipped.
            assert_eq!(others, [["skipped"]; 2]);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budgeted_failure_stops_nothing_yet_the_run_ends_failed_naming_it() {
    // item (budgeted, fails) · b · c; end (ran) after item; after-end after end.
    let mut nodes = dag(&[
        ("item", &[]),
        ("b", &[]),
        ("c", &[]),
        ("end", &[0]),
        ("after-end", &[3]),
    ]);
    nodes[0].budgeted = true;
    nodes[3].when = When::Ran;
    let (outcome, records) = run_with(
        nodes,
        options(1),
        |node, _, _| {
            if node == 0 {
                Err("no".into())
            } else {
                Ok(Value::Null)
            }
        },
        CancelToken::new(),
    )
    .await;
    assert_eq!(outcome, Outcome::Failed(vec!["item".into()]));
    for s in ["b", "c", "end", "after-end"] {
        assert_eq!(history(&records, s), ["started@1", "succeeded@1"], "{s}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_end_is_skipped_when_none_of_its_batch_ran() {
    // gate-ish "prev" fails → "item" skipped → "end" (ran) skipped too.
    let mut nodes = dag(&[("prev", &[]), ("item", &[0]), ("end", &[1])]);
    nodes[2].when = When::Ran;
    let (_, records) = run_with(
        nodes,
        options(2),
        |node, _, _| {
            if node == 0 {
                Err("no".into())
            } else {
                Ok(Value::Null)
            }
        },
        CancelToken::new(),
    )
    .await;
    assert_eq!(history(&records, "item"), ["skipped"]);
    assert_eq!(history(&records, "end"), ["skipped"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_fast_left_unstarted_steps_pending_and_the_always_report_never_ran() {
    // prep → patch-0..patch-4 → report (always) → after-report (success)
    let mut spec: Vec<(&str, &[usize])> = vec![("prep", &[])];
    let names = ["patch-0", "patch-1", "patch-2", "patch-3", "patch-4"];
    for n in names {
        spec.push((n, &[0]));
    }
    spec.push(("report", &[1, 2, 3, 4, 5]));
    spec.push(("after-report", &[6]));
    let mut nodes = dag(&spec);
    nodes[6].when = When::Always;
    let (outcome, records) = run_with(
        nodes,
        options(1),
        |node, _, _| {
            if node == 2 {
                Err("patch failed".into())
            } else {
                Ok(Value::Null)
            }
        },
        CancelToken::new(),
    )
    .await;
    assert_eq!(outcome, Outcome::Failed(vec!["patch-1".into()]));
    assert_eq!(history(&records, "patch-0"), ["started@1", "succeeded@1"]);
    assert_eq!(history(&records, "patch-1"), ["started@1", "failed@1"]);
    for n in ["patch-2", "patch-3", "patch-4"] {
        assert_eq!(history(&records, n), ["skipped"], "{n}");
    }
    let reason = records.iter().find_map(|r| match &r.event {
        Event::StepSkipped { step, reason } if step == "patch-3" => Some(reason.clone()),
        _ => None,
    });
    let reason = reason.expect("skip reason");
    assert!(
        reason.contains("patch-1") && reason.contains("--keep-going"),
        "{reason}"
    );
    assert_eq!(history(&records, "report"), ["started@1", "succeeded@1"]);
    // A `success` step after the report does not start: the run is stopping.
    assert_eq!(history(&records, "after-report"), ["skipped"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_leaves_unstarted_steps_pending_for_resume() {
    let nodes = dag(&[("a", &[]), ("b", &[0])]);
    let interrupt = CancelToken::new();
    let i2 = interrupt.clone();
    let (outcome, records) = run_with(
        nodes,
        options(1),
        move |_, _, cancel| {
            i2.cancel(CancelReason::Interrupted);
            while !cancel.is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err("interrupted".into())
        },
        interrupt,
    )
    .await;
    assert_eq!(outcome, Outcome::Cancelled);
    assert!(history(&records, "b").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_cancels_the_attempt_and_fails_it() {
    let mut nodes = dag(&[("slow", &[])]);
    nodes[0].timeout = Some(Duration::from_millis(20));
    let reason = Arc::new(Mutex::new(None));
    let r2 = reason.clone();
    let (outcome, records) = run_with(
        nodes,
        options(4),
        move |_, _, cancel| {
            while !cancel.is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            *r2.lock().unwrap() = cancel.reason();
            Ok(Value::Null)
        },
        CancelToken::new(),
    )
    .await;
    assert_eq!(outcome, Outcome::Failed(vec!["slow".into()]));
    assert_eq!(*reason.lock().unwrap(), Some(CancelReason::Timeout));
    let failed = records.iter().find_map(|r| match &r.event {
        Event::StepFailed { error, .. } => Some(error.clone()),
        _ => None,
    });
    assert_eq!(failed.as_deref(), Some("timed out after 20ms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_stops_running_steps_and_leaves_them_started() {
    let nodes = dag(&[("long", &[]), ("next", &[0])]);
    let interrupt = CancelToken::new();
    let trigger = interrupt.clone();
    let (outcome, records) = run_with(
        nodes,
        options(4),
        move |_, _, cancel| {
            // Ctrl-C arrives while the step runs.
            trigger.cancel(CancelReason::Interrupted);
            while !cancel.is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            Err("killed".into())
        },
        interrupt,
    )
    .await;
    assert_eq!(outcome, Outcome::Cancelled);
    assert_eq!(history(&records, "long"), ["started@1"]);
    assert!(history(&records, "next").is_empty());
    assert!(matches!(
        records.last().map(|r| &r.event),
        Some(Event::RunFinished {
            status: FinalStatus::Cancelled
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_during_a_retry_delay_starts_no_further_attempt() {
    let mut nodes = dag(&[("flaky", &[])]);
    nodes[0].retries = 3;
    nodes[0].retry_delay = Duration::from_secs(3600);
    let interrupt = CancelToken::new();
    let trigger = interrupt.clone();
    let mut opts = options(4);
    // Ctrl-C once the failed attempt is on disk, while the retry delay runs.
    opts.observer = Some(Arc::new(move |ev: &Event| {
        if matches!(
            ev,
            Event::StepFailed {
                will_retry: true,
                ..
            }
        ) {
            trigger.cancel(CancelReason::Interrupted);
        }
    }));
    let (outcome, records) =
        run_with(nodes, opts, |_, _, _| Err("transient".into()), interrupt).await;
    assert_eq!(outcome, Outcome::Cancelled);
    assert_eq!(history(&records, "flaky"), ["started@1", "failed@1+retry"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_observer_is_told_every_event_in_journal_order_before_run_returns() {
    let nodes = layered(4, 6);
    let told = Arc::new(Mutex::new(Vec::new()));
    let sink = told.clone();
    let mut opts = options(3);
    opts.keep_going = true;
    opts.observer = Some(Arc::new(move |ev: &Event| {
        sink.lock().unwrap().push(ev.clone());
    }));
    let (_, records) = run_with(
        nodes,
        opts,
        // One failure, so skips are told too.
        |node, _, _| {
            if node == 7 {
                Err("no".into())
            } else {
                Ok(Value::Null)
            }
        },
        CancelToken::new(),
    )
    .await;
    let journaled: Vec<Event> = records[1..].iter().map(|r| r.event.clone()).collect();
    assert!(journaled
        .iter()
        .any(|e| matches!(e, Event::StepSkipped { .. })));
    assert_eq!(*told.lock().unwrap(), journaled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_action_fails_its_step_and_the_run_goes_on_to_its_end() {
    let nodes = dag(&[("boom", &[]), ("fine", &[])]);
    let mut opts = options(4);
    opts.keep_going = true;
    let (outcome, records) = run_with(
        nodes,
        opts,
        |node, _, _| {
            if node == 0 {
                panic!("kaboom");
            }
            Ok(Value::Null)
        },
        CancelToken::new(),
    )
    .await;
    assert_eq!(outcome, Outcome::Failed(vec!["boom".into()]));
    let error = records.iter().find_map(|r| match &r.event {
        Event::StepFailed { error, .. } => Some(error.clone()),
        _ => None,
    });
    assert_eq!(error.as_deref(), Some("step panicked: kaboom"));
    assert_eq!(history(&records, "fine"), ["started@1", "succeeded@1"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_reach_later_steps_and_prior_results_are_not_rerun() {
    let nodes = dag(&[("a", &[]), ("b", &[0]), ("c", &[1])]);
    let ran = Arc::new(Mutex::new(Vec::new()));
    let r2 = ran.clone();
    let tmp = tempfile::tempdir().unwrap();
    let (journal, path) = journal_in(tmp.path());
    let prior = vec![Prior::Done(Value::from(7)), Prior::Pending, Prior::Pending];
    /// What each step saw: its index, its dependency's output, `any_output`.
    type Seen = Vec<(usize, Option<Value>, bool)>;
    struct Reader(Arc<Mutex<Seen>>);
    impl Action for Reader {
        fn run(
            &self,
            node: usize,
            _: u32,
            _: &CancelToken,
            done: &FinishedView,
        ) -> Result<Value, String> {
            let seen = (node, done.output(node - 1), done.any_output());
            self.0.lock().unwrap().push(seen);
            Ok(Value::Null)
        }
        fn gate(&self, _: usize, _: bool) -> GateState {
            GateState::Approved
        }
    }
    let outcome = run(
        Arc::new(nodes),
        prior,
        options(4),
        Arc::new(Reader(r2)),
        journal,
        CancelToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Succeeded);
    assert_eq!(
        *ran.lock().unwrap(),
        [
            (1, Some(Value::from(7)), true),
            (2, Some(Value::Null), true)
        ]
    );
    let records = read_journal(&path).unwrap().records;
    assert!(history(&records, "a").is_empty());
}
