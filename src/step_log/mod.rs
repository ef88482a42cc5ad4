//! Step logs: `runs/RUN_ID/logs/<step>.log`, and the run's shared file for small ones.
//!
//! Everything a step says — `log`/`warn` from its closure, the lines its child
//! processes print, the commands it runs — lands here, one timestamped line at a
//! time, after secret redaction (SPEC §6). The log is what an operator reads at
//! 2 a.m. when a step failed, so it must keep the *latest* output: when a file would
//! grow past its cap it is rotated to `<step>.log.1` (one generation), which bounds
//! disk use to twice the cap while never losing the tail.
//!
//! A [`StepLog`] is a cheap clonable handle: the reader threads of a child process
//! and the closure's own `log(...)` calls share one file.
//!
//! Step names may contain `:/@` (SPEC §2), so they are mapped to file names by
//! [`log_file_name`], which never yields a path separator or a `.`/`..` component.
//!
//! In a run, a step's first lines go to the run's shared file instead of a file of its
//! own ([`shared`]: creating a file per step cost more than everything else waymark does
//! for a short `exec` step); [`StepLog::create`] alone writes a step's own file from the
//! first line, as earlier versions did.

pub(crate) mod shared;

use crate::redact::Redactor;
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// Default size at which a step log is rotated (8 MiB).
pub(crate) const DEFAULT_LOG_CAP: u64 = 8 * 1024 * 1024;

/// Smallest accepted cap: below this a single long line would rotate every write.
pub(crate) const MIN_LOG_CAP: u64 = 1024;

/// Longest file-name stem produced by [`log_file_name`], leaving room for
/// `.log.1` under the usual 255-byte file-name limit.
const MAX_STEM: usize = 200;

/// Called with `(stream, redacted line)` for every line written, to feed the live display.
pub(crate) type LogEcho = Arc<dyn Fn(&str, &str) + Send + Sync>;

/// How a [`StepLog`] behaves beyond its location.
#[derive(Clone)]
pub struct StepLogOptions {
    /// Rotate when the file would exceed this many bytes (clamped to [`MIN_LOG_CAP`]).
    pub cap: u64,
    /// Optional live echo of every redacted line.
    pub echo: Option<LogEcho>,
}

impl Default for StepLogOptions {
    fn default() -> Self {
        Self {
            cap: DEFAULT_LOG_CAP,
            echo: None,
        }
    }
}

/// A shareable handle on one step's log file; [`StepLog::disabled`] writes nothing.
#[derive(Clone)]
pub struct StepLog {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    redactor: Redactor,
    echo: Option<LogEcho>,
    dest: Dest,
}

/// Takes each entry (timestamped lines, redacted) of a log kept somewhere else than a file.
pub(crate) type LineSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Where the entries go: a rotated file (directory store) or a sink (a database store).
enum Dest {
    File(Mutex<LogFile>),
    Sink(LineSink),
}

/// The mutable part, behind the lock so concurrent lines never interleave mid-line.
struct LogFile {
    path: PathBuf,
    /// `None` until the first line (a step that logs nothing leaves no file: a
    /// 10,000-step run would otherwise spend its time creating inodes), and once the
    /// file could not be reopened: lines then only reach the echo.
    file: Option<File>,
    /// Set once the first line tried to open the file.
    opened: bool,
    /// While `Some`, lines go to the run's shared file instead ([`shared`]).
    shared: Option<shared::Spill>,
    written: u64,
    cap: u64,
    /// First write failure, kept so the caller can report it once.
    error: Option<String>,
}

impl std::fmt::Debug for StepLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("StepLog(disabled)"),
            Some(inner) => match &inner.dest {
                Dest::File(file) => {
                    let file = file.lock().unwrap_or_else(|e| e.into_inner());
                    write!(f, "StepLog({})", file.path.display())
                }
                Dest::Sink(_) => f.write_str("StepLog(sink)"),
            },
        }
    }
}

