//! The data tree: every znode, the indexes over them, the sessions that own ephemerals, and the quota
//! usage ZooKeeper keeps under /zookeeper/quota ([`quota`]).
//!
//! Only the applier writes it (through [`crate::txn`]); shards and the sequencer read it. The mutation
//! methods here assume the caller validated the request (prep did); when they meet a state a txn cannot
//! apply to — which happens only while replaying a log over a fuzzy snapshot — they report ZooKeeper's
//! error code and change nothing, which is what makes replay idempotent.

pub mod acl_cache;
pub mod digest;
pub mod ephemeral;
pub mod node;
pub mod quota;
mod slab;
mod table;

use std::collections::{BTreeSet, HashMap, HashSet};

use fk_net::client::{Acl, ErrorCode, Stat, StatPersisted, perms};
use fk_net::path;

pub use acl_cache::AclCache;
pub use ephemeral::{CONTAINER_OWNER, EphemeralKind, MAX_TTL_MS};
pub use node::{AclId, Node, OPEN_ACL_ID};
use slab::Slab;
use table::{Entry, Table};

pub const ZOOKEEPER_PATH: &str = "/zookeeper";
pub const QUOTA_PATH: &str = "/zookeeper/quota";
pub const CONFIG_PATH: &str = "/zookeeper/config";

/// Paths no client may delete (reference §10, delete validation).
pub fn is_reserved(path: &str) -> bool {
    matches!(path, "/" | ZOOKEEPER_PATH | QUOTA_PATH | CONFIG_PATH)
}

type Map<K, V> = HashMap<K, V, ahash::RandomState>;
type Set<K> = HashSet<K, ahash::RandomState>;

/// Seeds of every hash table in a tree. Table order shows (getChildren lists children in it, the reaper
/// meets containers in it), so it is injected: a simulation replays exactly from its seed, and a server
/// draws a random one at start so that clients cannot aim colliding paths at a seed they know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashSeed(pub [u64; 4]);

impl HashSeed {
    /// A known seed, for tests and offline tools, where nobody chooses paths against it.
    pub const FIXED: HashSeed =
        HashSeed([0x243F_6A88_85A3_08D3, 0x1319_8A2E_0370_7344, 0xA409_3822_299F_31D0, 0x082E_FA98_EC4E_6C89]);

    pub fn state(&self) -> ahash::RandomState {
        let [a, b, c, d] = self.0;
        ahash::RandomState::with_seeds(a, b, c, d)
    }
}

/// How a tree is built: whether TTL nodes exist (`extendedTypesEnabled`) and its hash seed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeOptions {
    pub extended_types: bool,
    pub hash_seed: HashSeed,
}

impl TreeOptions {
    /// With [`HashSeed::FIXED`]: for tests and offline tools.
    pub fn fixed_seed(extended_types: bool) -> TreeOptions {
        TreeOptions { extended_types, hash_seed: HashSeed::FIXED }
    }
}

/// A change a watch may be waiting for: ZooKeeper's (EventType, path) trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchTrigger {
    pub event: fk_net::client::watch::EventType,
    pub path: String,
}

/// Where a snapshot load is. A snapshot lists nodes in pre-order, so the parent of each node is on the
/// path from the root to the node read before it: that path is kept here, and neither parent lookups
/// nor new nodes touch the path index until the load ends. Each node's children and every new node's
/// index entry then go into their tables in batches ([`Table::insert_batch`]): the tables of a big tree
/// are far larger than the caches, and one cache miss per entry made these inserts two thirds of the
/// load time.
#[derive(Debug, Default)]
pub struct LoadCursor {
    /// The last node read and its ancestors, root first, each with its children read so far.
    ancestors: Vec<(u32, Vec<Entry>)>,
    /// Loaded nodes not yet in the path index.
    unindexed: Vec<Entry>,
}

/// The tree. Memory per znode is a goal in itself (DESIGN.md): nodes live in a slab and every table —
/// the path index and each node's children — holds 8-byte entries (slab index and 32 hash bits, see
/// [`table`]), with keys compared against the path stored once in the node. A million znodes with
/// 32-byte values cost about 270 bytes each (bench/RESULTS.md).
pub struct DataTree {
    nodes: Slab<Node>,
    /// Slab index of every node, hashed by full path.
    index: Table,
    hasher: ahash::RandomState,
    root: u32,
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
    /// Paths with a quota ([`quota`]).
    quotas: quota::QuotaIndex,
    quota_exceeded: quota::QuotaExceededCounts,
}

