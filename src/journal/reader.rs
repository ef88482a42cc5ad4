//! Reading and verifying a journal: checksums, JSON, and an unbroken sequence 1, 2, 3…
//!
//! The writer acknowledges a record only after its whole line, newline included, is
//! fsynced. So a crash can leave at most one incomplete line, at the very end; that line
//! was never acknowledged and is ignored with a warning. Any other damage means the file
//! was changed behind waymark's back (or the disk is failing): that is an error naming the
//! line, and the reader never rewrites anything, so the evidence stays as found.

use super::error::JournalError;
use super::record::{Event, Record};
use std::path::Path;

/// Length of the checksum suffix every line ends with: `,"crc":"xxxxxxxx"}`.
pub(crate) const CRC_SUFFIX_LEN: usize = 18;
const CRC_OPEN: &[u8] = b",\"crc\":\"";
const CRC_CLOSE: &[u8] = b"\"}";

/// The verified records of a journal, and anything the operator should be told about it.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalContents {
    /// Every complete record, in sequence order starting at 1.
    pub records: Vec<Record>,
    /// Messages to show (e.g. a torn last line that was ignored); the records are still valid.
    pub warnings: Vec<String>,
}

/// Read and verify the journal at `path`.
pub fn read_journal(path: &Path) -> Result<JournalContents, JournalError> {
    let bytes = std::fs::read(path).map_err(|e| JournalError::io(path, "read", e))?;
    let scan = scan(path, &bytes)?;
    Ok(JournalContents {
        records: scan.records,
        warnings: scan.warnings,
    })
}

/// Which runbook a run uses, as its first line says: read without verifying or decoding
/// the rest of that line (the planned steps), so `resume` can start loading the runbook
/// at once. Unverified: a hint that the caller must check against the replayed journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOrigin {
    /// What RUNBOOK was (see [`Event::RunStarted`]).
    pub source: String,
    /// Parameters as recorded.
    pub params: std::collections::BTreeMap<String, String>,
    /// `--inventory`, if one was given.
    pub inventory: Option<String>,
}

/// The [`RunOrigin`] in the first line of the journal at `path`, if it has a complete
/// `run_started` line.
///
/// A resume reads this before anything else to start loading the runbook, and a long
/// run's first line is mostly its planned steps (~1 MB for 10,000): once the head before
/// them is in hand, the rest of the line is only searched for its end, a large read at a
/// time, not copied.
pub fn read_origin(path: &Path) -> Option<RunOrigin> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).ok()?;
    let mut chunk = vec![0u8; 256 << 10];
    // The line as far as `,"steps":[` (the whole line if it never comes).
    let mut head = Vec::new();
    let mut head_done = false;
    loop {
        let n = loop {
            match file.read(&mut chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                read => break read.ok()?,
            }
        };
        if n == 0 {
            return None; // no newline: the first line is torn
        }
        let part = &chunk[..n];
        let end = memchr::memchr(b'\n', part);
        if !head_done {
            let from = head.len().saturating_sub(STEPS_KEY.len() - 1);
            head.extend_from_slice(&part[..end.unwrap_or(n)]);
            if let Some(at) = memchr::memmem::find(&head[from..], STEPS_KEY) {
                head.truncate(from + at + STEPS_KEY.len());
                head_done = true;
            }
        }
        if end.is_some() {
            return origin_of_line(&head);
        }
    }
}

/// Where a `run_started` line's planned steps begin (see [`origin_of_line`]).
const STEPS_KEY: &[u8] = b",\"steps\":[";

/// The result of verifying a journal's bytes, with where the valid prefix ends.
#[derive(Debug)]
pub(crate) struct Scan {
    pub records: Vec<Record>,
    pub warnings: Vec<String>,
    /// Length in bytes of the prefix made of complete, valid lines; a writer reopening the
    /// journal truncates to this before appending.
    pub valid_len: usize,
}

/// Why a newline-terminated line was refused. Only a line *without* its newline is a
/// torn write (the writer appends the newline last); any refused complete line is damage,
/// even the last one — a bit-rotted or edited last record must not vanish as "torn".
type LineProblem = String;

/// Verify `bytes` as the contents of the journal at `path` (used for messages only).
pub(crate) fn scan(path: &Path, bytes: &[u8]) -> Result<Scan, JournalError> {
    scan_selected(path, bytes, &|_, _| true, Planned::Decoded)
}

