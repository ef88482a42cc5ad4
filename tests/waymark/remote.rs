//! `host:` on exec/sh against real OpenSSH servers on loopback ports (see `sshd.rs`):
//! arguments arrive intact, a host's commands share one connection, a timeout, Ctrl-C
//! or `kill -9` leaves nothing running remotely, and unreachable hosts are `transient`.

use std::process::Stdio;
use std::time::Duration;

use crate::harness::Test;
use crate::sshd::{eventually, keys, running, Keys, Sshd};

fn inventory(servers: &[(&str, &Sshd)], keys: &Keys) -> String {
    let mut inv = "name = \"team\"\n".to_string();
    for (name, s) in servers {
        inv.push_str(&s.server(name, keys));
    }
    inv
}

/// A `sleep` no other test (or run) starts, to find its processes by command line.
fn marker(n: u32) -> String {
    format!("sleep 1{n}{}.5", std::process::id())
}

#[test]
fn hostile_arguments_arrive_intact_and_a_hosts_commands_share_one_connection() {
    let Some(keys) = keys("hostile_arguments_arrive_intact…") else {
        return;
    };
    let (web1, web2) = (Sshd::start(&keys, true), Sshd::start(&keys, true));
    let t = Test::new()
        .file("inv.toml", &inventory(&[("web1", &web1), ("web2", &web2)], &keys))
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "remote", description: "d" });
step("hostile", #{ run: |ctx| {
    let args = ["it's", "$(touch pwned)", "`touch pwned`", "a\nb", "ünï ✓", "", "*", "--x", "a;b|c&d", "\\", "\"q\""];
    let r = exec("python3", ["-c", "import json,sys; print(json.dumps(sys.argv[1:]))"] + args, #{ host: "web1" });
    let got = parse_json(r.stdout);
    if got != args { throw "arguments changed on the way: " + r.stdout; }
    let e = sh("printf '%s' \"$X\"", #{ host: "web1", env: #{ X: "$(id) 'x'" } });
    if e.stdout != "$(id) 'x'" { throw "env changed: " + e.stdout; }
    let i = exec("cat", [], #{ host: "web1", stdin: "line one\n'two' $(three)\n" });
    if i.stdout != "line one\n'two' $(three)\n" { throw "stdin changed: " + i.stdout; }
    let c = exec("pwd", [], #{ host: "web2", cwd: "/tmp" });
    if c.stdout.trimmed() != "/tmp" { throw "cwd: " + c.stdout; }
    let f = exec("sh", ["-c", "exit 7"], #{ host: "web2", check: false });
    if f.code != 7 { throw "exit code: " + f.code; }
}});
step("many", #{ after: ["hostile"], run: |ctx| {
    for i in 0..10 { sh("echo " + i, #{ host: "web1" }); }
    sh("true", #{ host: "web2" });
}});
step("files", #{ after: ["many"], run: |ctx| {
    let dir = trimmed(exec("mktemp", ["-d"], #{ host: "web1" }).stdout);
    let far = dir + "/it's $(x) ünï.bin";
    upload("web1", "payload.bin", far);
    download("web1", far, "back.bin");
    try { download("web1", dir + "/missing", "x.bin"); throw "no error"; }
    catch (e) { if !`${e}`.contains("download web1:") { throw e; } }
    exec("rm", ["-r", dir], #{ host: "web1" });
}});
"#,
        )
        .args(&["run", "rb.rhai", "--inventory", "inv.toml"]);
    let payload: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    std::fs::write(t.path().join("payload.bin"), &payload).unwrap();
    let o = t.run();
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert!(!t.path().join("pwned").exists());
    assert!(
        std::fs::read(t.path().join("back.bin")).unwrap() == payload,
        "the file changed on its way"
    );
    // Fifteen commands and three copies on web1, three commands on web2: one
    // connection each.
    assert_eq!(web1.connections(), 1, "{}", web1.log());
    assert_eq!(web2.connections(), 1, "{}", web2.log());
    // The step log shows each command once, readably, with its host.
    let log = t
        .bare()
        .args(["log", &t.run_id(), "hostile"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&log.stdout);
    assert!(log.contains("$ web1: python3 -c "), "{log}");
    assert!(log.contains("$ web2: pwd"), "{log}");
    assert!(!log.contains("ssh ") && !log.contains("setsid"), "{log}");
}

/// A run of one step that starts `sleep`s `a` and `b` on web1 and waits for them
/// (`step_options` like `timeout: "3s", `), and the gone-check for both.
fn sleeping_run(keys: &Keys, web1: &Sshd, a: &str, b: &str, step_options: &str) -> Test {
    Test::new()
        .file("inv.toml", &inventory(&[("web1", web1)], keys))
        .file(
            "rb.rhai",
            &format!(
                r#"runbook(#{{ name: "remote", description: "d" }});
step("slow", #{{ {step_options}run: |ctx| {{ sh("{a} & {b}; wait", #{{ host: "web1" }}); }}}});
"#
            ),
        )
        .args(&["run", "rb.rhai", "--inventory", "inv.toml"])
}

fn gone(a: &str, b: &str) -> bool {
    eventually(Duration::from_secs(10), || !running(a) && !running(b))
}

#[test]
fn a_timeout_stops_the_remote_command_and_its_children() {
    let Some(keys) = keys("a_timeout_stops_the_remote_command…") else {
        return;
    };
    let web1 = Sshd::start(&keys, true);
    let (a, b) = (marker(1), marker(2));
    let o = sleeping_run(&keys, &web1, &a, &b, "timeout: \"3s\", ").run();
    assert_eq!(o.code, 1, "{}\n{}", o.stdout, o.stderr);
    assert!(
        format!("{}{}", o.stdout, o.stderr).contains("timed out"),
        "{}",
        o.stdout
    );
    assert!(gone(&a, &b), "still running remotely after the timeout");
}

#[test]
fn ctrl_c_and_kill_9_leave_nothing_running_remotely() {
    let Some(keys) = keys("ctrl_c_and_kill_9_leave_nothing_running_remotely") else {
        return;
    };
    let web1 = Sshd::start(&keys, true);
    for (signal, n) in [(libc::SIGINT, 3), (libc::SIGKILL, 4)] {
        let (a, b) = (marker(n), marker(n + 10));
        let t = sleeping_run(&keys, &web1, &a, &b, "");
        let mut child = t
            .command()
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            eventually(Duration::from_secs(20), || running(&a) && running(&b)),
            "the remote command did not start"
        );
        // SAFETY: signalling our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let _ = child.wait();
        assert!(gone(&a, &b), "still running remotely after signal {signal}");
    }
}

#[test]
fn an_unknown_host_key_and_a_dead_host_are_transient_errors_with_sshs_message() {
    let Some(keys) = keys("an_unknown_host_key_and_a_dead_host…") else {
        return;
    };
    let stranger = Sshd::start(&keys, false);
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = stranger.server("dead", &keys).replace(
        &format!("port = {}", stranger.port),
        &format!("port = {dead_port}"),
    );
    let inv = format!("{}{dead}", inventory(&[("stranger", &stranger)], &keys));
    let t = Test::new()
        .file("inv.toml", &inv)
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "remote", description: "d" });
for host in ["stranger", "dead"] {
    step(host, #{ run: |ctx| {
        try {
            exec("true", [], #{ host: host });
        } catch (e) {
            if e.kind != "transient" || e.server != host { throw "wrong error: " + e; }
            log("caught: " + e.message);
            return;
        }
        throw "reached " + host;
    }});
}
"#,
        )
        .args(&["run", "rb.rhai", "--inventory", "inv.toml", "-v"]);
    let o = t.run();
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    let out = format!("{}{}", o.stdout, o.stderr);
    assert!(
        out.contains("Host key verification failed") || out.contains("host key is known"),
        "{out}"
    );
    assert!(out.contains("Connection refused"), "{out}");
    assert_eq!(stranger.log().matches("Accepted publickey").count(), 0);
}

