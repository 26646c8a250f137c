//! Watches of one shard's connections (ZooKeeper's two `WatchManager`s, data and child).
//!
//! A persistent watch sits in both managers in ZooKeeper and a recursive one only in the data manager;
//! removing watches by type removes them from one manager only. We keep the same halves, so that
//! removeWatches/checkWatches behave exactly as ZooKeeper's do.

use std::collections::{HashMap, HashSet};

use fk_engine::tree::{HashSeed, WatchTrigger};
use fk_net::client::watch::{EventType, WatcherType};
use fk_net::path;

/// A connection, unique within its shard for the life of the process.
pub type ConnId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Slot {
    /// One-shot data and exists watches (data manager).
    Data,
    /// One-shot child watches (child manager).
    Child,
    /// A persistent watch's half in the data manager.
    PersistentData,
    /// A persistent watch's half in the child manager.
    PersistentChild,
    /// Persistent-recursive (data manager only).
    Recursive,
}

const SLOTS: [Slot; 5] = [Slot::Data, Slot::Child, Slot::PersistentData, Slot::PersistentChild, Slot::Recursive];

impl WatchTable {
    pub fn new(seed: HashSeed) -> WatchTable {
        WatchTable {
            by_path: Map::with_hasher(seed.state()),
            by_conn: Map::with_hasher(seed.state()),
            recursive_count: 0,
            seed,
        }
    }

    fn set<T>(&self) -> HashSet<T, ahash::RandomState> {
        HashSet::with_hasher(self.seed.state())
    }
}

impl Slot {
    fn is_one_shot(self) -> bool {
        matches!(self, Slot::Data | Slot::Child)
    }

    fn in_data_manager(self) -> bool {
        matches!(self, Slot::Data | Slot::PersistentData | Slot::Recursive)
    }
}

/// What a client asked to watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    /// getData / exists.
    Data,
    /// getChildren.
    Child,
    Persistent,
    PersistentRecursive,
}

type Map<K, V> = HashMap<K, V, ahash::RandomState>;

/// The tables' hash seed is injected, as the tree's: a server draws a random one (clients cannot aim
/// colliding paths at it), a simulation passes its own, so that what iterates the tables replays.
#[derive(Debug)]
pub struct WatchTable {
    by_path: Map<(Slot, Box<str>), HashSet<ConnId, ahash::RandomState>>,
    by_conn: Map<ConnId, HashSet<(Slot, Box<str>), ahash::RandomState>>,
    recursive_count: usize,
    seed: HashSeed,
}

/// One notification to send: (connection, event type, path).
pub type Notification = (ConnId, EventType, String);

impl WatchTable {
    pub fn add(&mut self, conn: ConnId, path: &str, kind: WatchKind) {
        let slots: &[Slot] = match kind {
            WatchKind::Data => &[Slot::Data],
            WatchKind::Child => &[Slot::Child],
            WatchKind::Persistent => &[Slot::PersistentData, Slot::PersistentChild],
            WatchKind::PersistentRecursive => &[Slot::Recursive],
        };
        for &slot in slots {
            self.insert(conn, slot, path);
        }
    }

    fn insert(&mut self, conn: ConnId, slot: Slot, path: &str) {
        let (by_path, by_conn) = (self.set(), self.set());
        if self.by_path.entry((slot, path.into())).or_insert(by_path).insert(conn) {
            self.by_conn.entry(conn).or_insert(by_conn).insert((slot, path.into()));
            if slot == Slot::Recursive {
                self.recursive_count += 1;
            }
        }
    }

    fn take(&mut self, conn: ConnId, slot: Slot, path: &str) -> bool {
        let key = (slot, Box::<str>::from(path));
        let Some(conns) = self.by_path.get_mut(&key) else { return false };
        if !conns.remove(&conn) {
            return false;
        }
        if conns.is_empty() {
            self.by_path.remove(&key);
        }
        if let Some(paths) = self.by_conn.get_mut(&conn) {
            paths.remove(&key);
            if paths.is_empty() {
                self.by_conn.remove(&conn);
            }
        }
        if slot == Slot::Recursive {
            self.recursive_count -= 1;
        }
        true
    }

    fn has(&self, conn: ConnId, slot: Slot, path: &str) -> bool {
        self.by_path.get(&(slot, path.into())).is_some_and(|c| c.contains(&conn))
    }

    /// Fires the watches `trigger` concerns, appending one notification per connection (a connection
    /// watching the same path several ways hears of a change once, as in ZooKeeper).
    pub fn trigger(&mut self, trigger: &WatchTrigger, out: &mut Vec<Notification>) {
        let slots: &[Slot] = match trigger.event {
            EventType::NodeCreated | EventType::NodeDataChanged => &[Slot::Data, Slot::PersistentData, Slot::Recursive],
            EventType::NodeDeleted => &SLOTS,
            EventType::NodeChildrenChanged => &[Slot::Child, Slot::PersistentChild],
            EventType::None => &[],
        };
        let start = out.len();
        let notify = |conn: ConnId, out: &mut Vec<Notification>| {
            if !out[start..].iter().any(|(c, _, _)| *c == conn) {
                out.push((conn, trigger.event, trigger.path.clone()));
            }
        };
        for &slot in slots {
            let key = (slot, Box::<str>::from(trigger.path.as_str()));
            let conns: Vec<ConnId> = match self.by_path.get(&key) {
                Some(conns) => conns.iter().copied().collect(),
                None => continue,
            };
            for conn in conns {
                notify(conn, out);
                if slot.is_one_shot() {
                    self.take(conn, slot, &trigger.path);
                }
            }
        }
        if self.recursive_count > 0 && slots.contains(&Slot::Recursive) {
            for ancestor in path::ancestors(&trigger.path) {
                if let Some(conns) = self.by_path.get(&(Slot::Recursive, ancestor.into())) {
                    for &conn in conns {
                        notify(conn, out);
                    }
                }
            }
        }
    }

