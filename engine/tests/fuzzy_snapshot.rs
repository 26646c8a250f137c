//! A snapshot taken while txns keep being applied (fuzzy, as all of ours are) recovers to the exact tree,
//! and replay does not report the fuzzy txns' logged digests as mismatches.

use std::sync::Mutex;

use fk_engine::log::{LogWriter, PwriteDevice};
use fk_engine::recovery::recover;
use fk_engine::snap::{Compression, TreeAccess, write_snapshot};
use fk_engine::tree::DataTree;
use fk_net::client::{Acl, OpCode, perms};
use fk_net::txn::{CreateTxn, SetDataTxn, Txn, TxnBody, TxnDigest, TxnHeader};

/// More nodes than the snapshot writer serializes per hold of the tree.
const NODES: i64 = 3000;

fn txn(zxid: i64, body: TxnBody) -> Txn {
    let txn_type = match &body {
        TxnBody::Create { op, .. } => op.as_i32(),
        _ => OpCode::SetData.as_i32(),
    };
    Txn { header: TxnHeader { client_id: 1, cxid: zxid as i32, zxid, time: zxid, txn_type }, body, digest: None }
}

/// Applies `txn` to `tree` and logs it with the digest the tree has after it, as the server does.
fn apply_and_log(tree: &mut DataTree, mut txn: Txn, log: &mut LogWriter) {
    fk_engine::txn::apply(tree, &txn, &mut Vec::new());
    txn.digest = Some(TxnDigest { version: 2, tree_digest: tree.digest() as i64 });
    log.append([&txn]).unwrap();
}

/// The tree behind a lock, with txns that land between the writer's holds of it.
struct Busy {
    tree: Mutex<DataTree>,
    log: Mutex<LogWriter>,
    pending: Mutex<Vec<Txn>>,
}

impl TreeAccess for Busy {
    fn read<R>(&self, f: impl FnOnce(&DataTree) -> R) -> R {
        let mut tree = self.tree.lock().unwrap();
        let mut log = self.log.lock().unwrap();
        // A few txns per hold: the nodes written later carry changes newer than the snapshot's zxid.
        let mut pending = self.pending.lock().unwrap();
        let take = pending.len().min(100);
        for txn in pending.drain(..take) {
            apply_and_log(&mut tree, txn, &mut log);
        }
        f(&tree)
    }
}

#[test]
fn a_fuzzy_snapshot_replays_to_the_exact_tree_without_digest_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let v2 = dir.path().join("version-2");
    std::fs::create_dir(&v2).unwrap();
    let mut log = LogWriter::new(&v2, Box::new(PwriteDevice), 1 << 20, false, 0);
    let mut tree = DataTree::new(fk_engine::tree::TreeOptions::fixed_seed(false));
    let acl = vec![Acl::new(perms::ALL, "world", "anyone")];
    let create = |zxid: i64, path: String| {
        let txn =
            CreateTxn { path, data: Some(b"v0".to_vec()), acl: acl.clone(), ephemeral: false, parent_cversion: -1 };
        self::txn(zxid, TxnBody::Create { op: OpCode::Create, txn })
    };
    apply_and_log(&mut tree, create(1, "/a".into()), &mut log);
    for i in 0..NODES {
        apply_and_log(&mut tree, create(2 + i, format!("/a/n{i}")), &mut log);
    }
    let changes: Vec<Txn> = (0..NODES)
        .map(|i| {
            let set = SetDataTxn { path: format!("/a/n{i}"), data: Some(b"v1".to_vec()), version: 1 };
            txn(2 + NODES + i, TxnBody::SetData(set))
        })
        .collect();
    let busy = Busy { tree: Mutex::new(tree), log: Mutex::new(log), pending: Mutex::new(changes) };
    let snapshot = write_snapshot(&busy, &v2, false, Compression::None).unwrap();
    let tree = busy.tree.into_inner().unwrap();
    assert!(tree.last_processed_zxid() > snapshot.zxid + 100, "txns landed while it was written");

    let recovered = recover(&v2, &v2, fk_engine::tree::TreeOptions::fixed_seed(false)).unwrap();
    assert_eq!(recovered.snapshot.as_deref(), Some(snapshot.path.as_path()));
    assert_eq!(recovered.tree.last_processed_zxid(), tree.last_processed_zxid());
    assert_eq!(recovered.tree.digest(), tree.digest());
    for i in 0..NODES {
        let path = format!("/a/n{i}");
        let (ours, theirs) = (recovered.tree.get(&path).unwrap(), tree.get(&path).unwrap());
        assert_eq!((&ours.data, &ours.stat), (&theirs.data, &theirs.stat), "{path}");
    }
    assert_eq!(recovered.digest_mismatches, 0);
    assert!(recovered.digests_checked > 0, "digests after the fuzzy stretch are compared");
}
