//! The data tree: every znode, the indexes over them, and the sessions that own ephemerals.
//!
//! Only the applier writes it (through [`crate::txn`]); shards and the sequencer read it. The mutation
//! methods here assume the caller validated the request (prep did); when they meet a state a txn cannot
//! apply to — which happens only while replaying a log over a fuzzy snapshot — they report ZooKeeper's
//! error code and change nothing, which is what makes replay idempotent.

pub mod acl_cache;
pub mod digest;
pub mod ephemeral;
pub mod node;

use std::collections::{BTreeSet, HashMap, HashSet};

use fk_net::client::{Acl, ErrorCode, Stat, StatPersisted, perms};
use fk_net::path;

pub use acl_cache::AclCache;
pub use ephemeral::{CONTAINER_OWNER, EphemeralKind, MAX_TTL_MS};
pub use node::{AclId, Node, OPEN_ACL_ID};

pub const ZOOKEEPER_PATH: &str = "/zookeeper";
pub const QUOTA_PATH: &str = "/zookeeper/quota";
pub const CONFIG_PATH: &str = "/zookeeper/config";

/// Paths no client may delete (reference §10, delete validation).
pub fn is_reserved(path: &str) -> bool {
    matches!(path, "/" | ZOOKEEPER_PATH | QUOTA_PATH | CONFIG_PATH)
}

type Map<K, V> = HashMap<K, V, ahash::RandomState>;
type Set<K> = HashSet<K, ahash::RandomState>;

/// A change a watch may be waiting for: ZooKeeper's (EventType, path) trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchTrigger {
    pub event: fk_net::client::watch::EventType,
    pub path: String,
}

#[derive(Debug)]
pub struct DataTree {
    nodes: Map<Box<str>, Node>,
    acls: AclCache,
    /// Ephemerals by owning session, sorted so that dumps and closeSession txns are deterministic.
    ephemerals: Map<i64, BTreeSet<Box<str>>>,
    containers: Set<Box<str>>,
    ttls: Set<Box<str>>,
    /// Live sessions and their negotiated timeouts: what a snapshot records.
    sessions: Map<i64, i32>,
    last_processed_zxid: i64,
    extended_types: bool,
    /// Wrapping sum of every node's digest (ZooKeeper's tree digest).
    digest: u64,
}

impl DataTree {
    /// A tree as ZooKeeper starts one: "/", "/zookeeper", "/zookeeper/quota" and "/zookeeper/config"
    /// (world-readable only), all with zeroed stats.
    pub fn new(extended_types: bool) -> DataTree {
        let mut tree = DataTree::for_loading(extended_types);
        tree.finish_loading();
        tree
    }

    /// A tree with only a root, for a snapshot to be loaded into; [`Self::finish_loading`] completes it.
    pub fn for_loading(extended_types: bool) -> DataTree {
        let mut tree = DataTree {
            nodes: Map::default(),
            acls: AclCache::default(),
            ephemerals: Map::default(),
            containers: Set::default(),
            ttls: Set::default(),
            sessions: Map::default(),
            last_processed_zxid: 0,
            extended_types,
            digest: 0,
        };
        tree.nodes.insert("/".into(), Node { data: Some(Box::new([])), acl: OPEN_ACL_ID, ..Node::default() });
        tree.rehash("/");
        tree
    }

    /// Adds the system nodes a snapshot lacked and drops ACL lists no node uses (as ZooKeeper purges its
    /// cache after loading).
    pub fn finish_loading(&mut self) {
        for path in [ZOOKEEPER_PATH, QUOTA_PATH] {
            if !self.nodes.contains_key(path) {
                self.insert_system_node(path, OPEN_ACL_ID);
            }
        }
        if !self.nodes.contains_key(CONFIG_PATH) {
            let read_only = self.acls.acquire(&[Acl::new(perms::READ, "world", "anyone")]);
            self.insert_system_node(CONFIG_PATH, read_only);
            // ZooKeeper sets this ACL with version -1, which it stores as the aversion.
            self.nodes.get_mut(CONFIG_PATH).expect("just added").stat.aversion = -1;
            self.rehash(CONFIG_PATH);
        }
        self.acls.purge_unused();
    }

    fn insert_system_node(&mut self, path: &str, acl: AclId) {
        let parent = self.nodes.get_mut(path::parent(path)).expect("system parents come first");
        parent.children.insert(path::name(path).into());
        self.nodes.insert(path.into(), Node { data: Some(Box::new([])), acl, ..Node::default() });
        self.rehash(path);
    }

