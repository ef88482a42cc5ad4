//! Appending records durably, many callers at a time, with one fsync per batch.
//!
//! A dedicated OS thread owns the journal file. Callers send their events over a channel
//! and wait; the thread takes every request that is pending, numbers and encodes them into
//! one buffer, writes it, calls `sync_data` once, and only then answers each caller with
//! its records. So "the call returned" means "the records are on disk", and ten thousand
//! steps finishing together cost one fsync rather than ten thousand (group commit).
//!
//! The thread owns the file's writes of batches; one lock, [`Order`], held across
//! numbering and writing, keeps lines from interleaving and in sequence. It is held
//! only for that, not across the fsync, so a record that need only be *written*
//! ([`JournalWriter::append_now`]: a process group about to be let go) is numbered and
//! written by the calling thread itself without waking this one and waiting for it.

use super::error::JournalError;
use super::reader::{self, JournalContents};
use super::record::{Event, Record};
use super::JOURNAL_FILE;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::SystemTime;

/// A cheap, cloneable handle for appending to one run's journal.
///
/// The caller must hold the run's [`RunLock`](super::RunLock): the journal has one writer.
/// The file is closed once every clone is dropped and pending requests are written.
#[derive(Debug, Clone)]
pub struct JournalWriter {
    tx: mpsc::Sender<Request>,
    path: Arc<Path>,
    redactor: crate::redact::Redactor,
    /// The file and its order, for [`JournalWriter::append_now`]; `None` for a store's
    /// rows (every append then goes through the writer thread).
    direct: Option<Direct>,
}

/// Where the next record goes: shared by the writer thread and direct appends, and held
/// while a record (or a batch) is numbered and written, so the file's lines are in
/// sequence and never interleave.
#[derive(Debug)]
struct Order {
    next_seq: u64,
    /// Set by the first failed write or fsync; nothing is written after it.
    failed: Option<String>,
}

/// What a handle needs to write a record itself.
#[derive(Debug, Clone)]
struct Direct {
    file: Arc<File>,
    order: Arc<Mutex<Order>>,
}

fn lock(order: &Mutex<Order>) -> MutexGuard<'_, Order> {
    // A panic while holding it cannot leave a half-numbered record: the number is
    // taken only after the line was written.
    order.lock().unwrap_or_else(|e| e.into_inner())
}

type Outcome = Result<Vec<Record>, JournalError>;

/// One caller's events and where to send their records.
#[derive(Debug)]
struct Request {
    events: Vec<Event>,
    reply: Reply,
    /// Answer once written to the file, before the fsync ([`JournalWriter::append_written`]).
    written: bool,
}

/// Async callers wait on a tokio oneshot; blocking callers on a std channel, so a blocking
/// call never panics even if made from inside a runtime.
#[derive(Debug)]
enum Reply {
    Async(tokio::sync::oneshot::Sender<Outcome>),
    Blocking(mpsc::Sender<Outcome>),
}

impl Reply {
    fn send(self, outcome: Outcome) {
        // A caller that stopped waiting (e.g. a dropped future) does not need the answer;
        // its records are written regardless.
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(outcome);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(outcome);
            }
        }
    }
}

