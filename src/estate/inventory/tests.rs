//! Inventory parsing and validation, through `Inventory::parse` as the CLI calls it.

use std::path::Path;
use std::time::Duration;

use super::*;

/// An inventory text: the estate `x` on the lab driver, then `servers` from line 3 (so
/// the positions the tests expect are the lines as written plus two).
fn lab(servers: &str) -> String {
    format!("name = \"x\"\ndriver = \"lab\"\n{servers}")
}

/// [`lab`] on the windows driver.
fn windows(servers: &str) -> String {
    format!("name = \"x\"\ndriver = \"windows\"\n{servers}")
}

fn parse(src: &str) -> Result<Inventory, InventoryError> {
    Inventory::parse(src, "inv.toml")
}

fn err(src: &str) -> String {
    match parse(src) {
        Ok(_) => panic!("expected an error for:\n{src}"),
        Err(e) => brief(&e),
    }
}

/// Each problem as `FILE:LINE:COL: message` and `  help: ...`, read off the diagnostics'
/// own positions; how they render (source line, caret) is pinned by
/// `problems_render_through_the_diagnostic_renderer_with_a_caret`.
fn brief(e: &InventoryError) -> String {
    let one = |d: &crate::diagnostic::Diagnostic| {
        let at = d.primary.as_ref().map_or(String::new(), |l| {
            format!("{}:{}:{}: ", l.pos.file, l.pos.line, l.pos.col)
        });
        let help = d
            .help
            .as_ref()
            .map_or(String::new(), |h| format!("\n  help: {h}"));
        format!("{at}{}{help}", d.message)
    };
    e.diagnostics.iter().map(one).collect::<Vec<_>>().join("\n")
}

const GOOD: &str = r#"
name = "contoso"
driver = "lab"
lab_delay = "5ms"

[[server]]
name = "ns-hq"
role = "ns"
sql = "sql-hq"
endpoints = 12000

[[server]]
name = "ns-emea"
role = "ns"
parent = "ns-hq"
sql = "sql-emea\\CMDB"

[[server]]
name = "ns-emea-branch"
role = "ns"
parent = "ns-emea"
sql = "ns-emea-branch"

[[server]]
name = "sql-hq"
role = "sql"

[[server]]
name = "sql-emea"
role = "sql"

[server.lab]
collation = "Latin1_General_CI_AS"
fail = { backup_cmdb = 2 }
"#;

#[test]
fn parses_a_hierarchy_and_orders_it_bottom_up() {
    let inv = parse(GOOD).unwrap();
    assert_eq!(inv.name, "contoso");
    assert_eq!(inv.driver, Some(Driver::Lab));
    assert_eq!(inv.lab_delay, Duration::from_millis(5));
    assert_eq!(inv.bottom_up(), vec!["ns-emea-branch", "ns-emea", "ns-hq"]);
    assert_eq!(inv.depth("ns-emea-branch"), 2);
    assert_eq!(
        inv.parent("ns-emea").map(|s| s.name.as_str()),
        Some("ns-hq")
    );
    assert_eq!(inv.children("ns-hq").len(), 1);
    assert_eq!(inv.descendants("ns-hq").len(), 2);
    assert_eq!(
        inv.server("ns-emea").and_then(|s| s.sql_host()),
        Some("sql-emea")
    );
    let sql = inv.server("sql-emea").unwrap();
    assert_eq!(sql.lab.fail.as_ref().unwrap()["backup_cmdb"], 2);
    let j = inv.to_json();
    assert_eq!(j["servers"][1]["parent"], "ns-hq");
    assert_eq!(j["driver"], "lab");
}

/// An NS whose `parent` (line 9, column 10) is a near miss of `ns-hq`.
const UNKNOWN_PARENT: &str = r#"[[server]]
name = "ns-hq"
role = "ns"
[[server]]
name = "ns-emea"
role = "ns"
parent = "ns-hq2"
"#;

#[test]
fn unknown_parent_names_line_and_suggests_the_close_ns() {
    let e = err(&lab(UNKNOWN_PARENT));
    assert!(
        e.starts_with("inv.toml:9:10: server `ns-emea` names parent `ns-hq2`, which is not an NS in this inventory"),
        "{e}"
    );
    assert!(e.contains("help: did you mean `ns-hq`?"), "{e}");
}

