//! Where and how to reach one host over ssh: its address, port, user, key and
//! known_hosts file, and which shell runs commands there. An inventory server becomes
//! a target in `estate::ssh_target`, so this module knows nothing of inventories.

use std::path::PathBuf;

/// The shell a host runs remote commands in, which decides how waymark quotes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shell {
    /// A POSIX `sh` (Linux, BSD, macOS).
    Posix,
    /// Windows: OpenSSH's default shell, with PowerShell run explicitly.
    PowerShell,
}

/// One server as ssh reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The inventory name (messages, the master connection's key).
    pub name: String,
    /// Host name or IP address to connect to.
    pub address: String,
    /// Port (ssh's default when `None`).
    pub port: Option<u16>,
    /// Remote user (ssh's default when `None`).
    pub user: Option<String>,
    /// Private key, the only one offered when set.
    pub identity_file: Option<PathBuf>,
    /// Host keys to check against (the user's own when `None`).
    pub known_hosts: Option<PathBuf>,
    /// How commands are quoted there.
    pub shell: Shell,
}

impl Target {
    /// The options every ssh invocation for this host gets, master and clients alike:
    /// never prompt, refuse unknown host keys, notice a dead peer.
    pub(super) fn options(&self) -> Vec<String> {
        let mut o: Vec<String> = [
            "BatchMode=yes",
            "StrictHostKeyChecking=yes",
            "ConnectTimeout=15",
            "ServerAliveInterval=15",
            "ServerAliveCountMax=3",
            "LogLevel=ERROR",
        ]
        .iter()
        .flat_map(|kv| ["-o".to_string(), kv.to_string()])
        .collect();
        if let Some(k) = &self.known_hosts {
            // ssh splits this option's value on spaces unless it is double-quoted.
            o.push("-o".into());
            o.push(format!("UserKnownHostsFile=\"{}\"", k.display()));
        }
        if let Some(i) = &self.identity_file {
            o.extend(["-o".into(), "IdentitiesOnly=yes".into(), "-i".into()]);
            o.push(i.display().to_string());
        }
        // As `-o`, not `-p`/`-l`: scp reads those letters differently.
        if let Some(p) = self.port {
            o.extend(["-o".into(), format!("Port={p}")]);
        }
        if let Some(u) = &self.user {
            o.extend(["-o".into(), format!("User={u}")]);
        }
        o
    }
}
