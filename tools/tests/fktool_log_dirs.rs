//! `fktool log` over whole directories: dump's JSON and filters, verify's continuity checks, and the
//! writing subcommands (truncate, repair, chop) on copies of a real ZooKeeper 3.8 data dir and on logs our
//! engine wrote — their output and exit status, what they leave (read back by our recovery and by
//! ZooKeeper's own TxnLogToolkit), and backups that restore the original bytes.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fk_engine::log::{LogWriter, PwriteDevice, read_log};
use fk_engine::recovery::{RecoverLimits, recover_with};
use fk_engine::tree::TreeOptions;
use fk_net::client::OpCode;
use fk_net::txn::{SetDataTxn, Txn, TxnBody, TxnHeader};
use serde_json::Value;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/zk38");
const SESSION_B: &str = "0x100007ea1af0001";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs fktool with stdin closed (no terminal: repair must not wait for an answer).
fn fktool(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_fktool")).args(args).stdin(Stdio::null()).output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    Run { code: out.status.code().unwrap(), stdout: text(&out.stdout), stderr: text(&out.stderr) }
}

/// A copy of a fixture data dir in a temp dir: (temp dir, its version-2).
fn fixture_copy(name: &str) -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let from = Path::new(FIXTURES).join(name).join("version-2");
    let to = temp.path().join("data/version-2");
    std::fs::create_dir_all(&to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    (temp, to)
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Every file in a directory with its bytes, by name.
fn contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| (e.file_name().into_string().unwrap(), std::fs::read(e.path()).unwrap()))
        .collect();
    files.sort();
    files
}

/// The one backup directory fktool made beside `version2`, and the path it printed.
fn backup_dir(version2: &Path, stdout: &str) -> PathBuf {
    let made: Vec<_> = std::fs::read_dir(version2.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("fktool-backup-"))
        .collect();
    assert_eq!(made.len(), 1, "one backup directory: {made:?}");
    assert!(stdout.contains(&format!("originals kept in {}", made[0].display())), "{stdout}");
    made[0].clone()
}

/// Copies the backup over the directory and checks the original bytes are back.
fn assert_backup_restores(version2: &Path, backup: &Path, original: &[(String, Vec<u8>)]) {
    for (name, bytes) in contents(backup) {
        std::fs::write(version2.join(name), bytes).unwrap();
    }
    assert!(contents(version2) == original, "the backup restores every byte");
}

