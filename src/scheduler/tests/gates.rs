//! Gates run beside the loop: a rehearsal or an ask that takes its time never holds up an
//! independent step, a rehearsal is journaled like an attempt, an interrupt stops it and
//! the gate's timeout bounds it.

use super::*;
use std::sync::atomic::AtomicBool;

type Rehearse = dyn Fn(&CancelToken) -> Result<(), String> + Send + Sync;

/// Gate 0 beside step 1: the step sets `ran`; the gate rehearses with `rehearse` (if
/// any) and is asked with `ask`.
struct Beside {
    ran: Arc<AtomicBool>,
    rehearse: Option<Box<Rehearse>>,
    ask: Box<dyn Fn() -> GateState + Send + Sync>,
}

impl Action for Beside {
    fn run(&self, _: usize, _: u32, _: &CancelToken, _: &FinishedView) -> Result<Value, String> {
        self.ran.store(true, Ordering::SeqCst);
        Ok(Value::Null)
    }
    fn gate(&self, _: usize, _: bool) -> GateState {
        (self.ask)()
    }
    fn rehearses(&self, _: usize) -> bool {
        self.rehearse.is_some()
    }
    fn rehearse(
        &self,
        _: usize,
        _: u32,
        cancel: &CancelToken,
        _: &FinishedView,
    ) -> Result<(), String> {
        self.rehearse.as_ref().map_or(Ok(()), |r| r(cancel))
    }
}

fn gate_beside_a_step() -> Vec<Node> {
    let mut nodes = dag(&[("g", &[]), ("s", &[])]);
    nodes[0].kind = NodeKind::Gate;
    nodes
}

