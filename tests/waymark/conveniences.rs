//! DSL conveniences a team's runbook needed: non-mutating string helpers, JSON of a
//! command's output, and `wait_until` failures that say what was awaited.

use crate::harness::{step, Test};

#[test]
fn trimmed_lines_and_parse_json_read_command_output_without_mutation() {
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "conv", description: "d" });
               step("text", #{ run: |ctx| {
                   let out = sh("printf '  a\nb \r\n\nc\n'").stdout;
                   [trimmed(out), lines(out), out.trimmed().len(), out.len()]
               } });
               step("json", #{ run: |ctx| {
                   let j = parse_json(sh("echo '{\"n\": 3, \"ok\": true, \"xs\": [1, \"two\"], \"o\": {\"k\": null}}'").stdout);
                   [type_of(j), j.n, j.ok, j.xs, j.o.k, type_of(parse_json("[1, 2]"))]
               } });"#,
        )
        .args(&["run", "rb.rhai"]);
    let o = t.run();
    assert_eq!(o.code, 0, "{o:?}");
    let s = t.status();
    assert_eq!(
        step(&s, "text")["output"],
        serde_json::json!(["a\nb \r\n\nc", ["  a", "b ", "", "c"], 8, 11])
    );
    assert_eq!(
        step(&s, "json")["output"],
        serde_json::json!(["map", 3, true, [1, "two"], null, "array"])
    );
}

#[test]
fn wait_until_failed_without_saying_what_it_waited_for() {
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "conv", description: "d" });
               step("mine", #{ run: |ctx| wait_until(|| false,
                   #{ timeout: "50ms", every: "10ms", message: "replica db2 never caught up" }) });
               step("last", #{ run: |ctx| wait_until(|| (), #{ timeout: "50ms", every: "10ms" }) });"#,
        )
        .args(&["run", "rb.rhai", "--keep-going"]);
    let o = t.run();
    assert_ne!(o.code, 0, "{o:?}");
    let s = t.status();
    let text = s.to_string();
    assert!(
        text.contains("replica db2 never caught up (waited 50ms)"),
        "{text}"
    );
    assert!(
        text.contains("wait_until: condition still false after 50ms; the probe last returned ()"),
        "{text}"
    );
}

#[test]
fn dry_run_of_trimmed_and_lines_on_unknown_output_did_not_error() {
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "conv", description: "d" });
               step("text", #{ run: |ctx| {
                   let v = trimmed(sh("cat /etc/hostname").stdout);
                   log("host " + v);
                   for l in lines(v) { log(l) }
               } });"#,
        )
        .args(&["run", "rb.rhai", "--dry-run"]);
    let o = t.run();
    assert_eq!(o.code, 0, "{o:?}");
    assert!(o.stdout.contains("depends on run time"), "{o:?}");
}
