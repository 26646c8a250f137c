//! `fktool log verify` and `log dump` reach the verdicts start-up recovery reaches on the same damage.

use std::path::{Path, PathBuf};
use std::process::Command;

use fk_engine::log::{LogWriter, PwriteDevice, read_log};
use fk_net::client::OpCode;
use fk_net::txn::{SetDataTxn, Txn, TxnBody, TxnHeader};

fn txn(zxid: i64) -> Txn {
    let body = TxnBody::SetData(SetDataTxn { path: format!("/n{zxid}"), data: Some(vec![3; 20]), version: 1 });
    let header = TxnHeader { client_id: 1, cxid: zxid as i32, zxid, time: 0, txn_type: OpCode::SetData.as_i32() };
    Txn { header, body, digest: None }
}

fn written_log(dir: &Path) -> (PathBuf, Vec<u64>) {
    let mut writer = LogWriter::new(dir, Box::new(PwriteDevice), 64 * 1024, false, 0);
    for zxid in 1..=30 {
        writer.append(&[txn(zxid)]).unwrap();
    }
    let path = dir.join("log.1");
    let offsets = read_log(&path).unwrap().records.iter().map(|r| r.offset).collect();
    (path, offsets)
}

fn fktool(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fktool")).args(args).output().unwrap();
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Changes made to a pristine copy of the log.
type Damage<'a> = Box<dyn Fn(&mut Vec<u8>) + 'a>;

#[test]
fn verify_and_dump_give_recoverys_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let (log, offsets) = written_log(dir.path());
    let pristine = std::fs::read(&log).unwrap();
    let file = log.to_str().unwrap();
    let entry_end = |at: u64| at as usize + 12 + pristine[at as usize + 11] as usize;
    // (damage, verify's exit status, text verify prints, text dump prints)
    let cases: [(&str, Damage<'_>, i32, String); 5] = [
        ("none", Box::new(|_| {}), 0, "30 txns, zxid 0x1..=0x1e, clean end".into()),
        (
            "end marker in the middle",
            Box::new(|b| b[entry_end(offsets[10])] = b'X'),
            1,
            format!("offset {}: end-of-record byte damaged, checksum holds", entry_end(offsets[10])),
        ),
        (
            "checksum in the middle",
            Box::new(|b| b[offsets[10] as usize + 7] ^= 1),
            2,
            format!("CORRUPT: {file}: the record at offset {} (zxid 0xb, after 0xa) is damaged", offsets[10]),
        ),
        (
            "length in the middle",
            Box::new(|b| b[offsets[10] as usize + 9] = 0x7f),
            2,
            format!("but a valid record follows it at offset {} (zxid 0xc)", offsets[11]),
        ),
        (
            "a cut last record",
            Box::new(|b| b[offsets[29] as usize + 15..].fill(0)),
            1,
            format!("29 txns, zxid 0x1..=0x1d, torn tail at offset {}", offsets[29]),
        ),
    ];
    for (what, damage, status, text) in cases {
        let mut bytes = pristine.clone();
        damage(&mut bytes);
        std::fs::write(&log, &bytes).unwrap();
        let (code, out) = fktool(&["log", "verify", file]);
        assert_eq!(code, status, "{what}: {out}");
        assert!(out.contains(&text), "{what}: {out}\n  lacks: {text}");
        let (code, out) = fktool(&["log", "dump", file]);
        assert_eq!(code, if status == 2 { 2 } else { 0 }, "{what}: dump {out}");
        if status == 2 {
            assert!(out.contains(&format!("{:>10} zxid 0xa ", offsets[9])), "{what}: dump shows records before it");
            assert!(out.contains("CORRUPT"), "{what}: {out}");
        }
        assert_eq!(std::fs::read(&log).unwrap(), bytes, "{what}: verify and dump change nothing");
    }
}
