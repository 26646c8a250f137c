//! The state prep validates against: the tree plus the changes of txns prepared but not yet applied
//! (ZooKeeper's `outstandingChanges`). Without them, two creates of the same path in flight at once would
//! both pass validation.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use fk_engine::tree::DataTree;
use fk_engine::tree::digest::node_digest;
use fk_net::client::{Acl, StatPersisted};

/// What prep needs of a node (ZooKeeper's `ChangeRecord` minus the path).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeMeta {
    pub stat: StatPersisted,
    pub child_count: i32,
    pub acl: Arc<[Acl]>,
    /// The node's digest as of this record (0 for a node being created).
    pub digest: u64,
    pub data: NodeData,
}

/// Where a node's data is: unchanged in the tree, or as a pending txn leaves it. Needed to hash a node
/// whose stat changes (the digest covers data too), without copying data on every lookup.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeData {
    InTree,
    Pending(Option<Arc<[u8]>>),
}

#[derive(Debug, Clone)]
struct PendingRecord {
    zxid: i64,
    /// `None`: the node is deleted by a pending txn.
    meta: Option<NodeMeta>,
}

/// Changes of prepared, unapplied txns, newest per path.
#[derive(Debug, Default)]
pub struct PendingChanges {
    records: HashMap<Box<str>, PendingRecord, ahash::RandomState>,
    /// (zxid, path) in zxid order, to drop records once the tree has caught up.
    order: VecDeque<(i64, Box<str>)>,
    /// The tree digest after the last prepared txn; `None` once the tree has caught up with it.
    digest: Option<u64>,
}

impl PendingChanges {
    /// Forgets every record the tree now reflects (its zxid ≤ the tree's last applied zxid).
    pub fn prune(&mut self, applied_zxid: i64) {
        while let Some((zxid, _)) = self.order.front() {
            if *zxid > applied_zxid {
                break;
            }
            let (zxid, path) = self.order.pop_front().expect("front exists");
            if self.records.get(&path).is_some_and(|r| r.zxid == zxid) {
                self.records.remove(&path);
            }
        }
        if self.records.is_empty() {
            self.digest = None;
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// A read-through view used while preparing one request. Changes made through it are recorded, and a
/// multi can roll them back when one of its ops fails.
pub struct PrepView<'a> {
    tree: &'a DataTree,
    changes: &'a mut PendingChanges,
    /// Previous records of paths changed since `begin_undo`, to restore on rollback.
    undo: Option<Vec<(Box<str>, Option<PendingRecord>)>>,
    undo_order_len: usize,
    undo_digest: Option<u64>,
}

impl<'a> PrepView<'a> {
    pub fn new(tree: &'a DataTree, changes: &'a mut PendingChanges) -> Self {
        PrepView { tree, changes, undo: None, undo_order_len: 0, undo_digest: None }
    }

    pub fn tree(&self) -> &DataTree {
        self.tree
    }

    pub fn node(&self, path: &str) -> Option<NodeMeta> {
        if let Some(record) = self.changes.records.get(path) {
            return record.meta.clone();
        }
        let node = self.tree.get(path)?;
        Some(NodeMeta {
            stat: node.stat.clone(),
            child_count: node.child_count() as i32,
            acl: self.tree.acl_cache().get(node.acl).clone(),
            digest: node.digest,
            data: NodeData::InTree,
        })
    }

    /// The tree digest as of the last prepared txn.
    pub fn digest(&self) -> u64 {
        self.changes.digest.unwrap_or_else(|| self.tree.digest())
    }

    /// Records `path` as it is after the txn `zxid` (new or changed), moving the digest with it.
    pub fn put(&mut self, path: &str, zxid: i64, mut meta: NodeMeta) {
        let data = match &meta.data {
            NodeData::Pending(data) => data.as_deref(),
            NodeData::InTree => self.tree.get(path).and_then(|n| n.data.as_deref()),
        };
        let new = node_digest(path, data, &meta.stat);
        let old = std::mem::replace(&mut meta.digest, new);
        self.changes.digest = Some(self.digest().wrapping_sub(old).wrapping_add(new));
        self.record(path, zxid, Some(meta));
    }

    /// Records `path` as deleted by the txn `zxid`; `old` is its state before.
    pub fn remove(&mut self, path: &str, zxid: i64, old: &NodeMeta) {
        self.changes.digest = Some(self.digest().wrapping_sub(old.digest));
        self.record(path, zxid, None);
    }

    fn record(&mut self, path: &str, zxid: i64, meta: Option<NodeMeta>) {
        let previous = self.changes.records.insert(path.into(), PendingRecord { zxid, meta });
        if let Some(undo) = &mut self.undo {
            undo.push((path.into(), previous));
        }
        self.changes.order.push_back((zxid, path.into()));
    }

    /// Every path with a pending record, and whether it will then be an ephemeral of `session_id`: an
    /// ephemeral create in flight is one; a pending delete — or a delete and a create by another owner,
    /// which leave a record owned by someone else — is not. (ZooKeeper walks its outstanding changes in
    /// order: a delete removes the path, a record owned by the session adds it; the last record says the
    /// same.)
    pub fn pending_ephemeral_changes(&self, session_id: i64) -> impl Iterator<Item = (&str, bool)> {
        self.changes.records.iter().map(move |(path, record)| {
            (&**path, record.meta.as_ref().is_some_and(|meta| meta.stat.ephemeral_owner == session_id))
        })
    }

    /// Starts recording changes so that [`Self::rollback`] can undo them (multi).
    pub fn begin_undo(&mut self) {
        self.undo = Some(Vec::new());
        self.undo_order_len = self.changes.order.len();
        self.undo_digest = self.changes.digest;
    }

    /// Keeps the changes made since [`Self::begin_undo`].
    pub fn commit_undo(&mut self) {
        self.undo = None;
    }

    /// Restores every record changed since [`Self::begin_undo`].
    pub fn rollback(&mut self) {
        let undo = self.undo.take().expect("rollback without begin_undo");
        for (path, previous) in undo.into_iter().rev() {
            match previous {
                Some(record) => self.changes.records.insert(path, record),
                None => self.changes.records.remove(&path),
            };
        }
        self.changes.order.truncate(self.undo_order_len);
        self.changes.digest = self.undo_digest;
    }
}
