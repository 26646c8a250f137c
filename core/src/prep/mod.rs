//! Request preparation: validates a write against the tree plus pending changes and turns it into the txn
//! to log (ZooKeeper's `PrepRequestProcessor`). Pure: the zxid, the time and whether the session is alive
//! come in through [`RequestCtx`].
//!
//! Every check happens in ZooKeeper's order, because the order decides which error a client sees when a
//! request is wrong in more than one way (reference/client-wire.md §10). A failed write still becomes a
//! txn — an error txn — and consumes a zxid, as in ZooKeeper.

mod view;

use std::sync::Arc;

use fk_engine::tree::{self, CONTAINER_OWNER, EphemeralKind, MAX_TTL_MS};
use fk_net::client::{Acl, ErrorCode, OpCode, StatPersisted, WriteOp, perms};
use fk_net::path::validate_path;
use fk_net::txn::{
    CheckVersionTxn, CreateContainerTxn, CreateTtlTxn, CreateTxn, ErrorTxn, SetAclTxn, SetDataTxn, TxnBody,
};

pub use view::{NodeData, NodeMeta, PendingChanges, PrepView};

use crate::auth::{AuthIds, check_acl, fixup_acl};

/// Server settings that change what prep accepts.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrepSettings {
    pub extended_types: bool,
    pub skip_acl: bool,
    pub reconfig_enabled: bool,
    /// `zookeeper.enforceQuota`: creates and setData below a quota are checked against its limits.
    pub enforce_quota: bool,
    /// The SASL and x509 providers configured: ACLs of their schemes are valid.
    pub acl_schemes: crate::auth::AclSchemes,
}

/// What prep knows of the ensemble to prepare a reconfig: the leader's view (`None` standalone).
#[derive(Debug, Clone, Copy)]
pub struct EnsembleView<'a> {
    /// The membership in force.
    pub current: &'a crate::membership::Membership,
    /// The newest membership proposed (the one in force unless a reconfig is under way).
    pub last_seen: &'a crate::membership::Membership,
    /// This leader and the followers synchronised with it.
    pub synced: &'a std::collections::BTreeSet<i64>,
    /// `standaloneEnabled`: a membership needs at least 2 voters.
    pub standalone_enabled: bool,
}

/// The request's context: who sends it and the txn header values it will get.
pub struct RequestCtx<'a> {
    pub session_id: i64,
    /// Whether the session tracker knows the session and it is not closing.
    pub session_live: bool,
    pub zxid: i64,
    pub time_ms: i64,
    pub auth: &'a AuthIds,
    pub settings: PrepSettings,
    pub ensemble: Option<EnsembleView<'a>>,
}

