//! `waymark report` on a real rehearsal of a shipped runbook with a failure, retries and
//! a named approval — read as text, and rendered by a real browser (headless Chromium).

use crate::harness::{expect_code, Test};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The shipped transient-fault estate with more faults than `backup-cmdb` has retries:
/// the first run fails after three attempts, the resume's first attempt fails once more.
fn fault_inventory() -> String {
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/estates/transient-fault.toml"
    );
    std::fs::read_to_string(shipped)
        .unwrap()
        .replace("backup_cmdb = 1", "backup_cmdb = 4")
}

/// Run `itms-7.6/onbox` to a failure, approve its first gate as Carol with a note full
/// of markup, resume (pauses at the next gate), resume with `--yes` to the end, and write
/// the report. Returns the test dir, the run id and the report's path.
fn reported_run() -> (Test, String, PathBuf) {
    let t = Test::new().file("fault.toml", &fault_inventory());
    let wm = |args: &[&str]| t.bare().args(args).output().unwrap();
    let run = wm(&[
        "run",
        "itms-7.6/onbox",
        "--inventory",
        "fault.toml",
        "--param",
        "server=ns-hq",
        "--non-interactive",
    ]);
    expect_code(&run, 1);
    let id = t.run_id();
    expect_code(
        &wm(&[
            "approve",
            &id,
            "onbox:ns-hq:backup-kms",
            "--by",
            "Carol <CAB>",
            "--note",
            "keys copied to <b>vault</b>",
        ]),
        0,
    );
    expect_code(&wm(&["resume", &id, "--non-interactive"]), 3);
    expect_code(&wm(&["resume", &id, "--yes"]), 0);
    let out = t.path().join("change.html");
    let rep = wm(&["report", &id, "--output", out.to_str().unwrap()]);
    expect_code(&rep, 0);
    assert!(
        String::from_utf8_lossy(&rep.stderr).contains("written to"),
        "{rep:?}"
    );
    (t, id, out)
}

fn assert_has_every_section(html: &str, what: &str) {
    for id in [
        "run",
        "plan",
        "timeline",
        "stages",
        "approvals",
        "steps",
        "estate",
    ] {
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "{what} lacks the {id} section"
        );
    }
}

#[test]
fn report_of_a_failed_retried_and_approved_onbox_run_tells_the_whole_story() {
    let (_t, id, out) = reported_run();
    let page = std::fs::read_to_string(&out).unwrap();
    assert_has_every_section(&page, "the report");
    // The server's on-box stage: 14 steps; of the backup-cmdb attempts four failed.
    let stage = page
        .lines()
        .find(|l| l.starts_with("<tr class=\"stage\"><td><code>onbox:ns-hq</code>"))
        .expect("a stage row for onbox:ns-hq");
    assert!(stage.contains("<td>14</td>"), "{stage}");
    assert!(stage.ends_with("<td>4</td></tr>"), "{stage}");
    assert!(page.contains(&format!("<code>{id}</code>")));
    assert!(page.contains("ITMS 7.6 on-box upgrade"));
    assert!(page.contains("transient-fault — driver <b>lab</b>"));
    assert!(page.contains("<span id=\"run-status\" class=\"state ok\">succeeded</span>"));
    // The approval by name, with the note escaped, and the --yes approvals after it.
    assert!(page.contains("<td>Carol &lt;CAB&gt;</td>"), "approver");
    assert!(
        page.contains("keys copied to &lt;b&gt;vault&lt;/b&gt;"),
        "note"
    );
    assert!(!page.contains("<b>vault</b>"));
    assert!(page.matches("<tr class=\"decision\">").count() >= 2);
    // backup-cmdb: three failed attempts in the first run (two retried, one final),
    // one more retried failure after the resume, then success: five bars.
    let cmdb_bars = page
        .lines()
        .filter(|l| l.contains("class=\"attempt ") && l.contains("onbox:ns-hq:backup-cmdb attempt"))
        .collect::<Vec<_>>();
    assert_eq!(cmdb_bars.len(), 5, "{cmdb_bars:#?}");
    assert_eq!(
        cmdb_bars
            .iter()
            .filter(|l| l.contains("attempt retry"))
            .count(),
        3
    );
    assert_eq!(
        cmdb_bars
            .iter()
            .filter(|l| l.contains("attempt bad"))
            .count(),
        1
    );
    assert!(page.contains("<td><code>onbox:ns-hq:backup-cmdb</code>"));
    // The gate's waiting is drawn, and the run's failure and resume are marked.
    assert!(page.contains("gate onbox:ns-hq:backup-kms waited"));
    assert!(page.contains("resumed by"));
    // The plan is drawn with its edges and gates.
    assert!(page.contains("<g class=\"node gate ok\">"));
    assert!(page.matches("class=\"edge\"").count() >= 23);
    // The lab recorded the failed backups in order; the step log is in the page.
    assert!(page.matches("<tr class=\"op\">").count() > 10);
    assert!(page.contains("injected lab fault"));
    assert!(page.contains("<details><summary>log ("));
}

