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
pub fn read_origin(path: &Path) -> Option<RunOrigin> {
    use std::io::BufRead;
    let file = std::fs::File::open(path).ok()?;
    let mut line = Vec::new();
    std::io::BufReader::new(file)
        .read_until(b'\n', &mut line)
        .ok()?;
    origin_of_line(line.strip_suffix(b"\n")?)
}

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
    scan_selected(path, bytes, &|_, _| true)
}

/// Read the journal at `path`, verifying every line (checksum and sequence number) but
/// decoding only the records whose `type` `keep` accepts, and always the first.
///
/// This is how a run is summarized without replaying every step: `runs` and choosing the
/// run to resume look only at run-level records, and a 10,000-step journal is then a
/// checksum pass rather than 20,000 JSON decodes. Damage is reported exactly as
/// [`read_journal`] reports it, except that a line whose checksum is right but whose JSON
/// is wrong goes unnoticed when it is not decoded.
pub fn read_selected(
    path: &Path,
    keep: &dyn Fn(&str) -> bool,
) -> Result<JournalContents, JournalError> {
    let bytes = std::fs::read(path).map_err(|e| JournalError::io(path, "read", e))?;
    let scan = scan_selected(path, &bytes, &|_, kind| keep(kind))?;
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
    let scan = scan_selected(path, &bytes, &|line_seq, _| line_seq > seq)?;
    Ok(JournalContents {
        // The first record is always decoded (it must be `run_started`), and so is a
        // line laid out unlike the writer's: neither is asked for unless it is new.
        records: scan.records.into_iter().filter(|r| r.seq > seq).collect(),
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
    let scan = scan_selected(label, bytes, &|_, kind| keep(kind))?;
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
    let first: First = serde_json::from_slice(line).ok()?;
    (first.kind == "run_started").then_some(RunOrigin {
        source: first.source,
        params: first.params,
        inventory: first.inventory,
    })
}

/// [`scan`], decoding only the lines `keep` selects (by sequence number and record type)
/// and the first one.
fn scan_selected(
    path: &Path,
    bytes: &[u8],
    keep: &dyn Fn(u64, &str) -> bool,
) -> Result<Scan, JournalError> {
    if bytes.is_empty() {
        return Err(JournalError::Empty {
            path: path.to_path_buf(),
            detail: None,
        });
    }
    let mut records: Vec<Record> = Vec::with_capacity(bytes.len() / 128);
    let mut warnings = Vec::new();
    let mut pos = 0usize;
    let mut line_no = 0usize;
    let mut lines_ok = 0u64;
    while pos < bytes.len() {
        line_no += 1;
        let rest = &bytes[pos..];
        let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
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
            _ => parse_line(line, expected_seq).map(Some),
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
fn parse_line(line: &[u8], expected_seq: u64) -> Result<Record, LineProblem> {
    verify_crc(line)?;
    let record: Record = serde_json::from_slice(line).map_err(|e| describe_json_error(line, e))?;
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

/// The sequence number and record type of a line as the writer lays it out
/// (`{"seq":N,"ts":"…","type":"…",…`), read without decoding the JSON; `None` when the
/// line is laid out any other way (it is then decoded in full).
fn skim_line(line: &[u8]) -> Option<(u64, &str)> {
    let rest = line.strip_prefix(b"{\"seq\":")?;
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 19 {
        return None;
    }
    let seq: u64 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    let rest = rest[digits..].strip_prefix(b",\"ts\":\"")?;
    // A timestamp holds no quote or backslash.
    let ts_len = rest.iter().position(|&b| b == b'"' || b == b'\\')?;
    let rest = rest[ts_len..].strip_prefix(b"\",\"type\":\"")?;
    let kind_len = rest
        .iter()
        .position(|&b| !(b.is_ascii_lowercase() || b == b'_'))?;
    if rest.get(kind_len) != Some(&b'"') {
        return None;
    }
    Some((seq, std::str::from_utf8(&rest[..kind_len]).ok()?))
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
mod tests {
    use super::super::writer::encode_line;
    use super::*;

    fn started() -> Event {
        Event::sample_run_started(&[])
    }

    fn rec(seq: u64, event: Event) -> Record {
        Record {
            seq,
            ts: "2026-11-23T22:15:00.000Z".into(),
            event,
        }
    }

    fn journal_bytes(records: &[Record]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            encode_line(&mut out, r).unwrap();
        }
        out
    }

    fn sample() -> Vec<Record> {
        vec![
            rec(1, started()),
            rec(
                2,
                Event::StepStarted {
                    step: "a".into(),
                    attempt: 1,
                },
            ),
            rec(
                3,
                Event::StepSucceeded {
                    step: "a".into(),
                    attempt: 1,
                    output: serde_json::json!({"file": "cmdb.bak", "note": "ünïcode ✓"}),
                    verified: false,
                },
            ),
        ]
    }

    fn scan_bytes(bytes: &[u8]) -> Result<Scan, JournalError> {
        scan(Path::new("runs/r1/journal.jsonl"), bytes)
    }

    #[test]
    fn round_trip_of_encoded_lines() {
        let records = sample();
        let got = scan_bytes(&journal_bytes(&records)).unwrap();
        assert_eq!(got.records, records);
        assert!(got.warnings.is_empty());
    }

    #[test]
    fn flipped_byte_in_the_middle_is_an_error_naming_the_line() {
        let records = sample();
        let mut bytes = journal_bytes(&records);
        let second_line_start = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        // Flip a bit inside the step name of line 2 ("a" -> "c").
        let i = second_line_start + 40;
        bytes[i] ^= 0x02;
        assert_ne!(bytes[i], b'\n');
        let err = scan_bytes(&bytes).unwrap_err();
        match &err {
            JournalError::Damaged { line, problem, .. } => {
                assert_eq!(*line, 2);
                assert!(problem.contains("checksum"), "{problem}");
            }
            other => panic!("expected damage, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("runs/r1/journal.jsonl"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
    }

    #[test]
    fn bad_checksum_on_a_complete_last_line_was_taken_for_a_torn_tail() {
        let records = sample();
        let mut bytes = journal_bytes(&records);
        let len = bytes.len();
        bytes[len - 30] ^= 0x01;
        match scan_bytes(&bytes).unwrap_err() {
            JournalError::Damaged { line, problem, .. } => {
                assert_eq!(line, 3);
                assert!(problem.contains("checksum mismatch"), "{problem}");
            }
            other => panic!("expected damage, got {other:?}"),
        }
        // The same line without its newline is what a crash leaves: forgiven.
        let got = scan_bytes(&bytes[..len - 1]).unwrap();
        assert_eq!(got.records, records[..2].to_vec());
        assert!(
            got.warnings[0].contains("torn last line 3"),
            "{:?}",
            got.warnings
        );
    }

    #[test]
    fn truncating_the_last_record_anywhere_loses_only_that_record() {
        let records = sample();
        let full = journal_bytes(&records);
        let without_last = journal_bytes(&records[..2]);
        for cut in without_last.len()..=full.len() {
            let got = scan_bytes(&full[..cut])
                .unwrap_or_else(|e| panic!("cut at {cut} of {}: {e}", full.len()));
            if cut == full.len() {
                assert_eq!(got.records, records, "cut at {cut}");
                assert!(got.warnings.is_empty());
            } else {
                assert_eq!(got.records, records[..2].to_vec(), "cut at {cut}");
                assert_eq!(got.valid_len, without_last.len());
                // A cut exactly at a line boundary leaves nothing torn to warn about.
                assert_eq!(got.warnings.len(), usize::from(cut > without_last.len()));
            }
        }
    }

    #[test]
    fn sequence_gap_is_an_error() {
        let mut records = sample();
        records[2].seq = 4;
        let err = scan_bytes(&journal_bytes(&records)).unwrap_err();
        match err {
            JournalError::Damaged { line, problem, .. } => {
                assert_eq!(line, 3);
                assert!(problem.contains("jumps from 2 to 4"), "{problem}");
            }
            other => panic!("expected damage, got {other:?}"),
        }
    }

    #[test]
    fn repeated_sequence_number_is_an_error() {
        let mut records = sample();
        records[2].seq = 2;
        let err = scan_bytes(&journal_bytes(&records)).unwrap_err();
        assert!(err.to_string().contains("repeated"), "{err}");
    }

    #[test]
    fn unknown_record_type_in_the_middle_names_a_newer_waymark() {
        let records = sample();
        let mut bytes = journal_bytes(&records[..1]);
        let body =
            br#"{"seq":2,"ts":"2026-11-23T22:15:00.000Z","type":"step_teleported","step":"a""#;
        bytes.extend_from_slice(body);
        bytes.extend_from_slice(
            format!(",\"crc\":\"{:08x}\"}}\n", crc32fast::hash(body)).as_bytes(),
        );
        let mut third = records[2].clone();
        third.seq = 3;
        encode_line(&mut bytes, &third).unwrap();
        let err = scan_bytes(&bytes).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("line 2"), "{msg}");
        assert!(msg.contains("step_teleported"), "{msg}");
        assert!(msg.contains("newer waymark"), "{msg}");
    }

    #[test]
    fn unknown_record_type_on_an_intact_last_line_is_still_an_error() {
        let records = sample();
        let mut bytes = journal_bytes(&records[..1]);
        let body = br#"{"seq":2,"ts":"2026-11-23T22:15:00.000Z","type":"step_teleported""#;
        bytes.extend_from_slice(body);
        bytes.extend_from_slice(
            format!(",\"crc\":\"{:08x}\"}}\n", crc32fast::hash(body)).as_bytes(),
        );
        assert!(scan_bytes(&bytes).is_err());
    }

    #[test]
    fn empty_journal_is_an_error() {
        let err = scan_bytes(b"").unwrap_err();
        assert!(
            err.to_string().contains("journal is empty") || err.to_string().contains("is empty")
        );
        assert!(matches!(err, JournalError::Empty { .. }));
    }

    #[test]
    fn a_journal_whose_only_line_is_torn_is_empty() {
        let full = journal_bytes(&sample()[..1]);
        let err = scan_bytes(&full[..full.len() / 2]).unwrap_err();
        assert!(matches!(err, JournalError::Empty { .. }), "{err}");
    }

    #[test]
    fn first_record_must_start_the_run() {
        let bytes = journal_bytes(&[rec(
            1,
            Event::StepStarted {
                step: "a".into(),
                attempt: 1,
            },
        )]);
        let err = scan_bytes(&bytes).unwrap_err();
        assert!(err.to_string().contains("run_started"), "{err}");
    }

    #[test]
    fn garbage_never_panics() {
        let inputs: [&[u8]; 7] = [
            b"\n",
            b"\n\n\n",
            b"{}\n",
            b"\xff\xfe\n{\"seq\":1}",
            b",\"crc\":\"00000000\"}\n",
            b"{,\"crc\":\"00000000\"}\n",
            b"{\"seq\":1,\"crc\":\"ZZZZZZZZ\"}\n",
        ];
        for input in inputs {
            assert!(scan_bytes(input).is_err(), "{input:?}");
        }
    }

    fn scan_none(bytes: &[u8]) -> Result<Scan, JournalError> {
        scan_selected(Path::new("runs/r1/journal.jsonl"), bytes, &|_, _| false)
    }

    #[test]
    fn the_writers_layout_is_skimmed_for_sequence_and_type() {
        let records = sample();
        let bytes = journal_bytes(&records);
        for (line, r) in bytes.split(|&b| b == b'\n').zip(&records) {
            let kind = serde_json::to_value(&r.event).unwrap()["type"].clone();
            assert_eq!(
                skim_line(line),
                Some((r.seq, kind.as_str().unwrap())),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn a_selective_scan_decodes_only_what_it_keeps_and_the_first_record() {
        let records = sample();
        let bytes = journal_bytes(&records);
        let got = scan_none(&bytes).unwrap();
        assert_eq!(got.records, records[..1].to_vec());
        assert_eq!(got.valid_len, bytes.len());
        let kept = scan_selected(Path::new("j"), &bytes, &|_, t| t == "step_succeeded").unwrap();
        assert_eq!(kept.records, vec![records[0].clone(), records[2].clone()]);
    }

    #[test]
    fn a_selective_scan_still_finds_damage_in_lines_it_does_not_decode() {
        let records = sample();
        let mut flipped = journal_bytes(&records);
        let second_line_start = flipped.iter().position(|&b| b == b'\n').unwrap() + 1;
        flipped[second_line_start + 40] ^= 0x02;
        match scan_none(&flipped).unwrap_err() {
            JournalError::Damaged { line, problem, .. } => {
                assert_eq!(line, 2);
                assert!(problem.contains("checksum"), "{problem}");
            }
            other => panic!("expected damage, got {other:?}"),
        }
        let mut gap = records.clone();
        gap[2].seq = 4;
        let err = scan_none(&journal_bytes(&gap)).unwrap_err();
        assert!(err.to_string().contains("jumps from 2 to 4"), "{err}");
        let full = journal_bytes(&records);
        let torn = scan_none(&full[..full.len() - 5]).unwrap();
        assert_eq!(torn.warnings.len(), 1, "{:?}", torn.warnings);
    }

    #[test]
    fn read_after_returns_only_the_newer_records_and_verifies_every_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.jsonl");
        let records = sample();
        std::fs::write(&path, journal_bytes(&records)).unwrap();
        assert_eq!(read_after(&path, 1).unwrap().records, records[1..].to_vec());
        assert_eq!(read_after(&path, 2).unwrap().records, records[2..].to_vec());
        assert_eq!(read_after(&path, 0).unwrap().records, records);
        assert!(read_after(&path, 3).unwrap().records.is_empty());
        // A damaged line among those already replayed is still damage.
        let mut bytes = journal_bytes(&records);
        let second_line_start = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
        bytes[second_line_start + 40] ^= 0x02;
        std::fs::write(&path, &bytes).unwrap();
        match read_after(&path, 2).unwrap_err() {
            JournalError::Damaged { line, problem, .. } => {
                assert_eq!(line, 2);
                assert!(problem.contains("checksum"), "{problem}");
            }
            other => panic!("expected damage, got {other:?}"),
        }
    }

    #[test]
    fn a_line_laid_out_another_way_is_decoded_in_full() {
        let records = sample();
        let mut bytes = journal_bytes(&records[..1]);
        let body = br#"{"type":"step_started","step":"a","attempt":1,"ts":"2026-11-23T22:15:00.000Z","seq":2"#;
        bytes.extend_from_slice(body);
        bytes.extend_from_slice(
            format!(",\"crc\":\"{:08x}\"}}\n", crc32fast::hash(body)).as_bytes(),
        );
        assert_eq!(skim_line(&bytes[bytes.len() - body.len() - 19..]), None);
        let got = scan_none(&bytes).unwrap();
        assert_eq!(got.records.len(), 2, "the reordered line is decoded");
        assert_eq!(got.records[1], records[1]);
    }

    #[test]
    fn the_origin_is_read_off_a_complete_first_line_only() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("journal.jsonl");
        let bytes = journal_bytes(&sample());
        std::fs::write(&path, &bytes).unwrap();
        let origin = read_origin(&path).unwrap();
        assert_eq!(origin.source, "example.rhai");
        assert_eq!(origin.params["server"], "ns-hq");
        assert_eq!(origin.inventory.as_deref(), Some("contoso.toml"));
        let first_len = bytes.iter().position(|&b| b == b'\n').unwrap();
        std::fs::write(&path, &bytes[..first_len]).unwrap();
        assert_eq!(read_origin(&path), None, "a torn first line");
        std::fs::write(&path, &bytes[first_len + 1..]).unwrap();
        assert_eq!(
            read_origin(&path),
            None,
            "a first line that is not run_started"
        );
        assert_eq!(read_origin(&tmp.path().join("missing")), None);
    }

    #[test]
    fn read_journal_reports_a_missing_file_with_its_path() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("journal.jsonl");
        let err = read_journal(&path).unwrap_err();
        assert!(err.to_string().contains("journal.jsonl"), "{err}");
    }
}
