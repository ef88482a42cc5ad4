//! The scheduler on its own, with plain Rust actions: exactly-once and dependency order
//! on generated DAGs, concurrency and group limits, when-conditions.

use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use waymark::cancel::CancelToken;
use waymark::dsl::When;
use waymark::journal::{Event, JournalWriter};
use waymark::scheduler::{
    self, Action, FinishedView, GateState, Node, NodeKind, Options, Outcome, Prior,
};

#[derive(Default)]
struct Recorder {
    log: Mutex<Vec<(usize, bool)>>, // (node, true = start / false = end)
    running: AtomicUsize,
    peak: AtomicUsize,
    fail: Vec<usize>,
    sleep: Duration,
}

impl Action for Recorder {
    fn run(
        &self,
        node: usize,
        _attempt: u32,
        _c: &CancelToken,
        _d: &FinishedView,
    ) -> Result<Value, String> {
        let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        self.log.lock().unwrap().push((node, true));
        std::thread::sleep(self.sleep);
        self.log.lock().unwrap().push((node, false));
        self.running.fetch_sub(1, Ordering::SeqCst);
        if self.fail.contains(&node) {
            Err(format!("node {node} failed"))
        } else {
            Ok(Value::from(node as u64))
        }
    }
    fn gate(&self, _node: usize, _first: bool) -> GateState {
        GateState::Approved
    }
}

// A deterministic pseudo-random DAG: each node depends on up to 3 earlier nodes.
fn dag(n: usize, seed: u64) -> Vec<Node> {
    let mut x = seed;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut nodes: Vec<Node> = (0..n)
        .map(|i| Node {
            name: format!("n{i}"),
            kind: NodeKind::Step,
            deps: vec![],
            dependents: vec![],
            when: When::Success,
            retries: 0,
            retry_delay: Duration::ZERO,
            timeout: None,
            group: None,
            budgeted: false,
        })
        .collect();
    for i in 1..n {
        let k = (rnd() % 4) as usize;
        for _ in 0..k {
            let d = (rnd() % i as u64) as usize;
            if !nodes[i].deps.contains(&d) {
                nodes[i].deps.push(d);
                nodes[d].dependents.push(i);
            }
        }
    }
    nodes
}

fn journal() -> (tempfile::TempDir, JournalWriter) {
    let dir = tempfile::tempdir().unwrap();
    let first = Event::sample_run_started(&[]);
    let (w, _) = JournalWriter::create(&dir.path().join("run"), first).unwrap();
    (dir, w)
}

fn go(nodes: Vec<Node>, action: Arc<Recorder>, opts: Options) -> Outcome {
    let (_dir, w) = journal();
    let n = nodes.len();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(scheduler::run(
        Arc::new(nodes),
        vec![Prior::Pending; n],
        opts,
        action,
        w,
        CancelToken::new(),
    ))
    .unwrap()
}

#[test]
fn generated_dags_run_every_node_once_after_all_its_dependencies() {
    for seed in [1u64, 7, 42, 1234, 99991] {
        let nodes = dag(300, seed);
        let rec = Arc::new(Recorder::default());
        let out = go(
            nodes.clone(),
            rec.clone(),
            Options {
                concurrency: 8,
                ..Options::default()
            },
        );
        assert_eq!(out, Outcome::Succeeded, "seed {seed}");
        let log = rec.log.lock().unwrap();
        let mut ended_at = HashMap::new();
        let mut started_at = HashMap::new();
        for (pos, (node, start)) in log.iter().enumerate() {
            let map = if *start {
                &mut started_at
            } else {
                &mut ended_at
            };
            assert!(
                map.insert(*node, pos).is_none(),
                "seed {seed}: node {node} ran twice"
            );
        }
        assert_eq!(started_at.len(), 300, "seed {seed}: every node ran");
        for (i, n) in nodes.iter().enumerate() {
            for d in &n.deps {
                assert!(
                    ended_at[d] < started_at[&i],
                    "seed {seed}: n{i} started before its dependency n{d} ended"
                );
            }
        }
    }
}

#[test]
fn concurrency_and_group_limits_hold() {
    let mut nodes = dag(40, 5);
    for n in &mut nodes {
        n.deps.clear();
        n.dependents.clear();
    }
    let rec = Arc::new(Recorder {
        sleep: Duration::from_millis(20),
        ..Default::default()
    });
    go(
        nodes.clone(),
        rec.clone(),
        Options {
            concurrency: 3,
            ..Options::default()
        },
    );
    assert!(
        rec.peak.load(Ordering::SeqCst) <= 3,
        "peak {}",
        rec.peak.load(Ordering::SeqCst)
    );
    assert!(
        rec.peak.load(Ordering::SeqCst) >= 2,
        "steps did run in parallel"
    );

    for n in &mut nodes {
        n.group = Some("site-servers".into());
    }
    let rec = Arc::new(Recorder {
        sleep: Duration::from_millis(10),
        ..Default::default()
    });
    let limits = HashMap::from([("site-servers".to_string(), 1)]);
    go(
        nodes,
        rec.clone(),
        Options {
            concurrency: 8,
            limits,
            ..Options::default()
        },
    );
    assert_eq!(
        rec.peak.load(Ordering::SeqCst),
        1,
        "group limit 1 means one at a time"
    );
}

#[test]
fn keep_going_runs_independent_branches_after_a_failure() {
    // 0 fails; 1 depends on 0; 2 and 3 are independent (3 after 2).
    let mut nodes = dag(4, 3);
    for n in &mut nodes {
        n.deps.clear();
        n.dependents.clear();
    }
    nodes[1].deps = vec![0];
    nodes[0].dependents = vec![1];
    nodes[3].deps = vec![2];
    nodes[2].dependents = vec![3];
    let rec = Arc::new(Recorder {
        fail: vec![0],
        sleep: Duration::from_millis(30),
        ..Default::default()
    });
    let out = go(
        nodes.clone(),
        rec.clone(),
        Options {
            concurrency: 1,
            keep_going: true,
            ..Options::default()
        },
    );
    assert_eq!(out, Outcome::Failed(vec!["n0".into()]));
    let ran: Vec<usize> = rec
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, s)| *s)
        .map(|(n, _)| *n)
        .collect();
    assert!(
        ran.contains(&2) && ran.contains(&3),
        "independent branch ran: {ran:?}"
    );
    assert!(
        !ran.contains(&1),
        "the dependent of the failure never starts: {ran:?}"
    );
}
