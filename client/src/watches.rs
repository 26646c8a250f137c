//! Watch events as callers see them, and the client-side record of the watches the server holds for
//! this session (re-registered with setWatches2 after a reconnect, as Java's `ZKWatchManager`).

use std::collections::BTreeSet;
use std::fmt;

use fk_net::client::SetWatches2;
use fk_net::client::watch::{EventType, WatcherType};

/// `Watcher.Event.KeeperState`: the connection state an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeeperState {
    Disconnected,
    SyncConnected,
    AuthFailed,
    Expired,
    Closed,
}

impl KeeperState {
    pub fn name(self) -> &'static str {
        match self {
            KeeperState::Disconnected => "Disconnected",
            KeeperState::SyncConnected => "SyncConnected",
            KeeperState::AuthFailed => "AuthFailed",
            KeeperState::Expired => "Expired",
            KeeperState::Closed => "Closed",
        }
    }
}

/// One event: a znode change (state SyncConnected) or a connection state change (type None, no path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchedEvent {
    pub event_type: EventType,
    pub state: KeeperState,
    /// The client path (chroot stripped); `None` for state changes.
    pub path: Option<String>,
}

impl WatchedEvent {
    pub(crate) fn state_change(state: KeeperState) -> WatchedEvent {
        WatchedEvent { event_type: EventType::None, state, path: None }
    }
}

/// Java's `WatchedEvent.toString()`, which zkCli prints after `WATCHER::`.
impl fmt::Display for WatchedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.as_deref().unwrap_or("null");
        write!(f, "WatchedEvent state:{} type:{} path:{}", self.state.name(), self.event_type.name(), path)
    }
}

/// Which watch a successful read left on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchKind {
    Data,
    /// exists on a missing node.
    Exist,
    Child,
    Persistent,
    PersistentRecursive,
}

/// The server paths this session watches, by kind.
#[derive(Debug, Default)]
pub(crate) struct WatchRegistry {
    data: BTreeSet<String>,
    exist: BTreeSet<String>,
    child: BTreeSet<String>,
    persistent: BTreeSet<String>,
    recursive: BTreeSet<String>,
}

impl WatchRegistry {
    fn set(&mut self, kind: WatchKind) -> &mut BTreeSet<String> {
        match kind {
            WatchKind::Data => &mut self.data,
            WatchKind::Exist => &mut self.exist,
            WatchKind::Child => &mut self.child,
            WatchKind::Persistent => &mut self.persistent,
            WatchKind::PersistentRecursive => &mut self.recursive,
        }
    }

    pub fn add(&mut self, kind: WatchKind, path: &str) {
        self.set(kind).insert(path.to_owned());
    }

    /// A one-shot watch is gone once it fired (the server dropped it too); persistent ones stay.
    pub fn fired(&mut self, event_type: EventType, path: &str) {
        let kinds: &[WatchKind] = match event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => &[WatchKind::Data, WatchKind::Exist],
            EventType::NodeChildrenChanged => &[WatchKind::Child],
            EventType::NodeDeleted => &[WatchKind::Data, WatchKind::Exist, WatchKind::Child],
            EventType::None => &[],
        };
        for kind in kinds {
            self.set(*kind).remove(path);
        }
    }

    /// Forgets the watches removeWatches took away; true if there was any (the Java client refuses a
    /// removal of watches it does not hold with NoWatcher before asking the server).
    pub fn remove(&mut self, path: &str, watcher_type: WatcherType) -> bool {
        let kinds: &[WatchKind] = match watcher_type {
            WatcherType::Children => &[WatchKind::Child],
            WatcherType::Data => &[WatchKind::Data, WatchKind::Exist],
            WatcherType::Persistent => &[WatchKind::Persistent],
            WatcherType::PersistentRecursive => &[WatchKind::PersistentRecursive],
            WatcherType::Any => &[
                WatchKind::Data,
                WatchKind::Exist,
                WatchKind::Child,
                WatchKind::Persistent,
                WatchKind::PersistentRecursive,
            ],
        };
        let mut removed = false;
        for kind in kinds {
            removed |= self.set(*kind).remove(path);
        }
        removed
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
    }

    /// The setWatches2 request that restores every watch after a reconnect; the server fires at once
    /// the ones whose node changed after `relative_zxid`.
    pub fn set_watches(&self, relative_zxid: i64) -> SetWatches2 {
        let list = |set: &BTreeSet<String>| set.iter().cloned().collect();
        SetWatches2 {
            relative_zxid,
            data_watches: list(&self.data),
            exist_watches: list(&self.exist),
            child_watches: list(&self.child),
            persistent_watches: list(&self.persistent),
            persistent_recursive_watches: list(&self.recursive),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shot_watches_go_when_they_fire() {
        // (watch kind registered, event that fires, still registered afterwards)
        let cases = [
            (WatchKind::Data, EventType::NodeDataChanged, false),
            (WatchKind::Exist, EventType::NodeCreated, false),
            (WatchKind::Child, EventType::NodeDataChanged, true),
            (WatchKind::Child, EventType::NodeChildrenChanged, false),
            (WatchKind::Child, EventType::NodeDeleted, false),
            (WatchKind::Persistent, EventType::NodeDeleted, true),
            (WatchKind::PersistentRecursive, EventType::NodeDataChanged, true),
        ];
        for (kind, event, stays) in cases {
            let mut registry = WatchRegistry::default();
            registry.add(kind, "/a");
            registry.fired(event, "/a");
            assert_eq!(!registry.is_empty(), stays, "{kind:?} after {event:?}");
        }
    }

    #[test]
    fn set_watches_lists_every_kind() {
        let mut registry = WatchRegistry::default();
        registry.add(WatchKind::Data, "/d");
        registry.add(WatchKind::Persistent, "/p");
        registry.add(WatchKind::PersistentRecursive, "/r");
        let request = registry.set_watches(7);
        assert_eq!(request.relative_zxid, 7);
        assert_eq!(request.data_watches, ["/d"]);
        assert_eq!(request.persistent_watches, ["/p"]);
        assert_eq!(request.persistent_recursive_watches, ["/r"]);
        assert!(registry.remove("/d", WatcherType::Any));
        assert!(!registry.remove("/d", WatcherType::Data));
    }

    #[test]
    fn events_print_as_java() {
        let event = WatchedEvent {
            event_type: EventType::NodeDataChanged,
            state: KeeperState::SyncConnected,
            path: Some("/w".into()),
        };
        assert_eq!(event.to_string(), "WatchedEvent state:SyncConnected type:NodeDataChanged path:/w");
        let state = WatchedEvent::state_change(KeeperState::Disconnected);
        assert_eq!(state.to_string(), "WatchedEvent state:Disconnected type:None path:null");
    }
}
