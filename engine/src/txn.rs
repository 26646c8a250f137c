//! How each txn changes the tree (ZooKeeper's `DataTree.processTxn`), and which watches it triggers.
//!
//! Application is idempotent for txns a fuzzy snapshot already reflects: a create of an existing node or a
//! delete of a missing one reports the error and changes nothing.

use fk_net::client::watch::EventType;
use fk_net::client::{ErrorCode, Stat};
use fk_net::path;
use fk_net::txn::{Txn, TxnBody, TxnHeader};

use crate::tree::{DataTree, EphemeralKind, WatchTrigger};

/// What applying one txn (or one sub-txn of a multi) did, for the reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnResult {
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    SetData(Stat),
    SetAcl(Stat),
    Checked,
    Multi(Vec<TxnResult>),
    SessionCreated,
    SessionClosed,
    /// The txn was an error txn, or could not apply (only during replay).
    Error(ErrorCode),
}

/// Applies `txn`, appending the watch triggers it causes to `triggers` in the order ZooKeeper fires them.
pub fn apply(tree: &mut DataTree, txn: &Txn, triggers: &mut Vec<WatchTrigger>) -> TxnResult {
    let result = apply_body(tree, &txn.header, &txn.body, triggers);
    tree.set_last_processed_zxid(txn.header.zxid);
    result
}

fn apply_body(tree: &mut DataTree, header: &TxnHeader, body: &TxnBody, triggers: &mut Vec<WatchTrigger>) -> TxnResult {
    let (zxid, time) = (header.zxid, header.time);
    match body {
        TxnBody::Create { txn, .. } => {
            let owner = if txn.ephemeral { header.client_id } else { 0 };
            create(tree, &txn.path, txn.data.as_deref(), &txn.acl, owner, txn.parent_cversion, header, triggers)
        }
        TxnBody::CreateContainer(txn) => {
            let owner = EphemeralKind::Container.owner();
            create(tree, &txn.path, txn.data.as_deref(), &txn.acl, owner, txn.parent_cversion, header, triggers)
        }
        TxnBody::CreateTtl(txn) => {
            if txn.ttl <= 0 || txn.ttl > crate::tree::MAX_TTL_MS {
                return TxnResult::Error(ErrorCode::BadArguments);
            }
            let owner = EphemeralKind::Ttl(txn.ttl).owner();
            create(tree, &txn.path, txn.data.as_deref(), &txn.acl, owner, txn.parent_cversion, header, triggers)
        }
        TxnBody::Delete { path, .. } => delete(tree, path, zxid, triggers),
        TxnBody::SetData(txn) | TxnBody::Reconfig(txn) => {
            match tree.set_data(&txn.path, txn.data.as_deref(), txn.version, zxid, time) {
                Ok(stat) => {
                    triggers.push(WatchTrigger { event: EventType::NodeDataChanged, path: txn.path.clone() });
                    TxnResult::SetData(stat)
                }
                Err(code) => TxnResult::Error(code),
            }
        }
        TxnBody::SetAcl(txn) => match tree.set_acl(&txn.path, &txn.acl, txn.version) {
            Ok(stat) => TxnResult::SetAcl(stat),
            Err(code) => TxnResult::Error(code),
        },
        TxnBody::Check(_) => TxnResult::Checked,
        TxnBody::Multi(txns) => apply_multi(tree, header, txns, triggers),
        TxnBody::CreateSession(txn) => {
            tree.add_session(header.client_id, txn.timeout_ms);
            TxnResult::SessionCreated
        }
        TxnBody::CloseSession { paths_to_delete } => {
            let owned = tree.remove_session(header.client_id);
            // 3.6+ txns name the ephemerals to delete (the leader's view); older ones mean "all of them".
            let paths: Vec<String> = match paths_to_delete {
                Some(paths) => paths.clone(),
                None => owned.iter().map(|p| p.to_string()).collect(),
            };
            for path in paths {
                // A path already gone (replay over a newer snapshot) is not an error here.
                let _ = delete(tree, &path, zxid, triggers);
            }
            TxnResult::SessionClosed
        }
        TxnBody::Error(txn) => TxnResult::Error(ErrorCode::from_i32(txn.err).unwrap_or(ErrorCode::SystemError)),
    }
}

#[allow(clippy::too_many_arguments)]
fn create(
    tree: &mut DataTree,
    node_path: &str,
    data: Option<&[u8]>,
    acl: &[fk_net::client::Acl],
    owner: i64,
    parent_cversion: i32,
    header: &TxnHeader,
    triggers: &mut Vec<WatchTrigger>,
) -> TxnResult {
    match tree.create_node(node_path, data, acl, owner, parent_cversion, header.zxid, header.time) {
        Ok(stat) => {
            triggers.push(WatchTrigger { event: EventType::NodeCreated, path: node_path.to_owned() });
            triggers
                .push(WatchTrigger { event: EventType::NodeChildrenChanged, path: path::parent(node_path).to_owned() });
            TxnResult::Created { path: node_path.to_owned(), stat }
        }
        Err(code) => TxnResult::Error(code),
    }
}

