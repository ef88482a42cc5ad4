//! `waymark log RUN [STEP] --follow`: print a step's log as it grows, until the run ends.
//!
//! The running process is the only writer of a step log and rotates it (renames it to
//! `<step>.log.1` and starts a new file) when it reaches its cap, so a follower keeps
//! its place by file identity and offset: when the file at the path is a new one, the
//! rest of the old one is read from `.log.1` first, then the new one from its start.
//! Only whole lines are handed out; a line still being written waits for its newline.
//!
//! A step's first lines may be in the run's shared file instead (`step_log::shared`):
//! a [`StepTail`] hands out those, then — once the step has a file of its own, after
//! which it writes nothing more to the shared file — that file's. The tails of one
//! `log --follow` share one [`SharedTail`], so the shared file is read once per poll,
//! not once per step.

use crate::step_log::shared;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The reading position in one step's log.
#[derive(Debug)]
pub(crate) struct LogTail {
    path: PathBuf,
    /// Identity of the file read so far (`None` before it exists).
    id: Option<(u64, u64)>,
    offset: u64,
    /// Bytes after the last newline.
    partial: Vec<u8>,
}

#[cfg(unix)]
fn file_id(meta: &std::fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (meta.dev(), meta.ino())
}

#[cfg(not(unix))]
fn file_id(meta: &std::fs::Metadata) -> (u64, u64) {
    // Without inode numbers, a file shorter than what was read is taken as new.
    let _ = meta;
    (0, 0)
}

fn read_from(path: &Path, offset: u64, out: &mut Vec<u8>) -> u64 {
    let Ok(mut f) = File::open(path) else {
        return offset;
    };
    if f.seek(SeekFrom::Start(offset)).is_err() {
        return offset;
    }
    let before = out.len();
    let _ = f.read_to_end(out);
    offset + (out.len() - before) as u64
}

impl LogTail {
    /// Follow the log at `path` (it may not exist yet), from its start.
    pub(crate) fn new(path: PathBuf) -> LogTail {
        LogTail {
            path,
            id: None,
            offset: 0,
            partial: Vec::new(),
        }
    }

    /// The whole lines written since the last call.
    pub(crate) fn poll(&mut self) -> Vec<String> {
        let Ok(meta) = std::fs::metadata(&self.path) else {
            return Vec::new();
        };
        let id = file_id(&meta);
        let mut bytes = std::mem::take(&mut self.partial);
        let replaced = match self.id {
            Some(old) => old != id || meta.len() < self.offset,
            None => false,
        };
        if replaced {
            // Rotated: finish the old file, now `.log.1`, then start the new one.
            let mut older = self.path.clone().into_os_string();
            older.push(".1");
            read_from(Path::new(&older), self.offset, &mut bytes);
            self.offset = 0;
        }
        self.id = Some(id);
        self.offset = read_from(&self.path, self.offset, &mut bytes);
        let cut = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
        self.partial = bytes.split_off(cut);
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(String::from)
            .collect()
    }

    /// What is left after the writer stopped: the last line even without its newline.
    pub(crate) fn rest(&mut self) -> Vec<String> {
        let mut lines = self.poll();
        if !self.partial.is_empty() {
            lines.push(String::from_utf8_lossy(&std::mem::take(&mut self.partial)).into_owned());
        }
        lines
    }
}

/// The reading position in the run's shared step log, for the steps being followed.
#[derive(Debug)]
pub struct SharedTail {
    path: PathBuf,
    offset: u64,
    /// Bytes after the last newline.
    partial: Vec<u8>,
    /// Lines read and not yet handed out, by step stem (only the followed steps').
    pending: HashMap<Vec<u8>, Vec<String>>,
}

impl SharedTail {
    /// Follow the shared file at `path` for the steps whose stems are `stems`.
    pub fn new(path: PathBuf, stems: impl Iterator<Item = String>) -> Arc<Mutex<SharedTail>> {
        Arc::new(Mutex::new(SharedTail {
            path,
            offset: 0,
            partial: Vec::new(),
            pending: stems.map(|s| (s.into_bytes(), Vec::new())).collect(),
        }))
    }