#[test]
fn the_fleet_example_rolls_through_its_group_one_host_at_a_time_and_rolls_back() {
    let Some(keys) = keys("the_fleet_example_rolls_through…") else {
        return;
    };
    let (web1, web2) = (Sshd::start(&keys, true), Sshd::start(&keys, true));
    let roots = tempfile::tempdir().unwrap();
    let mut inv = "name = \"shop\"\n".to_string();
    for (name, s) in [("web1", &web1), ("web2", &web2)] {
        let root = roots.path().join(name);
        std::fs::create_dir(&root).unwrap();
        std::fs::write(root.join("app.conf"), "version=1\n").unwrap();
        inv.push_str(&s.server(name, &keys));
        inv.push_str(&format!(
            "groups = [\"web\"]\nvars = {{ root = \"{}\" }}\n",
            root.display()
        ));
    }
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/fleet/rolling-maintenance.rhai");
    let example = example.to_str().unwrap();
    let t = Test::new().file("inv.toml", &inv).args(&[
        "run",
        example,
        "--inventory",
        "inv.toml",
        "--param",
        "version=2.4.1",
    ]);
    let o = t.run();
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    // One host at a time: web2 is drained only after web1 is back.
    let order: Vec<&str> = o
        .stderr
        .lines()
        .filter_map(|l| l.split("▶ ").nth(1))
        .collect();
    assert_eq!(
        order,
        [
            "drain:web1",
            "change:web1",
            "verify:web1",
            "undrain:web1",
            "drain:web2",
            "change:web2",
            "verify:web2",
            "undrain:web2"
        ],
        "{}",
        o.stderr
    );
    for name in ["web1", "web2"] {
        let root = roots.path().join(name);
        assert_eq!(
            std::fs::read_to_string(root.join("app.conf")).unwrap(),
            "version=2.4.1\n"
        );
        assert!(!root.join("maintenance").exists());
    }
    let back = t
        .bare()
        .args(["rollback", &t.run_id(), "--yes"])
        .output()
        .unwrap();
    // Exit 1: the run ends rolled back.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&back.stdout),
        String::from_utf8_lossy(&back.stderr)
    );
    assert_eq!(back.status.code(), Some(1), "{said}");
    assert!(said.contains("rolled back"), "{said}");
    for name in ["web1", "web2"] {
        let root = roots.path().join(name);
        assert_eq!(
            std::fs::read_to_string(root.join("app.conf")).unwrap(),
            "version=1\n"
        );
        assert!(!root.join("maintenance").exists());
    }
}

#[test]
fn a_dry_run_lists_remote_commands_with_their_host_without_connecting() {
    // Port 1 on loopback: nothing listens, and a dry run must not try.
    let t = Test::new()
        .file(
            "inv.toml",
            "name = \"team\"\n[[server]]\nname = \"web1\"\naddress = \"127.0.0.1\"\nport = 1\ntransport = \"ssh\"\n",
        )
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "remote", description: "d" });
step("a", #{ run: |ctx| {
    exec("systemctl", ["restart", "it's"], #{ host: "web1" });
    upload("web1", "app.conf", "/etc/app.conf");
}});
"#,
        )
        .args(&["run", "rb.rhai", "--inventory", "inv.toml", "--dry-run"]);
    let o = t.run();
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);
    assert!(
        o.stdout.contains(r"web1: systemctl restart 'it'\''s'"),
        "{}",
        o.stdout
    );
    assert!(
        o.stdout.contains("app.conf → web1:/etc/app.conf"),
        "{}",
        o.stdout
    );
    assert!(!o.stdout.contains("Connection refused"), "{}", o.stdout);
}
