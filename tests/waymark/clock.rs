//! `now()` and `time` values: the wall clock a runbook reads, durations between times,
//! RFC 3339 text both ways; refused at load time like every primitive.

use crate::harness::Test;

#[test]
fn now_measures_durations_and_times_read_and_print_as_rfc3339() {
    let t = Test::new()
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "clock", description: "d" });
step("a", #{ run: |ctx| {
    let a = now();
    sleep("300ms");
    let b = now();
    let took = b - a;
    if took < 0.3 || took > 60.0 { throw "b - a = " + took; }
    if !(a < b) || a == b || a.elapsed < took { throw "comparisons"; }
    if (a + "5m") - a != 300.0 || (a - "1h") - a != -3600.0 { throw "shifts"; }
    let t = parse_time("2026-12-02T17:30:00Z");
    if t.unix != 1796232600.0 { throw "unix " + t.unix; }
    if t.to_string() != "2026-12-02T17:30:00.000Z" { throw "text " + t; }
    if `${t + "90s"}` != "2026-12-02T17:31:30.000Z" { throw "interpolation"; }
    if format_seconds(90.5) != "1m 30s 500ms" { throw format_seconds(90.5); }
    if !now().to_string().ends_with("Z") { throw "utc"; }
    a.to_string()
}});
"#,
        )
        .args(&["run", "rb.rhai"]);
    let o = t.run();
    assert_eq!(o.code, 0, "{}\n{}", o.stdout, o.stderr);

    let bad = Test::new()
        .file(
            "rb.rhai",
            "runbook(#{ name: \"c\", description: \"d\" });\nlet t = parse_time(\"yesterday\");\n",
        )
        .args(&["check", "rb.rhai"])
        .run();
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("RFC 3339"), "{}", bad.stderr);
    let load = Test::new()
        .file(
            "rb.rhai",
            "runbook(#{ name: \"c\", description: \"d\" });\nlet t = now();\n",
        )
        .args(&["check", "rb.rhai"])
        .run();
    assert_eq!(load.code, 2);
    assert!(load.stderr.contains("`now`"), "{}", load.stderr);
}
