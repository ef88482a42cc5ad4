//! Throwaway OpenSSH servers for the remote-execution tests: each on a free loopback
//! port, run as the current user from a temp dir with a generated host key, user key,
//! authorized_keys and known_hosts, logging every connection (`LogLevel VERBOSE`).
//! Where `sshd` is missing the tests say loudly that they did not run, and fail when
//! `CI=true` (`.ci/run` installs `openssh-server`).

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

/// One running sshd; killed when dropped.
pub struct Sshd {
    pub dir: tempfile::TempDir,
    pub port: u16,
    child: Child,
}

/// The keys both servers and the client share: one user key, and a known_hosts file
/// listing every started server.
pub struct Keys {
    pub dir: tempfile::TempDir,
}

impl Keys {
    pub fn identity(&self) -> PathBuf {
        self.dir.path().join("id_ed25519")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.path().join("known_hosts")
    }
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "waymark-test", "-f"])
        .arg(path)
        .status()
        .expect("ssh-keygen runs")
        .success();
    assert!(ok, "ssh-keygen failed for {}", path.display());
}

/// The user key and an empty known_hosts, or `None` (said loudly) when there is no sshd.
pub fn keys(test: &str) -> Option<Keys> {
    if !Path::new(SSHD).exists() {
        eprintln!(
            "\n!!!!! {test} DID NOT RUN: no {SSHD} (apt-get install -y openssh-server; .ci/run installs it) !!!!!\n"
        );
        assert_ne!(
            std::env::var("CI").as_deref(),
            Ok("true"),
            "openssh-server is required when CI=true"
        );
        return None;
    }
    // sshd started by root wants its privilege separation directory.
    if whoami() == "root" {
        let _ = std::fs::create_dir_all("/run/sshd");
    }
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys { dir };
    keygen(&keys.identity());
    std::fs::write(keys.known_hosts(), "").unwrap();
    Some(keys)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    /// Start a server accepting `keys`' user key; its host key is added to
    /// `keys.known_hosts()` when `trusted`.
    pub fn start(keys: &Keys, trusted: bool) -> Sshd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keygen(&d.join("host_ed25519"));
        std::fs::copy(
            keys.identity().with_extension("pub"),
            d.join("authorized_keys"),
        )
        .unwrap();
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_ed25519\nPidFile {d}/sshd.pid\n\
             AuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
             PermitRootLogin yes\nLogLevel VERBOSE\nMaxSessions 50\nMaxStartups 50\n\
             Subsystem sftp internal-sftp\n",
            d = d.display()
        );
        std::fs::write(d.join("sshd_config"), config).unwrap();
        if trusted {
            let key = std::fs::read_to_string(d.join("host_ed25519.pub")).unwrap();
            let mut kh = std::fs::read_to_string(keys.known_hosts()).unwrap();
            kh.push_str(&format!("[127.0.0.1]:{port} {}", key.trim()));
            kh.push('\n');
            std::fs::write(keys.known_hosts(), kh).unwrap();
        }
        let child = Command::new(SSHD)
            .arg("-D")
            .arg("-f")
            .arg(d.join("sshd_config"))
            .arg("-E")
            .arg(d.join("sshd.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sshd starts");
        let s = Sshd { dir, port, child };
        let began = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                began.elapsed() < Duration::from_secs(20),
                "sshd did not listen on {port}: {}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        s
    }

    /// sshd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }

    /// ssh connections made so far (authenticated; a readiness probe does not count).
    pub fn connections(&self) -> usize {
        self.log().matches("Accepted publickey for ").count()
    }

    /// An inventory `[[server]]` entry naming this server `name`.
    pub fn server(&self, name: &str, keys: &Keys) -> String {
        format!(
            "[[server]]\nname = \"{name}\"\naddress = \"127.0.0.1\"\nport = {}\nuser = \"{}\"\n\
             identity_file = \"{}\"\nknown_hosts = \"{}\"\ntransport = \"ssh\"\n",
            self.port,
            whoami(),
            keys.identity().display(),
            keys.known_hosts().display()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The current user's name (sshd runs as it, and it logs in as it).
pub fn whoami() -> String {
    let o = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// True while some process's command line contains `marker`.
pub fn running(marker: &str) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|b| {
                    String::from_utf8_lossy(&b)
                        .replace('\0', " ")
                        .contains(marker)
                })
                .unwrap_or(false)
        })
}

/// Wait up to `limit` for `cond`.
pub fn eventually(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let began = Instant::now();
    while began.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    cond()
}