impl StepLog {
    /// A log that writes nothing (dry runs, tests, load-time evaluation).
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// Open (appending) the log of `step` inside `logs_dir`; the first line creates both.
    ///
    /// The file is created `0600` and an existing file is tightened to `0600`: logs
    /// can hold output a redaction missed. Appending keeps the earlier attempts'
    /// lines when a step is retried or resumed.
    pub fn create(
        logs_dir: &Path,
        step: &str,
        redactor: Redactor,
        options: StepLogOptions,
    ) -> io::Result<Self> {
        Ok(Self::new(logs_dir, step, None, redactor, options))
    }

    /// As [`StepLog::create`], but the step's lines go to the run's `shared` file until
    /// this handle has written [`shared::SHARED_LIMIT`] bytes there — unless the step
    /// already has a file of its own, which then gets every line.
    pub(crate) fn create_sharing(
        logs_dir: &Path,
        shared: &Path,
        step: &str,
        redactor: Redactor,
        options: StepLogOptions,
    ) -> Self {
        let limit = shared::SHARED_LIMIT.min(options.cap.max(MIN_LOG_CAP));
        let spill = shared::Spill::new(shared.to_path_buf(), step, limit);
        Self::new(logs_dir, step, Some(spill), redactor, options)
    }

    fn new(
        logs_dir: &Path,
        step: &str,
        shared: Option<shared::Spill>,
        redactor: Redactor,
        options: StepLogOptions,
    ) -> Self {
        Self {
            inner: Some(Arc::new(Inner {
                redactor,
                echo: options.echo,
                dest: Dest::File(Mutex::new(LogFile {
                    path: logs_dir.join(log_file_name(step)),
                    file: None,
                    opened: false,
                    shared,
                    written: 0,
                    cap: options.cap.max(MIN_LOG_CAP),
                    error: None,
                })),
            })),
        }
    }

    /// A log whose entries go to `sink` (already redacted, one call per entry), for a
    /// store that keeps step logs elsewhere than in files.
    pub fn to_sink(redactor: Redactor, options: StepLogOptions, sink: LineSink) -> Self {
        Self {
            inner: Some(Arc::new(Inner {
                redactor,
                echo: options.echo,
                dest: Dest::Sink(sink),
            })),
        }
    }

    /// Where the log is written, or `None` when disabled.
    pub fn path(&self) -> Option<PathBuf> {
        let inner = self.inner.as_ref()?;
        let Dest::File(file) = &inner.dest else {
            return None;
        };
        let file = file.lock().unwrap_or_else(|e| e.into_inner());
        Some(file.path.clone())
    }

    /// `text` with every secret known to this log's redactor replaced.
    pub fn scrub(&self, text: &str) -> String {
        match &self.inner {
            Some(inner) => inner.redactor.scrub(text),
            None => text.to_string(),
        }
    }

    /// Append `text` under the label `stream` (`stdout`, `stderr`, `log`, ...).
    ///
    /// Each line of `text` becomes one `TIMESTAMP [stream] line` entry. Never fails:
    /// a step must not fail because its log could not be written; the first write
    /// error is kept for [`StepLog::write_error`] and reported once via `tracing`.
    pub fn line(&self, stream: &str, text: &str) {
        let Some(inner) = &self.inner else {
            return;
        };
        let clean = inner.redactor.scrub(text);
        let body = clean.strip_suffix('\n').unwrap_or(&clean);
        let stamp = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
        let mut block = String::with_capacity(body.len() + 40);
        for l in body.split('\n') {
            let l = l.strip_suffix('\r').unwrap_or(l);
            let _ = writeln!(block, "{stamp} [{stream}] {l}");
        }
        match &inner.dest {
            Dest::File(file) => {
                let mut file = file.lock().unwrap_or_else(|e| e.into_inner());
                file.append(&stamp, block.as_bytes());
            }
            Dest::Sink(sink) => sink(&block),
        }
        // Outside the lock: the display may be slow and must not stall other writers.
        if let Some(echo) = &inner.echo {
            for l in body.split('\n') {
                echo(stream, l.strip_suffix('\r').unwrap_or(l));
            }
        }
    }

