//! The live view under a real pseudo-terminal (util-linux `script`): a pinned progress
//! area while the run goes, gone from the screen when it ends; the plain line log where
//! colour is off (`NO_COLOR`, `TERM=dumb`).

use crate::harness::Test;
use std::process::Command;

/// Run `waymark ARGS` in `t`'s dir under a pty with `env`; everything the terminal got.
/// `None` (said loudly; a failure under CI=true) when `script` is missing.
fn in_pty(t: &Test, args: &str, env: &[(&str, &str)]) -> Option<String> {
    let script = ["/usr/bin/script", "/bin/script"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(script) = script else {
        eprintln!("\n!!!!! live view pty tests DID NOT RUN: no util-linux `script` !!!!!\n");
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "`script` is required when CI=true"
        );
        return None;
    };
    let bin = crate::harness::bin();
    let mut c = Command::new(script);
    c.current_dir(t.path())
        .args(["-qfec", &format!("{} {args}", bin.display()), "/dev/null"])
        .env_remove("WAYMARK_STATE_DIR")
        .env_remove("NO_COLOR")
        .env("TERM", "xterm-256color")
        .env("COLUMNS", "120")
        .env("LINES", "40");
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(String::from_utf8_lossy(&o.stdout).into_owned())
}

const RB: &str = r#"
runbook(#{ name: "Live" });
let a = step("a", #{ run: |ctx| { sleep("300ms"); 1 } });
let b = step("b", #{ run: |ctx| { sleep("300ms"); 2 } });
gate("g", #{ after: [a, b], title: "G", instructions: "Approve." });
step("c", #{ after: "g", run: |ctx| 3 });
"#;

#[test]
fn a_terminal_gets_a_pinned_progress_area_that_is_cleared_at_the_end() {
    let t = Test::new().file("live.rhai", RB);
    let Some(out) = in_pty(&t, "run live.rhai --yes", &[]) else {
        return;
    };
    // The area: overall progress and each running step on a line of its own.
    assert!(out.contains("/4 done"), "{out:?}");
    assert!(
        out.contains("\u{1b}[36m"),
        "spinner of a running step: {out:?}"
    );
    // Event lines scroll above it and the recap follows it.
    let last_area = out.rfind("/4 done").unwrap();
    let recap = out.rfind("recap:").expect("a recap");
    assert!(last_area < recap);
    // Between the area's last drawing and the recap the area's lines are erased.
    assert!(
        out[last_area..recap].contains("\u{1b}[2K"),
        "{:?}",
        &out[last_area..recap]
    );
}

#[test]
fn no_color_and_dumb_terminals_keep_the_plain_line_log() {
    let t = Test::new().file("live.rhai", RB);
    for env in [[("NO_COLOR", "1")], [("TERM", "dumb")]] {
        let Some(out) = in_pty(&t, "run live.rhai --yes", &env) else {
            return;
        };
        assert!(!out.contains(" done  "), "{env:?}: {out:?}");
        assert!(!out.contains('\u{1b}'), "{env:?}: {out:?}");
        assert!(out.contains("✓ c"), "{env:?}: {out:?}");
    }
}