    /// Recomputes a node's digest after a change, moving the tree digest with it.
    fn rehash(&mut self, node_path: &str) {
        let node = self.nodes.get_mut(node_path).expect("rehash of an existing node");
        let new = digest::node_digest(node_path, node.data.as_deref(), &node.stat);
        let old = std::mem::replace(&mut node.digest, new);
        self.digest = self.digest.wrapping_sub(old).wrapping_add(new);
    }

    /// The tree digest: what ZooKeeper logs after each txn and checks on replay.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    pub fn extended_types(&self) -> bool {
        self.extended_types
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn last_processed_zxid(&self) -> i64 {
        self.last_processed_zxid
    }

    pub fn set_last_processed_zxid(&mut self, zxid: i64) {
        self.last_processed_zxid = self.last_processed_zxid.max(zxid);
    }

    pub fn acl(&self, node: &Node) -> &[Acl] {
        self.acls.get(node.acl)
    }

    pub fn acl_cache(&self) -> &AclCache {
        &self.acls
    }

    pub fn client_stat(&self, node: &Node) -> Stat {
        node.client_stat(self.extended_types)
    }

    pub fn ephemeral_kind(&self, node: &Node) -> EphemeralKind {
        EphemeralKind::of(node.stat.ephemeral_owner, self.extended_types)
    }

    /// The ephemerals a session owns, in path order.
    pub fn ephemerals_of(&self, session_id: i64) -> impl Iterator<Item = &str> {
        self.ephemerals.get(&session_id).into_iter().flatten().map(|p| &**p)
    }

    /// Sessions that own at least one ephemeral, with their ephemerals.
    pub fn all_ephemerals(&self) -> impl Iterator<Item = (i64, &BTreeSet<Box<str>>)> {
        self.ephemerals.iter().map(|(id, paths)| (*id, paths))
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    pub fn containers(&self) -> impl Iterator<Item = &str> {
        self.containers.iter().map(|p| &**p)
    }

    pub fn ttl_nodes(&self) -> impl Iterator<Item = &str> {
        self.ttls.iter().map(|p| &**p)
    }

    pub fn sessions(&self) -> impl Iterator<Item = (i64, i32)> + '_ {
        self.sessions.iter().map(|(id, t)| (*id, *t))
    }

    pub fn session_timeout(&self, session_id: i64) -> Option<i32> {
        self.sessions.get(&session_id).copied()
    }

    /// Number of nodes below `path`, not counting it (getAllChildrenNumber).
    pub fn count_descendants(&self, path: &str) -> usize {
        let mut count = 0;
        let mut stack = vec![path.to_owned()];
        while let Some(current) = stack.pop() {
            let Some(node) = self.nodes.get(current.as_str()) else { continue };
            count += node.children.len();
            stack.extend(node.children.iter().map(|name| path::join(&current, name)));
        }
        count
    }

    /// Approximate bytes of znode data, for `mntr`'s zk_approximate_data_size.
    pub fn approximate_data_size(&self) -> u64 {
        self.nodes.iter().map(|(path, node)| (path.len() + node.data_len() as usize) as u64).sum()
    }

    // ----- mutations (the applier's and snapshot loader's) -----

    pub fn add_session(&mut self, session_id: i64, timeout_ms: i32) {
        self.sessions.insert(session_id, timeout_ms);
    }

    /// Creates a node. `parent_cversion` is the parent's cversion after the create (-1: current + 1);
    /// it only moves forward, so replaying an older create over a newer snapshot changes nothing.
    #[allow(clippy::too_many_arguments)]
    pub fn create_node(
        &mut self,
        node_path: &str,
        data: Option<&[u8]>,
        acl: &[Acl],
        ephemeral_owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time: i64,
    ) -> Result<Stat, ErrorCode> {
        if node_path == "/" {
            return Err(ErrorCode::NodeExists);
        }
        let parent_path = path::parent(node_path);
        let name = path::name(node_path);
        let parent = self.nodes.get_mut(parent_path).ok_or(ErrorCode::NoNode)?;
        if parent.children.contains(name) {
            return Err(ErrorCode::NodeExists);
        }
        let parent_cversion = if parent_cversion == -1 { parent.stat.cversion + 1 } else { parent_cversion };
        let parent_changed = parent_cversion > parent.stat.cversion;
        if parent_changed {
            parent.stat.cversion = parent_cversion;
            parent.stat.pzxid = zxid;
        }
        parent.children.insert(name.into());
        if parent_changed {
            self.rehash(parent_path);
        }
        let stat = StatPersisted {
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner,
            pzxid: zxid,
        };
        let node = Node {
            data: data.map(Box::from),
            acl: self.acls.acquire(acl),
            stat,
            children: Default::default(),
            digest: 0,
        };
        let client_stat = self.client_stat(&node);
        self.index_owner(node_path, ephemeral_owner);
        let previous = self.nodes.insert(node_path.into(), node);
        debug_assert!(previous.is_none(), "{node_path} was in the map but not in its parent's children");
        self.rehash(node_path);
        Ok(client_stat)
    }