fn zxids_json(run: &Run) -> Vec<Value> {
    run.stdout.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

fn hex(value: &Value) -> i64 {
    i64::from_str_radix(value.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// Our recovery, changing nothing: the last zxid it reaches.
fn recovered_zxid(version2: &Path) -> i64 {
    let limits = RecoverLimits { up_to_zxid: None, read_only: true, ..RecoverLimits::default() };
    let recovered = recover_with(version2, version2, TreeOptions::fixed_seed(true), limits).unwrap();
    assert_eq!(recovered.truncated, None, "no torn tail left");
    recovered.tree.last_processed_zxid()
}

/// ZooKeeper's TxnLogToolkit on a log file: its "EOF reached after N txns." count, or `None` (printing
/// why) where Java or Debian's ZooKeeper is missing.
fn java_txn_count(file: &Path) -> Option<usize> {
    let jar = Path::new("/usr/share/java/zookeeper.jar");
    if !jar.exists() {
        eprintln!("SKIPPED the TxnLogToolkit check: {} is missing (Debian package zookeeper)", jar.display());
        return None;
    }
    let toolkit = "org.apache.zookeeper.server.persistence.TxnLogToolkit";
    let out = match Command::new("java").args(["-cp", "/usr/share/java/*", toolkit, s(file)]).output() {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIPPED the TxnLogToolkit check: cannot run java: {e}");
            return None;
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "TxnLogToolkit failed on {}: {stdout}", file.display());
    assert!(!stdout.contains("CRC ERROR"), "{stdout}");
    let last = stdout.lines().last().unwrap_or_default();
    let count = last.strip_prefix("EOF reached after ").and_then(|r| r.strip_suffix(" txns."));
    Some(count.unwrap_or_else(|| panic!("TxnLogToolkit: {stdout}")).parse().unwrap())
}

fn txn(zxid: i64) -> Txn {
    let body = TxnBody::SetData(SetDataTxn { path: format!("/n{zxid:x}"), data: Some(vec![5; 12]), version: 1 });
    let header = TxnHeader { client_id: 1, cxid: 1, zxid, time: 0, txn_type: OpCode::SetData.as_i32() };
    Txn { header, body, digest: None }
}

/// Logs written by our engine: each batch of zxids after a roll into a new file.
fn engine_logs(dir: &Path, files: &[&[i64]]) {
    for zxids in files {
        let mut writer = LogWriter::new(dir, Box::new(PwriteDevice), 4096, false, zxids[0] - 1);
        writer.append(&zxids.iter().copied().map(txn).collect::<Vec<_>>()).unwrap();
    }
}

/// (what, log files as zxids, snapshot names, exit status, text verify prints)
type VerifyCase<'a> = (&'a str, Vec<Vec<i64>>, &'a [&'a str], i32, &'a str);

#[test]
fn verify_judges_whole_directories() {
    let epoch2 = 2 << 32;
    let cases: [VerifyCase<'_>; 6] = [
        ("continuous", vec![(1..=5).collect(), (6..=9).collect()], &[], 0, "log.6: 4 txns, zxid 0x6..=0x9, clean end"),
        ("new epoch", vec![(1..=5).collect(), vec![epoch2 + 1, epoch2 + 2]], &[], 0, "log.200000001: 2 txns"),
        ("gap", vec![(1..=5).collect(), (8..=9).collect()], &[], 2, "gap: txns are missing, recovery refuses"),
        (
            "gap under a snapshot",
            vec![(1..=5).collect(), (8..=9).collect()],
            &["snapshot.7"],
            0,
            "note: zxids 0x6..0x7",
        ),
        ("overlap", vec![(1..=5).collect(), (4..=9).collect()], &[], 1, "overlap: recovery skips"),
        ("gap in a file", vec![vec![1, 2, 3, 7, 8]], &[], 2, "zxid 0x7 at offset"),
    ];
    for (what, files, snapshots, code, text) in cases {
        let dir = tempfile::tempdir().unwrap();
        engine_logs(dir.path(), &files.iter().map(Vec::as_slice).collect::<Vec<_>>());
        for name in snapshots {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let run = fktool(&["log", "verify", s(dir.path())]);
        assert_eq!(run.code, code, "{what}: {}", run.stdout);
        assert!(run.stdout.contains(text), "{what}: {}\n  lacks: {text}", run.stdout);
    }
}

#[test]
fn a_log_whose_header_was_never_written_is_handled_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    engine_logs(dir.path(), &[&[1, 2, 3]]);
    std::fs::write(dir.path().join("log.4"), b"").unwrap();
    let verify = fktool(&["log", "verify", s(dir.path())]);
    assert_eq!(verify.code, 1, "start-up removes it: {}", verify.stdout);
    assert!(verify.stdout.contains("log.4: no header (0 bytes: empty), so it holds no txn"), "{}", verify.stdout);
    assert_eq!(recovered_zxid(dir.path()), 3);
    let repair = fktool(&["log", "repair", s(dir.path()), "--yes"]);
    assert!(repair.stdout.contains("nothing to repair"), "{}{}", repair.stdout, repair.stderr);
}

#[test]
fn verify_on_the_zookeeper_fixtures_names_the_first_bad_offset() {
    // (fixture, exit status, first bad place)
    let cases = [
        ("datadir", 0, None),
        ("datadir-corrupt-tail", 1, Some("log.1e8 at offset 3582")),
        ("datadir-corrupt-middle", 2, Some("log.1 at offset 138")),
    ];
    for (fixture, code, first_bad) in cases {
        let run = fktool(&["log", "verify", &format!("{FIXTURES}/{fixture}")]);
        assert_eq!(run.code, code, "{fixture}: {}", run.stdout);
        assert_eq!(run.stdout.lines().filter(|l| l.contains("txns, zxid")).count(), 4 - (code == 2) as usize);
        match first_bad {
            Some(place) => assert!(run.stdout.contains(&format!("version-2/{place}")), "{fixture}: {}", run.stdout),
            None => assert!(!run.stdout.contains("first bad offset"), "{}", run.stdout),
        }
        // ZooKeeper starts on the corrupt-middle copy: it never reads log.1 (fixture README).
        let unread = "note: recovery from snapshot.1e6 starts at log.123 and does not read log.1";
        assert_eq!(run.stdout.contains(unread), fixture == "datadir-corrupt-middle", "{}", run.stdout);
    }
}

#[test]
fn dump_json_covers_every_txn_of_a_directory_in_zxid_order() {
    let run = fktool(&["log", "dump", "--json", &format!("{FIXTURES}/datadir")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let txns = zxids_json(&run);
    let zxids: Vec<i64> = txns.iter().map(|t| hex(&t["zxid"])).collect();
    assert_eq!(zxids, (1..=0x215).collect::<Vec<_>>(), "every txn of the four files, in order");
    let last = &txns[0x214];
    assert_eq!(
        (last["op"].as_str(), last["file"].as_str(), last["offset"].as_u64()),
        (Some("closeSession"), Some("log.1e8"), Some(3582))
    );
    assert_eq!(last["paths_to_delete"], serde_json::json!(["/app/ephA", "/queue/lock-0000000005"]));
    assert_eq!(run.stderr.lines().filter(|l| l.contains("clean end")).count(), 4, "file ends go to stderr");
}

#[test]
fn dump_filters() {
    let dir = format!("{FIXTURES}/datadir");
    // (filter arguments, zxids printed)
    let cases: [(&[&str], Vec<i64>); 5] = [
        (&["--from-zxid", "0x34", "--to-zxid", "35"], vec![0x34, 0x35]),
        (&["--path-prefix", "/live", "--op", "create"], vec![0x36, 0x37, 0x38]),
        (&["--op", "deleteContainer"], vec![0x213, 0x214]),
        (&["--op", "closeSession", "--session", "0x100007ea1af0000"], vec![0x215]),
        (&["--session", SESSION_B, "--to-zxid", "0x36"], vec![0x2, 0x36]),
    ];
    for (filter, expected) in cases {
        let run = fktool(&[&["log", "dump", "--json", &dir], filter].concat());
        assert_eq!(run.code, 0, "{filter:?}: {}", run.stderr);
        let zxids: Vec<i64> = zxids_json(&run).iter().map(|t| hex(&t["zxid"])).collect();
        assert_eq!(zxids, expected, "{filter:?}");
    }
    let multis = fktool(&["log", "dump", "--json", &dir, "--from-zxid", "0x34", "--to-zxid", "0x35"]);
    let ops: Vec<usize> = zxids_json(&multis).iter().map(|t| t["ops"].as_array().unwrap().len()).collect();
    assert_eq!(ops, vec![5, 3], "a multi's ops are listed");
    let text = fktool(&["log", "dump", &dir, "--op", "deleteContainer"]);
    assert!(
        text.stdout.contains("== log.1e8 ==") && text.stdout.contains("deleteContainer /ttl-short"),
        "{}",
        text.stdout
    );
    let bad = fktool(&["log", "dump", &dir, "--op", "getData"]);
    assert_eq!(bad.code, 2, "an op no log holds is a usage error");
}

/// (zxid, file cut, its new length, log files left, the last zxid our recovery reaches when the snapshots
/// left allow checking it)
type TruncateCase<'a> = (&'a str, &'a str, u64, &'a [&'a str], Option<i64>);

#[test]
fn truncate_keeps_the_zxid_and_removes_later_files_as_zookeeper_does() {
    let cases: [TruncateCase<'_>; 4] = [
        ("0x215", "log.1e8", 3682, &["log.1", "log.123", "log.1e8", "log.b5"], Some(0x215)),
        ("0x1e7", "log.123", 15776, &["log.1", "log.123", "log.b5"], Some(0x1e7)),
        ("0x1f0", "log.1e8", 0, &["log.1", "log.123", "log.1e8", "log.b5"], Some(0x1f0)),
        ("0xb4", "log.1", 16233, &["log.1"], None),
    ];
    for (zxid, cut, len, left, recovers_to) in cases {
        let (_temp, version2) = fixture_copy("datadir");
        let original = contents(&version2);
        let run = fktool(&["log", "truncate", s(version2.parent().unwrap()), "--zxid", zxid]);
        assert_eq!(run.code, 0, "to {zxid}: {}{}", run.stdout, run.stderr);
        let logs: Vec<String> =
            contents(&version2).into_iter().map(|(n, _)| n).filter(|n| n.starts_with("log.")).collect();
        assert_eq!(logs, left, "to {zxid}");
        let cut_file = version2.join(cut);
        let log = read_log(&cut_file).unwrap();
        if len > 0 {
            assert_eq!(log.file_len, len, "to {zxid}: cut right after the txn, padding gone");
        }
        assert_eq!(log.records.last().unwrap().txn.header.zxid, i64::from_str_radix(&zxid[2..], 16).unwrap());
        assert!(
            run.stdout.contains(&format!("cut {} at offset {}", cut_file.display(), log.file_len)),
            "{}",
            run.stdout
        );
        if let Some(expected) = recovers_to {
            assert_eq!(recovered_zxid(&version2), expected, "to {zxid}: our recovery reads the result");
        }
        if let Some(count) = java_txn_count(&cut_file) {
            assert_eq!(count, log.records.len(), "to {zxid}: ZooKeeper's toolkit reads the cut file");
        }
        let backup = backup_dir(&version2, &run.stdout);
        assert_backup_restores(&version2, &backup, &original);
    }
}

#[test]
fn truncate_edge_cases() {
    let dir = tempfile::tempdir().unwrap();
    engine_logs(dir.path(), &[&[1, 2, 3, 7, 8], &[9, 10]]);
    let log1 = dir.path().join("log.1");
    // A zxid in a gap: ZooKeeper's iterator stops at the first txn above it, and keeps that one.
    let run = fktool(&["log", "truncate", s(dir.path()), "--zxid", "5", "--no-backup"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("no txn 0x5 in the log: keeping the first txn after it, 0x7"), "{}", run.stdout);
    assert!(run.stdout.contains("dropped 3 txns (zxid 0x8..=0xa)"), "{}", run.stdout);
    let left: Vec<i64> = read_log(&log1).unwrap().records.iter().map(|r| r.txn.header.zxid).collect();
    assert_eq!(left, vec![1, 2, 3, 7]);
    assert!(!dir.path().join("log.9").exists());
    let before = contents(dir.path());
    // (arguments, what stderr says) — each refused with exit status 2, changing nothing.
    let offsets = read_log(&log1).unwrap().records.iter().map(|r| r.offset).collect::<Vec<_>>();
    let inside = (offsets[1] + 3).to_string();
    let cases: [(Vec<&str>, &str); 3] = [
        (vec![s(dir.path()), "--zxid", "0x20"], "no txn at or after zxid 0x20"),
        (vec![s(&log1), "--offset", &inside], "is not where a record starts"),
        (vec![s(dir.path()), "--offset", "16"], "name the log file, not a directory"),
    ];
    for (args, text) in cases {
        let run = fktool(&[&["log", "truncate"], args.as_slice()].concat());
        assert_eq!(run.code, 2, "{args:?}: {}", run.stdout);
        assert!(run.stderr.contains(text), "{args:?}: {}", run.stderr);
        assert!(contents(dir.path()) == before, "{args:?} changed nothing");
    }
    let at = offsets[2].to_string();
    let run = fktool(&["log", "truncate", s(&log1), "--offset", &at, "--backup-dir", s(&dir.path().join("keep"))]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(read_log(&log1).unwrap().records.len(), 2, "cut before the record at that offset");
    assert_eq!(std::fs::read(dir.path().join("keep/log.1")).unwrap(), before[0].1, "the backup is where asked");
}

#[test]
fn repair_cuts_a_torn_tail_after_asking() {
    let (_temp, version2) = fixture_copy("datadir-corrupt-tail");
    let original = contents(&version2);
    let data = version2.parent().unwrap();
    let refused = fktool(&["log", "repair", s(data)]);
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert!(refused.stderr.contains("refusing to cut without --yes: stdin is not a terminal"), "{}", refused.stderr);
    assert!(
        refused.stdout.contains("would drop 0 txns plus the damaged bytes at the cut, 40 bytes"),
        "{}",
        refused.stdout
    );
    assert!(contents(&version2) == original, "nothing changed without --yes");
    let run = fktool(&["log", "repair", s(data), "--yes"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("torn tail of")
            && run.stdout.contains("log.1e8: 45 txns, zxid 0x1e8..=0x214, clean end at offset 3582"),
        "{}",
        run.stdout
    );
    assert_eq!(recovered_zxid(&version2), 0x214, "as ZooKeeper recovers the torn copy");
    if let Some(count) = java_txn_count(&version2.join("log.1e8")) {
        assert_eq!(count, 45);
    }
    let again = fktool(&["log", "repair", s(data), "--yes"]);
    assert!(again.code == 0 && again.stdout.contains("nothing to repair"), "{}", again.stdout);
    let backup = backup_dir(&version2, &run.stdout);
    assert_backup_restores(&version2, &backup, &original);
}

#[test]
fn repair_of_corruption_keeps_later_logs_a_snapshot_covers() {
    let (_temp, version2) = fixture_copy("datadir-corrupt-middle");
    let original = contents(&version2);
    let run = fktool(&["log", "repair", s(&version2), "--yes"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("would drop 177 txns (zxid 0x4..=0xb4) plus the damaged bytes"), "{}", run.stdout);
    assert!(run.stdout.contains("later logs kept: recovery starts from snapshot.121"), "{}", run.stdout);
    assert_eq!(std::fs::metadata(version2.join("log.1")).unwrap().len(), 138);
    assert_eq!(recovered_zxid(&version2), 0x215, "recovery reaches what ZooKeeper reaches from the copy");
    if let Some(count) = java_txn_count(&version2.join("log.1")) {
        assert_eq!(count, 2);
    }
    let backup = backup_dir(&version2, &run.stdout);
    assert_backup_restores(&version2, &backup, &original);
}

#[test]
fn repair_of_corruption_without_a_snapshot_drops_everything_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let version2 = dir.path().join("version-2");
    std::fs::create_dir(&version2).unwrap();
    engine_logs(&version2, &[&(1..=20).collect::<Vec<_>>(), &[21, 22]]);
    let log1 = version2.join("log.1");
    let offsets: Vec<u64> = read_log(&log1).unwrap().records.iter().map(|r| r.offset).collect();
    let mut bytes = std::fs::read(&log1).unwrap();
    bytes[offsets[9] as usize + 20] ^= 0x10;
    std::fs::write(&log1, &bytes).unwrap();
    let run = fktool(&["log", "repair", s(dir.path()), "--yes", "--no-backup"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("would drop 12 txns (zxid 0xb..=0x16) plus the damaged bytes"), "{}", run.stdout);
    assert!(run.stdout.contains("and remove the later log"), "{}", run.stdout);
    assert!(!version2.join("log.15").exists());
    assert_eq!(recovered_zxid(&version2), 9);
    assert!(
        !dir.path().read_dir().unwrap().any(|e| e.unwrap().file_name().to_string_lossy().starts_with("fktool-backup"))
    );
}

#[test]
fn chop_writes_a_range_zookeeper_reads() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = out_dir.path().join("log.b0");
    let dir = format!("{FIXTURES}/datadir");
    let run = fktool(&["log", "chop", &dir, "--from-zxid", "0xb0", "--to-zxid", "0x130", s(&out)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("wrote 129 txns, zxid 0xb0..=0x130"), "{}", run.stdout);
    let verify = fktool(&["log", "verify", s(&out)]);
    assert_eq!(verify.code, 0, "{}", verify.stdout);
    // The same txns, digests included, as the source shows them.
    let strip = |run: &Run| -> Vec<Value> {
        zxids_json(run)
            .into_iter()
            .map(|mut t| {
                t.as_object_mut().unwrap().retain(|k, _| k != "file" && k != "offset");
                t
            })
            .collect()
    };
    let source = fktool(&["log", "dump", "--json", &dir, "--from-zxid", "0xb0", "--to-zxid", "0x130"]);
    assert_eq!(strip(&fktool(&["log", "dump", "--json", s(&out)])), strip(&source));
    if let Some(count) = java_txn_count(&out) {
        assert_eq!(count, 129);
    }
    // (arguments, exit status, text) — nothing written by any of them.
    let cases: [(Vec<String>, i32, &str); 3] = [
        (
            vec![
                dir.clone(),
                "--from-zxid".into(),
                "0x300".into(),
                "--to-zxid".into(),
                "0x400".into(),
                s(&out_dir.path().join("log.300")).into(),
            ],
            1,
            "no txn in zxid 0x300..=0x400",
        ),
        (
            vec![dir.clone(), "--from-zxid".into(), "1".into(), "--to-zxid".into(), "2".into(), s(&out).into()],
            2,
            "already exists",
        ),
        (
            vec![
                format!("{FIXTURES}/datadir-corrupt-middle"),
                "--from-zxid".into(),
                "1".into(),
                "--to-zxid".into(),
                "5".into(),
                s(&out_dir.path().join("log.x")).into(),
            ],
            2,
            "the range reaches damage",
        ),
    ];
    for (args, code, text) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = fktool(&[&["log", "chop"], args.as_slice()].concat());
        assert_eq!(run.code, code, "{args:?}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains(text) || run.stderr.contains(text), "{args:?}: {}{}", run.stdout, run.stderr);
    }
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 1, "only the first chop wrote a file");
}

#[test]
fn repair_asks_on_a_terminal_and_a_no_changes_nothing() {
    // util-linux's `script` gives fktool a terminal, and passes our "n" to it.
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("SKIPPED: `script` (util-linux) is not installed, so there is no terminal to answer on");
        return;
    }
    let (_temp, version2) = fixture_copy("datadir-corrupt-tail");
    let original = contents(&version2);
    let command = format!("{} log repair {}", env!("CARGO_BIN_EXE_fktool"), s(&version2));
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"n\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "declined: {text}");
    assert!(text.contains("cut it? [y/N]") && text.contains("nothing changed"), "{text}");
    assert!(contents(&version2) == original, "nothing changed");
}

#[test]
fn json_flags_a_damaged_end_marker_and_no_bar_is_drawn_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    engine_logs(dir.path(), &[&(1..=5).collect::<Vec<_>>()]);
    let log = dir.path().join("log.1");
    let record = read_log(&log).unwrap().records[2].clone();
    let mut bytes = std::fs::read(&log).unwrap();
    bytes[record.end_marker_offset() as usize] = b'X';
    std::fs::write(&log, &bytes).unwrap();
    let run = fktool(&["log", "dump", "--json", s(dir.path())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let flags: Vec<bool> = zxids_json(&run).iter().map(|t| t["end_marker_damaged"] == Value::Bool(true)).collect();
    assert_eq!(flags, [false, false, true, false, false]);
    let verify = fktool(&["log", "verify", s(dir.path())]);
    assert_eq!(verify.code, 1, "recovery rewrites the byte: {}", verify.stdout);
    assert!(!run.stderr.contains("KiB") && !verify.stderr.contains("KiB"), "no progress bar: stderr is a pipe");
}
