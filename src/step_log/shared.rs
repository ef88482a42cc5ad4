//! The run's shared step log: the lines of every step that logs little, in one file.
//!
//! Why: on the filesystems waymark runs on, creating a file costs far more than writing a
//! line (on the test machine's ext4, ~0.25 ms of kernel CPU per new inode against a few
//! microseconds per append, docs/performance.md, `run_exec`), and most steps log a line or two — an
//! `exec` step's `[exec] $ …` and its exit code. A file per step made the kernel's inode
//! allocation a third of a 1,000-process run's CPU. So a step's lines start in the run's
//! one shared file, each line prefixed with the step's file stem ([`stem`]) and a space;
//! once a handle has put [`SHARED_LIMIT`] bytes there, the step gets its own
//! `<stem>.log` as before (rotated at its cap), and every later line goes there — of
//! this attempt and of any later one, which finds that file at its first line.
//!
//! A step's log therefore reads as its shared lines, then `<stem>.log.1`, then
//! `<stem>.log` ([`split`] sorts the shared file by stem). Each entry (a `line` call,
//! possibly several lines) is one `write(2)` to a file opened `O_APPEND`, so entries of
//! concurrent steps never interleave inside a line, and the file is written exactly as
//! eagerly as a step's own file: nothing is buffered in waymark (see ARCHITECTURE.md,
//! "Durability").

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write as _};
use std::path::PathBuf;

/// Bytes one handle may put in the shared file before the step gets a file of its own.
///
/// A step's log is at most this much bigger than with files only (per attempt that
/// stayed below it); reading one step's log reads the whole shared file, which this
/// keeps to a few KiB per step.
pub(crate) const SHARED_LIMIT: u64 = 8 * 1024;

/// The prefix of `step`'s lines in the shared file: its log file's stem.
///
/// [`super::log_file_name`] never yields a space, so the first space of a line ends it.
pub(crate) fn stem(step: &str) -> String {
    let mut name = super::log_file_name(step);
    name.truncate(name.len() - ".log".len());
    name
}

/// One handle's lines in the shared file, until they outgrow [`SHARED_LIMIT`].
pub(super) struct Spill {
    pub(super) path: PathBuf,
    prefix: String,
    /// Opened at the first line, like a step's own file.
    file: Option<File>,
    written: u64,
    limit: u64,
}

impl Spill {
    pub(super) fn new(path: PathBuf, step: &str, limit: u64) -> Spill {
        Spill {
            path,
            prefix: stem(step) + " ",
            file: None,
            written: 0,
            limit,
        }
    }

    /// Append `block` (whole lines) framed with the step's prefix; `Ok(false)` when it
    /// would take this handle past its limit, and nothing was written.
    pub(super) fn write(&mut self, block: &[u8]) -> io::Result<bool> {
        let mut framed = Vec::with_capacity(block.len() + 2 * self.prefix.len());
        for line in block.split_inclusive(|&b| b == b'\n') {
            framed.extend_from_slice(self.prefix.as_bytes());
            framed.extend_from_slice(line);
        }
        if self.written + framed.len() as u64 > self.limit {
            return Ok(false);
        }
        let file = match &mut self.file {
            Some(f) => f,
            None => self
                .file
                .insert(super::open_private(&self.path, false, true)?),
        };
        file.write_all(&framed)?;
        self.written += framed.len() as u64;
        Ok(true)
    }
}

/// The shared file's lines sorted by step stem, each without its prefix, in file order.
///
/// A last line without its newline (being written, or torn by a crash) is kept as it is.
pub(crate) fn split(bytes: &[u8]) -> HashMap<&[u8], Vec<u8>> {
    let mut by_stem: HashMap<&[u8], Vec<u8>> = HashMap::new();
    for line in bytes.split_inclusive(|&b| b == b'\n') {
        if let Some(space) = line.iter().position(|&b| b == b' ') {
            by_stem
                .entry(&line[..space])
                .or_default()
                .extend_from_slice(&line[space + 1..]);
        }
    }
    by_stem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_framed_by_stem_and_split_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs").join("shared.txt");
        let mut a = Spill::new(path.clone(), "db:backup", 1024);
        let mut b = Spill::new(path.clone(), "db backup", 1024);
        assert!(a.write(b"t [log] one\nt [log] two\n").unwrap());
        assert!(b.write(b"t [log] other\n").unwrap());
        assert!(a.write(b"t [log] three\n").unwrap());
        let bytes = std::fs::read(&path).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("db%3Abackup t [log] one\n"), "{text}");
        let by = split(&bytes);
        assert_eq!(
            by[stem("db:backup").as_bytes()],
            b"t [log] one\nt [log] two\nt [log] three\n"
        );
        assert_eq!(by[stem("db backup").as_bytes()], b"t [log] other\n");
        assert_eq!(by.len(), 2);
    }

    #[test]
    fn a_handle_stops_at_its_limit_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shared.txt");
        let mut s = Spill::new(path.clone(), "s", 20);
        assert!(s.write(b"0123456789\n").unwrap());
        assert!(!s.write(b"0123456789\n").unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"s 0123456789\n");
    }

    #[test]
    fn a_torn_last_line_is_kept_and_an_unframed_one_dropped() {
        let by = split(b"a x\nnospace\nb y\na half");
        assert_eq!(by[&b"a"[..]], b"x\nhalf");
        assert_eq!(by[&b"b"[..]], b"y\n");
        assert_eq!(by.len(), 2);
    }
}