    fn index_owner(&mut self, node_path: &str, owner: i64) {
        match EphemeralKind::of(owner, self.extended_types) {
            EphemeralKind::Persistent => {}
            EphemeralKind::Session(id) => {
                self.ephemerals.entry(id).or_default().insert(node_path.into());
            }
            EphemeralKind::Container => {
                self.containers.insert(node_path.into());
            }
            EphemeralKind::Ttl(_) => {
                self.ttls.insert(node_path.into());
            }
        }
    }

    fn unindex_owner(&mut self, node_path: &str, owner: i64) {
        match EphemeralKind::of(owner, self.extended_types) {
            EphemeralKind::Persistent => {}
            EphemeralKind::Session(id) => {
                if let Some(paths) = self.ephemerals.get_mut(&id) {
                    paths.remove(node_path);
                    if paths.is_empty() {
                        self.ephemerals.remove(&id);
                    }
                }
            }
            EphemeralKind::Container => {
                self.containers.remove(node_path);
            }
            EphemeralKind::Ttl(_) => {
                self.ttls.remove(node_path);
            }
        }
    }

    /// Deletes a leaf. The parent's pzxid moves to `zxid` only forward; its cversion is unchanged, as in
    /// ZooKeeper.
    pub fn delete_node(&mut self, node_path: &str, zxid: i64) -> Result<(), ErrorCode> {
        if node_path == "/" {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.nodes.get(node_path).ok_or(ErrorCode::NoNode)?;
        if !node.children.is_empty() {
            return Err(ErrorCode::NotEmpty);
        }
        let node = self.nodes.remove(node_path).expect("just looked up");
        self.digest = self.digest.wrapping_sub(node.digest);
        self.acls.release(node.acl);
        self.unindex_owner(node_path, node.stat.ephemeral_owner);
        let parent_path = path::parent(node_path);
        let parent = self.nodes.get_mut(parent_path).expect("a node's parent exists");
        parent.children.remove(path::name(node_path));
        if zxid > parent.stat.pzxid {
            parent.stat.pzxid = zxid;
            self.rehash(parent_path);
        }
        Ok(())
    }

    pub fn set_data(
        &mut self,
        node_path: &str,
        data: Option<&[u8]>,
        version: i32,
        zxid: i64,
        time: i64,
    ) -> Result<Stat, ErrorCode> {
        let node = self.nodes.get_mut(node_path).ok_or(ErrorCode::NoNode)?;
        node.data = data.map(Box::from);
        node.stat.version = version;
        node.stat.mzxid = zxid;
        node.stat.mtime = time;
        let stat = node.client_stat(self.extended_types);
        self.rehash(node_path);
        Ok(stat)
    }

    pub fn set_acl(&mut self, node_path: &str, acl: &[Acl], aversion: i32) -> Result<Stat, ErrorCode> {
        let new_id = self.acls.acquire(acl);
        let Some(node) = self.nodes.get_mut(node_path) else {
            self.acls.release(new_id);
            return Err(ErrorCode::NoNode);
        };
        let old_id = std::mem::replace(&mut node.acl, new_id);
        node.stat.aversion = aversion;
        let stat = node.client_stat(self.extended_types);
        self.acls.release(old_id);
        self.rehash(node_path);
        Ok(stat)
    }

    /// Forgets a session and returns the ephemerals it still owns (the caller deletes them).
    pub fn remove_session(&mut self, session_id: i64) -> BTreeSet<Box<str>> {
        self.sessions.remove(&session_id);
        self.ephemerals.get(&session_id).cloned().unwrap_or_default()
    }

    // ----- snapshot loading -----

    /// Adds a node read from a snapshot, whose parent was read before it. The ACL index must already be
    /// in the cache.
    pub fn load_node(&mut self, node_path: &str, node: Node) -> Result<(), ErrorCode> {
        if node_path == "/" {
            self.acls.add_reference(node.acl);
            let root = self.nodes.get_mut("/").expect("root exists");
            root.data = node.data;
            root.acl = node.acl;
            root.stat = node.stat;
            self.rehash("/");
            return Ok(());
        }
        let parent = self.nodes.get_mut(path::parent(node_path)).ok_or(ErrorCode::NoNode)?;
        parent.children.insert(path::name(node_path).into());
        self.acls.add_reference(node.acl);
        self.index_owner(node_path, node.stat.ephemeral_owner);
        if let Some(old) = self.nodes.insert(node_path.into(), Node { digest: 0, ..node }) {
            // System nodes exist from the start; the snapshot's copy replaces them.
            self.acls.release(old.acl);
            self.digest = self.digest.wrapping_sub(old.digest);
        }
        self.rehash(node_path);
        Ok(())
    }

    pub fn acl_cache_mut(&mut self) -> &mut AclCache {
        &mut self.acls
    }

    /// Every node with its path, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(p, n)| (&**p, n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> Vec<Acl> {
        vec![Acl::new(perms::ALL, "world", "anyone")]
    }

