//! A small model of ZooKeeper 3.8's data tree, written from ZooKeeper's behaviour and sharing no code
//! with `fk_engine` (the checker must not trust the code it checks).
//!
//! Two jobs: [`Model::expect`] says what a write request should turn into at the current state (the
//! [`Effect`] its txn must carry, or the error code, in the order ZooKeeper's PrepRequestProcessor
//! checks them), and [`Model::apply`] applies a logged txn, refusing one the data model forbids.
//! [`Model::read`] answers a read at the current state.
//!
//! Checked against ZooKeeper 3.8 itself (`fidelity_tests`): a client sees `cversion` as twice the
//! number of child creations minus the children present (`DataNode.copyStat`), a delete moves the
//! parent's pzxid but not its cversion, sequential names count creations only, and a path whose parent
//! does not exist (`/a//b`, `/a/./b`, `/a/b/`) is NoNode before it is BadArguments.
//!
//! Not modelled: ACLs (every node is world-open), quotas, `/zookeeper/config` contents (reconfig), the
//! session owner (SessionMoved). Node data is compared as bytes: a null and an empty value are equal.

use std::collections::{BTreeSet, HashMap, HashSet};

use fk_net::client::{ErrorCode, Stat};
use fk_net::txn::{Txn, TxnBody};

use crate::sim::history::{OpKind, OpResult, SessionId, Zxid};

/// ZooKeeper's `EphemeralType.CONTAINER_EPHEMERAL_OWNER`.
const CONTAINER_OWNER: i64 = i64::MIN;
/// ZooKeeper's `EphemeralType` extended mask: an owner with this top byte is a TTL node.
const TTL_OWNER_MASK: i64 = 0xff << 56;
/// Nodes every ZooKeeper tree starts with; deleting one is BadArguments (`isSpecialPath`).
const SYSTEM_PATHS: [&str; 4] = ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

/// A state change: what a logged txn does, and what the model expects a request's txn to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Create {
        path: String,
        data: Vec<u8>,
        ephemeral_owner: i64,
        parent_cversion: i32,
    },
    /// `version` is the node's version after the change (SetDataTxn carries the new version).
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    Delete {
        path: String,
    },
    Check {
        path: String,
    },
    SetAcl {
        path: String,
        version: i32,
    },
    Multi(Vec<Effect>),
    /// `paths` None: the 3.4 body, "every ephemeral of the session".
    CloseSession {
        paths: Option<Vec<String>>,
    },
    /// createSession, reconfig: nothing the model tracks.
    Nothing,
}

impl Effect {
    /// What a logged txn does, or the error code of an error txn (a multi with an error entry: the
    /// first code that is not OK or RuntimeInconsistency, as ZooKeeper's reply reports it).
    pub fn from_txn(txn: &Txn) -> Result<Effect, ErrorCode> {
        from_body(&txn.body, txn.header.client_id)
    }
}

/// Shows data as text where it is printable, else as its length: a failing seed's report stays readable.
struct Shown<'d>(&'d [u8]);

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match std::str::from_utf8(self.0) {
            Ok(text) if text.chars().all(|c| !c.is_control()) => write!(f, "{text:?}"),
            _ => write!(f, "<{} bytes>", self.0.len()),
        }
    }
}

impl std::fmt::Display for Effect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Effect::Create { path, data, ephemeral_owner, parent_cversion } => write!(
                f,
                "create {path} = {} (owner {ephemeral_owner:#x}, parent cversion to {parent_cversion})",
                Shown(data)
            ),
            Effect::SetData { path, data, version } => {
                write!(f, "setData {path} = {} (version to {version})", Shown(data))
            }
            Effect::Delete { path } => write!(f, "delete {path}"),
            Effect::Check { path } => write!(f, "check {path}"),
            Effect::SetAcl { path, version } => write!(f, "setACL {path} (aversion to {version})"),
            Effect::Multi(subs) => {
                write!(f, "multi[")?;
                for (i, sub) in subs.iter().enumerate() {
                    write!(f, "{}{sub}", if i == 0 { "" } else { "; " })?;
                }
                write!(f, "]")
            }
            Effect::CloseSession { paths: Some(paths) } => write!(f, "closeSession deleting {paths:?}"),
            Effect::CloseSession { paths: None } => write!(f, "closeSession (3.4 body)"),
            Effect::Nothing => write!(f, "no tree change"),
        }
    }
}

