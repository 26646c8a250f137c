//! One znode as the tree stores it.

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::OnceLock;

use fk_net::client::{Stat, StatPersisted};

use super::ephemeral::EphemeralKind;

/// A hasher builder with no per-instance state, seeded once per process, so that a child set costs
/// four words when empty (an `ahash::RandomState` in every node would add 32 bytes to each znode).
/// The random seed keeps adversarial child names from colliding on purpose.
#[derive(Clone, Copy, Default)]
pub struct ProcessSeededHasher;

impl BuildHasher for ProcessSeededHasher {
    type Hasher = ahash::AHasher;

    fn build_hasher(&self) -> ahash::AHasher {
        static STATE: OnceLock<ahash::RandomState> = OnceLock::new();
        STATE.get_or_init(ahash::RandomState::new).build_hasher()
    }
}

pub type ChildSet = HashSet<Box<str>, ProcessSeededHasher>;

/// Index into the ACL cache; -1 is the built-in "no list stored" (world:anyone ALL) that ZooKeeper gives
/// its own system nodes (reference/on-disk.md §4, DataNode.acl).
pub type AclId = i64;

pub const OPEN_ACL_ID: AclId = -1;

#[derive(Debug, Clone, Default)]
pub struct Node {
    /// Null and empty are different to clients: ZooKeeper returns null data as a -1 length.
    pub data: Option<Box<[u8]>>,
    pub acl: AclId,
    pub stat: StatPersisted,
    pub children: ChildSet,
    /// This node's share of the tree digest, kept so that a change costs one hash, not two.
    pub digest: u64,
}

impl Node {
    pub fn data_len(&self) -> i32 {
        self.data.as_ref().map_or(0, |d| d.len() as i32)
    }

    /// The Stat a client sees. Container and TTL owners are internal encodings and show as 0
    /// (reference/client-wire.md §11). The stored cversion counts child creates; clients see creates plus
    /// deletes, which ZooKeeper derives as `2 * creates - children` (`DataNode.copyStat`), since every
    /// create but those of the children still present was matched by a delete.
    pub fn client_stat(&self, extended_types: bool) -> Stat {
        let children = self.children.len() as i32;
        let mut stat = Stat::from_persisted(&self.stat, self.data_len(), children);
        stat.cversion = self.stat.cversion.wrapping_mul(2).wrapping_sub(children);
        if EphemeralKind::of(self.stat.ephemeral_owner, extended_types).session().is_none() {
            stat.ephemeral_owner = 0;
        }
        stat
    }
}