/// A write the sequencer asks prep to turn into a txn.
pub enum Write<'a> {
    Op(&'a WriteOp),
    Multi(&'a [WriteOp]),
    CloseSession,
    /// Issued by the container/TTL reaper, never accepted from a client.
    DeleteContainer(&'a str),
    Reconfig(&'a fk_net::client::ReconfigRequest),
}

type PrepResult = Result<TxnBody, ErrorCode>;

/// Prepares one write. Failures come back as an error txn (or, for a multi, a multi of results).
pub fn prep_write(view: &mut PrepView<'_>, ctx: &RequestCtx<'_>, write: Write<'_>) -> TxnBody {
    let result = match write {
        Write::Op(op) => prep_op(view, ctx, op),
        Write::Multi(ops) => Ok(prep_multi(view, ctx, ops)),
        Write::CloseSession => Ok(prep_close_session(view, ctx)),
        Write::DeleteContainer(path) => prep_delete_container(view, ctx, path),
        Write::Reconfig(request) => prep_reconfig(view, ctx, request),
    };
    result.unwrap_or_else(|code| TxnBody::Error(ErrorTxn { err: code.as_i32() }))
}

fn prep_op(view: &mut PrepView<'_>, ctx: &RequestCtx<'_>, op: &WriteOp) -> PrepResult {
    match op {
        WriteOp::Create { op, request } => {
            let create = Create { op: *op, path: &request.path, data: &request.data, acl: &request.acl, ttl: -1 };
            prep_create(view, ctx, create, request.flags)
        }
        WriteOp::CreateTtl(r) => {
            let create = Create { op: OpCode::CreateTtl, path: &r.path, data: &r.data, acl: &r.acl, ttl: r.ttl };
            prep_create(view, ctx, create, r.flags)
        }
        WriteOp::Delete(r) => prep_delete(view, ctx, &r.path, r.version),
        WriteOp::SetData(r) => prep_set_data(view, ctx, &r.path, &r.data, r.version),
        WriteOp::SetAcl(r) => prep_set_acl(view, ctx, &r.path, &r.acl, r.version),
        WriteOp::Check(r) => prep_check(view, ctx, &r.path, r.version),
    }
}

/// All ops of a multi share one zxid. After the first failure the changes of the earlier ops are rolled
/// back and every later op becomes an error txn with RuntimeInconsistency.
fn prep_multi(view: &mut PrepView<'_>, ctx: &RequestCtx<'_>, ops: &[WriteOp]) -> TxnBody {
    view.begin_undo();
    let mut failed = false;
    let mut txns = Vec::with_capacity(ops.len());
    for op in ops {
        let txn = if failed {
            TxnBody::Error(ErrorTxn { err: ErrorCode::RuntimeInconsistency.as_i32() })
        } else {
            match prep_op(view, ctx, &as_multi_sub_op(op)) {
                Ok(txn) => txn,
                Err(code) => {
                    failed = true;
                    view.rollback();
                    TxnBody::Error(ErrorTxn { err: code.as_i32() })
                }
            }
        };
        txns.push(txn);
    }
    if !failed {
        view.commit_undo();
    }
    TxnBody::Multi(txns)
}

/// ZooKeeper rebuilds each create of a multi from its record (`MultiOperationRecord`:
/// `Op.create(path, data, acl, flags)`), so inside a multi the flags choose the kind, not the opcode: a
/// container for CreateMode CONTAINER, else a plain create. A create2 is logged, and answered, as a
/// create; logged as create2, a Java member applying the multi throws "Invalid type of op" and skips
/// the rest of it. (TTL flags keep their op: ZooKeeper fails those multis in ways not matched here.)
fn as_multi_sub_op(op: &WriteOp) -> std::borrow::Cow<'_, WriteOp> {
    use std::borrow::Cow;
    match op {
        WriteOp::Create { op: code, request } if matches!(request.flags, 0..=4) => {
            let kind = if request.flags == 4 { OpCode::CreateContainer } else { OpCode::Create };
            if *code == kind {
                Cow::Borrowed(op)
            } else {
                Cow::Owned(WriteOp::Create { op: kind, request: request.clone() })
            }
        }
        _ => Cow::Borrowed(op),
    }
}

fn check_session(ctx: &RequestCtx<'_>) -> Result<(), ErrorCode> {
    if ctx.session_live { Ok(()) } else { Err(ErrorCode::SessionExpired) }
}

fn check_perm(ctx: &RequestCtx<'_>, acl: &[Acl], perm: i32) -> Result<(), ErrorCode> {
    if check_acl(acl, ctx.auth, perm, ctx.settings.skip_acl) { Ok(()) } else { Err(ErrorCode::NoAuth) }
}

/// `checkAndIncVersion`: -1 matches any version; the result is the version after the change.
fn check_and_inc_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

/// ZooKeeper finds the parent by the last '/' *before* validating the whole path, so a path like
/// "/a//b" fails with NoNode (its parent "/a/" does not exist) rather than BadArguments.
fn parent_of(path: &str) -> Result<&str, ErrorCode> {
    match path.rfind('/') {
        None => Err(ErrorCode::BadArguments),
        _ if path.contains('\0') => Err(ErrorCode::BadArguments),
        Some(0) => Ok("/"),
        Some(i) => Ok(&path[..i]),
    }
}

fn valid_path(path: &str) -> Result<(), ErrorCode> {
    validate_path(path).map_err(|_| ErrorCode::BadArguments)
}

fn data_len(data: Option<&[u8]>) -> i64 {
    data.map_or(0, |d| d.len() as i64)
}

/// `ZooKeeperServer.checkQuota`, only with `zookeeper.enforceQuota`. Like ZooKeeper it reads limits and
/// usage from the applied tree, not from the changes in flight: writes prepared together (a multi's ops,
/// or a pipelined burst) are each checked against the usage before any of them.
fn check_quota(
    view: &PrepView<'_>,
    ctx: &RequestCtx<'_>,
    path: &str,
    bytes_diff: i64,
    count_diff: i64,
) -> Result<(), ErrorCode> {
    if !ctx.settings.enforce_quota {
        return Ok(());
    }
    view.tree().check_quota(path, bytes_diff, count_diff)
}

fn node(view: &PrepView<'_>, path: &str) -> Result<NodeMeta, ErrorCode> {
    view.node(path).ok_or(ErrorCode::NoNode)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CreateMode {
    Persistent,
    Ephemeral,
    PersistentSequential,
    EphemeralSequential,
    Container,
    PersistentWithTtl,
    PersistentSequentialWithTtl,
}

impl CreateMode {
    fn from_flags(flags: i32) -> Option<CreateMode> {
        Some(match flags {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl,
            6 => CreateMode::PersistentSequentialWithTtl,
            _ => return None,
        })
    }

    fn is_ephemeral(self) -> bool {
        matches!(self, CreateMode::Ephemeral | CreateMode::EphemeralSequential)
    }

    fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    fn is_ttl(self) -> bool {
        matches!(self, CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl)
    }
}

struct Create<'a> {
    op: OpCode,
    path: &'a str,
    data: &'a Option<Vec<u8>>,
    acl: &'a [Acl],
    /// -1 unless the request was createTTL.
    ttl: i64,
}

fn validate_create_mode(ctx: &RequestCtx<'_>, create: &Create<'_>, flags: i32) -> Result<CreateMode, ErrorCode> {
    let mode = CreateMode::from_flags(flags).ok_or(ErrorCode::BadArguments)?;
    if mode.is_ttl() && !ctx.settings.extended_types {
        return Err(ErrorCode::Unimplemented);
    }
    let ttl_ok = if mode.is_ttl() { create.ttl > 0 && create.ttl <= MAX_TTL_MS } else { create.ttl < 0 };
    // createTTL with a non-TTL mode would log a TTL create without a TTL, which ZooKeeper cannot apply
    // either; refuse it up front.
    if !ttl_ok || (create.op == OpCode::CreateTtl) != mode.is_ttl() {
        return Err(ErrorCode::BadArguments);
    }
    Ok(mode)
}

fn prep_create(view: &mut PrepView<'_>, ctx: &RequestCtx<'_>, create: Create<'_>, flags: i32) -> PrepResult {
    let mode = validate_create_mode(ctx, &create, flags)?;
    check_session(ctx)?;
    let parent_path = parent_of(create.path)?;
    let acl = fixup_acl(create.acl, ctx.auth, ctx.settings.acl_schemes)?;
    let mut parent = node(view, parent_path)?;
    check_perm(ctx, &parent.acl, perms::CREATE)?;
    let mut path = create.path.to_owned();
    if mode.is_sequential() {
        path.push_str(&format!("{:010}", parent.stat.cversion));
    }
    valid_path(&path)?;
    if view.node(&path).is_some() {
        return Err(ErrorCode::NodeExists);
    }
    if EphemeralKind::of(parent.stat.ephemeral_owner, ctx.settings.extended_types).session().is_some() {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    check_quota(view, ctx, &path, data_len(create.data.as_deref()), 1)?;
    let parent_cversion = parent.stat.cversion.wrapping_add(1);
    let data = create.data.clone();
    // The opcode decides the kind of node, as the txn type does in ZooKeeper.
    let (owner, txn) = match create.op {
        OpCode::CreateContainer => {
            let txn = CreateContainerTxn { path: path.clone(), data, acl: acl.clone(), parent_cversion };
            (CONTAINER_OWNER, TxnBody::CreateContainer(txn))
        }
        OpCode::CreateTtl => {
            let txn = CreateTtlTxn { path: path.clone(), data, acl: acl.clone(), parent_cversion, ttl: create.ttl };
            (EphemeralKind::Ttl(create.ttl).owner(), TxnBody::CreateTtl(txn))
        }
        op => {
            let ephemeral = mode.is_ephemeral();
            let txn = CreateTxn { path: path.clone(), data, acl: acl.clone(), ephemeral, parent_cversion };
            (if ephemeral { ctx.session_id } else { 0 }, TxnBody::Create { op, txn })
        }
    };
    parent.child_count += 1;
    parent.stat.cversion = parent_cversion;
    parent.stat.pzxid = ctx.zxid;
    view.put(parent_path, ctx.zxid, parent);
    let stat = StatPersisted {
        czxid: ctx.zxid,
        mzxid: ctx.zxid,
        ctime: ctx.time_ms,
        mtime: ctx.time_ms,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: owner,
        pzxid: ctx.zxid,
    };
    let data = NodeData::Pending(create.data.as_deref().map(Arc::from));
    view.put(&path, ctx.zxid, NodeMeta { stat, child_count: 0, acl: acl.into(), digest: 0, data });
    Ok(txn)
}

/// `getParentPathAndValidate`: the reserved paths cannot be deleted.
fn parent_for_delete(path: &str) -> Result<&str, ErrorCode> {
    if tree::is_reserved(path) {
        return Err(ErrorCode::BadArguments);
    }
    parent_of(path)
}

fn remove_from_parent(
    view: &mut PrepView<'_>,
    ctx: &RequestCtx<'_>,
    parent_path: &str,
    mut parent: NodeMeta,
    path: &str,
    node: &NodeMeta,
) {
    view.remove(path, ctx.zxid, node);
    parent.child_count -= 1;
    parent.stat.pzxid = ctx.zxid;
    view.put(parent_path, ctx.zxid, parent);
}

fn prep_delete(view: &mut PrepView<'_>, ctx: &RequestCtx<'_>, path: &str, version: i32) -> PrepResult {
    check_session(ctx)?;
    let parent_path = parent_for_delete(path)?;
    let parent = node(view, parent_path)?;
    check_perm(ctx, &parent.acl, perms::DELETE)?;
    let target = node(view, path)?;
    check_and_inc_version(target.stat.version, version)?;
    if target.child_count > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    remove_from_parent(view, ctx, parent_path, parent, path, &target);
    Ok(TxnBody::Delete { op: OpCode::Delete, path: path.to_owned() })
}

/// The reaper's delete: no ACL check (it is the server's own request), but it must still be an empty
/// container or TTL node when the txn is prepared.
fn prep_delete_container(view: &mut PrepView<'_>, ctx: &RequestCtx<'_>, path: &str) -> PrepResult {
    let parent_path = parent_for_delete(path)?;
    let target = node(view, path)?;
    if target.child_count > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    if EphemeralKind::of(target.stat.ephemeral_owner, ctx.settings.extended_types).session().is_some() {
        return Err(ErrorCode::BadVersion);
    }
    let parent = node(view, parent_path)?;
    remove_from_parent(view, ctx, parent_path, parent, path, &target);
    Ok(TxnBody::Delete { op: OpCode::DeleteContainer, path: path.to_owned() })
}

fn prep_set_data(
    view: &mut PrepView<'_>,
    ctx: &RequestCtx<'_>,
    path: &str,
    data: &Option<Vec<u8>>,
    version: i32,
) -> PrepResult {
    check_session(ctx)?;
    valid_path(path)?;
    let mut target = node(view, path)?;
    check_perm(ctx, &target.acl, perms::WRITE)?;
    let last_len = match &target.data {
        NodeData::InTree => view.tree().get(path).map_or(0, |n| i64::from(n.data_len())),
        NodeData::Pending(data) => data_len(data.as_deref()),
    };
    check_quota(view, ctx, path, data_len(data.as_deref()) - last_len, 0)?;
    let new_version = check_and_inc_version(target.stat.version, version)?;
    target.stat.version = new_version;
    target.stat.mtime = ctx.time_ms;
    target.stat.mzxid = ctx.zxid;
    target.data = NodeData::Pending(data.as_deref().map(Arc::from));
    view.put(path, ctx.zxid, target);
    Ok(TxnBody::SetData(SetDataTxn { path: path.to_owned(), data: data.clone(), version: new_version }))
}

/// ZooKeeper's reconfig prep, its checks in its order: reconfigEnabled, the session, standalone
/// (Unimplemented), a reconfig under way, `curConfigId`, what was asked, a synced quorum of the new
/// membership, then WRITE on `/zookeeper/config`. The txn sets `/zookeeper/config` to the new membership,
/// versioned by the txn's zxid, with data version -1.
fn prep_reconfig(
    view: &mut PrepView<'_>,
    ctx: &RequestCtx<'_>,
    request: &fk_net::client::ReconfigRequest,
) -> PrepResult {
    use crate::membership::ReconfigAsk;
    if !ctx.settings.reconfig_enabled {
        return Err(ErrorCode::ReconfigDisabled);
    }
    check_session(ctx)?;
    let Some(ensemble) = ctx.ensemble else { return Err(ErrorCode::Unimplemented) };
    if ensemble.last_seen.version != ensemble.current.version {
        return Err(ErrorCode::ReconfigInProgress);
    }
    if request.cur_config_id != -1 && request.cur_config_id != ensemble.last_seen.version {
        return Err(ErrorCode::BadVersion);
    }
    // The Java client sends absent fields as null, which reads as empty.
    let given = |field: &str| Some(field.to_owned()).filter(|f| !f.is_empty());
    let (joining, leaving, new_members) =
        (given(&request.joining_servers), given(&request.leaving_servers), given(&request.new_members));
    let ask =
        ReconfigAsk { joining: joining.as_deref(), leaving: leaving.as_deref(), new_members: new_members.as_deref() };
    let next = ensemble.last_seen.reconfigured(ask, ctx.zxid, ensemble.standalone_enabled).map_err(|(code, why)| {
        tracing::info!("reconfig refused ({code:?}): {why}");
        code
    })?;
    if !next.is_quorum(ensemble.synced) {
        return Err(ErrorCode::NewConfigNoQuorum);
    }
    let mut target = node(view, tree::CONFIG_PATH)?;
    check_perm(ctx, &target.acl, perms::WRITE)?;
    let text = next.text().into_bytes();
    target.stat.version = -1;
    target.stat.mtime = ctx.time_ms;
    target.stat.mzxid = ctx.zxid;
    target.data = NodeData::Pending(Some(Arc::from(text.as_slice())));
    view.put(tree::CONFIG_PATH, ctx.zxid, target);
    Ok(TxnBody::Reconfig(SetDataTxn { path: tree::CONFIG_PATH.to_owned(), data: Some(text), version: -1 }))
}

fn prep_set_acl(view: &mut PrepView<'_>, ctx: &RequestCtx<'_>, path: &str, acl: &[Acl], version: i32) -> PrepResult {
    check_session(ctx)?;
    valid_path(path)?;
    let acl = fixup_acl(acl, ctx.auth, ctx.settings.acl_schemes)?;
    let mut target = node(view, path)?;
    check_perm(ctx, &target.acl, perms::ADMIN)?;
    let new_version = check_and_inc_version(target.stat.aversion, version)?;
    target.stat.aversion = new_version;
    target.acl = acl.clone().into();
    view.put(path, ctx.zxid, target);
    Ok(TxnBody::SetAcl(SetAclTxn { path: path.to_owned(), acl, version: new_version }))
}

fn prep_check(view: &mut PrepView<'_>, ctx: &RequestCtx<'_>, path: &str, version: i32) -> PrepResult {
    check_session(ctx)?;
    valid_path(path)?;
    let target = node(view, path)?;
    check_perm(ctx, &target.acl, perms::READ)?;
    let logged_version = check_and_inc_version(target.stat.version, version)?;
    Ok(TxnBody::Check(CheckVersionTxn { path: path.to_owned(), version: logged_version }))
}

/// The session's ephemerals as they will be when this txn applies — the tree's, plus creates in flight,
/// minus deletes in flight — are named in the txn and marked deleted.
fn prep_close_session(view: &mut PrepView<'_>, ctx: &RequestCtx<'_>) -> TxnBody {
    let mut paths: std::collections::BTreeSet<String> =
        view.tree().ephemerals_of(ctx.session_id).map(str::to_owned).collect();
    for (path, exists) in view.pending_ephemeral_changes(ctx.session_id) {
        if exists {
            paths.insert(path.to_owned());
        } else {
            paths.remove(path);
        }
    }
    for path in &paths {
        let parent_path = fk_net::path::parent(path);
        if let (Some(parent), Some(node)) = (view.node(parent_path), view.node(path)) {
            remove_from_parent(view, ctx, parent_path, parent, path, &node);
        }
    }
    TxnBody::CloseSession { paths_to_delete: Some(paths.into_iter().collect()) }
}

#[cfg(test)]
mod tests;