fn error_code(err: i32) -> ErrorCode {
    ErrorCode::from_i32(err).unwrap_or(ErrorCode::SystemError)
}

fn from_body(body: &TxnBody, session: SessionId) -> Result<Effect, ErrorCode> {
    let data = |d: &Option<Vec<u8>>| d.clone().unwrap_or_default();
    Ok(match body {
        TxnBody::Create { txn, .. } => Effect::Create {
            path: txn.path.clone(),
            data: data(&txn.data),
            ephemeral_owner: if txn.ephemeral { session } else { 0 },
            parent_cversion: txn.parent_cversion,
        },
        TxnBody::CreateContainer(t) => Effect::Create {
            path: t.path.clone(),
            data: data(&t.data),
            ephemeral_owner: CONTAINER_OWNER,
            parent_cversion: t.parent_cversion,
        },
        TxnBody::CreateTtl(t) => Effect::Create {
            path: t.path.clone(),
            data: data(&t.data),
            ephemeral_owner: TTL_OWNER_MASK | t.ttl,
            parent_cversion: t.parent_cversion,
        },
        TxnBody::Delete { path, .. } => Effect::Delete { path: path.clone() },
        TxnBody::SetData(t) => Effect::SetData { path: t.path.clone(), data: data(&t.data), version: t.version },
        TxnBody::SetAcl(t) => Effect::SetAcl { path: t.path.clone(), version: t.version },
        TxnBody::Check(t) => Effect::Check { path: t.path.clone() },
        TxnBody::CloseSession { paths_to_delete } => Effect::CloseSession { paths: paths_to_delete.clone() },
        TxnBody::CreateSession(_) | TxnBody::Reconfig(_) => Effect::Nothing,
        TxnBody::Error(e) => return Err(error_code(e.err)),
        TxnBody::Multi(subs) => {
            let codes: Vec<i32> = subs
                .iter()
                .filter_map(|s| match s {
                    TxnBody::Error(e) => Some(e.err),
                    _ => None,
                })
                .collect();
            if !codes.is_empty() {
                let failing = codes.iter().find(|&&c| c != 0 && c != ErrorCode::RuntimeInconsistency.as_i32());
                return Err(error_code(*failing.unwrap_or(&codes[0])));
            }
            Effect::Multi(subs.iter().map(|s| from_body(s, session)).collect::<Result<_, _>>()?)
        }
    })
}

#[derive(Debug, Clone)]
struct Node {
    data: Vec<u8>,
    /// `data_length` and `num_children` are filled in when the stat is read.
    stat: Stat,
    children: BTreeSet<String>,
}

impl Node {
    fn new(data: Vec<u8>, zxid: Zxid, time: i64, ephemeral_owner: i64) -> Node {
        let stat = Stat {
            czxid: zxid,
            mzxid: zxid,
            ctime: time,
            mtime: time,
            ephemeral_owner,
            pzxid: zxid,
            ..Stat::default()
        };
        Node { data, stat, children: BTreeSet::new() }
    }

    /// The stat a client sees, as ZooKeeper's `DataNode.copyStat` makes it from the persisted one.
    fn full_stat(&self) -> Stat {
        let children = self.children.len() as i32;
        Stat {
            data_length: self.data.len() as i32,
            num_children: children,
            // The tree counts child creations; a client sees child changes (every child created and
            // gone counts twice): cversion * 2 - children. /zookeeper, whose two children were added
            // without a create, shows -2.
            cversion: self.stat.cversion * 2 - children,
            // Containers and TTL nodes keep their type in the owner field; clients see 0.
            ephemeral_owner: if self.is_session_ephemeral() { self.stat.ephemeral_owner } else { 0 },
            ..self.stat.clone()
        }
    }

    /// An ephemeral of a session (not a container or TTL node, which ZooKeeper also keeps in the
    /// owner field): it may have no children and goes with its session.
    fn is_session_ephemeral(&self) -> bool {
        let owner = self.stat.ephemeral_owner;
        owner != 0 && owner != CONTAINER_OWNER && owner & TTL_OWNER_MASK != TTL_OWNER_MASK
    }
}