    /// The first error met writing the file, if any (the log may be incomplete).
    pub fn write_error(&self) -> Option<String> {
        let inner = self.inner.as_ref()?;
        let Dest::File(file) = &inner.dest else {
            return None;
        };
        let file = file.lock().unwrap_or_else(|e| e.into_inner());
        file.error.clone()
    }
}

impl LogFile {
    fn append(&mut self, stamp: &str, block: &[u8]) {
        if !self.opened {
            self.opened = true;
            // An earlier attempt may have outgrown the shared file: its own file then
            // holds the step's newest lines, and every later line belongs after them.
            let create = self.shared.is_none();
            match open_private(&self.path, false, create).and_then(|f| Ok((f.metadata()?.len(), f)))
            {
                Ok((len, f)) => {
                    self.shared = None;
                    self.written = len;
                    self.file = Some(f);
                }
                Err(e) if !create && e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    self.shared = None;
                    self.fail(format!("opening {}: {e}", self.path.display()));
                }
            }
        }
        if let Some(spill) = &mut self.shared {
            match spill.write(block) {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => {
                    let message = format!("writing {}: {e}", spill.path.display());
                    self.fail(message);
                }
            }
            // Outgrown (or unwritable): from here on the step has a file of its own.
            self.shared = None;
            match open_private(&self.path, false, true) {
                Ok(f) => self.file = Some(f),
                Err(e) => self.fail(format!("opening {}: {e}", self.path.display())),
            }
        }
        let mut block = std::borrow::Cow::Borrowed(block);
        if block.len() as u64 > self.cap {
            block = std::borrow::Cow::Owned(self.truncated_entry(stamp, &block));
        }
        if self.written > 0 && self.written + block.len() as u64 > self.cap {
            self.rotate();
        }
        let Some(file) = self.file.as_mut() else {
            return;
        };
        match file.write_all(&block) {
            Ok(()) => self.written += block.len() as u64,
            Err(e) => self.fail(format!("writing {}: {e}", self.path.display())),
        }
    }

    /// One entry larger than the cap: keep its end (the freshest part) and say so.
    fn truncated_entry(&self, stamp: &str, block: &[u8]) -> Vec<u8> {
        // The marker line is well under this; the rest of the cap holds the kept end.
        const MARKER_ROOM: usize = 128;
        let room = (self.cap as usize).saturating_sub(MARKER_ROOM);
        let mut start = block.len().saturating_sub(room);
        // Start on a character boundary so the kept text stays valid UTF-8.
        while start < block.len() && (block[start] & 0xC0) == 0x80 {
            start += 1;
        }
        let mut out =
            format!("{stamp} [waymark] (oversized log entry: its first {start} bytes dropped)\n")
                .into_bytes();
        out.extend_from_slice(&block[start..]);
        out
    }

    /// Move the full file to `<name>.1` (replacing the older generation) and start afresh.
    fn rotate(&mut self) {
        self.file = None;
        let mut old = self.path.clone().into_os_string();
        old.push(".1");
        let old = PathBuf::from(old);
        // Windows refuses to rename onto an existing file.
        #[cfg(windows)]
        let _ = std::fs::remove_file(&old);
        let truncate_instead = match std::fs::rename(&self.path, &old) {
            Ok(()) => false,
            Err(e) => {
                self.fail(format!("rotating {}: {e}", self.path.display()));
                true
            }
        };
        // Reopen even when the rename failed: truncating keeps the disk use bounded.
        match open_private(&self.path, truncate_instead, true) {
            Ok(f) => {
                self.file = Some(f);
                self.written = 0;
            }
            Err(e) => self.fail(format!("reopening {}: {e}", self.path.display())),
        }
    }

    fn fail(&mut self, message: String) {
        if self.error.is_none() {
            tracing::warn!("step log incomplete: {message}");
            self.error = Some(message);
        }
    }
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Open `path` for appending (or truncated), `0600`; with `create`, also its directory.
fn open_private(path: &Path, truncate: bool, create: bool) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(create);
    if truncate {
        options.write(true).truncate(true);
    } else {
        options.append(true);
    }
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = match options.open(path) {
        // The logs directory is made by the first line that needs it, not per step.
        Err(e) if create && e.kind() == io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                create_private_dir(dir)?;
            }
            options.open(path)?
        }
        other => other?,
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // `mode` only applies on creation; a file left by an older run is tightened too.
        if file.metadata()?.permissions().mode() & 0o777 != 0o600 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(file)
}

