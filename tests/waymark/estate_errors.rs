//! Estate errors reach scripts typed (`kind`, `op`, `server`, `message`, `fixes`), are
//! retried only when they may pass, and read as their message when nobody catches them.

use crate::harness::{step, Test};

fn example(name: &str) -> String {
    format!(
        "{}/examples/estates/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// `status --json` of the latest run under the state dir `st`.
fn status(t: &Test) -> serde_json::Value {
    let o = t
        .bare()
        .args(["status", "--json", "--state-dir", "st"])
        .output()
        .unwrap();
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn estate_errors_reached_scripts_as_text_matched_on_refused() {
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "typed", description: "d" });
               step("refusal", #{ run: |ctx| {
                   let r = "no error";
                   try { verify_version("ns-hq", #{ expected: "7.6" }); }
                   catch (e) { r = [e.kind, e.op, e.server, e.fixes.len() > 0, `${e}` == e.message, type_of(e)]; }
                   r
               } });
               step("transient", #{ run: |ctx| {
                   let r = "no error";
                   try { backup_cmdb("ns-hq", #{ dest: "D:\\b" }); }
                   catch (e) { r = [e.kind, e.op, e.server, type_of(e.fixes)]; }
                   r
               } });
               step("wrong-role", #{ run: |ctx| {
                   let r = "no error";
                   try { backup_cmdb("sql-hq", #{ dest: "D:\\b" }); } catch (e) { r = e.kind; }
                   r
               } });"#,
        )
        .args(&[
            "run",
            "rb.rhai",
            "--inventory",
            &example("transient-fault"),
            "--state-dir",
            "st",
        ]);
    let o = t.run();
    assert_eq!(o.code, 0, "{o:?}");
    let s = status(&t);
    assert_eq!(
        step(&s, "refusal")["output"],
        serde_json::json!([
            "refused",
            "verify_version",
            "ns-hq",
            true,
            true,
            "estate_error"
        ])
    );
    assert_eq!(
        step(&s, "transient")["output"],
        serde_json::json!(["transient", "backup_cmdb", "ns-hq", "array"])
    );
    assert_eq!(step(&s, "wrong-role")["output"], "wrong_role");
}

#[test]
fn agents_on_7_5_servers_spent_15_s_retrying_a_refusal() {
    // The demo estate is at 7.5: `agents` must stop at once, not retry a refusal.
    let t = Test::new().args(&["run", "itms-7.6/agents", "--yes"]);
    let o = t.run();
    assert_eq!(o.code, 1, "{o:?}");
    let s = t.status();
    let st = step(&s, "agents:ns-hq:server-at-7.6");
    assert_eq!(st["state"], "failed");
    assert_eq!(st["attempts"], 1, "a refusal is not retried: {st}");
    let e = st["error"].as_str().unwrap();
    assert!(e.contains("ns-hq does not run 7.6 yet"), "{e}");
    assert!(e.contains("not retried"), "{e}");
    // Uncaught, it reads as its message, not as a map dump.
    assert!(!e.contains("#{") && !e.contains("\"kind\""), "{e}");
}

#[test]
fn a_transient_estate_fault_is_still_retried() {
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "retry", description: "d" });
               step("backup", #{ retries: 1, retry_delay: "10ms",
                                 run: |ctx| backup_cmdb("ns-hq", #{ dest: "D:\\b" }) });
               step("refused", #{ retries: 2, retry_delay: "10ms",
                                  run: |ctx| verify_version("ns-hq", #{ expected: "7.6" }) });"#,
        )
        .args(&[
            "run",
            "rb.rhai",
            "--keep-going",
            "--inventory",
            &example("transient-fault"),
            "--state-dir",
            "st",
        ]);
    let o = t.run();
    assert_eq!(o.code, 1, "{o:?}");
    let s = status(&t);
    assert_eq!(step(&s, "backup")["state"], "succeeded");
    assert_eq!(step(&s, "backup")["attempts"], 2);
    assert_eq!(step(&s, "refused")["attempts"], 1);
    let e = step(&s, "refused")["error"].as_str().unwrap();
    assert!(
        e.starts_with("`verify_version` on `ns-hq` refused:") && e.contains("fix:"),
        "uncaught, a refusal reads as its message: {e}"
    );
}