#[test]
fn parent_on_a_non_ns_and_parent_that_is_not_an_ns() {
    let e = err(&lab(r#"[[server]]
name = "sql-hq"
role = "sql"
parent = "ns-hq"
[[server]]
name = "ns-hq"
role = "ns"
parent = "sql-hq"
"#));
    assert!(
        e.contains("inv.toml:6:10: server `sql-hq` is a sql server but has a `parent`"),
        "{e}"
    );
    assert!(e.contains("inv.toml:10:10: server `ns-hq` names parent `sql-hq`, which is a sql server, not an NS"), "{e}");
}

#[test]
fn a_cycle_is_named_in_order() {
    let e = err(&lab(r#"[[server]]
name = "ns-a"
role = "ns"
parent = "ns-c"
[[server]]
name = "ns-b"
role = "ns"
parent = "ns-a"
[[server]]
name = "ns-c"
role = "ns"
parent = "ns-b"
"#));
    assert!(
        e.contains("inv.toml:6:10: the NS hierarchy has a cycle: ns-a → ns-c → ns-b → ns-a"),
        "{e}"
    );
    assert_eq!(e.matches("cycle").count(), 1, "reported once: {e}");
}

#[test]
fn all_semantic_errors_are_reported_at_once() {
    let e = parse(
        r#"name = "x"
driver = "labb"
lab_delay = "fast"
[[server]]
name = "-bad"
role = "nss"
transport = "winrm"
[[server]]
name = "ns-1"
role = "ns"
sql = "sqlx"
[[server]]
name = "NS-1"
role = "ns"
sql = "ns-1\\bad-instance-name-too-long"
"#,
    )
    .unwrap_err();
    let text = brief(&e);
    // `sqlx` is not listed: fine for a lab (it simulates the instance), so not among them.
    assert_eq!(e.diagnostics.len(), 7, "{text}");
    assert!(
        text.contains("inv.toml:2:10: unknown driver `labb`\n  help: did you mean `lab`?"),
        "{text}"
    );
    assert!(text.contains("inv.toml:3:13: lab_delay:"), "{text}");
    assert!(
        text.contains("inv.toml:5:8: host name `-bad` starts with '-'"),
        "{text}"
    );
    assert!(
        text.contains(
            "inv.toml:6:8: server `-bad` has unknown role `nss`\n  help: did you mean `ns`?"
        ),
        "{text}"
    );
    assert!(
        text.contains("inv.toml:7:13: server `-bad` has unknown transport `winrm`"),
        "{text}"
    );
    assert!(!text.contains("sqlx"), "{text}");
    assert!(
        text.contains("inv.toml:13:8: server `NS-1` is listed twice (first on line 9)"),
        "{text}"
    );
    assert!(text.contains("inv.toml:15:7: NS `NS-1`: SQL instance name `bad-instance-name-too-long` must be 1 to 16"), "{text}");
}

#[test]
fn unknown_keys_are_rejected_with_a_suggestion() {
    let e = err(&lab(r#"[[server]]
name = "ns-hq"
role = "ns"
endpoint = 5
"#));
    assert!(
        e.starts_with("inv.toml:6:1: unknown field `endpoint`"),
        "{e}"
    );
    assert!(e.contains("help: did you mean `endpoints`?"), "{e}");
    let e = err(&lab(r#"[[server]]
name = "ns-hq"
role = "ns"
[server.lab]
replication = true
"#));
    assert!(
        e.starts_with("inv.toml:7:1: unknown field `replication`"),
        "{e}"
    );
    assert!(e.contains("did you mean `replication_enabled`?"), "{e}");
}

#[test]
fn syntax_errors_carry_a_position() {
    let e = err("name = \"x\"\ndriver = \n");
    assert!(e.starts_with("inv.toml:2:"), "{e}");
}

#[test]
fn estate_names_cannot_escape_the_lab_directory() {
    let e = err("name = \"../etc\"\ndriver = \"lab\"\n[[server]]\nname = \"a\"\nrole = \"ns\"\n");
    assert!(
        e.contains("inv.toml:1:8: estate name `../etc` cannot start with '.'"),
        "{e}"
    );
}

#[test]
fn windows_ns_needs_sql_and_fail_keys_must_be_operations() {
    let e = err(&windows(
        r#"[[server]]
name = "ns-hq"
role = "ns"
[server.lab]
fail = { backup_cmbd = 1 }
"#,
    ));
    assert!(e.contains("NS `ns-hq` has no `sql`"), "{e}");
    assert!(
        e.contains(
            "`fail` names unknown operation `backup_cmbd`\n  help: did you mean `backup_cmdb`?"
        ),
        "{e}"
    );
}

#[test]
fn lab_refused_an_ns_whose_sql_instance_is_not_a_server_of_the_inventory() {
    let ns_sql = lab(r#"[[server]]
name = "ns-hq"
role = "ns"
sql = "sql-a"
[[server]]
name = "ns-b"
role = "ns"
parent = "ns-hq"
sql = "sqlcl01\\CMDB"
"#);
    let inv = parse(&ns_sql).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        inv.server("ns-hq").and_then(|s| s.sql.as_deref()),
        Some("sql-a")
    );
    // The windows driver needs the host to reach it, and says so.
    let e = err(&ns_sql.replace("driver = \"lab\"", "driver = \"windows\""));
    assert!(
        e.contains("NS `ns-hq` names sql `sql-a`, which is not in this inventory: the windows driver runs the CMDB's T-SQL on the SQL host"),
        "{e}"
    );
    assert!(
        e.contains("whose host `sqlcl01` is not in this inventory: the windows driver"),
        "{e}"
    );
}

#[test]
fn sql_must_be_a_sql_server_or_the_ns_itself() {
    let e = err(&lab(r#"[[server]]
name = "ns-hq"
role = "ns"
sql = "site-1"
[[server]]
name = "site-1"
role = "site"
"#));
    assert!(
        e.contains("NS `ns-hq` names sql `site-1`, which is not a sql server"),
        "{e}"
    );
}

#[test]
fn missing_file_is_a_clear_error() {
    let e = Inventory::load(Path::new("/nonexistent/inv.toml")).unwrap_err();
    assert!(
        brief(&e).starts_with("cannot read the inventory /nonexistent/inv.toml: "),
        "{e}"
    );
    assert!(
        e.render().starts_with("error: cannot read the inventory"),
        "{e}"
    );
}

#[test]
fn team_inventory_without_driver_loads_with_roles_groups_vars_and_reach_keys() {
    let inv = parse(
        r#"name = "team"
[[server]]
name = "web1"
role = "web"
groups = ["web", "eu", "web"]
vars = { weight = 3, ratio = 0.5, canary = true, tags = ["a", "b"], owner = "ops" }
address = "192.0.2.7"
port = 2222
user = "deploy"
identity_file = "~/.ssh/id_team"
known_hosts = "keys/known_hosts"
transport = "ssh"
[[server]]
name = "db1"
"#,
    )
    .unwrap();
    assert_eq!(inv.driver, None);
    let w = &inv.servers[0];
    assert_eq!((w.role, w.role_name.as_deref()), (None, Some("web")));
    assert_eq!(w.groups, ["web", "eu"]);
    assert_eq!(w.vars["weight"], 3);
    assert_eq!(w.vars["tags"], serde_json::json!(["a", "b"]));
    assert_eq!(
        (w.address(), w.port, w.user.as_deref()),
        ("192.0.2.7", Some(2222), Some("deploy"))
    );
    assert_eq!(w.transport, TransportKind::Ssh);
    let d = &inv.servers[1];
    assert_eq!((d.role_name.as_deref(), d.address()), (None, "db1"));
    let j = inv.to_json();
    assert_eq!(j["driver"], serde_json::Value::Null);
    assert_eq!(j["servers"][0]["vars"]["owner"], "ops");
    assert_eq!(j["servers"][1]["address"], "db1");
}

#[test]
fn team_keys_are_validated_with_positions() {
    let e = err(r#"name = "team"
[[server]]
name = "web1"
groups = ["web", "no spaces"]
vars = { nested = { a = 1 } }
address = "not a host!"
port = 70000
user = "-oProxyCommand=x"
"#);
    assert!(
        e.contains("inv.toml:4:18: server `web1` has group `no spaces`"),
        "{e}"
    );
    assert!(
        e.contains("inv.toml:5:8: server `web1`: vars.nested is a table"),
        "{e}"
    );
    assert!(
        e.contains("inv.toml:6:11: server `web1` has address `not a host!`"),
        "{e}"
    );
    assert!(
        e.contains("inv.toml:7:8: server `web1` has port 70000; a port is 1 to 65535"),
        "{e}"
    );
    assert!(e.contains("inv.toml:8:8: server `web1` has user `-oProxyCommand=x`, which cannot be passed to ssh safely"), "{e}");
    let e = err("name = \"team\"\n[[server]]\nname = \"web1\"\ngroup = [\"web\"]\n");
    assert!(e.starts_with("inv.toml:4:1: unknown field `group`"), "{e}");
    assert!(e.contains("help: did you mean `groups`?"), "{e}");
}

#[test]
fn custom_roles_in_an_itms_estate_keep_itms_validation() {
    // A team's own role is fine next to ITMS servers; a near miss of an ITMS role
    // is still a typo there, and `parent` still belongs to an NS only.
    let e = err(&lab(r#"[[server]]
name = "ns-hq"
role = "ns"
[[server]]
name = "mon1"
role = "monitoring"
parent = "ns-hq"
[[server]]
name = "s1"
role = "sitee"
"#));
    assert!(
        e.contains("inv.toml:9:10: server `mon1` is a `monitoring` server but has a `parent`"),
        "{e}"
    );
    assert!(
        e.contains(
            "inv.toml:12:8: server `s1` has unknown role `sitee`\n  help: did you mean `site`?"
        ),
        "{e}"
    );
    // Without a driver the same words are a team's roles.
    let inv = parse("name = \"x\"\n[[server]]\nname = \"s1\"\nrole = \"sitee\"\n").unwrap();
    assert_eq!(inv.servers[0].role_name.as_deref(), Some("sitee"));
}

#[test]
fn problems_render_through_the_diagnostic_renderer_with_a_caret() {
    let e = parse(&lab(UNKNOWN_PARENT)).unwrap_err();
    let r = e.render();
    assert!(
        r.starts_with(
            "error: server `ns-emea` names parent `ns-hq2`, which is not an NS in this inventory\n"
        ),
        "{r}"
    );
    assert!(r.contains("  --> inv.toml:9:10\n"), "{r}");
    assert!(r.contains("   9 | parent = \"ns-hq2\"\n"), "{r}");
    assert!(r.contains("     |          ^\n"), "{r}");
    assert!(r.contains("  = help: did you mean `ns-hq`?"), "{r}");
    // A syntax error gets its caret too.
    let r = parse("name = \"x\"\ndriver = \n").unwrap_err().render();
    assert!(
        r.contains("  --> inv.toml:2:") && r.contains("2 | driver = "),
        "{r}"
    );
}

#[test]
fn the_fleet_example_inventory_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleet/fleet.toml");
    let inv = Inventory::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(inv.driver, None);
    let web: Vec<&str> = (inv.servers.iter())
        .filter(|s| s.groups.iter().any(|g| g == "web"))
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(web, ["web1", "web2"]);
    assert!(inv.servers.iter().all(|s| s.vars.contains_key("root")));
}

#[test]
fn a_site_server_names_its_ns_or_belongs_to_the_only_one() {
    let one = parse(&lab(
        "[[server]]\nname = \"ns-1\"\nrole = \"ns\"\n[[server]]\nname = \"pkg-1\"\nrole = \"site\"\n",
    ))
    .unwrap();
    assert_eq!(one.server("pkg-1").unwrap().ns.as_deref(), Some("ns-1"));
    assert_eq!(one.to_json()["servers"][1]["ns"], "ns-1");
    let two =
        "[[server]]\nname = \"ns-1\"\nrole = \"ns\"\n[[server]]\nname = \"ns-2\"\nrole = \"ns\"\n";
    let e = err(&lab(&format!(
        "{two}[[server]]\nname = \"pkg-1\"\nrole = \"site\"\n"
    )));
    assert!(
        e.contains("inv.toml:10:8: site server `pkg-1` has no `ns`, and this inventory has 2 NSs"),
        "{e}"
    );
    assert!(e.contains("add ns = \"NAME\""), "{e}");
    let e = err(&lab(&format!(
        "{two}[[server]]\nname = \"pkg-1\"\nrole = \"site\"\nns = \"ns-3\"\n"
    )));
    assert!(e.contains("names ns `ns-3`, which is not an NS"), "{e}");
    let e = err(&lab(&format!("{two}ns = \"ns-1\"\n")));
    assert!(
        e.contains("server `ns-2` has `ns`, which only a site server has"),
        "{e}"
    );
    // A team's own inventory (no driver) is not an ITMS estate: no NS is asked for.
    let own = "name = \"x\"\n[[server]]\nname = \"a\"\nrole = \"ns\"\n[[server]]\nname = \"b\"\nrole = \"ns\"\n[[server]]\nname = \"c\"\nrole = \"site\"\n";
    assert!(parse(own).is_ok());
}