/// `(parent, child name)` of a path; the root is its own parent, as in ZooKeeper's create of "/".
fn split(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

/// ZooKeeper's `PathUtils.validatePath`: absolute, no empty, "." or ".." segment, no trailing slash,
/// no control or reserved characters.
pub fn valid_path(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    let forbidden = |c: char| matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{e000}'..='\u{f8ff}' | '\u{fff0}'..='\u{ffff}');
    path.starts_with('/')
        && !path.ends_with('/')
        && path[1..].split('/').all(|segment| !matches!(segment, "" | "." | ".."))
        && !path.chars().any(forbidden)
}

/// The model tree.
#[derive(Debug)]
pub struct Model {
    nodes: HashMap<String, Node>,
    /// Sessions a closeSession txn ended: their later writes fail with SessionExpired.
    closed_sessions: HashSet<SessionId>,
    /// While a multi is evaluated: each node's value before it was first touched, to roll back.
    journal: Option<Vec<(String, Option<Node>)>>,
}

impl Default for Model {
    fn default() -> Model {
        Model::new()
    }
}

impl Model {
    /// A fresh ZooKeeper tree: the root, `/zookeeper`, `/zookeeper/quota` and `/zookeeper/config`, all
    /// with zeroed stats (ZooKeeper's DataTree constructor adds them without txns).
    pub fn new() -> Model {
        let mut nodes = HashMap::new();
        let node = |children: &[&str]| Node {
            data: Vec::new(),
            stat: Stat::default(),
            children: children.iter().map(|c| c.to_string()).collect(),
        };
        nodes.insert("/".to_string(), node(&["zookeeper"]));
        nodes.insert("/zookeeper".to_string(), node(&["quota", "config"]));
        nodes.insert("/zookeeper/quota".to_string(), node(&[]));
        nodes.insert("/zookeeper/config".to_string(), node(&[]));
        Model { nodes, closed_sessions: HashSet::new(), journal: None }
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn stat(&self, path: &str) -> Option<Stat> {
        self.nodes.get(path).map(Node::full_stat)
    }

    /// What a read returns at the current state.
    pub fn read(&self, kind: &OpKind) -> Result<OpResult, ErrorCode> {
        let node = |path: &str| self.nodes.get(path).ok_or(ErrorCode::NoNode);
        match kind {
            OpKind::GetData { path } => {
                let n = node(path)?;
                Ok(OpResult::Data { data: n.data.clone(), stat: n.full_stat() })
            }
            OpKind::Exists { path } => Ok(OpResult::Stat(node(path)?.full_stat())),
            OpKind::GetChildren { path } => {
                let n = node(path)?;
                Ok(OpResult::Children { children: n.children.iter().cloned().collect(), stat: Some(n.full_stat()) })
            }
            other => panic!("{other} is not a read"),
        }
    }

    /// The effect a write request of `session` must have at the current state, or the error it must
    /// fail with. Leaves the model unchanged.
    pub fn expect(&mut self, kind: &OpKind, session: SessionId) -> Result<Effect, ErrorCode> {
        // ZooKeeper checks the session before anything else of a write (SessionTracker.checkSession).
        if self.closed_sessions.contains(&session) {
            return Err(ErrorCode::SessionExpired);
        }
        let OpKind::Multi(subs) = kind else {
            return self.expect_one(kind, session);
        };
        // Each sub-op sees the ones before it (ZooKeeper's pending change records); roll back after.
        self.journal = Some(Vec::new());
        let mut effects = Vec::with_capacity(subs.len());
        let mut outcome = Ok(());
        for sub in subs {
            match self.expect_one(sub, session) {
                Ok(effect) => {
                    if let Err(why) = self.apply_effect(&effect, session, 0, 0) {
                        panic!("the model refused its own effect {effect:?}: {why}");
                    }
                    effects.push(effect);
                }
                Err(code) => {
                    outcome = Err(code);
                    break;
                }
            }
        }
        self.rollback();
        outcome.map(|()| Effect::Multi(effects))
    }

    fn rollback(&mut self) {
        let journal = self.journal.take().expect("rollback without a journal");
        for (path, old) in journal.into_iter().rev() {
            match old {
                Some(node) => self.nodes.insert(path, node),
                None => self.nodes.remove(&path),
            };
        }
    }

    /// One request, checked in PrepRequestProcessor's order (pRequest2Txn, release-3.8).
    fn expect_one(&self, kind: &OpKind, session: SessionId) -> Result<Effect, ErrorCode> {
        match kind {
            OpKind::Create { path, data, ephemeral, sequential } => {
                self.expect_create(path, data, if *ephemeral { session } else { 0 }, *sequential)
            }
            OpKind::SetData { path, data, version } => {
                let node = self.versioned(path, *version)?;
                Ok(Effect::SetData { path: path.clone(), data: data.clone(), version: node.stat.version + 1 })
            }
            OpKind::Delete { path, version } => {
                if !valid_path(path) || SYSTEM_PATHS.contains(&path.as_str()) {
                    return Err(ErrorCode::BadArguments);
                }
                if !self.nodes.contains_key(split(path).0) {
                    return Err(ErrorCode::NoNode);
                }
                if !self.versioned(path, *version)?.children.is_empty() {
                    return Err(ErrorCode::NotEmpty);
                }
                Ok(Effect::Delete { path: path.clone() })
            }
            OpKind::Check { path, version } => {
                self.versioned(path, *version)?;
                Ok(Effect::Check { path: path.clone() })
            }
            // The wire has no multi inside a multi; a history that claims one gets the code a
            // malformed request would.
            OpKind::Multi(_) => Err(ErrorCode::BadArguments),
            other => panic!("{other} is not a write"),
        }
    }

    /// The node at `path` if it exists and `version` (-1: any) matches: BadArguments, NoNode,
    /// BadVersion otherwise (ZooKeeper's validatePath, getRecordForPath, checkAndIncVersion).
    fn versioned(&self, path: &str, version: i32) -> Result<&Node, ErrorCode> {
        if !valid_path(path) {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        if version != -1 && version != node.stat.version {
            return Err(ErrorCode::BadVersion);
        }
        Ok(node)
    }

    fn expect_create(&self, path: &str, data: &[u8], owner: i64, sequential: bool) -> Result<Effect, ErrorCode> {
        if !path.starts_with('/') || path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let parent = self.nodes.get(split(path).0).ok_or(ErrorCode::NoNode)?;
        // The sequence number is the parent's cversion before this create, ten digits, zero-padded.
        let path = if sequential { format!("{path}{:010}", parent.stat.cversion) } else { path.to_string() };
        if !valid_path(&path) {
            return Err(ErrorCode::BadArguments);
        }
        if self.nodes.contains_key(&path) {
            return Err(ErrorCode::NodeExists);
        }
        if parent.is_session_ephemeral() {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let parent_cversion = parent.stat.cversion + 1;
        Ok(Effect::Create { path, data: data.to_vec(), ephemeral_owner: owner, parent_cversion })
    }

    /// Applies a logged txn. Err says why the data model forbids it; the model may then be left
    /// half-changed (the check stops at the first violation).
    pub fn apply(&mut self, txn: &Txn) -> Result<OpResult, String> {
        match Effect::from_txn(txn) {
            Ok(effect) => self.apply_effect(&effect, txn.header.client_id, txn.header.zxid, txn.header.time),
            // An error txn changes nothing (a failed multi applies none of its sub-ops).
            Err(_) => Ok(OpResult::Empty),
        }
    }

    /// Applies one effect; returns what a client's reply should carry.
    fn apply_effect(&mut self, effect: &Effect, session: SessionId, zxid: Zxid, time: i64) -> Result<OpResult, String> {
        match effect {
            Effect::Create { path, data, ephemeral_owner, parent_cversion } => {
                self.create(path, data, *ephemeral_owner, *parent_cversion, zxid, time)
            }
            Effect::SetData { path, data, version } => {
                let mut node = self.existing(path)?.clone();
                if *version != node.stat.version.wrapping_add(1) {
                    return Err(format!("setData {path} to version {version}, but it is at {}", node.stat.version));
                }
                node.data = data.clone();
                node.stat.version = *version;
                node.stat.mzxid = zxid;
                node.stat.mtime = time;
                let stat = node.full_stat();
                self.put(path, Some(node));
                Ok(OpResult::Stat(stat))
            }
            Effect::Delete { path } => self.delete(path, zxid).map(|()| OpResult::Empty),
            Effect::Check { path } => self.existing(path).map(|_| OpResult::Empty),
            Effect::SetAcl { path, version } => {
                let mut node = self.existing(path)?.clone();
                node.stat.aversion = *version;
                let stat = node.full_stat();
                self.put(path, Some(node));
                Ok(OpResult::Stat(stat))
            }
            Effect::Multi(subs) => {
                let results = subs.iter().map(|sub| self.apply_effect(sub, session, zxid, time));
                Ok(OpResult::Multi(results.collect::<Result<_, _>>()?))
            }
            Effect::CloseSession { paths } => self.close_session(session, paths.as_deref(), zxid),
            Effect::Nothing => Ok(OpResult::Empty),
        }
    }

    fn existing(&self, path: &str) -> Result<&Node, String> {
        self.nodes.get(path).ok_or_else(|| format!("{path} does not exist"))
    }

    /// Every change to a node goes through here, so a multi's evaluation can be rolled back.
    fn put(&mut self, path: &str, node: Option<Node>) {
        let old = match node {
            Some(node) => self.nodes.insert(path.to_string(), node),
            None => self.nodes.remove(path),
        };
        if let Some(journal) = &mut self.journal {
            journal.push((path.to_string(), old));
        }
    }

    fn create(
        &mut self,
        path: &str,
        data: &[u8],
        owner: i64,
        cversion: i32,
        zxid: Zxid,
        time: i64,
    ) -> Result<OpResult, String> {
        if !valid_path(path) || path == "/" {
            return Err(format!("create of invalid path {path:?}"));
        }
        if self.nodes.contains_key(path) {
            return Err(format!("create {path}, which exists"));
        }
        let (parent_path, name) = split(path);
        let mut parent = self.existing(parent_path).map_err(|e| format!("create {path}: parent {e}"))?.clone();
        if parent.is_session_ephemeral() {
            return Err(format!("create {path} under the ephemeral {parent_path}"));
        }
        // ZooKeeper's prep sets parentCVersion to the parent's cversion + 1; -1 (pre-3.3 txns) means that too.
        if cversion != -1 && cversion != parent.stat.cversion + 1 {
            return Err(format!(
                "create {path} sets {parent_path}'s cversion to {cversion}, it is at {}",
                parent.stat.cversion
            ));
        }
        parent.stat.cversion += 1;
        parent.stat.pzxid = zxid;
        parent.children.insert(name.to_string());
        self.put(parent_path, Some(parent));
        let node = Node::new(data.to_vec(), zxid, time, owner);
        let stat = node.full_stat();
        self.put(path, Some(node));
        Ok(OpResult::Created { path: path.to_string(), stat: Some(stat) })
    }

    /// ZooKeeper's deleteNode: the parent's pzxid moves, its cversion does not (release-3.8).
    fn delete(&mut self, path: &str, zxid: Zxid) -> Result<(), String> {
        if SYSTEM_PATHS.contains(&path) {
            return Err(format!("delete of the system node {path}"));
        }
        let node = self.existing(path)?;
        if !node.children.is_empty() {
            return Err(format!("delete {path}, which has {} children", node.children.len()));
        }
        let (parent_path, name) = split(path);
        let mut parent = self.existing(parent_path)?.clone();
        parent.children.remove(name);
        parent.stat.pzxid = parent.stat.pzxid.max(zxid);
        self.put(parent_path, Some(parent));
        self.put(path, None);
        Ok(())
    }

    /// Removes the session's ephemerals; a 3.8 txn lists them, and the list must be exactly those.
    fn close_session(&mut self, session: SessionId, listed: Option<&[String]>, zxid: Zxid) -> Result<OpResult, String> {
        let owned: BTreeSet<String> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.is_session_ephemeral() && n.stat.ephemeral_owner == session)
            .map(|(p, _)| p.clone())
            .collect();
        if let Some(listed) = listed {
            let listed: BTreeSet<String> = listed.iter().cloned().collect();
            if listed != owned {
                return Err(format!("closeSession {session:#x} deletes {listed:?}, the session owns {owned:?}"));
            }
        }
        for path in &owned {
            self.delete(path, zxid)?;
        }
        self.closed_sessions.insert(session);
        Ok(OpResult::Empty)
    }
}
