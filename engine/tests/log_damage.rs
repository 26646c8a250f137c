//! Recovery's verdicts on damaged logs: a torn tail is cut, damage with durable data after it stops
//! start-up with a message naming the file, the offset and `fktool`, and an end-of-record byte damaged
//! under an intact checksum is repaired without losing the record.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use fk_engine::log::{LogWriter, PwriteDevice, read_log};
use fk_engine::recovery::{RecoveryError, recover};
use fk_engine::snap::{Compression, TreeAccess, write_snapshot};
use fk_engine::tree::DataTree;
use fk_net::client::{Acl, OpCode, perms};
use fk_net::txn::{CreateTxn, Txn, TxnBody, TxnHeader};

const TXNS: i64 = 100;

struct Locked(Mutex<DataTree>);

impl TreeAccess for Locked {
    fn read<R>(&self, f: impl FnOnce(&DataTree) -> R) -> R {
        f(&self.0.lock().unwrap())
    }
}

fn create(zxid: i64) -> Txn {
    let acl = vec![Acl::new(perms::ALL, "world", "anyone")];
    let txn =
        CreateTxn { path: format!("/n{zxid}"), data: Some(vec![1; 30]), acl, ephemeral: false, parent_cversion: -1 };
    let header = TxnHeader { client_id: 1, cxid: zxid as i32, zxid, time: zxid, txn_type: OpCode::Create.as_i32() };
    Txn { header, body: TxnBody::Create { op: OpCode::Create, txn }, digest: None }
}

/// `version-2/` with a snapshot of the empty tree, `log.1` holding `TXNS` creates, and, if asked, a
/// snapshot of the whole tree; returns the log's path and its record offsets.
fn data_dir(dir: &Path, snapshot_at_end: bool) -> (PathBuf, Vec<u64>) {
    let v2 = dir.join("version-2");
    std::fs::create_dir_all(&v2).unwrap();
    let tree = Locked(Mutex::new(DataTree::new(fk_engine::tree::TreeOptions::fixed_seed(false))));
    write_snapshot(&tree, &v2, false, Compression::None).unwrap();
    let mut log = LogWriter::new(&v2, Box::new(PwriteDevice), 64 * 1024, false, 0);
    for zxid in 1..=TXNS {
        let txn = create(zxid);
        fk_engine::txn::apply(&mut tree.0.lock().unwrap(), &txn, &mut Vec::new());
        log.append([&txn]).unwrap();
    }
    if snapshot_at_end {
        write_snapshot(&tree, &v2, false, Compression::None).unwrap();
    }
    let path = v2.join("log.1");
    let offsets = read_log(&path).unwrap().records.iter().map(|r| r.offset).collect();
    (path, offsets)
}

fn edit(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    f(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

fn entry_end(bytes: &[u8], offset: u64) -> usize {
    let at = offset as usize;
    at + 12 + i32::from_be_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize
}

#[test]
fn a_damaged_end_marker_under_a_good_checksum_loses_nothing_and_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let (log, offsets) = data_dir(dir.path(), false);
    edit(&log, |b| {
        let end = entry_end(b, offsets[40]);
        b[end] = b'X';
    });
    let v2 = dir.path().join("version-2");
    let recovered = recover(&v2, &v2, fk_engine::tree::TreeOptions::fixed_seed(false)).unwrap();
    assert_eq!(recovered.tree.last_processed_zxid(), TXNS);
    assert_eq!(recovered.end_markers_repaired, 1);
    assert_eq!(recovered.truncated, None);
    let again = recover(&v2, &v2, fk_engine::tree::TreeOptions::fixed_seed(false)).unwrap();
    assert_eq!((again.end_markers_repaired, again.tree.last_processed_zxid()), (0, TXNS), "the byte was rewritten");
}

#[test]
fn damage_in_the_middle_refuses_to_start_and_names_the_fktool_command() {
    for what in ["length", "checksum"] {
        let dir = tempfile::tempdir().unwrap();
        let (log, offsets) = data_dir(dir.path(), false);
        edit(&log, |b| match what {
            "length" => b[offsets[40] as usize + 10] ^= 0x10,
            _ => b[offsets[40] as usize + 6] ^= 0x10,
        });
        let damaged = std::fs::read(&log).unwrap();
        let v2 = dir.path().join("version-2");
        let err = recover(&v2, &v2, fk_engine::tree::TreeOptions::fixed_seed(false))
            .err()
            .unwrap_or_else(|| panic!("{what}: recovery must refuse"));
        assert!(matches!(err, RecoveryError::CorruptLog { .. }), "{what}: {err}");
        let message = err.to_string();
        let wanted = [
            format!("log.1: the record at offset {} (zxid 0x29, after 0x28) is damaged", offsets[40]),
            format!("valid record follows it at offset {} (zxid 0x2a)", offsets[41]),
            format!("fktool log truncate {} --offset {}", log.display(), offsets[40]),
            format!("fktool log verify {}", log.display()),
        ];
        for text in wanted {
            assert!(message.contains(&text), "{what}: {message}\n  lacks: {text}");
        }
        assert!(std::fs::read(&log).unwrap() == damaged, "{what}: a refused start changes nothing");
    }
}

#[test]
fn a_torn_tail_is_cut_where_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let (log, offsets) = data_dir(dir.path(), false);
    edit(&log, |b| b[offsets[90] as usize + 20..].fill(0));
    let v2 = dir.path().join("version-2");
    let recovered = recover(&v2, &v2, fk_engine::tree::TreeOptions::fixed_seed(false)).unwrap();
    assert_eq!(recovered.tree.last_processed_zxid(), 90);
    assert_eq!(recovered.truncated, Some((log.clone(), offsets[90])));
    assert_eq!(std::fs::metadata(&log).unwrap().len(), offsets[90]);
}

#[test]
fn a_tail_ending_before_a_snapshot_is_not_torn_but_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (log, offsets) = data_dir(dir.path(), true);
    // Records 61.. destroyed, though the snapshot of zxid 100 proves they were durable.
    edit(&log, |b| {
        let end = b.len();
        b[offsets[60] as usize + 5..end].fill(0xee);
    });
    let v2 = dir.path().join("version-2");
    let err = recover(&v2, &v2, fk_engine::tree::TreeOptions::fixed_seed(false)).err().expect("recovery must refuse");
    let message = err.to_string();
    assert!(matches!(err, RecoveryError::DamagedBeforeSnapshot { last_zxid: 60, snapshot_zxid: 100, .. }), "{message}");
    assert!(message.contains("snapshot.64 shows txns up to 0x64 were durable"), "{message}");
    assert!(message.contains(&format!("--offset {}", offsets[60])), "{message}");
    assert!(std::fs::metadata(&log).unwrap().len() > offsets[60], "nothing truncated");
}
