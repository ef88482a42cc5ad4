//! Every script the windows driver generates, parsed by real grammars: PowerShell with
//! tree-sitter-powershell, the T-SQL inside `$query` with sqlparser's MsSqlDialect where
//! it covers the statement. No PowerShell or SQL Server runs here, so this is the next
//! best proof that the scripts are well-formed and that a value can never become code:
//! each script has no syntax error, and its syntax tree has the same shape (node kinds,
//! in order) with hostile values as with benign ones.
//!
//! Known gap: tree-sitter-powershell does not end a single-quoted literal at a smart quote
//! (‘ ’ ‚ ‛) as PowerShell does, so for those the skeleton test of `scripts/tests.rs` is the
//! proof; and sqlparser has no grammar for `BACKUP`/`RESTORE` or the index maintenance's
//! cursor loop ([`TSQL_NOT_COVERED`]).

use super::*;

/// Benign values, and values that would break out of a naive template in every language
/// involved: quotes (straight and smart), `;`, `$(...)`, backticks, brackets, comments,
/// newlines.
struct Values {
    host: &'static str,
    instance: &'static str,
    text: &'static str,
    path: &'static str,
}

const BENIGN: Values = Values {
    host: "ns-hq",
    instance: "sql-hq\\CMDB",
    text: "Symantec_CMDB",
    path: "D:\\Backups\\cmdb.bak",
};

const HOSTILE: Values = Values {
    host: "ns'; Remove-Item -Recurse C:\\ #",
    instance: "sql$(calc)\\I`N'S\"x",
    text: "it's ‘x’ “y”; $(Stop-Computer) `whoami` ]; DROP DATABASE [x]; --\n@' \"@ '@ */ /*",
    path: "D:\\O'Brien\\‘x’;\n$(Stop-Computer) `whoami`",
};

/// (operation, script) for every generator, with `v` in every place a value goes.
fn scripts(v: &Values) -> Vec<(&'static str, String)> {
    let list = [v.text.to_string(), format!("%{}%", v.text)];
    let ids = [v.text.to_string(), "a".to_string()];
    vec![
        ("ns_version", ns_version("ns_version")),
        ("collation", collation(v.instance, v.text)),
        ("disk_free", disk_free(Some(v.text))),
        ("disk_free default", disk_free(None)),
        ("hardware", hardware()),
        ("software_host", software_host()),
        ("software_sql", software_sql(v.instance)),
        ("replication_status", replication_status(v.host)),
        ("installed_products", installed_products()),
        ("dcom", dcom()),
        ("app_pools", app_pools()),
        ("smp_log_errors", smp_log_errors(86_400)),
        (
            "agent_versions",
            agent_versions(v.instance, v.text, Some(v.text), None),
        ),
        (
            "agent_versions all",
            agent_versions(v.instance, v.text, None, None),
        ),
        (
            "agent_versions computer",
            agent_versions(v.instance, v.text, Some(v.text), Some(v.text)),
        ),
        (
            "list_policies patterns",
            list_policies("list_policies", v.instance, v.text, &list, None),
        ),
        (
            "list_policies ids",
            list_policies("list_policies", v.instance, v.text, &list, Some(&ids)),
        ),
        (
            "enable_policies",
            policy_items("enable_policies", v.host, true, &ids),
        ),
        (
            "disable_policies",
            policy_items("disable_policies", v.host, false, &ids),
        ),
        ("set_replication on", set_replication(v.host, true)),
        ("set_replication off", set_replication(v.host, false)),
        ("backup_ns", backup_ns(v.host, v.path)),
        ("backup_cmdb", backup_cmdb(v.instance, v.text, v.path, true)),
        (
            "backup_cmdb unverified",
            backup_cmdb(v.instance, v.text, v.path, false),
        ),
        (
            "restore_cmdb",
            restore_cmdb(v.instance, v.text, v.path, false),
        ),
        (
            "restore_cmdb replace",
            restore_cmdb(v.instance, v.text, v.path, true),
        ),
        (
            "defragment_cmdb",
            defragment_cmdb(v.instance, v.text, 5, 30, 1000),
        ),
        ("run_scheduled_task", run_scheduled_task(v.text, true)),
        (
            "run_scheduled_task nowait",
            run_scheduled_task(v.text, false),
        ),
    ]
}

fn parse_ps(script: &str) -> tree_sitter::Tree {
    let mut parser = tree_sitter::Parser::new();
    parser
        .set_language(&tree_sitter_powershell::LANGUAGE.into())
        .expect("the PowerShell grammar loads");
    parser
        .parse(script, None)
        .expect("tree-sitter returns a tree")
}

/// Node kinds in document order, and every ERROR / MISSING node with its text.
fn walk(tree: &tree_sitter::Tree, src: &str) -> (Vec<&'static str>, Vec<String>) {
    let mut kinds = Vec::new();
    let mut errors = Vec::new();
    let mut cursor = tree.walk();
    'outer: loop {
        let node = cursor.node();
        kinds.push(node.kind());
        if node.is_error() || node.is_missing() {
            let at = node.start_position();
            let text = src.get(node.byte_range()).unwrap_or("").chars().take(80);
            errors.push(format!(
                "{} at {}:{}: {:?}",
                node.kind(),
                at.row + 1,
                at.column + 1,
                text.collect::<String>()
            ));
        }
        if cursor.goto_first_child() {
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                continue 'outer;
            }
            if !cursor.goto_parent() {
                break 'outer;
            }
        }
    }
    (kinds, errors)
}