/// Read the journal at `path`, verifying every line (checksum and sequence number) but
/// decoding only the records whose `type` `keep` accepts, and always the first.
///
/// This is how a run is summarized without replaying every step: `runs` and choosing the
/// run to resume look only at run-level records, and a 10,000-step journal is then a
/// checksum pass rather than 20,000 JSON decodes. Damage is reported exactly as
/// [`read_journal`] reports it, except that a line whose checksum is right but whose JSON
/// is wrong goes unnoticed when it is not decoded. The first record comes without its
/// planned steps (`steps` is empty): a summary never reads them, and for a long run they
/// are most of the line.
pub fn read_selected(
    path: &Path,
    keep: &dyn Fn(&str) -> bool,
) -> Result<JournalContents, JournalError> {
    let bytes = std::fs::read(path).map_err(|e| JournalError::io(path, "read", e))?;
    let scan = scan_selected(path, &bytes, &|_, kind| keep(kind), Planned::Skipped)?;
    Ok(JournalContents {
        records: scan.records,
        warnings: scan.warnings,
    })
}

/// Read the journal at `path`, verifying every line as [`read_journal`] does, but
/// returning only the records after sequence number `seq` (decoding only those): what
/// was appended after a process replayed the first `seq` records itself, so the recap
/// at the end of `resume` replays what the resumed run wrote, not the whole run again.
pub(crate) fn read_after(path: &Path, seq: u64) -> Result<JournalContents, JournalError> {
    let bytes = std::fs::read(path).map_err(|e| JournalError::io(path, "read", e))?;
    // The first record is returned only when it is new (`seq` 0): else its planned
    // steps are not decoded.
    let planned = if seq == 0 {
        Planned::Decoded
    } else {
        Planned::Skipped
    };
    let scan = scan_selected(path, &bytes, &|line_seq, _| line_seq > seq, planned)?;
    Ok(JournalContents {
        // The first record is always decoded (it must be `run_started`), and so is a
        // line laid out unlike the writer's: neither is asked for unless it is new.
        records: scan.records.into_iter().filter(|r| r.seq > seq).collect(),
        warnings: scan.warnings,
    })
}

/// The records of the journal at `path` after its first `len` bytes, which hold records 1
/// to `seq` and were verified by the caller ([`read_after`] without reading them again).
/// Every line after them is verified, its sequence number continuing from `seq`.
pub(crate) fn read_appended(
    path: &Path,
    len: u64,
    seq: u64,
) -> Result<JournalContents, JournalError> {
    use std::io::{Read as _, Seek as _};
    let mut file = std::fs::File::open(path).map_err(|e| JournalError::io(path, "open", e))?;
    let mut bytes = Vec::new();
    file.seek(std::io::SeekFrom::Start(len))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| JournalError::io(path, "read", e))?;
    let scan = scan_from(path, &bytes, seq, &|_, _| true, Planned::Skipped)?;
    Ok(JournalContents {
        records: scan.records,
        warnings: scan.warnings,
    })
}

/// Verify `bytes` (a journal's lines as a store other than a file returned them), decoding
/// only the records `keep` selects; `label` names the journal in messages.
pub fn read_bytes(
    label: &Path,
    bytes: &[u8],
    keep: &dyn Fn(&str) -> bool,
) -> Result<JournalContents, JournalError> {
    let scan = scan_selected(label, bytes, &|_, kind| keep(kind), Planned::Decoded)?;
    Ok(JournalContents {
        records: scan.records,
        warnings: scan.warnings,
    })
}

/// The [`RunOrigin`] in `line`, a journal's first line (without its newline).
pub fn origin_of_line(line: &[u8]) -> Option<RunOrigin> {
    // Plain fields, no `flatten`: the planned steps are skipped, not buffered.
    #[derive(serde::Deserialize)]
    struct First {
        #[serde(rename = "type")]
        kind: String,
        source: String,
        params: std::collections::BTreeMap<String, String>,
        #[serde(default)]
        inventory: Option<String>,
    }
    // The writer puts the origin before the planned steps, most of a long run's line:
    // parse the head alone, closed after it, when the line is laid out so (`,"steps":[`
    // cannot occur inside a string, and cut anywhere else the head does not parse).
    let head = memchr::memmem::find(line, STEPS_KEY).and_then(|at| {
        let mut head = line[..at].to_vec();
        head.push(b'}');
        serde_json::from_slice::<First>(&head).ok()
    });
    let first: First = match head {
        Some(first) => first,
        None => serde_json::from_slice(line).ok()?,
    };
    (first.kind == "run_started").then_some(RunOrigin {
        source: first.source,
        params: first.params,
        inventory: first.inventory,
    })
}