impl std::fmt::Debug for DataTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataTree").field("nodes", &self.nodes.len()).field("zxid", &self.last_processed_zxid).finish()
    }
}

impl DataTree {
    /// A tree as ZooKeeper starts one: "/", "/zookeeper", "/zookeeper/quota" and "/zookeeper/config"
    /// (world-readable only), all with zeroed stats.
    pub fn new(options: TreeOptions) -> DataTree {
        let mut tree = DataTree::for_loading(options);
        tree.finish_loading();
        tree
    }

    /// A tree with only a root, for a snapshot to be loaded into; [`Self::finish_loading`] completes it.
    pub fn for_loading(options: TreeOptions) -> DataTree {
        let state = options.hash_seed.state();
        let mut tree = DataTree {
            nodes: Slab::default(),
            index: Table::default(),
            hasher: state.clone(),
            root: 0,
            acls: AclCache::new(&state),
            ephemerals: Map::with_hasher(state.clone()),
            containers: Set::with_hasher(state.clone()),
            ttls: Set::with_hasher(state.clone()),
            sessions: Map::with_hasher(state),
            last_processed_zxid: 0,
            extended_types: options.extended_types,
            digest: 0,
            quotas: quota::QuotaIndex::default(),
            quota_exceeded: quota::QuotaExceededCounts::default(),
        };
        let root = Node::new("/", Some(Box::new([])), OPEN_ACL_ID, StatPersisted::default());
        tree.root = tree.insert_unlinked(root);
        tree
    }

    /// Adds the system nodes a snapshot lacked, rebuilds the quota registry and usage from the loaded tree,
    /// and drops ACL lists no node uses (the order of ZooKeeper's `deserialize`).
    pub fn finish_loading(&mut self) {
        for path in [ZOOKEEPER_PATH, QUOTA_PATH] {
            if self.get(path).is_none() {
                self.insert_system_node(path, OPEN_ACL_ID);
            }
        }
        if self.get(CONFIG_PATH).is_none() {
            let read_only = self.acls.acquire(&[Acl::new(perms::READ, "world", "anyone")]);
            let index = self.insert_system_node(CONFIG_PATH, read_only);
            // ZooKeeper sets this ACL with version -1, which it stores as the aversion.
            self.node_mut(index).stat.aversion = -1;
            self.rehash(index);
        }
        self.setup_quota();
        self.acls.purge_unused();
    }

    fn insert_system_node(&mut self, path: &str, acl: AclId) -> u32 {
        let parent = self.slot(path::parent(path)).expect("system parents come first");
        let index = self.insert_unlinked(Node::new(path, Some(Box::new([])), acl, StatPersisted::default()));
        self.link_child(parent, index);
        index
    }

    // ----- the slab, the index, and children -----

    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    fn node_at(&self, index: u32) -> &Node {
        self.nodes.get(index).expect("indexed node exists")
    }

    fn node_mut(&mut self, index: u32) -> &mut Node {
        self.nodes.get_mut(index).expect("indexed node exists")
    }

    fn slot(&self, path: &str) -> Option<u32> {
        self.index.find(self.hash(path), |i| *self.node_at(i).path == *path)
    }

    /// Stores a node in the slab and the path index (not yet in its parent's children); adds its digest.
    fn insert_unlinked(&mut self, node: Node) -> u32 {
        let hash = self.hash(&node.path);
        let index = self.store(node);
        self.index.insert(Entry::new(hash, index));
        index
    }

    /// Stores a node in the slab only; adds its digest.
    fn store(&mut self, mut node: Node) -> u32 {
        node.digest = digest::node_digest(&node.path, node.data.as_deref(), &node.stat);
        self.digest = self.digest.wrapping_add(node.digest);
        self.nodes.insert(node)
    }

    /// Removes a node from the slab and the path index; subtracts its digest.
    fn remove_unlinked(&mut self, index: u32) -> Node {
        let hash = self.hash(&self.node_at(index).path);
        assert!(self.index.remove(Entry::new(hash, index)), "node {index} missing from the path index");
        let node = self.nodes.remove(index);
        self.digest = self.digest.wrapping_sub(node.digest);
        node
    }

    fn link_child(&mut self, parent: u32, child: u32) {
        let hash = self.hash(self.node_at(child).name());
        self.node_mut(parent).children.get_or_insert_default().insert(Entry::new(hash, child));
    }

