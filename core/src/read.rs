//! Answers the requests a shard serves from the tree without the write pipeline (ZooKeeper's
//! `FinalRequestProcessor` for reads). Pure: tree, request and identity in; reply and the watch to
//! register out.

use fk_engine::tree::DataTree;
use fk_net::client::watch::{AddWatchMode, EventType, WatcherType};
use fk_net::client::*;

use crate::auth::{AuthIds, check_acl};
use crate::watch::{ConnId, WatchKind, WatchTable};

/// A read's reply plus the watch it leaves behind (registered by the caller, which owns the table).
pub struct ReadAnswer {
    pub result: Result<Response, ErrorCode>,
    pub watch: Option<(String, WatchKind)>,
}

impl ReadAnswer {
    fn new(result: Result<Response, ErrorCode>) -> Self {
        ReadAnswer { result, watch: None }
    }
}

/// A read's whole outcome as the client sees it: the reply and the watch events that go out before it.
#[derive(Debug)]
pub struct ReadReply {
    /// The request's xid, or `xid::PING` for a ping.
    pub xid: i32,
    pub err: ErrorCode,
    pub response: Response,
    /// Events SetWatches fires at once (the watched nodes changed since the client's zxid).
    pub events: Vec<(EventType, String)>,
}

/// Answers any request a session's reads are answered with locally (every kind but the writes, sync,
/// closeSession and SASL exchanges), applying the watches it sets, checks or removes to `watches` under
/// connection `conn`. One copy for the shard and the simulator.
pub fn answer(reader: &Reader<'_>, conn: ConnId, watches: &mut WatchTable, xid: i32, request: &Request) -> ReadReply {
    let reply = |err, response| ReadReply { xid, err, response, events: Vec::new() };
    let answer = match request {
        Request::Ping => return ReadReply { xid: fk_net::client::xid::PING, ..reply(ErrorCode::Ok, Response::Empty) },
        Request::Exists(r) => reader.exists(r),
        Request::GetData(r) => reader.get_data(r),
        Request::GetChildren(r) => reader.get_children(r, false),
        Request::GetChildren2(r) => reader.get_children(r, true),
        Request::GetAcl(r) => reader.get_acl(r),
        Request::GetEphemerals(r) => reader.get_ephemerals(r),
        Request::GetAllChildrenNumber(r) => reader.get_all_children_number(r),
        Request::MultiRead(ops) => reader.multi_read(ops),
        Request::WhoAmI => {
            let client_info = reader.auth.client_infos();
            return reply(ErrorCode::Ok, Response::WhoAmI(WhoAmIResponse { client_info }));
        }
        Request::SetWatches(r) => {
            let events = reader.set_watches(r, conn, watches);
            return ReadReply { events, ..reply(ErrorCode::Ok, Response::Empty) };
        }
        Request::CheckWatches(r) | Request::RemoveWatches(r) => {
            let Some(watcher_type) = WatcherType::from_i32(r.watcher_type) else {
                return reply(ErrorCode::MarshallingError, Response::Empty);
            };
            let found = match request {
                Request::RemoveWatches(_) => watches.remove(conn, &r.path, watcher_type),
                _ => watches.contains(conn, &r.path, watcher_type),
            };
            return reply(if found { ErrorCode::Ok } else { ErrorCode::NoWatcher }, Response::Empty);
        }
        Request::AddWatch(r) => {
            let kind = match AddWatchMode::from_i32(r.mode) {
                Some(AddWatchMode::Persistent) => WatchKind::Persistent,
                Some(AddWatchMode::PersistentRecursive) => WatchKind::PersistentRecursive,
                None => return reply(ErrorCode::MarshallingError, Response::Empty),
            };
            watches.add(conn, &r.path, kind);
            return reply(ErrorCode::Ok, Response::AddWatch(ErrorResponse { err: 0 }));
        }
        // Without a SASL provider configured, ZooKeeper answers every token with a null one.
        Request::Sasl(_) => return reply(ErrorCode::Ok, Response::Sasl(SaslRequest { token: None })),
        Request::Auth(_)
        | Request::Write(_)
        | Request::Multi(_)
        | Request::Sync(_)
        | Request::CloseSession
        | Request::Reconfig(_)
        | Request::DeleteContainer(_) => unreachable!("{:?} is not answered locally", request.op_code()),
    };
    if let Some((path, kind)) = answer.watch {
        watches.add(conn, &path, kind);
    }
    match answer.result {
        Ok(response) => reply(ErrorCode::Ok, response),
        Err(err) => reply(err, Response::Empty),
    }
}

/// Identity and settings a read is checked against.
pub struct Reader<'a> {
    pub tree: &'a DataTree,
    pub auth: &'a AuthIds,
    pub session_id: i64,
    pub skip_acl: bool,
}