/// Waits (up to five minutes — an upper bound for a loaded machine, never reached when
/// the flag comes — or until `cancel` fires) for `flag`; true when it was set.
fn wait_for(flag: &AtomicBool, cancel: Option<&CancelToken>) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    while !flag.load(Ordering::SeqCst) {
        if std::time::Instant::now() > deadline || cancel.is_some_and(|c| c.is_cancelled()) {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    true
}

async fn run_beside(
    nodes: Vec<Node>,
    action: Beside,
    interrupt: CancelToken,
) -> (Outcome, Vec<Record>) {
    run_action(nodes, options(4), Arc::new(action), interrupt).await
}

/// The sequence number of the first record `want` matches.
fn seq_of(records: &[Record], want: impl Fn(&Event) -> bool) -> Option<u64> {
    records.iter().find(|r| want(&r.event)).map(|r| r.seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_never_holds_up_an_independent_step() {
    // The rehearsal ends only once the independent step's success is durable (the
    // observer is told of each durable event): were it run on the loop, the step could
    // not be settled and the rehearsal would fail. Waiting for that event, not for the
    // step merely having run, keeps the journal order below certain under any load.
    let settled = Arc::new(AtomicBool::new(false));
    let seen = settled.clone();
    let told = settled.clone();
    let action = Beside {
        ran: Arc::default(),
        rehearse: Some(Box::new(move |c: &CancelToken| {
            if wait_for(&seen, Some(c)) {
                Ok(())
            } else {
                Err("the independent step never settled".into())
            }
        })),
        ask: Box::new(|| GateState::Approved),
    };
    let opts = Options {
        observer: Some(Arc::new(move |e: &Event| {
            if matches!(e, Event::StepSucceeded { step, .. } if step == "s") {
                told.store(true, Ordering::SeqCst);
            }
        })),
        ..options(4)
    };
    let (outcome, records) = run_action(
        gate_beside_a_step(),
        opts,
        Arc::new(action),
        CancelToken::new(),
    )
    .await;
    assert_eq!(outcome, Outcome::Succeeded);
    let waiting = seq_of(&records, |e| matches!(e, Event::GateWaiting { .. }));
    let started = seq_of(
        &records,
        |e| matches!(e, Event::RehearsalStarted { gate, attempt: 1 } if gate == "g"),
    );
    let ended = seq_of(
        &records,
        |e| matches!(e, Event::RehearsalEnded { gate, error: None, .. } if gate == "g"),
    );
    let step_done = seq_of(
        &records,
        |e| matches!(e, Event::StepSucceeded { step, .. } if step == "s"),
    );
    let approved = seq_of(
        &records,
        |e| matches!(e, Event::StepSucceeded { step, .. } if step == "g"),
    );
    let all = [waiting, started, step_done, ended, approved];
    assert!(all.iter().all(Option::is_some), "{records:#?}");
    assert!(waiting <= started && started < ended, "{records:#?}");
    assert!(step_done < ended && ended < approved, "{records:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ask_that_takes_its_time_never_holds_up_an_independent_step() {
    let ran = Arc::new(AtomicBool::new(false));
    let seen = ran.clone();
    let action = Beside {
        ran,
        rehearse: None,
        ask: Box::new(move || {
            if wait_for(&seen, None) {
                GateState::Approved
            } else {
                GateState::Rejected("the independent step never ran".into())
            }
        }),
    };
    let (outcome, records) = run_beside(gate_beside_a_step(), action, CancelToken::new()).await;
    assert_eq!(outcome, Outcome::Succeeded);
    assert_eq!(history(&records, "s"), ["started@1", "succeeded@1"]);
    assert!(!records
        .iter()
        .any(|r| matches!(r.event, Event::RehearsalStarted { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_stops_a_rehearsal_and_leaves_it_started() {
    let interrupt = CancelToken::new();
    let trigger = interrupt.clone();
    let reason = Arc::new(Mutex::new(None));
    let r2 = reason.clone();
    let mut nodes = gate_beside_a_step();
    nodes.truncate(1);
    let action = Beside {
        ran: Arc::default(),
        rehearse: Some(Box::new(move |c: &CancelToken| {
            // Ctrl-C arrives while the rehearsal runs.
            trigger.cancel(CancelReason::Interrupted);
            wait_for(&AtomicBool::new(false), Some(c));
            *r2.lock().unwrap() = c.reason();
            Err("interrupted".into())
        })),
        ask: Box::new(|| GateState::Approved),
    };
    let (outcome, records) = run_beside(nodes, action, interrupt).await;
    assert_eq!(outcome, Outcome::Cancelled);
    assert_eq!(*reason.lock().unwrap(), Some(CancelReason::Interrupted));
    let events: Vec<&Event> = records[1..].iter().map(|r| &r.event).collect();
    assert!(
        matches!(
            events.as_slice(),
            [
                Event::GateWaiting { .. },
                Event::RehearsalStarted { .. },
                Event::RunFinished {
                    status: FinalStatus::Cancelled
                }
            ]
        ),
        "{events:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_that_outlives_the_gate_timeout_rejects_the_gate() {
    let mut nodes = gate_beside_a_step();
    nodes.truncate(1);
    nodes[0].timeout = Some(Duration::from_millis(20));
    let action = Beside {
        ran: Arc::default(),
        rehearse: Some(Box::new(|c: &CancelToken| {
            wait_for(&AtomicBool::new(false), Some(c));
            Ok(())
        })),
        ask: Box::new(|| GateState::Approved),
    };
    let (outcome, records) = run_beside(nodes, action, CancelToken::new()).await;
    let why =
        "the rehearsal of this gate failed: it did not finish within the gate's timeout of 20ms";
    assert_eq!(
        outcome,
        Outcome::Failed(vec![format!("g (rejected: {why})")])
    );
    let error = records.iter().find_map(|r| match &r.event {
        Event::RehearsalEnded { error, .. } => error.clone(),
        _ => None,
    });
    assert_eq!(
        error.as_deref(),
        Some("it did not finish within the gate's timeout of 20ms")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_rehearsed_in_an_earlier_process_opens_without_rehearsing_again() {
    let rehearsals = Arc::new(AtomicUsize::new(0));
    let counted = rehearsals.clone();
    let action = Beside {
        ran: Arc::default(),
        rehearse: Some(Box::new(move |_: &CancelToken| {
            counted.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })),
        ask: Box::new(|| GateState::Approved),
    };
    let tmp = tempfile::tempdir().unwrap();
    let (journal, path) = journal_in(tmp.path());
    let prior = vec![Prior::Rehearsed, Prior::Pending];
    let outcome = run(
        Arc::new(gate_beside_a_step()),
        prior,
        options(4),
        Arc::new(action),
        journal,
        CancelToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(outcome, Outcome::Succeeded);
    assert_eq!(rehearsals.load(Ordering::SeqCst), 0);
    let records = read_journal(&path).unwrap().records;
    assert!(seq_of(&records, |e| matches!(e, Event::GateWaiting { .. })).is_some());
    assert!(
        seq_of(&records, |e| matches!(e, Event::RehearsalStarted { .. })).is_none(),
        "{records:#?}"
    );
}

/// A lone gate asked with `ask(n)` on its n-th ask (from 0): the outcome and how many
/// asks there were.
async fn lone_gate(ask: impl Fn(usize) -> GateState + Send + Sync + 'static) -> (Outcome, usize) {
    let asks = Arc::new(AtomicUsize::new(0));
    let counted = asks.clone();
    let mut nodes = gate_beside_a_step();
    nodes.truncate(1);
    let action = Beside {
        ran: Arc::default(),
        rehearse: None,
        ask: Box::new(move || ask(counted.fetch_add(1, Ordering::SeqCst))),
    };
    let (outcome, _) = run_beside(nodes, action, CancelToken::new()).await;
    (outcome, asks.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_is_asked_once_more_before_the_run_pauses_on_it() {
    // The first ask finds nothing; the decision lands just after it (a prompt's answer
    // reaching the inbox as the prompt closes). The run must find it rather than pause.
    let (outcome, asks) = lone_gate(|n| {
        if n == 0 {
            GateState::Waiting
        } else {
            GateState::Approved
        }
    })
    .await;
    assert_eq!((outcome, asks), (Outcome::Succeeded, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gate_nobody_decides_is_asked_once_more_then_the_run_pauses() {
    let (outcome, asks) = lone_gate(|_| GateState::Waiting).await;
    assert_eq!((outcome, asks), (Outcome::Paused(vec!["g".into()]), 2));
}
