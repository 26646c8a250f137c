//! Interned ACL lists with reference counts (ZooKeeper's `ReferenceCountedACLCache`): nodes store an
//! index, so the million nodes that share one ACL share one list. The indexes are what snapshots store.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use fk_net::client::{Acl, perms};

use super::node::{AclId, OPEN_ACL_ID};

static OPEN_ACL_UNSAFE: LazyLock<Arc<[Acl]>> =
    LazyLock::new(|| Arc::from(vec![Acl::new(perms::ALL, "world", "anyone")]));

#[derive(Debug)]
pub struct AclCache {
    by_id: HashMap<AclId, (Arc<[Acl]>, u64), ahash::RandomState>,
    by_list: HashMap<Arc<[Acl]>, AclId, ahash::RandomState>,
    last_id: AclId,
}

impl AclCache {
    /// An empty cache whose tables hash with `state` (the tree's seed).
    pub fn new(state: &ahash::RandomState) -> AclCache {
        AclCache {
            by_id: HashMap::with_hasher(state.clone()),
            by_list: HashMap::with_hasher(state.clone()),
            last_id: 0,
        }
    }

    /// The list behind an index. An unknown index is a corrupt snapshot or a bug: it reads as the open
    /// list only for -1, as ZooKeeper does.
    pub fn get(&self, id: AclId) -> &Arc<[Acl]> {
        if id == OPEN_ACL_ID {
            return &OPEN_ACL_UNSAFE;
        }
        &self.by_id.get(&id).unwrap_or_else(|| panic!("ACL index {id} not in the cache")).0
    }

    /// Takes a reference to `acl`, adding it to the cache if new.
    pub fn acquire(&mut self, acl: &[Acl]) -> AclId {
        if let Some(&id) = self.by_list.get(acl) {
            self.by_id.get_mut(&id).expect("cache maps agree").1 += 1;
            return id;
        }
        self.last_id += 1;
        let id = self.last_id;
        let list: Arc<[Acl]> = Arc::from(acl);
        self.by_list.insert(list.clone(), id);
        self.by_id.insert(id, (list, 1));
        id
    }

    /// Drops a reference; the list leaves the cache with its last user.
    pub fn release(&mut self, id: AclId) {
        if id == OPEN_ACL_ID {
            return;
        }
        let entry = self.by_id.get_mut(&id).unwrap_or_else(|| panic!("release of unknown ACL index {id}"));
        assert!(entry.1 > 0, "ACL index {id} released more often than acquired");
        entry.1 -= 1;
        if entry.1 == 0 {
            let (list, _) = self.by_id.remove(&id).expect("present");
            self.by_list.remove(&list);
        }
    }

    /// Adds a list under a given index (snapshot load); references are counted as nodes are attached.
    pub fn insert_with_id(&mut self, id: AclId, acl: Vec<Acl>) {
        let list: Arc<[Acl]> = Arc::from(acl);
        self.by_list.insert(list.clone(), id);
        self.by_id.insert(id, (list, 0));
        self.last_id = self.last_id.max(id);
    }

    /// Counts a reference to an index already present (snapshot load).
    pub fn add_reference(&mut self, id: AclId) {
        if id != OPEN_ACL_ID {
            self.by_id.get_mut(&id).unwrap_or_else(|| panic!("ACL index {id} not in the cache")).1 += 1;
        }
    }

    pub fn contains(&self, id: AclId) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Drops lists no node refers to (after a snapshot load).
    pub fn purge_unused(&mut self) {
        let unused: Vec<AclId> = self.by_id.iter().filter(|(_, (_, refs))| *refs == 0).map(|(id, _)| *id).collect();
        for id in unused {
            let (list, _) = self.by_id.remove(&id).expect("listed");
            self.by_list.remove(&list);
        }
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Every (index, list), for snapshots.
    pub fn iter(&self) -> impl Iterator<Item = (AclId, &[Acl])> {
        self.by_id.iter().map(|(id, (list, _))| (*id, &list[..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_are_shared_and_released() {
        let mut cache = AclCache::new(&crate::tree::HashSeed::FIXED.state());
        let acl = vec![Acl::new(31, "world", "anyone")];
        let a = cache.acquire(&acl);
        let b = cache.acquire(&acl);
        assert_eq!(a, b);
        assert_eq!(a, 1);
        cache.release(a);
        assert_eq!(cache.len(), 1);
        cache.release(b);
        assert!(cache.is_empty());
        assert_eq!(cache.acquire(&acl), 2, "indexes are never reused");
        assert_eq!(cache.get(OPEN_ACL_ID)[0].perms, 31);
    }
}