impl Reader<'_> {
    fn readable(&self, node: &fk_engine::tree::Node, perm: i32) -> Result<(), ErrorCode> {
        if check_acl(self.tree.acl(node), self.auth, perm, self.skip_acl) { Ok(()) } else { Err(ErrorCode::NoAuth) }
    }

    /// ZooKeeper's DataTree keys the root under "" as well as "/", and reads do not validate paths: a
    /// read of "" is a read of the root (any other malformed path simply matches no node).
    fn lookup(&self, path: &str) -> Option<&fk_engine::tree::Node> {
        self.tree.get(if path.is_empty() { "/" } else { path })
    }

    fn node(&self, path: &str) -> Result<&fk_engine::tree::Node, ErrorCode> {
        self.lookup(path).ok_or(ErrorCode::NoNode)
    }

    /// exists: a watch is left even when the node is missing (it fires on creation).
    pub fn exists(&self, r: &PathWatchRequest) -> ReadAnswer {
        if r.path.contains('\0') {
            return ReadAnswer::new(Err(ErrorCode::BadArguments));
        }
        let result = match self.lookup(&r.path) {
            Some(node) => self.readable(node, perms::READ).map(|()| Response::Stat(self.tree.client_stat(node))),
            None => Err(ErrorCode::NoNode),
        };
        let watch = (r.watch && result != Err(ErrorCode::NoAuth)).then(|| (r.path.clone(), WatchKind::Data));
        ReadAnswer { result, watch }
    }

    pub fn get_data(&self, r: &PathWatchRequest) -> ReadAnswer {
        let result = self.node(&r.path).and_then(|node| {
            self.readable(node, perms::READ)?;
            Ok(Response::GetData(GetDataResponse {
                data: node.data.as_deref().map(<[u8]>::to_vec),
                stat: self.tree.client_stat(node),
            }))
        });
        let watch = (r.watch && result.is_ok()).then(|| (r.path.clone(), WatchKind::Data));
        ReadAnswer { result, watch }
    }

    /// getChildren (with_stat false) and getChildren2.
    pub fn get_children(&self, r: &PathWatchRequest, with_stat: bool) -> ReadAnswer {
        let result = self.node(&r.path).and_then(|node| {
            self.readable(node, perms::READ)?;
            let children: Vec<String> = self.tree.children(node).map(str::to_owned).collect();
            Ok(if with_stat {
                Response::GetChildren2(GetChildren2Response { children, stat: self.tree.client_stat(node) })
            } else {
                Response::GetChildren(GetChildrenResponse { children })
            })
        });
        let watch = (r.watch && result.is_ok()).then(|| (r.path.clone(), WatchKind::Child));
        ReadAnswer { result, watch }
    }

    /// getACL needs READ or ADMIN; without ADMIN, digest ids are masked to `user:x` (3.8 behaviour).
    pub fn get_acl(&self, r: &PathRequest) -> ReadAnswer {
        ReadAnswer::new(self.node(&r.path).and_then(|node| {
            self.readable(node, perms::READ | perms::ADMIN)?;
            let mut acl = self.tree.acl(node).to_vec();
            if self.readable(node, perms::ADMIN).is_err() {
                for entry in acl.iter_mut().filter(|a| a.id.scheme == "digest") {
                    let user = entry.id.id.split(':').next().unwrap_or_default();
                    entry.id.id = format!("{user}:x");
                }
            }
            Ok(Response::GetAcl(GetAclResponse { acl, stat: self.tree.client_stat(node) }))
        }))
    }

    pub fn get_all_children_number(&self, r: &PathRequest) -> ReadAnswer {
        ReadAnswer::new(self.node(&r.path).and_then(|node| {
            self.readable(node, perms::READ)?;
            // ZooKeeper counts the keys under the prefix: for "" that includes the root's "/" key.
            let root_key = usize::from(r.path.is_empty());
            let total_number = (self.tree.count_descendants(&node.path) + root_key) as i32;
            Ok(Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number }))
        }))
    }

    /// The session's ephemerals whose path starts with the prefix (a string prefix, not a subtree).
    pub fn get_ephemerals(&self, r: &PathRequest) -> ReadAnswer {
        let prefix = r.path.trim();
        let all = prefix.is_empty() || prefix == "/";
        let ephemerals = self
            .tree
            .ephemerals_of(self.session_id)
            .filter(|p| all || p.starts_with(r.path.as_str()))
            .map(str::to_owned)
            .collect();
        ReadAnswer::new(Ok(Response::GetEphemerals(GetEphemeralsResponse { ephemerals })))
    }

    /// multiRead: each op answered on its own (not atomic); no watches are set.
    pub fn multi_read(&self, ops: &[ReadOp]) -> ReadAnswer {
        let results = ops
            .iter()
            .map(|op| {
                let answer = match op {
                    ReadOp::GetData(r) => self.get_data(&PathWatchRequest { watch: false, ..r.clone() }),
                    ReadOp::GetChildren(r) => self.get_children(&PathWatchRequest { watch: false, ..r.clone() }, false),
                };
                match answer.result {
                    Ok(Response::GetData(d)) => MultiResult::GetData(d.data, d.stat),
                    Ok(Response::GetChildren(c)) => MultiResult::GetChildren(c.children),
                    Ok(other) => unreachable!("multiRead op answered with {other:?}"),
                    Err(code) => MultiResult::Error(code.as_i32()),
                }
            })
            .collect();
        ReadAnswer::new(Ok(Response::Multi(results)))
    }

    /// setWatches/setWatches2 after a reconnect: events for what changed since `relative_zxid` are
    /// returned (to be sent before the reply), the rest are registered.
    pub fn set_watches(&self, r: &SetWatches2, conn: ConnId, table: &mut WatchTable) -> Vec<(EventType, String)> {
        let mut events = Vec::new();
        for path in &r.data_watches {
            match self.lookup(path) {
                None => events.push((EventType::NodeDeleted, path.clone())),
                Some(n) if n.stat.mzxid > r.relative_zxid => events.push((EventType::NodeDataChanged, path.clone())),
                Some(_) => table.add(conn, path, WatchKind::Data),
            }
        }
        for path in &r.exist_watches {
            match self.lookup(path) {
                Some(_) => events.push((EventType::NodeCreated, path.clone())),
                None => table.add(conn, path, WatchKind::Data),
            }
        }
        for path in &r.child_watches {
            match self.lookup(path) {
                None => events.push((EventType::NodeDeleted, path.clone())),
                Some(n) if n.stat.pzxid > r.relative_zxid => {
                    events.push((EventType::NodeChildrenChanged, path.clone()))
                }
                Some(_) => table.add(conn, path, WatchKind::Child),
            }
        }
        for path in &r.persistent_watches {
            table.add(conn, path, WatchKind::Persistent);
        }
        for path in &r.persistent_recursive_watches {
            table.add(conn, path, WatchKind::PersistentRecursive);
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> DataTree {
        let mut t = DataTree::new(fk_engine::tree::TreeOptions::fixed_seed(false));
        let digest = Acl::new(perms::ALL, "digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=");
        let mixed = [Acl::new(perms::READ, "world", "anyone"), digest.clone()];
        t.create_node("/a", Some(b"x"), &[Acl::new(31, "world", "anyone")], 0, 1, 1, 0).unwrap();
        t.create_node("/a/b", None, &[Acl::new(31, "world", "anyone")], 7, 1, 2, 0).unwrap();
        t.create_node("/m", None, &mixed, 0, 2, 3, 0).unwrap();
        t.create_node("/secret", None, &[digest], 0, 3, 4, 0).unwrap();
        t
    }

    #[test]
    fn reads_check_existence_then_acl() {
        let t = tree();
        let auth = AuthIds::for_peer("127.0.0.1".parse().unwrap());
        let reader = Reader { tree: &t, auth: &auth, session_id: 7, skip_acl: false };
        let get = |path: &str| reader.get_data(&PathWatchRequest { path: path.into(), watch: true });
        assert!(matches!(get("/a").result, Ok(Response::GetData(ref d)) if d.data.as_deref() == Some(&b"x"[..])));
        assert_eq!(get("/nope").result, Err(ErrorCode::NoNode));
        assert!(get("/nope").watch.is_none());
        assert_eq!(get("/secret").result, Err(ErrorCode::NoAuth));
        let exists = reader.exists(&PathWatchRequest { path: "/nope".into(), watch: true });
        assert_eq!(exists.result, Err(ErrorCode::NoNode));
        assert_eq!(exists.watch, Some(("/nope".into(), WatchKind::Data)));
        assert_eq!(
            reader.get_all_children_number(&PathRequest { path: "/".into() }).result,
            Ok(Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number: 7 }))
        );
    }

    #[test]
    fn get_acl_masks_digests_without_admin() {
        let t = tree();
        let auth = AuthIds::for_peer("127.0.0.1".parse().unwrap());
        let reader = Reader { tree: &t, auth: &auth, session_id: 7, skip_acl: false };
        let Ok(Response::GetAcl(r)) = reader.get_acl(&PathRequest { path: "/m".into() }).result else { panic!() };
        assert_eq!(r.acl[1].id.id, "alice:x");
        assert_eq!(reader.get_acl(&PathRequest { path: "/secret".into() }).result, Err(ErrorCode::NoAuth));
    }

    #[test]
    fn ephemerals_filter_by_string_prefix() {
        let t = tree();
        let auth = AuthIds::for_peer("127.0.0.1".parse().unwrap());
        let reader = Reader { tree: &t, auth: &auth, session_id: 7, skip_acl: false };
        let get = |prefix: &str| match reader.get_ephemerals(&PathRequest { path: prefix.into() }).result {
            Ok(Response::GetEphemerals(e)) => e.ephemerals,
            other => panic!("{other:?}"),
        };
        assert_eq!(get("/"), vec!["/a/b"]);
        assert_eq!(get("/a/"), vec!["/a/b"]);
        assert!(get("/b").is_empty());
    }
}
