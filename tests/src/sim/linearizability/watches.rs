//! ZooKeeper's watch guarantee: a session sees the event for a change before it sees (in any reply)
//! state at or past that change's zxid, and a one-shot watch fires at most once.
//!
//! A watch left by a read at zxid `r` fires on the first change after `r` that concerns it: for a data
//! watch (getData, exists) the node's creation, data change or deletion; for a child watch
//! (getChildren) a child's creation or deletion, or the node's deletion. Several reads leaving the same
//! watch before it fires leave one watch (ZooKeeper's WatchManager keeps a set), and a deletion that
//! fires both a data and a child watch of one session sends one NodeDeleted (the child table skips
//! watchers the data table already notified).
//!
//! A session that reconnected between leaving the watch and seeing the newer state had its watches
//! re-registered with setWatches, which reports a missed change by the node's state at that moment:
//! the event type may differ from the first change's (NodeDeleted for a node changed then deleted),
//! or no event comes at all (an exists watch on a node created and deleted meanwhile, a caveat
//! ZooKeeper documents). Across a reconnection the check only counts events: no more than owed.

use std::collections::{HashMap, HashSet};

use fk_net::client::watch::EventType;
use fk_net::txn::{Txn, TxnBody};

use super::violation::{Violation, ViolationKind};
use crate::sim::history::{History, Op, SessionId, WatchKind, WatchSet, Zxid};

/// The changes the log makes to one path, in zxid order: `(zxid, the event a watch on it gets)`.
type Changes = HashMap<String, Vec<(Zxid, EventType)>>;

/// Checks every recorded watch and event; returns how many events were accounted for.
pub fn check(history: &History, log: &[Txn]) -> Result<usize, Violation> {
    if history.watches().is_empty() && history.watch_events().is_empty() {
        return Ok(0);
    }
    let changes = changes_by_path(log);
    let received = Received::new(history);
    // Each distinct firing a session is owed: (session, path, event type, change zxid).
    let mut owed: HashSet<(SessionId, &str, i32, Zxid)> = HashSet::new();
    for watch in history.watches() {
        let read = history.op(watch.op);
        let Some(armed_at) = read.outcome.zxid() else { continue };
        let Some((zxid, event)) = trigger(&changes, watch, armed_at) else { continue };
        check_delivered(history, &received, watch, (zxid, event))?;
        owed.insert((watch.session_id, watch.path.as_str(), event.as_i32(), zxid));
    }
    check_at_most_once(history, &owed)
}

/// The first change after `armed_at` that fires `watch`.
fn trigger(changes: &Changes, watch: &WatchSet, armed_at: Zxid) -> Option<(Zxid, EventType)> {
    let path_changes = changes.get(&watch.path)?;
    let after = path_changes.partition_point(|(zxid, _)| *zxid <= armed_at);
    path_changes[after..].iter().copied().find(|(_, event)| fires(watch.kind, *event))
}

fn fires(kind: WatchKind, event: EventType) -> bool {
    match kind {
        WatchKind::Data => {
            matches!(event, EventType::NodeCreated | EventType::NodeDataChanged | EventType::NodeDeleted)
        }
        WatchKind::Child => matches!(event, EventType::NodeChildrenChanged | EventType::NodeDeleted),
    }
}