impl JournalWriter {
    /// Create `RUN_DIR/journal.jsonl` (mode 0600, refusing to overwrite) and durably write
    /// `first`, which must be [`Event::RunStarted`]; returns the writer and that record.
    pub fn create(run_dir: &Path, first: Event) -> Result<(JournalWriter, Record), JournalError> {
        let path = run_dir.join(JOURNAL_FILE);
        if !matches!(first, Event::RunStarted { .. }) {
            return Err(JournalError::Misuse {
                path,
                message: "a new journal must start with a `run_started` record".into(),
            });
        }
        std::fs::create_dir_all(run_dir)
            .map_err(|e| JournalError::io(run_dir, "create the directory of", e))?;
        let mut options = OpenOptions::new();
        options.append(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Outputs and errors can say more about an estate than the world should see.
            options.mode(0o600);
        }
        let file = options
            .open(&path)
            .map_err(|e| JournalError::io(&path, "create", e))?;
        // The journal's directory entry must be durable too, or a crash loses the whole file.
        sync_dir(run_dir).map_err(|e| JournalError::io(run_dir, "sync the directory of", e))?;
        if let Some(parent) = run_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent).map_err(|e| JournalError::io(parent, "sync the directory of", e))?;
        }
        let writer = spawn(file, path.clone(), 1)?;
        let record =
            writer
                .append_blocking(vec![first])?
                .pop()
                .ok_or_else(|| JournalError::Failed {
                    path,
                    message: "the writer returned no record for `run_started`".into(),
                })?;
        Ok((writer, record))
    }

    /// Reopen an existing journal to continue a run, returning its verified contents.
    ///
    /// Numbering continues after the last valid record. A torn last line is cut off first:
    /// it was never acknowledged, and appending after it would bury it mid-file where it
    /// would read as damage. That truncation is the only rewrite waymark ever does, and it
    /// is reported in the returned warnings (and logged).
    pub fn open_existing(run_dir: &Path) -> Result<(JournalWriter, JournalContents), JournalError> {
        let path = run_dir.join(JOURNAL_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| JournalError::io(&path, "open", e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| JournalError::io(&path, "read", e))?;
        let scan = reader::scan(&path, &bytes)?;
        let mut warnings = scan.warnings;
        if scan.valid_len < bytes.len() {
            let torn = bytes.len() - scan.valid_len;
            file.set_len(scan.valid_len as u64)
                .and_then(|()| file.sync_all())
                .map_err(|e| JournalError::io(&path, "truncate the torn last line of", e))?;
            // One message per torn line: the reader's, saying also what was done about it.
            // The caller prints it; logging it here too showed it twice.
            let removed = format!("cut it off ({torn} bytes) before appending");
            match warnings.last_mut() {
                Some(w) => *w = format!("{w}; {removed}"),
                None => warnings.push(format!(
                    "journal {}: a torn last line: {removed}",
                    path.display()
                )),
            }
        }
        let next_seq = scan.records.len() as u64 + 1;
        let writer = spawn(file, path, next_seq)?;
        Ok((
            writer,
            JournalContents {
                records: scan.records,
                warnings,
            },
        ))
    }

    /// The journal file this writer appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append `events` in order; resolves once they are durable, with their records.
    ///
    /// Dropping the future after it was first polled does not withdraw the events.
    pub async fn append(&self, events: Vec<Event>) -> Result<Vec<Record>, JournalError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(events, Reply::Async(tx), false)?;
        rx.await.map_err(|_| self.stopped())?
    }

    /// Hand `events` to the writer now and return at once; the returned [`Durable`]
    /// resolves once they are on disk, with their records.
    ///
    /// Appends are written in the order they were handed over, so a caller can keep
    /// several in flight (each waits for its own fsync, possibly shared with the others)
    /// and still rely on their order in the file. The events are appended even if the
    /// `Durable` is dropped.
    pub fn submit(&self, events: Vec<Event>) -> Result<Durable, JournalError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if events.is_empty() {
            let _ = tx.send(Ok(Vec::new()));
        } else {
            self.send(events, Reply::Async(tx), false)?;
        }
        Ok(Durable {
            rx,
            path: self.path.clone(),
        })
    }

    /// Append one event; resolves once it is durable, with its record.
    pub async fn append_one(&self, event: Event) -> Result<Record, JournalError> {
        let mut records = self.append(vec![event]).await?;
        records.pop().ok_or_else(|| self.stopped())
    }

    /// Blocking form of [`append`](Self::append), for threads outside the async runtime.
    pub fn append_blocking(&self, events: Vec<Event>) -> Result<Vec<Record>, JournalError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = mpsc::channel();
        self.send(events, Reply::Blocking(tx), false)?;
        rx.recv().map_err(|_| self.stopped())?
    }

    /// Like [`append_blocking`](Self::append_blocking), but returns once the records are
    /// written to the file, without waiting for the fsync: they survive a crash of
    /// waymark (the kernel holds them), not of the machine. For records whose subject
    /// dies with the machine anyway — a process group (`process_started`): after a power
    /// loss there is no orphan to find — and for records nothing acts on before a later
    /// durable append (`run_resumed`). A later durable append makes them durable too, and
    /// no record is ever on disk without every record before it.
    pub fn append_written(&self, events: Vec<Event>) -> Result<Vec<Record>, JournalError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (tx, rx) = mpsc::channel();
        self.send(events, Reply::Blocking(tx), true)?;
        rx.recv().map_err(|_| self.stopped())?
    }

    /// Like [`append_written`](Self::append_written) for one event, but numbered and
    /// written by the calling thread under the journal's order, without a round trip to
    /// the writer thread (which is left to make it durable with its next fsync).
    ///
    /// The record goes in at once, ahead of records other callers handed over that the
    /// writer thread has not written yet. So a caller may use it only when the records
    /// its own must follow are written already: a step's `process_started` after its
    /// durable `step_started`. Both orders stay valid journals: a record not yet written
    /// was acted on by nobody. A store's rows have no direct path: there it is
    /// [`append_written`](Self::append_written).
    pub fn append_now(&self, mut event: Event) -> Result<Record, JournalError> {
        let Some(direct) = &self.direct else {
            return self
                .append_written(vec![event])?
                .pop()
                .ok_or_else(|| self.stopped());
        };
        if !self.redactor.is_empty() {
            event.redact(&self.redactor);
        }
        let mut order = lock(&direct.order);
        if let Some(message) = &order.failed {
            return Err(JournalError::Failed {
                path: self.path.to_path_buf(),
                message: message.clone(),
            });
        }
        let record = Record {
            seq: order.next_seq,
            ts: now(),
            event,
        };
        let mut line = Vec::with_capacity(256);
        encode_line(&mut line, &record).map_err(|message| JournalError::Encode {
            path: self.path.to_path_buf(),
            message,
        })?;
        if let Err(e) = (&*direct.file).write_all(&line) {
            order.failed = Some(e.to_string());
            return Err(JournalError::io(&*self.path, "write", e));
        }
        order.next_seq += 1;
        super::crash_point(record.seq);
        Ok(record)
    }

    /// Scrub the run's secrets from every event appended through this handle (and its
    /// clones made afterwards): the last line of defence before text becomes durable.
    pub fn set_redactor(&mut self, redactor: crate::redact::Redactor) {
        self.redactor = redactor;
    }

    fn send(
        &self,
        mut events: Vec<Event>,
        reply: Reply,
        written: bool,
    ) -> Result<(), JournalError> {
        if !self.redactor.is_empty() {
            events.iter_mut().for_each(|e| e.redact(&self.redactor));
        }
        self.tx
            .send(Request {
                events,
                reply,
                written,
            })
            .map_err(|_| self.stopped())
    }

    fn stopped(&self) -> JournalError {
        JournalError::Failed {
            path: self.path.to_path_buf(),
            message: "the journal writer thread is gone".into(),
        }
    }
}