    fn slots_for_type(watcher_type: WatcherType) -> &'static [Slot] {
        match watcher_type {
            WatcherType::Children => &[Slot::Child, Slot::PersistentChild],
            WatcherType::Data => &[Slot::Data, Slot::PersistentData, Slot::Recursive],
            WatcherType::Any => &SLOTS,
            WatcherType::Persistent => &[Slot::PersistentData, Slot::PersistentChild],
            WatcherType::PersistentRecursive => &[Slot::Recursive],
        }
    }

    /// removeWatches: true if anything was removed (else the client gets NoWatcher).
    pub fn remove(&mut self, conn: ConnId, path: &str, watcher_type: WatcherType) -> bool {
        let mut removed = false;
        for &slot in Self::slots_for_type(watcher_type) {
            removed |= self.take(conn, slot, path);
        }
        removed
    }

    /// checkWatches.
    pub fn contains(&self, conn: ConnId, path: &str, watcher_type: WatcherType) -> bool {
        Self::slots_for_type(watcher_type).iter().any(|&slot| self.has(conn, slot, path))
    }

    /// Drops every watch of a closed connection.
    pub fn remove_connection(&mut self, conn: ConnId) {
        let Some(keys) = self.by_conn.remove(&conn) else { return };
        for key in keys {
            if key.0 == Slot::Recursive {
                self.recursive_count -= 1;
            }
            if let Some(conns) = self.by_path.get_mut(&key) {
                conns.remove(&conn);
                if conns.is_empty() {
                    self.by_path.remove(&key);
                }
            }
        }
    }

    /// Connections watching, for the `wch*` 4lw commands.
    pub fn connections(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.by_conn.keys().copied()
    }

    /// Watch entries as ZooKeeper counts them: (path, connection) pairs per manager.
    pub fn entries(&self) -> impl Iterator<Item = (&str, ConnId, bool)> + '_ {
        self.by_path
            .iter()
            .flat_map(|((slot, path), conns)| conns.iter().map(move |c| (&**path, *c, slot.in_data_manager())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fire(table: &mut WatchTable, event: EventType, path: &str) -> Vec<Notification> {
        let mut out = Vec::new();
        table.trigger(&WatchTrigger { event, path: path.into() }, &mut out);
        out
    }

    #[test]
    fn one_shot_watches_fire_once() {
        let mut t = WatchTable::new(HashSeed::FIXED);
        t.add(1, "/a", WatchKind::Data);
        t.add(1, "/a", WatchKind::Child);
        assert_eq!(fire(&mut t, EventType::NodeDeleted, "/a"), vec![(1, EventType::NodeDeleted, "/a".into())]);
        assert!(fire(&mut t, EventType::NodeDeleted, "/a").is_empty());
        assert_eq!(t.connections().count(), 0);
    }

    #[test]
    fn persistent_and_recursive_watches_stay() {
        let mut t = WatchTable::new(HashSeed::FIXED);
        t.add(1, "/a", WatchKind::Persistent);
        t.add(2, "/a", WatchKind::PersistentRecursive);
        assert_eq!(
            fire(&mut t, EventType::NodeChildrenChanged, "/a"),
            vec![(1, EventType::NodeChildrenChanged, "/a".into())]
        );
        assert_eq!(fire(&mut t, EventType::NodeCreated, "/a/b/c"), vec![(2, EventType::NodeCreated, "/a/b/c".into())]);
        assert_eq!(fire(&mut t, EventType::NodeDataChanged, "/a").len(), 2);
        assert_eq!(fire(&mut t, EventType::NodeDataChanged, "/a").len(), 2);
        assert!(fire(&mut t, EventType::NodeChildrenChanged, "/a/b").is_empty(), "recursive gets no child events");
    }

    #[test]
    fn removal_by_type_follows_zookeepers_managers() {
        let mut t = WatchTable::new(HashSeed::FIXED);
        t.add(1, "/a", WatchKind::Persistent);
        assert!(t.contains(1, "/a", WatcherType::Children));
        assert!(t.remove(1, "/a", WatcherType::Children));
        assert!(!t.contains(1, "/a", WatcherType::Children));
        assert!(t.contains(1, "/a", WatcherType::Data), "the data half of the persistent watch remains");
        assert!(!t.remove(1, "/b", WatcherType::Any));
        t.add(1, "/r", WatchKind::PersistentRecursive);
        t.remove_connection(1);
        assert!(fire(&mut t, EventType::NodeCreated, "/r/x").is_empty());
        assert_eq!(t.recursive_count, 0);
    }
}