#[test]
fn report_of_an_unknown_run_names_the_runs_command() {
    let t = Test::new().args(&["report", "20990101-000000-zzzz"]);
    let o = t.run();
    assert_eq!(o.code, 2);
    assert!(o.stderr.contains("waymark runs"), "{}", o.stderr);
}

/// `chromium` (Debian) or `chromium-browser`, if installed.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|d| ["chromium", "chromium-browser"].map(|n| d.join(n)))
        .find(|p| p.is_file())
}

/// Headless Chromium with everything that would reach the network or a user profile off,
/// in a profile of its own: a profile shared with the previous invocation may still be
/// locked (`SingletonLock`) while that browser's processes wind down on a loaded machine,
/// and a browser that finds it locked hands its command line to the other instead of
/// rendering. The returned directory must live as long as the command.
fn headless(chromium: &Path) -> (Command, tempfile::TempDir) {
    let profile = tempfile::tempdir().unwrap();
    let mut c = Command::new(chromium);
    c.args([
        "--headless",
        // The screenshot waits for every compositor stage of the frame, not for a
        // deadline a loaded machine can miss (a blank or half-drawn capture).
        "--run-all-compositor-stages-before-draw",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        "--window-size=1300,2000",
    ])
    .arg(format!("--user-data-dir={}", profile.path().display()));
    (c, profile)
}

/// Width and height from a PNG's IHDR chunk.
fn png_size(png: &[u8]) -> Option<(u32, u32)> {
    if png.len() < 24 || &png[..8] != b"\x89PNG\r\n\x1a\n" || &png[12..16] != b"IHDR" {
        return None;
    }
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    Some((be(&png[16..20]), be(&png[20..24])))
}

fn screenshot(chromium: &Path, page: &Path, png: &Path) -> Vec<u8> {
    let (mut c, _profile) = headless(chromium);
    let o = c
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read(png).unwrap()
}

#[test]
fn report_renders_in_headless_chromium_with_every_section_and_no_external_url() {
    let Some(chromium) = chromium() else {
        eprintln!(
            "\n!!!!! report_renders_in_headless_chromium… DID NOT RUN: no `chromium` in PATH \
             (apt-get install -y chromium; .ci/run installs it) !!!!!\n"
        );
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "chromium is required when CI=true"
        );
        return;
    };
    let (t, _id, out) = reported_run();
    let page = std::fs::read_to_string(&out).unwrap();
    for reference in [
        "src=", "href=", "@import", "url(//", "url(http", "http:", "https:",
    ] {
        assert!(
            !page.contains(reference),
            "the report references `{reference}`"
        );
    }
    assert!(
        !page.contains("<script"),
        "the report must read without script"
    );

    let (mut c, _profile) = headless(&chromium);
    let dom = c
        .arg("--dump-dom")
        .arg(format!("file://{}", out.display()))
        .output()
        .unwrap();
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_has_every_section(&dom, "the rendered DOM");
    for element in [
        "id=\"plan-svg\"",
        "id=\"gantt-svg\"",
        "<polygon",
        "class=\"attempt retry\"",
        "Carol &lt;CAB&gt;",
    ] {
        assert!(dom.contains(element), "DOM lacks {element}");
    }
    for reference in ["http:", "https:", "src=\"//", "href=\"//"] {
        assert!(
            !dom.contains(reference),
            "the rendered page references `{reference}`"
        );
    }

    // Not blank: the screenshot of the report is a PNG of the window's size, and
    // compresses far worse than the same window showing an empty page.
    let shot = screenshot(&chromium, &out, &t.path().join("report.png"));
    assert_eq!(png_size(&shot), Some((1300, 2000)));
    let empty = t.path().join("empty.html");
    std::fs::write(&empty, "<!DOCTYPE html><html><body></body></html>").unwrap();
    let blank = screenshot(&chromium, &empty, &t.path().join("blank.png"));
    assert!(
        shot.len() > 10 * blank.len(),
        "the report's screenshot ({} bytes) looks blank next to an empty page's ({} bytes)",
        shot.len(),
        blank.len()
    );
}