/// The file name (not path) of `step`'s log: `<stem>.log`.
///
/// The stem keeps ASCII letters, digits, `-`, `_` and `.`, and writes every other
/// byte of the name as `%XX` (upper-case hex), so `upgrade:ns-emea` becomes
/// `upgrade%3Ans-emea.log` and the mapping is reversible by percent-decoding. A
/// leading `.` is also encoded (no hidden files, no `.`/`..`), as is the first letter
/// of a Windows device name (`con` → `%63on`) and an empty name (`%`). Names whose
/// stem would exceed 200 bytes are cut and suffixed with `~` and 16 hex digits of
/// their SHA-256: those are the only names the mapping does not reverse.
pub(crate) fn log_file_name(step: &str) -> String {
    let mut stem = String::with_capacity(step.len() + 8);
    for (i, b) in step.bytes().enumerate() {
        let keep = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || (b == b'.' && i > 0);
        if keep {
            stem.push(b as char);
        } else {
            let _ = write!(stem, "%{b:02X}");
        }
    }
    if stem.is_empty() {
        stem.push('%');
    }
    if is_windows_device_name(&stem) {
        let first = stem.as_bytes()[0];
        stem.replace_range(0..1, &format!("%{first:02X}"));
    }
    if stem.len() > MAX_STEM {
        let digest = Sha256::digest(step.as_bytes());
        stem.truncate(MAX_STEM - 17);
        stem.push('~');
        for b in &digest[..8] {
            let _ = write!(stem, "{b:02x}");
        }
    }
    stem.push_str(".log");
    stem
}

