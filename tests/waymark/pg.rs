//! A throwaway PostgreSQL for the team-mode tests: the installed server binaries
//! (`/usr/lib/postgresql/*/bin`, or `WAYMARK_PG_BIN`) start a cluster in a temp dir on a
//! free loopback port — as `nobody` when the tests run as root, since PostgreSQL refuses
//! root — and every test gets a database of its own. Without a server the tests say loudly that they did not run; under `CI=true` that is
//! a failure.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

/// A running cluster, stopped when the test binary exits.
pub struct Cluster {
    pub port: u16,
    data: PathBuf,
    bin: PathBuf,
    _dir: tempfile::TempDir,
}

fn skipped(test: &str, why: &str) {
    let msg = format!(
        "\n!!!!!!!!\n!!! {test} DID NOT RUN: {why}.\n!!! Team mode (PostgreSQL state) is untested here; install the `postgresql` package (CI does).\n!!!!!!!!\n"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg}");
    }
    eprintln!("{msg}");
}

fn pg_bin() -> Option<PathBuf> {
    if let Some(b) = std::env::var_os("WAYMARK_PG_BIN") {
        return Some(PathBuf::from(b));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").is_file())
        .collect();
    found.sort();
    found.pop()
}

fn is_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

/// `program` as the account that runs the cluster.
fn as_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "nobody", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

static STOP: Mutex<Vec<(PathBuf, PathBuf)>> = Mutex::new(Vec::new());

extern "C" fn stop_all() {
    for (bin, data) in STOP.lock().map(|v| v.clone()).unwrap_or_default() {
        let _ = as_owner(&bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        // The shared cluster lives in a static, so its TempDir is never dropped: remove
        // its directory here, or every test run leaves ~140 MB behind in /tmp.
        if let Some(dir) = data.parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl Cluster {
    /// Start a fresh cluster, or say why not.
    pub fn start() -> Result<Cluster, String> {
        let bin = pg_bin().ok_or("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin)")?;
        let dir = tempfile::Builder::new()
            .prefix("waymark-pg")
            .tempdir()
            .map_err(|e| e.to_string())?;
        if is_root() {
            let o = Command::new("chown")
                .args(["-R", "nobody"])
                .arg(dir.path())
                .output()
                .map_err(|e| e.to_string())?;
            if !o.status.success() {
                return Err(format!("chown: {}", String::from_utf8_lossy(&o.stderr)));
            }
        }
        let data = dir.path().join("data");
        let o = as_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .output()
            .map_err(|e| format!("initdb cannot run: {e}"))?;
        if !o.status.success() {
            return Err(format!("initdb: {}", String::from_utf8_lossy(&o.stderr)));
        }
        let port = free_port();
        let cluster = Cluster {
            port,
            data,
            bin,
            _dir: dir,
        };
        cluster.start_server()?;
        let mut stop = STOP.lock().unwrap();
        if stop.is_empty() {
            unsafe { libc::atexit(stop_all) };
        }
        stop.push((cluster.bin.clone(), cluster.data.clone()));
        Ok(cluster)
    }

    fn start_server(&self) -> Result<(), String> {
        let sock = self.data.parent().unwrap();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=200",
            self.port,
            sock.display()
        );
        let o = as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-o", &opts, "-l"])
            .arg(sock.join("log"))
            .args(["-w", "start"])
            .output()
            .map_err(|e| format!("pg_ctl cannot run: {e}"))?;
        if !o.status.success() {
            let log = std::fs::read_to_string(sock.join("log")).unwrap_or_default();
            return Err(format!(
                "pg_ctl start: {}{log}",
                String::from_utf8_lossy(&o.stderr)
            ));
        }
        Ok(())
    }

    /// Require a password (SCRAM) from role `user` over TCP, and give it `password`.
    #[allow(dead_code)]
    pub fn require_password(&self, user: &str, password: &str) {
        self.sql(
            "postgres",
            &format!("CREATE ROLE {user} LOGIN SUPERUSER PASSWORD '{password}'"),
        );
        let hba = self.data.join("pg_hba.conf");
        let old = std::fs::read_to_string(&hba).unwrap();
        let line = format!("host all {user} 127.0.0.1/32 scram-sha-256\n");
        std::fs::write(&hba, line + old.as_str()).unwrap();
        self.reload();
    }

    /// Serve TLS with `cert` and `key` (PEM) and, with `only`, refuse connections over
    /// TCP without it (every `host` line of pg_hba.conf becomes `hostssl`).
    #[allow(dead_code)]
    pub fn enable_tls(&self, cert: &str, key: &str, only: bool) {
        use std::os::unix::fs::PermissionsExt;
        for (name, text) in [("server.crt", cert), ("server.key", key)] {
            let path = self.data.join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            self.give_to_owner(&path);
        }
        let conf = self.data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str("\nssl = on\n");
        std::fs::write(&conf, text).unwrap();
        if only {
            let hba = self.data.join("pg_hba.conf");
            let text: String = std::fs::read_to_string(&hba)
                .unwrap()
                .lines()
                .map(|l| match l.strip_prefix("host ") {
                    Some(rest) => format!("hostssl {rest}\n"),
                    None => format!("{l}\n"),
                })
                .collect();
            std::fs::write(&hba, text).unwrap();
        }
        self.reload();
    }

    fn give_to_owner(&self, path: &Path) {
        if is_root() {
            let o = Command::new("chown")
                .arg("nobody")
                .arg(path)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
    }

    fn reload(&self) {
        let o = as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .arg("reload")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::thread::sleep(std::time::Duration::from_millis(300));
    }

    /// Stop the server (fast: connections are cut), then start it again on the same port.
    #[allow(dead_code)]
    pub fn restart(&self, down_for: std::time::Duration) {
        let o = as_owner(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::thread::sleep(down_for);
        self.start_server().unwrap();
    }

    /// `psql`-free SQL as the superuser, through the binary's own client: a fresh
    /// database and its URL.
    pub fn database(&self, name: &str) -> String {
        let o = Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", "postgres", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!("CREATE DATABASE {name}"))
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        self.url_of(name, "postgres")
    }

    /// SQL run as the superuser in database `db`.
    #[allow(dead_code)]
    pub fn sql(&self, db: &str, sql: &str) -> String {
        self.sql_as(db, "postgres", sql)
    }

    /// SQL run as role `user` in database `db`.
    #[allow(dead_code)]
    pub fn sql_as(&self, db: &str, user: &str, sql: &str) -> String {
        let o = Command::new(self.bin.join("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", user])
            .args(["-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// The URL of database `db` as role `user` through the unix socket.
    #[allow(dead_code)]
    pub fn socket_url_of(&self, db: &str, user: &str) -> String {
        format!(
            "postgres:///{db}?host={}&port={}&user={user}",
            self.data.parent().unwrap().display(),
            self.port
        )
    }

    /// The URL of database `db` as role `user`.
    pub fn url_of(&self, db: &str, user: &str) -> String {
        format!("postgres://{user}@127.0.0.1:{}/{db}", self.port)
    }
}

static SHARED: OnceLock<Result<Cluster, String>> = OnceLock::new();

/// A database of its own for `test` on the shared cluster, and the cluster; `None` after
/// saying loudly why not.
pub fn database(test: &str) -> Option<(&'static Cluster, String, String)> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let shared = SHARED.get_or_init(Cluster::start);
    match shared {
        Ok(c) => {
            let name = format!(
                "wm_{}_{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            let url = c.database(&name);
            Some((c, name, url))
        }
        Err(why) => {
            skipped(test, why);
            None
        }
    }
}

/// A cluster of its own (for tests that restart the server), or `None` after saying why.
#[allow(dead_code)]
pub fn own_cluster(test: &str) -> Option<Cluster> {
    match Cluster::start() {
        Ok(c) => Some(c),
        Err(why) => {
            skipped(test, &why);
            None
        }
    }
}