/// Whether the first record's planned steps (`run_started`'s `steps`) are decoded.
#[derive(Clone, Copy, PartialEq)]
enum Planned {
    Decoded,
    /// Checked as JSON but left out: the record's `steps` is empty.
    Skipped,
}

/// [`scan`], decoding only the lines `keep` selects (by sequence number and record type)
/// and the first one (its planned steps as `planned` says).
fn scan_selected(
    path: &Path,
    bytes: &[u8],
    keep: &dyn Fn(u64, &str) -> bool,
    planned: Planned,
) -> Result<Scan, JournalError> {
    scan_from(path, bytes, 0, keep, planned)
}

/// [`scan_selected`] of `bytes` that follow a journal's first `before` lines (records 1 to
/// `before`, verified elsewhere): line numbers and sequence numbers continue from there.
fn scan_from(
    path: &Path,
    bytes: &[u8],
    before: u64,
    keep: &dyn Fn(u64, &str) -> bool,
    planned: Planned,
) -> Result<Scan, JournalError> {
    if bytes.is_empty() && before == 0 {
        return Err(JournalError::Empty {
            path: path.to_path_buf(),
            detail: None,
        });
    }
    let mut records: Vec<Record> = Vec::with_capacity(bytes.len() / 128);
    let mut warnings = Vec::new();
    let mut pos = 0usize;
    let mut line_no = before as usize;
    let mut lines_ok = before;
    while pos < bytes.len() {
        line_no += 1;
        let rest = &bytes[pos..];
        let Some(nl) = memchr::memchr(b'\n', rest) else {
            // No newline: the last write was cut short. It was never acknowledged.
            warnings.push(format!(
                "journal {}: ignoring a torn last line {line_no} ({} bytes without a newline); \
                 the process writing it stopped mid-write, before the record was acknowledged",
                path.display(),
                rest.len()
            ));
            break;
        };
        let line = &rest[..nl];
        let expected_seq = lines_ok + 1;
        let checked = match skim_line(line) {
            Some((seq, kind)) if expected_seq > 1 && !keep(seq, kind) => {
                check_line(line, seq, expected_seq).map(|()| None)
            }
            _ => parse_line(line, expected_seq, planned).map(Some),
        };
        match checked {
            Ok(record) => {
                records.extend(record);
                lines_ok += 1;
                pos += nl + 1;
            }
            Err(problem) => {
                return Err(JournalError::Damaged {
                    path: path.to_path_buf(),
                    line: line_no,
                    problem,
                });
            }
        }
    }
    if lines_ok == 0 {
        return Err(JournalError::Empty {
            path: path.to_path_buf(),
            detail: Some(
                "its only line is incomplete: the run was interrupted while being created".into(),
            ),
        });
    }
    Ok(Scan {
        records,
        warnings,
        valid_len: pos,
    })
}

/// Verify one line (without its newline) that should carry sequence number `expected_seq`.
fn parse_line(line: &[u8], expected_seq: u64, planned: Planned) -> Result<Record, LineProblem> {
    verify_crc(line)?;
    let steps_skipped = expected_seq == 1 && planned == Planned::Skipped;
    let record = decode(line, steps_skipped).map_err(|e| describe_json_error(line, e))?;
    check_seq(record.seq, expected_seq)?;
    if expected_seq == 1 && !matches!(record.event, Event::RunStarted { .. }) {
        return Err(LineProblem::from(
            "the first record is not `run_started`, so this is not the start of a run's journal",
        ));
    }
    Ok(record)
}

/// Verify a line that is not decoded: its checksum and the sequence number read off it.
fn check_line(line: &[u8], seq: u64, expected_seq: u64) -> Result<(), LineProblem> {
    verify_crc(line)?;
    check_seq(seq, expected_seq)
}

