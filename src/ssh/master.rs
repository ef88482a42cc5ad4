//! One OpenSSH master connection per host per run (`ssh -M -N`), whose control socket
//! the commands share, so a host's commands cost one connection between them.
//!
//! The sockets live in a private (0700) temporary directory of this process. Each
//! master is spawned by a thread of its own that then waits for it: with
//! `PR_SET_PDEATHSIG` tied to that thread, a master dies with waymark whatever ends it,
//! and no master outlives the run. A master that exits (network loss, remote reboot) is
//! replaced on the next command.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::{last_lines, SshError, Target};
use crate::cancel::CancelToken;

/// How long a master may take to connect and authenticate (ssh's own `ConnectTimeout`
/// covers the TCP part; this also bounds a stuck authentication).
const CONNECT_LIMIT: Duration = Duration::from_secs(30);

/// A running (or just ended) master.
struct Master {
    socket: PathBuf,
    /// The options it was started with: a target whose keys changed gets a new one.
    target: Target,
    pid: u32,
    /// Set by its thread once the master has exited.
    ended: Arc<AtomicBool>,
}

/// The private directory of this process's control sockets (mode 0700: another
/// account must not reach a master through its socket); removed with the pool.
struct SocketDir(PathBuf);

impl SocketDir {
    fn create() -> std::io::Result<SocketDir> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path =
            std::env::temp_dir().join(format!("waymark-ssh-{}-{stamp:x}", std::process::id()));
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(&path)?;
        Ok(SocketDir(path))
    }
}

impl Drop for SocketDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[derive(Default)]
struct Pool {
    dir: Option<SocketDir>,
    next: usize,
    /// Per host, a lock held while its master is being started (so concurrent first
    /// commands on one host share one connection), and the master.
    hosts: HashMap<String, Arc<Mutex<Option<Master>>>>,
}

fn pool() -> &'static Mutex<Pool> {
    static POOL: OnceLock<Mutex<Pool>> = OnceLock::new();
    POOL.get_or_init(Mutex::default)
}

/// The control socket of `target`'s master, starting the master if there is none.
pub(super) fn ensure(target: &Target, cancel: &CancelToken) -> Result<PathBuf, SshError> {
    let (slot, socket) = {
        let mut p = pool().lock().unwrap_or_else(|e| e.into_inner());
        if p.dir.is_none() {
            let dir = SocketDir::create().map_err(|e| {
                connect_error(
                    target,
                    format!("cannot create a private directory for ssh's control sockets: {e}"),
                )
            })?;
            p.dir = Some(dir);
        }
        let n = p.next;
        p.next += 1;
        let dir = p.dir.as_ref().map(|d| d.0.clone()).unwrap_or_default();
        let slot = p.hosts.entry(target.name.clone()).or_default().clone();
        (slot, dir.join(format!("m{n}")))
    };
    let mut master = slot.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = master.as_ref() {
        if !m.ended.load(Ordering::SeqCst) && &m.target == target && m.socket.exists() {
            return Ok(m.socket.clone());
        }
        stop(m);
    }
    let m = start(target, &socket, cancel)?;
    let s = m.socket.clone();
    *master = Some(m);
    Ok(s)
}

/// True while `target`'s master is up.
pub(super) fn alive(target: &Target) -> bool {
    let slot = {
        let p = pool().lock().unwrap_or_else(|e| e.into_inner());
        p.hosts.get(&target.name).cloned()
    };
    slot.is_some_and(|s| {
        s.lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|m| !m.ended.load(Ordering::SeqCst) && m.socket.exists())
    })
}

/// Close every master and remove the sockets' directory (the end of a run).
pub(crate) fn shutdown() {
    let mut p = pool().lock().unwrap_or_else(|e| e.into_inner());
    for slot in p.hosts.values() {
        if let Some(m) = slot.lock().unwrap_or_else(|e| e.into_inner()).take() {
            stop(&m);
        }
    }
    p.hosts.clear();
    p.dir = None;
}

fn stop(m: &Master) {
    if !m.ended.load(Ordering::SeqCst) {
        crate::process::group::kill(m.pid);
    }
}

fn connect_error(target: &Target, message: String) -> SshError {
    SshError::Connect {
        host: target.name.clone(),
        message,
    }
}

/// Start `ssh -M -N` for `target` and wait until its control socket is up.
fn start(target: &Target, socket: &Path, cancel: &CancelToken) -> Result<Master, SshError> {
    let mut cmd = Command::new("ssh");
    cmd.args(["-M", "-N", "-o", "ControlPersist=no", "-S"])
        .arg(socket)
        .args(target.options())
        .arg("--")
        .arg(&target.address)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Not in waymark's foreground group: Ctrl-C is waymark's to handle.
        cmd.process_group(0);
    }
    crate::process::die_with_parent(&mut cmd);
    let ended = Arc::new(AtomicBool::new(false));
    let stderr = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let (ended, stderr) = (ended.clone(), stderr.clone());
        std::thread::Builder::new()
            .name(format!("waymark-ssh-{}", target.name))
            .spawn(move || {
                let mut child = match cmd.spawn() {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        ended.store(true, Ordering::SeqCst);
                        return;
                    }
                };
                let _ = tx.send(Ok(child.id()));
                let mut text = String::new();
                if let Some(mut err) = child.stderr.take() {
                    let _ = err.read_to_string(&mut text);
                }
                let _ = child.wait();
                *stderr.lock().unwrap_or_else(|e| e.into_inner()) = text;
                ended.store(true, Ordering::SeqCst);
            })
            .map_err(|e| connect_error(target, format!("cannot start a thread for ssh: {e}")))?;
    }
    let pid = match rx.recv() {
        Ok(Ok(pid)) => pid,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(connect_error(
                target,
                "`ssh` is not installed or not on PATH (install the OpenSSH client)".into(),
            ))
        }
        Ok(Err(e)) => return Err(connect_error(target, format!("cannot run ssh: {e}"))),
        Err(_) => return Err(connect_error(target, "the ssh thread ended".into())),
    };
    let m = Master {
        socket: socket.to_path_buf(),
        target: target.clone(),
        pid,
        ended: ended.clone(),
    };
    let began = Instant::now();
    loop {
        if socket.exists() {
            return Ok(m);
        }
        if ended.load(Ordering::SeqCst) {
            let text = stderr.lock().unwrap_or_else(|e| e.into_inner()).clone();
            return Err(connect_error(target, last_lines(&text)));
        }
        if let Some(reason) = cancel.reason() {
            stop(&m);
            return Err(SshError::Cancelled(reason));
        }
        if began.elapsed() > CONNECT_LIMIT {
            stop(&m);
            return Err(connect_error(
                target,
                format!("no connection after {}s", CONNECT_LIMIT.as_secs()),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
