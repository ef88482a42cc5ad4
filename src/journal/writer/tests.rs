use super::*;
use crate::journal::read_journal;

fn started() -> Event {
    Event::sample_run_started(&[])
}

fn step_started(step: &str, attempt: u32) -> Event {
    Event::StepStarted {
        step: step.into(),
        attempt,
    }
}

fn journal(dir: &Path) -> PathBuf {
    dir.join(JOURNAL_FILE)
}

#[test]
fn lines_have_the_documented_format() {
    let record = Record {
        seq: 7,
        ts: "2026-11-23T22:15:00.123Z".into(),
        event: step_started("a", 1),
    };
    let mut out = Vec::new();
    encode_line(&mut out, &record).unwrap();
    let line = String::from_utf8(out).unwrap();
    let body =
        r#"{"seq":7,"ts":"2026-11-23T22:15:00.123Z","type":"step_started","step":"a","attempt":1"#;
    assert_eq!(
        line,
        format!(
            "{body},\"crc\":\"{:08x}\"}}\n",
            crc32fast::hash(body.as_bytes())
        )
    );
}

#[test]
fn round_trip_through_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (w, first) = JournalWriter::create(tmp.path(), started()).unwrap();
    assert_eq!(first.seq, 1);
    let more = w
        .append_blocking(vec![
            step_started("a", 1),
            Event::StepSucceeded {
                step: "a".into(),
                attempt: 1,
                output: serde_json::json!({"bytes": 1234}),
                verified: false,
            },
        ])
        .unwrap();
    assert_eq!(more.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
    let got = read_journal(&journal(tmp.path())).unwrap();
    let mut expected = vec![first];
    expected.extend(more);
    assert_eq!(got.records, expected);
    assert!(got.warnings.is_empty());
    // Timestamps are RFC 3339 UTC with milliseconds.
    let ts = &got.records[0].ts;
    assert!(humantime::parse_rfc3339(ts).is_ok(), "{ts}");
    assert!(
        ts.ends_with('Z') && ts.len() == "2026-11-23T22:15:00.123Z".len(),
        "{ts}"
    );
}

#[tokio::test]
async fn async_append_returns_durable_records() {
    let tmp = tempfile::tempdir().unwrap();
    let (w, _) = JournalWriter::create(tmp.path(), started()).unwrap();
    let r = w.append_one(step_started("a", 1)).await.unwrap();
    assert_eq!(r.seq, 2);
    assert!(w.append(vec![]).await.unwrap().is_empty());
    let got = read_journal(&journal(tmp.path())).unwrap();
    assert_eq!(got.records.last(), Some(&r));
}

#[tokio::test]
async fn submitted_appends_land_in_submission_order_while_in_flight_together() {
    let tmp = tempfile::tempdir().unwrap();
    let (w, _) = JournalWriter::create(tmp.path(), started()).unwrap();
    let first = w
        .submit(vec![step_started("a", 1), step_started("b", 1)])
        .unwrap();
    let second = w.submit(vec![step_started("c", 1)]).unwrap();
    let nothing = w.submit(vec![]).unwrap();
    // Waiting on the later one first must not matter: each resolves once durable.
    let second = second.await.unwrap();
    let first = first.await.unwrap();
    assert!(nothing.await.unwrap().is_empty());
    assert_eq!(first.iter().map(|r| r.seq).collect::<Vec<_>>(), [2, 3]);
    assert_eq!(second.iter().map(|r| r.seq).collect::<Vec<_>>(), [4]);
    let got = read_journal(&journal(tmp.path())).unwrap();
    let steps: Vec<_> = got.records.iter().filter_map(|r| r.event.step()).collect();
    assert_eq!(steps, ["a", "b", "c"]);
}

#[tokio::test]
async fn a_dropped_submission_is_still_written() {
    let tmp = tempfile::tempdir().unwrap();
    let (w, _) = JournalWriter::create(tmp.path(), started()).unwrap();
    drop(w.submit(vec![step_started("a", 1)]).unwrap());
    // Appends are taken in order, so once this one is durable the first is too.
    w.append_one(step_started("b", 1)).await.unwrap();
    let got = read_journal(&journal(tmp.path())).unwrap();
    let steps: Vec<_> = got.records.iter().filter_map(|r| r.event.step()).collect();
    assert_eq!(steps, ["a", "b"]);
}