fn verify_crc(line: &[u8]) -> Result<(), LineProblem> {
    let stored =
        stored_crc(line).ok_or_else(|| LineProblem::from("it does not end with a checksum"))?;
    let body = &line[..line.len() - CRC_SUFFIX_LEN];
    let computed = crc32fast::hash(body);
    if computed != stored {
        return Err(LineProblem::from(format!(
            "checksum mismatch: the line says {stored:08x} but its content gives {computed:08x}"
        )));
    }
    Ok(())
}

fn check_seq(seq: u64, expected_seq: u64) -> Result<(), LineProblem> {
    if seq == expected_seq {
        return Ok(());
    }
    Err(LineProblem::from(if expected_seq == 1 {
        format!("the first record has sequence number {seq}")
    } else if seq > expected_seq {
        format!(
            "sequence number jumps from {} to {seq}: records are missing",
            expected_seq - 1
        )
    } else {
        format!(
            "sequence number {seq} follows {}: records are repeated or out of order",
            expected_seq - 1
        )
    }))
}

/// Decode a verified line. The records a run writes by the thousand, laid out as the
/// writer lays them out, are decoded straight into their event with the sequence number
/// and timestamp read off the line's head ([`super::common_records`]); any other line
/// is decoded as a [`Record`]. With `steps_skipped`, a `run_started` so laid out comes
/// without its planned steps.
fn decode(line: &[u8], steps_skipped: bool) -> Result<Record, serde_json::Error> {
    if let Some((seq, ts, kind)) = skim_head(line) {
        let event = match kind {
            "run_started" if steps_skipped => Some(super::common_records::run_started_head(line)),
            _ => super::common_records::decode(kind, line),
        };
        if let Some(event) = event {
            return Ok(Record {
                seq,
                ts: ts.to_string(),
                event: event?,
            });
        }
    }
    serde_json::from_slice(line)
}

/// The sequence number and record type of a line as the writer lays it out
/// (`{"seq":N,"ts":"…","type":"…",…`), read without decoding the JSON; `None` when the
/// line is laid out any other way (it is then decoded in full).
fn skim_line(line: &[u8]) -> Option<(u64, &str)> {
    skim_head(line).map(|(seq, _, kind)| (seq, kind))
}

/// [`skim_line`], with the timestamp.
fn skim_head(line: &[u8]) -> Option<(u64, &str, &str)> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let seq: u64 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let rest = rest[digits..].strip_prefix(b",\"ts\":\"")?;
    // A timestamp holds no quote or backslash.
    let ts_len = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    let ts = std::str::from_utf8(&rest[..ts_len]).ok()?;
    let rest = rest[ts_len..].strip_prefix(b"\",\"type\":\"")?;
    let kind_len = rest
        .iter()
        .position(|&b| !(b.is_ascii_lowercase() || b == b'_'))?;
    if rest.get(kind_len) != Some(&b'"') {
        return None;
    }
    Some((seq, ts, std::str::from_utf8(&rest[..kind_len]).ok()?))
}

/// The checksum written at the end of `line`, if the line ends with a well-formed one.
fn stored_crc(line: &[u8]) -> Option<u32> {
    // At least `{` before the suffix.
    if line.len() <= CRC_SUFFIX_LEN {
        return None;
    }
    let suffix = &line[line.len() - CRC_SUFFIX_LEN..];
    let (open, rest) = suffix.split_at(CRC_OPEN.len());
    let (hex, close) = rest.split_at(8);
    if open != CRC_OPEN || close != CRC_CLOSE {
        return None;
    }
    if !hex
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return None;
    }
    let hex = std::str::from_utf8(hex).ok()?;
    u32::from_str_radix(hex, 16).ok()
}

/// Explain why an intact line is not a record, telling "newer waymark" apart from nonsense.
fn describe_json_error(line: &[u8], err: serde_json::Error) -> LineProblem {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(line) {
        if let Some(kind) = value.get("type").and_then(|t| t.as_str()) {
            if err.to_string().contains("unknown variant") {
                return LineProblem::from(format!(
                    "unknown record type `{kind}`: this journal was written by a newer waymark; \
                     use that version to read it"
                ));
            }
            return LineProblem::from(format!("invalid `{kind}` record: {err}"));
        }
        return LineProblem::from("the record has no `type`");
    }
    LineProblem::from(format!("not valid JSON: {err}"))
}

#[cfg(test)]
mod tests;
