//! Notifications as an approver receives them: a webhook on a loopback HTTP server
//! started here, a command hook writing a file, and hooks that fail without harming
//! the run.

use crate::harness::{expect_code, Test};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

/// A loopback HTTP server that answers 200 and hands each request (path, JSON body)
/// to the returned channel.
fn webhook_server() -> (String, mpsc::Receiver<(String, Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/waymark/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            reader.read_line(&mut request).unwrap();
            let path = request.split(' ').nth(1).unwrap_or("").to_string();
            let mut len = 0usize;
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                line.clear();
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            if tx
                .send((path, serde_json::from_slice(&body).unwrap()))
                .is_err()
            {
                return;
            }
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (url, rx)
}

const GATED: &str = r#"
runbook(#{ name: "Notify demo" });
let prep = step("prepare", #{ run: |ctx| 1, idempotent: true });
gate("sign-off", #{
    after: prep,
    title: "Sign off the <change>",
    instructions: "Check the backup, then approve.",
});
step("deploy", #{ after: "sign-off", run: |ctx| fail("token " + secret("api_token") + " refused") });
"#;

fn received(rx: &mpsc::Receiver<(String, Value)>) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok((path, v)) = rx.recv_timeout(Duration::from_millis(500)) {
        assert_eq!(path, "/waymark/hook");
        out.push(v);
    }
    out
}

#[test]
fn a_webhook_hears_the_gate_the_pause_and_the_failure_without_the_secret() {
    let (url, rx) = webhook_server();
    let t = Test::new()
        .file("gated.rhai", GATED)
        .env("WAYMARK_NOTIFY_WEBHOOK", &url)
        .env("WAYMARK_SECRET_API_TOKEN", "tok-9f8e7d6c");
    let wm = |args: &[&str]| t.bare().args(args).output().unwrap();
    expect_code(
        &wm(&[
            "run",
            "gated.rhai",
            "--non-interactive",
            "--state-dir",
            "st",
        ]),
        3,
    );
    let id = {
        let runs = t.path().join("st/runs");
        std::fs::read_dir(runs)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .file_name()
            .into_string()
            .unwrap()
    };
    let first = received(&rx);
    let events: Vec<&str> = first.iter().map(|v| v["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["gate_waiting", "run_paused"]);
    let gate = &first[0];
    assert_eq!(gate["run_id"], id.as_str());
    assert_eq!(gate["runbook"], "Notify demo");
    assert_eq!(gate["gates"][0]["name"], "sign-off");
    assert_eq!(gate["gates"][0]["title"], "Sign off the <change>");
    assert_eq!(
        gate["gates"][0]["instructions"],
        "Check the backup, then approve."
    );
    let approve = format!("waymark approve {id} sign-off --state-dir st");
    assert_eq!(gate["commands"]["approve"], approve.as_str());
    assert_eq!(
        first[1]["commands"]["resume"],
        format!("waymark resume {id} --state-dir st").as_str()
    );
    assert_eq!(first[1]["gates"][0]["approve"], approve.as_str());

    // The printed approve command works as given; the resumed run then fails.
    let argv: Vec<&str> = approve.split(' ').skip(1).collect();
    expect_code(&wm(&argv), 0);
    expect_code(
        &wm(&["resume", &id, "--non-interactive", "--state-dir", "st"]),
        1,
    );
    let second = received(&rx);
    let events: Vec<&str> = second
        .iter()
        .map(|v| v["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["run_failed"]);
    let text = second[0].to_string();
    assert!(
        !text.contains("tok-9f8e7d6c"),
        "a secret reached the webhook: {text}"
    );
    assert!(
        second[0]["failed"][0]
            .as_str()
            .unwrap()
            .starts_with("deploy"),
        "{text}"
    );
    assert!(second[0]["text"].as_str().unwrap().contains("FAILED"));
}

#[test]
fn a_runbook_command_hook_gets_the_payload_on_stdin_and_yes_calls_nobody_to_gates() {
    let rb = r#"
runbook(#{ name: "Cmd hook", notify: #{ command: ["sh", "-c", "cat >> got.jsonl; echo >> got.jsonl"] } });
gate("g", #{ title: "G", instructions: "Approve." });
step("s", #{ after: "g", run: |ctx| 1 });
"#;
    let t = Test::new()
        .file("c.rhai", rb)
        .args(&["run", "c.rhai", "--yes"]);
    let o = t.run();
    assert_eq!(o.code, 0, "{}", o.stderr);
    let got = std::fs::read_to_string(t.path().join("got.jsonl")).unwrap();
    let events: Vec<String> = got
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(events, ["run_succeeded"]);
}

#[test]
fn an_inventory_webhook_that_nobody_answers_is_retried_then_logged_and_the_run_succeeds() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/estates/single-ns.toml"
    );
    let inv = format!(
        "{}\n[notify]\nwebhook = \"http://127.0.0.1:{port}/gone\"\n",
        std::fs::read_to_string(shipped).unwrap()
    );
    let t = Test::new()
        .file("estate.toml", &inv)
        .file(
            "ok.rhai",
            "runbook(#{ name: \"ok\" });\nstep(\"s\", #{ run: |ctx| 1 });\n",
        )
        .args(&["run", "ok.rhai", "--inventory", "estate.toml", "--yes"]);
    let o = t.run();
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(
        o.stderr.contains("notification `run_succeeded` by webhook failed 4 times, giving up (the run is not affected)"),
        "{}",
        o.stderr
    );
}

#[test]
fn an_https_webhook_is_refused_with_the_command_hook_that_reaches_it() {
    let rb = "runbook(#{ name: \"x\", notify: #{ webhook: \"https://hooks.example/T1\" } });\nstep(\"s\", #{ run: |ctx| 1 });\n";
    let t = Test::new()
        .file("h.rhai", rb)
        .args(&["run", "h.rhai", "--yes"]);
    let o = t.run();
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("h.rhai:1:"), "{}", o.stderr);
    assert!(
        o.stderr.contains("https:// is not supported"),
        "{}",
        o.stderr
    );
    assert!(o.stderr.contains("--data-binary"), "{}", o.stderr);
    assert!(!t.path().join(".waymark/runs").exists(), "no run may start");

    let t = Test::new()
        .file(
            "ok.rhai",
            "runbook(#{ name: \"ok\" });\nstep(\"s\", #{ run: |ctx| 1 });\n",
        )
        .env("WAYMARK_NOTIFY_WEBHOOK", "https://x/")
        .args(&["run", "ok.rhai", "--yes"]);
    let o = t.run();
    assert_eq!(o.code, 2, "{}", o.stderr);
    assert!(o.stderr.contains("WAYMARK_NOTIFY_WEBHOOK"), "{}", o.stderr);
    assert!(!t.path().join(".waymark/runs").exists(), "no run may start");
}