/// Windows reserves these names whatever the extension (`con.log` is the console).
fn is_windows_device_name(stem: &str) -> bool {
    let base = stem.split('.').next().unwrap_or(stem).to_ascii_lowercase();
    matches!(base.as_str(), "con" | "prn" | "aux" | "nul")
        || ((base.starts_with("com") || base.starts_with("lpt"))
            && base.len() == 4
            && base.as_bytes()[3].is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex as StdMutex;

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap_or_default()
    }

    #[test]
    fn step_names_map_to_safe_file_names() {
        assert_eq!(log_file_name("backup-cmdb"), "backup-cmdb.log");
        assert_eq!(log_file_name("upgrade:ns-emea"), "upgrade%3Ans-emea.log");
        assert_eq!(log_file_name("a/b@c"), "a%2Fb%40c.log");
        assert_eq!(log_file_name(".."), "%2E..log");
        assert_eq!(log_file_name("."), "%2E.log");
        assert_eq!(
            log_file_name("../../etc/passwd"),
            "%2E.%2F..%2Fetc%2Fpasswd.log"
        );
        assert_eq!(log_file_name(""), "%.log");
        assert_eq!(log_file_name("CON"), "%43ON.log");
        assert_eq!(log_file_name("com1.x"), "%63om1.x.log");
        assert_eq!(log_file_name("console"), "console.log");
        // Distinct names stay distinct (the encoding is reversible).
        assert_ne!(log_file_name("a:b"), log_file_name("a_b"));
        assert_ne!(log_file_name("a%3Ab"), log_file_name("a:b"));
    }

    #[test]
    fn long_step_names_are_cut_but_stay_distinct() {
        let a = "x".repeat(300) + "a";
        let b = "x".repeat(300) + "b";
        let (fa, fb) = (log_file_name(&a), log_file_name(&b));
        assert!(fa.len() <= MAX_STEM + ".log".len());
        assert_ne!(fa, fb);
        let slashes = "/".repeat(100);
        assert!(!log_file_name(&slashes).contains('/'));
    }

    #[test]
    fn hostile_step_name_stays_inside_the_logs_dir() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        let log = StepLog::create(
            &logs,
            "../../escape",
            Redactor::new(),
            StepLogOptions::default(),
        )
        .unwrap();
        log.line("log", "hello");
        let path = log.path().unwrap();
        assert_eq!(path.parent(), Some(logs.as_path()));
        assert!(read(&path).contains("hello"));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn lines_are_timestamped_labelled_and_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let redactor = Redactor::new();
        redactor.add("hunter2");
        let echoed = Arc::new(StdMutex::new(Vec::new()));
        let sink = echoed.clone();
        let options = StepLogOptions {
            echo: Some(Arc::new(move |stream: &str, line: &str| {
                sink.lock().unwrap().push(format!("{stream}|{line}"));
            })),
            ..StepLogOptions::default()
        };
        let log = StepLog::create(dir.path(), "db:backup", redactor, options).unwrap();
        log.line("stdout", "password=hunter2\r\nsecond line\n");
        let text = read(&log.path().unwrap());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].ends_with(" [stdout] password=[REDACTED]"),
            "{text}"
        );
        assert!(lines[1].ends_with(" [stdout] second line"), "{text}");
        // `2026-11-23T22:15:00.123Z` — RFC 3339 UTC with milliseconds.
        let stamp = lines[0].split(' ').next().unwrap();
        assert_eq!(stamp.len(), 24, "{stamp}");
        assert!(
            stamp.ends_with('Z') && stamp.as_bytes()[19] == b'.',
            "{stamp}"
        );
        assert!(!text.contains("hunter2"));
        assert_eq!(
            *echoed.lock().unwrap(),
            vec!["stdout|password=[REDACTED]", "stdout|second line"]
        );
    }

    #[cfg(unix)]
    #[test]
    fn log_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        std::fs::write(&path, "old\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let log = StepLog::create(dir.path(), "s", Redactor::new(), Default::default()).unwrap();
        log.line("log", "new");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // Appends: the earlier attempt's lines are kept.
        assert!(read(&path).starts_with("old\n"));
    }

    #[test]
    fn rotation_keeps_the_tail_within_twice_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let options = StepLogOptions {
            cap: MIN_LOG_CAP,
            echo: None,
        };
        let log = StepLog::create(dir.path(), "noisy", Redactor::new(), options).unwrap();
        for i in 0..200 {
            log.line("stdout", &format!("line number {i:04}"));
        }
        let current = dir.path().join("noisy.log");
        let previous = dir.path().join("noisy.log.1");
        let (now, before) = (read(&current), read(&previous));
        assert!(now.len() as u64 <= MIN_LOG_CAP, "{}", now.len());
        assert!(before.len() as u64 <= MIN_LOG_CAP, "{}", before.len());
        assert!(now.trim_end().ends_with("line number 0199"));
        assert!(!now.contains("line number 0000") && !before.contains("line number 0000"));
        // No line is lost at the rotation seam.
        let last_before = before.lines().last().unwrap();
        let first_now = now.lines().next().unwrap();
        let n = |l: &str| l.rsplit(' ').next().unwrap().parse::<u32>().unwrap();
        assert_eq!(n(last_before) + 1, n(first_now));
        assert!(log.write_error().is_none());
    }

    #[test]
    fn oversized_entry_keeps_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let options = StepLogOptions {
            cap: MIN_LOG_CAP,
            echo: None,
        };
        let log = StepLog::create(dir.path(), "big", Redactor::new(), options).unwrap();
        let huge = "é".repeat(2000) + "THE END";
        log.line("log", &huge);
        let text = read(&log.path().unwrap());
        assert!(text.len() as u64 <= MIN_LOG_CAP);
        assert!(text.contains("oversized log entry"));
        assert!(text.trim_end().ends_with("THE END"));
    }

    #[test]
    fn disabled_log_writes_nothing() {
        let log = StepLog::disabled();
        log.line("stdout", "anything");
        assert!(log.path().is_none());
        assert!(log.write_error().is_none());
        assert_eq!(log.scrub("x"), "x");
    }
}