#[test]
fn report_never_holds_a_secret_the_run_used() {
    let rb = r#"
runbook(#{ name: "Secretive" });
step("use-it", #{ run: |ctx| {
    let s = secret("db_password");
    log("connecting with " + s);
    fail("login refused for " + s);
} });
"#;
    let t = Test::new()
        .file("s.rhai", rb)
        .env("WAYMARK_SECRET_DB_PASSWORD", "pa55-w0rd-XYZ");
    let wm = |args: &[&str]| t.bare().args(args).output().unwrap();
    expect_code(&wm(&["run", "s.rhai", "--yes"]), 1);
    let id = t.run_id();
    // Made from a shell that does not know the secret: only what the run wrote counts.
    let o = t
        .bare()
        .env_remove("WAYMARK_SECRET_DB_PASSWORD")
        .args(["report", &id, "--output", "-"])
        .output()
        .unwrap();
    expect_code(&o, 0);
    let page = String::from_utf8_lossy(&o.stdout);
    assert!(page.contains("<section id=\"steps\">"), "{page}");
    assert!(page.contains("login refused for [REDACTED]"), "{page}");
    assert!(page.contains("connecting with [REDACTED]"), "{page}");
    assert!(!page.contains("pa55-w0rd-XYZ"));
}

/// The steps table's row of `name` in a report page (its log makes it several lines).
fn step_row<'a>(page: &'a str, name: &str) -> &'a str {
    let start = page
        .match_indices("<tr class=\"step\">")
        .map(|(i, _)| i)
        .find(|&i| {
            page[i..]
                .split("</td>")
                .nth(1)
                .is_some_and(|c| c.starts_with(&format!("<td><code>{name}</code>")))
        })
        .unwrap_or_else(|| panic!("no row for {name}"));
    let end = start + page[start..].find("</tr>").expect("the row's end");
    &page[start..end]
}

#[test]
fn a_gates_entry_shows_each_rehearsal_its_outcome_and_what_it_did_to_the_estate() {
    let inv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/estates/single-ns.toml"
    );
    let rb = r#"runbook(#{ name: "r", description: "d" });
gate("kms", #{ title: "Back up the KMS keys", instructions: "Copy them.",
               rehearse: |ctx| backup_kms("ns-01", #{ dest: "D:\\Backups" }) });
gate("look", #{ after: "kms", instructions: "Look.",
                rehearse: |ctx| fail("the console shows <errors>") });
"#;
    let t = Test::new().file("r.rhai", rb);
    let wm = |args: &[&str], crash: Option<u64>| {
        let mut c = t.bare();
        c.args(args).args(["--inventory", inv]);
        if let Some(n) = crash {
            c.env("WAYMARK_CRASH_AFTER_SEQ", n.to_string());
        }
        c.output().unwrap()
    };
    // Killed as `kms`'s rehearsal starts: its start is the last record on disk.
    let clean = Test::new().file("r.rhai", rb);
    let o = clean
        .bare()
        .args(["run", "r.rhai", "--yes", "--inventory", inv])
        .output()
        .unwrap();
    expect_code(&o, 1);
    let journal = std::fs::read_to_string(clean.run_dir().join("journal.jsonl")).unwrap();
    let seq = journal
        .lines()
        .position(|l| l.contains("\"rehearsal_started\""))
        .expect("a rehearsal_started record") as u64
        + 1;
    let crashed = wm(&["run", "r.rhai", "--yes"], Some(seq));
    assert_eq!(crashed.status.code(), None, "killed after record {seq}");
    let id = t.run_id();
    expect_code(
        &t.bare().args(["resume", &id, "--yes"]).output().unwrap(),
        1,
    );
    let o = t
        .bare()
        .args(["report", &id, "--output", "-"])
        .output()
        .unwrap();
    expect_code(&o, 0);
    let page = String::from_utf8_lossy(&o.stdout);

    let kms = step_row(&page, "kms");
    let runs: Vec<&str> = kms.split("<div class=\"rehearsal\">").skip(1).collect();
    assert_eq!(runs.len(), 2, "cut short, then played again: {kms}");
    assert!(runs[0].contains("did not end"), "{kms}");
    assert!(!runs[0].contains(", ended "), "{kms}");
    assert!(
        runs[1].contains(", ended ") && runs[1].contains(">passed<"),
        "{kms}"
    );
    assert!(
        runs[1].contains("<code>backup_kms ns-01 → {&quot;server&quot;:&quot;ns-01&quot;"),
        "what it did to the estate: {kms}"
    );

    let look = step_row(&page, "look");
    assert!(look.contains(">failed<"), "{look}");
    assert!(
        look.contains("the console shows &lt;errors&gt; (at r.rhai:5:33) — the gate was rejected"),
        "{look}"
    );
    assert!(
        look.contains("No estate operation recorded in its log."),
        "{look}"
    );
}