    /// Adds children (entries hashed by name) to `parent`'s table.
    fn link_children(&mut self, parent: u32, children: &mut [Entry]) {
        if !children.is_empty() {
            self.node_mut(parent).children.get_or_insert_default().insert_batch(children);
        }
    }

    /// Adds the path index entries a load deferred, and forgets them.
    fn index_batch(&mut self, entries: &mut Vec<Entry>) {
        self.index.insert_batch(entries);
        entries.clear();
    }

    fn unlink_child(&mut self, parent: u32, child: u32) {
        let hash = self.hash(self.node_at(child).name());
        let node = self.node_mut(parent);
        let children = node.children.as_mut().expect("a parent has children");
        assert!(children.remove(Entry::new(hash, child)), "child {child} missing from its parent's children");
        if children.is_empty() {
            node.children = None;
        }
    }

    fn child_slot(&self, parent: &Node, name: &str) -> Option<u32> {
        parent.children.as_ref()?.find(self.hash(name), |i| self.node_at(i).name() == name)
    }

    /// Recomputes a node's digest after a change, moving the tree digest with it.
    fn rehash(&mut self, index: u32) {
        let node = self.nodes.get_mut(index).expect("rehash of an existing node");
        let new = digest::node_digest(&node.path, node.data.as_deref(), &node.stat);
        let old = std::mem::replace(&mut node.digest, new);
        self.digest = self.digest.wrapping_sub(old).wrapping_add(new);
    }

    // ----- reads -----

