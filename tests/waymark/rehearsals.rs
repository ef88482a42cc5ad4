//! Gate rehearsals across resumes, as an operator meets them: a lab rehearsal run with
//! `--non-interactive`, then every gate approved and the run resumed exactly as the
//! paused run's hints say. A gate's rehearsal plays the operator's part on the lab estate
//! once; reopening the gate on resume must not play it again.

use crate::harness::{Output, Test};
use serde_json::Value;

/// The demo estate's Notification Servers, each upgraded once by its SIM gate.
const SERVERS: &[&str] = &["ns-hq", "ns-emea", "ns-emea-branch", "ns-apac"];

fn wm(t: &Test, args: &[&str]) -> Output {
    let o = t.bare().args(args).output().unwrap();
    Output {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into(),
        stderr: String::from_utf8_lossy(&o.stderr).into(),
    }
}

/// The words of each `waymark …` command a paused run's hints name for `verb`, without
/// the leading `waymark` and without the placeholder `--note "what you checked"`.
fn hinted(o: &Output, verb: &str) -> Vec<Vec<String>> {
    let text = format!("{}{}", o.stdout, o.stderr);
    text.lines()
        .filter_map(|l| l.split_once(&format!("waymark {verb} ")))
        .map(|(_, rest)| {
            let mut words = vec![verb.to_string()];
            words.extend(
                rest.split_whitespace()
                    .take_while(|w| *w != "--note")
                    .map(str::to_string),
            );
            words
        })
        .collect()
}

/// Approve what the hints say and resume as they say, until the run no longer pauses.
/// Returns how many resumes it took.
fn approve_and_resume_until_done(t: &Test, mut last: Output) -> usize {
    let mut resumes = 0;
    while last.code == 3 {
        assert!(resumes < 40, "the run never finished: {last:?}");
        let approvals = hinted(&last, "approve");
        assert!(
            !approvals.is_empty(),
            "paused without an approve hint: {last:?}"
        );
        for words in approvals {
            let mut args: Vec<&str> = words.iter().map(String::as_str).collect();
            args.extend(["--note", "checked in the lab"]);
            let a = wm(t, &args);
            assert_eq!(a.code, 0, "{args:?}: {a:?}");
        }
        let resume = hinted(&last, "resume");
        let words = resume
            .first()
            .unwrap_or_else(|| panic!("no resume hint: {last:?}"));
        let args: Vec<&str> = words.iter().map(String::as_str).collect();
        last = wm(t, &args);
        resumes += 1;
    }
    assert_eq!(last.code, 0, "{last:?}");
    resumes
}

/// The lab's operations `op` on `server`, in order.
fn lab_ops(t: &Test, op: &str, server: &str) -> Vec<Value> {
    let o = wm(t, &["lab", "show", "--json", "--state-dir", "st"]);
    assert_eq!(o.code, 0, "{o:?}");
    let doc: Value = serde_json::from_str(&o.stdout).unwrap();
    doc["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["op"] == op && e["server"] == server)
        .cloned()
        .collect()
}

#[test]
fn approving_and_resuming_a_paused_rehearsal_upgrades_each_server_exactly_once() {
    let t = Test::new();
    let first = wm(
        &t,
        &[
            "run",
            "itms-7.6/hierarchy",
            "--non-interactive",
            "--state-dir",
            "st",
        ],
    );
    assert_eq!(first.code, 3, "the first gates pause the run: {first:?}");
    let resumes = approve_and_resume_until_done(&t, first);
    // Every server's SIM gate was reopened by a resume after its rehearsal had passed.
    assert!(resumes >= SERVERS.len(), "only {resumes} resumes");
    for server in SERVERS {
        let upgrades = lab_ops(&t, "ns_upgrade", server);
        assert_eq!(upgrades.len(), 1, "{server} upgraded once: {upgrades:#?}");
        assert_eq!(upgrades[0]["changed"], true, "{server}: {upgrades:#?}");
        let kms = lab_ops(&t, "backup_kms", server);
        assert_eq!(kms.len(), 1, "{server}'s KMS backed up once: {kms:#?}");
    }
}
