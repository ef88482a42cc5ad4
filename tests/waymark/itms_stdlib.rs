//! The ITMS stdlib modules (`versions`, `sizing`, `hierarchy`, `readiness`) called from
//! a runbook step, as an author's runbook calls them, against the lab's demo inventory.

use crate::harness::{Output, Test};
use crate::itms::wm;

/// A runbook in the temp dir that uses the stdlib and fails unless `checks` hold.
fn stdlib_check(checks: &str) -> Output {
    let src = format!(
        r#"import "versions" as versions;
import "sizing" as sizing;
import "hierarchy" as h;
import "readiness" as readiness;
runbook(#{{ name: "stdlib", description: "d" }});
step("checks", #{{ run: |ctx| {{ {checks} }} }});"#
    );
    let t = Test::new().file("rb.rhai", &src);
    wm(&t, &["run", "rb.rhai"])
}

#[test]
fn stdlib_versions_compare_numerically() {
    let o = stdlib_check(
        r#"
        if versions::compare("7.10", "7.9") != 1 { fail("7.10 > 7.9"); }
        if versions::compare("7.6", "7.6.0") != 0 { fail("7.6 == 7.6.0"); }
        if versions::compare("7.5.3153.7400", "7.6") != -1 { fail("7.5.x < 7.6"); }
        if versions::compare("7.5 SP1 HF5", "7.5 SP1 HF3") != 1 { fail("HF5 > HF3"); }
        if versions::release("7.6.1383.0") != "7.6" { fail("release of a build"); }
        if versions::release("7.5 SP1 HF5") != "7.5" { fail("release of a name"); }
        "#,
    );
    assert_eq!(o.code, 0, "{o:?}");
}

#[test]
fn stdlib_sizing_advises_from_the_vendor_tables() {
    let o = stdlib_check(
        r#"
        let a = sizing::advisories("ns-x", "ns", 3000, #{ cores: 4, ram_gb: 8, disk_gb: 500, virtual: false });
        if a.len() != 2 { fail(`expected cores and RAM advisories: ${a}`); }
        if !a[0].contains("8 cores") || !a[1].contains("16 GB") { fail(`${a}`); }
        if sizing::advisories("ns-x", "ns", 800, #{ cores: 8, ram_gb: 8, disk_gb: 80 }).len() != 0 { fail("meets 100-1,000"); }
        let g = sizing::advisories("gw", "gateway", 100, #{ cores: 2, ram_gb: 8, disk_gb: 40, virtual: true });
        if g.len() != 1 || !g[0].contains("virtual") { fail(`${g}`); }
        let big = sizing::advisories("sql", "sql", 25000, #{ cores: 32, ram_gb: 64, disk_gb: 900 });
        if !big[0].contains("beyond") { fail(`${big}`); }
        "#,
    );
    assert_eq!(o.code, 0, "{o:?}");
}

#[test]
fn stdlib_hierarchy_orders_children_before_parents() {
    let o = stdlib_check(
        r#"
        let order = h::bottom_up(ctx.inventory);
        if order != ["ns-emea-branch", "ns-emea", "ns-apac", "ns-hq"] { fail(`${order}`); }
        if h::neighbours(ctx.inventory, "ns-emea") != ["ns-hq", "ns-emea-branch"] { fail("neighbours"); }
        if h::descendants(ctx.inventory, "ns-hq").len() != 3 { fail("descendants"); }
        if h::sql_host("sql-emea\\BRANCH") != "sql-emea" { fail("sql host"); }
        if h::endpoints(ctx.inventory, "sql-emea") != 4800 { fail("a SQL server carries its NSs' endpoints"); }
        "#,
    );
    assert_eq!(o.code, 0, "{o:?}");
}

#[test]
fn preflight_probes_read_the_whole_inventory_per_step_so_big_estates_went_quadratic() {
    // Each probe step now keeps only its part of the inventory: what the probe reads
    // must come out the same from that part as from the whole.
    let o = stdlib_check(
        r#"
        let inv = ctx.inventory;
        let all = [];
        for s in inv.servers { all.push(s.name); }
        let scopes = readiness::probe_scopes(inv, all + ["nope"]);
        for n in all {
            let part = scopes[n];
            if h::server(part, n) != h::server(inv, n) { fail(`entry of ${n}`); }
            if h::endpoints(part, n) != h::endpoints(inv, n) { fail(`endpoints of ${n}`); }
            if h::is_ns(inv, n) && h::descendants(part, n) != h::descendants(inv, n) { fail(`below ${n}`); }
        }
        if h::endpoints(scopes["sql-emea"], "sql-emea") != 4800 { fail("a SQL server carries its NSs' endpoints"); }
        if h::descendants(scopes["ns-hq"], "ns-hq").len() != 3 { fail("descendants"); }
        if scopes["nope"].servers.len() != 0 { fail("an unknown server has an empty part"); }
        "#,
    );
    assert_eq!(o.code, 0, "{o:?}");
}
