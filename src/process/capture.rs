//! One output stream of a child process: streamed line by line into the step log,
//! and captured for the script with bounded memory.
//!
//! A step that runs a chatty tool for hours must not grow waymark's memory without
//! bound, and what matters after a failure is the *end* of the output, so the
//! capture keeps the last [`CAPTURE_LIMIT`] bytes and says how much it dropped.

use crate::step_log::StepLog;

/// Most bytes of each of stdout and stderr kept for the script (1 MiB).
pub(crate) const CAPTURE_LIMIT: usize = 1024 * 1024;

/// Longest run of bytes without a newline logged as one line; longer runs are split
/// so a tool that never prints `\n` cannot make waymark buffer without bound.
const MAX_LINE: usize = 64 * 1024;

/// Bytes of the kept tail searched for a newline, so the capture starts on a line.
const ALIGN_WINDOW: usize = 4096;

/// Lines to the log, bytes to a bounded tail.
pub(crate) struct StreamCapture {
    stream: &'static str,
    log: StepLog,
    pending: Vec<u8>,
    tail: Tail,
}

impl StreamCapture {
    /// A capture of the stream labelled `stream` (`stdout`/`stderr`), logging to `log`.
    pub(crate) fn new(stream: &'static str, log: StepLog) -> Self {
        Self::with_limit(stream, log, CAPTURE_LIMIT)
    }

    fn with_limit(stream: &'static str, log: StepLog, limit: usize) -> Self {
        Self {
            stream,
            log,
            pending: Vec::new(),
            tail: Tail::new(limit),
        }
    }

    /// Take the next bytes read from the pipe.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.tail.push(bytes);
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(pos) = self.pending[start..].iter().position(|&b| b == b'\n') {
            let end = start + pos;
            self.emit(start, end);
            start = end + 1;
        }
        while self.pending.len() - start > MAX_LINE {
            let mut end = start + MAX_LINE;
            // Split between characters, not inside one.
            while end > start + 1 && (self.pending[end] & 0xC0) == 0x80 {
                end -= 1;
            }
            self.emit(start, end);
            start = end;
        }
        self.pending.drain(..start);
    }

    /// The end of the stream: log any unterminated last line and return the capture.
    pub(crate) fn finish(self) -> String {
        if !self.pending.is_empty() {
            self.emit(0, self.pending.len());
        }
        self.tail.into_string(self.stream)
    }

    fn emit(&self, start: usize, end: usize) {
        let line = String::from_utf8_lossy(&self.pending[start..end]);
        self.log.line(self.stream, &line);
    }
}

/// The last `limit` bytes of a stream, and a count of the bytes before them.
struct Tail {
    buf: Vec<u8>,
    limit: usize,
    dropped: u64,
}

impl Tail {
    fn new(limit: usize) -> Self {
        Self {
            buf: Vec::new(),
            limit,
            dropped: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        if bytes.len() >= self.limit {
            self.dropped += (self.buf.len() + bytes.len() - self.limit) as u64;
            self.buf.clear();
            self.buf
                .extend_from_slice(&bytes[bytes.len() - self.limit..]);
            return;
        }
        self.buf.extend_from_slice(bytes);
        // Trim only when twice the limit is reached: amortised O(1) per byte.
        if self.buf.len() >= 2 * self.limit {
            self.trim_to(self.limit);
        }
    }

    fn trim_to(&mut self, keep: usize) {
        if self.buf.len() > keep {
            let excess = self.buf.len() - keep;
            self.buf.drain(..excess);
            self.dropped += excess as u64;
        }
    }

    fn into_string(mut self, stream: &str) -> String {
        self.trim_to(self.limit);
        if self.dropped == 0 {
            return String::from_utf8_lossy(&self.buf).into_owned();
        }
        // The cut fell at an arbitrary byte: start on the next line when one is near.
        let window = &self.buf[..self.buf.len().min(ALIGN_WINDOW)];
        let mut skip = match window.iter().position(|&b| b == b'\n') {
            Some(pos) => pos + 1,
            None => 0,
        };
        while skip < self.buf.len() && (self.buf[skip] & 0xC0) == 0x80 {
            skip += 1;
        }
        self.dropped += skip as u64;
        let kept = String::from_utf8_lossy(&self.buf[skip..]);
        format!(
            "[waymark: {} earlier bytes of {stream} dropped; the last {} are kept]\n{kept}",
            self.dropped,
            self.buf.len() - skip
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::Redactor;
    use crate::step_log::StepLogOptions;

    #[test]
    fn small_output_is_kept_whole() {
        let mut c = StreamCapture::new("stdout", StepLog::disabled());
        c.push(b"hello\nwor");
        c.push(b"ld\n");
        assert_eq!(c.finish(), "hello\nworld\n");
    }

    #[test]
    fn large_output_keeps_the_tail_from_a_line_start() {
        let mut c = StreamCapture::with_limit("stdout", StepLog::disabled(), 100);
        let mut all = String::new();
        for i in 0..1000 {
            let line = format!("line {i}\n");
            all.push_str(&line);
            c.push(line.as_bytes());
        }
        let out = c.finish();
        let (marker, kept) = out.split_once('\n').unwrap();
        assert!(kept.len() <= 100 && kept.starts_with("line "), "{out}");
        assert!(all.ends_with(kept) && kept.ends_with("line 999\n"));
        let dropped: usize = marker.split(' ').nth(1).unwrap().parse().unwrap();
        assert_eq!(dropped + kept.len(), all.len(), "{marker}");
    }

    #[test]
    fn lines_reach_the_log_split_at_newlines_and_at_the_length_limit() {
        let dir = tempfile::tempdir().unwrap();
        let log =
            StepLog::create(dir.path(), "s", Redactor::new(), StepLogOptions::default()).unwrap();
        let mut c = StreamCapture::new("stderr", log.clone());
        c.push(b"first\nsec");
        c.push(b"ond\n");
        c.push(&vec![b'x'; MAX_LINE * 2 + 10]);
        c.push(b"no newline at end");
        c.finish();
        let text = std::fs::read_to_string(log.path().unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "first, second, 2 chunks, then the rest");
        assert!(lines[0].ends_with("[stderr] first"));
        assert!(lines[1].ends_with("[stderr] second"));
        assert!(lines[4].ends_with("no newline at end"));
        assert!(lines[4].contains(&"x".repeat(10)));
    }
}
