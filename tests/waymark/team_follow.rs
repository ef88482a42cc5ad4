//! Followers of a run in the database (`log --follow`, `status --watch`) are woken by
//! LISTEN/NOTIFY: with the polling fallback stretched to an hour (test hook
//! `WAYMARK_FOLLOW_FALLBACK`), only notifications can bring them each new line and the
//! run's end within the harness's 20 s.

use crate::harness::{wait_until, Test};
use crate::pg;
use crate::team_pg::spawn_run;
use std::io::BufRead;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

#[test]
fn followers_are_woken_by_notifications_not_by_polling() {
    let Some((_c, _db, url)) = pg::database("followers_are_woken_by_notifications_not_by_polling")
    else {
        return;
    };
    let t = Test::new().file(
        "rb.rhai",
        r#"runbook(#{ name: "f", description: "d" });
step("slow", #{ run: |ctx| {
    log("line 1");
    wait_until(|| exec("test", ["-f", "go"], #{ check: false }).code == 0, #{ timeout: "60s", every: "50ms" });
    log("line 2");
} });"#,
    );
    let mut run = spawn_run(&t, &url, None, &[], Stdio::null());
    let id = wait_until("the run exists", || {
        let o = t
            .bare()
            .args(["runs", "--json", "--state-dir", &url])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).ok()?;
        Some(v.as_array()?.last()?["run_id"].as_str()?.to_string())
    });
    let follower = |args: &[&str]| {
        t.bare()
            .args(args)
            .args(["--state-dir", &url])
            .env("WAYMARK_FOLLOW_FALLBACK", "1h")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut follow = follower(&["log", &id, "slow", "--follow"]);
    let mut watch = follower(&["status", &id, "--watch"]);
    let seen = Arc::new(Mutex::new(String::new()));
    let reader = {
        let (out, seen) = (follow.stdout.take().unwrap(), seen.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let mut s = seen.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        })
    };
    let has = |what: &str| seen.lock().unwrap().contains(what);
    wait_until("line 1 followed", || has("line 1").then_some(()));
    assert!(!has("line 2"));
    std::fs::write(t.path().join("go"), "").unwrap();
    wait_until("line 2 followed", || has("line 2").then_some(()));
    assert!(run.wait().unwrap().success());
    // The run's end (its lease released) reaches both followers, which stop.
    wait_until("the follower stopped", || follow.try_wait().unwrap());
    wait_until("the watcher stopped", || watch.try_wait().unwrap());
    reader.join().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut watch.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.contains(&format!("run {id} succeeded")), "{err}");
}
