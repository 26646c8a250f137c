//! Watch-related enums (reference §8).

use super::opcode::wire_enum;

wire_enum! {
    /// `Watcher.Event.EventType`: what changed. The server sends only the first four.
    pub enum EventType {
        None = -1 => "None",
        NodeCreated = 1 => "NodeCreated",
        NodeDeleted = 2 => "NodeDeleted",
        NodeDataChanged = 3 => "NodeDataChanged",
        NodeChildrenChanged = 4 => "NodeChildrenChanged",
    }
}

/// `KeeperState.SyncConnected`: the state every server-sent notification carries.
pub const STATE_SYNC_CONNECTED: i32 = 3;

wire_enum! {
    /// `WatcherType` of checkWatches/removeWatches. 3.9 adds Persistent (4) and PersistentRecursive (5).
    pub enum WatcherType {
        Children = 1 => "Children",
        Data = 2 => "Data",
        Any = 3 => "Any",
        Persistent = 4 => "Persistent",
        PersistentRecursive = 5 => "PersistentRecursive",
    }
}

wire_enum! {
    /// `AddWatchMode` of addWatch.
    pub enum AddWatchMode {
        Persistent = 0 => "PERSISTENT",
        PersistentRecursive = 1 => "PERSISTENT_RECURSIVE",
    }
}