/// Events handed to [`JournalWriter::submit`]; resolves once they are durable.
#[derive(Debug)]
pub struct Durable {
    rx: tokio::sync::oneshot::Receiver<Outcome>,
    path: Arc<Path>,
}

impl std::future::Future for Durable {
    type Output = Result<Vec<Record>, JournalError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.rx).poll(cx).map(|r| {
            r.unwrap_or_else(|_| {
                Err(JournalError::Failed {
                    path: self.path.to_path_buf(),
                    message: "the journal writer thread is gone".into(),
                })
            })
        })
    }
}

/// Where a batch of encoded lines becomes durable when it is not a file: a store's rows
/// (`state/pg`), committed in one transaction. `commit` returns once they are durable.
pub trait RowSink: Send {
    /// Make `lines` (one encoded record each, without newline) durable as records
    /// `first_seq`, `first_seq + 1`, …, all or none.
    fn commit(&mut self, first_seq: u64, lines: &[&str]) -> Result<(), String>;
}

/// What the writer thread appends to.
enum Sink {
    /// The journal file: one write and one `fsync` per batch.
    File(File),
    /// A store's rows: one transaction per batch.
    Rows(Box<dyn RowSink>),
}

impl Sink {
    /// Hand `buf` (records `first_seq`, …) to the sink: written for a file, durable
    /// (committed) for rows.
    fn write(&mut self, first_seq: u64, buf: &[u8]) -> io::Result<()> {
        match self {
            Sink::File(file) => file.write_all(buf),
            Sink::Rows(rows) => {
                let text = std::str::from_utf8(buf).map_err(io::Error::other)?;
                let lines: Vec<&str> = text.lines().collect();
                rows.commit(first_seq, &lines).map_err(io::Error::other)
            }
        }
    }