#[test]
fn every_generated_script_parses_as_powershell_without_errors() {
    for v in [&BENIGN, &HOSTILE] {
        for (op, script) in scripts(v) {
            let tree = parse_ps(&script);
            let (_, errors) = walk(&tree, &script);
            assert!(
                errors.is_empty(),
                "{op}: PowerShell syntax errors {errors:#?} in:\n{script}"
            );
        }
    }
}

#[test]
fn hostile_values_do_not_change_the_powershell_syntax_tree() {
    for ((op, plain), (_, evil)) in scripts(&BENIGN).into_iter().zip(scripts(&HOSTILE)) {
        let (a, _) = walk(&parse_ps(&plain), &plain);
        let (b, _) = walk(&parse_ps(&evil), &evil);
        assert_eq!(
            a, b,
            "{op}: a hostile value changed the shape of the script:\n{evil}"
        );
    }
}

/// The T-SQL of a script: the contents of its `$query = '...'` literal, unquoted.
fn query_of(script: &str) -> Option<String> {
    let start = script.find("$query = '")? + "$query = '".len();
    let quotes = &crate::quote::PS_SINGLE_QUOTES;
    let mut out = String::new();
    let mut chars = script[start..].chars().peekable();
    while let Some(c) = chars.next() {
        if quotes.contains(&c) {
            match chars.peek() {
                Some(n) if quotes.contains(n) => out.push(chars.next()?),
                _ => return Some(out),
            }
        } else {
            out.push(c);
        }
    }
    None
}

/// The statements sqlparser's MsSqlDialect parses, with their kinds, or the error.
fn parse_tsql(sql: &str) -> Result<Vec<String>, String> {
    let dialect = sqlparser::dialect::MsSqlDialect {};
    sqlparser::parser::Parser::parse_sql(&dialect, sql)
        .map(|stmts| {
            stmts
                .iter()
                .map(|s| {
                    // The statement's kind: the first word of its variant name.
                    let d = format!("{s:?}");
                    d.split(|c: char| !c.is_alphanumeric())
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
                .collect()
        })
        .map_err(|e| e.to_string())
}

/// Operations whose T-SQL uses what sqlparser 0.64's MsSqlDialect does not parse:
/// `BACKUP`/`RESTORE` (no grammar for them), and the index maintenance's cursor loop.
/// Their shape under hostile values is still pinned by the PowerShell tree above and by
/// the T-SQL skeleton test in `scripts/tests.rs`.
const TSQL_NOT_COVERED: &[&str] = &[
    "backup_cmdb",
    "backup_cmdb unverified",
    "restore_cmdb",
    "restore_cmdb replace",
    "defragment_cmdb",
];

#[test]
fn the_tsql_inside_parses_with_mssql_dialect_and_keeps_its_statements() {
    let mut covered = 0;
    for ((op, plain), (_, evil)) in scripts(&BENIGN).into_iter().zip(scripts(&HOSTILE)) {
        let (Some(p), Some(e)) = (query_of(&plain), query_of(&evil)) else {
            continue;
        };
        if TSQL_NOT_COVERED.contains(&op) {
            // Keep the list honest: if sqlparser learns these, they move into the check.
            assert!(
                parse_tsql(&p).is_err(),
                "{op}: sqlparser now parses this T-SQL; take it off TSQL_NOT_COVERED"
            );
            continue;
        }
        let a = parse_tsql(&p).unwrap_or_else(|err| panic!("{op}: T-SQL error {err} in:\n{p}"));
        let b =
            parse_tsql(&e).unwrap_or_else(|err| panic!("{op}: hostile T-SQL error {err} in:\n{e}"));
        assert_eq!(
            a, b,
            "{op}: a hostile value changed the T-SQL statements:\n{e}"
        );
        covered += 1;
    }
    assert!(covered >= 6, "only {covered} T-SQL scripts were checked");
}

#[test]
fn the_checks_catch_a_value_pasted_into_a_template() {
    // What the tests above guard against: a value put in without quoting for the language.
    let naive = |v: &str| {
        format!("$ErrorActionPreference = 'Stop'\n$server = '{v}'\nGet-Item -LiteralPath $server\n")
    };
    let plain = naive(BENIGN.host);
    let evil = naive(HOSTILE.host);
    let (a, _) = walk(&parse_ps(&plain), &plain);
    let (b, _) = walk(&parse_ps(&evil), &evil);
    assert_ne!(a, b, "a pasted value must change the tree");
    let broken = "$query = @(Get-Item -LiteralPath ('a'\n";
    assert!(
        !walk(&parse_ps(broken), broken).1.is_empty(),
        "syntax errors are seen"
    );
    // A known gap of the grammar: PowerShell ends a '...' literal at a smart quote too
    // (‘ ’ ‚ ‛), tree-sitter-powershell does not. Those are pinned by the skeleton test in
    // `scripts/tests.rs`, which treats every one as a quote; if the grammar learns them,
    // this fails and the gap note can go.
    let smart = naive("it‘s");
    let (c, _) = walk(&parse_ps(&smart), &smart);
    assert_eq!(
        c, a,
        "tree-sitter-powershell now knows smart quotes: drop the gap note"
    );
    let sql = "SELECT name FROM sys.databases WHERE name = 'x'; DROP DATABASE [x]; --'";
    assert_eq!(
        parse_tsql(sql).map(|s| s.len()),
        Ok(2),
        "a pasted T-SQL value adds a statement"
    );
}
