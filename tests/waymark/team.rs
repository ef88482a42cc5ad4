//! A team's own estate: an inventory without a driver, with custom roles, groups and
//! vars, read by a runbook that declares one step per server of a group.

use crate::harness::{step, Test};

const TEAM: &str = r#"name = "pg-fleet"

[[server]]
name = "db1"
role = "primary"
groups = ["db", "eu"]
vars = { pg_port = 5440, data_dir = "/srv/pg", replicas = ["db2", "db3"], standby = false }
address = "10.0.0.5"
port = 2222
user = "deploy"

[[server]]
name = "db2"
role = "standby"
groups = ["db"]
vars = { pg_port = 5441, standby = true }

[[server]]
name = "web1"
groups = ["web"]
"#;

#[test]
fn team_inventory_without_driver_runs_one_step_per_server_of_a_group() {
    let t = Test::new()
        .file("team.toml", TEAM)
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "team", description: "d" });
               for s in servers_in(inventory, "db") {
                   let name = s.name;
                   step(`check:${name}`, #{ run: |ctx| {
                       let me = inventory.servers_in("db").filter(|x| x.name == name)[0];
                       [me.role, me.address, me.port, me.user, me.vars.pg_port, me.vars.standby]
                   } });
               }"#,
        )
        .args(&["run", "rb.rhai", "--inventory", "team.toml"]);
    let o = t.run();
    assert_eq!(o.code, 0, "{o:?}");
    let s = t.status();
    assert_eq!(
        step(&s, "check:db1")["output"],
        serde_json::json!(["primary", "10.0.0.5", 2222, "deploy", 5440, false])
    );
    // address defaults to the name; absent keys are ().
    assert_eq!(
        step(&s, "check:db2")["output"],
        serde_json::json!(["standby", "db2", null, null, 5441, true])
    );
    let names: Vec<&str> = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["check:db1", "check:db2"]);
}

#[test]
fn misspelled_group_is_a_load_error_with_a_suggestion() {
    let t = Test::new()
        .file("team.toml", TEAM)
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "team", description: "d" });
               for s in servers_in(inventory, "dbs") { step(s.name, #{ run: |ctx| 1 }); }"#,
        )
        .args(&["plan", "rb.rhai", "--inventory", "team.toml"]);
    let o = t.run();
    assert_ne!(o.code, 0, "{o:?}");
    assert!(
        o.stderr
            .contains("no server of the inventory is in group `dbs`; did you mean `db`?"),
        "{o:?}"
    );
    assert!(o.stderr.contains("rb.rhai:2:"), "{o:?}");
}

#[test]
fn estate_operation_without_driver_names_the_operation_and_what_to_add() {
    let t = Test::new()
        .file("team.toml", TEAM)
        .file(
            "rb.rhai",
            r#"runbook(#{ name: "team", description: "d" });
               step("up", #{ run: |ctx| ns_upgrade("db1") });"#,
        )
        .args(&["run", "rb.rhai", "--inventory", "team.toml"]);
    let o = t.run();
    assert_ne!(o.code, 0, "{o:?}");
    let all = format!("{}{}", o.stdout, o.stderr);
    assert!(
        all.contains("`ns_upgrade` is an estate operation, but the inventory team.toml has no `driver`: add driver = \"lab\""),
        "{o:?}"
    );
}