    /// Make everything written so far durable: an `fsync` for a file; rows already are.
    fn sync(&mut self) -> io::Result<()> {
        match self {
            Sink::File(file) => file.sync_data(),
            Sink::Rows(_) => Ok(()),
        }
    }
}

impl JournalWriter {
    /// A writer appending to `sink` (a store's rows), whose next record is `next_seq`;
    /// `label` names the journal in messages.
    pub fn to_rows(
        sink: Box<dyn RowSink>,
        label: PathBuf,
        next_seq: u64,
    ) -> Result<JournalWriter, JournalError> {
        spawn_sink(Sink::Rows(sink), label, next_seq)
    }
}

/// Start the writer thread for an open journal whose next record is `next_seq`.
fn spawn(file: File, path: PathBuf, next_seq: u64) -> Result<JournalWriter, JournalError> {
    spawn_sink(Sink::File(file), path, next_seq)
}

fn spawn_sink(sink: Sink, path: PathBuf, next_seq: u64) -> Result<JournalWriter, JournalError> {
    let (tx, rx) = mpsc::channel();
    let thread = WriterThread::new(sink, path.clone(), next_seq);
    let direct = thread
        .direct()
        .map_err(|e| JournalError::io(&path, "open a second descriptor of", e))?;
    std::thread::Builder::new()
        .name("waymark-journal".into())
        .spawn(move || thread.run(rx))
        .map_err(|e| JournalError::io(&path, "start the writer thread for", e))?;
    Ok(JournalWriter {
        tx,
        path: Arc::from(path),
        redactor: Default::default(),
        direct,
    })
}

/// A record's timestamp: now, to the millisecond.
fn now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The state owned by the writer thread.
struct WriterThread {
    sink: Sink,
    path: PathBuf,
    /// The next record's number and the first failure, shared with direct appends.
    order: Arc<Mutex<Order>>,
    /// Reused between batches so a steady stream of records does not reallocate.
    buf: Vec<u8>,
    /// How many write+fsync rounds were done (lets tests prove batching happens).
    commits: u64,
}

/// Buffers above this are released after a batch so one huge batch does not pin memory.
const KEEP_BUFFER: usize = 4 << 20;

impl WriterThread {
    fn new(sink: Sink, path: PathBuf, next_seq: u64) -> Self {
        WriterThread {
            sink,
            path,
            order: Arc::new(Mutex::new(Order {
                next_seq,
                failed: None,
            })),
            buf: Vec::with_capacity(64 << 10),
            commits: 0,
        }
    }

    /// What a handle needs to append directly: a descriptor of the same open file
    /// (appending, and synced by this thread's fsync like its own); a store's rows have
    /// none.
    fn direct(&self) -> io::Result<Option<Direct>> {
        match &self.sink {
            Sink::File(file) => Ok(Some(Direct {
                file: Arc::new(file.try_clone()?),
                order: self.order.clone(),
            })),
            Sink::Rows(_) => Ok(None),
        }
    }

    /// Serve requests until every sender is gone; returns the number of commits done.
    fn run(mut self, rx: mpsc::Receiver<Request>) -> u64 {
        while let Ok(first) = rx.recv() {
            let mut batch = vec![first];
            batch.extend(rx.try_iter());
            self.commit(batch);
        }
        self.commits
    }