/// What each session received, indexed for [`check_delivered`].
struct Received<'h> {
    /// Per session, its replies in arrival order: `(reply seq, zxid, op)`. The session check has
    /// already found their zxids non-decreasing, so the first reply at or past a zxid is a binary
    /// search away.
    replies: HashMap<SessionId, Vec<(u64, Zxid, &'h Op)>>,
    /// Per session and path, the events in arrival order: `(seq, event type)`.
    events: HashMap<(SessionId, &'h str), Vec<(u64, i32)>>,
    /// Per session, when it (re)connected.
    connections: HashMap<SessionId, Vec<u64>>,
}

impl<'h> Received<'h> {
    fn new(history: &'h History) -> Received<'h> {
        let mut replies: HashMap<SessionId, Vec<(u64, Zxid, &Op)>> = HashMap::new();
        for op in history.ops() {
            if let (Some(done), Some(zxid)) = (op.completed, op.outcome.zxid()) {
                replies.entry(op.session_id).or_default().push((done.seq, zxid, op));
            }
        }
        for list in replies.values_mut() {
            list.sort_by_key(|(seq, _, _)| *seq);
        }
        let mut events: HashMap<(SessionId, &str), Vec<(u64, i32)>> = HashMap::new();
        for e in history.watch_events() {
            events.entry((e.session_id, e.path.as_str())).or_default().push((e.at.seq, e.event_type));
        }
        let mut connections: HashMap<SessionId, Vec<u64>> = HashMap::new();
        for (session, at) in history.connections() {
            connections.entry(*session).or_default().push(at.seq);
        }
        Received { replies, events, connections }
    }
}

/// The event must arrive after the watch was left and before the session's first reply at or past
/// the change's zxid (if it has had one; otherwise the event may still be on its way).
fn check_delivered(
    history: &History,
    received: &Received<'_>,
    watch: &WatchSet,
    change: (Zxid, EventType),
) -> Result<(), Violation> {
    let (zxid, event) = change;
    let read = history.op(watch.op);
    let Some(read_seq) = read.completed.map(|c| c.seq) else { return Ok(()) };
    let Some(session_replies) = received.replies.get(&watch.session_id) else { return Ok(()) };
    let first_newer = session_replies.partition_point(|(_, z, _)| *z < zxid);
    let Some(&(reply_seq, _, reply)) = session_replies.get(first_newer) else { return Ok(()) };
    let connections = received.connections.get(&watch.session_id);
    if connections.into_iter().flatten().any(|&seq| seq > read_seq && seq < reply_seq) {
        return Ok(());
    }
    let events = received.events.get(&(watch.session_id, watch.path.as_str()));
    let delivered = events
        .into_iter()
        .flatten()
        .any(|&(seq, event_type)| event_type == event.as_i32() && seq > read_seq && seq < reply_seq);
    if delivered {
        return Ok(());
    }
    let expected = format!("{} on {} before the reply at zxid {zxid:#x} or later", event.name(), watch.path);
    let seen = format!("no such event before {reply}");
    Err(Violation::new(ViolationKind::WatchEventLate, expected, seen).op(read).op(reply).zxid(zxid))
}

/// A session gets no more events for a path than distinct firings it was owed there (counted per
/// path, not per type: after a reconnection a firing may come as another type).
fn check_at_most_once(history: &History, owed: &HashSet<(SessionId, &str, i32, Zxid)>) -> Result<usize, Violation> {
    let mut owed_count: HashMap<(SessionId, &str), usize> = HashMap::new();
    for (session, path, _, _) in owed {
        *owed_count.entry((*session, path)).or_default() += 1;
    }
    let mut got: HashMap<(SessionId, &str), usize> = HashMap::new();
    for event in history.watch_events() {
        let key = (event.session_id, event.path.as_str());
        let count = got.entry(key).or_default();
        *count += 1;
        let allowed = owed_count.get(&key).copied().unwrap_or(0);
        if *count > allowed {
            let name = EventType::from_i32(event.event_type).map_or("unknown event", EventType::name);
            let expected = format!("at most {allowed} events on {} (one per watch left and fired)", event.path);
            let seen = format!("event number {count} ({name}) at t={}", event.at.time);
            let mut v = Violation::new(ViolationKind::WatchFiredTwice, expected, seen);
            v.session_id = Some(event.session_id);
            return Err(v);
        }
    }
    Ok(history.watch_events().len())
}

/// Every path change the log makes, with the event a watch on that path receives for it.
fn changes_by_path(log: &[Txn]) -> Changes {
    let mut changes = Changes::new();
    for txn in log {
        collect_changes(&txn.body, txn.header.zxid, &mut changes);
    }
    changes
}

fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn collect_changes(body: &TxnBody, zxid: Zxid, changes: &mut Changes) {
    if let TxnBody::Multi(subs) = body {
        // A multi with an error entry changed nothing.
        if !subs.iter().any(|s| matches!(s, TxnBody::Error(_))) {
            for sub in subs {
                collect_changes(sub, zxid, changes);
            }
        }
        return;
    }
    let mut push = |path: &str, event: EventType| changes.entry(path.to_string()).or_default().push((zxid, event));
    match body {
        TxnBody::Create { txn, .. } => {
            push(&txn.path, EventType::NodeCreated);
            push(parent(&txn.path), EventType::NodeChildrenChanged);
        }
        TxnBody::CreateContainer(t) => {
            push(&t.path, EventType::NodeCreated);
            push(parent(&t.path), EventType::NodeChildrenChanged);
        }
        TxnBody::CreateTtl(t) => {
            push(&t.path, EventType::NodeCreated);
            push(parent(&t.path), EventType::NodeChildrenChanged);
        }
        TxnBody::SetData(t) => push(&t.path, EventType::NodeDataChanged),
        TxnBody::Delete { path, .. } => {
            push(path, EventType::NodeDeleted);
            push(parent(path), EventType::NodeChildrenChanged);
        }
        TxnBody::CloseSession { paths_to_delete: Some(paths) } => {
            for path in paths {
                push(path, EventType::NodeDeleted);
                push(parent(path), EventType::NodeChildrenChanged);
            }
        }
        _ => {}
    }
}
