//! An inventory server as ssh reaches it: its `address`, `port`, `user`,
//! `identity_file` and `known_hosts` (relative paths taken from the inventory file's
//! directory), and PowerShell as the remote shell under the windows driver.

use super::{Driver, Inventory, Server};
use crate::ssh::{Shell, Target};
use std::path::{Path, PathBuf};

/// `server` of `inv`. Relative key and known_hosts paths are taken from the
/// inventory file's directory (a `~/` path is left to ssh, which expands it).
pub(crate) fn target_of(server: &Server, inv: &Inventory) -> Target {
    let shell = if inv.driver == Some(Driver::Windows) {
        Shell::PowerShell
    } else {
        Shell::Posix
    };
    target(server, Path::new(&inv.origin).parent(), shell)
}

/// `server` with relative paths taken from `base` and commands run by `shell`.
pub(crate) fn target(server: &Server, base: Option<&Path>, shell: Shell) -> Target {
    let file = |p: &Option<String>| {
        p.as_ref().map(|p| match base {
            Some(b) if !p.starts_with('~') && Path::new(p).is_relative() => b.join(p),
            _ => PathBuf::from(p),
        })
    };
    Target {
        name: server.name.clone(),
        address: server.address().to_string(),
        port: server.port,
        user: server.user.clone(),
        identity_file: file(&server.identity_file),
        known_hosts: file(&server.known_hosts),
        shell,
    }
}