    /// Write every request of `batch` with one write and one fsync, then answer each.
    fn commit(&mut self, batch: Vec<Request>) {
        let order = self.order.clone();
        let mut order = lock(&order);
        if let Some(message) = order.failed.clone() {
            drop(order);
            for req in batch {
                req.reply.send(Err(JournalError::Failed {
                    path: self.path.clone(),
                    message: message.clone(),
                }));
            }
            return;
        }
        self.buf.clear();
        let ts = now();
        let first_seq = order.next_seq;
        let mut answers: Vec<(Reply, Outcome)> = Vec::with_capacity(batch.len());
        let mut early: Vec<(Reply, Outcome)> = Vec::new();
        for req in batch {
            let outcome = encode_request(
                &mut self.buf,
                &self.path,
                &mut order.next_seq,
                req.events,
                &ts,
            );
            if req.written {
                early.push((req.reply, outcome));
            } else {
                answers.push((req.reply, outcome));
            }
        }
        let mut written = Ok(());
        if !self.buf.is_empty() {
            self.commits += 1;
            written = self.sink.write(first_seq, &self.buf);
            if let Err(e) = &written {
                order.failed = Some(e.to_string());
            }
        }
        let last_seq = order.next_seq.saturating_sub(1);
        // Not held across the fsync: direct appends go on meanwhile.
        drop(order);
        if !self.buf.is_empty() {
            if written.is_ok() {
                // Written is all these callers wait for; the sync below (or the next
                // batch's) makes their records durable.
                for (reply, outcome) in early.drain(..) {
                    reply.send(outcome);
                }
                if !answers.is_empty() {
                    written = self.sink.sync();
                    if let Err(e) = &written {
                        lock(&self.order).failed = Some(e.to_string());
                    }
                }
            }
            if let Err(e) = written {
                for (reply, _) in answers.into_iter().chain(early) {
                    reply.send(Err(JournalError::io(
                        &self.path,
                        "write",
                        io::Error::new(e.kind(), e.to_string()),
                    )));
                }
                return;
            }
        }
        super::crash_point(last_seq);
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf = Vec::with_capacity(64 << 10);
        }
        for (reply, outcome) in answers.into_iter().chain(early) {
            reply.send(outcome);
        }
    }
}

/// Number (from `next_seq`) and encode one request's events into `buf`, all or nothing.
fn encode_request(
    buf: &mut Vec<u8>,
    path: &Path,
    next_seq: &mut u64,
    events: Vec<Event>,
    ts: &str,
) -> Outcome {
    let mark = buf.len();
    let first_seq = *next_seq;
    let mut records = Vec::with_capacity(events.len());
    for event in events {
        let record = Record {
            seq: *next_seq,
            ts: ts.to_string(),
            event,
        };
        if let Err(message) = encode_line(buf, &record) {
            // Leave no gap: the request's earlier records are withdrawn with it.
            buf.truncate(mark);
            *next_seq = first_seq;
            return Err(JournalError::Encode {
                path: path.to_path_buf(),
                message,
            });
        }
        *next_seq += 1;
        records.push(record);
    }
    Ok(records)
}

/// Append `record` to `out` as one journal line: JSON, `,"crc":"xxxxxxxx"}`, newline.
pub(crate) fn encode_line(out: &mut Vec<u8>, record: &Record) -> Result<(), String> {
    let start = out.len();
    if let Err(e) = serde_json::to_writer(&mut *out, record) {
        out.truncate(start);
        return Err(e.to_string());
    }
    if out.len() - start < 2 || out.last() != Some(&b'}') {
        out.truncate(start);
        return Err("the record did not encode as a JSON object".into());
    }
    out.pop();
    let crc = crc32fast::hash(&out[start..]);
    // Writing to a Vec cannot fail.
    let _ = writeln!(out, ",\"crc\":\"{crc:08x}\"}}");
    Ok(())
}

/// fsync a directory so entries created in it survive a crash (a no-op off Unix).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