    #[test]
    fn a_new_tree_has_zookeepers_system_nodes() {
        let tree = DataTree::new(false);
        assert_eq!(tree.node_count(), 4);
        assert_eq!(tree.get("/").unwrap().children.len(), 1);
        assert_eq!(tree.acl(tree.get(CONFIG_PATH).unwrap())[0].perms, perms::READ);
        assert_eq!(tree.count_descendants("/"), 3);
    }

    #[test]
    fn create_and_delete_maintain_parent_stats_and_indexes() {
        let mut tree = DataTree::new(true);
        tree.create_node("/a", Some(b"x"), &open(), 0, 1, 5, 100).unwrap();
        let stat = tree.create_node("/a/e", None, &open(), 0x42, 1, 6, 101).unwrap();
        assert_eq!(stat.ephemeral_owner, 0x42);
        assert_eq!(tree.ephemerals_of(0x42).collect::<Vec<_>>(), vec!["/a/e"]);
        assert_eq!(tree.create_node("/a/e", None, &open(), 0, 2, 7, 102), Err(ErrorCode::NodeExists));
        assert_eq!(tree.delete_node("/a", 8), Err(ErrorCode::NotEmpty));
        tree.delete_node("/a/e", 8).unwrap();
        let a = tree.get("/a").unwrap();
        assert_eq!((a.stat.cversion, a.stat.pzxid), (1, 8));
        assert_eq!(tree.ephemerals_of(0x42).count(), 0);
        let ttl = EphemeralKind::Ttl(500).owner();
        let stat = tree.create_node("/t", None, &open(), ttl, -1, 9, 103).unwrap();
        assert_eq!(stat.ephemeral_owner, 0, "clients never see the TTL encoding");
        assert_eq!(tree.ttl_nodes().collect::<Vec<_>>(), vec!["/t"]);
        assert_eq!(tree.get("/").unwrap().stat.cversion, 2);
    }

    #[test]
    fn replayed_create_does_not_move_cversion_back() {
        let mut tree = DataTree::new(false);
        tree.create_node("/a", None, &open(), 0, 1, 5, 100).unwrap();
        tree.create_node("/a/x", None, &open(), 0, 3, 9, 100).unwrap();
        tree.create_node("/a/y", None, &open(), 0, 2, 7, 100).unwrap();
        let a = tree.get("/a").unwrap();
        assert_eq!((a.stat.cversion, a.stat.pzxid), (3, 9));
    }

    #[test]
    fn set_acl_shares_and_releases_lists() {
        let mut tree = DataTree::new(false);
        tree.create_node("/a", None, &open(), 0, 1, 5, 100).unwrap();
        tree.create_node("/b", None, &open(), 0, 2, 6, 100).unwrap();
        let before = tree.acl_cache().len();
        tree.set_acl("/a", &[Acl::new(perms::READ, "world", "anyone")], 1).unwrap();
        tree.set_acl("/b", &[Acl::new(perms::READ, "world", "anyone")], 1).unwrap();
        assert_eq!(
            tree.acl_cache().len(),
            before - 1,
            "the open list was released; the read list is shared with /zookeeper/config"
        );
    }
}
