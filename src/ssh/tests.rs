//! The ssh command lines waymark builds, without a server: options every invocation
//! carries, the quoting of the remote line, and the PowerShell form for Windows hosts.
//! Behaviour against a real sshd is in tests/waymark/remote.rs.

use std::path::Path;

use super::*;
use crate::estate::itms::Role;
use crate::estate::{Inventory, Server};

fn server() -> Server {
    Server {
        address: Some("10.0.0.5".into()),
        port: Some(2222),
        user: Some("deploy".into()),
        identity_file: Some("keys/id".into()),
        known_hosts: Some("~/kh file".into()),
        ..Server::new("web1", Role::Site)
    }
}

fn command(argv: &[&str]) -> RemoteCommand {
    RemoteCommand {
        argv: argv.iter().map(|s| s.to_string()).collect(),
        env: vec![("MODE".into(), "a b".into())],
        cwd: Some("/srv/app".into()),
        stdin: None,
        powershell: None,
        timeout: None,
        shown: "shown".into(),
    }
}

#[test]
fn posix_quote_never_needs_bash() {
    assert_eq!(posix_quote("plain-word_1.2/x:y@z"), "plain-word_1.2/x:y@z");
    assert_eq!(posix_quote(""), "''");
    assert_eq!(posix_quote("it's"), r"'it'\''s'");
    assert_eq!(posix_quote("a\nb"), "'a\nb'");
    assert_eq!(posix_quote("$(x) `y`"), "'$(x) `y`'");
}

#[test]
fn targets_take_relative_paths_from_the_inventory_and_leave_tilde_to_ssh() {
    let mut inv = Inventory::parse(
        "name = \"t\"\n[[server]]\nname = \"web1\"\n",
        "/etc/fleet/inv.toml",
    )
    .unwrap();
    inv.servers = vec![server()];
    let t = crate::estate::ssh_target::target_of(&inv.servers[0], &inv);
    assert_eq!(
        t.identity_file.as_deref(),
        Some(Path::new("/etc/fleet/keys/id"))
    );
    assert_eq!(t.known_hosts.as_deref(), Some(Path::new("~/kh file")));
    assert_eq!(t.shell, Shell::Posix);
    let o = t.options().join(" ");
    for want in [
        "-o BatchMode=yes",
        "-o StrictHostKeyChecking=yes",
        "-o UserKnownHostsFile=\"~/kh file\"",
        "-o IdentitiesOnly=yes -i /etc/fleet/keys/id",
        "-o Port=2222",
        "-o User=deploy",
    ] {
        assert!(o.contains(want), "{want} not in {o}");
    }
}

#[test]
fn a_posix_command_runs_in_the_wrapper_through_the_master_with_stdin_held() {
    let t = crate::estate::ssh_target::target(&server(), None, Shell::Posix);
    let spec = command(&["printf", "%s", "it's $(x)"]).spec(&t, Path::new("/tmp/s/m0"));
    assert_eq!(spec.program, "ssh");
    let args = spec.args.join(" ");
    assert!(
        args.starts_with("-S /tmp/s/m0 -o ControlMaster=no -T "),
        "{args}"
    );
    let dashes = spec.args.iter().position(|a| a == "--").unwrap();
    assert_eq!(spec.args[dashes + 1], "10.0.0.5");
    let line = &spec.args[dashes + 2];
    assert_eq!(
        spec.args.len(),
        dashes + 3,
        "the remote line is one argument"
    );
    assert!(line.starts_with("exec sh -c '"), "{line}");
    assert!(
        line.ends_with(" waymark /srv/app 0 '' env 'MODE=a b' printf %s 'it'\\''s $(x)'"),
        "{line}"
    );
    assert!(spec.hold_stdin && spec.stdin.is_none());
    assert_eq!(spec.shown.as_deref(), Some("web1: shown"));
}

#[test]
fn a_windows_command_is_a_powershell_script_of_literals_on_stdin() {
    let t = crate::estate::ssh_target::target(&server(), None, Shell::PowerShell);
    let spec = command(&["sc.exe", "stop", "it's"]).spec(&t, Path::new("/tmp/s/m0"));
    assert_eq!(
        spec.args.last().map(String::as_str),
        Some("pwsh -NoProfile -NonInteractive -Command -")
    );
    let script = "Set-Location -LiteralPath '/srv/app'\n[Environment]::SetEnvironmentVariable('MODE', 'a b')\n& 'sc.exe' 'stop' 'it''s'\nexit $LASTEXITCODE\n";
    assert_eq!(
        spec.stdin.as_deref(),
        Some(crate::process::powershell::stdin_payload(script).as_str())
    );
    assert!(!spec.hold_stdin);
}
