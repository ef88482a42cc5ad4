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
    let body = br#"{"seq":2,"ts":"2026-11-23T22:15:00.000Z","type":"step_teleported","step":"a""#;
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(format!(",\"crc\":\"{:08x}\"}}\n", crc32fast::hash(body)).as_bytes());
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
    bytes.extend_from_slice(format!(",\"crc\":\"{:08x}\"}}\n", crc32fast::hash(body)).as_bytes());
    assert!(scan_bytes(&bytes).is_err());
}

#[test]
fn empty_journal_is_an_error() {
    let err = scan_bytes(b"").unwrap_err();
    assert!(err.to_string().contains("journal is empty") || err.to_string().contains("is empty"));
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
    scan_selected(
        Path::new("runs/r1/journal.jsonl"),
        bytes,
        &|_, _| false,
        Planned::Decoded,
    )
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
    let mut records = sample();
    records[0].event = Event::sample_run_started(&[("a", "step"), ("g", "gate")]);
    let bytes = journal_bytes(&records);
    let got = scan_none(&bytes).unwrap();
    assert_eq!(got.records, records[..1].to_vec());
    assert_eq!(got.valid_len, bytes.len());
    let keep = |_: u64, t: &str| t == "step_succeeded";
    let kept = scan_selected(Path::new("j"), &bytes, &keep, Planned::Decoded).unwrap();
    assert_eq!(kept.records, vec![records[0].clone(), records[2].clone()]);
    // A summary's scan leaves the first record's planned steps out, and only those.
    let mut head = records[0].clone();
    match &mut head.event {
        Event::RunStarted { steps, .. } => {
            assert!(!steps.is_empty(), "the sample plans steps");
            steps.clear();
        }
        other => panic!("the first record is {other:?}"),
    }
    let summary = scan_selected(Path::new("j"), &bytes, &keep, Planned::Skipped).unwrap();
    assert_eq!(summary.records, vec![head, records[2].clone()]);
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
fn read_appended_verifies_only_the_lines_after_the_verified_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.jsonl");
    let records = sample();
    let mut bytes = journal_bytes(&records);
    let first_len = bytes.iter().position(|&b| b == b'\n').unwrap() as u64 + 1;
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(
        read_appended(&path, first_len, 1).unwrap().records,
        records[1..].to_vec()
    );
    let all = bytes.len() as u64;
    assert!(read_appended(&path, all, records.len() as u64)
        .unwrap()
        .records
        .is_empty());
    // The lines after the prefix must continue its sequence: read as following two
    // records, the second line is out of order, and it is named by its line number.
    match read_appended(&path, first_len, 2).unwrap_err() {
        JournalError::Damaged { line, problem, .. } => {
            assert_eq!(line, 3);
            assert!(problem.contains("out of order"), "{problem}");
        }
        other => panic!("expected damage, got {other:?}"),
    }
    // Damage after the prefix is found; damage inside it is the caller's to have checked.
    bytes[first_len as usize + 40] ^= 0x02;
    std::fs::write(&path, &bytes).unwrap();
    match read_appended(&path, first_len, 1).unwrap_err() {
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
    let body =
        br#"{"type":"step_started","step":"a","attempt":1,"ts":"2026-11-23T22:15:00.000Z","seq":2"#;
    bytes.extend_from_slice(body);
    bytes.extend_from_slice(format!(",\"crc\":\"{:08x}\"}}\n", crc32fast::hash(body)).as_bytes());
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
    // A line laid out otherwise (the steps first) is read in full.
    let line = br#"{"steps":[{"name":"a"}],"type":"run_started","source":"s.rhai","params":{"steps":"x"}}"#;
    let origin = origin_of_line(line).unwrap();
    assert_eq!(origin.source, "s.rhai");
    assert_eq!(origin.params["steps"], "x");
}

#[test]
fn the_origin_is_read_whichever_read_the_steps_key_or_the_line_end_falls_in() {
    // read_origin reads 256 KiB at a time and keeps only the head of the first line:
    // the key that ends the head may be cut between two reads, and a line may end
    // before any steps.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("journal.jsonl");
    let chunk = 256 << 10;
    let prefix = r#"{"type":"run_started","source":"s.rhai","params":{"p":""#;
    let steps = ",\"steps\":[";
    for cut in 0..steps.len() {
        // The value is sized so that `cut` bytes of the key fall in the first read.
        let value = "v".repeat(chunk - prefix.len() - 2 - cut);
        let line = format!(
            "{prefix}{value}\"}}{steps}{}]}}\n{{\"seq\":2}}\n",
            r#"{"name":"a"},"#.repeat(40_000) + r#"{"name":"b"}"#
        );
        std::fs::write(&path, &line).unwrap();
        let origin = read_origin(&path).unwrap_or_else(|| panic!("cut {cut}"));
        assert_eq!(origin.source, "s.rhai");
        assert_eq!(origin.params["p"].len(), value.len(), "cut {cut}");
    }
    let short = "{\"type\":\"run_started\",\"source\":\"t.rhai\",\"params\":{}}\n";
    std::fs::write(&path, short).unwrap();
    assert_eq!(
        read_origin(&path).unwrap().source,
        "t.rhai",
        "a line with no steps"
    );
    let torn = format!(
        "{{\"type\":\"run_started\",\"source\":\"t.rhai\",\"params\":{{}}{steps}{}",
        r#"{"name":"a"},"#.repeat(40_000)
    );
    std::fs::write(&path, torn).unwrap();
    assert_eq!(
        read_origin(&path),
        None,
        "a torn first line, its head complete"
    );
}

#[test]
fn read_journal_reports_a_missing_file_with_its_path() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("journal.jsonl");
    let err = read_journal(&path).unwrap_err();
    assert!(err.to_string().contains("journal.jsonl"), "{err}");
}