#[cfg(unix)]
#[test]
fn journal_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    JournalWriter::create(tmp.path(), started()).unwrap();
    let mode = std::fs::metadata(journal(tmp.path()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn create_refuses_to_overwrite_a_journal() {
    let tmp = tempfile::tempdir().unwrap();
    JournalWriter::create(tmp.path(), started()).unwrap();
    let err = JournalWriter::create(tmp.path(), started()).unwrap_err();
    assert!(
        matches!(&err, JournalError::Io { source, .. } if source.kind() == io::ErrorKind::AlreadyExists),
        "{err}"
    );
    assert_eq!(read_journal(&journal(tmp.path())).unwrap().records.len(), 1);
}

#[test]
fn create_requires_run_started_first() {
    let tmp = tempfile::tempdir().unwrap();
    let err = JournalWriter::create(tmp.path(), step_started("a", 1)).unwrap_err();
    assert!(err.to_string().contains("run_started"), "{err}");
    assert!(!journal(tmp.path()).exists());
}

#[test]
fn concurrent_appenders_get_contiguous_increasing_seqs_without_interleaving() {
    let tmp = tempfile::tempdir().unwrap();
    let (w, _) = JournalWriter::create(tmp.path(), started()).unwrap();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let w = w.clone();
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..100u32 {
                    let n = 1 + (i as usize % 3);
                    let events = (0..n)
                        .map(|k| step_started(&format!("t{t}-i{i}-k{k}"), 1))
                        .collect();
                    let records = w.append_blocking(events).unwrap();
                    assert_eq!(records.len(), n);
                    // A request's records are consecutive: nobody else's land in between.
                    for pair in records.windows(2) {
                        assert_eq!(pair[1].seq, pair[0].seq + 1);
                    }
                    mine.extend(records);
                }
                mine
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in threads {
        let mine = t.join().unwrap();
        for pair in mine.windows(2) {
            assert!(pair[1].seq > pair[0].seq, "seqs must increase per caller");
        }
        all.extend(mine);
    }
    all.sort_by_key(|r| r.seq);
    let seqs: Vec<u64> = all.iter().map(|r| r.seq).collect();
    let expected: Vec<u64> = (2..2 + all.len() as u64).collect();
    assert_eq!(seqs, expected);
    // Every acknowledged record is in the file, intact, exactly as acknowledged.
    let got = read_journal(&journal(tmp.path())).unwrap();
    assert_eq!(&got.records[1..], &all[..]);
}

#[test]
fn pending_requests_share_one_write_and_one_fsync() {
    let tmp = tempfile::tempdir().unwrap();
    let path = journal(tmp.path());
    let file = OpenOptions::new()
        .append(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let mut waiting = Vec::new();
    for i in 0..50u32 {
        let (rtx, rrx) = mpsc::channel();
        let events = if i == 0 {
            vec![started()]
        } else {
            vec![step_started(&format!("s{i}"), 1); 20]
        };
        tx.send(Request {
            events,
            reply: Reply::Blocking(rtx),
            written: i % 2 == 1,
        })
        .unwrap();
        waiting.push(rrx);
    }
    drop(tx);
    // Everything was queued before the thread looked, so it must all go in one commit.
    let commits = WriterThread::new(Sink::File(file), path.clone(), 1).run(rx);
    assert_eq!(commits, 1);
    let mut next = 1;
    for rrx in waiting {
        for r in rrx.recv().unwrap().unwrap() {
            assert_eq!(r.seq, next);
            next += 1;
        }
    }
    assert_eq!(read_journal(&path).unwrap().records.len(), 1 + 49 * 20);
}

#[test]
fn a_written_append_is_in_the_file_when_it_returns_and_keeps_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let (w, _) = JournalWriter::create(dir.path(), started()).unwrap();
    let path = dir.path().join(JOURNAL_FILE);
    let a = w.append_written(vec![step_started("a", 1)]).unwrap();
    assert_eq!(a[0].seq, 2);
    // What a crash of waymark (not of the machine) would leave: the file as it is.
    let on_file = read_journal(&path).unwrap().records;
    assert_eq!(on_file.last().map(|r| r.seq), Some(2));
    let b = w.append_blocking(vec![step_started("b", 1)]).unwrap();
    let c = w.append_written(vec![step_started("c", 1)]).unwrap();
    assert_eq!((b[0].seq, c[0].seq), (3, 4));
    let steps: Vec<_> = read_journal(&path)
        .unwrap()
        .records
        .iter()
        .filter_map(|r| r.event.step().map(String::from))
        .collect();
    assert_eq!(steps, ["a", "b", "c"]);
}

#[cfg(target_os = "linux")]
#[test]
fn after_a_failed_write_nothing_more_is_acknowledged() {
    // /dev/full fails every write with ENOSPC, like a full disk at 2 a.m.
    let Ok(file) = OpenOptions::new().append(true).open("/dev/full") else {
        return;
    };
    let (tx, rx) = mpsc::channel();
    let w = JournalWriter {
        tx,
        path: Arc::from(Path::new("/dev/full")),
        redactor: Default::default(),
        direct: None,
    };
    std::thread::spawn(move || WriterThread::new(Sink::File(file), "/dev/full".into(), 1).run(rx));
    let first = w.append_blocking(vec![started()]).unwrap_err();
    assert!(
        matches!(
            &first,
            JournalError::Io {
                action: "write",
                ..
            }
        ),
        "{first}"
    );
    let second = w.append_blocking(vec![step_started("a", 1)]).unwrap_err();
    assert!(matches!(second, JournalError::Failed { .. }), "{second}");
    assert!(second.to_string().contains("earlier failure"), "{second}");
}

#[test]
fn reopening_after_a_torn_tail_truncates_it_and_continues_numbering() {
    let tmp = tempfile::tempdir().unwrap();
    let path = journal(tmp.path());
    {
        let (w, _) = JournalWriter::create(tmp.path(), started()).unwrap();
        w.append_blocking(vec![step_started("a", 1), step_started("b", 1)])
            .unwrap();
    }
    let good_len = std::fs::metadata(&path).unwrap().len();
    // A crash in the middle of writing record 4.
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(br#"{"seq":4,"ts":"2026-11-23T22:1"#).unwrap();
    drop(f);

    let (w, contents) = JournalWriter::open_existing(tmp.path()).unwrap();
    assert_eq!(contents.records.len(), 3);
    assert!(
        contents
            .warnings
            .iter()
            .any(|w| w.contains("torn last line") && w.contains("cut it off")),
        "{:?}",
        contents.warnings
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);

    let r = w.append_blocking(vec![step_started("c", 1)]).unwrap();
    assert_eq!(r[0].seq, 4);
    let got = read_journal(&path).unwrap();
    assert!(got.warnings.is_empty(), "{:?}", got.warnings);
    assert_eq!(
        got.records.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
}

#[test]
fn reopening_a_clean_journal_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let path = journal(tmp.path());
    JournalWriter::create(tmp.path(), started()).unwrap();
    let before = std::fs::read(&path).unwrap();
    let (_w, contents) = JournalWriter::open_existing(tmp.path()).unwrap();
    assert!(contents.warnings.is_empty());
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn reopening_a_damaged_journal_refuses_and_rewrites_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let path = journal(tmp.path());
    {
        let (w, _) = JournalWriter::create(tmp.path(), started()).unwrap();
        w.append_blocking(vec![step_started("a", 1), step_started("b", 1)])
            .unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let second = bytes.iter().position(|&b| b == b'\n').unwrap() + 1;
    bytes[second + 3] ^= 0x04;
    std::fs::write(&path, &bytes).unwrap();
    let err = JournalWriter::open_existing(tmp.path()).unwrap_err();
    assert!(
        matches!(err, JournalError::Damaged { line: 2, .. }),
        "{err}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[test]
fn direct_appends_interleave_with_batches_in_sequence_and_are_written_on_return() {
    let tmp = tempfile::tempdir().unwrap();
    let path = journal(tmp.path());
    let (w, _) = JournalWriter::create(tmp.path(), started()).unwrap();
    // Half the threads hand batches to the writer thread (durable), half write their
    // records themselves, as spawning threads do with `process_started`.
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let w = w.clone();
            let path = path.clone();
            std::thread::spawn(move || {
                let mut mine = Vec::new();
                for i in 0..100u32 {
                    let name = format!("t{t}-i{i}");
                    if t % 2 == 0 {
                        mine.extend(w.append_blocking(vec![step_started(&name, 1); 2]).unwrap());
                        continue;
                    }
                    let record = w.append_now(step_started(&name, 1)).unwrap();
                    // In the file when the call returns: what a crash of waymark leaves.
                    if i % 25 == 0 {
                        let on_file = read_journal(&path).unwrap().records;
                        assert!(on_file.contains(&record), "{name} not written yet");
                    }
                    mine.push(record);
                }
                // Each caller's records in the order it appended them.
                assert!(mine.windows(2).all(|p| p[1].seq > p[0].seq));
                mine
            })
        })
        .collect();
    let mut acknowledged: Vec<Record> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    acknowledged.sort_by_key(|r| r.seq);
    // The reader checks every line's checksum and that the numbers run 1, 2, … without
    // a gap; the file must hold exactly what was acknowledged, after `run_started`.
    let on_file = read_journal(&path).unwrap().records;
    assert_eq!(on_file.len(), 1 + 3 * 100 * 2 + 3 * 100);
    assert_eq!(&on_file[1..], &acknowledged[..]);
}
