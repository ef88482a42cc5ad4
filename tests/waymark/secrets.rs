//! Secrets never reach disk or the terminal: a hostile value (quotes, space, `\`, `$`)
//! and a multi-line one are taken through every command, then every file under the
//! state directory and every byte printed is searched for them and their fragments.

use crate::harness::Test;
use std::path::Path;

const KEY: &str = "pa'ss word\"\\$x";
const PEM: &str =
    "-----BEGIN TEST KEY-----\nMIIBsecretLINEone\nsecretLINEtwo+/==\n-----END TEST KEY-----";

/// Pieces of the two values that must appear nowhere, whatever the quoting: the
/// middle of the hostile value survives every escaping but URL encoding.
const FRAGMENTS: [&str; 5] = [
    "ss word",
    "ss%20word",
    "pa'ss",
    "secretLINEone",
    "secretLINEtwo",
];

const RUNBOOK: &str = r#"runbook(#{ name: "hostile", description: "secrets everywhere" });
step("show", #{ run: |ctx| {
    let k = secret("k");
    let pem = secret("pem");
    exec("sh", ["-c", "printf '%s\n' \"$1\"; printf '%s\n' \"$2\" >&2", "sh", k, pem]);
    sh("echo " + k.len());
    log(k); warn(pem); debug(k); debug(pem); print(k);
    apply_settings("ns-hq", #{ settings: #{ password: k, key: pem } });
    try { verify_version("ns-hq", #{ expected: k }) } catch (e) { log(e) }
    #{ out: k, lines: pem, both: [k, pem] }
}});
step("fail", #{ after: "show", run: |ctx| {
    exec("sh", ["-c", "echo \"$1\" >&2; echo \"$2\" >&2; test -f ok || exit 3", secret("k"), secret("pem")])
}});
step("later", #{ after: "fail", run: |ctx| fail("still " + secret("k") + " " + secret("pem")) });
"#;

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn assert_no_secret(what: &str, text: &str) {
    for f in FRAGMENTS {
        assert!(!text.contains(f), "{what} holds `{f}`:\n{text}");
    }
}

#[test]
fn hostile_secret_leaked_through_exec_line_errors_dry_run_and_lab_state() {
    let t = Test::new()
        .file("rb.rhai", RUNBOOK)
        .env("WAYMARK_SECRET_K", KEY)
        .env("WAYMARK_SECRET_PEM", PEM);
    let mut printed = String::new();
    let mut sh = |args: &[&str], want: i32| {
        let o = t.bare().args(args).output().unwrap();
        let (out, err) = (
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        assert_eq!(o.status.code(), Some(want), "{args:?}\n{out}\n{err}");
        printed.push_str(&format!("$ {args:?}\n{out}{err}"));
    };
    sh(&["run", "rb.rhai", "--yes"], 1);
    let id = t.run_id();
    std::fs::write(t.path().join("ok"), "").unwrap();
    sh(&["resume", &id, "--yes"], 1);
    sh(&["run", "rb.rhai", "--dry-run"], 0);
    sh(&["status", &id], 0);
    sh(&["status", &id, "--json"], 0);
    sh(&["runs"], 0);
    sh(&["log", &id], 0);
    sh(&["log", &id, "show"], 0);
    sh(&["log", &id, "fail"], 0);
    sh(&["lab", "show"], 0);
    sh(&["lab", "show", "--json"], 0);
    sh(&["report", &id, "--output", "-"], 0);
    sh(&["report", &id, "--output", ".waymark/report.html"], 0);
    // The redaction really happened: the places that held the values say so.
    assert!(printed.contains("[REDACTED]"), "{printed}");
    assert!(printed.contains("exited with code 3"), "{printed}");
    assert!(printed.contains("still [REDACTED] [REDACTED]"), "{printed}");
    assert_no_secret("the output of the commands", &printed);
    let mut files = Vec::new();
    files_under(&t.path().join(".waymark"), &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("journal.jsonl")),
        "{files:?}"
    );
    // Step logs: the run's shared file, and a file of its own for a step that logs more.
    assert!(
        files.iter().any(|f| f.ends_with("logs/shared.txt")),
        "{files:?}"
    );
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert_no_secret(&f.display().to_string(), &String::from_utf8_lossy(&bytes));
    }
}

#[test]
fn secret_of_two_characters_is_refused_rather_than_scrubbed_from_every_word() {
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "tiny", description: "d" });
               step("s", #{ run: |ctx| log(secret("pin")) });"#,
        )
        .env("WAYMARK_SECRET_PIN", "ab")
        .args(&["run", "rb.rhai"]);
    let o = t.run();
    assert_eq!(o.code, 1, "{o:?}");
    assert!(
        o.stderr.contains("secret `pin` is 2 characters long"),
        "{}",
        o.stderr
    );
}
