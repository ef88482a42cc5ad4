//! Throwaway OS accounts, so approval identity is tested as it is used: `approve` run by
//! another account, never through a variable a user could set to become someone else.
//!
//! Creating accounts needs root (CI runs as root). Elsewhere the tests that need them print
//! loudly that they did not run, and fail when `CI=true`.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// An OS account that exists until dropped.
pub struct OsUser {
    pub name: String,
    uid: u32,
    gid: u32,
}

impl OsUser {
    /// A fresh account, or `None` (after saying so loudly) when this process cannot create
    /// one; under `CI=true` that is a failure.
    pub fn create(test: &str) -> Option<OsUser> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return skipped(test, "creating OS accounts needs root");
        }
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "wm{}x{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let made = Command::new("useradd")
            .args(["--no-create-home", "--shell", "/usr/sbin/nologin", &name])
            .output();
        match made {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                return skipped(
                    test,
                    &format!("useradd failed: {}", String::from_utf8_lossy(&o.stderr)),
                )
            }
            Err(e) => return skipped(test, &format!("useradd cannot run: {e}")),
        }
        let id = |flag: &str| -> u32 {
            let o = Command::new("id").args([flag, &name]).output().unwrap();
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        };
        let (uid, gid) = (id("-u"), id("-g"));
        Some(OsUser { name, uid, gid })
    }

    /// `waymark` running as this account in `dir`.
    pub fn waymark(&self, dir: &Path) -> Command {
        let mut c = Command::new(shared_bin());
        c.current_dir(dir)
            .env_remove("WAYMARK_STATE_DIR")
            .env("NO_COLOR", "1")
            // Claiming to be someone else through the environment must change nothing.
            .env("USER", "root")
            .env("LOGNAME", "root")
            .stdin(std::process::Stdio::null());
        self.switch(&mut c);
        c
    }

    /// Make `c` run as this account.
    pub fn switch(&self, c: &mut Command) {
        let (uid, gid) = (self.uid, self.gid);
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            c.pre_exec(move || {
                if libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(gid) != 0
                    || libc::setuid(uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
}

impl Drop for OsUser {
    fn drop(&mut self) {
        let _ = Command::new("userdel").arg(&self.name).output();
    }
}

fn skipped(test: &str, why: &str) -> Option<OsUser> {
    let msg = format!(
        "\n!!!!!!!!\n!!! {test} DID NOT RUN: {why}.\n!!! Approval identity across OS accounts is untested here; run the tests as root (CI does).\n!!!!!!!!\n"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    #[allow(clippy::disallowed_macros)]
    {
        eprintln!("{msg}");
    }
    None
}

/// The waymark binary where every account can run it: the build's own when every directory
/// above it lets others through, else a copy in a directory of its own, removed at exit. A
/// checkout under `/root`, a 0700 home or a `mktemp -d` directory is not open to others.
fn shared_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = crate::harness::bin();
        let open =
            |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.permissions().mode() & 0o001 != 0);
        if bin.ancestors().skip(1).all(open) {
            return bin;
        }
        let dir = tempfile::Builder::new()
            .prefix("waymark-bin")
            .tempdir()
            .unwrap()
            .keep();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        let copy = dir.join("waymark");
        std::fs::copy(&bin, &copy).unwrap();
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
        *COPY_DIR.lock().unwrap_or_else(|e| e.into_inner()) = Some(dir);
        // SAFETY: registers a plain extern "C" function with no preconditions.
        unsafe { libc::atexit(remove_copy) };
        copy
    })
    .clone()
}

static COPY_DIR: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);

extern "C" fn remove_copy() {
    if let Some(dir) = COPY_DIR.lock().ok().and_then(|d| d.clone()) {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Let every account read and write `dir` (the test's state directory), as a team sharing
/// a state directory would arrange with a group.
pub fn share(dir: &Path) {
    let o = Command::new("chmod")
        .args(["-R", "a+rwX"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
