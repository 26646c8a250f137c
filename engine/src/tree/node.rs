//! One znode as the tree stores it.

use fk_net::client::{Stat, StatPersisted};

use super::ephemeral::EphemeralKind;
use super::table::Table;

/// Index into the ACL cache; -1 is the built-in "no list stored" (world:anyone ALL) that ZooKeeper gives
/// its own system nodes (reference/on-disk.md §4, DataNode.acl).
pub type AclId = i64;

pub const OPEN_ACL_ID: AclId = -1;

/// Children as slab indexes of the child nodes, hashed by name (the names live in the children's own
/// paths). Leaves, most nodes, have none: no table at all.
pub type Children = Option<Box<Table>>;

#[derive(Debug)]
pub struct Node {
    pub path: Box<str>,
    /// Null and empty are different to clients: ZooKeeper returns null data as a -1 length.
    pub data: Option<Box<[u8]>>,
    pub acl: AclId,
    pub stat: StatPersisted,
    /// This node's share of the tree digest, kept so that a change costs one hash, not two.
    pub digest: u64,
    pub(super) children: Children,
    /// Where the last component starts in `path`: children tables rehash by name, and scanning for the
    /// last '/' every time dominated loading wide nodes.
    name_start: u32,
}

impl Node {
    pub fn new(path: &str, data: Option<Box<[u8]>>, acl: AclId, stat: StatPersisted) -> Node {
        let name_start = path.rfind('/').map_or(0, |i| i + 1) as u32;
        Node { path: path.into(), data, acl, stat, digest: 0, children: None, name_start }
    }

    /// The last path component ("" for the root).
    pub fn name(&self) -> &str {
        &self.path[self.name_start as usize..]
    }

    pub fn data_len(&self) -> i32 {
        self.data.as_ref().map_or(0, |d| d.len() as i32)
    }

    pub fn child_count(&self) -> usize {
        self.children.as_ref().map_or(0, |c| c.len())
    }

    /// The Stat a client sees. Container and TTL owners are internal encodings and show as 0
    /// (reference/client-wire.md §11). The stored cversion counts child creates; clients see creates plus
    /// deletes, which ZooKeeper derives as `2 * creates - children` (`DataNode.copyStat`), since every
    /// create but those of the children still present was matched by a delete.
    pub fn client_stat(&self, extended_types: bool) -> Stat {
        let children = self.child_count() as i32;
        let mut stat = Stat::from_persisted(&self.stat, self.data_len(), children);
        stat.cversion = self.stat.cversion.wrapping_mul(2).wrapping_sub(children);
        if EphemeralKind::of(self.stat.ephemeral_owner, extended_types).session().is_none() {
            stat.ephemeral_owner = 0;
        }
        stat
    }
}