fn delete(tree: &mut DataTree, node_path: &str, zxid: i64, triggers: &mut Vec<WatchTrigger>) -> TxnResult {
    match tree.delete_node(node_path, zxid) {
        Ok(()) => {
            triggers.push(WatchTrigger { event: EventType::NodeDeleted, path: node_path.to_owned() });
            triggers
                .push(WatchTrigger { event: EventType::NodeChildrenChanged, path: path::parent(node_path).to_owned() });
            TxnResult::Deleted
        }
        Err(code) => TxnResult::Error(code),
    }
}

/// A multi applies all its sub-txns or none. A failed multi is logged with its failing op as an error
/// txn; then every sub-result is an error: 0 before the failure, the real code at it, -2 after
/// (reference/client-wire.md §7).
fn apply_multi(
    tree: &mut DataTree,
    header: &TxnHeader,
    txns: &[TxnBody],
    triggers: &mut Vec<WatchTrigger>,
) -> TxnResult {
    let failed_at = txns.iter().position(|t| matches!(t, TxnBody::Error(_)));
    let results = match failed_at {
        Some(index) => txns
            .iter()
            .enumerate()
            .map(|(i, t)| match (i.cmp(&index), t) {
                (std::cmp::Ordering::Less, _) => TxnResult::Error(ErrorCode::Ok),
                (_, TxnBody::Error(e)) => {
                    TxnResult::Error(ErrorCode::from_i32(e.err).unwrap_or(ErrorCode::SystemError))
                }
                (_, _) => TxnResult::Error(ErrorCode::RuntimeInconsistency),
            })
            .collect(),
        None => txns.iter().map(|t| apply_body(tree, header, t, triggers)).collect(),
    };
    TxnResult::Multi(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use fk_net::client::{Acl, OpCode, perms};
    use fk_net::txn::{CreateTxn, ErrorTxn, SetDataTxn};

    fn txn(zxid: i64, body: TxnBody) -> Txn {
        let header = TxnHeader { client_id: 0x77, cxid: 1, zxid, time: 1000 + zxid, txn_type: body.txn_type() };
        Txn { header, body, digest: None }
    }

    fn create(path: &str, parent_cversion: i32) -> TxnBody {
        TxnBody::Create {
            op: OpCode::Create,
            txn: CreateTxn {
                path: path.into(),
                data: Some(b"d".to_vec()),
                acl: vec![Acl::new(perms::ALL, "world", "anyone")],
                ephemeral: false,
                parent_cversion,
            },
        }
    }

    #[test]
    fn create_fires_created_and_parent_children_changed() {
        let mut tree = DataTree::new(crate::tree::TreeOptions::fixed_seed(false));
        let mut triggers = Vec::new();
        let result = apply(&mut tree, &txn(1, create("/a", 1)), &mut triggers);
        assert!(matches!(result, TxnResult::Created { ref path, .. } if path == "/a"));
        assert_eq!(
            triggers,
            vec![
                WatchTrigger { event: EventType::NodeCreated, path: "/a".into() },
                WatchTrigger { event: EventType::NodeChildrenChanged, path: "/".into() },
            ]
        );
        assert_eq!(tree.last_processed_zxid(), 1);
    }

    #[test]
    fn failed_multi_applies_nothing() {
        let mut tree = DataTree::new(crate::tree::TreeOptions::fixed_seed(false));
        let mut triggers = Vec::new();
        let body = TxnBody::Multi(vec![
            create("/m", 1),
            TxnBody::Error(ErrorTxn { err: ErrorCode::BadVersion.as_i32() }),
            TxnBody::Error(ErrorTxn { err: ErrorCode::RuntimeInconsistency.as_i32() }),
        ]);
        let result = apply(&mut tree, &txn(2, body), &mut triggers);
        assert_eq!(
            result,
            TxnResult::Multi(vec![
                TxnResult::Error(ErrorCode::Ok),
                TxnResult::Error(ErrorCode::BadVersion),
                TxnResult::Error(ErrorCode::RuntimeInconsistency),
            ])
        );
        assert!(tree.get("/m").is_none());
        assert!(triggers.is_empty());
    }

    #[test]
    fn replay_is_idempotent() {
        let mut tree = DataTree::new(crate::tree::TreeOptions::fixed_seed(false));
        let mut triggers = Vec::new();
        let log = [
            txn(1, create("/a", 1)),
            txn(2, TxnBody::SetData(SetDataTxn { path: "/a".into(), data: Some(b"v1".to_vec()), version: 1 })),
        ];
        for t in &log {
            apply(&mut tree, t, &mut triggers);
        }
        let before = tree.get("/a").unwrap().stat.clone();
        for t in &log {
            apply(&mut tree, t, &mut triggers);
        }
        assert_eq!(tree.get("/a").unwrap().stat, before);
        assert_eq!(tree.get("/").unwrap().stat.cversion, 1);
    }
}