    /// Read what was appended and sort it; with `last`, a line without its newline too.
    fn read(&mut self, last: bool) {
        let mut bytes = std::mem::take(&mut self.partial);
        self.offset = read_from(&self.path, self.offset, &mut bytes);
        let cut = if last {
            bytes.len()
        } else {
            bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1)
        };
        self.partial = bytes.split_off(cut);
        for (stem, lines) in shared::split(&bytes) {
            if let Some(pending) = self.pending.get_mut(stem) {
                pending.extend(String::from_utf8_lossy(&lines).lines().map(String::from));
            }
        }
    }

    fn take(&mut self, stem: &[u8], last: bool) -> Vec<String> {
        self.read(last);
        self.pending
            .get_mut(stem)
            .map(std::mem::take)
            .unwrap_or_default()
    }
}

/// The reading position in one step's log: its shared lines, then its own file.
#[derive(Debug)]
pub struct StepTail {
    shared: Arc<Mutex<SharedTail>>,
    stem: Vec<u8>,
    own: LogTail,
    /// The step's own file existed at a poll: every shared line came before it.
    own_seen: bool,
}

impl StepTail {
    /// Follow the step whose shared lines carry `stem` and whose own file is `path`.
    pub fn new(shared: Arc<Mutex<SharedTail>>, stem: &str, path: PathBuf) -> StepTail {
        StepTail {
            shared,
            stem: stem.as_bytes().to_vec(),
            own: LogTail::new(path),
            own_seen: false,
        }
    }

    /// The whole lines written since the last call.
    pub fn poll(&mut self) -> Vec<String> {
        self.lines(false)
    }

    /// What is left after the writer stopped: the last line even without its newline.
    pub fn rest(&mut self) -> Vec<String> {
        self.lines(true)
    }

    fn lines(&mut self, last: bool) -> Vec<String> {
        // Looked at before the shared file is read: once the own file exists, the step's
        // shared lines are all written, so this read gets every one of them.
        if !self.own_seen {
            self.own_seen = self.own.path.exists();
        }
        let mut lines = self
            .shared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(&self.stem, last);
        if self.own_seen {
            lines.extend(if last {
                self.own.rest()
            } else {
                self.own.poll()
            });
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    #[test]
    fn whole_lines_only_and_a_missing_file_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        let mut t = LogTail::new(path.clone());
        assert!(t.poll().is_empty());
        append(&path, "one\ntw");
        assert_eq!(t.poll(), ["one"]);
        append(&path, "o\nthree");
        assert_eq!(t.poll(), ["two"]);
        assert_eq!(t.rest(), ["three"]);
        assert!(t.rest().is_empty());
    }

    #[test]
    fn a_rotation_loses_no_line_and_repeats_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.log");
        let mut t = LogTail::new(path.clone());
        append(&path, "a\nb\n");
        assert_eq!(t.poll(), ["a", "b"]);
        append(&path, "c\n");
        std::fs::rename(&path, dir.path().join("s.log.1")).unwrap();
        append(&path, "d\n");
        assert_eq!(t.poll(), ["c", "d"]);
        append(&path, "e\n");
        assert_eq!(t.poll(), ["e"]);
    }

    #[test]
    fn a_step_is_followed_from_the_shared_file_into_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared.txt");
        let stems = ["a".to_string(), "b".to_string()];
        let both = SharedTail::new(shared.clone(), stems.into_iter());
        let mut a = StepTail::new(both.clone(), "a", dir.path().join("a.log"));
        let mut b = StepTail::new(both, "b", dir.path().join("b.log"));
        assert!(a.poll().is_empty());
        append(&shared, "a one\nb other\nc unfollowed\na tw");
        assert_eq!(a.poll(), ["one"]);
        append(&shared, "o\n");
        // `a` outgrows the shared file: its later lines are in its own.
        append(&dir.path().join("a.log"), "three\n");
        append(&shared, "b still\n");
        assert_eq!(a.poll(), ["two", "three"]);
        assert_eq!(b.poll(), ["other", "still"]);
        append(&shared, "b torn");
        assert!(b.poll().is_empty());
        assert_eq!(b.rest(), ["torn"]);
        assert!(a.rest().is_empty());
    }
}