    /// The tree digest: what ZooKeeper logs after each txn and checks on replay.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    pub fn extended_types(&self) -> bool {
        self.extended_types
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.slot(path).map(|i| self.node_at(i))
    }

    /// The names of a node's children, in no particular order.
    pub fn children<'a>(&'a self, node: &'a Node) -> impl Iterator<Item = &'a str> + 'a {
        node.children.iter().flat_map(|c| c.slots()).map(|i| self.node_at(i).name())
    }

    /// A node's children with their slab slots and creation zxids, for walks that let go of the tree
    /// between steps and must recognise a slot that was reused meanwhile.
    pub fn children_slots<'a>(&'a self, node: &'a Node) -> impl Iterator<Item = (u32, i64)> + 'a {
        node.children.iter().flat_map(|c| c.slots()).map(|i| (i, self.node_at(i).stat.czxid))
    }

    /// The node in `slot` if it is still the one created at `czxid`.
    pub fn node_in_slot(&self, slot: u32, czxid: i64) -> Option<&Node> {
        self.nodes.get(slot).filter(|n| n.stat.czxid == czxid)
    }

    pub fn root(&self) -> &Node {
        self.node_at(self.root)
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
        let Some(start) = self.slot(path) else { return 0 };
        let mut count = 0;
        let mut stack = vec![start];
        while let Some(index) = stack.pop() {
            let node = self.node_at(index);
            count += node.child_count();
            stack.extend(node.children.iter().flat_map(|c| c.slots()));
        }
        count
    }

    /// Approximate bytes of znode data, for `mntr`'s zk_approximate_data_size.
    pub fn approximate_data_size(&self) -> u64 {
        self.nodes.iter().map(|(_, node)| (node.path.len() + node.data_len() as usize) as u64).sum()
    }

    /// Every node, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(_, n)| (&*n.path, n))
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
        let parent = self.slot(path::parent(node_path)).ok_or(ErrorCode::NoNode)?;
        if self.child_slot(self.node_at(parent), path::name(node_path)).is_some() {
            return Err(ErrorCode::NodeExists);
        }
        let parent_node = self.node_mut(parent);
        let parent_cversion = if parent_cversion == -1 { parent_node.stat.cversion + 1 } else { parent_cversion };
        if parent_cversion > parent_node.stat.cversion {
            parent_node.stat.cversion = parent_cversion;
            parent_node.stat.pzxid = zxid;
            self.rehash(parent);
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
        let node = Node::new(node_path, data.map(Box::from), self.acls.acquire(acl), stat);
        let client_stat = self.client_stat(&node);
        self.index_owner(node_path, ephemeral_owner);
        let index = self.insert_unlinked(node);
        self.link_child(parent, index);
        self.quota_after_create(node_path, data.map_or(0, |d| d.len() as i64));
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
        let Some(index) = self.slot(node_path) else {
            // Replaying over a fuzzy snapshot, the child may be gone already while its parent was
            // written before the delete: ZooKeeper still raises the parent's pzxid, and so must we for
            // the replayed tree to equal the one that was snapshotted.
            if let Some(parent) = self.slot(path::parent(node_path)) {
                self.raise_pzxid(parent, zxid);
            }
            return Err(ErrorCode::NoNode);
        };
        if self.node_at(index).child_count() > 0 {
            return Err(ErrorCode::NotEmpty);
        }
        let parent = self.slot(path::parent(node_path)).expect("a node's parent exists");
        self.unlink_child(parent, index);
        let node = self.remove_unlinked(index);
        self.acls.release(node.acl);
        self.unindex_owner(node_path, node.stat.ephemeral_owner);
        self.raise_pzxid(parent, zxid);
        self.quota_after_delete(node_path, i64::from(node.data_len()));
        Ok(())
    }

    /// A child of `parent` was deleted at `zxid`; a later delete or create may have set it higher already.
    fn raise_pzxid(&mut self, parent: u32, zxid: i64) {
        let parent_node = self.node_mut(parent);
        if zxid > parent_node.stat.pzxid {
            parent_node.stat.pzxid = zxid;
            self.rehash(parent);
        }
    }

    pub fn set_data(
        &mut self,
        node_path: &str,
        data: Option<&[u8]>,
        version: i32,
        zxid: i64,
        time: i64,
    ) -> Result<Stat, ErrorCode> {
        let index = self.slot(node_path).ok_or(ErrorCode::NoNode)?;
        let node = self.node_mut(index);
        let old_len = node.data_len();
        node.data = data.map(Box::from);
        node.stat.version = version;
        node.stat.mzxid = zxid;
        node.stat.mtime = time;
        self.rehash(index);
        let stat = self.client_stat(self.node_at(index));
        self.quota_after_set_data(node_path, data.map_or(0, |d| d.len() as i64) - i64::from(old_len));
        Ok(stat)
    }

    pub fn set_acl(&mut self, node_path: &str, acl: &[Acl], aversion: i32) -> Result<Stat, ErrorCode> {
        let index = self.slot(node_path).ok_or(ErrorCode::NoNode)?;
        let new_id = self.acls.acquire(acl);
        let node = self.node_mut(index);
        let old_id = std::mem::replace(&mut node.acl, new_id);
        node.stat.aversion = aversion;
        self.acls.release(old_id);
        self.rehash(index);
        Ok(self.client_stat(self.node_at(index)))
    }

    /// Forgets a session and returns the ephemerals it still owns (the caller deletes them).
    pub fn remove_session(&mut self, session_id: i64) -> BTreeSet<Box<str>> {
        self.sessions.remove(&session_id);
        self.ephemerals.get(&session_id).cloned().unwrap_or_default()
    }

    // ----- snapshot loading -----

    /// Adds a node read from a snapshot, whose parent was read before it. The ACL index must already be
    /// in the cache. A node already present (the system nodes, or "/") is replaced, keeping its children.
    /// [`Self::end_load`] completes the tables (see [`LoadCursor`]).
    pub fn load_node(&mut self, node: Node, cursor: &mut LoadCursor) -> Result<(), ErrorCode> {
        self.acls.add_reference(node.acl);
        // Only "/" and the system nodes exist before their snapshot record; everything else is new, and
        // skipping the lookup for it saves a full-path hash per node.
        if is_reserved(&node.path) {
            self.index_batch(&mut cursor.unindexed);
            if let Some(existing) = self.slot(&node.path) {
                let old = self.node_mut(existing);
                let old_acl = old.acl;
                old.data = node.data;
                old.acl = node.acl;
                old.stat = node.stat;
                self.acls.release(old_acl);
                self.rehash(existing);
                return Ok(());
            }
        }
        let parent_path = path::parent(&node.path);
        while let Some((slot, _)) = cursor.ancestors.last() {
            if *self.node_at(*slot).path == *parent_path {
                break;
            }
            let (slot, mut children) = cursor.ancestors.pop().expect("an ancestor");
            self.link_children(slot, &mut children);
        }
        if cursor.ancestors.is_empty() {
            // The first node under "/", or a snapshot not in pre-order: find the parent the slow way.
            self.index_batch(&mut cursor.unindexed);
            let parent = self.slot(parent_path).ok_or(ErrorCode::NoNode)?;
            cursor.ancestors.push((parent, Vec::new()));
        }
        self.index_owner(&node.path, node.stat.ephemeral_owner);
        let (name_hash, path_hash) = (self.hash(node.name()), self.hash(&node.path));
        let slot = self.store(node);
        cursor.unindexed.push(Entry::new(path_hash, slot));
        cursor.ancestors.last_mut().expect("the parent").1.push(Entry::new(name_hash, slot));
        cursor.ancestors.push((slot, Vec::new()));
        Ok(())
    }

    /// Links the children and indexes the paths [`Self::load_node`] left for the end.
    pub fn end_load(&mut self, mut cursor: LoadCursor) {
        while let Some((slot, mut children)) = cursor.ancestors.pop() {
            self.link_children(slot, &mut children);
        }
        self.index_batch(&mut cursor.unindexed);
    }

    pub fn acl_cache_mut(&mut self) -> &mut AclCache {
        &mut self.acls
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
        let tree = DataTree::new(TreeOptions::fixed_seed(false));
        assert_eq!(tree.node_count(), 4);
        assert_eq!(tree.get("/").unwrap().child_count(), 1);
        assert_eq!(tree.acl(tree.get(CONFIG_PATH).unwrap())[0].perms, perms::READ);
        assert_eq!(tree.count_descendants("/"), 3);
    }

    #[test]
    fn create_and_delete_maintain_parent_stats_and_indexes() {
        let mut tree = DataTree::new(TreeOptions::fixed_seed(true));
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
        let mut tree = DataTree::new(TreeOptions::fixed_seed(false));
        tree.create_node("/a", None, &open(), 0, 1, 5, 100).unwrap();
        tree.create_node("/a/x", None, &open(), 0, 3, 9, 100).unwrap();
        tree.create_node("/a/y", None, &open(), 0, 2, 7, 100).unwrap();
        let a = tree.get("/a").unwrap();
        assert_eq!((a.stat.cversion, a.stat.pzxid), (3, 9));
    }

    #[test]
    fn set_acl_shares_and_releases_lists() {
        let mut tree = DataTree::new(TreeOptions::fixed_seed(false));
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

    fn load(paths: &[String]) -> Result<DataTree, ErrorCode> {
        let mut tree = DataTree::for_loading(TreeOptions::fixed_seed(false));
        let mut cursor = LoadCursor::default();
        for path in paths {
            let node = Node::new(path, Some(path.as_bytes().into()), OPEN_ACL_ID, StatPersisted::default());
            tree.load_node(node, &mut cursor)?;
        }
        tree.end_load(cursor);
        tree.finish_loading();
        Ok(tree)
    }

    #[test]
    fn loading_builds_the_same_tree_in_any_parent_first_order() {
        // Pre-order, as snapshots list nodes: a node wide enough for its children to be inserted in
        // bucket order, and a deep chain whose levels also have leaves, listed before the next level.
        let mut paths = vec!["/w".to_string()];
        paths.extend((0..10_000).map(|i| format!("/w/c{i}")));
        let mut deep = String::new();
        for depth in 0..40 {
            deep.push_str(&format!("/d{depth}"));
            paths.push(deep.clone());
            paths.push(format!("{deep}/leaf"));
        }
        let pre_order = load(&paths).unwrap();
        // Breadth first: parents still come first, but rarely just before their children.
        let mut breadth_first = paths.clone();
        breadth_first.sort_by_key(|p| (p.matches('/').count(), p.clone()));
        let breadth_first = load(&breadth_first).unwrap();

        assert_eq!(pre_order.node_count(), paths.len() + 4, "the loaded nodes and the system nodes");
        assert_eq!(pre_order.digest(), breadth_first.digest());
        let mut expected: HashMap<&str, Vec<&str>> = HashMap::new();
        for path in paths.iter().map(String::as_str).chain([ZOOKEEPER_PATH, QUOTA_PATH, CONFIG_PATH]) {
            expected.entry(path::parent(path)).or_default().push(path::name(path));
        }
        expected.values_mut().for_each(|names| names.sort_unstable());
        for tree in [&pre_order, &breadth_first] {
            for path in paths.iter().map(String::as_str).chain(["/", ZOOKEEPER_PATH, CONFIG_PATH]) {
                let node = tree.get(path).unwrap_or_else(|| panic!("{path} is indexed"));
                let mut children: Vec<&str> = tree.children(node).collect();
                children.sort_unstable();
                assert_eq!(children, expected.get(path).cloned().unwrap_or_default(), "children of {path}");
                assert!(children.iter().all(|c| tree.child_slot(node, c).is_some()), "{path}'s children by name");
            }
        }
        assert_eq!(load(&["/x/y".to_string()]).err(), Some(ErrorCode::NoNode), "a node before its parent");
    }
}
