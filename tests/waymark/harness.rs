//! A small builder to drive the real `waymark` binary in a temp dir, as a user would.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a finished command gave.
#[derive(Debug)]
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// One invocation of the binary.
pub struct Test {
    pub dir: tempfile::TempDir,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Test {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            args: vec![],
            env: vec![],
        }
    }

    /// Write a file under the temp dir.
    pub fn file(self, name: &str, text: &str) -> Self {
        let p = self.dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
        self
    }

    pub fn args(mut self, args: &[&str]) -> Self {
        self.args = args.iter().map(|s| s.to_string()).collect();
        self
    }

    #[allow(dead_code)]
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    #[allow(dead_code)]
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The binary in the temp dir with the preset args.
    pub fn command(&self) -> Command {
        let mut c = self.bare();
        c.args(&self.args);
        c
    }

    /// The binary in the temp dir, without the preset args.
    pub fn bare(&self) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(self.dir.path())
            .env_remove("WAYMARK_STATE_DIR")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self) -> Output {
        let o = self.command().output().unwrap();
        Output {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into(),
            stderr: String::from_utf8_lossy(&o.stderr).into(),
        }
    }
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_waymark"))
}

impl Test {
    /// The directory of the latest run under `.waymark/runs`.
    #[allow(dead_code)]
    pub fn run_dir(&self) -> PathBuf {
        let runs = self.dir.path().join(".waymark/runs");
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        dirs.pop().expect("a run")
    }

    /// The latest run's id.
    #[allow(dead_code)]
    pub fn run_id(&self) -> String {
        self.run_dir().file_name().unwrap().to_string_lossy().into()
    }

    /// `waymark status --json` of the latest run.
    #[allow(dead_code)]
    pub fn status(&self) -> serde_json::Value {
        let o = self.bare().args(["status", "--json"]).output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

/// The step called `name` in a `status --json` document.
#[allow(dead_code)]
pub fn step<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {status}"))
}

/// Assert a finished process exited with `want`, showing its stderr otherwise.
#[allow(dead_code)]
pub fn expect_code(o: &std::process::Output, want: i32) {
    assert_eq!(
        o.status.code(),
        Some(want),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Poll `ready` every 20 ms until it gives a value; fail the test naming `what` after
/// 20 s (generous: CI machines are shared), so a wait can never hang the suite.
#[allow(dead_code)]
pub fn wait_until<T>(what: &str, mut ready: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "waited 20 s: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

impl Test {
    /// A file under the temp dir as text; empty while it does not exist.
    #[allow(dead_code)]
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }

    /// The id of a run under `STATE/runs` once its directory exists (the first found).
    #[allow(dead_code)]
    pub fn started_run(&self, state: &str) -> Option<String> {
        let e = std::fs::read_dir(self.dir.path().join(state).join("runs"))
            .ok()?
            .next()?;
        Some(e.ok()?.file_name().to_string_lossy().into_owned())
    }

    /// A crash of a real run: `waymark ARGS` in the background, killed with SIGKILL once
    /// `ready` gives a value (which is returned), and reaped.
    #[allow(dead_code)]
    pub fn kill_9_once<T>(&self, args: &[&str], what: &str, ready: impl FnMut() -> Option<T>) -> T {
        let mut child = self.bare().args(args).spawn().unwrap();
        let v = wait_until(what, ready);
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
        v
    }
}
