//! Notifications against a loopback HTTP server and real commands.

use super::*;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;

/// A loopback HTTP server answering `statuses` in turn (then 200), handing each
/// request's body to the returned channel.
pub(crate) fn server(statuses: Vec<u16>) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut statuses = statuses.into_iter();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            // Handed over before answering, so a client that saw the answer can
            // rely on the body being in the channel.
            if tx.send(String::from_utf8(body).unwrap()).is_err() {
                return;
            }
            let code = statuses.next().unwrap_or(200);
            let _ = write!(stream, "HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (url, rx)
}

fn quick() -> Delivery {
    Delivery {
        attempts: 3,
        backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
        gate_delay: Duration::from_millis(300),
    }
}

fn run() -> RunInfo {
    RunInfo {
        run_id: "20270115-010203-abcd".into(),
        runbook: "ITMS".into(),
        state_dir_flag: " --state-dir /srv/wm".into(),
    }
}

#[test]
fn a_gate_payload_carries_the_exact_commands() {
    let g = GateInfo {
        name: "sim-upgrade".into(),
        title: Some("Run SIM".into()),
        instructions: Some("Open SIM and upgrade".into()),
    };
    let p = payload(&run(), Kind::GateWaiting, &[g], &[]);
    assert_eq!(p["event"], "gate_waiting");
    assert_eq!(p["gates"][0]["title"], "Run SIM");
    assert_eq!(p["gates"][0]["instructions"], "Open SIM and upgrade");
    assert_eq!(
        p["commands"]["approve"],
        "waymark approve 20270115-010203-abcd sim-upgrade --state-dir /srv/wm"
    );
    assert_eq!(
        p["commands"]["resume"],
        "waymark resume 20270115-010203-abcd --state-dir /srv/wm"
    );
    let done = payload(&run(), Kind::RunSucceeded, &[], &[]);
    assert!(done["commands"].get("resume").is_none());
}

#[test]
fn a_webhook_that_fails_twice_gets_the_payload_on_the_third_try_scrubbed() {
    let (url, rx) = server(vec![500, 503]);
    let redactor = Redactor::new();
    redactor.add("s3cret-token");
    let n = Notifier::start(
        Hooks {
            webhook: Some(url),
            command: None,
        },
        redactor,
        quick(),
    )
    .unwrap();
    n.send(payload(
        &run(),
        Kind::RunFailed,
        &[],
        &["backup: token s3cret-token refused".into()],
    ));
    n.finish(Duration::from_secs(10));
    let bodies: Vec<String> = rx.try_iter().collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert!(bodies.iter().all(|b| !b.contains("s3cret-token")));
    let v: Value = serde_json::from_str(&bodies[2]).unwrap();
    assert_eq!(v["event"], "run_failed");
    assert_eq!(v["failed"][0], "backup: token [REDACTED] refused");
}

#[test]
fn a_gate_decided_quickly_calls_nobody_and_one_left_waiting_does() {
    let (url, rx) = server(vec![]);
    let n = Notifier::start(
        Hooks {
            webhook: Some(url),
            command: None,
        },
        Redactor::new(),
        quick(),
    )
    .unwrap();
    let gate = |name: &str| GateInfo {
        name: name.into(),
        title: None,
        instructions: None,
    };
    n.gate_waiting(
        "quick",
        payload(&run(), Kind::GateWaiting, &[gate("quick")], &[]),
    );
    n.gate_decided("quick");
    n.gate_waiting(
        "slow",
        payload(&run(), Kind::GateWaiting, &[gate("slow")], &[]),
    );
    let (_, body) = (0, rx.recv_timeout(Duration::from_secs(5)).unwrap());
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["gates"][0]["name"], "slow");
    // Held back, then flushed ahead of a run-level event.
    n.gate_waiting(
        "late",
        payload(&run(), Kind::GateWaiting, &[gate("late")], &[]),
    );
    n.send(payload(&run(), Kind::RunPaused, &[gate("late")], &[]));
    n.finish(Duration::from_secs(10));
    let events: Vec<Value> = rx
        .try_iter()
        .map(|b| serde_json::from_str(&b).unwrap())
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["event"], "gate_waiting");
    assert_eq!(events[1]["event"], "run_paused");
}

#[test]
fn an_unreachable_webhook_gives_up_without_blocking_send() {
    // Bind then drop: nothing listens on that port any more.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let n = Notifier::start(
        Hooks {
            webhook: Some(format!("http://127.0.0.1:{port}/")),
            command: None,
        },
        Redactor::new(),
        quick(),
    )
    .unwrap();
    let t = Instant::now();
    n.send(payload(&run(), Kind::RunCancelled, &[], &[]));
    assert!(
        t.elapsed() < Duration::from_secs(1),
        "send must not wait for delivery"
    );
    n.finish(Duration::from_secs(10));
}

#[test]
fn a_command_hook_reads_the_payload_on_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("got.json");
    let n = Notifier::start(
        Hooks {
            webhook: None,
            command: Some(vec![
                "sh".into(),
                "-c".into(),
                format!(
                    "cat > '{}'; test \"$WAYMARK_NOTIFY_EVENT\" = run_paused",
                    out.display()
                ),
            ]),
        },
        Redactor::new(),
        quick(),
    )
    .unwrap();
    n.send(payload(&run(), Kind::RunPaused, &[], &[]));
    n.finish(Duration::from_secs(10));
    let v: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["event"], "run_paused");
}

#[test]
fn a_failing_or_hanging_command_is_an_error_not_a_hang() {
    let argv = |s: &str| vec!["sh".to_string(), "-c".to_string(), s.to_string()];
    let e = run_command(
        &argv("echo nope >&2; exit 3"),
        b"{}",
        "x",
        Duration::from_secs(5),
    )
    .unwrap_err();
    assert!(e.contains("nope"), "{e}");
    let e = run_command(&argv("sleep 5"), b"{}", "x", Duration::from_millis(100)).unwrap_err();
    assert!(e.contains("killed"), "{e}");
    let e = run_command(
        &["/no/such/program".into()],
        b"{}",
        "x",
        Duration::from_secs(1),
    )
    .unwrap_err();
    assert!(e.contains("cannot run"), "{e}");
}

#[test]
fn each_key_comes_from_the_most_specific_place() {
    let runbook = Hooks {
        webhook: Some("http://a/".into()),
        command: Some(vec!["x".into()]),
    };
    let inventory = Hooks {
        webhook: Some("http://b/".into()),
        command: None,
    };
    let env = Hooks::default();
    let h = env.or(&inventory.or(&runbook));
    assert_eq!(h.webhook.as_deref(), Some("http://b/"));
    assert_eq!(h.command, Some(vec!["x".to_string()]));
    assert!(check_command(&[]).is_err());
    assert!(check_command(&[" ".into()]).is_err());
}
